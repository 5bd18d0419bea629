//! `burst-cli`: `--bans` distinct bans as sequential `netban ban` processes (the arguments
//! of `netban.conf`), daemon up: time until ExaFS holds all, requests/s, daemon VmHWM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use netban_testsupport::proxy::Mode;

use super::{Bench, Burst};
use crate::exa::{Exa, active_in_exafs, watch_posts};
use crate::measure::{now_unix, run_timed};

impl Bench {
    /// `--bans` bans as sequential `netban ban` processes, daemon up, on a fresh ExaFS (so
    /// both bursts start from an empty one). What it leaves feeds the restore case.
    pub fn burst_cli(&mut self) -> Result<Burst> {
        let n = self.args.bans;
        self.log.say("burst-cli: starting a fresh ExaFS");
        let x = Exa::start()?;
        let nb = self.nb("bench-burst", &x)?;
        x.proxy.set_mode(Mode::Pass);
        self.log.say("burst-cli: starting netban daemon");
        let mut d = nb.start_daemon()?;
        let ips = self.ips.take(n);
        let t0 = now_unix();
        let time = format!("{t0}.0");
        x.proxy.reset_counts();
        self.log
            .say(format!("burst-cli: {n} sequential netban ban processes"));
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let timeout = self.args.timeout;
        let proxy = &x.proxy;
        let (cli, watched) = std::thread::scope(|s| {
            let watcher = s.spawn(|| watch_posts(proxy, n, start, timeout, &stop));
            let cli = (|| -> Result<(Vec<Duration>, Vec<i64>, usize, Duration)> {
                let mut walls = Vec::with_capacity(n);
                let mut rss = Vec::with_capacity(n);
                let mut bad = 0;
                for ip in &ips {
                    let r = run_timed(&mut nb.ban_cmd(ip, &time, false)?)?;
                    bad += usize::from(r.code != 0);
                    walls.push(r.wall);
                    rss.push(r.maxrss_kib);
                }
                Ok((walls, rss, bad, start.elapsed()))
            })();
            if cli.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            let watched = watcher.join().unwrap_or((None, None));
            (cli, watched)
        });
        let (walls, rss, bad, cli_done) = cli?;
        let mem = d.memory_kib();
        let seen = x.proxy.seen();
        self.log.say("burst-cli: checking ExaFS");
        let held = active_in_exafs(&x.exafs, &ips)?;
        d.stop()?;
        if bad > 0 {
            self.log
                .say(format!("  {bad} calls failed; stderr:\n{}", nb.err_tail()));
        }
        self.burst_rows(
            "burst-cli",
            "`netban ban` processes",
            n,
            &walls,
            Some(&rss),
            bad,
            cli_done,
            watched,
            &seen,
            mem,
            held,
            "",
        );
        Ok(Burst { x, nb, ips, t0 })
    }
}
