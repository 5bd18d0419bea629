//! `daemon`: `netban ban` with the daemon up while ExaFS is fine, slow (`Delay` 500 ms) and
//! down; then how long the daemon takes to deliver everything once ExaFS is back.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;
use netban_testsupport::proxy::Mode;

use super::Bench;
use crate::exa::{Exa, posts_ok, watch_posts};
use crate::measure::{Unit, median_i64, mib, num, stats};
use crate::report::Row;

impl Bench {
    pub fn daemon(&mut self, x: &Exa) -> Result<()> {
        let n = self.args.calls;
        let nb = self.nb("bench-daemon", x)?;
        x.proxy.set_mode(Mode::Pass);
        self.log.say("daemon: starting netban daemon");
        let mut d = nb.start_daemon()?;
        x.proxy.reset_counts();
        self.bans(&nb, 1)?; // warm-up
        let mut total = 1;
        for (mode, what) in [
            (Mode::Pass, "`netban ban`, daemon up, ExaFS live"),
            (
                Mode::Delay(Duration::from_millis(500)),
                "`netban ban`, daemon up, ExaFS slow (+500 ms per request)",
            ),
            (Mode::Down, "`netban ban`, daemon up, ExaFS down"),
        ] {
            self.log.say(format!("daemon: netban ban x {n}, {mode:?}"));
            x.proxy.set_mode(mode);
            let (walls, rss, bad) = self.bans(&nb, n)?;
            total += n;
            let s = stats(&walls);
            self.rows.push(Row::timing(
                "daemon",
                what,
                &walls,
                Unit::Ms,
                format!(
                    "{} (target ≤ 3×); peak RSS {} MiB/call; exit≠0: {}",
                    self.vs_true(s.median),
                    mib(median_i64(&rss)),
                    bad.len()
                ),
            ));
        }
        // ExaFS back: the daemon delivers everything (retries back off up to retry_max, so
        // this shows how long catching up takes, not a latency).
        x.proxy.set_mode(Mode::Pass);
        self.log.say(format!(
            "daemon: ExaFS back; waiting for all {total} rules (up to 10 min)"
        ));
        let back = Instant::now();
        let stop = AtomicBool::new(false);
        let (_, all) = watch_posts(&x.proxy, total, back, Duration::from_secs(600), &stop);
        let mem = d.memory_kib();
        d.stop()?;
        self.rows.push(Row::single(
            "daemon",
            "then ExaFS back: until the daemon delivered every ban above",
            total,
            all.map(|t| num(t.as_secs_f64()))
                .unwrap_or_else(|| "not within 600 s".into()),
            "s",
            format!(
                "rule POSTs answered 201 since the first call: {}; daemon VmHWM {} MiB",
                posts_ok(&x.proxy),
                mem.map(|(h, _)| mib(h)).unwrap_or_else(|| "?".into())
            ),
        ));
        Ok(())
    }
}
