//! The measuring: wall time of a process from spawn to reap (the same code for `/bin/true`
//! and `netban`), its peak RSS from `wait4`, and the statistics and number formats of the
//! table.

use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

pub struct Run {
    pub wall: Duration,
    /// Exit code, or 128 + signal.
    pub code: i32,
    /// Peak resident set size of the process, KiB (getrusage via wait4).
    pub maxrss_kib: i64,
}

/// Spawns `cmd`, reaps it with wait4 (for its peak RSS) and times spawn-to-reap.
pub fn run_timed(cmd: &mut Command) -> Result<Run> {
    let start = Instant::now();
    let child = cmd.spawn().context("spawning a process")?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes only into the two out-pointers, which live on this stack.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let wall = start.elapsed();
    // Reaped above; dropping the handle neither waits nor kills.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Run {
        wall,
        code,
        maxrss_kib: usage.ru_maxrss,
    })
}

/// Per-call timings are in milliseconds; totals (single values) in seconds.
#[derive(Clone, Copy)]
pub enum Unit {
    Ms,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
        }
    }
    pub fn of(self, d: Duration) -> f64 {
        match self {
            Unit::Ms => d.as_secs_f64() * 1000.0,
        }
    }
}

pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

pub struct Stats {
    pub n: usize,
    pub median: Duration,
    pub p90: Duration,
    pub max: Duration,
}

pub fn stats(samples: &[Duration]) -> Stats {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return Stats {
            n,
            median: Duration::ZERO,
            p90: Duration::ZERO,
            max: Duration::ZERO,
        };
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    };
    let p90 = v[((n * 9).div_ceil(10)).clamp(1, n) - 1];
    Stats {
        n,
        median,
        p90,
        max: v[n - 1],
    }
}

pub fn mib(kib: i64) -> String {
    num(kib as f64 / 1024.0)
}

pub fn median_i64(v: &[i64]) -> i64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&x| Duration::from_millis(x))
                .collect::<Vec<_>>()
        };
        let s = stats(&ms(&[5, 1, 3, 2, 4, 6, 7, 8, 9, 10]));
        assert_eq!(s.median, Duration::from_micros(5500));
        assert_eq!(s.p90, Duration::from_millis(9));
        assert_eq!(s.max, Duration::from_millis(10));
        assert_eq!(stats(&ms(&[3])).p90, Duration::from_millis(3));
    }
}
