//! Creating the table, KMS key + alias, payloads bucket and queues of `infra/template.yaml` in moto (or
//! any AWS endpoint), from the template's own definitions so that local and deployed resources cannot
//! drift.
//!
//! Every step is idempotent: what exists is reused and brought back to the template (queue attributes,
//! missing indexes, TTL, the bucket's encryption, public access block, ownership and lifecycle), what
//! is missing is created. Only the names come from the caller, because
//! CloudFormation names the deployed resources itself.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types as ddb;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types as s3;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::template::{
    template_definitions, BucketDefinition, IndexDefinition, KeyDefinition, KeyElement,
    QueueDefinition, TableDefinition, TemplateError, DISPATCH_DEAD_LETTER_QUEUE, DISPATCH_QUEUE,
    SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE,
};

/// How long a freshly created table may take to become ACTIVE (immediate in moto).
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Waiting period of a KMS key created by a provisioning run that lost the alias race.
const ORPHAN_KEY_DELETION_DAYS: i32 = 7;

/// The names the caller chooses for the template's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackNames {
    pub table: String,
    /// `alias/...`
    pub key_alias: String,
    pub sync_queue: String,
    pub sync_dead_letter_queue: String,
    pub dispatch_queue: String,
    pub dispatch_dead_letter_queue: String,
    /// A valid S3 bucket name (lower case, 3-63 characters).
    pub payload_bucket: String,
}

impl StackNames {
    /// The local naming scheme: `prefix` → table `prefix`, alias `alias/prefix-secrets`, queues
    /// `prefix-sync`, `prefix-sync-dlq`, `prefix-dispatch`, `prefix-dispatch-dlq`, bucket
    /// `prefix-payloads` (as a bucket name: see [`payload_bucket_name`]).
    pub fn with_prefix(prefix: &str) -> StackNames {
        StackNames {
            table: prefix.to_string(),
            key_alias: format!("alias/{prefix}-secrets"),
            sync_queue: format!("{prefix}-sync"),
            sync_dead_letter_queue: format!("{prefix}-sync-dlq"),
            dispatch_queue: format!("{prefix}-dispatch"),
            dispatch_dead_letter_queue: format!("{prefix}-dispatch-dlq"),
            payload_bucket: payload_bucket_name(prefix),
        }
    }

    /// The caller's name for a template queue.
    fn queue(&self, logical_id: &str) -> Option<&str> {
        match logical_id {
            SYNC_QUEUE => Some(&self.sync_queue),
            SYNC_DEAD_LETTER_QUEUE => Some(&self.sync_dead_letter_queue),
            DISPATCH_QUEUE => Some(&self.dispatch_queue),
            DISPATCH_DEAD_LETTER_QUEUE => Some(&self.dispatch_dead_letter_queue),
            _ => None,
        }
    }
}

/// S3 bucket names are 3-63 characters of `a-z 0-9 - .`, starting and ending with a letter or digit,
/// and share one namespace per account and region: `<prefix>-payloads` lower-cased, with any other
/// character (`_`, `.`, …) as `-`. A prefix too long for that keeps its first characters and a hash of
/// the whole prefix, so two long prefixes still get two buckets, and the same prefix always the
/// same one.
pub fn payload_bucket_name(prefix: &str) -> String {
    const SUFFIX: &str = "-payloads";
    const MAX: usize = 63;
    let mut stem: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    stem = stem.trim_matches('-').to_string();
    if stem.is_empty() {
        stem = "hub".to_string();
    }
    if stem.len() + SUFFIX.len() > MAX {
        let hash = format!("-{:08x}", fnv1a(prefix.as_bytes()) as u32);
        stem.truncate(MAX - SUFFIX.len() - hash.len());
        stem = format!("{}{hash}", stem.trim_end_matches('-'));
    }
    format!("{stem}{SUFFIX}")
}

/// FNV-1a (64-bit): stable across Rust releases, unlike `std`'s hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the functions' configuration needs (`TABLE_NAME`, `KMS_KEY_ID`, `*_QUEUE_URL`,
/// `PAYLOAD_BUCKET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub table_name: String,
    /// The alias name (`alias/...`), usable as `KMS_KEY_ID`.
    pub key_id: String,
    pub key_arn: String,
    pub sync_queue_url: String,
    pub sync_dead_letter_queue_url: String,
    pub dispatch_queue_url: String,
    pub dispatch_dead_letter_queue_url: String,
    pub payload_bucket: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{service} {operation} for {resource} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        resource: String,
        message: String,
    },
    #[error("{service} {operation} for {resource} answered without {field}")]
    IncompleteAnswer {
        service: &'static str,
        operation: &'static str,
        resource: String,
        field: &'static str,
    },
    #[error(
        "table {table} already exists with key schema ({found}), but the template declares ({expected}): \
         delete the table (or reset moto) and provision again"
    )]
    TableKeySchemaDiffers {
        table: String,
        found: String,
        expected: String,
    },
    #[error("the template declares queue {logical_id}, which StackNames has no name for")]
    UnnamedQueue { logical_id: String },
    #[error("the template declares no queue {logical_id}")]
    MissingQueue { logical_id: &'static str },
    #[error("queue {logical_id} redrives to {dead_letter_queue}, which is not a dead-letter queue of the template")]
    UnknownDeadLetterQueue {
        logical_id: String,
        dead_letter_queue: String,
    },
}

fn aws_error<E>(
    service: &'static str,
    operation: &'static str,
    resource: &str,
    error: E,
) -> ProvisionError
where
    E: std::error::Error,
{
    ProvisionError::Aws {
        service,
        operation,
        resource: resource.to_string(),
        message: DisplayErrorContext(error).to_string(),
    }
}

/// Creates (or reuses) the template's table, secrets key + alias, payloads bucket and four queues
/// under `names`.
pub async fn provision(sdk: &SdkConfig, names: &StackNames) -> Result<Provisioned, ProvisionError> {
    let definitions = template_definitions()?;
    for logical_id in [
        SYNC_QUEUE,
        SYNC_DEAD_LETTER_QUEUE,
        DISPATCH_QUEUE,
        DISPATCH_DEAD_LETTER_QUEUE,
    ] {
        if definitions.queue(logical_id).is_none() {
            return Err(ProvisionError::MissingQueue { logical_id });
        }
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let kms = aws_sdk_kms::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    // The functions' own S3 client (path-style addressing against moto).
    let s3 = hub_shared::payloads::s3_client(sdk);
    let key_and_bucket = async {
        let key_arn = provision_key(&kms, &names.key_alias, &definitions.secrets_key).await?;
        let region = sdk.region().map(|region| region.as_ref());
        provision_bucket(
            &s3,
            region,
            &names.payload_bucket,
            &definitions.payloads_bucket,
            &key_arn,
        )
        .await?;
        Ok(key_arn)
    };
    let (_, key_arn, queue_urls) = tokio::try_join!(
        provision_table(&dynamodb, &names.table, &definitions.table),
        key_and_bucket,
        provision_queues(&sqs, names, &definitions.queues),
    )?;
    let url = |logical_id: &'static str| {
        queue_urls
            .get(logical_id)
            .cloned()
            .ok_or(ProvisionError::MissingQueue { logical_id })
    };
    Ok(Provisioned {
        table_name: names.table.clone(),
        key_id: names.key_alias.clone(),
        key_arn,
        sync_queue_url: url(SYNC_QUEUE)?,
        sync_dead_letter_queue_url: url(SYNC_DEAD_LETTER_QUEUE)?,
        dispatch_queue_url: url(DISPATCH_QUEUE)?,
        dispatch_dead_letter_queue_url: url(DISPATCH_DEAD_LETTER_QUEUE)?,
        payload_bucket: names.payload_bucket.clone(),
    })
}

async fn provision_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    definition: &TableDefinition,
) -> Result<(), ProvisionError> {
    let existing = match client.describe_table().table_name(table).send().await {
        Ok(output) => output.table,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(error) => return Err(aws_error("DynamoDB", "DescribeTable", table, error)),
    };
    match existing {
        Some(description) => add_missing_indexes(client, table, definition, &description).await?,
        None => create_table(client, table, definition).await?,
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(TABLE_ACTIVE_TIMEOUT)
        .await
        .map_err(|error| {
            aws_error(
                "DynamoDB",
                "DescribeTable (waiting for ACTIVE)",
                table,
                error,
            )
        })?;
    ensure_time_to_live(client, table, definition).await
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    definition: &TableDefinition,
) -> Result<(), ProvisionError> {
    let build_error = |error| {
        aws_error(
            "DynamoDB",
            "CreateTable (building the request)",
            table,
            error,
        )
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(ddb::BillingMode::from(definition.billing_mode.as_str()))
        .set_key_schema(Some(
            key_schema(&definition.key_schema).map_err(build_error)?,
        ));
    for attribute in &definition.attribute_definitions {
        request = request.attribute_definitions(
            ddb::AttributeDefinition::builder()
                .attribute_name(&attribute.attribute_name)
                .attribute_type(ddb::ScalarAttributeType::from(
                    attribute.attribute_type.as_str(),
                ))
                .build()
                .map_err(build_error)?,
        );
    }
    for index in &definition.global_secondary_indexes {
        request =
            request.global_secondary_indexes(global_secondary_index(index).map_err(build_error)?);
    }
    match request.send().await {
        Ok(_) => {
            tracing::info!(table, "created DynamoDB table");
            Ok(())
        }
        // Another provisioning run created it meanwhile.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(aws_error("DynamoDB", "CreateTable", table, error)),
    }
}

/// Reuses an existing table when its primary key is the template's, creating any index the template
/// gained since (one per UpdateTable call, as DynamoDB requires).
async fn add_missing_indexes(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    definition: &TableDefinition,
    description: &ddb::TableDescription,
) -> Result<(), ProvisionError> {
    // Written as "pk HASH, sk RANGE" so the error reads at a glance.
    let found = description
        .key_schema()
        .iter()
        .map(|element| {
            format!(
                "{} {}",
                element.attribute_name(),
                element.key_type().as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let expected = definition
        .key_schema
        .iter()
        .map(|element| format!("{} {}", element.attribute_name, element.key_type))
        .collect::<Vec<_>>()
        .join(", ");
    if found != expected {
        return Err(ProvisionError::TableKeySchemaDiffers {
            table: table.to_string(),
            found,
            expected,
        });
    }
    let existing: Vec<&str> = description
        .global_secondary_indexes()
        .iter()
        .filter_map(|index| index.index_name())
        .collect();
    let build_error = |error| {
        aws_error(
            "DynamoDB",
            "UpdateTable (building the request)",
            table,
            error,
        )
    };
    for index in &definition.global_secondary_indexes {
        if existing.contains(&index.index_name.as_str()) {
            continue;
        }
        let mut request = client.update_table().table_name(table);
        for attribute in &definition.attribute_definitions {
            if index
                .key_schema
                .iter()
                .any(|key| key.attribute_name == attribute.attribute_name)
            {
                request = request.attribute_definitions(
                    ddb::AttributeDefinition::builder()
                        .attribute_name(&attribute.attribute_name)
                        .attribute_type(ddb::ScalarAttributeType::from(
                            attribute.attribute_type.as_str(),
                        ))
                        .build()
                        .map_err(build_error)?,
                );
            }
        }
        let create = ddb::CreateGlobalSecondaryIndexAction::builder()
            .index_name(&index.index_name)
            .set_key_schema(Some(key_schema(&index.key_schema).map_err(build_error)?))
            .projection(projection(index))
            .build()
            .map_err(build_error)?;
        request
            .global_secondary_index_updates(
                ddb::GlobalSecondaryIndexUpdate::builder()
                    .create(create)
                    .build(),
            )
            .send()
            .await
            .map_err(|error| aws_error("DynamoDB", "UpdateTable", table, error))?;
        tracing::info!(table, index = %index.index_name, "added global secondary index");
    }
    Ok(())
}

async fn ensure_time_to_live(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    definition: &TableDefinition,
) -> Result<(), ProvisionError> {
    let Some(attribute) = &definition.time_to_live_attribute else {
        return Ok(());
    };
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|error| aws_error("DynamoDB", "DescribeTimeToLive", table, error))?;
    if let Some(current) = current.time_to_live_description() {
        let on = matches!(
            current.time_to_live_status(),
            Some(ddb::TimeToLiveStatus::Enabled | ddb::TimeToLiveStatus::Enabling)
        );
        if on && current.attribute_name() == Some(attribute.as_str()) {
            return Ok(());
        }
    }
    let specification = ddb::TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(true)
        .build()
        .map_err(|error| {
            aws_error(
                "DynamoDB",
                "UpdateTimeToLive (building the request)",
                table,
                error,
            )
        })?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
        .map_err(|error| aws_error("DynamoDB", "UpdateTimeToLive", table, error))?;
    Ok(())
}

fn key_schema(
    elements: &[KeyElement],
) -> Result<Vec<ddb::KeySchemaElement>, aws_sdk_dynamodb::error::BuildError> {
    elements
        .iter()
        .map(|element| {
            ddb::KeySchemaElement::builder()
                .attribute_name(&element.attribute_name)
                .key_type(ddb::KeyType::from(element.key_type.as_str()))
                .build()
        })
        .collect()
}

fn projection(index: &IndexDefinition) -> ddb::Projection {
    ddb::Projection::builder()
        .projection_type(ddb::ProjectionType::from(index.projection_type.as_str()))
        .set_non_key_attributes(
            (!index.non_key_attributes.is_empty()).then(|| index.non_key_attributes.clone()),
        )
        .build()
}

fn global_secondary_index(
    index: &IndexDefinition,
) -> Result<ddb::GlobalSecondaryIndex, aws_sdk_dynamodb::error::BuildError> {
    ddb::GlobalSecondaryIndex::builder()
        .index_name(&index.index_name)
        .set_key_schema(Some(key_schema(&index.key_schema)?))
        .projection(projection(index))
        .build()
}

/// Resolves the alias to its key, or creates a key with the template's spec and points the alias at it.
/// Returns the key ARN.
async fn provision_key(
    client: &aws_sdk_kms::Client,
    alias: &str,
    definition: &KeyDefinition,
) -> Result<String, ProvisionError> {
    if let Some(arn) = key_behind_alias(client, alias).await? {
        ensure_key_rotation(client, alias, &arn, definition).await?;
        return Ok(arn);
    }
    let created = client
        .create_key()
        .description(format!(
            "{alias}: data keys for secret envelopes (local stack)"
        ))
        .set_key_spec(definition.key_spec.as_deref().map(KeySpec::from))
        .set_key_usage(definition.key_usage.as_deref().map(KeyUsageType::from))
        .send()
        .await
        .map_err(|error| aws_error("KMS", "CreateKey", alias, error))?;
    let arn = created
        .key_metadata()
        .and_then(|metadata| metadata.arn())
        .ok_or(ProvisionError::IncompleteAnswer {
            service: "KMS",
            operation: "CreateKey",
            resource: alias.to_string(),
            field: "KeyMetadata.Arn",
        })?
        .to_string();
    ensure_key_rotation(client, alias, &arn, definition).await?;
    match client
        .create_alias()
        .alias_name(alias)
        .target_key_id(&arn)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(alias, key = %arn, "created KMS key and alias");
            Ok(arn)
        }
        // Another provisioning run won the race: use its key and retire ours.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) =>
        {
            let winner =
                key_behind_alias(client, alias)
                    .await?
                    .ok_or(ProvisionError::IncompleteAnswer {
                        service: "KMS",
                        operation: "DescribeKey",
                        resource: alias.to_string(),
                        field: "the key of an alias CreateAlias reported as existing",
                    })?;
            if let Err(error) = client
                .schedule_key_deletion()
                .key_id(&arn)
                .pending_window_in_days(ORPHAN_KEY_DELETION_DAYS)
                .send()
                .await
            {
                tracing::warn!(key = %arn, error = %DisplayErrorContext(error), "could not retire an unused KMS key");
            }
            Ok(winner)
        }
        Err(error) => Err(aws_error("KMS", "CreateAlias", alias, error)),
    }
}

async fn key_behind_alias(
    client: &aws_sdk_kms::Client,
    alias: &str,
) -> Result<Option<String>, ProvisionError> {
    match client.describe_key().key_id(alias).send().await {
        Ok(output) => {
            let arn = output
                .key_metadata()
                .and_then(|metadata| metadata.arn())
                .ok_or(ProvisionError::IncompleteAnswer {
                    service: "KMS",
                    operation: "DescribeKey",
                    resource: alias.to_string(),
                    field: "KeyMetadata.Arn",
                })?;
            Ok(Some(arn.to_string()))
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(aws_error("KMS", "DescribeKey", alias, error)),
    }
}

async fn ensure_key_rotation(
    client: &aws_sdk_kms::Client,
    alias: &str,
    key_arn: &str,
    definition: &KeyDefinition,
) -> Result<(), ProvisionError> {
    if definition.enable_key_rotation {
        client
            .enable_key_rotation()
            .key_id(key_arn)
            .send()
            .await
            .map_err(|error| aws_error("KMS", "EnableKeyRotation", alias, error))?;
    }
    Ok(())
}

/// Creates the bucket unless it exists, then applies the template's default encryption (with the
/// provisioned key in place of the template's), public access block, ownership controls and
/// lifecycle rules. Each is a PUT that replaces the bucket's setting, so a drifted bucket comes back
/// to the template.
async fn provision_bucket(
    client: &aws_sdk_s3::Client,
    region: Option<&str>,
    bucket: &str,
    definition: &BucketDefinition,
    key_arn: &str,
) -> Result<(), ProvisionError> {
    ensure_bucket(client, region, bucket).await?;

    if let Some(encryption) = &definition.encryption {
        let mut default = s3::ServerSideEncryptionByDefault::builder().sse_algorithm(
            s3::ServerSideEncryption::from(encryption.sse_algorithm.as_str()),
        );
        if encryption.uses_secrets_key {
            default = default.kms_master_key_id(key_arn);
        }
        let rule = s3::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default.build().map_err(s3_error(
                "PutBucketEncryption (building the request)",
                bucket,
            ))?)
            .bucket_key_enabled(encryption.bucket_key_enabled)
            .build();
        let configuration = s3::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(s3_error(
                "PutBucketEncryption (building the request)",
                bucket,
            ))?;
        client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
            .await
            .map_err(s3_error("PutBucketEncryption", bucket))?;
    }

    if let Some(block) = definition.public_access_block {
        client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                s3::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(block.block_public_acls)
                    .block_public_policy(block.block_public_policy)
                    .ignore_public_acls(block.ignore_public_acls)
                    .restrict_public_buckets(block.restrict_public_buckets)
                    .build(),
            )
            .send()
            .await
            .map_err(s3_error("PutPublicAccessBlock", bucket))?;
    }

    if let Some(ownership) = &definition.object_ownership {
        let rule = s3::OwnershipControlsRule::builder()
            .object_ownership(s3::ObjectOwnership::from(ownership.as_str()))
            .build()
            .map_err(s3_error(
                "PutBucketOwnershipControls (building the request)",
                bucket,
            ))?;
        client
            .put_bucket_ownership_controls()
            .bucket(bucket)
            .ownership_controls(
                s3::OwnershipControls::builder()
                    .rules(rule)
                    .build()
                    .map_err(s3_error(
                        "PutBucketOwnershipControls (building the request)",
                        bucket,
                    ))?,
            )
            .send()
            .await
            .map_err(s3_error("PutBucketOwnershipControls", bucket))?;
    }

    if !definition.lifecycle_rules.is_empty() {
        let mut rules = Vec::new();
        for rule in &definition.lifecycle_rules {
            let days = |days: u32| i32::try_from(days).unwrap_or(i32::MAX);
            rules.push(
                s3::LifecycleRule::builder()
                    .id(&rule.id)
                    .status(if rule.enabled {
                        s3::ExpirationStatus::Enabled
                    } else {
                        s3::ExpirationStatus::Disabled
                    })
                    .filter(
                        s3::LifecycleRuleFilter::builder()
                            .prefix(&rule.prefix)
                            .build(),
                    )
                    .set_expiration(rule.expiration_in_days.map(|expiry| {
                        s3::LifecycleExpiration::builder()
                            .days(days(expiry))
                            .build()
                    }))
                    .set_abort_incomplete_multipart_upload(
                        rule.abort_incomplete_multipart_upload_days.map(|after| {
                            s3::AbortIncompleteMultipartUpload::builder()
                                .days_after_initiation(days(after))
                                .build()
                        }),
                    )
                    .build()
                    .map_err(s3_error(
                        "PutBucketLifecycleConfiguration (building the request)",
                        bucket,
                    ))?,
            );
        }
        client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                s3::BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
                    .map_err(s3_error(
                        "PutBucketLifecycleConfiguration (building the request)",
                        bucket,
                    ))?,
            )
            .send()
            .await
            .map_err(s3_error("PutBucketLifecycleConfiguration", bucket))?;
    }
    Ok(())
}

fn s3_error<'a, E: std::error::Error>(
    operation: &'static str,
    bucket: &'a str,
) -> impl FnOnce(E) -> ProvisionError + 'a {
    move |error| aws_error("S3", operation, bucket, error)
}

/// Reuses the bucket when this account can reach it, else creates it (outside us-east-1 S3 wants
/// the region as the location constraint).
async fn ensure_bucket(
    client: &aws_sdk_s3::Client,
    region: Option<&str>,
    bucket: &str,
) -> Result<(), ProvisionError> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(()),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(error) => return Err(aws_error("S3", "HeadBucket", bucket, error)),
    }
    let mut request = client.create_bucket().bucket(bucket);
    if let Some(region) = region.filter(|region| *region != "us-east-1") {
        request = request.create_bucket_configuration(
            s3::CreateBucketConfiguration::builder()
                .location_constraint(s3::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {
            tracing::info!(bucket, "created S3 bucket");
            Ok(())
        }
        // Another provisioning run created it meanwhile; "already exists" is also what a bucket of
        // another account gives, so it is reused only when this account can reach it.
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|head| aws_error("S3", "CreateBucket", bucket, head))
        }
        Err(error) => Err(aws_error("S3", "CreateBucket", bucket, error)),
    }
}

/// Creates the dead-letter queues first (their ARNs go into the redrive policies), then the queues
/// that redrive to them. Returns queue URLs by logical id.
async fn provision_queues(
    client: &aws_sdk_sqs::Client,
    names: &StackNames,
    definitions: &[QueueDefinition],
) -> Result<HashMap<String, String>, ProvisionError> {
    let mut urls = HashMap::new();
    let mut arns = HashMap::new();
    let (dead_letter, redriven): (Vec<&QueueDefinition>, Vec<&QueueDefinition>) = definitions
        .iter()
        .partition(|definition| definition.redrive.is_none());
    for definition in dead_letter.into_iter().chain(redriven) {
        let name =
            names
                .queue(&definition.logical_id)
                .ok_or_else(|| ProvisionError::UnnamedQueue {
                    logical_id: definition.logical_id.clone(),
                })?;
        let redrive_policy = match &definition.redrive {
            Some(redrive) => {
                let arn = arns.get(&redrive.dead_letter_queue).ok_or_else(|| {
                    ProvisionError::UnknownDeadLetterQueue {
                        logical_id: definition.logical_id.clone(),
                        dead_letter_queue: redrive.dead_letter_queue.clone(),
                    }
                })?;
                Some(
                    serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": redrive.max_receive_count}),
                )
            }
            None => None,
        };
        let (url, arn) =
            ensure_queue(client, name, queue_attributes(definition, redrive_policy)).await?;
        urls.insert(definition.logical_id.clone(), url);
        arns.insert(definition.logical_id.clone(), arn);
    }
    Ok(urls)
}

fn queue_attributes(
    definition: &QueueDefinition,
    redrive_policy: Option<serde_json::Value>,
) -> HashMap<QueueAttributeName, String> {
    let mut attributes: HashMap<QueueAttributeName, String> = definition
        .attributes
        .iter()
        .map(|(name, value)| (QueueAttributeName::from(name.as_str()), value.clone()))
        .collect();
    if let Some(policy) = redrive_policy {
        attributes.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    attributes
}

/// Creates the queue with `attributes`, or brings an existing one back to them. Returns (URL, ARN).
async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<(String, String), ProvisionError> {
    let url = match client.get_queue_url().queue_name(name).send().await {
        Ok(output) => Some(queue_url(output.queue_url(), "GetQueueUrl", name)?),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            None
        }
        Err(error) => return Err(aws_error("SQS", "GetQueueUrl", name, error)),
    };
    let url = match url {
        Some(url) => {
            client
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|error| aws_error("SQS", "SetQueueAttributes", name, error))?;
            url
        }
        None => {
            let created = client
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|error| aws_error("SQS", "CreateQueue", name, error))?;
            tracing::info!(queue = name, "created SQS queue");
            queue_url(created.queue_url(), "CreateQueue", name)?
        }
    };
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| aws_error("SQS", "GetQueueAttributes", name, error))?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or(ProvisionError::IncompleteAnswer {
            service: "SQS",
            operation: "GetQueueAttributes",
            resource: name.to_string(),
            field: "QueueArn",
        })?;
    Ok((url, arn))
}

fn queue_url(
    url: Option<&str>,
    operation: &'static str,
    name: &str,
) -> Result<String, ProvisionError> {
    url.map(str::to_string)
        .ok_or(ProvisionError::IncompleteAnswer {
            service: "SQS",
            operation,
            resource: name.to_string(),
            field: "QueueUrl",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_a_prefix_follow_the_local_naming_scheme() {
        let names = StackNames::with_prefix("integrations-hub");

        assert_eq!(
            names,
            StackNames {
                table: "integrations-hub".into(),
                key_alias: "alias/integrations-hub-secrets".into(),
                sync_queue: "integrations-hub-sync".into(),
                sync_dead_letter_queue: "integrations-hub-sync-dlq".into(),
                dispatch_queue: "integrations-hub-dispatch".into(),
                dispatch_dead_letter_queue: "integrations-hub-dispatch-dlq".into(),
                payload_bucket: "integrations-hub-payloads".into(),
            }
        );
    }

    #[test]
    fn bucket_names_are_lower_case_and_valid_for_any_prefix() {
        assert_eq!(payload_bucket_name("Hub_Test.1"), "hub-test-1-payloads");
        assert_eq!(payload_bucket_name("__"), "hub-payloads");

        let long = "provision-old-table-1234567-12-3b9aca00-with-more-words-to-be-too-long";
        let name = payload_bucket_name(long);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("provision-old-table-"), "{name}");
        assert!(name.ends_with("-payloads"));
        assert_eq!(name, payload_bucket_name(long), "stable");
        assert_ne!(name, payload_bucket_name(&format!("{long}x")), "distinct");
        for name in [name, payload_bucket_name("a"), payload_bucket_name("-x-")] {
            assert!((3..=63).contains(&name.len()), "{name}");
            assert!(name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
        }
    }
}
