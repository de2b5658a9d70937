//! B4 (docs/benchmarks.md): outgoing delivery. N events are emitted to one outgoing webhook whose
//! target is a local [`Sink`]; the release `retry-dispatcher` binary delivers them, running as its
//! own processes against a local [`RuntimeApi`], with this harness playing the SQS event source
//! mapping (long-poll the dispatch queue, batches of 10, one invocation per batch, delete what the
//! answer does not name in `batchItemFailures`).
//!
//! Three runs, each on its own table, key and queues in the same moto:
//! 1. **baseline**: a bare loop of SQS receive(10) / delete-batch + a Standard Webhooks signed POST
//!    per message, with the same number of concurrent loops as there are dispatcher processes;
//! 2. **dispatcher**: deliveries/s and the CPU seconds of the dispatcher processes (utime + stime
//!    from `/proc/<pid>/stat`; moto, the sink and this harness are not counted);
//! 3. **with failures**: the sink answers 500 to half the requests at random; every event must be
//!    delivered (a 2xx for each), each under one `webhook-id` of its own.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hub_local::provision::StackNames;
use hub_local::stack::{local_sdk_config, LocalStack, StackOptions, LOCAL_REGION};
use hub_shared::delivery::emit;
use hub_shared::domain::{DisplayName, OutgoingWebhookId, TenantId};
use hub_shared::events::{Event, TriggerInput, Triggers};
use hub_shared::queue::{decode, Job};
use hub_shared::services::Services;
use hub_shared::store::{DeliveryMethod, NewOutgoingWebhook, OutgoingWebhookItem, SigningSecrets};
use hub_shared::webhooks::sign::{generate_secret, SignatureScheme, SigningKeys, WebhookSecret};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::proc_cpu;
use crate::runtime_api::{Invocation, RuntimeApi, RuntimeApiCall};
use crate::sink::{Sink, SinkCounts};

const TARGET_RATIO: f64 = 0.8;
/// Lambda's event source mapping hands at most 10 messages of a standard queue to one invocation
/// by default (`BatchSize`).
const BATCH_SIZE: i32 = 10;
/// SQS long polling, as the event source mapping does it.
const POLL_WAIT_SECONDS: i32 = 20;
/// The retry dispatcher's timeout in infra/template.yaml; the deadline each invocation gets.
const INVOCATION_DEADLINE: Duration = Duration::from_secs(300);
/// How long the processes may take to ask for their first event, and a throughput run to finish.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// The webhook's retry settings: the most attempts the API allows, the shortest delay.
const RETRY_ATTEMPTS: u32 = 20;
const RETRY_DELAY_SECONDS: u32 = 1;
const FAILURE_RATE: f64 = 0.5;
const SINK_SEED: u64 = 0x0b4;
const TENANT: &str = "tenant-bench-b4";
/// A record the dispatcher reports failed comes back after this many seconds instead of the
/// queue's visibility timeout (30 min in infra/template.yaml). A deviation from Lambda, which
/// leaves it to the queue: moto's TransactWriteItems fails now and then under concurrent calls
/// (`RuntimeError: dictionary changed size during iteration`, an HTML 500), the dispatcher rightly
/// reports such a record failed, and with the template's timeout the run would wait 30 minutes for
/// it. Counted in the report (`batch_item_failures`).
const FAILED_RECORD_VISIBILITY_SECONDS: i32 = 2;
const WEBHOOK_NAME: &str = "B4 sink";

#[derive(Debug, thiserror::Error)]
pub enum DeliveryBenchError {
    #[error("B4: moto: {0}")]
    Moto(#[from] hub_local::moto::MotoError),
    #[error("B4: the local stack: {0}")]
    Stack(#[from] hub_local::stack::StackError),
    #[error("B4: {0}")]
    Setup(String),
    #[error("B4: cannot prepare {path}: {source}")]
    Prepare {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("B4: cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("B4: the dispatcher processes did not all ask for work within {} s (logs in {logs})", START_TIMEOUT.as_secs())]
    NotReady { logs: String },
    #[error("B4: a dispatcher process failed its init: {0}")]
    InitFailed(String),
    #[error("B4 {run}: only {delivered} of {events} events delivered within {} s", RUN_TIMEOUT.as_secs())]
    Incomplete {
        run: &'static str,
        delivered: u64,
        events: usize,
    },
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DeliveryBenchError + '_ {
    move |error| DeliveryBenchError::Setup(format!("{what}: {error}"))
}

#[derive(Debug, Clone)]
pub struct B4Options {
    /// The release `retry-dispatcher` binary.
    pub dispatcher: PathBuf,
    pub events: usize,
    /// Dispatcher processes, and concurrent pollers (one per process), and baseline loops.
    pub concurrency: usize,
    /// How long the run with a failing sink may take before it is reported incomplete.
    pub failure_deadline: Duration,
    /// A moto to use (`BENCH_AWS_ENDPOINT`); without it the harness starts its own.
    pub aws_endpoint: Option<String>,
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct B4Report {
    pub events: usize,
    pub concurrency: usize,
    pub batch_size: i32,
    pub baseline: ThroughputRun,
    pub dispatcher: DispatcherRun,
    /// dispatcher deliveries/s ÷ baseline deliveries/s.
    pub ratio: f64,
    pub with_failures: FailureRun,
    pub targets: B4Targets,
    pub pass: bool,
    pub failed_targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct B4Targets {
    pub ratio: f64,
    pub failure_rate: f64,
    pub delivered_with_failures: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRun {
    /// From the first receive to the end of the last batch (every event delivered).
    pub elapsed_s: f64,
    pub deliveries_per_s: f64,
    /// SQS batches handled (invocations, for the dispatcher).
    pub batches: u64,
    pub sink: SinkCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct DispatcherRun {
    #[serde(flatten)]
    pub run: ThroughputRun,
    pub processes: usize,
    /// utime + stime of the dispatcher processes during the run.
    pub cpu_s: f64,
    pub cpu_s_per_1000_deliveries: f64,
    /// Records the dispatcher answered as batch item failures, and invocations that failed whole.
    pub batch_item_failures: u64,
    pub invocation_errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureRun {
    pub failure_rate: f64,
    pub retry_attempts: u32,
    pub retry_delay_seconds: u32,
    pub deadline_s: f64,
    /// Whether every event was delivered before the deadline.
    pub complete: bool,
    #[serde(flatten)]
    pub dispatcher: DispatcherRun,
}

/// Runs B4 and returns its report; `progress` hears what is going on.
pub async fn run_b4(
    options: &B4Options,
    mut progress: impl FnMut(&str),
) -> Result<B4Report, DeliveryBenchError> {
    let binary = prepare_binary(options)?;
    let (_moto, endpoint) = crate::local_aws::moto_or_given(
        &options.aws_endpoint,
        &options.work_dir.join("moto"),
        || progress("B4: starting moto"),
    )
    .await?;
    let sdk = local_sdk_config(&endpoint);
    let ticks = proc_cpu::ticks_per_second();
    let run_id = chrono::Utc::now().format("%H%M%S").to_string();

    progress(&format!(
        "B4 baseline: emitting {} events (bare SQS receive/delete + signed POST loop)",
        options.events
    ));
    let fixture = Fixture::set_up(&sdk, &format!("b4-{run_id}-base"), options, 0.0).await?;
    progress("B4 baseline: delivering");
    let baseline = run_baseline(&sdk, &fixture, options).await?;
    progress(&format!(
        "B4 baseline: {:.1} deliveries/s",
        baseline.deliveries_per_s
    ));
    fixture.stop().await;

    progress(&format!(
        "B4 dispatcher: emitting {} events",
        options.events
    ));
    let fixture = Fixture::set_up(&sdk, &format!("b4-{run_id}-disp"), options, 0.0).await?;
    progress(&format!(
        "B4 dispatcher: delivering with {} retry-dispatcher processes",
        options.concurrency
    ));
    let (dispatcher, complete) = run_dispatcher(
        &sdk,
        &endpoint,
        &fixture,
        options,
        &binary,
        ticks,
        "dispatcher",
        RUN_TIMEOUT,
    )
    .await?;
    if !complete {
        return Err(DeliveryBenchError::Incomplete {
            run: "dispatcher",
            delivered: dispatcher.run.sink.delivered,
            events: options.events,
        });
    }
    progress(&format!(
        "B4 dispatcher: {:.1} deliveries/s, {:.3} CPU s per 1,000",
        dispatcher.run.deliveries_per_s, dispatcher.cpu_s_per_1000_deliveries
    ));
    fixture.stop().await;

    progress(&format!(
        "B4 with failures: emitting {} events; the sink fails {:.0} % of requests (deadline {} s)",
        options.events,
        FAILURE_RATE * 100.0,
        options.failure_deadline.as_secs()
    ));
    let fixture =
        Fixture::set_up(&sdk, &format!("b4-{run_id}-fail"), options, FAILURE_RATE).await?;
    let (failing, complete) = run_dispatcher(
        &sdk,
        &endpoint,
        &fixture,
        options,
        &binary,
        ticks,
        "with-failures",
        options.failure_deadline,
    )
    .await?;
    progress(&format!(
        "B4 with failures: {} of {} delivered in {:.1} s",
        failing.run.sink.delivered, options.events, failing.run.elapsed_s
    ));
    fixture.stop().await;

    let ratio = ratio(dispatcher.run.deliveries_per_s, baseline.deliveries_per_s);
    let with_failures = FailureRun {
        failure_rate: FAILURE_RATE,
        retry_attempts: RETRY_ATTEMPTS,
        retry_delay_seconds: RETRY_DELAY_SECONDS,
        deadline_s: options.failure_deadline.as_secs_f64(),
        complete,
        dispatcher: failing,
    };
    let targets = B4Targets {
        ratio: TARGET_RATIO,
        failure_rate: FAILURE_RATE,
        delivered_with_failures: options.events,
    };
    let failed_targets = missed_targets(ratio, &dispatcher, &with_failures, options.events);
    Ok(B4Report {
        events: options.events,
        concurrency: options.concurrency,
        batch_size: BATCH_SIZE,
        baseline,
        dispatcher,
        ratio,
        with_failures,
        targets,
        pass: failed_targets.is_empty(),
        failed_targets,
    })
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        (numerator / denominator * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

fn missed_targets(
    ratio: f64,
    dispatcher: &DispatcherRun,
    with_failures: &FailureRun,
    events: usize,
) -> Vec<String> {
    let mut missed = Vec::new();
    if ratio < TARGET_RATIO {
        missed.push(format!(
            "throughput ratio {ratio:.3} < {TARGET_RATIO} x baseline"
        ));
    }
    for (run, sink) in [
        ("dispatcher", &dispatcher.run.sink),
        ("with failures", &with_failures.dispatcher.run.sink),
    ] {
        if sink.invalid_signatures > 0 {
            missed.push(format!(
                "{run}: {} request(s) with an invalid signature",
                sink.invalid_signatures
            ));
        }
        if sink.ids_with_several_events > 0 || sink.events_with_several_ids > 0 {
            missed.push(format!(
                "{run}: webhook-id not unique per event ({} id(s) with several events, {} event(s) with several ids)",
                sink.ids_with_several_events, sink.events_with_several_ids
            ));
        }
    }
    let delivered = with_failures.dispatcher.run.sink.delivered;
    if delivered < events as u64 {
        missed.push(format!(
            "with failures: {delivered} of {events} events delivered within {} s",
            with_failures.deadline_s
        ));
    }
    missed
}

/// One run's resources: a local stack (table, key, queues) with one outgoing webhook to a fresh
/// sink, and the events emitted to it (deliveries written and queued).
struct Fixture {
    stack: LocalStack,
    sink: Sink,
    tenant: TenantId,
    webhook_id: OutgoingWebhookId,
    secret_key: Vec<u8>,
    queue_arn: String,
}

impl Fixture {
    async fn set_up(
        sdk: &SdkConfig,
        prefix: &str,
        options: &B4Options,
        failure_rate: f64,
    ) -> Result<Fixture, DeliveryBenchError> {
        let mut stack_options = StackOptions::new(
            StackNames::with_prefix(prefix),
            (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        );
        stack_options.start_workers = false;
        let stack = LocalStack::start(sdk, stack_options).await?;
        let services =
            Services::new(stack.config.clone(), sdk).map_err(setup("the harness's services"))?;

        let secret = generate_secret();
        let secret_key = STANDARD
            .decode(secret.expose().trim_start_matches("whsec_"))
            .map_err(setup("the generated secret"))?;
        let keys = SigningKeys::new(
            WebhookSecret::parse(secret.expose()).map_err(setup("the generated secret"))?,
        );
        let sink = Sink::start(keys, failure_rate, SINK_SEED)
            .await
            .map_err(setup("the sink"))?;

        let tenant = TenantId::parse(TENANT).map_err(setup("the tenant id"))?;
        let webhook_id = OutgoingWebhookId::generate();
        let envelope = services
            .store
            .seal_signing_secrets(
                &tenant,
                &webhook_id,
                &SigningSecrets {
                    current: secret.expose().to_string(),
                    previous: None,
                    previous_expires_at: None,
                },
            )
            .await
            .map_err(setup("sealing the signing secret"))?;
        let triggers = Triggers::parse(&[TriggerInput {
            entity_type: "webhook".into(),
            events: vec!["*".into()],
        }])
        .map_err(|errors| setup("the triggers")(format!("{errors:?}")))?;
        let item = OutgoingWebhookItem::new(
            NewOutgoingWebhook {
                id: webhook_id.clone(),
                tenant: tenant.clone(),
                name: DisplayName::parse(WEBHOOK_NAME).map_err(setup("the webhook name"))?,
                description: None,
                url: sink.url(),
                method: DeliveryMethod::Post,
                headers: BTreeMap::new(),
                triggers,
                payload_template: None,
                sign_requests: true,
                signature_scheme: SignatureScheme::Standard,
                signature_header: "X-Webhook-Signature".into(),
                retry_attempts: RETRY_ATTEMPTS,
                retry_delay_seconds: RETRY_DELAY_SECONDS,
                timeout_seconds: 15,
                rate_limit: None,
                is_enabled: true,
                secret_envelope: envelope,
                created_by: None,
            },
            chrono::Utc::now(),
        );
        services
            .store
            .create_outgoing_webhook(&item)
            .await
            .map_err(setup("creating the outgoing webhook"))?;

        let events: Vec<Event> = (0..options.events)
            .map(|_| Event::webhook_test(&tenant, &webhook_id, WEBHOOK_NAME))
            .collect();
        let deliveries = emit(&services.store, &services.queues, &events)
            .await
            .map_err(setup("emitting the events"))?;
        if deliveries.len() != options.events {
            return Err(DeliveryBenchError::Setup(format!(
                "{} events made {} deliveries",
                options.events,
                deliveries.len()
            )));
        }
        let queue_arn = queue_arn(sdk, &stack.provisioned.dispatch_queue_url).await?;
        Ok(Fixture {
            stack,
            sink,
            tenant,
            webhook_id,
            secret_key,
            queue_arn,
        })
    }

    fn queue_url(&self) -> &str {
        &self.stack.provisioned.dispatch_queue_url
    }

    async fn stop(self) {
        let _ = self.stack.stop().await;
    }
}

async fn queue_arn(sdk: &SdkConfig, queue_url: &str) -> Result<String, DeliveryBenchError> {
    aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| setup("GetQueueAttributes")(DisplayErrorContext(e)))?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| DeliveryBenchError::Setup("the dispatch queue has no ARN".into()))
}

/// What every poller of one run shares.
struct Pollers {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    stop: watch::Receiver<bool>,
    batches: AtomicU64,
    batch_item_failures: AtomicU64,
    invocation_errors: AtomicU64,
}

impl Pollers {
    /// The next batch of up to 10 messages, or `None` once the run is over.
    async fn receive(&self) -> Option<Vec<Message>> {
        let mut stop = self.stop.clone();
        loop {
            let received = tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => return None,
                received = self
                    .sqs
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(BATCH_SIZE)
                    .wait_time_seconds(POLL_WAIT_SECONDS)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send() => received,
            };
            match received {
                Ok(output) => {
                    let messages = output.messages.unwrap_or_default();
                    if !messages.is_empty() {
                        return Some(messages);
                    }
                }
                Err(error) => {
                    eprintln!(
                        "B4: ReceiveMessage failed: {}; retrying",
                        DisplayErrorContext(error)
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Makes `messages` visible again after [`FAILED_RECORD_VISIBILITY_SECONDS`].
    async fn bring_back_soon(&self, messages: &[&Message]) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .set_receipt_handle(message.receipt_handle.clone())
                    .visibility_timeout(FAILED_RECORD_VISIBILITY_SECONDS)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        if let Err(error) = self
            .sqs
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            eprintln!(
                "B4: ChangeMessageVisibilityBatch failed: {}",
                DisplayErrorContext(error)
            );
        }
    }

    /// Deletes `messages` (one DeleteMessageBatch); a message it cannot delete comes back later.
    async fn delete(&self, messages: &[&Message]) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .set_receipt_handle(message.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        if let Err(error) = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            eprintln!(
                "B4: DeleteMessageBatch failed: {}",
                DisplayErrorContext(error)
            );
        }
    }
}

/// Runs `concurrency` pollers until every event is delivered (or `deadline`), then lets each
/// finish its batch; returns the elapsed time and whether every event was delivered.
async fn drive<F, Fut>(
    fixture: &Fixture,
    pollers: Arc<Pollers>,
    stop: watch::Sender<bool>,
    concurrency: usize,
    events: usize,
    deadline: Duration,
    poller: F,
) -> (Duration, bool)
where
    F: Fn(Arc<Pollers>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(poller(Arc::clone(&pollers)));
    }
    let complete = tokio::time::timeout(deadline, fixture.sink.delivered_at_least(events as u64))
        .await
        .is_ok();
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    (started.elapsed(), complete)
}

fn new_pollers(sdk: &SdkConfig, fixture: &Fixture) -> (Arc<Pollers>, watch::Sender<bool>) {
    let (stop_tx, stop) = watch::channel(false);
    let pollers = Arc::new(Pollers {
        sqs: aws_sdk_sqs::Client::new(sdk),
        queue_url: fixture.queue_url().to_string(),
        stop,
        batches: AtomicU64::new(0),
        batch_item_failures: AtomicU64::new(0),
        invocation_errors: AtomicU64::new(0),
    });
    (pollers, stop_tx)
}

fn throughput(fixture: &Fixture, pollers: &Pollers, elapsed: Duration) -> ThroughputRun {
    let sink = fixture.sink.counts();
    let seconds = elapsed.as_secs_f64();
    ThroughputRun {
        elapsed_s: round3(seconds),
        deliveries_per_s: if seconds > 0.0 {
            round3(sink.delivered as f64 / seconds)
        } else {
            0.0
        },
        batches: pollers.batches.load(Ordering::Relaxed),
        sink,
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------
// The baseline: receive, sign, POST, delete.

type Hmac256 = Hmac<Sha256>;

async fn run_baseline(
    sdk: &SdkConfig,
    fixture: &Fixture,
    options: &B4Options,
) -> Result<ThroughputRun, DeliveryBenchError> {
    let (pollers, stop) = new_pollers(sdk, fixture);
    let http: HttpClient<HttpConnector, Full<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let context = Arc::new(BaselineContext {
        http,
        url: fixture.sink.url(),
        key: fixture.secret_key.clone(),
        tenant: fixture.tenant.clone(),
        webhook_id: fixture.webhook_id.clone(),
    });
    let (elapsed, complete) = drive(
        fixture,
        Arc::clone(&pollers),
        stop,
        options.concurrency,
        options.events,
        RUN_TIMEOUT,
        |pollers| baseline_loop(pollers, Arc::clone(&context)),
    )
    .await;
    if !complete {
        return Err(DeliveryBenchError::Incomplete {
            run: "baseline",
            delivered: fixture.sink.delivered(),
            events: options.events,
        });
    }
    Ok(throughput(fixture, &pollers, elapsed))
}

struct BaselineContext {
    http: HttpClient<HttpConnector, Full<Bytes>>,
    url: String,
    key: Vec<u8>,
    tenant: TenantId,
    webhook_id: OutgoingWebhookId,
}

async fn baseline_loop(pollers: Arc<Pollers>, context: Arc<BaselineContext>) {
    while let Some(messages) = pollers.receive().await {
        pollers.batches.fetch_add(1, Ordering::Relaxed);
        // The batch's POSTs go out together, as the dispatcher works on a batch concurrently.
        let mut posts = JoinSet::new();
        for (index, message) in messages.iter().enumerate() {
            let context = Arc::clone(&context);
            let body = message.body.clone().unwrap_or_default();
            posts.spawn(async move { (index, signed_post(&context, &body).await) });
        }
        let mut delivered = vec![false; messages.len()];
        while let Some(joined) = posts.join_next().await {
            if let Ok((index, ok)) = joined {
                delivered[index] = ok;
            }
        }
        let to_delete: Vec<&Message> = messages
            .iter()
            .zip(&delivered)
            .filter(|(_, ok)| **ok)
            .map(|(message, _)| message)
            .collect();
        pollers.delete(&to_delete).await;
    }
}

/// One Standard Webhooks signed POST of a `webhook.test` envelope, under the message's delivery id
/// (the `webhook-id` the dispatcher would send); true for a 2xx.
async fn signed_post(context: &BaselineContext, message_body: &str) -> bool {
    let Ok(Job::Delivery(job)) = decode(message_body) else {
        return false;
    };
    let event = Event::webhook_test(&context.tenant, &context.webhook_id, WEBHOOK_NAME);
    let body = serde_json::to_vec(&event.to_json()).unwrap_or_default();
    let message_id = job.delivery_id.as_str();
    let timestamp = chrono::Utc::now().timestamp();
    let Ok(mut mac) = Hmac256::new_from_slice(&context.key) else {
        return false;
    };
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(&body);
    let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let Ok(request) = http::Request::post(&context.url)
        .header("content-type", "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from(body)))
    else {
        return false;
    };
    match context.http.request(request).await {
        Ok(response) => response.status().is_success(),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The dispatcher: its release binary, as Lambda runs it.

fn prepare_binary(options: &B4Options) -> Result<PathBuf, DeliveryBenchError> {
    let bin_dir = options.work_dir.join("bin");
    let copy = bin_dir.join("b4-retry-dispatcher");
    std::fs::create_dir_all(&bin_dir)
        .and_then(|_| std::fs::create_dir_all(options.work_dir.join("logs")))
        .and_then(|_| std::fs::copy(&options.dispatcher, &copy))
        .map_err(|source| DeliveryBenchError::Prepare {
            path: copy.clone(),
            source,
        })?;
    Ok(copy)
}

/// Answers waiting for the invocation of each request id.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Bytes, String>>>>>;

/// The Runtime API's side: every `next` joins the idle pool; every response goes to its caller.
struct Runtimes {
    idle: tokio::sync::Mutex<mpsc::UnboundedReceiver<oneshot::Sender<Invocation>>>,
    pending: Pending,
    ready: watch::Receiver<usize>,
    init_error: watch::Receiver<Option<String>>,
    next_id: AtomicU64,
}

fn serve_runtimes(mut api: RuntimeApi) -> Arc<Runtimes> {
    let (idle_tx, idle) = mpsc::unbounded_channel();
    let (ready_tx, ready) = watch::channel(0usize);
    let (init_error_tx, init_error) = watch::channel(None);
    let pending: Pending = Arc::default();
    let routed = Arc::clone(&pending);
    tokio::spawn(async move {
        while let Some(call) = api.next_call().await {
            match call {
                RuntimeApiCall::Next { reply, .. } => {
                    ready_tx.send_modify(|ready| *ready += 1);
                    let _ = idle_tx.send(reply);
                }
                RuntimeApiCall::Response {
                    request_id, body, ..
                } => answer(&routed, &request_id, Ok(body)),
                RuntimeApiCall::InvocationError { request_id, body } => answer(
                    &routed,
                    &request_id,
                    Err(String::from_utf8_lossy(&body).into_owned()),
                ),
                RuntimeApiCall::InitError { body } => {
                    init_error_tx.send_replace(Some(String::from_utf8_lossy(&body).into_owned()));
                }
            }
        }
    });
    Arc::new(Runtimes {
        idle: tokio::sync::Mutex::new(idle),
        pending,
        ready,
        init_error,
        next_id: AtomicU64::new(0),
    })
}

fn answer(pending: &Pending, request_id: &str, result: Result<Bytes, String>) {
    let waiting = pending
        .lock()
        .ok()
        .and_then(|mut pending| pending.remove(request_id));
    if let Some(waiting) = waiting {
        let _ = waiting.send(result);
    }
}

impl Runtimes {
    /// Hands `event` to the next idle process and waits for its answer.
    async fn invoke(&self, event: Bytes, queue: &str) -> Result<Bytes, String> {
        let reply = {
            let mut idle = self.idle.lock().await;
            idle.recv().await.ok_or("the Runtime API stopped")?
        };
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("b4-{queue}-{n}");
        let (answered_tx, answered) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(request_id.clone(), answered_tx);
        }
        let invocation = Invocation {
            request_id: request_id.clone(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:retry-dispatcher".into(),
            deadline_in: INVOCATION_DEADLINE,
            trace_id: format!("Root=1-00000000-{n:024x};Parent=0000000000000001;Sampled=0"),
            event,
        };
        reply
            .send(invocation)
            .map_err(|_| "the process stopped polling".to_string())?;
        answered
            .await
            .map_err(|_| "the Runtime API stopped".to_string())?
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_dispatcher(
    sdk: &SdkConfig,
    endpoint: &str,
    fixture: &Fixture,
    options: &B4Options,
    binary: &Path,
    ticks: u64,
    name: &'static str,
    deadline: Duration,
) -> Result<(DispatcherRun, bool), DeliveryBenchError> {
    let api = RuntimeApi::start()
        .await
        .map_err(setup("the Runtime API"))?;
    let environment = dispatcher_environment(fixture, endpoint, &api.address().to_string());
    let runtimes = serve_runtimes(api);
    let mut children = Vec::with_capacity(options.concurrency);
    for index in 0..options.concurrency {
        children.push(spawn_dispatcher(
            binary,
            &environment,
            options,
            name,
            index,
        )?);
    }
    wait_until_ready(&runtimes, &mut children, options).await?;

    let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
    let cpu_before: Vec<Duration> = pids
        .iter()
        .map(|pid| proc_cpu::cpu_time(*pid, ticks).unwrap_or_default())
        .collect();
    let (pollers, stop) = new_pollers(sdk, fixture);
    let queue_arn = fixture.queue_arn.clone();
    let (elapsed, complete) = drive(
        fixture,
        Arc::clone(&pollers),
        stop,
        options.concurrency,
        options.events,
        deadline,
        |pollers| event_source_mapping(pollers, Arc::clone(&runtimes), queue_arn.clone(), name),
    )
    .await;
    let cpu: Duration = pids
        .iter()
        .zip(&cpu_before)
        .map(|(pid, before)| {
            proc_cpu::cpu_time(*pid, ticks)
                .unwrap_or_default()
                .saturating_sub(*before)
        })
        .sum();
    for child in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }

    let run = throughput(fixture, &pollers, elapsed);
    let cpu_s = cpu.as_secs_f64();
    let cpu_s_per_1000_deliveries = if run.sink.delivered > 0 {
        round3(cpu_s * 1000.0 / run.sink.delivered as f64)
    } else {
        0.0
    };
    Ok((
        DispatcherRun {
            run,
            processes: options.concurrency,
            cpu_s: round3(cpu_s),
            cpu_s_per_1000_deliveries,
            batch_item_failures: pollers.batch_item_failures.load(Ordering::Relaxed),
            invocation_errors: pollers.invocation_errors.load(Ordering::Relaxed),
        },
        complete,
    ))
}

async fn wait_until_ready(
    runtimes: &Runtimes,
    children: &mut [Child],
    options: &B4Options,
) -> Result<(), DeliveryBenchError> {
    let logs = options.work_dir.join("logs").display().to_string();
    let mut ready = runtimes.ready.clone();
    let mut init_error = runtimes.init_error.clone();
    let all_ready = async {
        ready
            .wait_for(|ready| *ready >= options.concurrency)
            .await
            .is_ok()
    };
    let failed_init = async {
        match init_error.wait_for(Option::is_some).await {
            Ok(error) => error.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        waited = tokio::time::timeout(START_TIMEOUT, all_ready) => match waited {
            Ok(true) => Ok(()),
            _ => Err(DeliveryBenchError::NotReady { logs }),
        },
        error = failed_init => {
            for child in children.iter_mut() {
                let _ = child.start_kill();
            }
            Err(DeliveryBenchError::InitFailed(error))
        }
    }
}

fn spawn_dispatcher(
    binary: &Path,
    environment: &[(&'static str, String)],
    options: &B4Options,
    name: &str,
    index: usize,
) -> Result<Child, DeliveryBenchError> {
    let log_path = options
        .work_dir
        .join("logs")
        .join(format!("b4-{name}-{index}.log"));
    let log = File::create(&log_path)
        .and_then(|log| Ok((log.try_clone()?, log)))
        .map_err(|source| DeliveryBenchError::Prepare {
            path: log_path.clone(),
            source,
        })?;
    Command::new(binary)
        .env_clear()
        .envs(environment.iter().map(|(name, value)| (*name, value)))
        .stdin(Stdio::null())
        .stdout(log.0)
        .stderr(log.1)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DeliveryBenchError::Spawn {
            path: binary.into(),
            source,
        })
}

/// Lambda's environment for the dispatcher, with the local stack's configuration and moto as AWS.
fn dispatcher_environment(
    fixture: &Fixture,
    endpoint: &str,
    runtime_api: &str,
) -> Vec<(&'static str, String)> {
    let config = &fixture.stack.config;
    let mut env = vec![
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("_HANDLER", "bootstrap".into()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.into()),
        ("AWS_LAMBDA_FUNCTION_NAME", "retry-dispatcher".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/retry-dispatcher".into(),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/03/10/[$LATEST]0123456789abcdef0123456789abcdef".into(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
    ];
    env.extend(crate::local_aws::function_environment(config, endpoint));
    env
}

/// One poller of the event source mapping: a batch becomes one invocation; what the answer does
/// not name in `batchItemFailures` is deleted. An invocation error (or an answer naming a message
/// of no batch) leaves the whole batch to come back, as Lambda does.
async fn event_source_mapping(
    pollers: Arc<Pollers>,
    runtimes: Arc<Runtimes>,
    queue_arn: String,
    name: &'static str,
) {
    while let Some(messages) = pollers.receive().await {
        pollers.batches.fetch_add(1, Ordering::Relaxed);
        let event = sqs_event(&messages, &queue_arn);
        let answered = runtimes.invoke(event, name).await;
        let failed = match answered.map(|body| failed_ids(&body, &messages)) {
            Ok(Some(failed)) => failed,
            Ok(None) | Err(_) => {
                pollers.invocation_errors.fetch_add(1, Ordering::Relaxed);
                let all: Vec<&Message> = messages.iter().collect();
                pollers.bring_back_soon(&all).await;
                continue;
            }
        };
        pollers
            .batch_item_failures
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        let (to_retry, to_delete): (Vec<&Message>, Vec<&Message>) =
            messages.iter().partition(|message| {
                failed
                    .iter()
                    .any(|id| message.message_id.as_deref() == Some(id.as_str()))
            });
        pollers.delete(&to_delete).await;
        pollers.bring_back_soon(&to_retry).await;
    }
}

/// The `batchItemFailures` of an `SqsBatchResponse`; `None` when the answer is not one, or names a
/// message that is not in the batch (Lambda then fails the whole batch).
fn failed_ids(body: &[u8], messages: &[Message]) -> Option<Vec<String>> {
    let response: Value = serde_json::from_slice(body).ok()?;
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(failures)) => failures,
        Some(_) => return None,
    };
    let mut failed = Vec::with_capacity(failures.len());
    for failure in failures {
        let id = failure["itemIdentifier"].as_str()?;
        if !messages
            .iter()
            .any(|message| message.message_id.as_deref() == Some(id))
        {
            return None;
        }
        failed.push(id.to_string());
    }
    Some(failed)
}

/// The `SqsEvent` the event source mapping would send for `messages`.
fn sqs_event(messages: &[Message], queue_arn: &str) -> Bytes {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| {
            let attributes: serde_json::Map<String, Value> = message
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_string(), Value::String(value.clone())))
                .collect();
            json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": message.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": LOCAL_REGION,
            })
        })
        .collect();
    Bytes::from(serde_json::to_vec(&json!({ "Records": records })).unwrap_or_default())
}

impl B4Report {
    /// The table `make bench` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "B4 outgoing delivery: {} events, {} concurrent pollers (batches of {})\n",
            self.events, self.concurrency, self.batch_size
        );
        out.push_str(&format!(
            "{:<16} {:>10} {:>13} {:>8} {:>10} {:>13} {:>10} {:>9}\n",
            "run",
            "elapsed s",
            "deliveries/s",
            "batches",
            "delivered",
            "CPU s/1,000",
            "requests",
            "injected"
        ));
        let row = |name: &str, run: &ThroughputRun, cpu: Option<f64>| {
            format!(
                "{:<16} {:>10.3} {:>13.1} {:>8} {:>10} {:>13} {:>10} {:>9}\n",
                name,
                run.elapsed_s,
                run.deliveries_per_s,
                run.batches,
                run.sink.delivered,
                cpu.map_or("-".to_string(), |cpu| format!("{cpu:.3}")),
                run.sink.requests,
                run.sink.injected_failures
            )
        };
        out.push_str(&row("baseline", &self.baseline, None));
        out.push_str(&row(
            "dispatcher",
            &self.dispatcher.run,
            Some(self.dispatcher.cpu_s_per_1000_deliveries),
        ));
        out.push_str(&row(
            "with failures",
            &self.with_failures.dispatcher.run,
            Some(self.with_failures.dispatcher.cpu_s_per_1000_deliveries),
        ));
        let sink = &self.with_failures.dispatcher.run.sink;
        out.push_str(&format!(
            "with failures: {} of {} delivered ({}), {} duplicate 2xx, {} invalid signatures, {} ids with several events, {} events with several ids\n",
            sink.delivered,
            self.events,
            if self.with_failures.complete { "complete" } else { "deadline reached" },
            sink.duplicate_successes,
            sink.invalid_signatures,
            sink.ids_with_several_events,
            sink.events_with_several_ids
        ));
        out.push_str(&format!(
            "targets: throughput >= {} x baseline (ratio {:.3}); with {:.0} % failures all {} delivered, webhook-id unique per event -> {}\n",
            self.targets.ratio,
            self.ratio,
            self.targets.failure_rate * 100.0,
            self.targets.delivered_with_failures,
            if self.pass {
                "PASS".to_string()
            } else {
                format!("FAIL: {}", self.failed_targets.join("; "))
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body("{}")
            .build()
    }

    #[test]
    fn batch_item_failures_are_read_and_an_empty_answer_fails_nothing() {
        let batch = [message("m-1"), message("m-2")];
        assert_eq!(
            failed_ids(
                br#"{"batchItemFailures":[{"itemIdentifier":"m-2"}]}"#,
                &batch
            ),
            Some(vec!["m-2".to_string()])
        );
        assert_eq!(
            failed_ids(br#"{"batchItemFailures":[]}"#, &batch),
            Some(vec![])
        );
        assert_eq!(failed_ids(b"{}", &batch), Some(vec![]));
    }

    #[test]
    fn a_failure_naming_no_message_of_the_batch_or_a_non_json_answer_fails_the_batch() {
        let batch = [message("m-1")];
        assert_eq!(
            failed_ids(
                br#"{"batchItemFailures":[{"itemIdentifier":"other"}]}"#,
                &batch
            ),
            None
        );
        assert_eq!(failed_ids(b"oops", &batch), None);
    }

    #[test]
    fn the_event_is_an_sqs_event_the_dispatcher_reads() {
        let event = sqs_event(&[message("m-1")], "arn:aws:sqs:us-east-1:123456789012:q");
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_slice(&event).expect("an SqsEvent");
        assert_eq!(event.records.len(), 1);
        assert_eq!(event.records[0].message_id.as_deref(), Some("m-1"));
        assert_eq!(event.records[0].body.as_deref(), Some("{}"));
    }

    fn run(delivered: u64, invalid: u64) -> DispatcherRun {
        DispatcherRun {
            run: ThroughputRun {
                elapsed_s: 1.0,
                deliveries_per_s: delivered as f64,
                batches: 1,
                sink: SinkCounts {
                    delivered,
                    invalid_signatures: invalid,
                    ..SinkCounts::default()
                },
            },
            processes: 1,
            cpu_s: 0.1,
            cpu_s_per_1000_deliveries: 0.1,
            batch_item_failures: 0,
            invocation_errors: 0,
        }
    }

    #[test]
    fn each_missed_target_is_named_with_its_numbers() {
        let failures = FailureRun {
            failure_rate: 0.5,
            retry_attempts: 20,
            retry_delay_seconds: 1,
            deadline_s: 600.0,
            complete: false,
            dispatcher: run(998, 0),
        };
        assert_eq!(
            missed_targets(0.5, &run(1000, 2), &failures, 1000),
            vec![
                "throughput ratio 0.500 < 0.8 x baseline".to_string(),
                "dispatcher: 2 request(s) with an invalid signature".to_string(),
                "with failures: 998 of 1000 events delivered within 600 s".to_string(),
            ]
        );
        let complete = FailureRun {
            complete: true,
            dispatcher: run(1000, 0),
            ..failures
        };
        assert!(missed_targets(0.8, &run(1000, 0), &complete, 1000).is_empty());
    }
}
