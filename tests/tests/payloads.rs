//! The payloads bucket (claim check of large inbound bodies) against moto: what the receiver puts is
//! what the dispatcher gets, byte for byte; objects are SSE-KMS with the stack's key; a missing key
//! and a zip bomb are refused.

use aws_sdk_s3::types::ServerSideEncryption;
use hub_shared::domain::{EventId, IncomingWebhookId, TenantId};
use hub_shared::payloads::{gunzip, gzip, s3_client, PayloadError, PayloadStore, INLINE_LIMIT};
use hub_shared::services::Services;
use hub_tests::{sdk_config, spawn_app_with, TestApp};
use rand::RngCore;

/// The receiver's body limit: nothing it stores inflates beyond it.
const BODY_LIMIT: usize = 1024 * 1024;

/// A stack without workers and the payload store its functions are built with.
async fn stack_and_store() -> (TestApp, PayloadStore) {
    let app = spawn_app_with(|options| options.start_workers = false).await;
    let services = Services::new(app.stack.config.clone(), &sdk_config()).expect("services start");
    let store = services.payloads().clone();
    assert_eq!(store.bucket(), app.stack.provisioned.payload_bucket);
    (app, store)
}

fn fresh_key() -> String {
    PayloadStore::key_for(
        &TenantId::parse("acme").expect("tenant"),
        &IncomingWebhookId::generate(),
        &EventId::generate(),
    )
}

fn random_body(len: usize) -> Vec<u8> {
    let mut body = vec![0; len];
    rand::thread_rng().fill_bytes(&mut body);
    body
}

#[tokio::test]
async fn a_large_incompressible_body_round_trips_byte_exact_through_the_bucket() {
    // Given a 600 KiB random body, which gzip cannot bring under the inline limit
    let (_app, store) = stack_and_store().await;
    let body = random_body(600 * 1024);
    let gzipped = gzip(&body);
    assert!(gzipped.len() > INLINE_LIMIT, "goes to the bucket");
    let key = fresh_key();

    // When the receiver stores it and the dispatcher reads it back
    store.put(&key, gzipped.clone()).await.expect("PutObject");
    let stored = store.get(&key).await.expect("GetObject");

    // Then the stored bytes are the gzip as put, and they inflate to the body byte for byte
    assert_eq!(stored, gzipped);
    assert_eq!(gunzip(&stored, BODY_LIMIT).expect("inflates"), body);
}

#[tokio::test]
async fn stored_payloads_are_sse_kms_with_the_stacks_key_and_marked_gzip() {
    // Given a stored payload
    let (app, store) = stack_and_store().await;
    let key = fresh_key();
    store
        .put(&key, gzip(&random_body(4096)))
        .await
        .expect("PutObject");

    // When its metadata is read
    let sdk = sdk_config();
    let head = s3_client(&sdk)
        .head_object()
        .bucket(&app.stack.provisioned.payload_bucket)
        .key(&key)
        .send()
        .await
        .expect("HeadObject");

    // Then it is encrypted with KMS under the stack's secrets key
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    let named_key = head.ssekms_key_id().expect("SSEKMSKeyId");
    let described = aws_sdk_kms::Client::new(&sdk)
        .describe_key()
        .key_id(named_key)
        .send()
        .await
        .expect("the object's key exists");
    assert_eq!(
        described.key_metadata().and_then(|metadata| metadata.arn()),
        Some(app.stack.provisioned.key_arn.as_str())
    );
    // And it says what it is: gzip bytes, not something to render
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(head.content_type(), Some("application/octet-stream"));
}

#[tokio::test]
async fn a_key_never_written_is_not_found() {
    // Given a stack whose bucket holds nothing under a key
    let (_app, store) = stack_and_store().await;

    // When that key is read
    let error = store.get(&fresh_key()).await.expect_err("no object");

    // Then the store says not found (not a retryable failure)
    assert!(matches!(error, PayloadError::NotFound), "{error}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_stored_zip_bomb_is_refused_at_the_inflate_limit() {
    // Given 64 MiB of zeros, gzipped to a small object, in the bucket
    let (_app, store) = stack_and_store().await;
    let bomb = gzip(&vec![0; 64 * 1024 * 1024]);
    assert!(bomb.len() < INLINE_LIMIT, "{} bytes", bomb.len());
    let key = fresh_key();
    store.put(&key, bomb).await.expect("PutObject");

    // When the dispatcher reads it back and inflates it with the receiver's body limit
    let stored = store.get(&key).await.expect("GetObject");
    let error = gunzip(&stored, BODY_LIMIT).expect_err("refused");

    // Then inflating stops at the limit with a reason
    assert!(
        matches!(&error, PayloadError::Failed(detail) if detail.contains("inflates beyond 1048576 bytes")),
        "{error}"
    );
}
