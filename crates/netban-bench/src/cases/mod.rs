//! The cases, one file each, as methods of [`Bench`]; [`Bench::run`] runs the selected ones in the
//! order of the table. Shared here: the burst and restore parameters, the timed `netban ban`
//! loop and the three rows every burst reports.

use std::time::Duration;

use anyhow::{Result, anyhow};
use netban_testsupport::proxy::{Mode, Seen};

use crate::args::Args;
use crate::exa::{Exa, summarize};
use crate::ips::Ips;
use crate::measure::{Unit, median_i64, mib, num};
use crate::nb::Nb;
use crate::report::{Log, Row};

mod burst_cli;
mod burst_socket;
mod daemon;
mod direct;
mod inline;
mod reference;
mod restore;
mod unreachable;

/// The jail of the burst and restore cases (fail2ban's jail name = netban's lease jail).
pub const JAIL: &str = "bench";
/// Bantime of the burst and restore bans (and fail2ban's jail bantime): long enough never
/// to expire during a run.
pub const BANTIME: i64 = 86_400;
/// The inline deadline netban uses by default (`[reconcile] inline_deadline`).
pub const INLINE_DEADLINE: Duration = Duration::from_secs(3);

/// What `burst-cli` leaves for `restore`: its ExaFS (holding the rules), the netban
/// instance (holding the leases), the addresses and the bans' `time`.
pub struct Burst {
    pub x: Exa,
    pub nb: Nb,
    pub ips: Vec<String>,
    pub t0: i64,
}

pub struct Bench {
    pub args: Args,
    pub log: Log,
    pub ips: Ips,
    pub rows: Vec<Row>,
    pub true_median: Option<Duration>,
}

impl Bench {
    pub fn nb(&self, host: &str, x: &Exa) -> Result<Nb> {
        Nb::new(&self.args.netban, host, &x.proxy.url(), x.exafs.api_key())
    }

    pub fn vs_true(&self, d: Duration) -> String {
        match self.true_median {
            Some(t) if !t.is_zero() => {
                format!("{:.1}× /bin/true", d.as_secs_f64() / t.as_secs_f64())
            }
            _ => String::new(),
        }
    }

    /// Times `n` `netban ban` calls with fresh addresses; returns (walls, rss, failures).
    pub fn bans(&mut self, nb: &Nb, n: usize) -> Result<(Vec<Duration>, Vec<i64>, Vec<String>)> {
        let ips = self.ips.take(n);
        let mut walls = Vec::with_capacity(n);
        let mut rss = Vec::with_capacity(n);
        let mut bad = Vec::new();
        for ip in &ips {
            let r = nb.ban(ip)?;
            if r.code != 0 {
                bad.push(format!("{ip}: exit {}", r.code));
            }
            walls.push(r.wall);
            rss.push(r.maxrss_kib);
        }
        if !bad.is_empty() {
            self.log.say(format!(
                "  {} calls failed, e.g. {}; stderr:\n{}",
                bad.len(),
                bad[0],
                nb.err_tail()
            ));
        }
        Ok((walls, rss, bad))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn burst_rows(
        &mut self,
        case: &str,
        what: &str,
        n: usize,
        walls: &[Duration],
        rss: Option<&[i64]>,
        bad: usize,
        submitted: Duration,
        (first, all): (Option<Duration>, Option<Duration>),
        seen: &[Seen],
        mem: Option<(i64, i64)>,
        held: usize,
        extra: &str,
    ) {
        let rss = rss
            .map(|r| format!("; peak RSS {} MiB/call", mib(median_i64(r))))
            .unwrap_or_default();
        self.rows.push(Row::timing(
            case,
            &format!("{what}: per ban, while the daemon delivers"),
            walls,
            Unit::Ms,
            format!(
                "all {n} submitted in {} s ({} bans/s){rss}; failed: {bad}{extra}",
                num(submitted.as_secs_f64()),
                num(n as f64 / submitted.as_secs_f64())
            ),
        ));
        let (value, rate) = match all {
            Some(all) => {
                let sustained = match first {
                    Some(f) if all > f && n > 1 => format!(
                        ", {} req/s from first to last POST",
                        num((n - 1) as f64 / (all - f).as_secs_f64())
                    ),
                    _ => String::new(),
                };
                (
                    num(all.as_secs_f64()),
                    format!(
                        "**{} rules/s** overall{sustained}",
                        num(n as f64 / all.as_secs_f64())
                    ),
                )
            }
            None => (
                format!("not within {} s", self.args.timeout.as_secs()),
                String::new(),
            ),
        };
        self.rows.push(Row::single(
            case,
            &format!("first ban → ExaFS holds all {n} rules"),
            n,
            value,
            "s",
            format!(
                "{rate}; ExaFS active rules checked in its DB: {held}/{n}; requests: {}",
                summarize(seen)
            ),
        ));
        self.rows.push(Row::single(
            case,
            "daemon peak RSS (VmHWM) after the burst",
            n,
            mem.map(|(h, _)| mib(h)).unwrap_or_else(|| "?".into()),
            "MiB",
            mem.map(|(_, r)| format!("VmRSS at the end {} MiB", mib(r)))
                .unwrap_or_default(),
        ));
    }
}

impl Bench {
    pub fn new(args: Args, log: Log) -> Bench {
        Bench {
            args,
            log,
            ips: Ips::default(),
            rows: Vec::new(),
            true_median: None,
        }
    }

    /// Runs the selected cases against `x` (the ExaFS of the single-call cases; each burst
    /// starts a fresh one), a failed case giving a FAILED row.
    pub fn run(&mut self, x: &Exa) -> Result<()> {
        // The reference always runs: the other rows are compared with it.
        if let Err(e) = self.reference() {
            self.rows.push(Row::failed("reference", "/bin/true", &e));
        }

        if self.args.runs("inline") || self.args.runs("unreachable") {
            let nb = self.nb("bench-inline", x)?;
            let mut warm = false;
            if self.args.runs("inline") {
                let n = self.args.calls;
                match self.inline(x, &nb, n, "ExaFS live, (almost) empty", true) {
                    Ok(()) => warm = true,
                    Err(e) => self.rows.push(Row::failed("inline", "netban ban", &e)),
                }
            }
            if self.args.runs("unreachable")
                && let Err(e) = self.unreachable(x, &nb, warm)
            {
                x.proxy.set_mode(Mode::Pass);
                self.rows.push(Row::failed("unreachable", "netban ban", &e));
            }
        }
        if self.args.runs("daemon")
            && let Err(e) = self.daemon(x)
        {
            x.proxy.set_mode(Mode::Pass);
            self.rows.push(Row::failed("daemon", "netban ban", &e));
        }
        let direct_n = self.args.direct;
        if self.args.runs("direct") {
            for clients in [1, 8] {
                if let Err(e) = self.direct(x, "small ExaFS", direct_n, clients) {
                    self.rows.push(Row::failed("direct", "POST", &e));
                }
            }
        }
        let mut burst = None;
        if self.args.runs("burst-cli") {
            match self.burst_cli() {
                Ok(x) => burst = Some(x),
                Err(e) => self.rows.push(Row::failed("burst-cli", "netban ban", &e)),
            }
        }
        if self.args.runs("burst-socket")
            && let Err(e) = self.burst_socket()
        {
            self.rows
                .push(Row::failed("burst-socket", "control socket", &e));
        }
        // ExaFS holding the burst's rules: its own speed, and the inline path, on a big ExaFS.
        if let Some(big) = &burst {
            let stored = big.x.rules();
            if self.args.runs("direct")
                && let Err(e) = self.direct(&big.x, "ExaFS after burst-cli", direct_n, 1)
            {
                self.rows.push(Row::failed("direct", "POST", &e));
            }
            if self.args.runs("inline") {
                let n = self.args.calls.min(50);
                let what = format!("ExaFS live, holding {stored} rules (after burst-cli)");
                let run = self
                    .nb("bench-inline-big", &big.x)
                    .and_then(|nb| self.inline(&big.x, &nb, n, &what, true));
                if let Err(e) = run {
                    self.rows.push(Row::failed("inline", "netban ban", &e));
                }
            }
        }
        if self.args.runs("restore") {
            match &burst {
                Some(big) => {
                    if let Err(e) = self.restore(big) {
                        self.rows
                            .push(Row::failed("restore", "fail2ban restart", &e));
                    }
                }
                None => self.rows.push(Row::failed(
                    "restore",
                    "fail2ban restart",
                    &anyhow!("needs the leases of burst-cli, which failed"),
                )),
            }
        }
        Ok(())
    }
}
