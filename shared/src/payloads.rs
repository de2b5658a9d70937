//! Large inbound bodies (claim check): a body whose gzip is over [`INLINE_LIMIT`] does not fit the
//! event's DynamoDB item, so the receiver stores the gzipped bytes in the payloads bucket and the item
//! holds the object key; the dispatcher reads them back (docs/decisions.md, "Large payloads").
//! Objects are SSE-KMS with the secrets key and expire with the bucket's lifecycle rule (14 days, the
//! webhook log retention).

use std::io::{Read, Write};

use aws_config::SdkConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::domain::{EventId, IncomingWebhookId, TenantId};

/// 256 KiB: a gzipped body larger than this goes to S3 (DynamoDB's item limit is 400 KB, and the
/// item also holds the event's headers and metadata).
pub const INLINE_LIMIT: usize = 256 * 1024;

/// S3 error codes that mean "try again", not "this request is wrong".
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "ThrottlingException",
    "KMS.ThrottlingException",
];

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Throttled or briefly unreachable (S3 or the KMS call behind SSE-KMS): the caller may retry.
    #[error("the payloads bucket is unavailable: {0}")]
    Unavailable(String),
    /// No object under the key (never written, or expired by the lifecycle rule).
    #[error("no payload under that key")]
    NotFound,
    /// Refused (access, key, bucket) or unreadable: retrying the same request will not help.
    #[error("payload request failed: {0}")]
    Failed(String),
}

impl PayloadError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PayloadError::Unavailable(_))
    }
}

/// Inbound bodies too large for one DynamoDB item, gzipped, under
/// `<tenantId>/<webhookId>/<eventId>.gz`, SSE-KMS with the secrets key.
#[derive(Clone)]
pub struct PayloadStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: String,
}

/// The S3 client of the payloads bucket. An endpoint override (moto, `AWS_ENDPOINT_URL`) serves
/// buckets under the path, not as a host name, so it gets path-style addressing; AWS itself gets
/// virtual-hosted addressing.
pub fn s3_client(aws: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl PayloadStore {
    /// `kms_key_id`: a key ARN, key id or `alias/...` (`KMS_KEY_ID`).
    pub fn new(s3: aws_sdk_s3::Client, bucket: String, kms_key_id: String) -> PayloadStore {
        PayloadStore {
            s3,
            bucket,
            kms_key_id,
        }
    }

    /// Tenant first, so one tenant's payloads can be listed, audited or removed by prefix. Every part
    /// is a parsed id (no `/`), so the key has exactly three segments.
    pub fn key_for(tenant: &TenantId, webhook: &IncomingWebhookId, event: &EventId) -> String {
        format!("{tenant}/{webhook}/{event}.gz")
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// PutObject of already-gzipped bytes (ContentEncoding gzip, ContentType
    /// application/octet-stream, ServerSideEncryption aws:kms + SSEKMSKeyId). Writing the same key
    /// again replaces the object, so a retried receive is harmless.
    pub async fn put(&self, key: &str, gzipped: Vec<u8>) -> Result<(), PayloadError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_encoding("gzip")
            .content_type("application/octet-stream")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .body(ByteStream::from(gzipped))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The gzipped bytes stored under `key` (see [`gunzip`]).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, PayloadError> {
        let output = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_no_such_key()) =>
            {
                return Err(PayloadError::NotFound)
            }
            Err(error) => return Err(classify(error)),
        };
        let body = output.body.collect().await.map_err(|error| {
            PayloadError::Unavailable(format!("reading the object body: {error}"))
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

fn classify<E, R>(error: SdkError<E, R>) -> PayloadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code)),
        _ => false,
    };
    let detail = match error.code() {
        Some(code) => format!("{code}: {}", error.message().unwrap_or("no message")),
        None => DisplayErrorContext(&error).to_string(),
    };
    if retryable {
        PayloadError::Unavailable(detail)
    } else {
        PayloadError::Failed(detail)
    }
}

/// gzip (default level) of a body, as the receiver stores it: inline when the result is at most
/// [`INLINE_LIMIT`] bytes, in the payloads bucket otherwise.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 64),
        Compression::default(),
    );
    let written = encoder.write_all(bytes);
    // Writing into a Vec cannot fail: the only errors a GzEncoder passes on are its writer's.
    written
        .and_then(|()| encoder.finish())
        .expect("gzip into memory")
}

/// The body a gzip holds, refusing to inflate beyond `limit` bytes: a small stored object must not
/// become an unbounded allocation (a zip bomb inflates ~1,000×). The receiver's body limit (1 MiB)
/// is the natural `limit`.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, PayloadError> {
    let mut inflated = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "beyond it".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    GzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut inflated)
        .map_err(|error| PayloadError::Failed(format!("not a readable gzip: {error}")))?;
    if inflated.len() > limit {
        return Err(PayloadError::Failed(format!(
            "the payload inflates beyond {limit} bytes"
        )));
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzipped_body_inflates_back_to_the_same_bytes() {
        let body = br#"{"id":"evt_1","data":"caf\xc3\xa9"}"#.repeat(100);

        let gzipped = gzip(&body);

        assert!(gzipped.len() < body.len());
        assert_eq!(&gzipped[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(gunzip(&gzipped, body.len()).expect("inflates"), body);
    }

    #[test]
    fn a_body_of_exactly_the_limit_inflates_and_one_byte_more_is_refused() {
        let body = vec![b'a'; 4096];
        let gzipped = gzip(&body);

        assert_eq!(gunzip(&gzipped, 4096).expect("at the limit"), body);
        let error = gunzip(&gzipped, 4095).expect_err("beyond the limit");
        assert!(
            matches!(&error, PayloadError::Failed(detail) if detail.contains("4095")),
            "{error}"
        );
    }

    #[test]
    fn bytes_that_are_not_gzip_are_refused() {
        let error = gunzip(b"{\"plain\": true}", 1024).expect_err("not gzip");

        assert!(matches!(error, PayloadError::Failed(_)), "{error}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn an_empty_body_round_trips() {
        assert_eq!(gunzip(&gzip(b""), 0).expect("inflates"), b"");
    }

    #[test]
    fn keys_are_tenant_webhook_event_gz() {
        let tenant = TenantId::parse("acme").expect("tenant");
        let webhook = IncomingWebhookId::generate();
        let event = EventId::generate();

        let key = PayloadStore::key_for(&tenant, &webhook, &event);

        assert_eq!(key, format!("acme/{webhook}/{event}.gz"));
        assert_eq!(key.split('/').count(), 3);
    }
}
