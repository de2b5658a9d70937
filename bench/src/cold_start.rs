//! B5 (docs/benchmarks.md): cold start. Each function's release binary is started, as Lambda would start it,
//! against a local [`RuntimeApi`]; the figure is the time from spawn to its first
//! `GET /runtime/invocation/next`, set against a hello-world `lambda_runtime` binary from the same build.
//!
//! Runs are interleaved (baseline, function, baseline, ...) so drift on a noisy machine hits every
//! binary alike. Two [`ConnectionCounter`]s stand in for the AWS endpoint and the instance metadata
//! service, so any network call made before the first invocation is seen.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::connection_counter::ConnectionCounter;
use crate::elf;
use crate::runtime_api::{Invocation, RuntimeApi, RuntimeApiCall};
use crate::stats::{self, Summary};

/// The report key of the baseline.
pub const BASELINE_NAME: &str = "hello";
/// The event each function's first invocation receives (a file in `events/`) and the answer it must
/// give: for an HTTP function a cheap public route, for an SQS consumer a record it refuses without
/// touching AWS, so the first response shows the function's own path, not AWS calls. A new function
/// adds a line.
const INVOCATION_EVENTS: &[(&str, &str, Expected)] = &[
    ("integrations", "apigw-get-health.json", Expected::HttpOk),
    (
        "retry-dispatcher",
        "sqs-malformed.json",
        Expected::SqsBatchFailures,
    ),
    // Every answer of the public receiver but this one reads the webhook from DynamoDB.
    (
        "inbound-webhook",
        "inbound-post-unknown-webhook.json",
        Expected::HttpProblem(404),
    ),
    // Every answer of the oauth function but a callback without a state reads DynamoDB or KMS.
    (
        "oauth",
        "apigw-get-callback-no-state.json",
        Expected::HttpProblem(400),
    ),
    // A body that is not a job is reported failed before any AWS request (the sync runner takes
    // SQS batches and scheduled events through one entry point).
    (
        "sync-runner",
        "sqs-malformed.json",
        Expected::SqsBatchFailures,
    ),
];

/// What a valid answer to the first invocation looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// JSON; an API Gateway response (`statusCode`) must be 2xx.
    HttpOk,
    /// An API Gateway response with exactly this `statusCode` and a JSON problem body (`code`): the
    /// answer a function gives without any AWS resource.
    HttpProblem(u16),
    /// A JSON `SqsBatchResponse` naming every record of the event in `batchItemFailures` (each
    /// record of the fixture is one the consumer must refuse), and nothing else.
    SqsBatchFailures,
}
/// The baseline echoes any JSON; it gets the same event as the HTTP functions.
const BASELINE_EVENT: &str = "apigw-get-health.json";

const TARGET_RATIO: f64 = 1.5;
const TARGET_SIZE_BYTES: u64 = 10 * 1024 * 1024;

/// How long a function may take to ask for its first event, and then to answer it.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between the first `next` and handing out the event, so a connection the function opened
/// just before polling is surely accepted and counted (it does not enter the timed figure).
const SETTLE_BEFORE_FIRST_EVENT: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    #[error("B5: no invocation event is defined for function `{0}` (add it to INVOCATION_EVENTS in bench/src/cold_start.rs)")]
    NoEventFor(String),
    #[error("B5: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("B5: {path} is not JSON: {source}")]
    EventNotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("B5: cannot inspect {path}: {source}")]
    NotElf {
        path: PathBuf,
        source: elf::ElfError,
    },
    #[error("B5: cannot prepare {path}: {source}")]
    Prepare {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("B5: cannot open a local listener: {0}")]
    Listen(std::io::Error),
    #[error("B5 {function}: cannot start {path}: {source}")]
    Spawn {
        function: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("B5 {function}: exited ({status}) before asking for an invocation; its output ends with:\n{log_tail}")]
    ExitedEarly {
        function: String,
        status: ExitStatus,
        log_tail: String,
    },
    #[error("B5 {function}: init failed (POST /runtime/init/error): {body}")]
    InitFailed { function: String, body: String },
    #[error("B5 {function}: no {what} within {} s; its output ends with:\n{log_tail}", .timeout.as_secs())]
    TimedOut {
        function: String,
        what: &'static str,
        timeout: Duration,
        log_tail: String,
    },
    #[error("B5 {function}: the first invocation failed (POST /runtime/invocation/{{id}}/error): {body}")]
    InvocationFailed { function: String, body: String },
    #[error("B5 {function}: the first invocation answered {body}")]
    BadResponse { function: String, body: String },
    #[error("B5 {function}: the Runtime API stopped unexpectedly")]
    RuntimeApiGone { function: String },
}

/// A binary to measure: its report key and where `cargo build --release` put it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionBinary {
    pub name: String,
    pub binary: PathBuf,
}

#[derive(Debug, Clone)]
pub struct B5Options {
    pub functions: Vec<FunctionBinary>,
    pub baseline: PathBuf,
    pub events_dir: PathBuf,
    pub runs: usize,
    pub warmup: usize,
    /// Binaries are copied here (a rebuild during the run cannot swap them) and each one's output of
    /// its latest run is kept in `logs/<name>.log`.
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct B5Report {
    pub hello: ColdStartStats,
    #[serde(flatten)]
    pub functions: BTreeMap<String, FunctionColdStart>,
    /// The worst (highest) function ratio: the figure the target applies to.
    pub ratio_median: f64,
    pub targets: B5Targets,
    pub pass: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct B5Targets {
    pub ratio: f64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColdStartStats {
    /// Spawn to first `GET /runtime/invocation/next`.
    #[serde(flatten)]
    pub to_first_next: Summary,
    pub size_bytes: u64,
    pub stripped: bool,
    /// The most seen in any one run (the AWS endpoint and the metadata service together).
    pub network_calls_before_first_invocation: usize,
    pub network_calls_during_first_invocation: usize,
    /// Event handed out to response received, for the first event of each run.
    pub first_invocation_median_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionColdStart {
    #[serde(flatten)]
    pub stats: ColdStartStats,
    /// median(function) / median(hello).
    pub ratio_median: f64,
    pub pass: bool,
    /// Each missed target, stated with its numbers.
    pub failed_targets: Vec<String>,
}

/// One run of one binary.
#[derive(Debug, Clone, Copy)]
struct ColdStartSample {
    to_first_next: Duration,
    first_invocation: Duration,
    network_calls_before_first_invocation: usize,
    network_calls_during_first_invocation: usize,
}

/// A binary ready to run: copied into the work dir, with its event and measured size.
struct Subject {
    name: String,
    binary: PathBuf,
    log: PathBuf,
    event: Bytes,
    expected: Expected,
    size_bytes: u64,
    stripped: bool,
    samples: Vec<ColdStartSample>,
}

/// Runs B5 and returns its report; `progress` hears one line per round.
pub async fn run_b5(
    options: &B5Options,
    mut progress: impl FnMut(&str),
) -> Result<B5Report, ColdStartError> {
    let mut baseline = prepare(
        BASELINE_NAME,
        &options.baseline,
        BASELINE_EVENT,
        Expected::HttpOk,
        options,
    )?;
    let mut functions = Vec::with_capacity(options.functions.len());
    for function in &options.functions {
        let (event, expected) = INVOCATION_EVENTS
            .iter()
            .find(|(name, _, _)| *name == function.name)
            .map(|(_, event, expected)| (*event, *expected))
            .ok_or_else(|| ColdStartError::NoEventFor(function.name.clone()))?;
        functions.push(prepare(
            &function.name,
            &function.binary,
            event,
            expected,
            options,
        )?);
    }

    let rounds = options.warmup + options.runs;
    for round in 0..rounds {
        let phase = if round < options.warmup {
            "warm-up"
        } else {
            "measured"
        };
        progress(&format!(
            "B5 cold start: round {}/{rounds} ({phase})",
            round + 1
        ));
        for subject in std::iter::once(&mut baseline).chain(functions.iter_mut()) {
            let sample = measure_cold_start(subject, round).await?;
            if round >= options.warmup {
                subject.samples.push(sample);
            }
        }
    }

    let hello = stats_of(&baseline);
    let targets = B5Targets {
        ratio: TARGET_RATIO,
        size_bytes: TARGET_SIZE_BYTES,
    };
    let functions: BTreeMap<String, FunctionColdStart> = functions
        .into_iter()
        .map(|subject| {
            let stats = stats_of(&subject);
            let ratio_median =
                stats::ratio(stats.to_first_next.median_ms, hello.to_first_next.median_ms);
            let failed_targets = missed_targets(&stats, ratio_median, targets);
            let result = FunctionColdStart {
                stats,
                ratio_median,
                pass: failed_targets.is_empty(),
                failed_targets,
            };
            (subject.name, result)
        })
        .collect();
    let ratio_median = functions
        .values()
        .map(|f| f.ratio_median)
        .fold(0.0, f64::max);
    let pass = !functions.is_empty() && functions.values().all(|f| f.pass);
    Ok(B5Report {
        hello,
        functions,
        ratio_median,
        targets,
        pass,
    })
}

fn missed_targets(stats: &ColdStartStats, ratio_median: f64, targets: B5Targets) -> Vec<String> {
    let mut missed = Vec::new();
    if ratio_median > targets.ratio {
        missed.push(format!(
            "cold-start ratio {ratio_median:.3} > {}",
            targets.ratio
        ));
    }
    if stats.size_bytes > targets.size_bytes {
        missed.push(format!(
            "binary {} bytes > {} bytes",
            stats.size_bytes, targets.size_bytes
        ));
    }
    if stats.network_calls_before_first_invocation > 0 {
        missed.push(format!(
            "{} network connection(s) before the first invocation",
            stats.network_calls_before_first_invocation
        ));
    }
    if !stats.stripped {
        missed.push("binary is not stripped".to_string());
    }
    missed
}

fn stats_of(subject: &Subject) -> ColdStartStats {
    let to_first_next: Vec<Duration> = subject.samples.iter().map(|s| s.to_first_next).collect();
    let first_invocation: Vec<Duration> =
        subject.samples.iter().map(|s| s.first_invocation).collect();
    let empty = Summary {
        median_ms: 0.0,
        p90_ms: 0.0,
        min_ms: 0.0,
        runs: 0,
    };
    ColdStartStats {
        to_first_next: Summary::of(&to_first_next).unwrap_or(empty),
        size_bytes: subject.size_bytes,
        stripped: subject.stripped,
        network_calls_before_first_invocation: subject
            .samples
            .iter()
            .map(|s| s.network_calls_before_first_invocation)
            .max()
            .unwrap_or(0),
        network_calls_during_first_invocation: subject
            .samples
            .iter()
            .map(|s| s.network_calls_during_first_invocation)
            .max()
            .unwrap_or(0),
        first_invocation_median_ms: Summary::of(&first_invocation).map_or(0.0, |s| s.median_ms),
    }
}

fn prepare(
    name: &str,
    binary: &Path,
    event_file: &str,
    expected: Expected,
    options: &B5Options,
) -> Result<Subject, ColdStartError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ColdStartError::Read {
            path: path.into(),
            source,
        })
    };
    let image = read(binary)?;
    let stripped = elf::is_stripped(&image).map_err(|source| ColdStartError::NotElf {
        path: binary.into(),
        source,
    })?;

    let event_path = options.events_dir.join(event_file);
    let event = read(&event_path)?;
    serde_json::from_slice::<serde_json::Value>(&event).map_err(|source| {
        ColdStartError::EventNotJson {
            path: event_path.clone(),
            source,
        }
    })?;

    let bin_dir = options.work_dir.join("bin");
    let log_dir = options.work_dir.join("logs");
    let copy = bin_dir.join(name);
    let prepared = std::fs::create_dir_all(&bin_dir)
        .and_then(|_| std::fs::create_dir_all(&log_dir))
        .and_then(|_| std::fs::copy(binary, &copy));
    prepared.map_err(|source| ColdStartError::Prepare {
        path: copy.clone(),
        source,
    })?;

    Ok(Subject {
        name: name.to_string(),
        binary: copy,
        log: log_dir.join(format!("{name}.log")),
        event: Bytes::from(event),
        expected,
        size_bytes: image.len() as u64,
        stripped,
        samples: Vec::new(),
    })
}

async fn measure_cold_start(
    subject: &Subject,
    round: usize,
) -> Result<ColdStartSample, ColdStartError> {
    let function = subject.name.clone();
    let aws = ConnectionCounter::start()
        .await
        .map_err(ColdStartError::Listen)?;
    let imds = ConnectionCounter::start()
        .await
        .map_err(ColdStartError::Listen)?;
    let mut api = RuntimeApi::start().await.map_err(ColdStartError::Listen)?;

    let mut command = Command::new(&subject.binary);
    command
        .env_clear()
        .envs(lambda_environment(&function, api.address(), &aws, &imds))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let log = File::create(&subject.log)
        .and_then(|log| Ok((log.try_clone()?, log)))
        .map_err(|source| ColdStartError::Prepare {
            path: subject.log.clone(),
            source,
        })?;
    command.stdout(log.0).stderr(log.1);

    let spawned_at = Instant::now();
    let mut child = command.spawn().map_err(|source| ColdStartError::Spawn {
        function: function.clone(),
        path: subject.binary.clone(),
        source,
    })?;

    let first_next = tokio::select! {
        first_next = tokio::time::timeout(START_TIMEOUT, first_next(&mut api, &function)) => first_next,
        status = child.wait() => {
            let status = status.map_err(|source| ColdStartError::Spawn { function: function.clone(), path: subject.binary.clone(), source })?;
            return Err(ColdStartError::ExitedEarly { function, status, log_tail: log_tail(&subject.log) });
        }
    };
    let (next_at, reply) = first_next.map_err(|_| ColdStartError::TimedOut {
        function: function.clone(),
        what: "GET /runtime/invocation/next",
        timeout: START_TIMEOUT,
        log_tail: log_tail(&subject.log),
    })??;

    tokio::time::sleep(SETTLE_BEFORE_FIRST_EVENT).await;
    let before = aws.connections() + imds.connections();
    let request_id = format!("b5-{function}-{round}");
    let invocation = Invocation {
        request_id: request_id.clone(),
        function_arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}"),
        deadline_in: INVOCATION_TIMEOUT,
        trace_id: format!("Root=1-00000000-{round:024x};Parent=0000000000000001;Sampled=0"),
        event: subject.event.clone(),
    };
    let handed_at = Instant::now();
    reply
        .send(invocation)
        .map_err(|_| ColdStartError::RuntimeApiGone {
            function: function.clone(),
        })?;

    let answered = tokio::select! {
        answered = tokio::time::timeout(INVOCATION_TIMEOUT, first_response(&mut api, subject, &request_id)) => answered,
        status = child.wait() => {
            let status = status.map_err(|source| ColdStartError::Spawn { function: function.clone(), path: subject.binary.clone(), source })?;
            return Err(ColdStartError::ExitedEarly { function, status, log_tail: log_tail(&subject.log) });
        }
    };
    let answered_at = answered.map_err(|_| ColdStartError::TimedOut {
        function: function.clone(),
        what: "response to the first invocation",
        timeout: INVOCATION_TIMEOUT,
        log_tail: log_tail(&subject.log),
    })??;
    let during = aws.connections() + imds.connections() - before;
    stop(&mut child).await;

    Ok(ColdStartSample {
        to_first_next: next_at.duration_since(spawned_at),
        first_invocation: answered_at.duration_since(handed_at),
        network_calls_before_first_invocation: before,
        network_calls_during_first_invocation: during,
    })
}

async fn first_next(
    api: &mut RuntimeApi,
    function: &str,
) -> Result<(Instant, oneshot::Sender<Invocation>), ColdStartError> {
    loop {
        match api.next_call().await {
            Some(RuntimeApiCall::Next { at, reply }) => return Ok((at, reply)),
            Some(RuntimeApiCall::InitError { body, .. }) => {
                return Err(ColdStartError::InitFailed {
                    function: function.into(),
                    body: lossy(&body),
                })
            }
            // A response or error before any event is nonsense; the wait for `next` will time out.
            Some(_) => continue,
            None => {
                return Err(ColdStartError::RuntimeApiGone {
                    function: function.into(),
                })
            }
        }
    }
}

async fn first_response(
    api: &mut RuntimeApi,
    subject: &Subject,
    request_id: &str,
) -> Result<Instant, ColdStartError> {
    let function = subject.name.as_str();
    loop {
        match api.next_call().await {
            Some(RuntimeApiCall::Response {
                at,
                request_id: answered,
                body,
            }) if answered == request_id => {
                check_response(function, subject.expected, &subject.event, &body)?;
                return Ok(at);
            }
            Some(RuntimeApiCall::InvocationError {
                request_id: failed,
                body,
            }) if failed == request_id => {
                return Err(ColdStartError::InvocationFailed {
                    function: function.into(),
                    body: lossy(&body),
                })
            }
            Some(RuntimeApiCall::InitError { body, .. }) => {
                return Err(ColdStartError::InitFailed {
                    function: function.into(),
                    body: lossy(&body),
                })
            }
            // A second poll can only follow the response (it is left waiting); an answer to an id
            // never handed out is ignored, and the wait times out if the real answer never comes.
            Some(
                RuntimeApiCall::Next { .. }
                | RuntimeApiCall::Response { .. }
                | RuntimeApiCall::InvocationError { .. },
            ) => continue,
            None => {
                return Err(ColdStartError::RuntimeApiGone {
                    function: function.into(),
                })
            }
        }
    }
}

/// The answer must be JSON; an API Gateway response must carry a 2xx status, and an SQS consumer's
/// must be a batch response failing exactly the records of `event`: a function that starts fast but
/// cannot serve is not a result.
fn check_response(
    function: &str,
    expected: Expected,
    event: &[u8],
    body: &[u8],
) -> Result<(), ColdStartError> {
    let bad = || ColdStartError::BadResponse {
        function: function.into(),
        body: lossy(body),
    };
    let response: serde_json::Value = serde_json::from_slice(body).map_err(|_| bad())?;
    match expected {
        Expected::HttpOk => match response.get("statusCode").map(|status| status.as_u64()) {
            None => Ok(()),
            Some(Some(200..=299)) => Ok(()),
            Some(_) => Err(bad()),
        },
        Expected::HttpProblem(status) => {
            let problem = response["body"]
                .as_str()
                .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok());
            match (response["statusCode"].as_u64(), problem) {
                (Some(code), Some(problem))
                    if code == u64::from(status) && problem["code"].is_string() =>
                {
                    Ok(())
                }
                _ => Err(bad()),
            }
        }
        Expected::SqsBatchFailures => {
            let event: serde_json::Value = serde_json::from_slice(event).map_err(|_| bad())?;
            let mut records: Vec<&str> = event["Records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|record| record["messageId"].as_str())
                .collect();
            let failures = response
                .get("batchItemFailures")
                .and_then(|failures| failures.as_array())
                .ok_or_else(bad)?;
            let mut failed = failures
                .iter()
                .map(|failure| failure["itemIdentifier"].as_str())
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(bad)?;
            records.sort_unstable();
            failed.sort_unstable();
            if records == failed {
                Ok(())
            } else {
                Err(bad())
            }
        }
    }
}

async fn stop(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// What Lambda puts in a function's environment, plus the project's configuration
/// (docs/configuration.md), with the AWS endpoint and the metadata service pointed at
/// counters and credentials given as Lambda gives them (so no credential lookup needs the network).
fn lambda_environment(
    function: &str,
    runtime_api: SocketAddr,
    aws: &ConnectionCounter,
    imds: &ConnectionCounter,
) -> Vec<(&'static str, String)> {
    let aws_url = aws.url();
    vec![
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("_HANDLER", "bootstrap".into()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/03/10/[$LATEST]0123456789abcdef0123456789abcdef".into(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_DEFAULT_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "ASIABENCHMARKEXAMPLE".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "bench/secret/access/key/EXAMPLEKEY000000000".into(),
        ),
        ("AWS_SESSION_TOKEN", "bench-session-token".into()),
        ("AWS_ENDPOINT_URL", aws_url.clone()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()),
        ("TABLE_NAME", "integrations-hub-bench".into()),
        ("KMS_KEY_ID", "alias/integrations-hub-bench".into()),
        (
            "SYNC_QUEUE_URL",
            format!("{aws_url}/123456789012/integrations-hub-bench-sync"),
        ),
        (
            "DISPATCH_QUEUE_URL",
            format!("{aws_url}/123456789012/integrations-hub-bench-dispatch"),
        ),
        ("PAYLOAD_BUCKET", "integrations-hub-bench-payloads".into()),
        ("PUBLIC_BASE_URL", "https://hub.example.com".into()),
        ("ALLOWED_RETURN_URLS", "https://app.example.com/".into()),
    ]
}

/// The end of a function's output, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read(log)
        .map(|bytes| lossy(&bytes))
        .unwrap_or_default();
    let start = text
        .char_indices()
        .rev()
        .nth(2000)
        .map_or(0, |(index, _)| index);
    text[start..].trim_end().to_string()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl B5Report {
    /// The table `make bench` prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("B5 cold start: spawn -> first GET /runtime/invocation/next\n");
        out.push_str(&format!(
            "{:<16} {:>5} {:>10} {:>9} {:>9} {:>11} {:>11} {:>10} {:>7}  {}\n",
            "binary",
            "runs",
            "median ms",
            "p90 ms",
            "min ms",
            "1st inv ms",
            "size MiB",
            "net calls",
            "ratio",
            "verdict"
        ));
        let row = |name: &str, stats: &ColdStartStats, ratio: String, verdict: String| {
            format!(
                "{:<16} {:>5} {:>10.3} {:>9.3} {:>9.3} {:>11.3} {:>11.2} {:>10} {:>7}  {}\n",
                name,
                stats.to_first_next.runs,
                stats.to_first_next.median_ms,
                stats.to_first_next.p90_ms,
                stats.to_first_next.min_ms,
                stats.first_invocation_median_ms,
                stats.size_bytes as f64 / (1024.0 * 1024.0),
                stats.network_calls_before_first_invocation,
                ratio,
                verdict
            )
        };
        out.push_str(&row(
            BASELINE_NAME,
            &self.hello,
            "1.000".into(),
            "baseline".into(),
        ));
        for (name, function) in &self.functions {
            let verdict = if function.pass {
                "PASS".to_string()
            } else {
                format!("FAIL: {}", function.failed_targets.join("; "))
            };
            out.push_str(&row(
                name,
                &function.stats,
                format!("{:.3}", function.ratio_median),
                verdict,
            ));
        }
        out.push_str(&format!(
            "targets: ratio <= {} x hello, size <= {:.0} MiB, no network call before the first invocation -> {}\n",
            self.targets.ratio,
            self.targets.size_bytes as f64 / (1024.0 * 1024.0),
            if self.pass { "PASS" } else { "FAIL" }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(median_ms: f64, size_bytes: u64, network_calls: usize) -> ColdStartStats {
        ColdStartStats {
            to_first_next: Summary {
                median_ms,
                p90_ms: median_ms,
                min_ms: median_ms,
                runs: 30,
            },
            size_bytes,
            stripped: true,
            network_calls_before_first_invocation: network_calls,
            network_calls_during_first_invocation: 0,
            first_invocation_median_ms: 0.1,
        }
    }

    const TARGETS: B5Targets = B5Targets {
        ratio: TARGET_RATIO,
        size_bytes: TARGET_SIZE_BYTES,
    };

    #[test]
    fn a_function_within_every_target_misses_none() {
        assert!(missed_targets(&stats(3.0, 9 * 1024 * 1024, 0), 1.5, TARGETS).is_empty());
    }

    #[test]
    fn each_missed_target_is_stated_with_its_numbers() {
        let missed = missed_targets(&stats(3.0, 11 * 1024 * 1024, 2), 1.62, TARGETS);
        assert_eq!(
            missed,
            vec![
                "cold-start ratio 1.620 > 1.5".to_string(),
                "binary 11534336 bytes > 10485760 bytes".to_string(),
                "2 network connection(s) before the first invocation".to_string(),
            ]
        );
    }

    #[test]
    fn an_api_gateway_error_status_is_not_a_valid_first_response() {
        let body = br#"{"statusCode":500,"body":"oops"}"#;
        assert!(matches!(
            check_response("f", Expected::HttpOk, b"{}", body),
            Err(ColdStartError::BadResponse { .. })
        ));
    }

    #[test]
    fn a_2xx_api_gateway_response_or_plain_json_is_a_valid_first_response() {
        let check = |body: &[u8]| check_response("f", Expected::HttpOk, b"{}", body);
        assert!(check(br#"{"statusCode":200,"body":"{}"}"#).is_ok());
        assert!(check(br#"{"message":"Hello, world!"}"#).is_ok());
        assert!(check(b"not json").is_err());
    }

    #[test]
    fn an_expected_problem_must_have_its_status_and_a_problem_body() {
        let check = |body: &[u8]| check_response("f", Expected::HttpProblem(404), b"{}", body);
        assert!(
            check(br#"{"statusCode":404,"body":"{\"code\":\"not_found\",\"status\":404}"}"#)
                .is_ok()
        );
        assert!(check(br#"{"statusCode":404,"body":"Not Found"}"#).is_err());
        assert!(check(br#"{"statusCode":200,"body":"{\"code\":\"x\"}"}"#).is_err());
        assert!(check(br#"{"message":"Hello, world!"}"#).is_err());
    }

    #[test]
    fn an_sqs_consumer_must_fail_exactly_the_records_it_was_given() {
        let event =
            br#"{"Records":[{"messageId":"m-1","body":"x"},{"messageId":"m-2","body":"y"}]}"#;
        let check = |body: &[u8]| check_response("f", Expected::SqsBatchFailures, event, body);
        assert!(check(
            br#"{"batchItemFailures":[{"itemIdentifier":"m-2"},{"itemIdentifier":"m-1"}]}"#
        )
        .is_ok());
        assert!(check(br#"{"batchItemFailures":[{"itemIdentifier":"m-1"}]}"#).is_err());
        assert!(check(br#"{"batchItemFailures":[]}"#).is_err());
        assert!(check(br#"{"statusCode":200}"#).is_err());
        assert!(check(b"null").is_err());
    }

    #[test]
    fn every_function_measured_has_an_invocation_event_fixture_in_events() {
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let files = INVOCATION_EVENTS.iter().map(|(_, file, _)| *file);
        for file in files.chain([BASELINE_EVENT]) {
            let event = std::fs::read(events.join(file)).expect("event fixture exists");
            serde_json::from_slice::<serde_json::Value>(&event).expect("event fixture is JSON");
        }
    }

    #[tokio::test]
    async fn the_environment_is_lambdas_with_endpoints_on_the_counters_and_no_concurrency_override()
    {
        {
            let aws = ConnectionCounter::start().await.expect("aws counter");
            let imds = ConnectionCounter::start().await.expect("imds counter");
            let env: BTreeMap<_, _> = lambda_environment(
                "integrations",
                "127.0.0.1:9001".parse().expect("address"),
                &aws,
                &imds,
            )
            .into_iter()
            .collect();
            assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
            assert_eq!(env["AWS_ENDPOINT_URL"], aws.url());
            assert_eq!(env["AWS_EC2_METADATA_SERVICE_ENDPOINT"], imds.url());
            assert!(env["SYNC_QUEUE_URL"].starts_with(&aws.url()));
            assert!(
                !env.contains_key("AWS_LAMBDA_MAX_CONCURRENCY"),
                "would start several pollers"
            );
            assert!(
                !env.contains_key("AWS_EC2_METADATA_DISABLED"),
                "an IMDS call must be seen, not skipped"
            );
            let config = hub_shared::config::Config::from_lookup(|name| env.get(name).cloned());
            assert!(
                config.is_ok(),
                "the functions must accept this configuration: {config:?}"
            );
        }
    }
}
