//! The retry dispatcher's work on one delivery message (one attempt).
//!
//! 1. `notBefore` in the future → the message is sent again with the SQS delay that brings it
//!    closer (15 minutes at most per hop) and acknowledged: no attempt, no request to the target.
//! 2. The webhook is gone → acknowledged; disabled → the delivery ends `failed` unattempted.
//! 3. `rateLimit` set and no start slot free → sent again after the wait (whole seconds, at least
//!    one); not an attempt and not a failure.
//! 4. The attempt is claimed (one conditional write). A duplicate finds it taken and sends nothing;
//!    one whose attempt another process holds is reported failed so SQS brings it back after the
//!    visibility timeout (if that process died, its lease will have run out by then).
//! 5. Sent, then outcome + log (+ stats when final) in one transaction; a failure with attempts
//!    left queues the next attempt with `notBefore` = now + the backoff. A 410 disables the webhook;
//!    a run of 50 exhausted deliveries does too.
//!
//! The message of attempt n is acknowledged only after attempt n+1 is queued; a redelivered
//! message of an attempt that is done and pending re-queues the next one (receivers dedupe on
//! `webhook-id`, and a second message of one attempt is refused by the claim).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::OnceCell;

use tracing::{info, warn};

use super::AttemptResult;
use super::{attempt_log, send_attempt, whole_seconds_at_least_one, EmitError};
use crate::domain::{IncomingWebhookId, OutgoingWebhookId, TenantId};
use crate::http_client::{ClientBuildError, GuardOptions, GuardedHttpClient};
use crate::queue::{DeliveryJob, Job, Queues};
use crate::retry::{retry_delay, sqs_delay_until, Jitter, RandomJitter};
use crate::services::Services;
use crate::store::{
    keys, Admission, AttemptRecord, AttemptState, AttemptStatus, Claim, DeliveryStatus,
    OutgoingWebhookItem, Store, StoreError, MAX_CONSECUTIVE_EXHAUSTED,
};
use crate::webhooks::sign::SigningKeys;

type WebhookKey = (TenantId, OutgoingWebhookId);
/// One webhook's read: absent until done; `None` inside when the webhook does not exist.
type WebhookRead = OnceCell<Option<Arc<OutgoingWebhookItem>>>;

/// The webhooks one batch has read, each read once however many of its records name it: outgoing
/// webhooks by id (deliveries) and each tenant's enabled ones (the events inbound processing
/// emits).
#[derive(Default)]
pub struct BatchCache {
    webhooks: Mutex<HashMap<WebhookKey, Arc<WebhookRead>>>,
    enabled: Mutex<HashMap<TenantId, Arc<EnabledRead>>>,
    forward_keys: Mutex<HashMap<(TenantId, IncomingWebhookId), Arc<ForwardKeysRead>>>,
}

type EnabledRead = OnceCell<Arc<Vec<OutgoingWebhookItem>>>;
/// An incoming webhook's forward signing keys; `None` inside when the webhook does not exist,
/// `Some(None)` when it has no forward secret.
type ForwardKeysRead = OnceCell<Option<Option<Arc<SigningKeys>>>>;

impl BatchCache {
    /// The keys that sign an incoming webhook's forwards (read and opened once per batch): `None`
    /// when the webhook is gone, `Some(None)` when it has no forward secret.
    pub async fn forward_keys(
        &self,
        store: &Store,
        tenant: &TenantId,
        id: &IncomingWebhookId,
    ) -> Result<Option<Option<Arc<SigningKeys>>>, StoreError> {
        let cell = {
            let mut keys = self
                .forward_keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            keys.entry((tenant.clone(), id.clone()))
                .or_default()
                .clone()
        };
        cell.get_or_try_init(|| async {
            let Some(webhook) = store.get_incoming_webhook(tenant, id).await? else {
                return Ok(None);
            };
            let keys = store
                .forward_signing_keys(&webhook, chrono::Utc::now())
                .await?;
            Ok(Some(keys.map(Arc::new)))
        })
        .await
        .cloned()
    }

    /// The tenant's enabled outgoing webhooks, read once per batch.
    pub async fn enabled_webhooks(
        &self,
        store: &Store,
        tenant: &TenantId,
    ) -> Result<Arc<Vec<OutgoingWebhookItem>>, StoreError> {
        let cell = {
            let mut enabled = self.enabled.lock().unwrap_or_else(PoisonError::into_inner);
            enabled.entry(tenant.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            Ok(Arc::new(store.enabled_outgoing_webhooks(tenant).await?))
        })
        .await
        .cloned()
    }

    async fn webhook(
        &self,
        store: &Store,
        job: &DeliveryJob,
    ) -> Result<Option<Arc<OutgoingWebhookItem>>, StoreError> {
        let cell = {
            let mut webhooks = self.webhooks.lock().unwrap_or_else(PoisonError::into_inner);
            webhooks
                .entry((job.tenant_id.clone(), job.webhook_id.clone()))
                .or_default()
                .clone()
        };
        cell.get_or_try_init(|| async {
            Ok(store
                .get_outgoing_webhook(&job.tenant_id, &job.webhook_id)
                .await?
                .map(Arc::new))
        })
        .await
        .cloned()
    }
}

/// What to tell SQS about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it: the attempt is settled, handed on to a new message, or nothing is left to do.
    Done,
    /// Report it failed: SQS makes it visible again after the visibility timeout.
    RetryLater,
}

/// The dispatcher's shared parts; one per process.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    queues: Queues,
    http: GuardedHttpClient,
}

impl Dispatcher {
    pub fn new(services: &Services) -> Result<Dispatcher, ClientBuildError> {
        Ok(Dispatcher {
            store: services.store.clone(),
            queues: services.queues.clone(),
            http: GuardedHttpClient::new(GuardOptions::webhook_deliveries(
                services.config.allow_private_targets,
            ))?,
        })
    }

    pub fn http(&self) -> &GuardedHttpClient {
        &self.http
    }

    /// Works on one delivery message.
    pub async fn process(&self, job: DeliveryJob) -> Result<Disposition, EmitError> {
        self.process_in(job, &BatchCache::default()).await
    }

    /// Works on one delivery message of a batch: the records of one batch share one read of each
    /// webhook they name (a batch lives for one invocation, so no change is seen later than that).
    pub async fn process_in(
        &self,
        job: DeliveryJob,
        cache: &BatchCache,
    ) -> Result<Disposition, EmitError> {
        let now = chrono::Utc::now();
        if let Some(not_before) = job.not_before.as_deref().and_then(parse_time) {
            if not_before > now {
                let delay = sqs_delay_until(not_before, now);
                self.send(job, Duration::from_secs(delay.delay_seconds.max(0) as u64))
                    .await?;
                return Ok(Disposition::Done);
            }
        }
        let tenant = &job.tenant_id;
        let Some(webhook) = cache.webhook(&self.store, &job).await? else {
            info!(delivery = %job.delivery_id, "the webhook was deleted; the delivery is dropped");
            return Ok(Disposition::Done);
        };
        if !webhook.is_enabled {
            self.store
                .fail_unattempted(tenant, &webhook.id, &job.delivery_id)
                .await?;
            return Ok(Disposition::Done);
        }
        if let Some(limit) = webhook.rate_limit {
            let admission = self
                .store
                .take_spaced_token(
                    tenant,
                    keys::webhook_rate_bucket_sk(webhook.id.as_str()),
                    limit.requests,
                    limit.per_seconds,
                )
                .await?;
            if let Admission::Wait(wait) = admission {
                self.send(job, whole_seconds_at_least_one(wait)).await?;
                return Ok(Disposition::Done);
            }
        }
        let claim = self
            .store
            .claim_attempt(
                tenant,
                &webhook.id,
                &job.delivery_id,
                job.attempt,
                webhook.timeout_seconds,
            )
            .await?;
        let delivery = match claim {
            Claim::Claimed(delivery) => delivery,
            Claim::Busy => return Ok(Disposition::RetryLater),
            Claim::Gone => return Ok(Disposition::Done),
            Claim::Taken(current) => {
                // This attempt ran; if a retry is due, make sure its message exists.
                let waiting = current.status == DeliveryStatus::Pending
                    && current.attempt == job.attempt
                    && current.attempt_state == AttemptState::Idle;
                if let (true, Some(next_at)) = (waiting, current.next_retry_at.clone()) {
                    self.send_next(&job, &next_at).await?;
                }
                return Ok(Disposition::Done);
            }
        };

        let result = send_attempt(
            &self.store,
            &self.http,
            &webhook,
            &delivery.id,
            &delivery.event,
        )
        .await?;
        let attempt = job.attempt;
        let (status, next_retry_at) = next_step(
            &result,
            attempt,
            delivery.max_attempts,
            webhook.retry_delay_seconds,
            chrono::Utc::now(),
            RandomJitter,
        );
        let record = AttemptRecord {
            log: attempt_log(
                &delivery,
                attempt,
                delivery.max_attempts,
                &result,
                next_retry_at.clone(),
            ),
            status,
            count_in_stats: true,
        };
        if !self.store.record_attempt(tenant, &record).await? {
            // The lease ran out and another receive took this attempt over: it writes the outcome.
            return Ok(Disposition::Done);
        }
        if let Some(next_at) = &next_retry_at {
            self.send_next(&job, next_at).await?;
        }
        if result.gone {
            let reason = "the target answered 410 Gone";
            if self
                .store
                .disable_outgoing_webhook(tenant, &webhook.id, reason, false)
                .await?
            {
                warn!(webhook = %webhook.id, "{reason}: the webhook is disabled");
            }
        } else if status == DeliveryStatus::Failed {
            let reason = format!(
                "{MAX_CONSECUTIVE_EXHAUSTED} consecutive deliveries exhausted their attempts"
            );
            if self
                .store
                .disable_outgoing_webhook(tenant, &webhook.id, &reason, true)
                .await?
            {
                warn!(
                    webhook = %webhook.id,
                    notice = "outgoing_webhook.status_changed",
                    from = "enabled",
                    to = "disabled",
                    "{reason}: the webhook is disabled"
                );
            }
        }
        Ok(Disposition::Done)
    }

    /// Queues attempt `job.attempt + 1`, due at `next_at`.
    async fn send_next(&self, job: &DeliveryJob, next_at: &str) -> Result<(), EmitError> {
        let now = chrono::Utc::now();
        let delay = parse_time(next_at)
            .map(|at| sqs_delay_until(at, now).delay_seconds)
            .unwrap_or(0);
        let next = DeliveryJob {
            attempt: job.attempt + 1,
            not_before: Some(next_at.to_string()),
            ..job.clone()
        };
        self.send(next, Duration::from_secs(delay.max(0) as u64))
            .await
    }

    async fn send(&self, job: DeliveryJob, delay: Duration) -> Result<(), EmitError> {
        self.queues
            .send_delayed(&[Job::Delivery(job)], delay)
            .await?;
        Ok(())
    }
}

/// What follows an attempt: the delivery's new status and, when another attempt is due, when.
/// Success ends it; a failure that another attempt can help (not a 410, not a refused target) is
/// retried after the backoff while attempts remain; anything else ends it `failed`.
pub fn next_step(
    result: &AttemptResult,
    attempt: u32,
    max_attempts: u32,
    retry_delay_seconds: u32,
    now: chrono::DateTime<chrono::Utc>,
    jitter: impl Jitter,
) -> (DeliveryStatus, Option<String>) {
    match result.status {
        AttemptStatus::Success => (DeliveryStatus::Success, None),
        AttemptStatus::Failed if result.retryable && attempt < max_attempts => {
            let wait = retry_delay(retry_delay_seconds, attempt, result.retry_after, jitter);
            let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
            (DeliveryStatus::Pending, Some(crate::store::timestamp(at)))
        }
        AttemptStatus::Failed => (DeliveryStatus::Failed, None),
    }
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::retry::FixedJitter;
    use crate::store::LoggedRequest;

    fn result(status: AttemptStatus, retryable: bool, retry_after: Option<u64>) -> AttemptResult {
        AttemptResult {
            status,
            retryable,
            gone: false,
            retry_after: retry_after.map(Duration::from_secs),
            duration: Duration::from_millis(12),
            error_message: None,
            request: LoggedRequest {
                method: "POST".into(),
                url: "https://example.com/hooks".into(),
                headers: Default::default(),
                body: String::new(),
            },
            response: None,
        }
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        parse_time(text).expect("time")
    }

    #[test]
    fn a_success_ends_the_delivery() {
        let now = at("2026-12-01T10:00:00.000Z");
        let ok = result(AttemptStatus::Success, false, None);
        assert_eq!(
            next_step(&ok, 1, 3, 60, now, FixedJitter(0.5)),
            (DeliveryStatus::Success, None)
        );
    }

    #[test]
    fn a_failure_with_attempts_left_waits_the_doubling_backoff() {
        let now = at("2026-12-01T10:00:00.000Z");
        let failed = result(AttemptStatus::Failed, true, None);
        assert_eq!(
            next_step(&failed, 1, 3, 60, now, FixedJitter(0.5)),
            (
                DeliveryStatus::Pending,
                Some("2026-12-01T10:01:00.000Z".to_string())
            )
        );
        assert_eq!(
            next_step(&failed, 2, 3, 60, now, FixedJitter(0.5)).1,
            Some("2026-12-01T10:02:00.000Z".to_string())
        );
        // +20 % jitter at most
        assert_eq!(
            next_step(&failed, 2, 3, 60, now, FixedJitter(1.0)).1,
            Some("2026-12-01T10:02:24.000Z".to_string())
        );
    }

    #[test]
    fn retry_after_raises_the_wait_up_to_twice_the_backoff() {
        let now = at("2026-12-01T10:00:00.000Z");
        let asked_a_lot = result(AttemptStatus::Failed, true, Some(3_600));
        assert_eq!(
            next_step(&asked_a_lot, 1, 3, 60, now, FixedJitter(0.5)).1,
            Some("2026-12-01T10:02:00.000Z".to_string())
        );
        let asked_a_little = result(AttemptStatus::Failed, true, Some(90));
        assert_eq!(
            next_step(&asked_a_little, 1, 3, 60, now, FixedJitter(0.5)).1,
            Some("2026-12-01T10:01:30.000Z".to_string())
        );
    }

    #[test]
    fn the_last_attempt_or_a_hopeless_failure_ends_the_delivery_failed() {
        let now = at("2026-12-01T10:00:00.000Z");
        let failed = result(AttemptStatus::Failed, true, None);
        assert_eq!(
            next_step(&failed, 3, 3, 60, now, FixedJitter(0.5)),
            (DeliveryStatus::Failed, None)
        );
        let refused = result(AttemptStatus::Failed, false, None);
        assert_eq!(
            next_step(&refused, 1, 20, 60, now, FixedJitter(0.5)),
            (DeliveryStatus::Failed, None)
        );
    }
}
