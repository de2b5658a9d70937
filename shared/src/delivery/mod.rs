//! Outgoing deliveries: emitting events to the tenant's webhooks, attempting them, and the state
//! machine the retry dispatcher runs for each delivery message.
//!
//! - [`emit`]: an event becomes one delivery per enabled outgoing webhook whose triggers match,
//!   written to the table and then queued (batched); any failure is the caller's error.
//! - [`Dispatcher::process`]: one delivery message (one attempt): wait for `notBefore`, take a
//!   start slot of the webhook's `rateLimit`, claim the attempt, send it, write the outcome and
//!   queue the next attempt.
//! - [`test_delivery`]: the synchronous `webhook.test` delivery of `POST /api/webhooks/{id}/test`.

pub mod attempt;
mod dispatch;

use std::time::Duration;

use crate::domain::DeliveryId;
use crate::events::Event;
use crate::http_client::GuardedHttpClient;
use crate::queue::{DeliveryJob, Job, QueueError, Queues};
use crate::store::{
    AttemptLog, AttemptRecord, AttemptStatus, Claim, DeliveryItem, DeliveryStatus,
    OutgoingWebhookItem, Store, StoreError,
};

pub use attempt::{send_attempt, signing_keys, AttemptResult};
pub use dispatch::{next_step, BatchCache, Dispatcher, Disposition};

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Emits `events`: one delivery per (event, enabled webhook of its tenant whose triggers match),
/// written, then queued. Returns the deliveries made.
pub async fn emit(
    store: &Store,
    queues: &Queues,
    events: &[Event],
) -> Result<Vec<DeliveryItem>, EmitError> {
    let mut deliveries = Vec::new();
    let mut start = 0;
    while start < events.len() {
        // One read of the webhooks per run of events of one tenant.
        let tenant = events[start].tenant();
        let end = events[start..]
            .iter()
            .position(|event| event.tenant() != tenant)
            .map_or(events.len(), |n| start + n);
        let webhooks = store.enabled_outgoing_webhooks(tenant).await?;
        deliveries.extend(emit_to(store, queues, &webhooks, &events[start..end]).await?);
        start = end;
    }
    Ok(deliveries)
}

/// Emits `events` to `webhooks`, the enabled outgoing webhooks of the events' tenant as the caller
/// read them (the retry dispatcher reads them once per batch).
pub async fn emit_to(
    store: &Store,
    queues: &Queues,
    webhooks: &[OutgoingWebhookItem],
    events: &[Event],
) -> Result<Vec<DeliveryItem>, EmitError> {
    let now = chrono::Utc::now();
    let deliveries: Vec<DeliveryItem> = events
        .iter()
        .flat_map(|event| {
            webhooks
                .iter()
                .filter(|webhook| {
                    webhook.tenant_id == *event.tenant()
                        && webhook.triggers.matches(event.event_type())
                })
                .map(move |webhook| DeliveryItem::new(webhook, event, now))
        })
        .collect();
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    store.create_deliveries(&deliveries).await?;
    let jobs: Vec<Job> = deliveries
        .iter()
        .map(|delivery| Job::Delivery(first_job(delivery, delivery.attempt + 1)))
        .collect();
    if let Err(error) = queues.send(&jobs).await {
        // Nothing may stay pending without a message: the deliveries become `failed` (retryable by
        // recover or the retry route). A message that did get through then finds its delivery
        // settled and sends nothing.
        for delivery in &deliveries {
            if let Err(store_error) = store
                .fail_unattempted(&delivery.tenant_id, &delivery.webhook_id, &delivery.id)
                .await
            {
                tracing::error!(delivery = %delivery.id, error = %store_error, "a delivery whose message was not queued stays pending");
            }
        }
        return Err(error.into());
    }
    Ok(deliveries)
}

/// The message of attempt `attempt` of `delivery`, due now.
pub fn first_job(delivery: &DeliveryItem, attempt: u32) -> DeliveryJob {
    DeliveryJob {
        tenant_id: delivery.tenant_id.clone(),
        delivery_id: delivery.id.clone(),
        webhook_id: delivery.webhook_id.clone(),
        event_id: delivery.event_id.clone(),
        attempt,
        not_before: None,
    }
}

/// Queues the next attempt of a delivery that was just made pending again (manual retry, recover).
/// Should the queue refuse it, the delivery is put back to `failed` so it stays retryable.
pub async fn requeue_reopened(
    store: &Store,
    queues: &Queues,
    delivery: &DeliveryItem,
) -> Result<(), EmitError> {
    let job = Job::Delivery(first_job(delivery, delivery.attempt + 1));
    if let Err(error) = queues.send(&[job]).await {
        store
            .fail_unattempted(&delivery.tenant_id, &delivery.webhook_id, &delivery.id)
            .await?;
        return Err(error.into());
    }
    Ok(())
}

/// What `POST /api/webhooks/{id}/test` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TestDelivery {
    pub delivery_id: DeliveryId,
    pub result: AttemptResult,
}

/// One synchronous, signed delivery of a `webhook.test` event to `webhook` (enabled or not): a
/// delivery of one attempt, logged like any other, not counted in the webhook's stats and never
/// disabling it.
pub async fn test_delivery(
    store: &Store,
    http: &GuardedHttpClient,
    webhook: &OutgoingWebhookItem,
) -> Result<TestDelivery, StoreError> {
    let event = Event::webhook_test(&webhook.tenant_id, &webhook.id, webhook.name.as_str());
    let mut delivery = DeliveryItem::new(webhook, &event, chrono::Utc::now());
    delivery.max_attempts = 1;
    store
        .create_deliveries(std::slice::from_ref(&delivery))
        .await?;
    let claimed = store
        .claim_attempt(
            &webhook.tenant_id,
            &webhook.id,
            &delivery.id,
            1,
            webhook.timeout_seconds,
        )
        .await?;
    if !matches!(claimed, Claim::Claimed(_)) {
        return Err(StoreError::Corrupt(
            "a new test delivery could not be claimed".into(),
        ));
    }
    let result = send_attempt(store, http, webhook, &delivery.id, &delivery.event).await?;
    let status = match result.status {
        AttemptStatus::Success => DeliveryStatus::Success,
        AttemptStatus::Failed => DeliveryStatus::Failed,
    };
    let record = AttemptRecord {
        log: attempt_log(&delivery, 1, 1, &result, None),
        status,
        count_in_stats: false,
    };
    store.record_attempt(&webhook.tenant_id, &record).await?;
    Ok(TestDelivery {
        delivery_id: delivery.id,
        result,
    })
}

/// The log entry of attempt `attempt` of `delivery`.
pub fn attempt_log(
    delivery: &DeliveryItem,
    attempt: u32,
    max_attempts: u32,
    result: &AttemptResult,
    next_retry_at: Option<String>,
) -> AttemptLog {
    AttemptLog {
        id: crate::domain::LogId::generate(),
        delivery_id: delivery.id.clone(),
        webhook_id: delivery.webhook_id.clone(),
        event_id: delivery.event_id.clone(),
        event_type: delivery.event_type.clone(),
        attempt,
        max_attempts,
        status: result.status,
        next_retry_at,
        duration_ms: result.duration_ms(),
        timestamp: crate::store::timestamp(chrono::Utc::now()),
        error_message: result.error_message.clone(),
        request: result.request.clone(),
        response: result.response.clone(),
    }
}

/// A wait as whole SQS seconds, at least one (a rate-limit wait is sub-second more often than not).
fn whole_seconds_at_least_one(wait: Duration) -> Duration {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(seconds.max(1))
}
