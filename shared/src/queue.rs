//! The SQS queues, and the only code that talks to SQS. Messages are typed: one enum of job kinds,
//! each on its queue, in a versioned JSON envelope (`{"v": 1, "kind": "...", ...}`) so a consumer
//! can refuse a message from a newer producer instead of misreading it.
//!
//! Sends are batched (SendMessageBatch, at most 10 entries per request); entries SQS refuses for a
//! reason on its side are retried once, and what still fails is returned as an error: a caller is
//! never told "sent" for a message that was not.

use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use crate::domain::{
    DeliveryId, EventId, IncomingWebhookId, IntegrationId, JobId, OutgoingWebhookId, TenantId,
};

/// The envelope version this code writes and reads.
pub const MESSAGE_VERSION: u32 = 1;
/// SQS: at most 10 entries per SendMessageBatch.
pub const MAX_BATCH: usize = 10;
/// SQS: `DelaySeconds` is at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// Which queue a job travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// Sync jobs, consumed by the sync runner.
    Sync,
    /// Outgoing deliveries, inbound processing and retries, consumed by the retry dispatcher.
    Dispatch,
}

/// Every kind of work handed from one function to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Sync one integration (scheduled, requested through the API, or pushed by a webhook).
    Sync(SyncJob),
    /// Deliver one event to one outgoing webhook.
    Delivery(DeliveryJob),
    /// Run the actions of one accepted incoming webhook event (all of them, or one being retried).
    Inbound(InboundJob),
}

impl Job {
    pub fn queue(&self) -> QueueName {
        match self {
            Job::Sync(_) => QueueName::Sync,
            Job::Delivery(_) | Job::Inbound(_) => QueueName::Dispatch,
        }
    }
}

/// What started a sync job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    Schedule,
    Api,
    Webhook,
    /// The previous invocation neared its deadline and handed the rest on.
    Continuation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJob {
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub job_id: JobId,
    pub trigger: SyncTrigger,
    /// Local entity names; empty = every enabled entity.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Ignore saved cursors and sync tokens.
    #[serde(default)]
    pub full: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryJob {
    pub tenant_id: TenantId,
    pub delivery_id: DeliveryId,
    pub webhook_id: OutgoingWebhookId,
    pub event_id: EventId,
    /// The attempt this message carries (1-based): a message SQS delivers twice finds it taken.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// RFC 3339: not to be attempted before (a wait longer than SQS's 15-minute delay rides on
    /// this, hop by hop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundJob {
    pub tenant_id: TenantId,
    pub webhook_id: IncomingWebhookId,
    pub event_id: EventId,
    /// The event item's dedupe key hash (its sort key).
    pub event_key: String,
    /// How many actions the event has (the first message runs them all).
    #[serde(default)]
    pub actions: u32,
    /// The one action (index in the webhook's `actions`) this message retries; absent = the first
    /// run of every action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<u32>,
    /// The attempt of `action` this message carries (1 for the first run).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// RFC 3339: not to be run before (see [`DeliveryJob::not_before`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

/// The wire form: the version beside the job's own fields.
#[derive(Serialize)]
struct Outgoing<'a> {
    v: u32,
    #[serde(flatten)]
    job: &'a Job,
}

#[derive(Deserialize)]
struct Incoming {
    v: u32,
    #[serde(flatten)]
    job: serde_json::Value,
}

/// The body of an SQS message carrying `job`.
pub fn encode(job: &Job) -> String {
    // Serialising these types cannot fail: every field is a string, number, bool or list of them.
    serde_json::to_string(&Outgoing {
        v: MESSAGE_VERSION,
        job,
    })
    .unwrap_or_default()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the message is not a job envelope: {0}")]
    Malformed(String),
    #[error("the message has envelope version {0}; this consumer reads version {MESSAGE_VERSION}")]
    UnsupportedVersion(u32),
}

/// The job in an SQS message body.
pub fn decode(body: &str) -> Result<Job, DecodeError> {
    let incoming: Incoming =
        serde_json::from_str(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if incoming.v != MESSAGE_VERSION {
        return Err(DecodeError::UnsupportedVersion(incoming.v));
    }
    serde_json::from_value(incoming.job).map_err(|e| DecodeError::Malformed(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Throttled or unreachable: the whole call may be retried.
    #[error("SQS is unavailable: {0}")]
    Unavailable(String),
    /// Some messages were not accepted (after one retry); `sent` were.
    #[error("SQS accepted {sent} of {total} messages: {detail}")]
    Partial {
        sent: usize,
        total: usize,
        detail: String,
    },
    #[error("SQS refused the request: {0}")]
    Failed(String),
}

/// The two queues of the deployment.
#[derive(Clone)]
pub struct Queues {
    sqs: aws_sdk_sqs::Client,
    sync_url: String,
    dispatch_url: String,
}

impl Queues {
    pub fn new(sqs: aws_sdk_sqs::Client, sync_url: String, dispatch_url: String) -> Queues {
        Queues {
            sqs,
            sync_url,
            dispatch_url,
        }
    }

    pub fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Sync => &self.sync_url,
            QueueName::Dispatch => &self.dispatch_url,
        }
    }

    /// Sends every job to its queue, in batches of at most ten.
    pub async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
        self.send_delayed(jobs, Duration::ZERO).await
    }

    /// Sends every job, each invisible for `delay` (capped at SQS's 15 minutes).
    pub async fn send_delayed(&self, jobs: &[Job], delay: Duration) -> Result<(), QueueError> {
        let delay_seconds = delay.min(MAX_DELAY).as_secs() as i32;
        for queue in [QueueName::Sync, QueueName::Dispatch] {
            let bodies: Vec<String> = jobs
                .iter()
                .filter(|job| job.queue() == queue)
                .map(encode)
                .collect();
            for chunk in bodies.chunks(MAX_BATCH) {
                self.send_batch(queue, chunk, delay_seconds).await?;
            }
        }
        Ok(())
    }

    async fn send_batch(
        &self,
        queue: QueueName,
        bodies: &[String],
        delay_seconds: i32,
    ) -> Result<(), QueueError> {
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        let mut last_detail = String::new();
        for _attempt in 0..2 {
            let entries = pending
                .iter()
                .map(|&index| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(&bodies[index])
                        .delay_seconds(delay_seconds)
                        .build()
                        .map_err(|e| QueueError::Failed(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(self.url(queue))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(classify)?;
            let failed = out.failed();
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(sender_fault) = failed.iter().find(|f| f.sender_fault()) {
                return Err(QueueError::Failed(format!(
                    "{}: {}",
                    sender_fault.code(),
                    sender_fault.message().unwrap_or("no message")
                )));
            }
            last_detail = failed
                .iter()
                .map(|f| f.code().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            pending = failed
                .iter()
                .filter_map(|f| f.id().parse::<usize>().ok())
                .collect();
        }
        Err(QueueError::Partial {
            sent: bodies.len() - pending.len(),
            total: bodies.len(),
            detail: last_detail,
        })
    }
}

fn classify<E, R>(error: aws_sdk_sqs::error::SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::SdkError;
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ThrottlingException" | "RequestThrottled" | "ServiceUnavailable" | "InternalError"
            )
        ),
        _ => false,
    };
    let detail = match error.code() {
        Some(code) => format!("{code}: {}", error.message().unwrap_or("no message")),
        None => DisplayErrorContext(&error).to_string(),
    };
    if retryable {
        QueueError::Unavailable(detail)
    } else {
        QueueError::Failed(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync_job() -> Job {
        Job::Sync(SyncJob {
            tenant_id: TenantId::parse("acme").expect("tenant"),
            integration_id: IntegrationId::generate(),
            job_id: JobId::generate(),
            trigger: SyncTrigger::Schedule,
            entities: vec!["meeting".into()],
            full: false,
        })
    }

    #[test]
    fn a_job_round_trips_through_its_versioned_envelope() {
        let job = sync_job();
        let body = encode(&job);
        let raw: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(raw["v"], 1);
        assert_eq!(raw["kind"], "sync");
        assert_eq!(raw["trigger"], "schedule");
        assert_eq!(decode(&body), Ok(job));
    }

    #[test]
    fn a_newer_envelope_or_a_foreign_body_is_refused() {
        let mut raw: serde_json::Value = serde_json::from_str(&encode(&sync_job())).expect("json");
        raw["v"] = 2.into();
        assert_eq!(
            decode(&raw.to_string()),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert!(matches!(decode("hello"), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(r#"{"v":1,"kind":"launch_rockets"}"#),
            Err(DecodeError::Malformed(_))
        ));
        raw["v"] = 1.into();
        raw["integrationId"] = "int_../../x".into();
        assert!(matches!(
            decode(&raw.to_string()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn jobs_know_their_queue() {
        assert_eq!(sync_job().queue(), QueueName::Sync);
        let delivery = Job::Delivery(DeliveryJob {
            tenant_id: TenantId::parse("acme").expect("tenant"),
            delivery_id: DeliveryId::generate(),
            webhook_id: OutgoingWebhookId::generate(),
            event_id: EventId::generate(),
            attempt: 1,
            not_before: None,
        });
        assert_eq!(delivery.queue(), QueueName::Dispatch);
    }
}
