//! The server's life: stop (gracefully, `fail2ban-client stop`), restart on the same
//! database (bans restored), reconfigure, reload; spawning and waiting until it answers; the
//! kill of its process group when the handle goes.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::text::unix_now;
use super::{ActionEvent, Fail2ban, Options, START_TIMEOUT, STOP_TIMEOUT};

impl Fail2ban {
    /// Stops the server gracefully (`fail2ban-client stop`: actionflush or actionunban, then
    /// actionstop) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.server.take() else {
            return Ok(());
        };
        let out = self.client(&["stop"]);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    kill_group(&mut child);
                    bail!(
                        "fail2ban-server did not exit within {STOP_TIMEOUT:?} after `stop` (client said: {}{})\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr),
                        self.log_tail(40)
                    );
                }
            }
        }
        if !out.status.success() {
            bail!(
                "fail2ban-client stop failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(40)
            );
        }
        Ok(())
    }

    /// Stops the server gracefully and starts it again on the same database, so bans are
    /// restored (`<restored>` = 1). Returns once every ban that was active before the stop
    /// and has not expired since has gone through the actions again.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let before: Vec<(String, String)> = self
            .jails
            .iter()
            .flat_map(|j| {
                self.banned(&j.name)
                    .into_iter()
                    .map(move |ip| (j.name.clone(), ip))
            })
            .collect();
        let events = self.events();
        self.stop()?;
        let mark = self.events().len();
        self.spawn()?;
        let now = unix_now() + 1.0;
        let mut expect: BTreeSet<(String, String)> = BTreeSet::new();
        for (jail, ip) in before {
            let last_ban = events.iter().rev().find(|e| e.is("ban", &jail, &ip));
            if last_ban
                .and_then(ActionEvent::ends_at)
                .is_none_or(|end| end > now)
            {
                expect.insert((jail, ip));
            }
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let seen: BTreeSet<(String, String)> = self
                .events()
                .into_iter()
                .skip(mark)
                .filter(|e| e.kind == "ban" && e.is_restored())
                .filter_map(|e| Some((e.jail, e.ip?)))
                .collect();
            let missing: Vec<_> = expect.difference(&seen).collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "fail2ban restart: these bans were not restored within {START_TIMEOUT:?}: {missing:?}\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Rewrites the configuration (jails, their actions, action files, timing) in place, for
    /// the next [`Fail2ban::reload`] or [`Fail2ban::restart`]; the database, the logs and the
    /// probe's record stay. Checked with `fail2ban-client -t` like at start.
    pub fn reconfigure(&mut self, opts: Options) -> anyhow::Result<()> {
        if opts.jails.is_empty() {
            bail!("fail2ban harness: Options has no jail; add one with .jail(...)");
        }
        self.write_config(&opts)?;
        self.test_config()?;
        self.jails = opts.jails;
        Ok(())
    }

    /// `fail2ban-client reload`: re-reads the configuration without a restart (bans stay;
    /// actions that left a jail's config are flushed or unban every ticket).
    pub fn reload(&self) {
        self.client_ok(&["reload"]);
    }

    pub(super) fn spawn(&mut self) -> anyhow::Result<()> {
        let out_path = self.dir().join("run/server.out");
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)?;
        let child = Command::new(&self.server_bin)
            .arg("-c")
            .arg(self.config_dir())
            .args(["-f", "-x"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .env_remove("NOTIFY_SOCKET")
            // The failure lines are stamped in UTC; fail2ban reads syslog stamps as local time.
            // (Not `logtimezone = UTC`: that changes `<time>` from `1795309592.0` to an integer,
            // unlike production.)
            .env("TZ", "UTC")
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.server_bin.display()))?;
        self.server = Some(child);
        self.wait_ready()
    }

    /// Waits for `ping` and for every jail to answer `status`.
    pub(super) fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pending: Vec<String> = self.jails.iter().map(|j| j.name.clone()).collect();
        let mut pong = false;
        loop {
            if let Some(Ok(Some(status))) = self.server.as_mut().map(Child::try_wait) {
                self.server = None;
                bail!(
                    "fail2ban-server exited during start ({status})\n{}",
                    self.log_tail(40)
                );
            }
            if !pong {
                let out = self.client(&["ping"]);
                pong =
                    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pong");
            }
            if pong {
                pending.retain(|j| !self.client(&["status", j]).status.success());
                if pending.is_empty() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let what = if pong {
                    format!("jails {pending:?} did not start")
                } else {
                    "no answer to ping".to_string()
                };
                bail!(
                    "fail2ban-server not ready within {START_TIMEOUT:?}: {what}\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Fail2ban {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            kill_group(&mut child);
        }
    }
}

/// SIGKILL to the server's process group, then reap it.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-s", "KILL", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
    let _ = child.wait();
}
