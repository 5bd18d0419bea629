//! `inline`: `netban ban` with no daemon against a live ExaFS (one POST per call).

use anyhow::Result;
use netban_testsupport::proxy::Mode;

use super::Bench;
use crate::exa::{Exa, posts_ok, summarize};
use crate::measure::{Unit, median_i64, mib, num, stats};
use crate::nb::Nb;
use crate::report::Row;

impl Bench {
    /// `n` inline bans (no daemon). The first time (`warm_up`), one call first fills the
    /// token cache and is not counted.
    pub fn inline(&mut self, x: &Exa, nb: &Nb, n: usize, what: &str, warm_up: bool) -> Result<()> {
        self.log
            .say(format!("inline: netban ban x {n}, no daemon: {what}"));
        x.proxy.set_mode(Mode::Pass);
        x.proxy.reset_counts();
        let warm = if warm_up {
            let r = self.bans(nb, 1)?;
            let reqs = summarize(&x.proxy.seen());
            x.proxy.reset_counts();
            format!(
                "; not counted: 1 warm-up call ({} ms: {reqs})",
                num(Unit::Ms.of(r.0[0]))
            )
        } else {
            String::new()
        };
        let (walls, rss, bad) = self.bans(nb, n)?;
        let seen = x.proxy.seen();
        let ok = posts_ok(&x.proxy);
        let s = stats(&walls);
        self.rows.push(Row::timing(
            "inline",
            &format!("`netban ban`, no daemon, {what}"),
            &walls,
            Unit::Ms,
            format!(
                "{}; peak RSS {} MiB/call; exit≠0: {}; ExaFS requests: {} ({ok} rules created of \
                 {n}){warm}",
                self.vs_true(s.median),
                mib(median_i64(&rss)),
                bad.len(),
                summarize(&seen),
            ),
        ));
        Ok(())
    }
}
