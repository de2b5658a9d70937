//! B1 (docs/benchmarks.md): the inbound accept path, and what one million inbound webhooks cost.
//!
//! All in this process, on a multi-threaded runtime of its own, against a moto of its own (or
//! `BENCH_AWS_ENDPOINT`) behind an [`AwsRequestCounter`] that keeps what each request carried:
//!
//! 1. **Accept** (`start_workers = false`): rounds that alternate (baseline first in even rounds,
//!    hub first in odd ones, so drift hits both alike) between
//!    - the **hub**: a `standard` incoming webhook with one `trigger_automation` action, created
//!      through the local gateway for this round, then signed 1 KiB webhooks POSTed to it through
//!      the gateway at the chosen concurrency, each timed from send to the end of the answer, and
//!    - the **baseline**: the least work a webhook needs, one conditional PutItem
//!      (`attribute_not_exists(pk)`, the 1 KiB body in it) and one SQS SendMessage with the Rust
//!      SDK, at the same concurrency, on the same table and queue.
//!
//!    Each part of a round starts with a warm-up that is neither timed nor counted. The hub's
//!    webhook cache entry is filled then and holds 30 s, longer than a part takes, so every
//!    measured accept is a warm one (a part that took longer would show the refresh in its counts).
//! 2. **Cost** ([`cost`]): a second stack, one webhook with one `forward` action, accepted and
//!    processed one invocation at a time; the billed units per webhook and the price of a million.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hub_local::aws_counter::AwsRequestCounter;
use hub_local::provision::StackNames;
use hub_local::stack::{local_sdk_config, LocalStack, StackOptions};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::task::JoinSet;

mod cost;

pub use cost::CostRun;

use crate::stats::{nearest_rank, ratio, round_to_microseconds};

const TARGET_P50_RATIO: f64 = 1.25;
const TARGET_THROUGHPUT_RATIO: f64 = 0.8;
const TARGET_AWS_REQUESTS_PER_ACCEPT: f64 = 2.0;
const TARGET_KMS_CALLS_PER_ACCEPT: f64 = 0.0;
pub const BODY_BYTES: usize = 1024;
const TENANT: &str = "tenant-bench-b1";

#[derive(Debug, thiserror::Error)]
pub enum InboundBenchError {
    #[error("B1: moto: {0}")]
    Moto(#[from] hub_local::moto::MotoError),
    #[error("B1: the local stack: {0}")]
    Stack(#[from] hub_local::stack::StackError),
    #[error("B1: {0}")]
    Setup(String),
    #[error("B1 cost: {processed} of {events} events processed within {} s", cost::PROCESS_TIMEOUT.as_secs())]
    Incomplete { processed: u64, events: u64 },
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> InboundBenchError + '_ {
    move |error| InboundBenchError::Setup(format!("{what}: {error}"))
}

#[derive(Debug, Clone)]
pub struct B1Options {
    /// Measured webhooks (and as many baseline operations), split over the rounds.
    pub webhooks: usize,
    pub concurrency: usize,
    pub rounds: usize,
    /// Unmeasured operations before each part of a round.
    pub warmup: usize,
    /// Webhooks accepted and processed for the cost line.
    pub cost_webhooks: usize,
    /// A moto to use (`BENCH_AWS_ENDPOINT`); without it the harness starts its own.
    pub aws_endpoint: Option<String>,
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct B1Report {
    pub webhooks: usize,
    pub concurrency: usize,
    pub rounds: usize,
    pub warmup_per_round: usize,
    pub body_bytes: usize,
    /// The gzipped body the event item stores (mean over the measured webhooks).
    pub body_gzipped_bytes: usize,
    /// Worker threads of the runtime the stack, the baseline and the client share.
    pub runtime_threads: usize,
    pub baseline: LoadRun,
    pub accept: LoadRun,
    /// accept p50 ÷ baseline p50.
    pub p50_ratio: f64,
    /// accept throughput ÷ baseline throughput.
    pub throughput_ratio: f64,
    pub targets: B1Targets,
    pub pass: bool,
    pub failed_targets: Vec<String>,
    pub cost: CostRun,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct B1Targets {
    pub p50_ratio: f64,
    pub throughput_ratio: f64,
    pub aws_requests_per_accept: f64,
    pub kms_calls_per_accept: f64,
}

/// One side of the accept benchmark, all rounds together.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    pub operations: usize,
    /// Answered 202 (the hub) or both requests succeeded (the baseline).
    pub succeeded: usize,
    /// The hub's answers by status; the baseline's failures under `error`.
    pub outcomes: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// Summed over the rounds: from the first send to the last answer of each.
    pub elapsed_s: f64,
    pub per_s: f64,
    pub latency: Latency,
    /// The AWS requests of the measured operations (warm-ups excluded).
    pub aws_requests: BTreeMap<String, u64>,
    pub aws_requests_per_operation: f64,
    pub kms_calls_per_operation: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        if ms.is_empty() {
            return Latency {
                p50_ms: 0.0,
                p99_ms: 0.0,
                mean_ms: 0.0,
                max_ms: 0.0,
            };
        }
        ms.sort_by(f64::total_cmp);
        Latency {
            p50_ms: round_to_microseconds(nearest_rank(&ms, 50)),
            p99_ms: round_to_microseconds(nearest_rank(&ms, 99)),
            mean_ms: round_to_microseconds(ms.iter().sum::<f64>() / ms.len() as f64),
            max_ms: round_to_microseconds(ms[ms.len() - 1]),
        }
    }
}

/// Runs B1 on a runtime of its own (the harness's is single-threaded for B5); `progress` hears
/// what is going on.
pub async fn run_b1(options: B1Options, progress: fn(&str)) -> Result<B1Report, InboundBenchError> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .map_err(setup("the B1 runtime"))?
            .block_on(measure(&options, threads, progress))
    })
    .await
    .map_err(setup("the B1 runtime"))?
}

async fn measure(
    options: &B1Options,
    threads: usize,
    progress: fn(&str),
) -> Result<B1Report, InboundBenchError> {
    let (_moto, endpoint) = crate::local_aws::moto_or_given(
        &options.aws_endpoint,
        &options.work_dir.join("moto-b1"),
        || progress("B1: starting moto"),
    )
    .await?;
    let counter = AwsRequestCounter::start_keeping_bodies(&endpoint)
        .await
        .map_err(setup("the AWS request counter"))?;
    let sdk = local_sdk_config(counter.url());
    let run_id = chrono::Utc::now().format("%H%M%S").to_string();

    let accept = run_accept(options, &sdk, &counter, &run_id, progress).await?;
    progress("B1 cost: accepting and processing webhooks with one forward action");
    let cost = cost::run_cost(options, &sdk, &counter, &run_id, progress).await?;

    let p50_ratio = ratio(accept.hub.latency.p50_ms, accept.baseline.latency.p50_ms);
    let throughput_ratio = ratio(accept.hub.per_s, accept.baseline.per_s);
    let failed_targets = missed_targets(&accept.hub, p50_ratio, throughput_ratio);
    Ok(B1Report {
        webhooks: accept.hub.operations,
        concurrency: options.concurrency,
        rounds: options.rounds,
        warmup_per_round: options.warmup,
        body_bytes: BODY_BYTES,
        body_gzipped_bytes: accept.body_gzipped_bytes,
        runtime_threads: threads,
        baseline: accept.baseline,
        accept: accept.hub,
        p50_ratio,
        throughput_ratio,
        targets: B1Targets {
            p50_ratio: TARGET_P50_RATIO,
            throughput_ratio: TARGET_THROUGHPUT_RATIO,
            aws_requests_per_accept: TARGET_AWS_REQUESTS_PER_ACCEPT,
            kms_calls_per_accept: TARGET_KMS_CALLS_PER_ACCEPT,
        },
        pass: failed_targets.is_empty(),
        failed_targets,
        cost,
    })
}

fn missed_targets(hub: &LoadRun, p50_ratio: f64, throughput_ratio: f64) -> Vec<String> {
    let mut missed = Vec::new();
    if p50_ratio > TARGET_P50_RATIO {
        missed.push(format!(
            "p50 ratio {p50_ratio:.3} > {TARGET_P50_RATIO} x baseline"
        ));
    }
    if throughput_ratio < TARGET_THROUGHPUT_RATIO {
        missed.push(format!(
            "throughput ratio {throughput_ratio:.3} < {TARGET_THROUGHPUT_RATIO} x baseline"
        ));
    }
    if hub.aws_requests_per_operation != TARGET_AWS_REQUESTS_PER_ACCEPT {
        missed.push(format!(
            "{:.3} AWS requests per accepted webhook (target exactly {TARGET_AWS_REQUESTS_PER_ACCEPT})",
            hub.aws_requests_per_operation
        ));
    }
    if hub.kms_calls_per_operation != TARGET_KMS_CALLS_PER_ACCEPT {
        missed.push(format!(
            "{:.3} KMS calls per accepted webhook (target 0)",
            hub.kms_calls_per_operation
        ));
    }
    if hub.succeeded < hub.operations {
        missed.push(format!(
            "{} of {} webhooks not accepted: {:?}",
            hub.operations - hub.succeeded,
            hub.operations,
            hub.outcomes
        ));
    }
    missed
}

// ---------------------------------------------------------------------------------------------
// Signed webhooks.

type Hmac256 = Hmac<Sha256>;
use crate::gateway::Client;

/// A 1 KiB JSON body shaped like a provider's event: a few fields, random ids, and random hex
/// filling it to exactly [`BODY_BYTES`] (gzip halves it, as it roughly does real payloads).
pub fn webhook_body(n: u64) -> Bytes {
    let mut rng = StdRng::seed_from_u64(n);
    let mut hex = |len: usize| -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect()
    };
    let head = format!(
        r#"{{"id":"evt_{}","type":"invoice.paid","created":{},"livemode":false,"data":{{"object":{{"id":"in_{}","customer":"cus_{}","amount_due":{},"currency":"usd","status":"paid","lines":[{{"price":"price_{}","quantity":{}}}]}}}},"note":""#,
        hex(24),
        1_764_590_000 + n,
        hex(24),
        hex(14),
        1000 + n % 90_000,
        hex(14),
        1 + n % 9
    );
    let tail = r#""}"#;
    let fill = hex(BODY_BYTES.saturating_sub(head.len() + tail.len()));
    Bytes::from(format!("{head}{fill}{tail}"))
}

/// The Standard Webhooks headers of `body` under `id`: `v1,<base64 HMAC-SHA256(key,
/// "{id}.{timestamp}.{body}")>`, the key being the base64 part of the `whsec_` secret.
fn standard_headers(
    key: &[u8],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let mut mac = Hmac256::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())),
        ),
    ]
}

fn signed_request(
    uri: &str,
    key: &[u8],
    id: &str,
    body: Bytes,
) -> Option<http::Request<Full<Bytes>>> {
    let mut request = http::Request::post(uri).header("content-type", "application/json");
    for (name, value) in standard_headers(key, id, chrono::Utc::now().timestamp(), &body) {
        request = request.header(name, value);
    }
    request.body(Full::new(body)).ok()
}

/// An incoming webhook created through the gateway, as a tenant's user creates it.
struct CreatedWebhook {
    /// `/api/webhooks/tenant/<tenant>/<id>`.
    path: String,
    key: Vec<u8>,
    forward_secret: Option<String>,
}

async fn create_webhook(
    client: &Client,
    stack: &LocalStack,
    options: &StackOptions,
    body: Value,
) -> Result<CreatedWebhook, InboundBenchError> {
    let (status, answer) = crate::gateway::post_json_as(
        client,
        stack,
        options,
        TENANT,
        "/api/webhooks/incoming",
        &body,
    )
    .await
    .map_err(InboundBenchError::Setup)?;
    let created: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    let (Some(id), Some(secret)) = (created["id"].as_str(), created["secret"].as_str()) else {
        return Err(InboundBenchError::Setup(format!(
            "creating the incoming webhook answered {status}: {}",
            String::from_utf8_lossy(&answer)
        )));
    };
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(setup("the webhook's secret"))?;
    Ok(CreatedWebhook {
        path: format!("/api/webhooks/tenant/{TENANT}/{id}"),
        key,
        forward_secret: created["forwardSecret"].as_str().map(str::to_string),
    })
}

fn stack_options(prefix: &str) -> StackOptions {
    let mut options = StackOptions::new(
        StackNames::with_prefix(prefix),
        (std::net::Ipv4Addr::LOCALHOST, 0).into(),
    );
    options.start_workers = false;
    options
}

// ---------------------------------------------------------------------------------------------
// Concurrent load.

/// The measured part of one side of one round.
#[derive(Default)]
struct Segment {
    latencies: Vec<Duration>,
    outcomes: BTreeMap<String, u64>,
    succeeded: usize,
    first_error: Option<String>,
    elapsed: Duration,
    calls: Vec<String>,
}

impl Segment {
    fn absorb(&mut self, other: Segment) {
        self.latencies.extend(other.latencies);
        for (outcome, count) in other.outcomes {
            *self.outcomes.entry(outcome).or_insert(0) += count;
        }
        self.succeeded += other.succeeded;
        self.first_error = self.first_error.take().or(other.first_error);
        self.elapsed += other.elapsed;
        self.calls.extend(other.calls);
    }

    fn into_run(self) -> LoadRun {
        let operations = self.latencies.len();
        let seconds = self.elapsed.as_secs_f64();
        let mut aws_requests = BTreeMap::new();
        for call in &self.calls {
            *aws_requests.entry(call.clone()).or_insert(0) += 1;
        }
        let per = |count: usize| {
            if self.succeeded > 0 {
                (count as f64 / self.succeeded as f64 * 1000.0).round() / 1000.0
            } else {
                0.0
            }
        };
        let kms = self.calls.iter().filter(|c| c.starts_with("kms:")).count();
        LoadRun {
            operations,
            succeeded: self.succeeded,
            outcomes: self.outcomes,
            first_error: self.first_error,
            elapsed_s: round3(seconds),
            per_s: if seconds > 0.0 {
                round3(self.succeeded as f64 / seconds)
            } else {
                0.0
            },
            latency: Latency::of(&self.latencies),
            aws_requests_per_operation: per(self.calls.len()),
            kms_calls_per_operation: per(kms),
            aws_requests,
        }
    }
}

/// How one operation ended: `Ok(outcome name)` counts as succeeded when it is `success`.
type Outcome = Result<String, String>;

/// Runs `operations` calls of `operation(index)` with `concurrency` in flight, timing each.
async fn drive<F, Fut>(
    first_index: u64,
    operations: usize,
    concurrency: usize,
    success: &str,
    operation: Arc<F>,
) -> Segment
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = Arc::clone(&next);
        let operation = Arc::clone(&operation);
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= operations {
                    break;
                }
                let sent = Instant::now();
                let outcome = operation(first_index + index as u64).await;
                done.push((sent.elapsed(), outcome));
            }
            done
        });
    }
    let mut segment = Segment::default();
    while let Some(joined) = tasks.join_next().await {
        for (latency, outcome) in joined.unwrap_or_default() {
            segment.latencies.push(latency);
            let name = match outcome {
                Ok(name) => name,
                Err(error) => {
                    segment.first_error.get_or_insert(error);
                    "error".to_string()
                }
            };
            if name == success {
                segment.succeeded += 1;
            }
            *segment.outcomes.entry(name).or_insert(0) += 1;
        }
    }
    segment.elapsed = started.elapsed();
    segment
}

/// A warm-up, then the measured part, whose AWS requests are the counter's from its start.
async fn warm_then_measure<F, Fut>(
    counter: &AwsRequestCounter,
    first_index: u64,
    warmup: usize,
    operations: usize,
    concurrency: usize,
    success: &str,
    operation: Arc<F>,
) -> Segment
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    drive(
        first_index,
        warmup,
        concurrency,
        success,
        Arc::clone(&operation),
    )
    .await;
    counter.reset();
    let mut segment = drive(
        first_index + warmup as u64,
        operations,
        concurrency,
        success,
        operation,
    )
    .await;
    segment.calls = counter.calls();
    counter.reset();
    segment
}

// ---------------------------------------------------------------------------------------------
// Phase 1: accept, against the baseline.

struct AcceptRuns {
    hub: LoadRun,
    baseline: LoadRun,
    body_gzipped_bytes: usize,
}

async fn run_accept(
    options: &B1Options,
    sdk: &SdkConfig,
    counter: &AwsRequestCounter,
    run_id: &str,
    progress: fn(&str),
) -> Result<AcceptRuns, InboundBenchError> {
    let stack_options = stack_options(&format!("b1-{run_id}-accept"));
    let stack = LocalStack::start(sdk, stack_options.clone()).await?;
    let client: Client = HttpClient::builder(TokioExecutor::new()).build_http();
    let baseline = Arc::new(Baseline {
        dynamodb: aws_sdk_dynamodb::Client::new(sdk),
        sqs: aws_sdk_sqs::Client::new(sdk),
        table: stack.provisioned.table_name.clone(),
        queue_url: stack.provisioned.dispatch_queue_url.clone(),
    });
    let baseline = Arc::new(move |n: u64| {
        let baseline = Arc::clone(&baseline);
        async move { baseline.accept(n).await }
    });

    let rounds = options.rounds.max(1);
    let (mut hub_total, mut baseline_total) = (Segment::default(), Segment::default());
    let mut index = 0u64;
    for round in 0..rounds {
        let operations = options.webhooks / rounds + usize::from(round < options.webhooks % rounds);
        for hub_side in [round % 2 == 1, round % 2 == 0] {
            let side = if hub_side { "hub" } else { "baseline" };
            progress(&format!(
                "B1 accept: round {}/{rounds}, {side}: {operations} webhooks at concurrency {}",
                round + 1,
                options.concurrency
            ));
            let segment = if hub_side {
                // A webhook of its own: its cache entry is filled by this part's warm-up, so it
                // holds for the next 30 s whatever the earlier rounds did.
                let hub = hub_sender(&client, &stack, &stack_options, round).await?;
                warm_then_measure(
                    counter,
                    index,
                    options.warmup,
                    operations,
                    options.concurrency,
                    "202",
                    hub,
                )
                .await
            } else {
                warm_then_measure(
                    counter,
                    index,
                    options.warmup,
                    operations,
                    options.concurrency,
                    "ok",
                    Arc::clone(&baseline),
                )
                .await
            };
            index += (options.warmup + operations) as u64;
            if hub_side {
                hub_total.absorb(segment);
            } else {
                baseline_total.absorb(segment);
            }
        }
    }
    let _ = stack.stop().await;
    let hub = hub_total.into_run();
    let baseline = baseline_total.into_run();
    progress(&format!(
        "B1 accept: hub p50 {:.3} ms, {:.1}/s; baseline p50 {:.3} ms, {:.1}/s",
        hub.latency.p50_ms, hub.per_s, baseline.latency.p50_ms, baseline.per_s
    ));
    let samples = 100u64;
    let body_gzipped_bytes = (0..samples)
        .map(|n| hub_shared::payloads::gzip(&webhook_body(n)).len())
        .sum::<usize>()
        / samples as usize;
    Ok(AcceptRuns {
        hub,
        baseline,
        body_gzipped_bytes,
    })
}

/// Creates one `standard` webhook with one `trigger_automation` action; the answer is a function
/// sending the `n`th signed webhook to it through the gateway.
async fn hub_sender(
    client: &Client,
    stack: &LocalStack,
    stack_options: &StackOptions,
    round: usize,
) -> Result<Arc<impl Fn(u64) -> HubSend + Send + Sync + 'static>, InboundBenchError> {
    let webhook = create_webhook(
        client,
        stack,
        stack_options,
        json!({"name": format!("B1 round {}", round + 1), "verification": {"scheme": "standard"},
               "actions": [{"type": "trigger_automation", "config": {"automationId": "bench"}}]}),
    )
    .await?;
    let uri = format!("{}{}", stack.url, webhook.path);
    let key = Arc::new(webhook.key);
    let client = client.clone();
    Ok(Arc::new(move |n: u64| -> HubSend {
        let (client, uri, key) = (client.clone(), uri.clone(), Arc::clone(&key));
        Box::pin(async move {
            let id = format!("msg_b1_{n}");
            let request = signed_request(&uri, &key, &id, webhook_body(n))
                .ok_or_else(|| "the request could not be built".to_string())?;
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            Ok(status.to_string())
        })
    }))
}

type HubSend = std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The least an inbound webhook needs: stored once (a conditional put, so a repeat is not stored
/// twice) and queued once.
struct Baseline {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    queue_url: String,
}

impl Baseline {
    async fn accept(&self, n: u64) -> Outcome {
        let id = format!("msg_b1_base_{n}");
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("B1BASE#{id}")))
            .item("sk", AttributeValue::S("EVENT".into()))
            .item(
                "body",
                AttributeValue::B(Blob::new(webhook_body(n).to_vec())),
            )
            .item(
                "receivedAt",
                AttributeValue::S(chrono::Utc::now().to_rfc3339()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| {
                format!(
                    "PutItem: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(json!({"kind": "b1-baseline", "eventId": id}).to_string())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "SendMessage: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        Ok("ok".into())
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl B1Report {
    /// The tables `make bench` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "B1 inbound accept: {} signed standard webhooks of {} B ({} B gzipped) at concurrency {}, {} rounds (+{} warm-up each), {} runtime threads\n",
            self.webhooks,
            self.body_bytes,
            self.body_gzipped_bytes,
            self.concurrency,
            self.rounds,
            self.warmup_per_round,
            self.runtime_threads
        );
        out.push_str(&format!(
            "{:<30} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>9} {:>9}\n",
            "run",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "max ms",
            "per s",
            "succeeded",
            "AWS/op",
            "KMS/op"
        ));
        for (name, run) in [
            ("baseline (PutItem + SendMessage)", &self.baseline),
            ("hub (gateway -> inbound-webhook)", &self.accept),
        ] {
            out.push_str(&format!(
                "{:<30} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.1} {:>11} {:>9.3} {:>9.3}\n",
                name,
                run.latency.p50_ms,
                run.latency.p99_ms,
                run.latency.mean_ms,
                run.latency.max_ms,
                run.per_s,
                format!("{}/{}", run.succeeded, run.operations),
                run.aws_requests_per_operation,
                run.kms_calls_per_operation
            ));
        }
        out.push_str(&format!(
            "hub AWS requests: {:?}\n",
            self.accept.aws_requests
        ));
        out.push_str(&format!(
            "targets: p50 <= {} x baseline (ratio {:.3}); throughput >= {} x baseline (ratio {:.3}); exactly {} AWS requests and {} KMS calls per accept -> {}\n",
            self.targets.p50_ratio,
            self.p50_ratio,
            self.targets.throughput_ratio,
            self.throughput_ratio,
            self.targets.aws_requests_per_accept,
            self.targets.kms_calls_per_accept,
            if self.pass {
                "PASS".to_string()
            } else {
                format!("FAIL: {}", self.failed_targets.join("; "))
            }
        ));
        out.push('\n');
        out.push_str(&self.cost.table());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_one_kibibyte_of_json_and_differ_per_webhook() {
        let (a, b) = (webhook_body(1), webhook_body(2));
        assert_eq!((a.len(), b.len()), (BODY_BYTES, BODY_BYTES));
        assert_ne!(a, b);
        let parsed: Value = serde_json::from_slice(&a).expect("JSON");
        assert_eq!(parsed["type"], "invoice.paid");
        assert_eq!(webhook_body(1), a, "the same webhook, the same body");
    }

    #[test]
    fn the_standard_signature_is_the_base64_hmac_of_id_timestamp_and_body() {
        // The example of the Standard Webhooks specification (standard-webhooks.md).
        let key = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("base64");
        let headers = standard_headers(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn latency_reports_nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(&samples);
        assert_eq!(
            (
                latency.p50_ms,
                latency.p99_ms,
                latency.max_ms,
                latency.mean_ms
            ),
            (50.0, 99.0, 100.0, 50.5)
        );
        assert_eq!(Latency::of(&[]).p50_ms, 0.0);
    }

    fn run(p50: f64, per_s: f64, calls: &[&str], succeeded: usize) -> LoadRun {
        let segment = Segment {
            latencies: vec![Duration::from_secs_f64(p50 / 1000.0); 2],
            outcomes: BTreeMap::from([("202".to_string(), succeeded as u64)]),
            succeeded,
            first_error: None,
            elapsed: Duration::from_secs_f64(succeeded as f64 / per_s),
            calls: calls.iter().map(|call| call.to_string()).collect(),
        };
        segment.into_run()
    }

    #[test]
    fn requests_per_accept_are_counted_over_the_accepted_webhooks() {
        let hub = run(
            10.0,
            100.0,
            &[
                "dynamodb:PutItem",
                "sqs:SendMessageBatch",
                "dynamodb:PutItem",
                "sqs:SendMessageBatch",
            ],
            2,
        );
        assert_eq!(hub.aws_requests_per_operation, 2.0);
        assert_eq!(hub.kms_calls_per_operation, 0.0);
        assert_eq!(hub.aws_requests["dynamodb:PutItem"], 2);
        assert_eq!(hub.per_s, 100.0);
        assert!(missed_targets(&hub, 1.2, 0.9).is_empty());
    }

    #[test]
    fn each_missed_target_is_named_with_its_numbers() {
        let hub = run(
            10.0,
            100.0,
            &[
                "dynamodb:PutItem",
                "sqs:SendMessageBatch",
                "dynamodb:GetItem",
                "kms:Decrypt",
            ],
            1,
        );
        let hub = LoadRun {
            operations: 2,
            ..hub
        };
        assert_eq!(
            missed_targets(&hub, 1.5, 0.5),
            vec![
                "p50 ratio 1.500 > 1.25 x baseline".to_string(),
                "throughput ratio 0.500 < 0.8 x baseline".to_string(),
                "4.000 AWS requests per accepted webhook (target exactly 2)".to_string(),
                "1.000 KMS calls per accepted webhook (target 0)".to_string(),
                "1 of 2 webhooks not accepted: {\"202\": 1}".to_string(),
            ]
        );
    }
}
