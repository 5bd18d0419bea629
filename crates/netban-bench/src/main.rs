//! `netban-bench`: the benchmark of issues 2 and 3, against real components.
//!
//! It starts a real ExaFS 1.4.1 (werkzeug, SQLite) with a `FaultProxy` in front of it, points
//! netban instances (each in its own temporary state directory, with its own `host_id` so their
//! ExaFS rule marks never overlap) at the proxy, drives the given **release** `netban` binary,
//! and prints a markdown table (case, what, n, median, p90, max, unit, notes). It builds
//! nothing: `scripts/bench` builds and then runs it.
//!
//! Cases (`--only` selects some; the rest of the names are the table's `case` column):
//!
//! - `reference`: wall time of `/bin/true`, started exactly like `netban` (same spawn code).
//! - `inline`: `netban ban` with no daemon against a live ExaFS (one POST per call).
//! - `unreachable`: the same with ExaFS unreachable: proxy `Down` (connection refused) and
//!   `Blackhole` (nothing answers: the inline deadline bites). Then `netban sync` delivers
//!   what was left pending.
//! - `daemon`: `netban ban` with the daemon up; ExaFS fine, slow (`Delay` 500 ms), down.
//! - `direct`: POSTs made straight to ExaFS with a minimal client (no netban, no proxy):
//!   ExaFS's own ceiling, sequential and with 8 clients (netban's default concurrency).
//! - `burst-cli`: `--bans` distinct bans as sequential `netban ban` processes (the arguments
//!   of `netban.conf`), daemon up: time until ExaFS holds all, requests/s, daemon VmHWM.
//! - `burst-socket`: the same through the daemon's control socket (what `netban-socket.py` sends).
//! - `restore`: fail2ban (Debian) restarts with N restored bans (each size of `--restore`),
//!   for: the probe alone (fail2ban's own floor), the command action without and with the
//!   daemon, the Python action with the daemon. Total time from server start until the last
//!   ban went through the actions, and the ExaFS requests the proxy saw meanwhile. Needs the
//!   leases and ExaFS rules of `burst-cli` (so it runs that too), and `--restore` <= `--bans`.
//!
//! fail2ban's database is seeded directly (rows in `bans`/`bips`, written with Python's
//! sqlite3 while the server is stopped; [`fail2ban_restart`]) with the burst's addresses, time
//! and bantime, so the restored tickets are exactly the leases netban holds.
//!
//! The layout: [`args`] (the command line), [`cases`] (one file per case), [`measure`] (spawn
//! to reap, peak RSS, statistics), [`report`] (rows, the table), [`environment`] (the report's
//! header), [`exa`] (ExaFS and the proxy's counts), [`nb`] (the netban instances), [`ips`].

mod args;
mod cases;
mod environment;
mod exa;
mod fail2ban_restart;
mod ips;
mod measure;
mod nb;
mod report;

use std::fs;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::args::Args;
use crate::cases::Bench;
use crate::environment::{environment, loadavg};
use crate::exa::Exa;
use crate::measure::num;
use crate::report::{Log, table};

fn main() {
    match real_main() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("netban-bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse()?;
    let log = Log(Instant::now());
    let env = environment(&args);
    let load_start = loadavg();
    log.say(format!("load average {load_start}; starting ExaFS"));
    // The ExaFS of the single-call cases; each burst gets a fresh one.
    let main = Exa::start()?;
    let mut b = Bench::new(args, log);
    b.run(&main)?;

    let elapsed = b.log.0.elapsed();
    let report = format!(
        "{env}- load average (1/5/15 min): {load_start} at the start, {} at the end; run took {} min\n\n{}",
        loadavg(),
        num(elapsed.as_secs_f64() / 60.0),
        table(&b.rows)
    );
    println!("{report}");
    if let Some(out) = &b.args.out {
        fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        b.log.say(format!("report written to {}", out.display()));
    }
    Ok(())
}
