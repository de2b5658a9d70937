//! The DynamoDB store: one table, the key scheme of [`keys`], optimistic versions, transactions for
//! uniqueness, TTL-aware reads and signed list cursors.

mod batch;
mod cursor;
mod deliveries;
mod idempotency;
mod inbound_events;
mod incoming_webhooks;
mod integrations;
pub mod keys;
mod logs;
mod oauth;
mod outgoing_webhooks;
mod query;
mod rate_limit;
mod receipts;
mod records;
mod sync_jobs;
mod sync_records;
mod versioned;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use rand::RngCore;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

pub use cursor::{CursorCodec, InvalidCursor};
pub use deliveries::{
    AttemptLog, AttemptRecord, AttemptState, AttemptStatus, Claim, DeliveryItem, DeliveryStatus,
    LoggedRequest, LoggedResponse, ReopenError, MAX_CONSECUTIVE_EXHAUSTED,
    WEBHOOK_LOG_RETENTION_DAYS,
};
pub use idempotency::{IdempotencyKey, IdempotencyState, StoredResult, IDEMPOTENCY_TTL_SECONDS};
pub use inbound_events::{
    Accepted, ActionClaim, ActionOutcomeWrite, ActionState, ActionStatus, EventRef, InboundEvent,
    NewInboundEvent, StoredBody, DEDUPE_WINDOW_DAYS,
};
pub use incoming_webhooks::{
    IncomingWebhookChanges, IncomingWebhookItem, NewIncomingWebhook, VerificationSecrets,
    VerificationSettings,
};
pub use integrations::{
    CheckOutcome, CreateIntegrationError, DueIntegration, IntegrationChanges, IntegrationFilter,
    IntegrationItem, NewIntegration, StatusTransition, UpdateIntegrationError,
};
pub use logs::{IntegrationLog, LogAction, LogFilter, LogStatus};
pub use oauth::{LeaseAttempt, NewOAuthState, OAuthAppItem, OAuthStateItem, TokenWrite};
pub use outgoing_webhooks::{
    DeliveryMethod, NewOutgoingWebhook, OutgoingWebhookChanges, OutgoingWebhookItem,
    SigningSecrets, UpdateWebhookError,
};
pub use query::Page;
pub use rate_limit::{Admission, SPACING_MARGIN};
pub use receipts::{
    ActionOutcome, ReceiptLog, ReceiptOutcome, ReceivedSnapshot, WebhookLogEntry, RECEIPT_LOG_TYPE,
};

pub use records::{record_hash, RecordQuery, Upsert};
pub use sync_jobs::{
    EntityCheckpoint, EntityRun, FinishedRun, QueueClaim, SyncJobHold, SyncJobState,
    SyncRunOutcome, QUEUED_LEASE, RUNNING_LEASE,
};
pub use sync_records::{SyncChange, SyncWrite, SyncedRecord, UnseenPage, BATCH_GET_MAX};

use crate::crypto::{EnvelopeCipher, SecretSlot};
use crate::domain::TenantId;

/// The tenant-less encryption context of the cursor-signing key: `#` cannot start a tenant id.
const SYSTEM_TENANT: &str = "#system";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled or briefly unreachable: the caller may retry.
    #[error("DynamoDB is unavailable for {operation}: {detail}")]
    Unavailable {
        operation: &'static str,
        detail: String,
    },
    #[error("DynamoDB {operation} failed: {detail}")]
    Failed {
        operation: &'static str,
        detail: String,
    },
    #[error("a stored item is not readable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// Error codes of DynamoDB that mean "try again", not "this request is wrong".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

pub(crate) fn aws_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> StoreError
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
        None => aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
    };
    if retryable {
        StoreError::Unavailable { operation, detail }
    } else {
        StoreError::Failed { operation, detail }
    }
}

/// The result of a conditional write, with a failed condition as `None`: the write's "not this
/// time" (another holder, a gone item), not an error. Other failures are store errors.
pub(crate) fn unless_condition_failed<T, E, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(SdkError::ServiceError(service))
            if service.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(error) => Err(aws_error(operation, error)),
    }
}

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A serde value as one DynamoDB attribute.
pub(crate) fn to_attribute<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn now_epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RFC 3339 UTC with milliseconds, the one timestamp format of the API.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    cipher: EnvelopeCipher,
    cursor_key: OnceCell<Zeroizing<Vec<u8>>>,
}

impl Store {
    /// Writes a new item (`attribute_not_exists(pk)`): the create of a resource whose id is fresh.
    pub(crate) async fn put_new<T: serde::Serialize>(&self, item: &T) -> Result<(), StoreError> {
        let attributes: Item =
            serde_dynamo::to_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.dynamo()
            .put_item()
            .table_name(self.table())
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| aws_error("PutItem", e))?;
        Ok(())
    }

    /// An `UpdateItem` of the tenant's integration `id`: its key only (each caller states its own
    /// condition).
    pub(crate) fn update_integration_item(
        &self,
        tenant: &TenantId,
        id: &crate::domain::IntegrationId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::integration_sk(id.as_str())))
    }

    /// One item of the tenant's partition (`TENANT#<t>` / `sk`), strongly consistent.
    pub(crate) async fn get_tenant_item(
        &self,
        tenant: &TenantId,
        sk: String,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        Ok(out.item)
    }

    pub fn new(
        dynamo: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        cipher: EnvelopeCipher,
    ) -> Store {
        Store {
            inner: Arc::new(Inner {
                dynamo,
                table: table.into(),
                cipher,
                cursor_key: OnceCell::new(),
            }),
        }
    }

    pub fn dynamo(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.dynamo
    }

    pub fn table(&self) -> &str {
        &self.inner.table
    }

    pub fn cipher(&self) -> &EnvelopeCipher {
        &self.inner.cipher
    }

    /// The key that signs list cursors: one per deployment, kept as an envelope in the table, created
    /// by whichever function needs it first (a conditional put settles races), loaded once per process.
    pub(crate) async fn cursor_key(&self) -> Result<&[u8], StoreError> {
        let key = self
            .inner
            .cursor_key
            .get_or_try_init(|| self.load_or_create_cursor_key())
            .await?;
        Ok(key.as_slice())
    }

    async fn load_or_create_cursor_key(&self) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let slot = SecretSlot {
            tenant_id: SYSTEM_TENANT,
            owner_id: "cursor-key",
            field: "secret",
        };
        if let Some(envelope) = self.read_cursor_key_envelope().await? {
            return Ok(self.cipher().open(slot, &envelope).await?);
        }
        let mut fresh = Zeroizing::new(vec![0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let envelope = self.cipher().seal(slot, &fresh).await?;
        let put = self
            .dynamo()
            .put_item()
            .table_name(self.table())
            .item(keys::PK, s(keys::SYSTEM_PK))
            .item(keys::SK, s(keys::CURSOR_KEY_SK))
            .item("type", s("cursor_key"))
            .item("envelope", AttributeValue::B(envelope.into()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(fresh),
            Err(error) if is_conditional_check_failure(&error) => {
                let envelope = self.read_cursor_key_envelope().await?.ok_or_else(|| {
                    StoreError::Corrupt("the cursor key vanished after a race".to_string())
                })?;
                Ok(self.cipher().open(slot, &envelope).await?)
            }
            Err(error) => Err(aws_error("PutItem", error)),
        }
    }

    async fn read_cursor_key_envelope(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::SYSTEM_PK))
            .key(keys::SK, s(keys::CURSOR_KEY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        match out.item.and_then(|mut item| item.remove("envelope")) {
            Some(AttributeValue::B(blob)) => Ok(Some(blob.into_inner())),
            Some(_) => Err(StoreError::Corrupt(
                "the cursor key item has no binary envelope".to_string(),
            )),
            None => Ok(None),
        }
    }
}

fn is_conditional_check_failure<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    matches!(
        error,
        SdkError::ServiceError(service) if service.err().is_conditional_check_failed_exception()
    )
}
