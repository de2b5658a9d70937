//! `make bench`: runs the benchmarks of docs/benchmarks.md, prints a table and writes `target/bench/report.json`.
//! Today that is B1 (inbound accept path and the cost of a million webhooks), B2 (signature
//! verification CPU), B3 (sync engine), B4 (outgoing delivery) and B5 (cold start); each is a
//! module with its own report struct and a field of [`report::Report`].

mod aws_cost;
mod b2_ids;
mod cli;
mod cold_start;
mod connection_counter;
mod delivery;
mod elf;
mod gateway;
mod inbound;
mod local_aws;
mod proc_cpu;
mod report;
mod runtime_api;
mod signature_cpu;
mod sink;
mod stats;
mod sync;

use std::process::ExitCode;

use cold_start::B5Options;
use delivery::B4Options;
use inbound::B1Options;
use report::{Machine, Report};
use signature_cpu::B2Options;
use sync::B3Options;

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Usage(#[from] cli::UsageError),
    #[error(transparent)]
    ColdStart(#[from] cold_start::ColdStartError),
    #[error(transparent)]
    Delivery(#[from] delivery::DeliveryBenchError),
    #[error(transparent)]
    SignatureCpu(#[from] signature_cpu::B2Error),
    #[error(transparent)]
    Inbound(#[from] inbound::InboundBenchError),
    #[error(transparent)]
    Sync(#[from] sync::SyncBenchError),
    #[error("cannot write the report {path}: {source}")]
    WriteReport {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

// One thread: the harness must take as little CPU as possible from the binaries it times.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hub-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A missed target is a result, not an error: it is reported (`pass: false`) and the exit is still 0.
async fn run() -> Result<(), BenchError> {
    let args = cli::parse_args(std::env::args().skip(1))?;
    if let Some(child) = args.b3_child {
        // One of B3's memory runs: nothing else, no report.
        return Ok(sync::child_main(child.tenant, child.integration).await?);
    }
    let machine = Machine::detect();
    let work_dir = args
        .report
        .parent()
        .map(|dir| dir.to_path_buf())
        .unwrap_or_default();

    // First, before B5 and B4 start their processes: B2 times CPU-bound code and wants a quiet
    // machine.
    let b2 = match args.b2 {
        None => None,
        Some(mode) => {
            let b2_options = B2Options {
                run_benchmarks: mode == cli::B2Mode::Run,
                criterion_dir: signature_cpu::default_criterion_dir(),
            };
            Some(signature_cpu::run_b2(&b2_options, |line| {
                eprintln!("{line}")
            })?)
        }
    };
    let b5 = if args.functions.is_empty() {
        None
    } else {
        let b5_options = B5Options {
            functions: args.functions.clone(),
            baseline: args.baseline.clone(),
            events_dir: args.events_dir.clone(),
            runs: args.runs,
            warmup: args.warmup,
            work_dir: work_dir.clone(),
        };
        Some(cold_start::run_b5(&b5_options, |line| eprintln!("{line}")).await?)
    };
    // Before B4, on a moto of its own: B4's queues and tables would slow it.
    let b1 = match args.b1 {
        None => None,
        Some(b1) => {
            let b1_options = B1Options {
                webhooks: b1.webhooks,
                concurrency: b1.concurrency,
                rounds: b1.rounds,
                warmup: b1.warmup,
                cost_webhooks: b1.cost_webhooks,
                aws_endpoint: bench_aws_endpoint(),
                work_dir: work_dir.clone(),
            };
            Some(inbound::run_b1(b1_options, |line| eprintln!("{line}")).await?)
        }
    };
    // After B1, on a moto of its own.
    let b3 = match args.b3 {
        None => None,
        Some(b3) => {
            let b3_options = B3Options {
                records: b3.records,
                small_records: b3.small_records,
                aws_endpoint: bench_aws_endpoint(),
                work_dir: work_dir.clone(),
            };
            Some(sync::run_b3(b3_options, |line| eprintln!("{line}")).await?)
        }
    };
    let b4 = match &args.b4 {
        None => None,
        Some(b4) => {
            let b4_options = B4Options {
                dispatcher: b4.dispatcher.clone(),
                events: b4.events,
                concurrency: b4.concurrency,
                failure_deadline: std::time::Duration::from_secs(b4.failure_deadline_seconds),
                aws_endpoint: bench_aws_endpoint(),
                work_dir,
            };
            Some(delivery::run_b4(&b4_options, |line| eprintln!("{line}")).await?)
        }
    };

    for table in [
        b1.as_ref().map(|b1| b1.table()),
        b2.as_ref().map(|b2| b2.table()),
        b3.as_ref().map(|b3| b3.table()),
        b4.as_ref().map(|b4| b4.table()),
        b5.as_ref().map(|b5| b5.table()),
    ]
    .into_iter()
    .flatten()
    {
        println!();
        println!("{table}");
    }
    let report = Report {
        b1,
        b2,
        b3,
        b4,
        b5,
        machine,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    report
        .write_json(&args.report)
        .map_err(|source| BenchError::WriteReport {
            path: args.report.clone(),
            source,
        })?;
    println!(
        "machine: {} x {} ({}); report: {}",
        report.machine.cpus,
        report.machine.cpu_model.as_deref().unwrap_or("unknown CPU"),
        report.machine.kernel.as_deref().unwrap_or("unknown kernel"),
        args.report.display()
    );
    Ok(())
}

/// A moto to use instead of starting one (B1, B3, B4).
fn bench_aws_endpoint() -> Option<String> {
    std::env::var("BENCH_AWS_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
}
