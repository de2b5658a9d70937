//! B2 (docs/benchmarks.md): signature verification CPU. Runs the criterion benchmark
//! benches/verify.rs (`cargo bench -p hub-bench --bench verify -- --noplot`), then reads the
//! median of each measurement from `<criterion dir>/<group>/<function>/<body bytes>/new/
//! estimates.json`: `verify` of every inbound scheme at 1 KiB and 64 KiB beside its baseline (the
//! raw HMAC, or ECDSA verify, of the same signed bytes). Target: verify ≤ 1.3 × baseline, on the
//! medians.
//!
//! On a shared machine other work preempts whole samples, several times their length, and moves
//! medians by ±50 %; the fastest sample of each measurement (`sample.json`: time ÷ iterations) is
//! the one least disturbed, so its ratio is reported beside the medians' to read such a run.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use hub_shared::webhooks::inbound::InboundScheme;
use serde::{Deserialize, Serialize};

use crate::b2_ids;

/// verify ÷ baseline may be at most this.
pub const TARGET_RATIO: f64 = 1.3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2Options {
    /// Run `cargo bench` first; without it the results of an earlier run are read.
    pub run_benchmarks: bool,
    pub criterion_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum B2Error {
    #[error("cannot start `cargo bench`: {0}")]
    Spawn(std::io::Error),
    #[error("`cargo bench -p hub-bench --bench verify` failed ({0})")]
    Failed(ExitStatus),
    #[error("no criterion estimate in {path}: {reason}")]
    MissingEstimate { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct B2Report {
    pub rows: Vec<B2Row>,
    pub targets: B2Targets,
    pub pass: bool,
    /// Each row over the target, stated with its numbers.
    pub failed_targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct B2Targets {
    pub ratio: f64,
}

/// One scheme at one body size, in nanoseconds per verify: criterion's median estimate, and the
/// fastest sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct B2Row {
    pub scheme: &'static str,
    pub body_bytes: usize,
    pub verify_ns: f64,
    /// `None` for `none`: it verifies nothing, so there is nothing to compare with.
    pub baseline_ns: Option<f64>,
    /// verify_ns ÷ baseline_ns: what the target applies to.
    pub ratio: Option<f64>,
    pub verify_fastest_ns: f64,
    pub baseline_fastest_ns: Option<f64>,
    pub ratio_fastest: Option<f64>,
    pub pass: bool,
}

/// What B2 reads of one criterion measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measurement {
    median_ns: f64,
    fastest_ns: f64,
}

/// The directory criterion writes to, found as criterion finds it: `CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion` (under the workspace, where `make`
/// runs).
pub fn default_criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion")
}

pub fn run_b2(options: &B2Options, log: impl Fn(&str)) -> Result<B2Report, B2Error> {
    if options.run_benchmarks {
        log("B2: cargo bench -p hub-bench --bench verify -- --noplot");
        run_criterion()?;
    }
    read_report(&options.criterion_dir)
}

fn run_criterion() -> Result<(), B2Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "bench",
            "-p",
            "hub-bench",
            "--bench",
            "verify",
            "--",
            "--noplot",
        ])
        .status()
        .map_err(B2Error::Spawn)?;
    if !status.success() {
        return Err(B2Error::Failed(status));
    }
    Ok(())
}

/// Every scheme at every size; a missing `verify` measurement is an error, a missing baseline only
/// for schemes that have one.
pub fn read_report(criterion_dir: &Path) -> Result<B2Report, B2Error> {
    let mut rows = Vec::new();
    for scheme in InboundScheme::ALL {
        let group = criterion_dir.join(b2_ids::group(scheme));
        for size in b2_ids::BODY_SIZES {
            let measurement = |function: &str| {
                measurement(&group.join(function).join(size.to_string()).join("new"))
            };
            let verify = measurement(b2_ids::VERIFY)?;
            let baseline = match scheme {
                InboundScheme::None => None,
                _ => Some(measurement(b2_ids::BASELINE)?),
            };
            rows.push(row(scheme.as_str(), size, verify, baseline));
        }
    }
    Ok(report(rows))
}

fn row(
    scheme: &'static str,
    body_bytes: usize,
    verify: Measurement,
    baseline: Option<Measurement>,
) -> B2Row {
    let ratio = baseline.map(|baseline| verify.median_ns / baseline.median_ns);
    B2Row {
        scheme,
        body_bytes,
        verify_ns: verify.median_ns,
        baseline_ns: baseline.map(|baseline| baseline.median_ns),
        ratio,
        verify_fastest_ns: verify.fastest_ns,
        baseline_fastest_ns: baseline.map(|baseline| baseline.fastest_ns),
        ratio_fastest: baseline.map(|baseline| verify.fastest_ns / baseline.fastest_ns),
        pass: ratio.is_none_or(|ratio| ratio <= TARGET_RATIO),
    }
}

fn report(rows: Vec<B2Row>) -> B2Report {
    let failed_targets: Vec<String> = rows
        .iter()
        .filter(|row| !row.pass)
        .map(|row| {
            format!(
                "{} {} B: verify {:.0} ns = {:.3} x baseline {:.0} ns (target <= {TARGET_RATIO})",
                row.scheme,
                row.body_bytes,
                row.verify_ns,
                row.ratio.unwrap_or_default(),
                row.baseline_ns.unwrap_or_default()
            )
        })
        .collect();
    B2Report {
        rows,
        targets: B2Targets {
            ratio: TARGET_RATIO,
        },
        pass: failed_targets.is_empty(),
        failed_targets,
    }
}

/// The median point estimate (`estimates.json`) and the fastest sample (`sample.json`) of one
/// criterion measurement directory, in nanoseconds per iteration.
fn measurement(dir: &Path) -> Result<Measurement, B2Error> {
    #[derive(Deserialize)]
    struct Estimates {
        median: Estimate,
    }
    #[derive(Deserialize)]
    struct Estimate {
        point_estimate: f64,
    }
    #[derive(Deserialize)]
    struct Samples {
        iters: Vec<f64>,
        times: Vec<f64>,
    }
    let estimates: Estimates = read_json(&dir.join("estimates.json"))?;
    let samples: Samples = read_json(&dir.join("sample.json"))?;
    let fastest_ns = samples
        .times
        .iter()
        .zip(&samples.iters)
        .filter(|(_, iters)| **iters > 0.0)
        .map(|(time, iters)| time / iters)
        .min_by(f64::total_cmp)
        .ok_or_else(|| B2Error::MissingEstimate {
            path: dir.join("sample.json"),
            reason: "no samples".into(),
        })?;
    Ok(Measurement {
        median_ns: estimates.median.point_estimate,
        fastest_ns,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, B2Error> {
    let missing = |reason: String| B2Error::MissingEstimate {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|error| missing(error.to_string()))?;
    serde_json::from_slice(&text).map_err(|error| missing(error.to_string()))
}

impl B2Report {
    pub fn table(&self) -> String {
        let mut out = String::from(
            "B2 signature verification CPU: ns per verify vs the raw primitive over the same signed bytes (criterion median; fastest sample)\n",
        );
        out.push_str(&format!(
            "{:<16} {:>9} {:>12} {:>12} {:>7}  {:>12} {:>12} {:>7}  {}\n",
            "scheme",
            "body",
            "verify ns",
            "baseline ns",
            "ratio",
            "fastest v",
            "fastest b",
            "ratio",
            "verdict"
        ));
        for row in &self.rows {
            let size = if row.body_bytes % 1024 == 0 {
                format!("{} KiB", row.body_bytes / 1024)
            } else {
                format!("{} B", row.body_bytes)
            };
            let ns = |value: Option<f64>| value.map_or("-".to_string(), |ns| format!("{ns:.0}"));
            let ratio = |value: Option<f64>| value.map_or("-".to_string(), |r| format!("{r:.3}"));
            out.push_str(&format!(
                "{:<16} {:>9} {:>12.0} {:>12} {:>7}  {:>12.0} {:>12} {:>7}  {}\n",
                row.scheme,
                size,
                row.verify_ns,
                ns(row.baseline_ns),
                ratio(row.ratio),
                row.verify_fastest_ns,
                ns(row.baseline_fastest_ns),
                ratio(row.ratio_fastest),
                match (row.pass, row.ratio) {
                    (_, None) => "n/a",
                    (true, Some(_)) => "PASS",
                    (false, Some(_)) => "FAIL",
                }
            ));
        }
        out.push_str(&format!(
            "target: verify <= {} x baseline (medians) for every scheme and size -> {}\n",
            self.targets.ratio,
            if self.pass { "PASS" } else { "FAIL" }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            let dir =
                std::env::temp_dir().join(format!("hub-b2-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes a measurement whose median is `ns` and whose fastest sample is `ns / 2`.
    fn write_estimate(dir: &Path, scheme: InboundScheme, function: &str, size: usize, ns: f64) {
        let path = dir
            .join(b2_ids::group(scheme))
            .join(function)
            .join(size.to_string())
            .join("new");
        std::fs::create_dir_all(&path).expect("estimate dir");
        // The shape criterion writes (other estimates and fields trimmed).
        let json = format!(
            r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{m},"standard_error":0.1}},"median":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{ns},"standard_error":0.1}}}}"#,
            m = ns + 1.0
        );
        std::fs::write(path.join("estimates.json"), json).expect("estimate file");
        let samples = format!(
            r#"{{"sampling_mode":"Linear","iters":[10.0,20.0,30.0],"times":[{},{},{}]}}"#,
            10.0 * ns,
            20.0 * ns / 2.0,
            30.0 * ns * 3.0
        );
        std::fs::write(path.join("sample.json"), samples).expect("sample file");
    }

    fn write_all(dir: &Path, verify_ns: impl Fn(InboundScheme) -> f64) {
        for scheme in InboundScheme::ALL {
            for size in b2_ids::BODY_SIZES {
                write_estimate(dir, scheme, b2_ids::VERIFY, size, verify_ns(scheme));
                if scheme != InboundScheme::None {
                    write_estimate(dir, scheme, b2_ids::BASELINE, size, 1000.0);
                }
            }
        }
    }

    #[test]
    fn every_scheme_and_size_is_read_with_its_median_and_ratio() {
        let dir = TempDir::new("all");
        write_all(&dir.0, |_| 1100.0);

        let report = read_report(&dir.0).expect("a complete report");

        assert_eq!(report.rows.len(), 24);
        assert!(report.pass, "{:?}", report.failed_targets);
        let stripe = &report.rows[4];
        assert_eq!(
            (
                stripe.scheme,
                stripe.body_bytes,
                stripe.verify_ns,
                stripe.baseline_ns
            ),
            ("stripe", 1024, 1100.0, Some(1000.0))
        );
        assert!((stripe.ratio.unwrap() - 1.1).abs() < 1e-9);
        assert_eq!(
            (stripe.verify_fastest_ns, stripe.baseline_fastest_ns),
            (550.0, Some(500.0))
        );
        assert!((stripe.ratio_fastest.unwrap() - 1.1).abs() < 1e-9);
        let none = report.rows.iter().find(|row| row.scheme == "none").unwrap();
        assert_eq!(
            (none.baseline_ns, none.ratio, none.pass),
            (None, None, true)
        );
    }

    #[test]
    fn a_scheme_over_the_target_fails_the_report_and_is_named() {
        let dir = TempDir::new("slow");
        write_all(&dir.0, |scheme| {
            if scheme == InboundScheme::Twilio {
                1400.0
            } else {
                1300.0
            }
        });

        let report = read_report(&dir.0).expect("a complete report");

        assert!(!report.pass);
        assert_eq!(
            report.failed_targets.len(),
            2,
            "{:?}",
            report.failed_targets
        );
        assert!(report.failed_targets[0].starts_with("twilio 1024 B: verify 1400 ns = 1.400 x"));
        let table = report.table();
        assert!(
            table.contains("twilio               1 KiB         1400         1000   1.400           700          500   1.400  FAIL"),
            "{table}"
        );
        assert!(table.contains("FAIL"), "{table}");
        assert!(table.ends_with("-> FAIL\n"), "{table}");
    }

    #[test]
    fn a_missing_estimate_names_its_file() {
        let dir = TempDir::new("missing");
        match read_report(&dir.0) {
            Err(B2Error::MissingEstimate { path, .. }) => {
                assert!(
                    path.ends_with("b2_standard/verify/1024/new/estimates.json"),
                    "{path:?}"
                )
            }
            other => panic!("expected a missing estimate, got {other:?}"),
        }
    }
}
