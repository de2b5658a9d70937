//! CPU time of one process, from `/proc/<pid>/stat` (`utime` + `stime`, fields 14 and 15, in clock
//! ticks): the figure B4 charges to the dispatcher processes, and only to them.

use std::time::Duration;

/// `utime + stime` of `pid` so far, or `None` when it cannot be read (the process is gone).
pub fn cpu_time(pid: u32, ticks_per_second: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second.max(1) as f64,
    ))
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and
/// may hold spaces and parentheses itself, so fields are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: field 3 (state) is the first, so utime (14) is the 12th and stime (15) the 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK` (the unit of `/proc/<pid>/stat` times); 100, Linux's value, if it cannot be read.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_added_even_with_a_name_holding_spaces_and_parentheses() {
        let stat = "4242 (retry (dis) patcher) S 1 4242 4242 0 -1 4194560 2530 0 0 0 137 29 0 0 20 0 3 0 98765 123456789 4321 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(166));
    }

    #[test]
    fn a_truncated_line_gives_nothing() {
        assert_eq!(cpu_ticks("4242 (x) S 1 2 3"), None);
        assert_eq!(cpu_ticks("no parentheses"), None);
    }

    #[test]
    fn this_process_has_a_readable_cpu_time() {
        let ticks = ticks_per_second();
        assert!(ticks >= 1);
        assert!(cpu_time(std::process::id(), ticks).is_some());
    }
}
