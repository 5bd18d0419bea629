//! The netban instances the benchmark drives, each in its own temporary directory (through
//! testsupport's runner) with its own `host_id`, so the ExaFS rule marks of two instances
//! never overlap; and the daemon, started the way the measurements need it.
//!
//! The config is netban's defaults except: logging to a file (there is no syslog here), the
//! web listener off, and the periodic full check moved out of the measurements' way
//! (`resync_interval = 86400`). Commands run quiet, their stderr appended to `stderr.log`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netban_testsupport::config::{Config, Sink};
use netban_testsupport::control::Control;
use netban_testsupport::daemon::Daemon;
use netban_testsupport::runner::{Netban, tail};
use serde_json::json;

use crate::cases::{BANTIME, JAIL};
use crate::measure::{Run, now_unix, run_timed};

pub struct Nb {
    pub netban: Netban,
    errlog: PathBuf,
}

impl Nb {
    pub fn new(bin: &Path, host: &str, exafs_url: &str, api_key: &str) -> Result<Nb> {
        let config = Config::new()
            .host_id(host)
            .daemon("resync_interval = 86400.0")
            .web_listen("")
            .log_file("netban.log", None)
            .sink(Sink::exafs(exafs_url, api_key));
        let netban = Netban::try_new(bin, &format!("netban-bench-{host}-"), &config)?;
        Ok(Nb {
            errlog: netban.path("stderr.log"),
            netban,
        })
    }

    pub fn config(&self) -> &Path {
        self.netban.config()
    }

    pub fn socket(&self) -> PathBuf {
        self.netban.socket()
    }

    /// `netban`, quiet, stderr appended to `stderr.log`.
    pub fn cmd(&self) -> Result<Command> {
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.errlog)
            .context("opening stderr.log")?;
        let mut c = self.netban.cmd();
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        Ok(c)
    }

    /// `netban ban` with the arguments `netban.conf` passes.
    pub fn ban_cmd(&self, ip: &str, time: &str, restored: bool) -> Result<Command> {
        let mut c = self.cmd()?;
        c.args(["ban", "--jail", JAIL, "--bantime", &BANTIME.to_string()])
            .args(["--time", time])
            .args(["--restored", if restored { "1" } else { "0" }])
            .args(["--failures", "3", ip]);
        Ok(c)
    }

    pub fn ban(&self, ip: &str) -> Result<Run> {
        run_timed(&mut self.ban_cmd(ip, &format!("{}.0", now_unix()), false)?)
    }

    pub fn err_tail(&self) -> String {
        tail(&self.errlog, 10)
    }

    /// Starts the daemon and lets its start-up full check (it lists ExaFS) finish before
    /// anything is measured.
    pub fn start_daemon(&self) -> Result<BenchDaemon> {
        let d = Daemon::try_start(&self.netban)?;
        let answer = Control::new(d.socket())
            .timeout(Duration::from_secs(900))
            .call(&json!({"op": "sync", "timeout": 600}))?;
        if answer["ok"] != true {
            bail!("daemon sync after start: {answer}");
        }
        Ok(BenchDaemon(d))
    }
}

/// The daemon, with what the benchmark reads from it.
pub struct BenchDaemon(Daemon);

impl BenchDaemon {
    /// (VmHWM, VmRSS) in KiB from /proc/PID/status.
    pub fn memory_kib(&self) -> Option<(i64, i64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.pid())).ok()?;
        let field = |name: &str| -> Option<i64> {
            status
                .lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// SIGTERM, then waits (the pass in flight may take up to 60 s).
    pub fn stop(&mut self) -> Result<()> {
        self.0.stop(Duration::from_secs(90))
    }
}
