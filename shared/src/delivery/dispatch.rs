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

use std::time::Duration;

use tracing::{info, warn};

use super::{attempt_log, send_attempt, whole_seconds_at_least_one, EmitError};
use crate::http_client::{ClientBuildError, GuardOptions, GuardedHttpClient};
use crate::queue::{DeliveryJob, Job, Queues};
use crate::retry::{retry_delay, sqs_delay_until, RandomJitter};
use crate::services::Services;
use crate::store::{
    keys, Admission, AttemptRecord, AttemptState, AttemptStatus, Claim, DeliveryStatus, Store,
    MAX_CONSECUTIVE_EXHAUSTED,
};

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
        let Some(webhook) = self
            .store
            .get_outgoing_webhook(tenant, &job.webhook_id)
            .await?
        else {
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
        let more_allowed = attempt < delivery.max_attempts;
        let next_retry_at = (result.status == AttemptStatus::Failed
            && result.retryable
            && more_allowed)
            .then(|| {
                let wait = retry_delay(
                    webhook.retry_delay_seconds,
                    attempt,
                    result.retry_after,
                    RandomJitter,
                );
                crate::store::timestamp(
                    chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                )
            });
        let status = match (result.status, &next_retry_at) {
            (AttemptStatus::Success, _) => DeliveryStatus::Success,
            (AttemptStatus::Failed, Some(_)) => DeliveryStatus::Pending,
            (AttemptStatus::Failed, None) => DeliveryStatus::Failed,
        };
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

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&chrono::Utc))
}
