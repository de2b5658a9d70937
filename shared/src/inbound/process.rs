//! The retry dispatcher's work on one inbound message: the actions of an accepted event.
//!
//! 1. `notBefore` in the future → sent again with the SQS delay that brings it closer; no attempt.
//! 2. The event item is read (gone or replaced → nothing to do). The first message runs every
//!    action; a retry message runs the one action it names.
//! 3. Each action attempt is claimed with one conditional write, so a message SQS delivers twice
//!    runs nothing twice; one another process holds comes back later.
//! 4. A failed attempt with attempts left queues the next one (backoff as for outgoing deliveries)
//!    before its state is written; exhausted or unrecoverable → `failed`.
//! 5. The write that settles the last action sees `pendingActions` reach 0; then one conditional
//!    write finalizes the event for exactly one process, which counts it in the webhook's stats,
//!    writes its receipt and emits `webhook.received`.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Value};
use tracing::{error, info, warn};
use url::Url;

use super::config::{Action, EntityActionConfig, ForwardConfig, TriggerSyncConfig};
use super::extract::extract_record;
use crate::delivery::{emit_to, BatchCache, Disposition, EmitError};
use crate::domain::{JobId, LogId, RemoteId};
use crate::events::{EntityName, Event, ReceiptStatus, RecordSource};
use crate::http_client::{GuardedHttpClient, OutgoingRequest, SendErrorKind};
use crate::payloads::{gunzip, PayloadStore};
use crate::queue::{InboundJob, Job, Queues, SyncJob, SyncTrigger};
use crate::retry::{retry_delay, sqs_delay_until, RandomJitter};
use crate::store::Store;
use crate::store::{
    timestamp, ActionClaim, ActionOutcome, ActionOutcomeWrite, ActionStatus, EventRef,
    InboundEvent, ReceiptLog, ReceiptOutcome, StoreError, StoredBody,
};
use crate::webhooks::sign::Signing;

/// Attempts of an action other than `forward` (whose config sets its own): store or queue faults
/// are what fails them, and those pass.
pub const INTERNAL_ACTION_ATTEMPTS: u32 = 5;
/// The first retry wait of an action other than `forward`.
pub const INTERNAL_ACTION_RETRY_DELAY_SECONDS: u32 = 30;
/// How long a forward may take.
pub const FORWARD_TIMEOUT_SECONDS: u32 = 15;
/// Bodies are at most 1 MiB; inflating one stops there (the gzip is the hub's own, but a bound costs
/// nothing).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of a forward target's answer is read.
const MAX_FORWARD_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the next attempt could not be queued: {0}")]
    Queue(String),
    #[error("the body could not be read: {0}")]
    Payload(String),
}

/// How one attempt of an action ended.
#[derive(Debug, Clone, PartialEq)]
enum Attempted {
    Done(Option<Value>),
    /// Another attempt may help (a store or queue fault, a target that answered 5xx …).
    Retryable(String, Option<Duration>),
    /// No retry mends it (no record id in the body, a target the hub refuses to call).
    Fatal(String),
}

/// What the retry dispatcher needs for inbound events.
#[derive(Clone)]
pub struct InboundProcessor {
    store: Store,
    queues: Queues,
    payloads: PayloadStore,
    http: GuardedHttpClient,
}

impl InboundProcessor {
    pub fn new(
        store: Store,
        queues: Queues,
        payloads: PayloadStore,
        http: GuardedHttpClient,
    ) -> InboundProcessor {
        InboundProcessor {
            store,
            queues,
            payloads,
            http,
        }
    }

    /// Works on one inbound message.
    pub async fn process(
        &self,
        job: InboundJob,
        cache: &BatchCache,
    ) -> Result<Disposition, ProcessError> {
        let now = Utc::now();
        if let Some(not_before) = job
            .not_before
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        {
            let not_before = not_before.with_timezone(&Utc);
            if not_before > now {
                let wait = sqs_delay_until(not_before, now);
                self.queues
                    .send_delayed(&[Job::Inbound(job)], seconds(wait.delay_seconds))
                    .await
                    .map_err(|e| ProcessError::Queue(e.to_string()))?;
                return Ok(Disposition::Done);
            }
        }
        let indices: Vec<usize> = match job.action {
            Some(index) => vec![index as usize],
            None => (0..job.actions as usize).collect(),
        };
        let mut body: Option<Bytes> = None;
        let mut disposition = Disposition::Done;
        let mut settled_last = indices.is_empty();
        for index in indices {
            // The claim answers with the event as stored: no read before it.
            let claim = self
                .store
                .claim_action(
                    EventRef {
                        tenant: &job.tenant_id,
                        webhook_id: &job.webhook_id,
                        key_hash: &job.event_key,
                        event_id: &job.event_id,
                    },
                    index,
                    job.attempt,
                    FORWARD_TIMEOUT_SECONDS,
                )
                .await?;
            let event = match claim {
                ActionClaim::Claimed(event) => event,
                ActionClaim::Taken(current) => {
                    settled_last |= current.pending_actions == 0 && !current.finalized;
                    continue;
                }
                ActionClaim::Busy => {
                    disposition = Disposition::RetryLater;
                    continue;
                }
                ActionClaim::Gone => return Ok(Disposition::Done),
            };
            let Some(action) = event.actions.get(index) else {
                warn!(event = %event.event_id, index, "a message names an action the event does not have");
                continue;
            };
            if body.is_none() {
                body = Some(self.load_body(&event).await?);
            }
            let raw = body.clone().unwrap_or_default();
            let attempted = self.run(&event, action, &raw, cache).await;
            let (max_attempts, delay_seconds) = limits(action);
            let write = match attempted {
                Attempted::Done(result) => ActionOutcomeWrite::Success(result),
                Attempted::Retryable(message, retry_after) if job.attempt < max_attempts => {
                    let wait = retry_delay(delay_seconds, job.attempt, retry_after, RandomJitter);
                    self.queue_retry(&job, index, wait).await?;
                    ActionOutcomeWrite::Retry(message)
                }
                Attempted::Retryable(message, _) | Attempted::Fatal(message) => {
                    ActionOutcomeWrite::Failed(message)
                }
            };
            let left = self
                .store
                .settle_action(
                    &job.tenant_id,
                    &job.webhook_id,
                    &job.event_key,
                    index,
                    job.attempt,
                    &write,
                )
                .await?;
            if left == Some(0) {
                settled_last = true;
            }
        }
        if settled_last {
            self.finalize(&job, cache).await?;
        }
        Ok(disposition)
    }

    /// Emits one event to its tenant's enabled outgoing webhooks, read once per batch.
    async fn emit(&self, cache: &BatchCache, event: Event) -> Result<(), EmitError> {
        let webhooks = cache.enabled_webhooks(&self.store, event.tenant()).await?;
        emit_to(&self.store, &self.queues, &webhooks, &[event]).await?;
        Ok(())
    }

    async fn queue_retry(
        &self,
        job: &InboundJob,
        index: usize,
        wait: Duration,
    ) -> Result<(), ProcessError> {
        let not_before = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        let next = InboundJob {
            action: Some(index as u32),
            attempt: job.attempt + 1,
            not_before: Some(timestamp(not_before)),
            ..job.clone()
        };
        let delay = seconds(sqs_delay_until(not_before, Utc::now()).delay_seconds);
        self.queues
            .send_delayed(&[Job::Inbound(next)], delay)
            .await
            .map_err(|e| ProcessError::Queue(e.to_string()))
    }

    async fn load_body(&self, event: &InboundEvent) -> Result<Bytes, ProcessError> {
        let gzipped = match &event.body {
            StoredBody::Inline(gzipped) => gzipped.clone(),
            StoredBody::Claim(key) => self
                .payloads
                .get(key)
                .await
                .map_err(|e| ProcessError::Payload(e.to_string()))?,
        };
        gunzip(&gzipped, MAX_BODY_BYTES)
            .map(Bytes::from)
            .map_err(|e| ProcessError::Payload(e.to_string()))
    }

    async fn run(
        &self,
        event: &InboundEvent,
        action: &Action,
        body: &Bytes,
        cache: &BatchCache,
    ) -> Attempted {
        match action {
            Action::CreateEntity(config) | Action::UpdateEntity(config) => {
                self.upsert(event, config, body, cache).await
            }
            Action::Forward(config) => self.forward(event, config, body, cache).await,
            Action::TriggerSync(config) => self.trigger_sync(event, config).await,
            Action::TriggerAutomation(config) => {
                let payload = payload_value(body);
                let automation = Event::automation_triggered(
                    &event.tenant,
                    &config.automation_id,
                    &event.webhook_id,
                    &event.event_id,
                    payload,
                );
                let id = automation.id().clone();
                match self.emit(cache, automation).await {
                    Ok(_) => Attempted::Done(Some(json!({"eventId": id}))),
                    Err(error) => Attempted::Retryable(error.to_string(), None),
                }
            }
        }
    }

    async fn upsert(
        &self,
        event: &InboundEvent,
        config: &EntityActionConfig,
        body: &Bytes,
        cache: &BatchCache,
    ) -> Attempted {
        let Some(integration) = &event.integration_id else {
            return Attempted::Fatal(
                "the webhook has no integrationId to store records under".into(),
            );
        };
        let Ok(entity) = EntityName::parse(&config.entity_type) else {
            return Attempted::Fatal(format!("`{}` is not an entity name", config.entity_type));
        };
        let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
            return Attempted::Fatal("the body is not JSON".into());
        };
        let record = match extract_record(config, &parsed) {
            Ok(record) => record,
            Err(error) => return Attempted::Fatal(error.to_string()),
        };
        let remote_id = match RemoteId::parse(&record.id) {
            Ok(id) => id,
            Err(error) => return Attempted::Fatal(format!("the record id: {error}")),
        };
        let source = RecordSource::Webhook {
            webhook_id: event.webhook_id.clone(),
            integration_id: Some(integration.clone()),
        };
        let upserted = self
            .store
            .upsert_record(
                &event.tenant,
                integration,
                &entity,
                &remote_id,
                record.data,
                source,
            )
            .await;
        let (change, stored) = match upserted {
            Ok(upsert) => (upsert.change(), upsert.into_record()),
            Err(error) => return Attempted::Retryable(error.to_string(), None),
        };
        if let Some(change) = change {
            let record_event = Event::record(&event.tenant, entity.clone(), change, &stored);
            if let Err(error) = self.emit(cache, record_event).await {
                // The record is stored; a retry would find it unchanged and emit nothing, so the
                // fault is logged (deliveries that were written are failed, and `recover` sends them).
                error!(event = %event.event_id, %error, "a record event could not be emitted");
            }
        }
        Attempted::Done(Some(json!({
            "entityType": entity.as_str(),
            "id": stored.id,
            "change": change.map(|c| c.as_str()).unwrap_or("unchanged"),
        })))
    }

    async fn forward(
        &self,
        event: &InboundEvent,
        config: &ForwardConfig,
        body: &Bytes,
        cache: &BatchCache,
    ) -> Attempted {
        let now = Utc::now();
        let keys = match cache
            .forward_keys(&self.store, &event.tenant, &event.webhook_id)
            .await
        {
            Ok(Some(Some(keys))) => keys,
            Ok(Some(None)) => return Attempted::Fatal("the webhook has no forward secret".into()),
            Ok(None) => return Attempted::Fatal("the webhook was deleted".into()),
            Err(error) => return Attempted::Retryable(error.to_string(), None),
        };
        let url = match Url::parse(&config.forward_url) {
            Ok(url) => url,
            Err(error) => return Attempted::Fatal(format!("forwardUrl is not valid: {error}")),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &config.forward_headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let content_type = event
            .request
            .content_type
            .as_deref()
            .and_then(|value| HeaderValue::from_str(value).ok())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        headers.insert(header::CONTENT_TYPE, content_type);
        match Signing::Standard.sign(&keys, event.event_id.as_str(), now.timestamp(), body) {
            Ok(signed) => {
                for (name, value) in signed {
                    headers.insert(name, value);
                }
            }
            Err(error) => return Attempted::Fatal(error.to_string()),
        }
        let mut request = OutgoingRequest::new(Method::POST, url)
            .body(body.clone())
            .timeout(Duration::from_secs(u64::from(FORWARD_TIMEOUT_SECONDS)))
            .max_response_bytes(MAX_FORWARD_RESPONSE_BYTES);
        request.headers = headers;
        match self.http.send(request).await {
            Ok(response) if response.status.is_success() => {
                Attempted::Done(Some(json!({"status": response.status.as_u16()})))
            }
            Ok(response) => Attempted::Retryable(
                format!("the forward target answered {}", response.status.as_u16()),
                crate::retry::retry_after(response.status, &response.headers, now),
            ),
            Err(error) => {
                let message = format!("{} ({})", error.kind, error.code());
                if matches!(error.kind, SendErrorKind::Rejected(_)) {
                    Attempted::Fatal(message)
                } else {
                    Attempted::Retryable(message, None)
                }
            }
        }
    }

    async fn trigger_sync(&self, event: &InboundEvent, config: &TriggerSyncConfig) -> Attempted {
        let Some(integration) = config
            .integration_id
            .clone()
            .or_else(|| event.integration_id.clone())
        else {
            return Attempted::Fatal("no integration to sync".into());
        };
        let job_id = JobId::generate();
        let job = Job::Sync(SyncJob {
            tenant_id: event.tenant.clone(),
            integration_id: integration.clone(),
            job_id: job_id.clone(),
            trigger: SyncTrigger::Webhook,
            entities: config.entities.clone(),
            full: false,
        });
        match self.queues.send(&[job]).await {
            Ok(()) => Attempted::Done(Some(json!({"jobId": job_id, "integrationId": integration}))),
            Err(error) => Attempted::Retryable(error.to_string(), None),
        }
    }

    /// Settles the event once: stats, receipt, `webhook.received`. Each is logged when it fails and
    /// not retried (the event is finalized; counting it twice would be worse).
    async fn finalize(&self, job: &InboundJob, cache: &BatchCache) -> Result<(), ProcessError> {
        let Some(event) = self
            .store
            .finalize_inbound_event(
                &job.tenant_id,
                &job.webhook_id,
                &job.event_key,
                &job.event_id,
            )
            .await?
        else {
            return Ok(());
        };
        let failed = event
            .states
            .iter()
            .any(|state| state.status == ActionStatus::Failed);
        if let Err(error) = self
            .store
            .record_receipt_stats(&event.tenant, &event.webhook_id, &event.received_at)
            .await
        {
            error!(event = %event.event_id, %error, "the webhook's receipt stats were not updated");
        }
        let receipt = receipt_of(&event, failed);
        if let Err(error) = self.store.put_receipt_log(&event.tenant, &receipt).await {
            error!(event = %event.event_id, %error, "the receipt log was not written");
        }
        let received = Event::webhook_received(
            &event.tenant,
            &event.webhook_id,
            &event.webhook_name,
            &event.event_id,
            if failed {
                ReceiptStatus::Failed
            } else {
                ReceiptStatus::Processed
            },
        );
        if let Err(error) = self.emit(cache, received).await {
            error!(event = %event.event_id, %error, "webhook.received could not be emitted");
        }
        info!(event = %event.event_id, webhook = %event.webhook_id, failed, "inbound event processed");
        Ok(())
    }
}

fn seconds(delay_seconds: i32) -> Duration {
    Duration::from_secs(delay_seconds.max(0) as u64)
}

/// `(max attempts, first retry delay)` of an action.
fn limits(action: &Action) -> (u32, u32) {
    match action {
        Action::Forward(config) => (
            config.retry_attempts.max(1),
            config.retry_delay_seconds.max(1),
        ),
        _ => (
            INTERNAL_ACTION_ATTEMPTS,
            INTERNAL_ACTION_RETRY_DELAY_SECONDS,
        ),
    }
}

/// The body as `automation.triggered` carries it: parsed when JSON, else the text.
fn payload_value(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn receipt_of(event: &InboundEvent, failed: bool) -> ReceiptLog {
    ReceiptLog {
        id: LogId::generate(),
        webhook_id: event.webhook_id.clone(),
        event_id: Some(event.event_id.clone()),
        status: if failed {
            ReceiptOutcome::Failed
        } else {
            ReceiptOutcome::Processed
        },
        error_code: None,
        error_message: None,
        received_at: event.received_at.clone(),
        completed_at: Some(timestamp(Utc::now())),
        request: event.request.clone(),
        actions: event
            .actions
            .iter()
            .zip(&event.states)
            .map(|(action, state)| ActionOutcome {
                r#type: action.type_name().to_string(),
                status: state.status.as_str().to_string(),
                attempts: state.attempt,
                error_message: state.error.clone(),
                result: state.result.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::config::AutomationConfig;

    #[test]
    fn forward_actions_retry_per_their_config_and_others_by_default() {
        let forward = Action::Forward(ForwardConfig {
            forward_url: "https://example.com".into(),
            forward_headers: Default::default(),
            retry_attempts: 2,
            retry_delay_seconds: 7,
        });
        assert_eq!(limits(&forward), (2, 7));
        let automation = Action::TriggerAutomation(AutomationConfig {
            automation_id: "a".into(),
        });
        assert_eq!(
            limits(&automation),
            (
                INTERNAL_ACTION_ATTEMPTS,
                INTERNAL_ACTION_RETRY_DELAY_SECONDS
            )
        );
    }

    #[test]
    fn payloads_are_json_when_they_parse_and_text_otherwise() {
        assert_eq!(payload_value(br#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(payload_value(b"Body=hi&From=x"), json!("Body=hi&From=x"));
    }
}
