//! The local stack's background workers: what EventBridge and Lambda's SQS event source mapping do in
//! AWS. moto stores schedules but never fires them and nothing polls its queues, so this module
//! ticks the scheduled consumers and long-polls the queues itself, handing the consumers the same
//! payloads AWS would (`EventBridgeEvent` of a `rate(...)` rule, `SqsEvent` batches) and honouring
//! `ReportBatchItemFailures` the way the event source mapping does.
//!
//! Consumers are the same functions the deployed `main.rs` hands to `lambda_runtime::run`: they take
//! a `LambdaEvent` whose `Context` has a request id, the invoked function's ARN and a deadline of
//! invocation start + the function's timeout (from `infra/template.yaml`). As in Lambda, an
//! invocation still running at its deadline is ended and counts as failed, so code that watches
//! `context.deadline` (stop, checkpoint, hand the rest back) runs locally as it runs deployed:
//!
//! ```ignore
//! let sync_runner = LambdaFunction::from_template("SyncRunnerFunction")?;
//! let workers = Workers::new()
//!     .schedule(sync_runner.clone(), interval, move |event| sync_runner::tick(state.clone(), event))
//!     .poll_queue(sync_runner, &sdk, &sync_queue_url, PollOptions::default(), consumer)
//!     .start()
//!     .await?;
//! // …
//! workers.stop().await?;
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

pub use aws_lambda_events::event::eventbridge::EventBridgeEvent;
pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::lambda::timed_out_message;
pub use crate::lambda::{Context, LambdaEvent, LambdaFunction, LOCAL_ACCOUNT_ID};
use crate::stack::LOCAL_REGION;

/// The variable `make run` reads the scheduler interval from.
pub const SCHEDULE_SECONDS_VARIABLE: &str = "LOCAL_SCHEDULE_SECONDS";
/// EventBridge's `rate(1 minute)`: the deployed schedule.
pub const DEFAULT_SCHEDULE_INTERVAL: Duration = Duration::from_secs(60);
/// SQS rejects a longer `WaitTimeSeconds`.
const MAX_WAIT_TIME_SECONDS: u8 = 20;
/// The event source mapping's default (and SQS's maximum) batch size.
const MAX_BATCH_SIZE: i32 = 10;
/// Pause after a failed SQS call so an unreachable moto is not hammered.
const RETRY_AFTER_SQS_ERROR: Duration = Duration::from_secs(1);

/// What a crashed invocation returns: the same type as `lambda_runtime::Error`, so a handler's own
/// error converts with `?` or `.into()`.
pub type InvocationError = Box<dyn std::error::Error + Send + Sync>;
/// One invocation of a consumer, running on its own task.
pub type Invocation<T> = Pin<Box<dyn Future<Output = Result<T, InvocationError>> + Send + 'static>>;

/// A function EventBridge would invoke on a schedule. Any
/// `Fn(LambdaEvent<EventBridgeEvent>) -> impl Future<Output = Result<T, E>>` is one (the shape
/// `lambda_runtime::service_fn` takes); its output is discarded, as EventBridge discards it.
pub trait ScheduledConsumer: Send + Sync + 'static {
    fn handle(&self, event: LambdaEvent<EventBridgeEvent>) -> Invocation<()>;
}

impl<F, Fut, T, E> ScheduledConsumer for F
where
    F: Fn(LambdaEvent<EventBridgeEvent>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    E: Into<InvocationError>,
{
    fn handle(&self, event: LambdaEvent<EventBridgeEvent>) -> Invocation<()> {
        let invocation = self(event);
        Box::pin(async move { invocation.await.map(|_| ()).map_err(Into::into) })
    }
}

/// A function an SQS event source mapping with `ReportBatchItemFailures` would invoke. Any
/// `Fn(LambdaEvent<SqsEvent>) -> impl Future<Output = Result<SqsBatchResponse, E>>` is one.
pub trait SqsConsumer: Send + Sync + 'static {
    fn handle(&self, event: LambdaEvent<SqsEvent>) -> Invocation<SqsBatchResponse>;
}

impl<F, Fut, E> SqsConsumer for F
where
    F: Fn(LambdaEvent<SqsEvent>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, E>> + Send + 'static,
    E: Into<InvocationError>,
{
    fn handle(&self, event: LambdaEvent<SqsEvent>) -> Invocation<SqsBatchResponse> {
        let invocation = self(event);
        Box::pin(async move { invocation.await.map_err(Into::into) })
    }
}

/// How a queue is long-polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOptions {
    wait_time_seconds: u8,
}

impl Default for PollOptions {
    /// 20 s long polls, as the event source mapping does.
    fn default() -> PollOptions {
        PollOptions {
            wait_time_seconds: MAX_WAIT_TIME_SECONDS,
        }
    }
}

impl PollOptions {
    /// `WaitTimeSeconds` of each ReceiveMessage, at most 20 (SQS's ceiling; larger values are
    /// lowered to it). Shorter waits make `stop` and tests quicker.
    pub fn wait_time_seconds(mut self, seconds: u8) -> PollOptions {
        self.wait_time_seconds = seconds.min(MAX_WAIT_TIME_SECONDS);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    #[error(
        "{SCHEDULE_SECONDS_VARIABLE} must be a whole number of seconds, at least 1; got {0:?}"
    )]
    InvalidScheduleSeconds(String),
    #[error("schedule {name} has a zero interval: it needs at least 1 s between ticks")]
    ZeroInterval { name: String },
    #[error("queue poller {name}: GetQueueAttributes (QueueArn) of {queue_url} failed: {message}")]
    QueueArn {
        name: String,
        queue_url: String,
        message: String,
    },
    #[error("worker {name} crashed: {reason}")]
    Crashed { name: String, reason: String },
}

/// Parses `LOCAL_SCHEDULE_SECONDS`: a whole number of seconds, at least 1.
pub fn parse_schedule_seconds(value: &str) -> Result<Duration, WorkersError> {
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds >= 1 => Ok(Duration::from_secs(seconds)),
        _ => Err(WorkersError::InvalidScheduleSeconds(value.to_string())),
    }
}

struct Schedule {
    function: LambdaFunction,
    interval: Duration,
    consumer: Arc<dyn ScheduledConsumer>,
}

struct QueuePoller {
    function: LambdaFunction,
    client: aws_sdk_sqs::Client,
    queue_url: String,
    options: PollOptions,
    consumer: Arc<dyn SqsConsumer>,
}

/// The workers to run, registered one line each, then started together.
#[derive(Default)]
pub struct Workers {
    schedules: Vec<Schedule>,
    queue_pollers: Vec<QueuePoller>,
}

impl Workers {
    pub fn new() -> Workers {
        Workers::default()
    }

    /// Invokes `consumer` as `function` every `interval` (first tick one interval after start, as a
    /// new rule fires) with the scheduled event of an EventBridge rule named after the function.
    /// Ticks do not overlap: a tick that comes due while the consumer still runs waits for it.
    pub fn schedule(
        mut self,
        function: LambdaFunction,
        interval: Duration,
        consumer: impl ScheduledConsumer,
    ) -> Workers {
        self.schedules.push(Schedule {
            function,
            interval,
            consumer: Arc::new(consumer),
        });
        self
    }

    /// Long-polls `queue_url` and invokes `consumer` as `function` with each batch (up to 10
    /// messages), deleting the messages the consumer did not report as failed. One batch at a time.
    pub fn poll_queue(
        mut self,
        function: LambdaFunction,
        sdk: &SdkConfig,
        queue_url: impl Into<String>,
        options: PollOptions,
        consumer: impl SqsConsumer,
    ) -> Workers {
        self.queue_pollers.push(QueuePoller {
            function,
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
            options,
            consumer: Arc::new(consumer),
        });
        self
    }

    /// Looks up each queue's ARN (the `eventSourceARN` of its records), then starts every worker.
    /// Nothing runs if a lookup fails.
    pub async fn start(self) -> Result<RunningWorkers, WorkersError> {
        if let Some(schedule) = self.schedules.iter().find(|s| s.interval.is_zero()) {
            return Err(WorkersError::ZeroInterval {
                name: schedule.function.name().to_string(),
            });
        }
        let mut pollers = Vec::with_capacity(self.queue_pollers.len());
        for poller in self.queue_pollers {
            let queue_arn = queue_arn(&poller).await?;
            pollers.push((poller, queue_arn));
        }

        let (shutdown, stopping) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut schedules = Vec::new();
        for schedule in self.schedules {
            let name = schedule.function.name().to_string();
            schedules.push(ScheduleSummary {
                name: name.clone(),
                interval: schedule.interval,
            });
            let span = tracing::info_span!("schedule", worker = %name);
            let task = tokio::spawn(run_schedule(schedule, stopping.clone()).instrument(span));
            tasks.push((name, task));
        }
        let mut queue_pollers = Vec::new();
        for (poller, queue_arn) in pollers {
            let name = poller.function.name().to_string();
            queue_pollers.push(QueuePollerSummary {
                name: name.clone(),
                queue_url: poller.queue_url.clone(),
                queue_arn: queue_arn.clone(),
            });
            let span = tracing::info_span!("queue_poller", worker = %name, queue = %queue_arn);
            let task = tokio::spawn(
                run_queue_poller(poller, queue_arn, stopping.clone()).instrument(span),
            );
            tasks.push((name, task));
        }
        Ok(RunningWorkers {
            shutdown,
            tasks,
            schedules,
            queue_pollers,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSummary {
    pub name: String,
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePollerSummary {
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
}

/// Started workers. Dropping this without [`RunningWorkers::stop`] also stops them, without waiting.
pub struct RunningWorkers {
    shutdown: watch::Sender<bool>,
    tasks: Vec<(String, JoinHandle<()>)>,
    schedules: Vec<ScheduleSummary>,
    queue_pollers: Vec<QueuePollerSummary>,
}

impl RunningWorkers {
    pub fn schedules(&self) -> &[ScheduleSummary] {
        &self.schedules
    }

    pub fn queue_pollers(&self) -> &[QueuePollerSummary] {
        &self.queue_pollers
    }

    /// Stops every worker: pending waits (a tick, a long poll) end at once, an in-flight invocation
    /// and its deletions finish first. A long poll cut short may leave messages SQS already handed
    /// out invisible until their visibility timeout, as after any consumer that stops.
    pub async fn stop(self) -> Result<(), WorkersError> {
        let _ = self.shutdown.send(true);
        let mut first_crash = None;
        for (name, task) in self.tasks {
            if let Err(join) = task.await {
                tracing::error!(worker = %name, error = %join, "worker crashed");
                first_crash.get_or_insert(WorkersError::Crashed {
                    name,
                    reason: join.to_string(),
                });
            }
        }
        first_crash.map_or(Ok(()), Err)
    }
}

/// Resolves when a stop is requested (or the handle is gone).
async fn stop_requested(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

async fn run_schedule(schedule: Schedule, mut stopping: watch::Receiver<bool>) {
    let rule_arn = format!(
        "arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:rule/{}",
        schedule.function.name()
    );
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + schedule.interval,
        schedule.interval,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop_requested(&mut stopping) => break,
            _ = ticks.tick() => {}
        }
        let event = match scheduled_event(&rule_arn, Utc::now()) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "could not build the scheduled event");
                continue;
            }
        };
        let id = event.id.clone().unwrap_or_default();
        let consumer = Arc::clone(&schedule.consumer);
        match invoke(&schedule.function, move |context| {
            consumer.handle(LambdaEvent::new(event, context))
        })
        .await
        {
            Ok(()) => tracing::info!(event_id = %id, "scheduled invocation succeeded"),
            // EventBridge's async invocation would retry; locally the next tick is the retry.
            Err(error) => tracing::error!(event_id = %id, %error, "scheduled invocation failed"),
        }
    }
}

/// The event EventBridge sends for a tick of the `rate(...)` rule `rule_arn`, parsed like the
/// deployed function parses it.
fn scheduled_event(
    rule_arn: &str,
    at: DateTime<Utc>,
) -> Result<EventBridgeEvent, serde_json::Error> {
    serde_json::from_value(json!({
        "version": "0",
        "id": hub_shared::ids::uuid_v4(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": LOCAL_REGION,
        "resources": [rule_arn],
        "detail": {}
    }))
}

/// Runs one invocation of `function` on its own task, as Lambda would: `start` gets the
/// invocation's context (deadline = now + the function's timeout); a panic counts as a crashed
/// invocation instead of taking the worker down, and an invocation still running at its deadline
/// is ended and fails with Lambda's "Task timed out" message.
async fn invoke<T: Send + 'static>(
    function: &LambdaFunction,
    start: impl FnOnce(Context) -> Invocation<T>,
) -> Result<T, InvocationError> {
    let context = function.invocation_context(SystemTime::now(), None);
    let request_id = context.request_id.clone();
    let mut task = tokio::spawn(start(context));
    let outcome = tokio::time::timeout(function.timeout(), &mut task).await;
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(format!("the invocation {request_id} panicked: {join}").into()),
        Err(_) => {
            task.abort();
            Err(format!("{request_id} {}", timed_out_message(function.timeout())).into())
        }
    }
}

async fn queue_arn(poller: &QueuePoller) -> Result<String, WorkersError> {
    let error = |message: String| WorkersError::QueueArn {
        name: poller.function.name().to_string(),
        queue_url: poller.queue_url.clone(),
        message,
    };
    poller
        .client
        .get_queue_attributes()
        .queue_url(&poller.queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| error(DisplayErrorContext(e).to_string()))?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| error("the answer has no QueueArn".to_string()))
}

async fn run_queue_poller(
    poller: QueuePoller,
    queue_arn: String,
    mut stopping: watch::Receiver<bool>,
) {
    // arn:aws:sqs:<region>:<account>:<name>
    let region = queue_arn
        .split(':')
        .nth(3)
        .filter(|region| !region.is_empty())
        .unwrap_or(LOCAL_REGION)
        .to_string();
    loop {
        let received = tokio::select! {
            biased;
            _ = stop_requested(&mut stopping) => break,
            received = poller
                .client
                .receive_message()
                .queue_url(&poller.queue_url)
                .max_number_of_messages(MAX_BATCH_SIZE)
                .wait_time_seconds(i32::from(poller.options.wait_time_seconds))
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send() => received,
        };
        match received {
            Ok(output) => {
                let messages = output.messages.unwrap_or_default();
                if !messages.is_empty() {
                    handle_batch(&poller, &queue_arn, &region, messages).await;
                }
            }
            Err(error) => {
                tracing::warn!(error = %DisplayErrorContext(error), "ReceiveMessage failed; retrying");
                tokio::select! {
                    biased;
                    _ = stop_requested(&mut stopping) => break,
                    _ = tokio::time::sleep(RETRY_AFTER_SQS_ERROR) => {}
                }
            }
        }
    }
}

/// A received message the consumer will see, with what deleting it takes.
#[derive(Debug, Clone, PartialEq)]
struct BatchRecord {
    message_id: String,
    receipt_handle: String,
    record: Value,
}

async fn handle_batch(poller: &QueuePoller, queue_arn: &str, region: &str, messages: Vec<Message>) {
    let records: Vec<BatchRecord> = messages
        .iter()
        .filter_map(|message| {
            let record = batch_record(message, queue_arn, region);
            if record.is_none() {
                tracing::warn!(
                    ?message,
                    "ReceiveMessage returned a message without id or receipt handle; skipped"
                );
            }
            record
        })
        .collect();
    if records.is_empty() {
        return;
    }
    let event: SqsEvent = match serde_json::from_value(json!({
        "Records": records.iter().map(|r| r.record.clone()).collect::<Vec<_>>()
    })) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, "could not build the SQS event; the batch stays on the queue");
            return;
        }
    };
    let consumer = Arc::clone(&poller.consumer);
    let invocation = invoke(&poller.function, move |context| {
        consumer.handle(LambdaEvent::new(event, context))
    });
    let response = match invocation.await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(messages = records.len(), %error, "SQS invocation failed; the whole batch stays on the queue");
            return;
        }
    };
    let to_delete = match acknowledged(&records, &response) {
        Ok(to_delete) => to_delete,
        Err(unknown) => {
            tracing::error!(
                messages = records.len(),
                item_identifier = %unknown,
                "batch item failure names no message of the batch; like Lambda, treating the whole batch as failed"
            );
            return;
        }
    };
    let failures = records.len() - to_delete.len();
    if !to_delete.is_empty() {
        delete_batch(poller, &to_delete).await;
    }
    tracing::info!(
        messages = records.len(),
        failures,
        deleted = to_delete.len(),
        "SQS batch handled"
    );
}

/// One record of an `SqsEvent`, field for field as the event source mapping writes it.
fn batch_record(message: &Message, queue_arn: &str, region: &str) -> Option<BatchRecord> {
    let message_id = message.message_id()?.to_string();
    let receipt_handle = message.receipt_handle()?.to_string();
    let attributes: Map<String, Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_string(), Value::String(value.clone())))
        .collect();
    let message_attributes: Map<String, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), message_attribute(value)))
        .collect();
    let mut record = json!({
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let (Some(md5), Some(fields)) = (message.md5_of_message_attributes(), record.as_object_mut())
    {
        fields.insert("md5OfMessageAttributes".to_string(), json!(md5));
    }
    Some(BatchRecord {
        message_id,
        receipt_handle,
        record,
    })
}

fn message_attribute(value: &MessageAttributeValue) -> Value {
    let base64 = |blob: &aws_sdk_sqs::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    let mut attribute = json!({
        "stringListValues": value.string_list_values(),
        "binaryListValues": value.binary_list_values().iter().map(base64).collect::<Vec<_>>(),
        "dataType": value.data_type(),
    });
    if let Some(fields) = attribute.as_object_mut() {
        if let Some(string) = value.string_value() {
            fields.insert("stringValue".to_string(), json!(string));
        }
        if let Some(binary) = value.binary_value() {
            fields.insert("binaryValue".to_string(), json!(base64(binary)));
        }
    }
    attribute
}

/// The records to delete: all but the reported failures. Like Lambda, a failure naming no message
/// of the batch (empty, unknown) fails the whole batch; it is returned as the error.
fn acknowledged<'a>(
    records: &'a [BatchRecord],
    response: &SqsBatchResponse,
) -> Result<Vec<&'a BatchRecord>, String> {
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    if let Some(unknown) = failed
        .iter()
        .find(|id| !records.iter().any(|record| record.message_id == **id))
    {
        return Err((*unknown).to_string());
    }
    Ok(records
        .iter()
        .filter(|record| !failed.contains(record.message_id.as_str()))
        .collect())
}

async fn delete_batch(poller: &QueuePoller, records: &[&BatchRecord]) {
    let mut entries = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        match DeleteMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .receipt_handle(&record.receipt_handle)
            .build()
        {
            Ok(entry) => entries.push(entry),
            Err(error) => {
                tracing::error!(message_id = %record.message_id, %error, "could not build a delete entry")
            }
        }
    }
    match poller
        .client
        .delete_message_batch()
        .queue_url(&poller.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(output) => {
            for failed in output.failed() {
                let message_id = failed
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| records.get(index))
                    .map(|record| record.message_id.as_str())
                    .unwrap_or_default();
                tracing::warn!(
                    message_id,
                    code = failed.code(),
                    reason = failed.message().unwrap_or_default(),
                    "could not delete a handled message; it will be delivered again"
                );
            }
        }
        Err(error) => tracing::warn!(
            error = %DisplayErrorContext(error),
            "DeleteMessageBatch failed; the handled messages will be delivered again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn record(message_id: &str) -> BatchRecord {
        BatchRecord {
            message_id: message_id.to_string(),
            receipt_handle: format!("handle-{message_id}"),
            record: json!({}),
        }
    }

    fn ids(records: &[&BatchRecord]) -> Vec<String> {
        records.iter().map(|r| r.message_id.clone()).collect()
    }

    #[test]
    fn schedule_seconds_must_be_a_whole_number_of_at_least_one() {
        assert_eq!(
            parse_schedule_seconds("60").ok(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_schedule_seconds(" 1 ").ok(),
            Some(Duration::from_secs(1))
        );
        for bad in ["0", "-5", "1.5", "sixty", ""] {
            let error = parse_schedule_seconds(bad).expect_err(bad).to_string();
            assert!(error.contains("LOCAL_SCHEDULE_SECONDS"), "{error}");
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn every_message_not_reported_as_failed_is_deleted() {
        let records = [record("a"), record("b"), record("c")];
        let mut response = SqsBatchResponse::default();
        response.add_failure("b");

        let to_delete = acknowledged(&records, &response).expect("known failure");

        assert_eq!(ids(&to_delete), ["a", "c"]);
    }

    #[test]
    fn a_failure_naming_no_message_of_the_batch_fails_the_whole_batch() {
        let records = [record("a"), record("b")];
        for identifier in ["", "z"] {
            let mut response = SqsBatchResponse::default();
            response.add_failure("a");
            response.add_failure(identifier);

            assert_eq!(
                acknowledged(&records, &response),
                Err(identifier.to_string())
            );
        }
    }

    #[test]
    fn scheduled_event_is_what_eventbridge_sends_for_a_rate_rule() {
        let at = DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let arn = "arn:aws:events:us-east-1:123456789012:rule/sync-runner";

        let event = scheduled_event(arn, at).expect("parses");

        assert_eq!(event.version.as_deref(), Some("0"));
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(event.source, "aws.events");
        assert_eq!(event.account.as_deref(), Some(LOCAL_ACCOUNT_ID));
        assert_eq!(event.region.as_deref(), Some(LOCAL_REGION));
        assert_eq!(event.time, Some(at));
        assert_eq!(event.resources, Some(vec![arn.to_string()]));
        assert_eq!(event.detail, json!({}));
        let id = event.id.expect("id");
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&id[14..15], "4", "version 4: {id}");
    }

    #[test]
    fn sqs_record_carries_every_field_of_the_event_source_mapping() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"hello\":1}")
            .md5_of_body("md5-body")
            .md5_of_message_attributes("md5-attrs")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("sync")
                    .build()
                    .expect("attribute"),
            )
            .message_attributes(
                "raw",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(aws_sdk_sqs::primitives::Blob::new(b"hi".to_vec()))
                    .build()
                    .expect("attribute"),
            )
            .build();
        let arn = "arn:aws:sqs:eu-west-1:123456789012:q";

        let record = batch_record(&message, arn, "eu-west-1").expect("complete message");
        let event: SqsEvent =
            serde_json::from_value(json!({"Records": [record.record]})).expect("parses");

        let parsed = &event.records[0];
        assert_eq!(parsed.message_id.as_deref(), Some("m-1"));
        assert_eq!(parsed.receipt_handle.as_deref(), Some("rh-1"));
        assert_eq!(parsed.body.as_deref(), Some("{\"hello\":1}"));
        assert_eq!(parsed.md5_of_body.as_deref(), Some("md5-body"));
        assert_eq!(
            parsed.md5_of_message_attributes.as_deref(),
            Some("md5-attrs")
        );
        assert_eq!(parsed.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(parsed.event_source_arn.as_deref(), Some(arn));
        assert_eq!(parsed.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            parsed.attributes,
            HashMap::from([
                ("ApproximateReceiveCount".to_string(), "1".to_string()),
                ("SentTimestamp".to_string(), "1700000000000".to_string()),
            ])
        );
        let kind = &parsed.message_attributes["kind"];
        assert_eq!(kind.string_value.as_deref(), Some("sync"));
        assert_eq!(kind.data_type.as_deref(), Some("String"));
        let raw = &parsed.message_attributes["raw"];
        assert_eq!(
            raw.binary_value.as_ref().map(|b| b.0.clone()),
            Some(b"hi".to_vec())
        );
    }

    #[test]
    fn a_message_without_receipt_handle_is_not_handed_to_the_consumer() {
        let message = Message::builder().message_id("m-1").body("x").build();

        assert_eq!(
            batch_record(&message, "arn:aws:sqs:us-east-1:1:q", "us-east-1"),
            None
        );
    }
}
