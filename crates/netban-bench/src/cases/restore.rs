//! `restore`: fail2ban restarts with N restored bans (each size of `--restore`) for the probe
//! alone (fail2ban's own floor), the command action without and with the daemon, and the
//! Python action with the daemon: total time and the ExaFS requests seen meanwhile.

use anyhow::Result;
use netban_testsupport::fail2ban::Fail2ban;
use netban_testsupport::proxy::Mode;

use super::{Bench, Burst};
use crate::exa::summarize;
use crate::fail2ban_restart::{f2b_dbfile, f2b_options, restore_once, seed_f2b_db};
use crate::measure::num;
use crate::nb::BenchDaemon;
use crate::report::Row;

impl Bench {
    pub fn restore(&mut self, burst: &Burst) -> Result<()> {
        let Burst { x, nb, ips, t0 } = burst;
        let t0 = *t0;
        let bin = self.args.netban.display().to_string();
        let cfg = nb.config().display().to_string();
        let cmd_action = format!("netban[netban=\"{bin}\", config=\"{cfg}\"]");
        let py_action = format!("netban-socket.py[netban=\"{bin}\", config=\"{cfg}\"]");
        x.proxy.set_mode(Mode::Pass);
        self.log
            .say("restore: starting fail2ban (harness) to create its database");
        let mut f2b = Fail2ban::start(f2b_options("")?)?;
        let db = f2b_dbfile(&f2b);
        f2b.stop()?;
        let mut seeded = 0;
        let sizes = self.args.restore.clone();
        for n in sizes {
            self.log.say(format!(
                "restore: seeding fail2ban's database with {} more bans ({n} in all)",
                n - seeded
            ));
            seed_f2b_db(&db, &ips[seeded..n], t0)?;
            seeded = n;
            let case = format!("restore-{n}");
            type Variant<'a> = (&'a str, &'a str, bool);
            let variants: [Variant; 4] = [
                ("probe only (fail2ban's own floor, no netban)", "", false),
                (
                    "command action (netban.conf), no daemon",
                    &cmd_action,
                    false,
                ),
                ("command action (netban.conf), daemon up", &cmd_action, true),
                (
                    "Python action (netban-socket.py), daemon up",
                    &py_action,
                    true,
                ),
            ];
            let mut daemon: Option<BenchDaemon> = None;
            for (label, action, with_daemon) in variants {
                if with_daemon && daemon.is_none() {
                    self.log.say("restore: starting netban daemon");
                    daemon = Some(nb.start_daemon()?);
                }
                if !with_daemon && let Some(mut d) = daemon.take() {
                    d.stop()?;
                }
                self.log.say(format!("restore: {n} bans, {label}"));
                let what = format!("fail2ban start → {n} bans restored: {label}");
                match restore_once(&mut f2b, action, n, &x.proxy, self.args.timeout) {
                    Ok(r) => {
                        let reqs = summarize(&r.seen);
                        let per = match r.first {
                            Some(f) if n > 1 && r.total > f => format!(
                                "first restored after {} s, then {} ms per ban",
                                num(f.as_secs_f64()),
                                num((r.total - f).as_secs_f64() * 1000.0 / (n - 1) as f64)
                            ),
                            _ => String::new(),
                        };
                        let target = if action.is_empty() {
                            String::new()
                        } else if r.seen.is_empty() {
                            " (target 0: met)".into()
                        } else {
                            " (target 0: MISSED)".into()
                        };
                        self.rows.push(Row::single(
                            &case,
                            &what,
                            n,
                            num(r.total.as_secs_f64()),
                            "s",
                            format!(
                                "**ExaFS requests: {}**{target} [{reqs}]; {per}; fail2ban log \
                                 errors: {}; stop (flush) took {} s",
                                r.seen.len(),
                                r.errors,
                                num(r.stop.as_secs_f64())
                            ),
                        ));
                    }
                    Err(e) => {
                        self.log.say(format!("  failed: {e:#}"));
                        self.rows.push(Row::failed(&case, &what, &e));
                    }
                }
            }
            if let Some(mut d) = daemon.take() {
                d.stop()?;
            }
        }
        Ok(())
    }
}
