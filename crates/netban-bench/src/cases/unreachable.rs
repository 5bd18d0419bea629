//! `unreachable`: `netban ban` with no daemon while ExaFS refuses connections (proxy `Down`)
//! or never answers (`Blackhole`: the inline deadline bites); then `netban sync` delivers
//! what was left pending.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use netban_testsupport::proxy::Mode;

use super::{Bench, INLINE_DEADLINE};
use crate::exa::{Exa, active_in_exafs, summarize};
use crate::measure::{Unit, num, run_timed, stats};
use crate::nb::Nb;
use crate::report::Row;

impl Bench {
    pub fn unreachable(&mut self, x: &Exa, nb: &Nb, token_cached: bool) -> Result<()> {
        if !token_cached {
            x.proxy.set_mode(Mode::Pass);
            self.bans(nb, 1)?;
        }
        let mut pending = Vec::new();
        for (mode, n, case, what) in [
            (
                Mode::Down,
                self.args.down,
                "unreachable",
                "`netban ban`, no daemon, ExaFS down (connection refused)",
            ),
            (
                Mode::Blackhole,
                self.args.blackhole,
                "unreachable",
                "`netban ban`, no daemon, ExaFS blackholed (no answer)",
            ),
        ] {
            if n == 0 {
                continue;
            }
            self.log
                .say(format!("unreachable: netban ban x {n}, {mode:?}"));
            x.proxy.set_mode(mode.clone());
            x.proxy.reset_counts();
            let ips = self.ips.take(n);
            let mut walls = Vec::new();
            let mut codes = BTreeMap::<i32, usize>::new();
            for ip in &ips {
                let r = nb.ban(ip)?;
                *codes.entry(r.code).or_default() += 1;
                walls.push(r.wall);
            }
            pending.extend(ips);
            let s = stats(&walls);
            let within = if s.max <= INLINE_DEADLINE + Duration::from_millis(250) {
                "max within the 3 s inline_deadline"
            } else {
                "MAX EXCEEDS the 3 s inline_deadline"
            };
            let codes: Vec<String> = codes
                .iter()
                .map(|(c, k)| format!("exit {c} ×{k}"))
                .collect();
            self.rows.push(Row::timing(
                case,
                what,
                &walls,
                Unit::Ms,
                format!(
                    "{}; {within}; requests tried: {}",
                    codes.join(", "),
                    summarize(&x.proxy.seen())
                ),
            ));
        }
        // Nothing lost: ExaFS back, `netban sync` delivers what the calls left pending.
        x.proxy.set_mode(Mode::Pass);
        x.proxy.reset_counts();
        if pending.is_empty() {
            return Ok(());
        }
        self.log
            .say("unreachable: ExaFS back, netban sync --timeout 120");
        let mut c = nb.cmd()?;
        c.args(["sync", "--timeout", "120"]);
        let r = run_timed(&mut c)?;
        let held = active_in_exafs(&x.exafs, &pending)?;
        self.rows.push(Row::single(
            "unreachable",
            "then ExaFS back: `netban sync` delivers the pending bans",
            pending.len(),
            num(r.wall.as_secs_f64()),
            "s",
            format!(
                "exit {}; ExaFS holds {held}/{} of them; requests: {}",
                r.code,
                pending.len(),
                summarize(&x.proxy.seen())
            ),
        ));
        Ok(())
    }
}
