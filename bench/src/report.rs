//! `target/bench/report.json`: one optional section per benchmark (B1-B5), the machine and the time.

use std::path::Path;

use serde::Serialize;

use crate::cold_start::B5Report;
use crate::delivery::B4Report;
use crate::inbound::B1Report;
use crate::signature_cpu::B2Report;
use crate::sync::B3Report;

#[derive(Debug, Serialize)]
pub struct Report {
    #[serde(rename = "B1", skip_serializing_if = "Option::is_none")]
    pub b1: Option<B1Report>,
    #[serde(rename = "B2", skip_serializing_if = "Option::is_none")]
    pub b2: Option<B2Report>,
    #[serde(rename = "B3", skip_serializing_if = "Option::is_none")]
    pub b3: Option<B3Report>,
    #[serde(rename = "B4", skip_serializing_if = "Option::is_none")]
    pub b4: Option<B4Report>,
    #[serde(rename = "B5", skip_serializing_if = "Option::is_none")]
    pub b5: Option<B5Report>,
    pub machine: Machine,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

/// Absolute times only mean something next to the machine they came from.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_total_mb: Option<u64>,
    pub kernel: Option<String>,
    pub os: &'static str,
    pub arch: &'static str,
    pub rustc: Option<String>,
    /// `/proc/loadavg` when the benchmarks started: other work on a shared machine shows here.
    pub load_average_at_start: Option<String>,
}

impl Machine {
    pub fn detect() -> Machine {
        let proc_file = |path: &str| std::fs::read_to_string(path).ok();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: proc_file("/proc/cpuinfo").and_then(|cpuinfo| cpu_model(&cpuinfo)),
            memory_total_mb: proc_file("/proc/meminfo")
                .and_then(|meminfo| memory_total_mb(&meminfo)),
            kernel: proc_file("/proc/sys/kernel/osrelease").map(|kernel| kernel.trim().to_string()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            rustc: std::process::Command::new(
                std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
            )
            .arg("--version")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string()),
            load_average_at_start: proc_file("/proc/loadavg").map(|load| load.trim().to_string()),
        }
    }
}

/// The first `model name` (x86) or `Model`/`CPU part` line (arm) of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "CPU part"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == *key && !value.trim().is_empty()).then(|| value.trim().to_string())
        })
    })
}

fn memory_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

impl Report {
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_is_read_from_the_first_model_name_line() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7R13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7R13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7R13"));
    }

    #[test]
    fn cpu_model_falls_back_to_the_arm_cpu_part() {
        assert_eq!(
            cpu_model("processor\t: 0\nCPU part\t: 0xd0c\n").as_deref(),
            Some("0xd0c")
        );
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn total_memory_is_converted_from_kib_to_mib() {
        assert_eq!(
            memory_total_mb("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24000)
        );
    }

    #[test]
    fn a_report_without_b1_to_b5_has_none_of_their_keys_and_names_the_machine() {
        let report = Report {
            b1: None,
            b2: None,
            b3: None,
            b4: None,
            b5: None,
            machine: Machine::detect(),
            timestamp: "2026-03-10T12:00:00Z".into(),
        };
        let json = serde_json::to_value(&report).expect("serializable");
        assert!(json.get("B1").is_none());
        assert!(json.get("B2").is_none());
        assert!(json.get("B3").is_none());
        assert!(json.get("B5").is_none());
        assert!(json.get("B4").is_none());
        assert_eq!(json["timestamp"], "2026-03-10T12:00:00Z");
        assert!(json["machine"]["cpus"]
            .as_u64()
            .is_some_and(|cpus| cpus >= 1));
    }
}
