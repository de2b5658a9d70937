//! B3 (docs/benchmarks.md): the sync engine against a local provider.
//!
//! All against a moto of its own (or `BENCH_AWS_ENDPOINT`) behind an [`AwsRequestCounter`], on a
//! multi-threaded runtime of its own, with the local stack (`start_workers = false`: no poller,
//! the harness drives the engine itself):
//!
//! 1. **Baseline:** the same records' items, as the engine writes them (`write_synced_records`),
//!    written with a bare sequential `BatchWriteItem` loop of 25 per request to the same table,
//!    right before the full sync and again right after it (the ratio is to their mean).
//! 2. **Full sync:** a `custom_api` integration reads the provider's data set (pages of 100, six
//!    mapped fields, one a `date_format`), driven with [`run_job`] from the claim to the log,
//!    continuations included (each invocation gets the sync-runner's 300 s).
//! 3. **Incremental:** 1 % of the records changed at the provider, then a second run: the entity is
//!    `updated_since`, so the provider answers only the changed records.
//!    Then, not judged, a full resync (`full: true`) after 1 % other records changed: what an
//!    entity without an incremental mode costs on every run.
//! 4. **Memory:** one full sync of a fresh integration in a child process per size (the small data
//!    set, then the full one: `hub-bench --b3-child`), each reporting its peak RSS (`VmHWM`).
//!
//! The counter sees every request of every part; each part's requests are the counter's from its
//! start to its end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use hub_local::aws_counter::AwsRequestCounter;
use hub_local::provision::StackNames;
use hub_local::stack::{local_sdk_config, LocalStack, StackOptions};
use hub_shared::domain::{IntegrationId, JobId, RemoteId, TenantId};
use hub_shared::events::{EntityName, SyncSummary};
use hub_shared::queue::{Job, SyncJob, SyncTrigger};
use hub_shared::services::Services;
use hub_shared::store::{keys, record_hash, timestamp, LogAction, LogFilter, QueueClaim};
use hub_shared::sync::engine::{run_job, JobOutcome};
use hub_shared::sync::{Mapped, RecordMapper};
use hub_shared::sync_settings::SyncSettings;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub mod provider;

use provider::{changed_indices, contacts, Provider, PAGE_SIZE};

use crate::stats::ratio;

const TARGET_FULL_RATIO: f64 = 1.5;
const TARGET_FULL_REQUESTS_PER_1000: f64 = 60.0;
const TARGET_INCREMENTAL_REQUESTS_PER_1000: f64 = 35.0;
const TARGET_RSS_RATIO: f64 = 1.2;
const TARGET_RSS_MAX_MB: f64 = 100.0;
const CHANGED_PERCENT: usize = 1;
/// The resync's changed records sit this far after the incremental run's (other records).
const RESYNC_OFFSET: usize = 50;
const TENANT: &str = "tenant-bench-b3";
const ENTITY: &str = "contact";
/// The sync runner's `Timeout` in infra/template.yaml: each invocation's deadline.
const INVOCATION: Duration = Duration::from_secs(300);
/// How long the harness waits for a continuation message (a deferral may delay it).
const CONTINUATION_WAIT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum SyncBenchError {
    #[error("B3: moto: {0}")]
    Moto(#[from] hub_local::moto::MotoError),
    #[error("B3: the local stack: {0}")]
    Stack(#[from] hub_local::stack::StackError),
    #[error("B3: {0}")]
    Setup(String),
    #[error("B3: the sync run: {0}")]
    Run(String),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> SyncBenchError + '_ {
    move |error| SyncBenchError::Setup(format!("{what}: {error}"))
}

fn run_error<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> SyncBenchError + '_ {
    move |error| SyncBenchError::Run(format!("{what}: {error}"))
}

#[derive(Debug, Clone)]
pub struct B3Options {
    /// The data set of the full and incremental runs, and the larger memory run.
    pub records: usize,
    /// The smaller memory run.
    pub small_records: usize,
    /// A moto to use (`BENCH_AWS_ENDPOINT`); without it the harness starts its own.
    pub aws_endpoint: Option<String>,
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct B3Report {
    pub records: usize,
    pub page_size: usize,
    pub changed_records: usize,
    /// The entity definition and the field mappings of the integration.
    pub definition: Value,
    pub field_mappings: Value,
    pub runtime_threads: usize,
    /// The loop right before the full sync, and again right after it (drift hits both alike).
    pub baseline: BaselineRun,
    pub baseline_after: BaselineRun,
    /// The mean of the two loops' elapsed times.
    pub baseline_elapsed_s: f64,
    pub full: SyncRunReport,
    pub deletion_pass_replay: DeletionPassReplay,
    pub incremental: SyncRunReport,
    /// Not judged: a full resync (`full: true`) after 1 % other records changed.
    pub resync: SyncRunReport,
    pub resync_changed_records: usize,
    /// full sync elapsed ÷ the baselines' mean elapsed.
    pub full_ratio: f64,
    /// One engine item and the baseline's item of the same record.
    pub item_check: ItemCheck,
    pub memory: MemoryReport,
    pub targets: B3Targets,
    pub pass: bool,
    pub failed_targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct B3Targets {
    pub full_ratio: f64,
    pub full_dynamodb_requests_per_1000_records: f64,
    pub incremental_dynamodb_requests_per_1000_records: f64,
    pub peak_rss_ratio: f64,
    pub peak_rss_max_mb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineRun {
    pub items: usize,
    pub batch_write_requests: u64,
    /// Items DynamoDB (moto) left unprocessed and the loop sent again.
    pub unprocessed_items_resent: u64,
    pub elapsed_s: f64,
    pub items_per_s: f64,
    pub aws_requests: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncRunReport {
    pub job_id: String,
    /// `full` or `incremental`: what the provider was asked for (the whole listing, or the
    /// change feed on every page).
    pub mode: String,
    pub outcome: String,
    /// Lambda invocations the job took (1 + continuations).
    pub invocations: usize,
    pub elapsed_s: f64,
    /// The run's time split at the provider's page requests (when they arrived).
    pub phases: Phases,
    /// Records the provider returned (the log's `total`).
    pub records: u64,
    pub records_per_s: f64,
    pub summary: SyncSummary,
    pub provider_requests: u64,
    pub aws_requests: BTreeMap<String, u64>,
    pub dynamodb_requests: u64,
    pub sqs_requests: u64,
    pub kms_requests: u64,
    /// The requests in the order they were made, runs of one operation merged (`op xN`); a long
    /// sequence keeps its first and last [`SEQUENCE_ENDS`] entries.
    pub request_sequence: Vec<String>,
    /// DynamoDB requests per 1,000 records the provider returned in this run (the judged figure).
    pub dynamodb_requests_per_1000_records: f64,
    /// The records of the data set, and the DynamoDB requests per 1,000 of them.
    pub dataset_records: usize,
    pub dynamodb_requests_per_1000_dataset_records: f64,
}

/// A run's time split at its provider requests: until the first page was asked for (the claim,
/// the start, credentials, the first reads), from the first page request to the last one (every
/// page but the last processed), and from the last page request to the end (the last page, a full
/// run's deletion pass, the log, the health and the finish).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Phases {
    pub before_first_page_s: f64,
    pub first_to_last_page_s: f64,
    pub after_last_page_s: f64,
    /// first_to_last_page_s ÷ (pages - 1): the engine's time per page.
    pub per_page_s: f64,
}

impl Phases {
    pub fn of(started: Instant, arrivals: &[Instant], ended: Instant) -> Phases {
        let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) else {
            return Phases::default();
        };
        let between = last.saturating_duration_since(*first);
        Phases {
            before_first_page_s: seconds(first.saturating_duration_since(started)),
            first_to_last_page_s: seconds(between),
            after_last_page_s: seconds(ended.saturating_duration_since(*last)),
            per_page_s: if arrivals.len() > 1 {
                (between.as_secs_f64() / (arrivals.len() - 1) as f64 * 1e6).round() / 1e6
            } else {
                0.0
            },
        }
    }
}

/// The deletion pass's reads done again after the full sync, timed: the same
/// `Store::unseen_records` pages the run read (not part of any run's figures).
#[derive(Debug, Clone, Serialize)]
pub struct DeletionPassReplay {
    pub query_pages: usize,
    /// Records the pages returned (0: the run stamped every record).
    pub records: usize,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemCheck {
    pub remote_id: String,
    pub engine_item_bytes: u64,
    pub baseline_item_bytes: u64,
    /// The same attribute names, and the same `data` and `hash`.
    pub same_shape: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub small: ChildRun,
    pub large: ChildRun,
    /// peak RSS (large) ÷ peak RSS (small).
    pub peak_rss_ratio: f64,
}

/// One full sync in a child process of its own.
#[derive(Debug, Clone, Serialize)]
pub struct ChildRun {
    pub records: usize,
    /// `VmHWM` at the end: the process's peak resident set.
    pub peak_rss_kb: u64,
    pub peak_rss_mb: f64,
    /// `VmHWM` after start-up (services built), before the run.
    pub peak_rss_before_run_kb: u64,
    /// `VmRSS` at the end.
    pub rss_end_kb: u64,
    pub elapsed_s: f64,
    pub invocations: usize,
    pub outcome: String,
    pub summary: SyncSummary,
    pub dynamodb_requests: u64,
    pub dynamodb_requests_per_1000_records: f64,
}

/// What the child prints (one JSON line on stdout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChildOutput {
    pub job_id: String,
    pub peak_rss_kb: u64,
    pub peak_rss_before_run_kb: u64,
    pub rss_end_kb: u64,
    pub elapsed_s: f64,
    pub invocations: usize,
    pub outcome: String,
}

/// Runs B3 on a runtime of its own (the harness's is single-threaded, for B5).
pub async fn run_b3(options: B3Options, progress: fn(&str)) -> Result<B3Report, SyncBenchError> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .map_err(setup("the B3 runtime"))?
            .block_on(measure(&options, threads, progress))
    })
    .await
    .map_err(setup("the B3 runtime"))?
}

// ---------------------------------------------------------------------------------------------
// The integration.

/// The entity: a Google-style cursor, the records under `items`, and `updated_since` so a run
/// after a successful one asks only for what changed since (minus the engine's 60 s overlap).
pub fn entity_definition(path: &str) -> Value {
    json!({
        "request": {"method": "GET", "path": path},
        "records": "items",
        "id": "id",
        "updatedAt": "updated",
        "pagination": {"type": "cursor", "param": "pageToken", "next": "nextPageToken"},
        "incremental": {"type": "updated_since", "param": "updatedMin", "format": "rfc3339"}
    })
}

/// Six mapped fields, one of them a date transform (and one a currency conversion).
pub fn field_mappings() -> Value {
    let field = |local: &str, remote: &str| json!({"localEntity": ENTITY, "localField": local, "remoteField": remote});
    json!([
        field("fullName", "name"),
        field("email", "email"),
        field("phone", "phone"),
        field("company", "company"),
        {"localEntity": ENTITY, "localField": "amountMajor", "remoteField": "amount",
         "transform": "currency_convert", "transformConfig": {"divideBy": 100}},
        {"localEntity": ENTITY, "localField": "updatedOn", "remoteField": "updated",
         "transform": "date_format", "transformConfig": {"format": "date"}},
    ])
}

pub fn sync_settings() -> Value {
    json!({
        "enabled": false, "direction": "import", "frequency": "manual",
        "entities": [{"localEntity": ENTITY, "remoteEntity": ENTITY}],
        "fieldMappings": field_mappings(),
    })
}

fn integration_body(provider_url: &str, dataset: &str, run_id: &str) -> Value {
    json!({
        "provider": "custom_api",
        "name": format!("B3 {dataset}"),
        "connectionKey": format!("b3-{run_id}-{dataset}"),
        "credentials": {"apiKey": "b3-local-provider-api-key"},
        "config": {"baseUrl": provider_url,
                   "entities": {ENTITY: entity_definition(&format!("/ds/{dataset}/contacts"))}},
        "syncSettings": sync_settings(),
    })
}

use crate::gateway::Client;

/// Creates the integration through the gateway, as a tenant's user does (credentials sealed).
async fn create_integration(
    client: &Client,
    stack: &LocalStack,
    options: &StackOptions,
    body: Value,
) -> Result<IntegrationId, SyncBenchError> {
    let (status, answer) =
        crate::gateway::post_json_as(client, stack, options, TENANT, "/api/integrations", &body)
            .await
            .map_err(SyncBenchError::Setup)?;
    let created: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    created["id"]
        .as_str()
        .and_then(|id| IntegrationId::parse(id).ok())
        .ok_or_else(|| {
            SyncBenchError::Setup(format!(
                "creating the integration answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ))
        })
}

// ---------------------------------------------------------------------------------------------
// Driving a job as the sync runner does.

/// Claims the integration for a new job (as the API's `POST /sync` does) and runs it to its end:
/// each invocation until its deadline, a continuation taken from the sync queue as the queue's
/// poller would hand it over. Returns the outcome and the number of invocations.
pub async fn claim_and_run(
    services: &Services,
    sqs: &aws_sdk_sqs::Client,
    tenant: &TenantId,
    integration: &IntegrationId,
    full: bool,
) -> Result<(JobId, String, usize), SyncBenchError> {
    let mut job = SyncJob {
        tenant_id: tenant.clone(),
        integration_id: integration.clone(),
        job_id: JobId::generate(),
        trigger: SyncTrigger::Api,
        entities: Vec::new(),
        full,
    };
    let claim = services
        .store
        .claim_sync_queued(tenant, integration, &job.job_id)
        .await
        .map_err(run_error("the claim"))?;
    if claim != QueueClaim::Claimed {
        return Err(SyncBenchError::Run(format!(
            "the integration could not be claimed: {claim:?}"
        )));
    }
    let mut invocations = 0;
    loop {
        invocations += 1;
        let outcome = run_job(services, &job, Instant::now() + INVOCATION)
            .await
            .map_err(run_error("run_job"))?;
        match outcome {
            JobOutcome::Finished(outcome) => {
                let outcome = serde_json::to_value(outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{outcome:?}"));
                return Ok((job.job_id, outcome, invocations));
            }
            JobOutcome::Dropped => {
                return Err(SyncBenchError::Run("the job was dropped".into()));
            }
            JobOutcome::HandedOff => {
                job = next_continuation(sqs, services.config.sync_queue_url.as_ref()).await?;
            }
        }
    }
}

async fn next_continuation(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<SyncJob, SyncBenchError> {
    let deadline = Instant::now() + CONTINUATION_WAIT;
    while Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(20)
            .send()
            .await
            .map_err(|e| {
                SyncBenchError::Run(format!(
                    "ReceiveMessage: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ))
            })?;
        let Some(message) = out.messages.unwrap_or_default().into_iter().next() else {
            continue;
        };
        if let Some(handle) = message.receipt_handle() {
            let _ = sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await;
        }
        match hub_shared::queue::decode(message.body().unwrap_or_default()) {
            Ok(Job::Sync(job)) => return Ok(job),
            other => {
                return Err(SyncBenchError::Run(format!(
                    "the sync queue held something else than a continuation: {other:?}"
                )))
            }
        }
    }
    Err(SyncBenchError::Run(format!(
        "no continuation arrived within {} s",
        CONTINUATION_WAIT.as_secs()
    )))
}

/// The summary and mode of the job's run, from its log and the entity's checkpoint.
async fn run_summary(
    services: &Services,
    tenant: &TenantId,
    integration: &IntegrationId,
    job: &JobId,
) -> Result<SyncSummary, SyncBenchError> {
    let filter = LogFilter {
        action: Some(LogAction::Sync),
        status: None,
    };
    let page = services
        .store
        .list_integration_logs(tenant, integration, &filter, 20, None)
        .await
        .map_err(run_error("the logs"))?
        .map_err(run_error("the logs"))?;
    let log = page
        .items
        .into_iter()
        .find(|log| log.job_id.as_ref() == Some(job))
        .ok_or_else(|| SyncBenchError::Run(format!("no log for job {}", job.as_str())))?;
    let summary = log.summary.unwrap_or(Value::Null);
    serde_json::from_value(summary).map_err(run_error("the log's summary"))
}

/// `dynamodb:*`, `sqs:*`, `kms:*` totals of a list of calls.
fn per_service(calls: &[String]) -> (BTreeMap<String, u64>, u64, u64, u64) {
    let mut counts = BTreeMap::new();
    for call in calls {
        *counts.entry(call.clone()).or_insert(0) += 1;
    }
    let total = |service: &str| {
        counts
            .iter()
            .filter(|(call, _)| call.starts_with(&format!("{service}:")))
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let (dynamodb, sqs, kms) = (total("dynamodb"), total("sqs"), total("kms"));
    (counts, dynamodb, sqs, kms)
}

/// Entries kept at each end of a long [`request_sequence`].
pub const SEQUENCE_ENDS: usize = 24;

/// `calls` in order with runs of one call merged (`dynamodb:BatchWriteItem x4`); when that is
/// longer than twice [`SEQUENCE_ENDS`], the middle is replaced by a count of what was left out.
pub fn request_sequence(calls: &[String]) -> Vec<String> {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for call in calls {
        match runs.last_mut() {
            Some((last, n)) if last == call => *n += 1,
            _ => runs.push((call.clone(), 1)),
        }
    }
    let mut merged: Vec<String> = runs
        .into_iter()
        .map(|(call, n)| if n == 1 { call } else { format!("{call} x{n}") })
        .collect();
    if merged.len() > 2 * SEQUENCE_ENDS {
        let left_out = merged.len() - 2 * SEQUENCE_ENDS;
        let tail = merged.split_off(merged.len() - SEQUENCE_ENDS);
        merged.truncate(SEQUENCE_ENDS);
        merged.push(format!("... {left_out} more entries ..."));
        merged.extend(tail);
    }
    merged
}

/// Requests per 1,000 records, to three decimals (0 records: infinite).
pub fn per_1000(requests: u64, records: u64) -> f64 {
    if records == 0 {
        return f64::INFINITY;
    }
    (requests as f64 * 1000.0 / records as f64 * 1000.0).round() / 1000.0
}

fn per_s(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    (count as f64 / seconds * 10.0).round() / 10.0
}

fn seconds(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1000.0).round() / 1000.0
}

struct Fixture<'a> {
    services: &'a Services,
    sqs: &'a aws_sdk_sqs::Client,
    counter: &'a AwsRequestCounter,
    provider: &'a Provider,
    tenant: TenantId,
}

impl Fixture<'_> {
    /// One job, counted and timed from the claim to its end.
    async fn sync(
        &self,
        integration: &IntegrationId,
        dataset: &str,
        dataset_records: usize,
        full: bool,
    ) -> Result<SyncRunReport, SyncBenchError> {
        let (requests_before, feed_before) = self.provider.requests(dataset);
        self.counter.reset();
        let started = Instant::now();
        let (job, outcome, invocations) =
            claim_and_run(self.services, self.sqs, &self.tenant, integration, full).await?;
        let ended = Instant::now();
        let elapsed = ended - started;
        let calls = self.counter.calls();
        self.counter.reset();
        let summary = run_summary(self.services, &self.tenant, integration, &job).await?;
        let (requests_after, feed_after) = self.provider.requests(dataset);
        let (provider_requests, feed_requests) =
            (requests_after - requests_before, feed_after - feed_before);
        // What the provider was asked: the change feed on every page, or the whole listing.
        let mode = match (provider_requests, feed_requests) {
            (0, _) => "none",
            (all, feed) if feed == all => "incremental",
            (_, 0) => "full",
            _ => "mixed",
        };
        let (aws_requests, dynamodb, sqs, kms) = per_service(&calls);
        let arrivals = self.provider.arrivals(dataset, requests_before as usize);
        Ok(SyncRunReport {
            job_id: job.as_str().to_string(),
            mode: mode.to_string(),
            outcome,
            invocations,
            elapsed_s: seconds(elapsed),
            phases: Phases::of(started, &arrivals, ended),
            records: summary.total,
            records_per_s: per_s(summary.total, elapsed),
            summary,
            provider_requests,
            aws_requests,
            dynamodb_requests: dynamodb,
            sqs_requests: sqs,
            kms_requests: kms,
            request_sequence: request_sequence(&calls),
            dynamodb_requests_per_1000_records: per_1000(dynamodb, summary.total),
            dataset_records,
            dynamodb_requests_per_1000_dataset_records: per_1000(dynamodb, dataset_records as u64),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The measurement.

async fn measure(
    options: &B3Options,
    threads: usize,
    progress: fn(&str),
) -> Result<B3Report, SyncBenchError> {
    let (_moto, endpoint) = crate::local_aws::moto_or_given(
        &options.aws_endpoint,
        &options.work_dir.join("moto-b3"),
        || progress("B3: starting moto"),
    )
    .await?;
    let counter = AwsRequestCounter::start(&endpoint)
        .await
        .map_err(setup("the AWS request counter"))?;
    let sdk = local_sdk_config(counter.url());
    let run_id = chrono::Utc::now().format("%H%M%S").to_string();
    let mut stack_options = StackOptions::new(
        StackNames::with_prefix(&format!("b3-{run_id}")),
        (std::net::Ipv4Addr::LOCALHOST, 0).into(),
    );
    stack_options.start_workers = false;
    let stack = LocalStack::start(&sdk, stack_options.clone()).await?;
    let services =
        Services::new(stack.config.clone(), &sdk).map_err(setup("the engine's services"))?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let provider = Provider::start().await.map_err(setup("the provider"))?;
    let client: Client = HttpClient::builder(TokioExecutor::new()).build_http();
    let tenant = TenantId::parse(TENANT).map_err(setup("the tenant"))?;

    // Every record older than the full run's start minus the engine's 60 s overlap, so the
    // incremental run reads exactly the changed ones.
    let base = chrono::Utc::now() - chrono::TimeDelta::days(30);
    let main_set = "main";
    provider.add(main_set, contacts(options.records, base));
    let main = create_integration(
        &client,
        &stack,
        &stack_options,
        integration_body(provider.url(), main_set, &run_id),
    )
    .await?;
    let fixture = Fixture {
        services: &services,
        sqs: &sqs,
        counter: &counter,
        provider: &provider,
        tenant: tenant.clone(),
    };

    // Partitions of their own, under ids as long as the engine's (the same item sizes).
    let baseline_integration = IntegrationId::generate().as_str().to_string();
    let baseline = baseline_part(
        "before the full sync",
        &sdk,
        &stack.provisioned.table_name,
        &tenant,
        &baseline_integration,
        &contacts(options.records, base),
        &counter,
        progress,
    )
    .await?;

    progress(&format!(
        "B3 full sync: {} records in pages of {PAGE_SIZE}",
        options.records
    ));
    let full = fixture
        .sync(&main, main_set, options.records, false)
        .await?;
    progress(&format!(
        "B3 full sync: {:.1} s, {:.1} records/s, {} DynamoDB requests ({:.3} per 1,000 records)",
        full.elapsed_s,
        full.records_per_s,
        full.dynamodb_requests,
        full.dynamodb_requests_per_1000_records
    ));

    let deletion_pass_replay =
        replay_deletion_pass(&services, &tenant, &main, &full.job_id).await?;
    progress(&format!(
        "B3 deletion pass, read again: {} Query pages, {} records, {:.1} s",
        deletion_pass_replay.query_pages,
        deletion_pass_replay.records,
        deletion_pass_replay.elapsed_s
    ));

    let baseline_after = baseline_part(
        "after the full sync",
        &sdk,
        &stack.provisioned.table_name,
        &tenant,
        IntegrationId::generate().as_str(),
        &contacts(options.records, base),
        &counter,
        progress,
    )
    .await?;

    let changed = changed_indices(options.records, CHANGED_PERCENT);
    provider.change(main_set, &changed, chrono::Utc::now());
    progress(&format!(
        "B3 incremental: {} of {} records changed at the provider",
        changed.len(),
        options.records
    ));
    let incremental = fixture
        .sync(&main, main_set, options.records, false)
        .await?;
    progress(&format!(
        "B3 incremental: {:.1} s, {} records read, {} DynamoDB requests",
        incremental.elapsed_s, incremental.records, incremental.dynamodb_requests
    ));

    let item_check = check_item(
        &sdk,
        &stack.provisioned.table_name,
        &tenant,
        &main,
        &baseline_integration,
    )
    .await?;

    // Not judged: a full resync (`full: true`) after another 1 % changed, the run an entity
    // without an incremental mode gets every time (it reads and stamps every record).
    let resync_changed: Vec<usize> = changed
        .iter()
        .map(|i| i + RESYNC_OFFSET)
        .filter(|i| *i < options.records)
        .collect();
    provider.change(main_set, &resync_changed, chrono::Utc::now());
    progress(&format!(
        "B3 full resync: {} other records changed, all {} read again (not judged)",
        resync_changed.len(),
        options.records
    ));
    let resync = fixture.sync(&main, main_set, options.records, true).await?;
    progress(&format!(
        "B3 full resync: {:.1} s, {} DynamoDB requests ({:.3} per 1,000 records)",
        resync.elapsed_s, resync.dynamodb_requests, resync.dynamodb_requests_per_1000_records
    ));

    let mut children = Vec::new();
    for (label, records) in [("small", options.small_records), ("large", options.records)] {
        let set = format!("mem{records}");
        provider.add(&set, contacts(records, base));
        let integration = create_integration(
            &client,
            &stack,
            &stack_options,
            integration_body(provider.url(), &set, &format!("{run_id}{label}")),
        )
        .await?;
        progress(&format!(
            "B3 memory: a full sync of {records} records in a child process"
        ));
        counter.reset();
        let output = run_child(
            &stack,
            counter.url(),
            &tenant,
            &integration,
            &options.work_dir,
        )
        .await?;
        let (_, dynamodb, _, _) = per_service(&counter.calls());
        counter.reset();
        let job = JobId::parse(&output.job_id).map_err(run_error("the child's job id"))?;
        let summary = run_summary(&services, &tenant, &integration, &job).await?;
        progress(&format!(
            "B3 memory: {records} records, peak RSS {} kB ({} kB before the run)",
            output.peak_rss_kb, output.peak_rss_before_run_kb
        ));
        children.push(ChildRun {
            records,
            peak_rss_kb: output.peak_rss_kb,
            peak_rss_mb: (output.peak_rss_kb as f64 / 1024.0 * 10.0).round() / 10.0,
            peak_rss_before_run_kb: output.peak_rss_before_run_kb,
            rss_end_kb: output.rss_end_kb,
            elapsed_s: output.elapsed_s,
            invocations: output.invocations,
            outcome: output.outcome,
            summary,
            dynamodb_requests: dynamodb,
            dynamodb_requests_per_1000_records: per_1000(dynamodb, summary.total),
        });
    }
    let large = children
        .pop()
        .ok_or_else(|| SyncBenchError::Run("no memory run".into()))?;
    let small = children
        .pop()
        .ok_or_else(|| SyncBenchError::Run("no memory run".into()))?;
    let memory = MemoryReport {
        peak_rss_ratio: ratio(large.peak_rss_kb as f64, small.peak_rss_kb as f64),
        small,
        large,
    };
    provider.stop();
    let _ = stack.stop().await;

    let baseline_elapsed_s =
        ((baseline.elapsed_s + baseline_after.elapsed_s) / 2.0 * 1000.0).round() / 1000.0;
    let full_ratio = ratio(full.elapsed_s, baseline_elapsed_s);
    let mut failed_targets = missed_targets(
        options.records,
        &full,
        &incremental,
        full_ratio,
        &memory,
        changed.len(),
    );
    let resync_expected = SyncSummary {
        total: options.records as u64,
        updated: resync_changed.len() as u64,
        skipped: (options.records - resync_changed.len()) as u64,
        ..SyncSummary::default()
    };
    if resync.outcome != "success" || resync.summary != resync_expected || resync.mode != "full" {
        failed_targets.push(format!(
            "full resync: {} {} with {:?}, expected a full success with {resync_expected:?}",
            resync.mode, resync.outcome, resync.summary
        ));
    }
    Ok(B3Report {
        records: options.records,
        page_size: PAGE_SIZE,
        changed_records: changed.len(),
        definition: entity_definition("/ds/{name}/contacts"),
        field_mappings: field_mappings(),
        runtime_threads: threads,
        baseline,
        baseline_after,
        baseline_elapsed_s,
        full,
        deletion_pass_replay,
        incremental,
        resync_changed_records: resync_changed.len(),
        resync,
        full_ratio,
        item_check,
        memory,
        targets: B3Targets {
            full_ratio: TARGET_FULL_RATIO,
            full_dynamodb_requests_per_1000_records: TARGET_FULL_REQUESTS_PER_1000,
            incremental_dynamodb_requests_per_1000_records: TARGET_INCREMENTAL_REQUESTS_PER_1000,
            peak_rss_ratio: TARGET_RSS_RATIO,
            peak_rss_max_mb: TARGET_RSS_MAX_MB,
        },
        pass: failed_targets.is_empty(),
        failed_targets,
    })
}

/// Reads the pages of the full run's deletion pass again (`Store::unseen_records` with the run's
/// id, `{job}.{entity}`), timing them.
async fn replay_deletion_pass(
    services: &Services,
    tenant: &TenantId,
    integration: &IntegrationId,
    job: &str,
) -> Result<DeletionPassReplay, SyncBenchError> {
    let entity = EntityName::parse(ENTITY).map_err(setup("the entity"))?;
    let run = format!("{job}.{ENTITY}");
    let started = Instant::now();
    let (mut query_pages, mut records) = (0, 0);
    let mut start = None;
    loop {
        let page = services
            .store
            .unseen_records(tenant, integration, &entity, &run, start)
            .await
            .map_err(run_error("the deletion pass's Query"))?;
        query_pages += 1;
        records += page.records.len();
        match page.next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    Ok(DeletionPassReplay {
        query_pages,
        records,
        elapsed_s: seconds(started.elapsed()),
    })
}

/// Every target, with the numbers of each one missed; also a run that did not sync what it should.
pub fn missed_targets(
    records: usize,
    full: &SyncRunReport,
    incremental: &SyncRunReport,
    full_ratio: f64,
    memory: &MemoryReport,
    changed: usize,
) -> Vec<String> {
    let mut missed = Vec::new();
    if full.mode != "full" || incremental.mode != "incremental" {
        missed.push(format!(
            "the runs read the provider as {} and {} (expected full, then incremental)",
            full.mode, incremental.mode
        ));
    }
    if full_ratio > TARGET_FULL_RATIO {
        missed.push(format!(
            "full sync {full_ratio:.3} x the bare BatchWriteItem loop (target <= {TARGET_FULL_RATIO})"
        ));
    }
    if full.dynamodb_requests_per_1000_records > TARGET_FULL_REQUESTS_PER_1000 {
        missed.push(format!(
            "full sync {:.3} DynamoDB requests per 1,000 records (target <= {TARGET_FULL_REQUESTS_PER_1000})",
            full.dynamodb_requests_per_1000_records
        ));
    }
    if incremental.dynamodb_requests_per_1000_records > TARGET_INCREMENTAL_REQUESTS_PER_1000 {
        missed.push(format!(
            "incremental {:.3} DynamoDB requests per 1,000 records read (target <= {TARGET_INCREMENTAL_REQUESTS_PER_1000})",
            incremental.dynamodb_requests_per_1000_records
        ));
    }
    if memory.peak_rss_ratio > TARGET_RSS_RATIO {
        missed.push(format!(
            "peak RSS {} records {:.3} x {} records (target <= {TARGET_RSS_RATIO})",
            memory.large.records, memory.peak_rss_ratio, memory.small.records
        ));
    }
    if memory.large.peak_rss_mb >= TARGET_RSS_MAX_MB {
        missed.push(format!(
            "peak RSS {:.1} MB at {} records (target < {TARGET_RSS_MAX_MB})",
            memory.large.peak_rss_mb, memory.large.records
        ));
    }
    let expect = |what: &str, run: &SyncSummary, outcome: &str, want: SyncSummary| {
        (outcome != "success" || *run != want)
            .then(|| format!("{what}: {outcome} with {run:?}, expected success with {want:?}"))
    };
    let created = |n: usize| SyncSummary {
        total: n as u64,
        created: n as u64,
        ..SyncSummary::default()
    };
    let updated = SyncSummary {
        total: changed as u64,
        updated: changed as u64,
        ..SyncSummary::default()
    };
    missed.extend(
        [
            expect("full sync", &full.summary, &full.outcome, created(records)),
            expect(
                "incremental",
                &incremental.summary,
                &incremental.outcome,
                updated,
            ),
            expect(
                "memory run (small)",
                &memory.small.summary,
                &memory.small.outcome,
                created(memory.small.records),
            ),
            expect(
                "memory run (large)",
                &memory.large.summary,
                &memory.large.outcome,
                created(memory.large.records),
            ),
        ]
        .into_iter()
        .flatten(),
    );
    missed
}

// ---------------------------------------------------------------------------------------------
// The baseline: the same items, a bare BatchWriteItem loop.

/// A JSON value as the DynamoDB attribute `serde_dynamo` makes of it (what the store writes).
pub fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(name, value)| (name.clone(), attribute(value)))
                .collect(),
        ),
    }
}

/// The item `write_synced_records` writes for a created record (shared/src/store/sync_records.rs).
pub fn record_item(
    tenant: &TenantId,
    integration: &str,
    run: &str,
    remote_id: &RemoteId,
    data: &Map<String, Value>,
    now: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    let entity = EntityName::parse(ENTITY).unwrap_or_else(|_| unreachable!("a valid entity name"));
    let s = |text: &str| AttributeValue::S(text.to_string());
    std::collections::HashMap::from([
        (
            keys::PK.to_string(),
            s(&keys::records_pk(tenant, integration)),
        ),
        (
            keys::SK.to_string(),
            s(&keys::record_sk(&entity, remote_id)),
        ),
        ("type".to_string(), s("record")),
        ("entity".to_string(), s(ENTITY)),
        ("remoteId".to_string(), s(remote_id.as_str())),
        ("data".to_string(), attribute(&Value::Object(data.clone()))),
        ("hash".to_string(), s(&record_hash(data))),
        ("createdAt".to_string(), s(now)),
        ("updatedAt".to_string(), s(now)),
        ("deleted".to_string(), AttributeValue::Bool(false)),
        (
            "source".to_string(),
            AttributeValue::M(std::collections::HashMap::from([(
                "integrationId".to_string(),
                s(integration),
            )])),
        ),
        ("syncRun".to_string(), s(run)),
        ("syncChange".to_string(), s("created")),
    ])
}

/// The mapped `data` of each contact, with the integration's own mapper.
/// A record's remote id and its mapped `data`.
type MappedRecord = (RemoteId, Map<String, Value>);

fn mapped(contacts: &[provider::Contact]) -> Result<Vec<MappedRecord>, SyncBenchError> {
    let settings: SyncSettings =
        serde_json::from_value(sync_settings()).map_err(setup("the sync settings"))?;
    let mapper = RecordMapper::new(&settings, ENTITY, None).map_err(setup("the mapper"))?;
    contacts
        .iter()
        .map(|contact| {
            let id = RemoteId::parse(&contact.id()).map_err(setup("a remote id"))?;
            match mapper.map(&contact.to_json()).map_err(setup("a record"))? {
                Mapped::Record(data) => Ok((id, data)),
                Mapped::FilteredOut => Err(SyncBenchError::Setup("a record was filtered".into())),
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn baseline_part(
    when: &str,
    sdk: &SdkConfig,
    table: &str,
    tenant: &TenantId,
    integration: &str,
    contacts: &[provider::Contact],
    counter: &AwsRequestCounter,
    progress: fn(&str),
) -> Result<BaselineRun, SyncBenchError> {
    progress(&format!(
        "B3 baseline ({when}): {} items with BatchWriteItem (25 per request)",
        contacts.len()
    ));
    let run = run_baseline(sdk, table, tenant, integration, contacts, counter).await?;
    progress(&format!(
        "B3 baseline ({when}): {:.1} s, {:.1} items/s",
        run.elapsed_s, run.items_per_s
    ));
    Ok(run)
}

async fn run_baseline(
    sdk: &SdkConfig,
    table: &str,
    tenant: &TenantId,
    integration: &str,
    contacts: &[provider::Contact],
    counter: &AwsRequestCounter,
) -> Result<BaselineRun, SyncBenchError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let run = format!("{}.{ENTITY}", JobId::generate().as_str());
    let now = timestamp(chrono::Utc::now());
    let mut batches: Vec<Vec<WriteRequest>> = Vec::new();
    for chunk in mapped(contacts)?.chunks(25) {
        let mut batch = Vec::with_capacity(chunk.len());
        for (id, data) in chunk {
            let put = PutRequest::builder()
                .set_item(Some(record_item(tenant, integration, &run, id, data, &now)))
                .build()
                .map_err(setup("a put request"))?;
            batch.push(WriteRequest::builder().put_request(put).build());
        }
        batches.push(batch);
    }
    counter.reset();
    let started = Instant::now();
    let mut resent = 0u64;
    for batch in batches {
        let mut requests = batch;
        let mut delay = Duration::from_millis(50);
        while !requests.is_empty() {
            let out = dynamodb
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|e| {
                    SyncBenchError::Run(format!(
                        "baseline BatchWriteItem: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    ))
                })?;
            requests = out
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(table))
                .unwrap_or_default();
            if !requests.is_empty() {
                resent += requests.len() as u64;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    let elapsed = started.elapsed();
    let calls = counter.calls();
    counter.reset();
    let (aws_requests, dynamodb_requests, _, _) = per_service(&calls);
    Ok(BaselineRun {
        items: contacts.len(),
        batch_write_requests: dynamodb_requests,
        unprocessed_items_resent: resent,
        elapsed_s: seconds(elapsed),
        items_per_s: per_s(contacts.len() as u64, elapsed),
        aws_requests,
    })
}

/// Reads record `c000002` as the engine stored it and as the baseline did, and compares them.
async fn check_item(
    sdk: &SdkConfig,
    table: &str,
    tenant: &TenantId,
    engine_integration: &IntegrationId,
    baseline_integration: &str,
) -> Result<ItemCheck, SyncBenchError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let entity = EntityName::parse(ENTITY).map_err(setup("the entity"))?;
    let remote_id = RemoteId::parse("c000002").map_err(setup("the remote id"))?;
    let get = |integration: String| {
        let dynamodb = dynamodb.clone();
        let sk = keys::record_sk(&entity, &remote_id);
        let pk = keys::records_pk(tenant, &integration);
        async move {
            dynamodb
                .get_item()
                .table_name(table)
                .key(keys::PK, AttributeValue::S(pk))
                .key(keys::SK, AttributeValue::S(sk))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| {
                    SyncBenchError::Run(format!(
                        "GetItem: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    ))
                })?
                .item
                .ok_or_else(|| SyncBenchError::Run("the record is not stored".into()))
        }
    };
    let engine = get(engine_integration.as_str().to_string()).await?;
    let baseline = get(baseline_integration.to_string()).await?;
    let names = |item: &std::collections::HashMap<String, AttributeValue>| {
        let mut names: Vec<String> = item.keys().cloned().collect();
        names.sort();
        names
    };
    let same_shape = names(&engine) == names(&baseline)
        && engine.get("data") == baseline.get("data")
        && engine.get("hash") == baseline.get("hash");
    Ok(ItemCheck {
        remote_id: remote_id.as_str().to_string(),
        engine_item_bytes: item_bytes(&engine),
        baseline_item_bytes: item_bytes(&baseline),
        same_shape,
    })
}

/// DynamoDB's size of an item (docs/benchmarks.md, "Cost"), through the cost module's rule.
pub fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> u64 {
    let wire: Map<String, Value> = item
        .iter()
        .map(|(name, value)| (name.clone(), wire_json(value)))
        .collect();
    crate::aws_cost::item_size(&wire)
}

/// An attribute in DynamoDB's JSON wire form (`{"S": "..."}`).
fn wire_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::M(map) => json!({"M": map.iter()
            .map(|(name, value)| (name.clone(), wire_json(value)))
            .collect::<Map<String, Value>>()}),
        AttributeValue::L(items) => json!({"L": items.iter().map(wire_json).collect::<Vec<_>>()}),
        AttributeValue::Ss(items) => json!({"SS": items}),
        AttributeValue::Ns(items) => json!({"NS": items}),
        AttributeValue::B(blob) => json!({"B": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD, blob.as_ref())}),
        _ => json!({"NULL": true}),
    }
}

// ---------------------------------------------------------------------------------------------
// The memory runs: one full sync per child process.

/// The environment of a child: the local stack's configuration, AWS through the counter.
fn child_environment(stack: &LocalStack, aws_endpoint: &str) -> Vec<(&'static str, String)> {
    let config = &stack.config;
    let mut env = vec![("PATH", "/usr/local/bin:/usr/bin/:/bin".into())];
    env.extend(crate::local_aws::function_environment(config, aws_endpoint));
    env
}

async fn run_child(
    stack: &LocalStack,
    aws_endpoint: &str,
    tenant: &TenantId,
    integration: &IntegrationId,
    work_dir: &std::path::Path,
) -> Result<ChildOutput, SyncBenchError> {
    let exe = std::env::current_exe().map_err(setup("this executable"))?;
    let logs = work_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(setup("the log directory"))?;
    let log_path = logs.join(format!("b3-child-{}.log", integration.as_str()));
    let log = std::fs::File::create(&log_path).map_err(setup("the child's log"))?;
    let output = tokio::process::Command::new(exe)
        .env_clear()
        .envs(child_environment(stack, aws_endpoint))
        .args(["--b3-child", tenant.as_str(), integration.as_str()])
        .stdin(std::process::Stdio::null())
        .stderr(log)
        .output()
        .await
        .map_err(setup("the child process"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(SyncBenchError::Run(format!(
            "the child process exited with {} (stderr in {}): {stdout}",
            output.status,
            log_path.display()
        )));
    }
    stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<ChildOutput>(line).ok())
        .ok_or_else(|| SyncBenchError::Run(format!("the child printed no result: {stdout}")))
}

/// `hub-bench --b3-child TENANT INTEGRATION`: one full sync of the integration, on a runtime like
/// the sync runner's, configured from the environment like a function; prints a [`ChildOutput`].
pub async fn child_main(tenant: String, integration: String) -> Result<(), SyncBenchError> {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(setup("the child's runtime"))?
            .block_on(child_run(&tenant, &integration))
    })
    .await
    .map_err(setup("the child's runtime"))?
}

async fn child_run(tenant: &str, integration: &str) -> Result<(), SyncBenchError> {
    let tenant = TenantId::parse(tenant).map_err(setup("the tenant"))?;
    let integration = IntegrationId::parse(integration).map_err(setup("the integration"))?;
    let sdk = hub_shared::aws::load_sdk_config().await;
    let config = hub_shared::config::Config::from_env().map_err(setup("the configuration"))?;
    let services = Services::new(config, &sdk).map_err(setup("the services"))?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let before = proc_status_kb("VmHWM").unwrap_or(0);
    let started = Instant::now();
    let (job, outcome, invocations) =
        claim_and_run(&services, &sqs, &tenant, &integration, false).await?;
    let elapsed = started.elapsed();
    let output = ChildOutput {
        job_id: job.as_str().to_string(),
        peak_rss_kb: proc_status_kb("VmHWM").unwrap_or(0),
        peak_rss_before_run_kb: before,
        rss_end_kb: proc_status_kb("VmRSS").unwrap_or(0),
        elapsed_s: seconds(elapsed),
        invocations,
        outcome,
    };
    println!(
        "{}",
        serde_json::to_string(&output).map_err(run_error("the result"))?
    );
    Ok(())
}

fn proc_status_kb(field: &str) -> Option<u64> {
    status_kb(&std::fs::read_to_string("/proc/self/status").ok()?, field)
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM:    12345 kB`).
pub fn status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != field {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

// ---------------------------------------------------------------------------------------------
// The table.

impl B3Report {
    pub fn table(&self) -> String {
        let mut out = format!(
            "B3 sync engine: {} records in pages of {}, 6 mapped fields (one date_format), {} changed for the incremental run; {} runtime threads\n",
            self.records, self.page_size, self.changed_records, self.runtime_threads
        );
        out.push_str(&format!(
            "{:<34} {:>9} {:>10} {:>9} {:>9} {:>11} {:>11} {:>5} {:>5}\n",
            "run",
            "elapsed s",
            "records/s",
            "records",
            "provider",
            "DynamoDB",
            "DDB/1,000",
            "SQS",
            "KMS"
        ));
        for (name, run) in [
            ("baseline before (BatchWriteItem)", &self.baseline),
            ("baseline after (BatchWriteItem)", &self.baseline_after),
        ] {
            out.push_str(&format!(
                "{:<34} {:>9.3} {:>10.1} {:>9} {:>9} {:>11} {:>11.3} {:>5} {:>5}\n",
                name,
                run.elapsed_s,
                run.items_per_s,
                run.items,
                "-",
                run.batch_write_requests,
                per_1000(run.batch_write_requests, run.items as u64),
                0,
                0
            ));
        }
        for (name, run) in [
            ("full sync", &self.full),
            ("incremental (1 % changed)", &self.incremental),
            ("full resync (not judged)", &self.resync),
        ] {
            out.push_str(&format!(
                "{:<34} {:>9.3} {:>10.1} {:>9} {:>9} {:>11} {:>11.3} {:>5} {:>5}\n",
                name,
                run.elapsed_s,
                run.records_per_s,
                run.records,
                run.provider_requests,
                run.dynamodb_requests,
                run.dynamodb_requests_per_1000_records,
                run.sqs_requests,
                run.kms_requests
            ));
        }
        out.push_str(&format!(
            "full sync DynamoDB requests: {:?}\nincremental DynamoDB requests: {:?} ({:.3} per 1,000 records of the data set)\nfull resync DynamoDB requests: {:?}\n",
            self.full.aws_requests, self.incremental.aws_requests,
            self.incremental.dynamodb_requests_per_1000_dataset_records,
            self.resync.aws_requests
        ));
        for (name, run) in [
            ("full sync", &self.full),
            ("incremental", &self.incremental),
            ("full resync", &self.resync),
        ] {
            let p = &run.phases;
            out.push_str(&format!(
                "{name} phases: {:.3} s to the first page, {:.3} s first to last page ({:.1} ms per page), {:.3} s after the last page\n",
                p.before_first_page_s, p.first_to_last_page_s, p.per_page_s * 1000.0, p.after_last_page_s
            ));
        }
        out.push_str(&format!(
            "full sync deletion pass, read again after the run: {} Query pages, {} records, {:.3} s\n",
            self.deletion_pass_replay.query_pages,
            self.deletion_pass_replay.records,
            self.deletion_pass_replay.elapsed_s
        ));
        out.push_str(&format!(
            "item check ({}): engine {} B, baseline {} B, same shape: {}\n",
            self.item_check.remote_id,
            self.item_check.engine_item_bytes,
            self.item_check.baseline_item_bytes,
            self.item_check.same_shape
        ));
        for run in [&self.memory.small, &self.memory.large] {
            out.push_str(&format!(
                "memory, {} records (child process): peak RSS {} kB ({:.1} MB; {} kB before the run), {:.1} s, {} DynamoDB requests\n",
                run.records, run.peak_rss_kb, run.peak_rss_mb, run.peak_rss_before_run_kb, run.elapsed_s, run.dynamodb_requests
            ));
        }
        out.push_str(&format!(
            "targets: full <= {} x baseline (ratio {:.3} to the mean {:.3} s); <= {} DynamoDB requests per 1,000 records full ({:.3}) and <= {} incremental ({:.3}); peak RSS ratio <= {} ({:.3}) and < {} MB ({:.1}) -> {}\n",
            self.targets.full_ratio,
            self.full_ratio,
            self.baseline_elapsed_s,
            self.targets.full_dynamodb_requests_per_1000_records,
            self.full.dynamodb_requests_per_1000_records,
            self.targets.incremental_dynamodb_requests_per_1000_records,
            self.incremental.dynamodb_requests_per_1000_records,
            self.targets.peak_rss_ratio,
            self.memory.peak_rss_ratio,
            self.targets.peak_rss_max_mb,
            self.memory.large.peak_rss_mb,
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

    #[test]
    fn requests_per_thousand_records_round_to_three_decimals() {
        assert_eq!(per_1000(1005, 20_000), 50.25);
        assert_eq!(per_1000(17, 200), 85.0);
        assert_eq!(per_1000(1, 3), 333.333);
        assert!(per_1000(5, 0).is_infinite());
    }

    #[test]
    fn the_request_sequence_merges_runs_and_keeps_the_ends_of_a_long_one() {
        let calls: Vec<String> = ["a", "b", "b", "b", "a"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(request_sequence(&calls), vec!["a", "b x3", "a"]);
        let long: Vec<String> = (0..200)
            .flat_map(|_| ["w", "w", "u"])
            .map(str::to_string)
            .collect();
        let sequence = request_sequence(&long);
        assert_eq!(sequence.len(), 2 * SEQUENCE_ENDS + 1);
        assert_eq!(&sequence[..2], &["w x2", "u"]);
        assert_eq!(sequence[SEQUENCE_ENDS], "... 352 more entries ...");
        assert_eq!(sequence.last().map(String::as_str), Some("u"));
        assert!(request_sequence(&[]).is_empty());
    }

    #[test]
    fn a_run_is_split_at_its_first_and_last_page_request() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let phases = Phases::of(at(0), &[at(100), at(300), at(500)], at(1500));
        assert_eq!(
            phases,
            Phases {
                before_first_page_s: 0.1,
                first_to_last_page_s: 0.4,
                after_last_page_s: 1.0,
                per_page_s: 0.2
            }
        );
        assert_eq!(Phases::of(at(0), &[], at(5)), Phases::default());
        assert_eq!(Phases::of(at(0), &[at(1)], at(5)).per_page_s, 0.0);
    }

    #[test]
    fn calls_are_totalled_per_service() {
        let calls: Vec<String> = [
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:UpdateItem",
            "sqs:SendMessageBatch",
            "kms:Decrypt",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let (counts, dynamodb, sqs, kms) = per_service(&calls);
        assert_eq!((dynamodb, sqs, kms), (3, 1, 1));
        assert_eq!(counts["dynamodb:BatchWriteItem"], 2);
    }

    #[test]
    fn the_peak_is_read_from_proc_status() {
        let status =
            "Name:\thub-bench\nVmPeak:\t  900 kB\nVmHWM:\t   34567 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), Some(34567));
        assert_eq!(status_kb(status, "VmRSS"), Some(30000));
        assert_eq!(status_kb(status, "VmSwap"), None);
        assert!(proc_status_kb("VmHWM").is_some_and(|kb| kb > 0));
    }

    #[test]
    fn the_child_output_round_trips_as_one_json_line() {
        let output = ChildOutput {
            job_id: "job_x".into(),
            peak_rss_kb: 40_000,
            peak_rss_before_run_kb: 30_000,
            rss_end_kb: 35_000,
            elapsed_s: 12.5,
            invocations: 1,
            outcome: "success".into(),
        };
        let line = serde_json::to_string(&output).expect("JSON");
        assert!(!line.contains('\n'));
        assert_eq!(
            serde_json::from_str::<ChildOutput>(&line).expect("parsed"),
            output
        );
    }

    #[test]
    fn the_integration_maps_six_fields_with_a_date_transform_and_is_incremental() {
        let settings: SyncSettings = serde_json::from_value(sync_settings()).expect("settings");
        assert_eq!(settings.field_mappings.len(), 6);
        let contact = &contacts(2, chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)[1];
        let mapped = mapped(std::slice::from_ref(contact)).expect("mapped");
        let (id, data) = &mapped[0];
        assert_eq!(id.as_str(), "c000002");
        assert_eq!(
            Value::Object(data.clone()),
            json!({"fullName": "Contact 2", "email": "contact2@example.com",
                   "phone": "+1-555-000-0002", "company": "Company 2", "amountMajor": 2.74,
                   "updatedOn": "1970-01-01"})
        );
        let definition = entity_definition("/x");
        assert_eq!(definition["incremental"]["type"], "updated_since");
        assert_eq!(definition["pagination"]["type"], "cursor");
    }

    #[test]
    fn a_baseline_item_has_the_attributes_the_store_writes() {
        let tenant = TenantId::parse(TENANT).expect("tenant");
        let id = RemoteId::parse("c000001").expect("id");
        let data = json!({"fullName": "A", "amountMajor": 1.5, "none": null})
            .as_object()
            .cloned()
            .expect("object");
        let item = record_item(
            &tenant,
            "int1",
            "job.contact",
            &id,
            &data,
            "2026-12-01T00:00:00.000Z",
        );
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "createdAt",
                "data",
                "deleted",
                "entity",
                "hash",
                "pk",
                "remoteId",
                "sk",
                "source",
                "syncChange",
                "syncRun",
                "type",
                "updatedAt"
            ]
        );
        let AttributeValue::M(stored) = &item["data"] else {
            panic!("data is a map");
        };
        assert_eq!(stored["amountMajor"], AttributeValue::N("1.5".into()));
        assert_eq!(stored["none"], AttributeValue::Null(true));
        assert_eq!(item["hash"], AttributeValue::S(record_hash(&data)));
        assert!(item_bytes(&item) > 100);
    }

    fn run(mode: &str, dynamodb: u64, summary: SyncSummary) -> SyncRunReport {
        SyncRunReport {
            job_id: "job_x".into(),
            mode: mode.into(),
            outcome: "success".into(),
            invocations: 1,
            elapsed_s: 10.0,
            phases: Phases::default(),
            records: summary.total,
            records_per_s: 0.0,
            summary,
            provider_requests: 0,
            aws_requests: BTreeMap::new(),
            dynamodb_requests: dynamodb,
            sqs_requests: 0,
            kms_requests: 0,
            request_sequence: Vec::new(),
            dynamodb_requests_per_1000_records: per_1000(dynamodb, summary.total),
            dataset_records: 1000,
            dynamodb_requests_per_1000_dataset_records: per_1000(dynamodb, 1000),
        }
    }

    fn child(records: usize, peak_rss_kb: u64) -> ChildRun {
        ChildRun {
            records,
            peak_rss_kb,
            peak_rss_mb: peak_rss_kb as f64 / 1024.0,
            peak_rss_before_run_kb: 0,
            rss_end_kb: 0,
            elapsed_s: 1.0,
            invocations: 1,
            outcome: "success".into(),
            summary: SyncSummary {
                total: records as u64,
                created: records as u64,
                ..SyncSummary::default()
            },
            dynamodb_requests: 0,
            dynamodb_requests_per_1000_records: 0.0,
        }
    }

    #[test]
    fn met_targets_name_nothing_and_each_miss_is_named_with_its_numbers() {
        let full = run(
            "full",
            50,
            SyncSummary {
                total: 1000,
                created: 1000,
                ..SyncSummary::default()
            },
        );
        let incremental = run(
            "incremental",
            3,
            SyncSummary {
                total: 100,
                updated: 100,
                ..SyncSummary::default()
            },
        );
        let memory = MemoryReport {
            small: child(250, 40_000),
            large: child(1000, 44_000),
            peak_rss_ratio: 1.1,
        };
        assert!(missed_targets(1000, &full, &incremental, 1.4, &memory, 100).is_empty());

        let slow = run(
            "full",
            61,
            SyncSummary {
                total: 1000,
                created: 999,
                failed: 1,
                ..SyncSummary::default()
            },
        );
        let costly = run(
            "full",
            9,
            SyncSummary {
                total: 100,
                updated: 100,
                ..SyncSummary::default()
            },
        );
        let memory = MemoryReport {
            small: child(250, 40_000),
            large: child(1000, 110_000),
            peak_rss_ratio: 2.75,
        };
        let mut missed = missed_targets(1000, &slow, &costly, 1.6, &memory, 100);
        assert_eq!(missed.len(), 7, "{missed:?}");
        assert_eq!(
            missed.remove(0),
            "the runs read the provider as full and full (expected full, then incremental)"
        );
        assert_eq!(
            missed[0],
            "full sync 1.600 x the bare BatchWriteItem loop (target <= 1.5)"
        );
        assert_eq!(
            missed[1],
            "full sync 61.000 DynamoDB requests per 1,000 records (target <= 60)"
        );
        assert_eq!(
            missed[2],
            "incremental 90.000 DynamoDB requests per 1,000 records read (target <= 35)"
        );
        assert_eq!(
            missed[3],
            "peak RSS 1000 records 2.750 x 250 records (target <= 1.2)"
        );
        assert!(
            missed[4].starts_with("peak RSS 107.4 MB at 1000 records"),
            "{}",
            missed[4]
        );
        assert!(
            missed[5].starts_with("full sync: success with"),
            "{}",
            missed[5]
        );
    }
}
