//! Process figures from `/proc`: a server's resident memory (`VmRSS` in
//! `/proc/PID/status`) and CPU time (`utime + stime` in `/proc/PID/stat`,
//! all threads), the generator's own CPU (so a saturated generator, whose
//! latencies would be its own, is visible in the report), and raising
//! `RLIMIT_NOFILE` — every connection is a descriptor.

use std::time::Instant;

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Resident set in KiB (`None` if the process is gone or unreadable).
    pub rss_kib: Option<u64>,
    /// `utime + stime` in clock ticks.
    pub cpu_ticks: Option<u64>,
    /// When it was taken, to turn tick deltas into a percentage.
    pub at: Instant,
}

/// `/proc/<pid>` or `/proc/self`.
fn dir(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    }
}

/// `VmRSS` of a `/proc/PID/status` text, KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `utime + stime` of a `/proc/PID/stat` line, ticks. The command name (field
/// 2) may contain spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After `)`: field 3 (state) is index 0, so utime (14) is index 11, stime (15) index 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Reads `pid` (or this process when `None`).
pub fn sample(pid: Option<u32>) -> Sample {
    let d = dir(pid);
    Sample {
        rss_kib: std::fs::read_to_string(format!("{d}/status"))
            .ok()
            .as_deref()
            .and_then(parse_vm_rss),
        cpu_ticks: std::fs::read_to_string(format!("{d}/stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat_ticks),
        at: Instant::now(),
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU use between two samples, in % of one core (200 = two cores busy).
/// `None` if either sample lacks CPU time or they are under 50 ms apart
/// (a 10 ms tick makes shorter spans meaningless).
pub fn cpu_pct(a: &Sample, b: &Sample) -> Option<f64> {
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
    if secs < 0.05 {
        return None;
    }
    let ticks = b.cpu_ticks?.checked_sub(a.cpu_ticks?)?;
    Some((ticks as f64 / ticks_per_sec() / secs * 1000.0).round() / 10.0)
}

/// The open-file limit before and after raising it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NofileLimit {
    /// Soft limit found at start: what the process would have had.
    pub soft_before: u64,
    /// Soft limit now (the hard limit, if raising worked): at most this many
    /// sockets, so at most this many connections minus a few.
    pub soft: u64,
    /// Hard limit: the ceiling for one process without privileges.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_nofile() -> NofileLimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return NofileLimit {
            soft_before: 0,
            soft: 0,
            hard: 0,
        };
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit with soft <= hard.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    NofileLimit {
        soft_before: before,
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            parse_vm_rss("Name:\troomcast\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\n"),
            Some(12345)
        );
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        // A command name with spaces and a parenthesis.
        let stat = "4242 (weird ) name) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(stat), Some(333));
        let own = sample(None);
        assert!(own.rss_kib.unwrap() > 0);
        assert!(own.cpu_ticks.is_some());
    }
}
