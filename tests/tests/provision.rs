//! The local stack creates its table, key, payloads bucket and queues in moto from
//! `infra/template.yaml` itself, and serves the template's routes: what runs locally has the deployed
//! shape.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{BillingMode, TimeToLiveStatus};
use aws_sdk_kms::types::{DataKeySpec, KeySpec, KeyUsageType};
use aws_sdk_s3::types::{ExpirationStatus, ObjectOwnership, ServerSideEncryption};
use aws_sdk_sqs::types::QueueAttributeName;
use hub_local::provision::{provision, Provisioned, StackNames};
use hub_local::template::{
    http_routes, template_definitions, AttributeDefinition, HttpRoute, IndexDefinition, KeyElement,
};
use hub_shared::payloads::s3_client;
use hub_tests::{sdk_config, unique_name};

async fn provision_fresh_stack() -> (StackNames, Provisioned) {
    let names = StackNames::with_prefix(&unique_name("provision"));
    let provisioned = provision(&sdk_config(), &names)
        .await
        .expect("provisioning succeeds");
    (names, provisioned)
}

fn key(attribute_name: &str, key_type: &str) -> KeyElement {
    KeyElement {
        attribute_name: attribute_name.into(),
        key_type: key_type.into(),
    }
}

#[tokio::test]
async fn provisioned_table_has_the_template_keys_index_billing_and_ttl() {
    // Given the template's table definition
    let expected = template_definitions().expect("template parses").table;
    assert_eq!(
        expected.key_schema,
        vec![key("pk", "HASH"), key("sk", "RANGE")]
    );

    // When a fresh stack is provisioned
    let (names, provisioned) = provision_fresh_stack().await;

    // Then the table moto holds is the template's
    assert_eq!(provisioned.table_name, names.table);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config());
    let table = dynamodb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .expect("table exists")
        .table
        .expect("table description");
    let key_schema: Vec<KeyElement> = table
        .key_schema()
        .iter()
        .map(|element| key(element.attribute_name(), element.key_type().as_str()))
        .collect();
    assert_eq!(key_schema, expected.key_schema);

    let mut attributes: Vec<AttributeDefinition> = table
        .attribute_definitions()
        .iter()
        .map(|attribute| AttributeDefinition {
            attribute_name: attribute.attribute_name().into(),
            attribute_type: attribute.attribute_type().as_str().into(),
        })
        .collect();
    attributes.sort_by(|a, b| a.attribute_name.cmp(&b.attribute_name));
    let mut expected_attributes = expected.attribute_definitions.clone();
    expected_attributes.sort_by(|a, b| a.attribute_name.cmp(&b.attribute_name));
    assert_eq!(attributes, expected_attributes);

    let indexes: Vec<IndexDefinition> = table
        .global_secondary_indexes()
        .iter()
        .map(|index| IndexDefinition {
            index_name: index.index_name().unwrap_or_default().into(),
            key_schema: index
                .key_schema()
                .iter()
                .map(|element| key(element.attribute_name(), element.key_type().as_str()))
                .collect(),
            projection_type: index
                .projection()
                .and_then(|projection| projection.projection_type())
                .map(|kind| kind.as_str().to_string())
                .unwrap_or_default(),
            non_key_attributes: index
                .projection()
                .map(|projection| projection.non_key_attributes().to_vec())
                .unwrap_or_default(),
        })
        .collect();
    assert_eq!(indexes, expected.global_secondary_indexes);
    assert_eq!(indexes[0].index_name, "gsi1");
    assert_eq!(
        indexes[0].key_schema,
        vec![key("gsi1pk", "HASH"), key("gsi1sk", "RANGE")]
    );

    let billing = table
        .billing_mode_summary()
        .and_then(|summary| summary.billing_mode());
    assert_eq!(billing, Some(&BillingMode::PayPerRequest));

    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(&names.table)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(
        ttl.attribute_name(),
        expected.time_to_live_attribute.as_deref()
    );
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
}

#[tokio::test]
async fn provisioning_again_reuses_the_table_key_and_queues() {
    // Given a provisioned stack
    let (names, first) = provision_fresh_stack().await;

    // When it is provisioned again
    let second = provision(&sdk_config(), &names)
        .await
        .expect("second provisioning succeeds");

    // Then every resource is the same one
    assert_eq!(second, first);
    let kms = aws_sdk_kms::Client::new(&sdk_config());
    let aliases = kms.list_aliases().send().await.expect("ListAliases");
    let ours = aliases
        .aliases()
        .iter()
        .filter(|alias| alias.alias_name() == Some(names.key_alias.as_str()));
    assert_eq!(ours.count(), 1);
}

#[tokio::test]
async fn concurrent_provisioning_of_one_stack_converges_on_the_same_resources() {
    // Given two local processes starting against the same moto at once
    let names = StackNames::with_prefix(&unique_name("provision-race"));
    let sdk = sdk_config();

    // When both provision the same names concurrently
    let (left, right) = tokio::join!(provision(&sdk, &names), provision(&sdk, &names));

    // Then both succeed and agree on every resource, and the alias names that key
    let (left, right) = (
        left.expect("first provisioning"),
        right.expect("second provisioning"),
    );
    assert_eq!(left, right);
    let kms = aws_sdk_kms::Client::new(&sdk);
    let described = kms
        .describe_key()
        .key_id(&names.key_alias)
        .send()
        .await
        .expect("alias resolves");
    assert_eq!(
        described.key_metadata().and_then(|metadata| metadata.arn()),
        Some(left.key_arn.as_str())
    );
}

#[tokio::test]
async fn key_alias_resolves_to_a_rotating_symmetric_key_that_issues_data_keys() {
    // Given a provisioned stack
    let (names, provisioned) = provision_fresh_stack().await;
    let kms = aws_sdk_kms::Client::new(&sdk_config());

    // When the key is looked up by its alias
    let described = kms
        .describe_key()
        .key_id(&provisioned.key_id)
        .send()
        .await
        .expect("DescribeKey by alias");

    // Then it is the provisioned key, with the template's spec and rotation
    assert_eq!(provisioned.key_id, names.key_alias);
    let metadata = described.key_metadata().expect("key metadata");
    assert_eq!(metadata.arn(), Some(provisioned.key_arn.as_str()));
    assert_eq!(metadata.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(metadata.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&provisioned.key_arn)
        .send()
        .await
        .expect("GetKeyRotationStatus");
    assert!(rotation.key_rotation_enabled());

    // And the alias works as KMS_KEY_ID for the envelope cipher's GenerateDataKey
    let data_key = kms
        .generate_data_key()
        .key_id(&provisioned.key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("tenantId", "demo")
        .send()
        .await
        .expect("GenerateDataKey with the alias");
    assert_eq!(
        data_key.plaintext().map(|blob| blob.as_ref().len()),
        Some(32)
    );
}

#[tokio::test]
async fn payloads_bucket_is_kms_encrypted_with_the_stack_key_private_and_expires_after_14_days() {
    // Given the template's bucket definition
    let expected = template_definitions()
        .expect("template parses")
        .payloads_bucket;
    let expected_rule = &expected.lifecycle_rules[0];

    // When a fresh stack is provisioned
    let (names, provisioned) = provision_fresh_stack().await;

    // Then the bucket exists under the stack's name
    assert_eq!(provisioned.payload_bucket, names.payload_bucket);
    let s3 = s3_client(&sdk_config());
    s3.head_bucket()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("the bucket exists");

    // And new objects are SSE-KMS with the provisioned secrets key, through a bucket key
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("GetBucketEncryption");
    let rules = encryption
        .server_side_encryption_configuration()
        .expect("encryption configuration")
        .rules();
    assert_eq!(rules.len(), 1);
    let default = rules[0]
        .apply_server_side_encryption_by_default()
        .expect("default encryption");
    assert_eq!(default.sse_algorithm(), &ServerSideEncryption::AwsKms);
    assert_eq!(
        default.kms_master_key_id(),
        Some(provisioned.key_arn.as_str())
    );
    assert_eq!(rules[0].bucket_key_enabled(), Some(true));

    // And objects expire with the webhook logs (14 days)
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("GetBucketLifecycleConfiguration");
    let [rule] = lifecycle.rules() else {
        panic!("one lifecycle rule: {:?}", lifecycle.rules());
    };
    assert_eq!(rule.id(), Some(expected_rule.id.as_str()));
    assert_eq!(rule.status(), &ExpirationStatus::Enabled);
    assert_eq!(rule.expiration().and_then(|expiry| expiry.days()), Some(14));
    assert_eq!(
        rule.abort_incomplete_multipart_upload()
            .and_then(|abort| abort.days_after_initiation()),
        Some(1)
    );

    // And public access is blocked four ways, with ACLs disabled
    let block = s3
        .get_public_access_block()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("GetPublicAccessBlock");
    let block = block
        .public_access_block_configuration()
        .expect("public access block");
    assert_eq!(
        [
            block.block_public_acls(),
            block.block_public_policy(),
            block.ignore_public_acls(),
            block.restrict_public_buckets(),
        ],
        [Some(true); 4]
    );
    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("GetBucketOwnershipControls");
    let ownership: Vec<&ObjectOwnership> = ownership
        .ownership_controls()
        .map(|controls| {
            controls
                .rules()
                .iter()
                .map(|rule| rule.object_ownership())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ownership, vec![&ObjectOwnership::BucketOwnerEnforced]);
}

#[tokio::test]
async fn provisioning_brings_a_drifted_bucket_back_to_the_template() {
    // Given a provisioned stack whose bucket lost its encryption and lifecycle by hand
    let (names, provisioned) = provision_fresh_stack().await;
    let s3 = s3_client(&sdk_config());
    s3.delete_bucket_encryption()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("DeleteBucketEncryption");
    s3.delete_bucket_lifecycle()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("DeleteBucketLifecycle");

    // When the stack is provisioned again
    let again = provision(&sdk_config(), &names)
        .await
        .expect("provisioning succeeds");

    // Then the same bucket has the template's encryption and lifecycle again
    assert_eq!(again.payload_bucket, provisioned.payload_bucket);
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("GetBucketEncryption");
    let algorithm = encryption
        .server_side_encryption_configuration()
        .and_then(|configuration| configuration.rules().first())
        .and_then(|rule| rule.apply_server_side_encryption_by_default())
        .map(|default| default.sse_algorithm().clone());
    assert_eq!(algorithm, Some(ServerSideEncryption::AwsKms));
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&provisioned.payload_bucket)
        .send()
        .await
        .expect("GetBucketLifecycleConfiguration");
    let days: Vec<Option<i32>> = lifecycle
        .rules()
        .iter()
        .map(|rule| rule.expiration().and_then(|expiry| expiry.days()))
        .collect();
    assert_eq!(days, vec![Some(14)]);
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default()
}

#[tokio::test]
async fn queues_have_the_template_attributes_and_redrive_to_their_dead_letter_queues() {
    // Given the template's queue definitions
    let definitions = template_definitions().expect("template parses");

    // When a fresh stack is provisioned
    let (_, provisioned) = provision_fresh_stack().await;

    // Then each queue carries every attribute the template sets
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    let queues = [
        (
            "SyncQueue",
            &provisioned.sync_queue_url,
            Some(&provisioned.sync_dead_letter_queue_url),
        ),
        (
            "SyncDeadLetterQueue",
            &provisioned.sync_dead_letter_queue_url,
            None,
        ),
        (
            "DispatchQueue",
            &provisioned.dispatch_queue_url,
            Some(&provisioned.dispatch_dead_letter_queue_url),
        ),
        (
            "DispatchDeadLetterQueue",
            &provisioned.dispatch_dead_letter_queue_url,
            None,
        ),
    ];
    for (logical_id, url, dead_letter_url) in queues {
        let definition = definitions
            .queue(logical_id)
            .expect("queue in the template");
        let attributes = queue_attributes(&sqs, url).await;
        for (name, value) in &definition.attributes {
            let actual = attributes.get(&QueueAttributeName::from(name.as_str()));
            assert_eq!(actual, Some(value), "{logical_id} {name}");
        }
        assert_eq!(
            attributes
                .get(&QueueAttributeName::ReceiveMessageWaitTimeSeconds)
                .map(String::as_str),
            Some("20")
        );

        // And the main queues redrive to their own dead-letter queue after the template's receive count
        match (dead_letter_url, &definition.redrive) {
            (Some(dead_letter_url), Some(redrive)) => {
                let dead_letter = queue_attributes(&sqs, dead_letter_url).await;
                let policy: serde_json::Value = serde_json::from_str(
                    attributes
                        .get(&QueueAttributeName::RedrivePolicy)
                        .expect("redrive policy"),
                )
                .expect("redrive policy is JSON");
                assert_eq!(
                    policy["deadLetterTargetArn"].as_str(),
                    dead_letter
                        .get(&QueueAttributeName::QueueArn)
                        .map(String::as_str),
                    "{logical_id}"
                );
                let max_receive_count = match &policy["maxReceiveCount"] {
                    serde_json::Value::String(count) => count.parse::<u32>().ok(),
                    count => count.as_u64().and_then(|count| u32::try_from(count).ok()),
                };
                assert_eq!(max_receive_count, Some(redrive.max_receive_count));
                assert_eq!(redrive.max_receive_count, 5);
                assert_eq!(
                    dead_letter
                        .get(&QueueAttributeName::MessageRetentionPeriod)
                        .map(String::as_str),
                    Some("1209600")
                );
            }
            (None, None) => {
                assert!(
                    !attributes.contains_key(&QueueAttributeName::RedrivePolicy),
                    "{logical_id}"
                );
            }
            _ => panic!("{logical_id}: the template and the test disagree on which queues redrive"),
        }
    }
}

#[tokio::test]
async fn a_message_received_too_often_moves_to_the_dead_letter_queue() {
    // Given a provisioned sync queue and a message on it
    let (_, provisioned) = provision_fresh_stack().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    sqs.send_message()
        .queue_url(&provisioned.sync_queue_url)
        .message_body("poison")
        .send()
        .await
        .expect("SendMessage");

    // When a consumer receives it maxReceiveCount (5) times without deleting it
    for attempt in 1..=5 {
        let received = sqs
            .receive_message()
            .queue_url(&provisioned.sync_queue_url)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("ReceiveMessage");
        assert_eq!(received.messages().len(), 1, "receive {attempt}");
    }
    let after_limit = sqs
        .receive_message()
        .queue_url(&provisioned.sync_queue_url)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("ReceiveMessage");

    // Then it is no longer delivered from the queue but waits in the dead-letter queue
    assert!(after_limit.messages().is_empty());
    let parked = sqs
        .receive_message()
        .queue_url(&provisioned.sync_dead_letter_queue_url)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("ReceiveMessage on the DLQ");
    assert_eq!(
        parked.messages().first().and_then(|message| message.body()),
        Some("poison")
    );
}

#[tokio::test]
async fn provisioning_brings_a_drifted_queue_back_to_the_template() {
    // Given a provisioned stack whose sync queue was changed by hand
    let (names, provisioned) = provision_fresh_stack().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    sqs.set_queue_attributes()
        .queue_url(&provisioned.sync_queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .expect("SetQueueAttributes");

    // When the stack is provisioned again
    provision(&sdk_config(), &names)
        .await
        .expect("provisioning succeeds");

    // Then the queue has the template's visibility timeout again
    let expected = template_definitions().expect("template parses");
    let expected = &expected.queue("SyncQueue").expect("SyncQueue").attributes["VisibilityTimeout"];
    let attributes = queue_attributes(&sqs, &provisioned.sync_queue_url).await;
    assert_eq!(
        attributes.get(&QueueAttributeName::VisibilityTimeout),
        Some(expected)
    );
}

#[test]
fn http_routes_are_the_integrations_routes_with_only_health_openapi_callback_and_receiver_public() {
    let routes = http_routes().expect("template routes");
    // Connect, callback (public: the single-use state proves the caller), refresh, OAuth apps.
    let oauth = |method: &str, path: &str, public: bool| HttpRoute {
        method: method.into(),
        path: path.into(),
        function: "OAuthFunction".into(),
        public,
    };
    // The public receiver is the inbound-webhook function's.
    let inbound = |method: &str| HttpRoute {
        method: method.into(),
        path: "/api/webhooks/tenant/{tenantId}/{webhookId}".into(),
        function: "InboundWebhookFunction".into(),
        public: true,
    };

    let route = |method: &str, path: &str, public: bool| HttpRoute {
        method: method.into(),
        path: path.into(),
        function: "IntegrationsFunction".into(),
        public,
    };
    assert_eq!(
        routes,
        vec![
            route("GET", "/api/health", true),
            route("HEAD", "/api/health", true),
            route("GET", "/api/openapi.json", true),
            route("GET", "/api/providers", false),
            route("GET", "/api/providers/{slug}", false),
            route("POST", "/api/integrations", false),
            route("GET", "/api/integrations", false),
            route("GET", "/api/integrations/{id}", false),
            route("PATCH", "/api/integrations/{id}", false),
            route("DELETE", "/api/integrations/{id}", false),
            route("GET", "/api/integrations/{id}/status", false),
            route("GET", "/api/integrations/{id}/logs", false),
            route("GET", "/api/integrations/{id}/records/{entity}", false),
            route("POST", "/api/integrations/{id}/test", false),
            route("POST", "/api/integrations/{id}/sync", false),
            route("POST", "/api/integrations/{id}/actions/{action}", false),
            route("ANY", "/api/integrations/{id}/proxy/{path+}", false),
            route("GET", "/api/event-types", false),
            route("POST", "/api/webhooks/incoming", false),
            route("GET", "/api/webhooks/incoming", false),
            route("GET", "/api/webhooks/incoming/{id}", false),
            route("PATCH", "/api/webhooks/incoming/{id}", false),
            route("DELETE", "/api/webhooks/incoming/{id}", false),
            route("POST", "/api/webhooks/outgoing", false),
            route("GET", "/api/webhooks/outgoing", false),
            route("GET", "/api/webhooks/outgoing/{id}", false),
            route("PATCH", "/api/webhooks/outgoing/{id}", false),
            route("DELETE", "/api/webhooks/outgoing/{id}", false),
            route("POST", "/api/webhooks/{id}/rotate-secret", false),
            route("POST", "/api/webhooks/{id}/test", false),
            route("GET", "/api/webhooks/{id}/logs", false),
            route("GET", "/api/webhook-logs/{logId}", false),
            route("POST", "/api/webhook-logs/{logId}/retry", false),
            route("POST", "/api/webhooks/outgoing/{id}/recover", false),
            route("ANY", "/api/{proxy+}", false),
            oauth("PUT", "/api/providers/{slug}/oauth-app", false),
            oauth("GET", "/api/providers/{slug}/oauth-app", false),
            oauth("GET", "/api/integrations/connect/{provider}", false),
            oauth("GET", "/api/integrations/callback/{provider}", true),
            oauth("POST", "/api/integrations/{id}/refresh", false),
            inbound("POST"),
            inbound("GET"),
        ]
    );
}

async fn create_table_by_hand(table: &str, range_key: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition as Attribute, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = |name: &str| {
        Attribute::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let element = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("key element")
    };
    aws_sdk_dynamodb::Client::new(&sdk_config())
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute(range_key))
        .key_schema(element("pk", KeyType::Hash))
        .key_schema(element(range_key, KeyType::Range))
        .send()
        .await
        .expect("CreateTable");
}

#[tokio::test]
async fn an_existing_table_without_the_indexes_gains_them() {
    // Given a table with the template's key but created before the sync-due and token-expiry
    // indexes existed
    let names = StackNames::with_prefix(&unique_name("provision-old-table"));
    create_table_by_hand(&names.table, "sk").await;

    // When the stack is provisioned
    provision(&sdk_config(), &names)
        .await
        .expect("provisioning succeeds");

    // Then the table has the template's indexes
    let table = aws_sdk_dynamodb::Client::new(&sdk_config())
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("table description");
    let mut index_names: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|index| index.index_name())
        .collect();
    index_names.sort();
    assert_eq!(index_names, vec!["gsi1", "gsi2"]);
}

#[tokio::test]
async fn an_existing_table_with_another_key_is_refused_with_a_reason() {
    // Given a table of the same name whose sort key is not the template's
    let names = StackNames::with_prefix(&unique_name("provision-wrong-key"));
    create_table_by_hand(&names.table, "id").await;

    // When the stack is provisioned
    let error = provision(&sdk_config(), &names)
        .await
        .expect_err("a foreign table is not reused");

    // Then the error names the table and both key schemas
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "table {} already exists with key schema (pk HASH, id RANGE), but the template declares \
             (pk HASH, sk RANGE): delete the table (or reset moto) and provision again",
            names.table
        )
    );
}
