//! `burst-socket`: the same bans through the daemon's control socket (what `netban-socket.py`
//! sends), on a kept connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use netban_testsupport::control::Control;
use netban_testsupport::proxy::Mode;
use serde_json::json;

use super::{BANTIME, Bench, JAIL};
use crate::exa::{Exa, active_in_exafs, watch_posts};
use crate::measure::now_unix;

impl Bench {
    /// `--bans` bans over the control socket, as `netban-socket.py` sends them, daemon up, on a
    /// fresh ExaFS.
    pub fn burst_socket(&mut self) -> Result<()> {
        let n = self.args.bans;
        self.log.say("burst-socket: starting a fresh ExaFS");
        let x = Exa::start()?;
        let nb = self.nb("bench-socket", &x)?;
        x.proxy.set_mode(Mode::Pass);
        self.log.say("burst-socket: starting netban daemon");
        let mut d = nb.start_daemon()?;
        let ips = self.ips.take(n);
        let time = format!("{}.0", now_unix());
        x.proxy.reset_counts();
        self.log
            .say(format!("burst-socket: {n} bans on the control socket"));
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let timeout = self.args.timeout;
        let proxy = &x.proxy;
        let socket = nb.socket();
        let (sent, watched) = std::thread::scope(|s| {
            let watcher = s.spawn(|| watch_posts(proxy, n, start, timeout, &stop));
            let sent = (|| -> Result<(Vec<Duration>, usize, usize, Duration)> {
                let mut ctl = Control::new(&socket).timeout(Duration::from_secs(900));
                let mut walls = Vec::with_capacity(n);
                let mut bad = 0;
                for ip in &ips {
                    let req = json!({
                        "op": "ban", "ip": ip, "jail": JAIL, "bantime": BANTIME.to_string(),
                        "time": time, "restored": "0",
                    });
                    let t = Instant::now();
                    let answer = ctl.call(&req)?;
                    walls.push(t.elapsed());
                    if answer["ok"] != true || answer["result"] != "recorded" {
                        bad += 1;
                    }
                }
                Ok((walls, bad, ctl.reconnects(), start.elapsed()))
            })();
            if sent.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            let watched = watcher.join().unwrap_or((None, None));
            (sent, watched)
        });
        let (walls, bad, reconnects, sent_done) = sent?;
        let mem = d.memory_kib();
        let seen = x.proxy.seen();
        self.log.say("burst-socket: checking ExaFS");
        let held = active_in_exafs(&x.exafs, &ips)?;
        d.stop()?;
        let extra = if reconnects > 0 {
            format!(
                "; the daemon closed the kept connection {reconnects}× (reconnected as netban-socket.py does)"
            )
        } else {
            String::new()
        };
        self.burst_rows(
            "burst-socket",
            "control-socket requests (netban-socket.py's path)",
            n,
            &walls,
            None,
            bad,
            sent_done,
            watched,
            &seen,
            mem,
            held,
            &extra,
        );
        Ok(())
    }
}
