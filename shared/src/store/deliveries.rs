//! Outgoing deliveries and their attempt logs.
//!
//! - A **delivery** (`pk = TENANT#<t>#DLV#<webhookId>`, `sk = DLV#<deliveryId>`) is one event for
//!   one outgoing webhook: the envelope it carries, its state (`pending` → `success` | `failed`),
//!   the attempt it is on and how many it may make. It is written when the event is emitted, before
//!   its message is queued, so what a queue holds always has an item to settle.
//! - Each **attempt** is claimed with one conditional write (`attempt` n-1 idle → n in flight, or n
//!   in flight whose lease ran out): a message SQS delivers twice finds its attempt taken and sends
//!   nothing. Its log is written, then its outcome conditioned on the claim, then (when the
//!   outcome is final) the webhook's stats in one atomic update.
//! - An **attempt log** (`pk = TENANT#<t>#WHLOG#<webhookId>`, `sk = LOG#<logId>`, newest first)
//!   also carries `gsi1pk = WHLOG#<t>#<logId>` so `GET /api/webhook-logs/{logId}` finds it by id.
//!
//! Both expire 14 days after their last write (TTL on `expiresAt`; reads ignore expired items).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::query::{Page, PagedQuery};
use super::{aws_error, keys, n, now_epoch_seconds, s, timestamp, InvalidCursor, Item, Store};
use super::{OutgoingWebhookItem, StoreError, WebhookLogEntry};
use crate::domain::{DeliveryId, EventId, LogId, OutgoingWebhookId, TenantId};
use crate::events::Event;

/// Webhook logs and deliveries are kept this long after their last write.
pub const WEBHOOK_LOG_RETENTION_DAYS: i64 = 14;

/// The `type` of an attempt log item.
pub(crate) const ATTEMPT_LOG_TYPE: &str = "webhook_attempt_log";

/// How long past its timeout an in-flight attempt stays claimed before another receive of its
/// message may take it over (the first process having died mid-attempt).
const LEASE_MARGIN_SECONDS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Attempts are still to come (or one is in flight).
    Pending,
    Success,
    /// Every attempt failed (or the target answered 410, or the webhook was disabled); retryable.
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Success => "success",
            DeliveryStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    Idle,
    InFlight,
}

impl AttemptState {
    const fn as_str(self) -> &'static str {
        match self {
            AttemptState::Idle => "idle",
            AttemptState::InFlight => "in_flight",
        }
    }
}

/// One event on its way to one outgoing webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub webhook_id: OutgoingWebhookId,
    pub event_id: EventId,
    pub event_type: String,
    /// The envelope, as emitted.
    pub event: Value,
    pub status: DeliveryStatus,
    /// The last attempt started (0 before the first).
    pub attempt: u32,
    pub attempt_state: AttemptState,
    /// Epoch seconds until which an in-flight attempt belongs to the process that claimed it.
    #[serde(default)]
    pub lease_until: i64,
    pub max_attempts: u32,
    pub next_retry_at: Option<String>,
    pub last_log_id: Option<LogId>,
    pub created_at: String,
    pub updated_at: String,
    /// When the delivery reached its final outcome (`success` or `failed`).
    pub completed_at: Option<String>,
    #[serde(rename = "expiresAt")]
    pub expires_at: i64,
}

impl DeliveryItem {
    /// A delivery of `event` to `webhook`, with the webhook's `retryAttempts` as its budget.
    pub fn new(
        webhook: &OutgoingWebhookItem,
        event: &Event,
        now: chrono::DateTime<chrono::Utc>,
    ) -> DeliveryItem {
        let id = DeliveryId::generate();
        let at = timestamp(now);
        DeliveryItem {
            pk: keys::deliveries_pk(&webhook.tenant_id, webhook.id.as_str()),
            sk: keys::delivery_sk(id.as_str()),
            kind: "delivery".into(),
            id,
            tenant_id: webhook.tenant_id.clone(),
            webhook_id: webhook.id.clone(),
            event_id: event.id().clone(),
            event_type: event.event_type().to_string(),
            event: event.to_json(),
            status: DeliveryStatus::Pending,
            attempt: 0,
            attempt_state: AttemptState::Idle,
            lease_until: 0,
            max_attempts: webhook.retry_attempts.max(1),
            next_retry_at: None,
            last_log_id: None,
            created_at: at.clone(),
            updated_at: at,
            completed_at: None,
            expires_at: retention_end(now),
        }
    }

    fn from_item(item: Item) -> Result<DeliveryItem, StoreError> {
        serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("delivery item: {e}")))
    }

    fn to_item(&self) -> Result<Item, StoreError> {
        serde_dynamo::to_item(self).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

pub(crate) fn retention_end(now: chrono::DateTime<chrono::Utc>) -> i64 {
    (now + chrono::Duration::days(WEBHOOK_LOG_RETENTION_DAYS)).timestamp()
}

/// The request of one attempt, as logged (headers redacted, body truncated to 16 KiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// The response of one attempt, as logged; absent when the target never answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Success,
    Failed,
}

/// One attempt of one delivery: what `GET /api/webhooks/{id}/logs` lists (without `request` and
/// `response`) and `GET /api/webhook-logs/{logId}` returns whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptLog {
    pub id: LogId,
    pub delivery_id: DeliveryId,
    pub webhook_id: OutgoingWebhookId,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub status: AttemptStatus,
    /// When the next attempt is due; null when this one was the last.
    pub next_retry_at: Option<String>,
    pub duration_ms: u64,
    pub timestamp: String,
    pub error_message: Option<String>,
    pub request: LoggedRequest,
    pub response: Option<LoggedResponse>,
}

impl AttemptLog {
    /// The list form: every scalar field, without `request` and `response`.
    pub fn to_summary(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut value {
            fields.remove("request");
            fields.remove("response");
        }
        value
    }

    pub fn to_detail(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The attempt is this caller's; the item as it is now.
    Claimed(DeliveryItem),
    /// The attempt ran already (or a later one did, or the delivery is settled): nothing to send.
    Taken(DeliveryItem),
    /// Another process holds the attempt and its lease is still running.
    Busy,
    /// No such delivery (expired, or its webhook was deleted).
    Gone,
}

/// The outcome of one attempt, to write with its log.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub log: AttemptLog,
    /// `Pending` (another attempt follows at `next_retry_at`), `Success` or `Failed`.
    pub status: DeliveryStatus,
    /// Count the final outcome in the webhook's stats (`totalSent`, `totalFailed`, …); off for
    /// test deliveries.
    pub count_in_stats: bool,
}

/// Why a manual retry cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReopenError {
    #[error("the delivery already succeeded")]
    AlreadySucceeded,
    #[error("the delivery is still being attempted")]
    StillPending,
    #[error("no such delivery")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The reason the hub writes when it disables a webhook after this many exhausted deliveries.
pub const MAX_CONSECUTIVE_EXHAUSTED: u64 = 50;

impl Store {
    /// An `UpdateItem` of one delivery, keyed.
    fn update_delivery(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        id: &DeliveryId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.dynamo()
            .update_item()
            .table_name(self.table())
            .key(
                keys::PK,
                s(keys::deliveries_pk(tenant, webhook_id.as_str())),
            )
            .key(keys::SK, s(keys::delivery_sk(id.as_str())))
    }

    /// Writes new deliveries (25 per BatchWriteItem).
    pub async fn create_deliveries(&self, deliveries: &[DeliveryItem]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let put = PutRequest::builder()
                .set_item(Some(delivery.to_item()?))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(super::batch::BATCH_WRITE_MAX) {
            self.batch_write_all(chunk.to_vec()).await?;
        }
        Ok(())
    }

    pub async fn get_delivery(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(
                keys::PK,
                s(keys::deliveries_pk(tenant, webhook_id.as_str())),
            )
            .key(keys::SK, s(keys::delivery_sk(id.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        out.item.map(DeliveryItem::from_item).transpose()
    }

    /// Claims attempt `attempt` of the delivery for `timeout_seconds` (+ a margin).
    pub async fn claim_attempt(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        id: &DeliveryId,
        attempt: u32,
        timeout_seconds: u32,
    ) -> Result<Claim, StoreError> {
        let now = now_epoch_seconds();
        let result = self
            .update_delivery(tenant, webhook_id, id)
            .update_expression(
                "SET attempt = :n, attemptState = :inFlight, leaseUntil = :lease, updatedAt = :at",
            )
            .condition_expression(
                "#status = :pending AND ((attempt = :prev AND attemptState = :idle) \
                 OR (attempt = :n AND attemptState = :inFlight AND leaseUntil < :now))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":n", n(attempt))
            .expression_attribute_values(":prev", n(attempt.saturating_sub(1)))
            .expression_attribute_values(":inFlight", s(AttemptState::InFlight.as_str()))
            .expression_attribute_values(":idle", s(AttemptState::Idle.as_str()))
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(
                ":lease",
                n(now + i64::from(timeout_seconds) + LEASE_MARGIN_SECONDS),
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":at", s(timestamp(chrono::Utc::now())))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Claim::Claimed(DeliveryItem::from_item(
                out.attributes.unwrap_or_default(),
            )?)),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let current = match service.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
                    _ => None,
                };
                let Some(current) = current.filter(|item| !item.is_empty()) else {
                    return Ok(Claim::Gone);
                };
                let current = DeliveryItem::from_item(current)?;
                let in_flight_elsewhere = current.status == DeliveryStatus::Pending
                    && current.attempt == attempt
                    && current.attempt_state == AttemptState::InFlight;
                if in_flight_elsewhere {
                    Ok(Claim::Busy)
                } else {
                    Ok(Claim::Taken(current))
                }
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// Writes the log and the outcome of a claimed attempt (then the webhook's
    /// stats when the outcome is final and counted). Returns false when the claim was lost (the
    /// lease ran out and another receive took the attempt over): then only the log was written, a true
    /// record of a request that was sent.
    pub async fn record_attempt(
        &self,
        tenant: &TenantId,
        record: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        match self.write_attempt(tenant, record).await {
            Ok(()) => {}
            Err(WriteFailure::ClaimLost) => return Ok(false),
            Err(WriteFailure::Store(error)) => return Err(error),
        }
        if record.count_in_stats && record.status != DeliveryStatus::Pending {
            // One atomic update of its own: in a transaction, concurrent outcomes of one webhook's
            // deliveries would conflict on the webhook item (TransactionConflict).
            if let Err(error) = self
                .add_final_stats(tenant, &record.log, record.status)
                .await
            {
                // The outcome and its log are written; only the counters miss this delivery.
                tracing::error!(delivery = %record.log.delivery_id, %error, "the webhook's stats were not updated");
            }
        }
        Ok(true)
    }

    /// The log first (it records a request that was sent, whatever happens next), then the
    /// outcome, conditioned on the claim. Two single-item writes, not a transaction: moto copies
    /// the whole table for every TransactWriteItems (and fails under concurrent ones), and in AWS a
    /// transaction costs twice the write units.
    async fn write_attempt(
        &self,
        tenant: &TenantId,
        record: &AttemptRecord,
    ) -> Result<(), WriteFailure> {
        let log = &record.log;
        let now = chrono::Utc::now();
        let at = timestamp(now);
        let expires = retention_end(now);
        let mut log_item: Item =
            serde_dynamo::to_item(log).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        log_item.insert(
            keys::PK.into(),
            s(keys::webhook_logs_pk(tenant, log.webhook_id.as_str())),
        );
        log_item.insert(keys::SK.into(), s(keys::log_sk(log.id.as_str())));
        log_item.insert(
            keys::GSI1_PK.into(),
            s(keys::webhook_log_lookup_pk(tenant, log.id.as_str())),
        );
        log_item.insert(keys::GSI1_SK.into(), s(keys::WEBHOOK_LOG_LOOKUP_SK));
        log_item.insert("type".into(), s(ATTEMPT_LOG_TYPE));
        log_item.insert(keys::EXPIRES_AT.into(), n(expires));
        self.dynamo()
            .put_item()
            .table_name(self.table())
            .set_item(Some(log_item))
            .send()
            .await
            .map_err(|e| aws_error("PutItem", e))?;

        let mut set = vec![
            "attemptState = :idle",
            "#status = :status",
            "lastLogId = :log",
            "updatedAt = :at",
            "#expiresAt = :expires",
            "maxAttempts = :max",
            "nextRetryAt = :next",
        ];
        if record.status != DeliveryStatus::Pending {
            set.push("completedAt = :at");
        }
        let next = match &log.next_retry_at {
            Some(next) => s(next.clone()),
            None => AttributeValue::Null(true),
        };
        let result = self
            .update_delivery(tenant, &log.webhook_id, &log.delivery_id)
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("attempt = :n AND attemptState = :inFlight")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expiresAt", keys::EXPIRES_AT)
            .expression_attribute_values(":idle", s(AttemptState::Idle.as_str()))
            .expression_attribute_values(":inFlight", s(AttemptState::InFlight.as_str()))
            .expression_attribute_values(":status", s(record.status.as_str()))
            .expression_attribute_values(":log", s(log.id.as_str()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":expires", n(expires))
            .expression_attribute_values(":n", n(log.attempt))
            .expression_attribute_values(":max", n(log.max_attempts))
            .expression_attribute_values(":next", next)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Err(WriteFailure::ClaimLost)
            }
            Err(error) => Err(WriteFailure::Store(aws_error("UpdateItem", error))),
        }
    }

    /// The webhook's stats for a final outcome: `totalSent` or `totalFailed`, `lastSentAt`,
    /// `lastStatus`, and the run of exhausted deliveries (reset by a success). A webhook deleted
    /// meanwhile is left deleted (`attribute_exists`).
    async fn add_final_stats(
        &self,
        tenant: &TenantId,
        log: &AttemptLog,
        status: DeliveryStatus,
    ) -> Result<(), StoreError> {
        let expression = match status {
            DeliveryStatus::Success => {
                "ADD totalSent :one SET lastSentAt = :at, lastStatus = :status, consecutiveExhausted = :zero"
            }
            _ => "ADD totalFailed :one, consecutiveExhausted :one SET lastSentAt = :at, lastStatus = :status",
        };
        let mut update = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(
                keys::SK,
                s(keys::outgoing_webhook_sk(log.webhook_id.as_str())),
            )
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(log.timestamp.clone()))
            .expression_attribute_values(":status", s(status.as_str()));
        if status == DeliveryStatus::Success {
            update = update.expression_attribute_values(":zero", n(0));
        }
        applied(update.send().await).map(drop)
    }

    /// Settles a pending delivery as `failed` without an attempt (its webhook is disabled, or its
    /// reopening could not be queued); a delivery that is not pending and idle is left alone.
    pub async fn fail_unattempted(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        id: &DeliveryId,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let result = self
            .update_delivery(tenant, webhook_id, id)
            .update_expression(
                "SET #status = :failed, completedAt = :at, updatedAt = :at, nextRetryAt = :null",
            )
            .condition_expression("#status = :pending AND attemptState = :idle")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":idle", s(AttemptState::Idle.as_str()))
            .expression_attribute_values(":at", s(timestamp(now)))
            .expression_attribute_values(":null", AttributeValue::Null(true))
            .send()
            .await;
        applied(result).map(drop)
    }

    /// Makes a failed delivery pending again with a fresh budget of `retry_attempts` after its last
    /// attempt (a manual retry or a recover). Returns the delivery as it is now.
    pub async fn reopen_delivery(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        id: &DeliveryId,
        retry_attempts: u32,
    ) -> Result<DeliveryItem, ReopenError> {
        let now = chrono::Utc::now();
        let result = self
            .update_delivery(tenant, webhook_id, id)
            .update_expression(
                "SET #status = :pending, maxAttempts = attempt + :budget, updatedAt = :at, \
                 completedAt = :null, nextRetryAt = :null, #expiresAt = :expires",
            )
            .condition_expression("#status = :failed AND attemptState = :idle")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expiresAt", keys::EXPIRES_AT)
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
            .expression_attribute_values(":idle", s(AttemptState::Idle.as_str()))
            .expression_attribute_values(":budget", n(retry_attempts.max(1)))
            .expression_attribute_values(":at", s(timestamp(now)))
            .expression_attribute_values(":null", AttributeValue::Null(true))
            .expression_attribute_values(":expires", n(retention_end(now)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(DeliveryItem::from_item(out.attributes.unwrap_or_default())?),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let current = match service.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
                    _ => None,
                };
                match current.filter(|item| !item.is_empty()) {
                    None => Err(ReopenError::NotFound),
                    Some(item) => match DeliveryItem::from_item(item)?.status {
                        DeliveryStatus::Success => Err(ReopenError::AlreadySucceeded),
                        _ => Err(ReopenError::StillPending),
                    },
                }
            }
            Err(error) => Err(aws_error("UpdateItem", error).into()),
        }
    }

    /// The deliveries of `webhook_id` that ended `failed` with `completedAt` in `[since, until]`
    /// (RFC 3339 strings of the one timestamp format, so they compare as text).
    pub async fn failed_deliveries_between(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        since: &str,
        until: &str,
    ) -> Result<Vec<DeliveryItem>, StoreError> {
        let query = self
            .dynamo()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .filter_expression(
                "#status = :failed AND completedAt BETWEEN :since AND :until \
                 AND #expiresAt > :now",
            )
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expiresAt", keys::EXPIRES_AT)
            .expression_attribute_values(":pk", s(keys::deliveries_pk(tenant, webhook_id.as_str())))
            .expression_attribute_values(":prefix", s(keys::DELIVERY_SK_PREFIX))
            .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
            .expression_attribute_values(":since", s(since))
            .expression_attribute_values(":until", s(until))
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .consistent_read(true);
        self.query_all(query)
            .await?
            .into_iter()
            .map(DeliveryItem::from_item)
            .collect()
    }

    /// The attempts of one webhook's deliveries, newest first.
    pub async fn list_webhook_logs(
        &self,
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<AttemptLog>, InvalidCursor>, StoreError> {
        let mut query = PagedQuery::new(
            keys::webhook_logs_pk(tenant, webhook_id.as_str()),
            keys::LOG_SK_PREFIX,
            limit,
        );
        query.newest_first = true;
        query.ignore_expired = true;
        self.list_page(
            tenant,
            &format!("webhooks/{webhook_id}/logs"),
            cursor,
            query,
        )
        .await
    }

    /// One webhook log of the tenant, an attempt or a receipt, by id (`None` when absent or
    /// expired).
    pub async fn get_webhook_log(
        &self,
        tenant: &TenantId,
        id: &LogId,
    ) -> Result<Option<WebhookLogEntry>, StoreError> {
        let out = self
            .dynamo()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .filter_expression("attribute_not_exists(#exp) OR #exp > :now")
            .expression_attribute_names("#pk", keys::GSI1_PK)
            .expression_attribute_names("#sk", keys::GSI1_SK)
            .expression_attribute_names("#exp", keys::EXPIRES_AT)
            .expression_attribute_values(":pk", s(keys::webhook_log_lookup_pk(tenant, id.as_str())))
            .expression_attribute_values(":sk", s(keys::WEBHOOK_LOG_LOOKUP_SK))
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .send()
            .await
            .map_err(|e| aws_error("Query", e))?;
        out.items
            .and_then(|items| items.into_iter().next())
            .map(WebhookLogEntry::from_item)
            .transpose()
    }

    /// Disables the webhook because of what the hub saw (`reason`); with `only_after_exhausted`,
    /// only when its run of exhausted deliveries reached [`MAX_CONSECUTIVE_EXHAUSTED`]. Returns
    /// whether this call disabled it.
    pub async fn disable_outgoing_webhook(
        &self,
        tenant: &TenantId,
        id: &OutgoingWebhookId,
        reason: &str,
        only_after_exhausted: bool,
    ) -> Result<bool, StoreError> {
        let condition = if only_after_exhausted {
            "isEnabled = :yes AND consecutiveExhausted >= :max"
        } else {
            "isEnabled = :yes"
        };
        let mut update = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::outgoing_webhook_sk(id.as_str())))
            .update_expression(
                "SET isEnabled = :no, disabledReason = :reason, updatedAt = :at ADD version :one",
            )
            .condition_expression(condition)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":at", s(timestamp(chrono::Utc::now())))
            .expression_attribute_values(":one", n(1));
        if only_after_exhausted {
            update = update.expression_attribute_values(":max", n(MAX_CONSECUTIVE_EXHAUSTED));
        }
        applied(update.send().await)
    }
}

/// Whether a conditional `UpdateItem` applied: a failed condition is `false`, not an error.
fn applied<R: std::fmt::Debug>(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        SdkError<UpdateItemError, R>,
    >,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(service))
            if service.err().is_conditional_check_failed_exception() =>
        {
            Ok(false)
        }
        Err(error) => Err(aws_error("UpdateItem", error)),
    }
}

enum WriteFailure {
    ClaimLost,
    Store(StoreError),
}

impl From<StoreError> for WriteFailure {
    fn from(error: StoreError) -> Self {
        WriteFailure::Store(error)
    }
}
