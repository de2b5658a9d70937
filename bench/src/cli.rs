//! `hub-bench` arguments (the Makefile's `bench` target passes them).

use std::path::PathBuf;

use crate::cold_start::{FunctionBinary, BASELINE_NAME};

pub const USAGE: &str =
    "usage: hub-bench [--function NAME=PATH ... --baseline PATH] [--events DIR] [--runs N] [--warmup N] \
[--b4-dispatcher PATH [--b4-events N] [--b4-concurrency N] [--b4-failure-deadline SECONDS]] \
[--b2 | --b2-read-only] [--b1 [--b1-webhooks N] [--b1-concurrency N] [--b1-rounds N] [--b1-warmup N] \
[--b1-cost-webhooks N]] [--b3 [--b3-records N] [--b3-small-records N]] [--report PATH]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    pub functions: Vec<FunctionBinary>,
    /// The hello-world `lambda_runtime` binary from the same build.
    pub baseline: PathBuf,
    pub events_dir: PathBuf,
    pub runs: usize,
    pub warmup: usize,
    /// The JSON report; its directory also holds the copied binaries and the functions' logs.
    pub report: PathBuf,
    /// B4 runs when its dispatcher binary is given.
    pub b4: Option<B4Args>,
    pub b2: Option<B2Mode>,
    /// B1 runs with `--b1`.
    pub b1: Option<B1Args>,
    /// B3 runs with `--b3`.
    pub b3: Option<B3Args>,
    /// `--b3-child TENANT INTEGRATION` (hidden): this process is one of B3's memory runs.
    pub b3_child: Option<B3ChildArgs>,
}

/// B3 (the sync engine, in this process; its memory runs in child processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct B3Args {
    /// The data set of the full and incremental runs and of the larger memory run.
    pub records: usize,
    /// The smaller memory run.
    pub small_records: usize,
}

impl Default for B3Args {
    fn default() -> B3Args {
        B3Args {
            records: 20_000,
            small_records: 5_000,
        }
    }
}

/// One B3 memory run: a full sync of this integration, then its peak RSS on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B3ChildArgs {
    pub tenant: String,
    pub integration: String,
}

/// B1 (inbound accept path and the cost line, in this process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct B1Args {
    pub webhooks: usize,
    pub concurrency: usize,
    pub rounds: usize,
    pub warmup: usize,
    pub cost_webhooks: usize,
}

impl Default for B1Args {
    fn default() -> B1Args {
        B1Args {
            webhooks: 1000,
            concurrency: 16,
            rounds: 4,
            warmup: 16,
            cost_webhooks: 200,
        }
    }
}

/// B2 (signature verification CPU, criterion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B2Mode {
    /// `--b2`: run `cargo bench --bench verify`, then read its results.
    Run,
    /// `--b2-read-only`: read the results of an earlier `cargo bench --bench verify`.
    ReadOnly,
}

/// B4 (outgoing delivery through the release `retry-dispatcher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B4Args {
    pub dispatcher: PathBuf,
    pub events: usize,
    pub concurrency: usize,
    pub failure_deadline_seconds: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    #[error("{0} needs a value\n{USAGE}")]
    MissingValue(String),
    #[error("unknown argument {0}\n{USAGE}")]
    Unknown(String),
    #[error("--function expects NAME=PATH, got {0}\n{USAGE}")]
    BadFunction(String),
    #[error("`{0}` cannot name a function: it is a key of the B5 report")]
    ReservedName(String),
    #[error("{flag} expects a whole number{min}, got {value}", min = if *.at_least_one { " >= 1" } else { "" })]
    BadNumber {
        flag: &'static str,
        value: String,
        at_least_one: bool,
    },
    #[error(
        "at least one --function (B5), --b4-dispatcher (B4), --b2, --b1 or --b3 is required\n{USAGE}"
    )]
    NoFunction,
    #[error(
        "--b4-events, --b4-concurrency and --b4-failure-deadline need --b4-dispatcher\n{USAGE}"
    )]
    B4WithoutDispatcher,
    #[error("--b1-webhooks, --b1-concurrency, --b1-rounds, --b1-warmup and --b1-cost-webhooks need --b1\n{USAGE}")]
    B1KnobsWithoutB1,
    #[error("--b3-records and --b3-small-records need --b3\n{USAGE}")]
    B3KnobsWithoutB3,
    #[error("--b3-small-records ({small}) must be below --b3-records ({records})")]
    B3SmallNotSmaller { small: usize, records: usize },
    #[error("--baseline is required\n{USAGE}")]
    NoBaseline,
}

/// Keys of the B5 report object that a function name would collide with.
const RESERVED_NAMES: &[&str] = &[BASELINE_NAME, "ratio_median", "targets", "pass"];

pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<BenchArgs, UsageError> {
    let mut functions = Vec::new();
    let mut baseline = None;
    let mut events_dir = PathBuf::from("events");
    let mut runs = 30;
    let mut warmup = 3;
    let mut report = PathBuf::from("target/bench/report.json");
    let mut b4_dispatcher = None;
    let mut b4_events = None;
    let mut b4_concurrency = None;
    let mut b4_failure_deadline = None;
    let mut b2 = None;
    let mut b1 = false;
    let mut b1_args = B1Args::default();
    let mut b1_knobs = false;
    let mut b3 = false;
    let mut b3_args = B3Args::default();
    let mut b3_knobs = false;
    let mut b3_child = None;

    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| UsageError::MissingValue(flag.clone()))
        };
        match flag.as_str() {
            "--function" => {
                let spec = value()?;
                let (name, path) = spec
                    .split_once('=')
                    .filter(|(name, path)| !name.is_empty() && !path.is_empty())
                    .ok_or_else(|| UsageError::BadFunction(spec.clone()))?;
                if RESERVED_NAMES.contains(&name) {
                    return Err(UsageError::ReservedName(name.to_string()));
                }
                functions.push(FunctionBinary {
                    name: name.to_string(),
                    binary: PathBuf::from(path),
                });
            }
            "--baseline" => baseline = Some(PathBuf::from(value()?)),
            "--events" => events_dir = PathBuf::from(value()?),
            "--runs" => runs = number("--runs", value()?, true)?,
            "--warmup" => warmup = number("--warmup", value()?, false)?,
            "--report" => report = PathBuf::from(value()?),
            "--b4-dispatcher" => b4_dispatcher = Some(PathBuf::from(value()?)),
            "--b4-events" => b4_events = Some(number("--b4-events", value()?, true)?),
            "--b4-concurrency" => {
                b4_concurrency = Some(number("--b4-concurrency", value()?, true)?)
            }
            "--b4-failure-deadline" => {
                b4_failure_deadline = Some(number("--b4-failure-deadline", value()?, true)? as u64)
            }
            "--b2" => b2 = Some(B2Mode::Run),
            "--b2-read-only" => b2 = Some(B2Mode::ReadOnly),
            "--b1" => b1 = true,
            "--b1-webhooks" => {
                b1_args.webhooks = number("--b1-webhooks", value()?, true)?;
                b1_knobs = true;
            }
            "--b1-concurrency" => {
                b1_args.concurrency = number("--b1-concurrency", value()?, true)?;
                b1_knobs = true;
            }
            "--b1-rounds" => {
                b1_args.rounds = number("--b1-rounds", value()?, true)?;
                b1_knobs = true;
            }
            "--b1-warmup" => {
                b1_args.warmup = number("--b1-warmup", value()?, false)?;
                b1_knobs = true;
            }
            "--b1-cost-webhooks" => {
                b1_args.cost_webhooks = number("--b1-cost-webhooks", value()?, true)?;
                b1_knobs = true;
            }
            "--b3" => b3 = true,
            "--b3-records" => {
                b3_args.records = number("--b3-records", value()?, true)?;
                b3_knobs = true;
            }
            "--b3-small-records" => {
                b3_args.small_records = number("--b3-small-records", value()?, true)?;
                b3_knobs = true;
            }
            "--b3-child" => {
                let tenant = value()?;
                let integration = value()?;
                b3_child = Some(B3ChildArgs {
                    tenant,
                    integration,
                });
            }
            _ => return Err(UsageError::Unknown(flag)),
        }
    }
    let b4 = match b4_dispatcher {
        Some(dispatcher) => Some(B4Args {
            dispatcher,
            events: b4_events.unwrap_or(1000),
            concurrency: b4_concurrency.unwrap_or(5),
            failure_deadline_seconds: b4_failure_deadline.unwrap_or(1800),
        }),
        None if b4_events.is_some()
            || b4_concurrency.is_some()
            || b4_failure_deadline.is_some() =>
        {
            return Err(UsageError::B4WithoutDispatcher)
        }
        None => None,
    };
    if b1_knobs && !b1 {
        return Err(UsageError::B1KnobsWithoutB1);
    }
    let b1 = b1.then_some(b1_args);
    if b3_knobs && !b3 {
        return Err(UsageError::B3KnobsWithoutB3);
    }
    if b3 && b3_args.small_records >= b3_args.records {
        return Err(UsageError::B3SmallNotSmaller {
            small: b3_args.small_records,
            records: b3_args.records,
        });
    }
    let b3 = b3.then_some(b3_args);
    if functions.is_empty()
        && b4.is_none()
        && b2.is_none()
        && b1.is_none()
        && b3.is_none()
        && b3_child.is_none()
    {
        return Err(UsageError::NoFunction);
    }
    let baseline = match baseline {
        Some(baseline) => baseline,
        None if functions.is_empty() => PathBuf::new(),
        None => return Err(UsageError::NoBaseline),
    };
    Ok(BenchArgs {
        functions,
        baseline,
        events_dir,
        runs,
        warmup,
        report,
        b4,
        b2,
        b1,
        b3,
        b3_child,
    })
}

fn number(flag: &'static str, value: String, at_least_one: bool) -> Result<usize, UsageError> {
    match value.parse::<usize>() {
        Ok(n) if n >= usize::from(at_least_one) => Ok(n),
        _ => Err(UsageError::BadNumber {
            flag,
            value,
            at_least_one,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchArgs, UsageError> {
        parse_args(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn functions_and_baseline_are_enough_and_the_rest_defaults() {
        let args = parse(&[
            "--function",
            "integrations=target/release/integrations",
            "--baseline",
            "hello",
        ])
        .expect("valid arguments");
        assert_eq!(
            args,
            BenchArgs {
                functions: vec![FunctionBinary {
                    name: "integrations".into(),
                    binary: "target/release/integrations".into()
                }],
                baseline: "hello".into(),
                events_dir: "events".into(),
                runs: 30,
                warmup: 3,
                report: "target/bench/report.json".into(),
                b4: None,
                b2: None,
                b1: None,
                b3: None,
                b3_child: None,
            }
        );
    }

    #[test]
    fn b3_alone_is_enough_and_its_knobs_default_or_are_read() {
        let args = parse(&["--b3"]).expect("valid arguments");
        assert_eq!(
            args.b3,
            Some(B3Args {
                records: 20_000,
                small_records: 5_000
            })
        );
        let args = parse(&["--b3", "--b3-records", "4000", "--b3-small-records", "1000"])
            .expect("valid arguments");
        assert_eq!(
            args.b3,
            Some(B3Args {
                records: 4000,
                small_records: 1000
            })
        );
        assert_eq!(
            parse(&["--b1", "--b3-records", "10"]),
            Err(UsageError::B3KnobsWithoutB3)
        );
        assert_eq!(
            parse(&["--b3", "--b3-records", "5000"]),
            Err(UsageError::B3SmallNotSmaller {
                small: 5000,
                records: 5000
            })
        );
    }

    #[test]
    fn the_hidden_b3_child_flag_takes_a_tenant_and_an_integration() {
        let args = parse(&["--b3-child", "t1", "int_1"]).expect("valid arguments");
        assert_eq!(
            args.b3_child,
            Some(B3ChildArgs {
                tenant: "t1".into(),
                integration: "int_1".into()
            })
        );
        assert_eq!(
            parse(&["--b3-child", "t1"]),
            Err(UsageError::MissingValue("--b3-child".into()))
        );
    }

    #[test]
    fn b4_alone_is_enough_and_its_knobs_default() {
        let args = parse(&["--b4-dispatcher", "target/release/retry-dispatcher"])
            .expect("valid arguments");
        assert!(args.functions.is_empty());
        assert_eq!(
            args.b4,
            Some(B4Args {
                dispatcher: "target/release/retry-dispatcher".into(),
                events: 1000,
                concurrency: 5,
                failure_deadline_seconds: 1800,
            })
        );
        let args = parse(&[
            "--b4-dispatcher",
            "d",
            "--b4-events",
            "50",
            "--b4-concurrency",
            "2",
            "--b4-failure-deadline",
            "60",
        ])
        .expect("valid arguments");
        let b4 = args.b4.expect("B4 requested");
        assert_eq!(
            (b4.events, b4.concurrency, b4.failure_deadline_seconds),
            (50, 2, 60)
        );
    }

    #[test]
    fn b2_alone_is_enough_and_can_read_an_earlier_run() {
        let args = parse(&["--b2"]).expect("valid arguments");
        assert_eq!(
            (args.b2, args.b4, args.functions.len()),
            (Some(B2Mode::Run), None, 0)
        );
        let args = parse(&["--b2-read-only"]).expect("valid arguments");
        assert_eq!(args.b2, Some(B2Mode::ReadOnly));
    }

    #[test]
    fn b1_alone_is_enough_and_its_knobs_default_or_are_read() {
        let args = parse(&["--b1"]).expect("valid arguments");
        assert_eq!(args.b1, Some(B1Args::default()));
        assert_eq!(
            B1Args::default(),
            B1Args {
                webhooks: 1000,
                concurrency: 16,
                rounds: 4,
                warmup: 16,
                cost_webhooks: 200
            }
        );
        let args = parse(&[
            "--b1",
            "--b1-webhooks",
            "100",
            "--b1-concurrency",
            "4",
            "--b1-rounds",
            "2",
            "--b1-warmup",
            "0",
            "--b1-cost-webhooks",
            "20",
        ])
        .expect("valid arguments");
        assert_eq!(
            args.b1,
            Some(B1Args {
                webhooks: 100,
                concurrency: 4,
                rounds: 2,
                warmup: 0,
                cost_webhooks: 20
            })
        );
        assert_eq!(
            parse(&["--b2", "--b1-webhooks", "10"]),
            Err(UsageError::B1KnobsWithoutB1)
        );
    }

    #[test]
    fn b4_knobs_without_its_dispatcher_are_refused() {
        assert_eq!(
            parse(&["--function", "a=/a", "--baseline", "h", "--b4-events", "10"]),
            Err(UsageError::B4WithoutDispatcher)
        );
    }

    #[test]
    fn functions_keep_their_order_and_counts_are_read() {
        let args = parse(&[
            "--function",
            "b=/x/b",
            "--function",
            "a=/x/a",
            "--baseline",
            "h",
            "--runs",
            "5",
            "--warmup",
            "0",
        ])
        .expect("valid arguments");
        let names: Vec<&str> = args.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!((names, args.runs, args.warmup), (vec!["b", "a"], 5, 0));
    }

    #[test]
    fn a_function_without_a_path_is_refused() {
        assert_eq!(
            parse(&["--function", "integrations", "--baseline", "h"]),
            Err(UsageError::BadFunction("integrations".into()))
        );
    }

    #[test]
    fn a_function_named_like_a_report_key_is_refused() {
        assert_eq!(
            parse(&["--function", "hello=/x", "--baseline", "h"]),
            Err(UsageError::ReservedName("hello".into()))
        );
    }

    #[test]
    fn zero_runs_is_refused_but_zero_warmup_is_allowed() {
        assert!(matches!(
            parse(&["--function", "a=/a", "--baseline", "h", "--runs", "0"]),
            Err(UsageError::BadNumber { .. })
        ));
        assert!(parse(&["--function", "a=/a", "--baseline", "h", "--warmup", "0"]).is_ok());
    }

    #[test]
    fn missing_pieces_are_named() {
        assert_eq!(parse(&["--baseline", "h"]), Err(UsageError::NoFunction));
        assert_eq!(parse(&["--function", "a=/a"]), Err(UsageError::NoBaseline));
        assert_eq!(
            parse(&["--function"]),
            Err(UsageError::MissingValue("--function".into()))
        );
        assert_eq!(
            parse(&["--fast"]),
            Err(UsageError::Unknown("--fast".into()))
        );
    }
}
