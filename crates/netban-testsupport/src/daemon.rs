//! A running `netban daemon`, started from a [`Netban`] runner and killed on drop.
//!
//! Readiness is read, not guessed: once its listeners are bound the daemon writes
//! `state_dir/daemon.json` (`{"pid", "socket", "web": "127.0.0.1:PORT" or null}`). The handle
//! waits for that file *with this child's pid* (a file left by a daemon killed with `kill -9`
//! names another pid), then for `/healthz` 200 on the web address it names (when the web
//! listener is on) and for an answer to `ping` on the control socket. With the config
//! builder's `[web] listen = "127.0.0.1:0"` the kernel picks the port, so no test races
//! another for a free one; [`Daemon::web`] says which it got (a new one after each restart).
//!
//! The daemon's stdout and stderr go to `daemon.out` in the runner's directory (appended
//! across restarts), shown when it fails to start. Signals: [`Daemon::sighup`],
//! [`Daemon::sigterm`], [`Daemon::kill9`]; [`Daemon::stop`] is SIGTERM and a clean exit.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::control;
use crate::http;
use crate::runner::{Netban, tail};

/// How long a daemon may take to be ready after spawn (a shared, loaded machine).
pub const START_WAIT: Duration = Duration::from_secs(60);

/// A running `netban daemon`; SIGKILLed and reaped on drop.
pub struct Daemon {
    child: Option<Child>,
    pid: i32,
    socket: PathBuf,
    web: Option<String>,
    out: PathBuf,
}

impl Daemon {
    /// Spawns `netban daemon` for `nb` and waits until it is ready; panics with its output
    /// when it is not within [`START_WAIT`].
    pub fn start(nb: &Netban) -> Daemon {
        Daemon::try_start(nb).unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub fn try_start(nb: &Netban) -> Result<Daemon> {
        let out = nb.path("daemon.out");
        let file = File::options()
            .create(true)
            .append(true)
            .open(&out)
            .with_context(|| format!("opening {}", out.display()))?;
        let child = nb
            .cmd()
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("spawning {} daemon", nb.bin().display()))?;
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        let mut d = Daemon {
            child: Some(child),
            pid,
            socket: nb.socket(),
            web: None,
            out,
        };
        d.wait_ready(nb)?;
        Ok(d)
    }

    fn wait_ready(&mut self, nb: &Netban) -> Result<()> {
        let info_path = nb.state_dir().join("daemon.json");
        let log = nb.path("netban.log");
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                bail!(
                    "netban daemon exited with {status} before it was ready\n--- daemon.out ---\n{}\n--- netban.log ---\n{}",
                    tail(&self.out, 30),
                    tail(&log, 30)
                );
            }
            if let Some(info) = std::fs::read(&info_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter(|v| v["pid"].as_i64() == Some(i64::from(self.pid)))
            {
                if let Some(s) = info["socket"].as_str() {
                    self.socket = PathBuf::from(s);
                }
                self.web = info["web"].as_str().map(str::to_string);
                let healthy = match &self.web {
                    Some(_) => self.get("/healthz").is_some_and(|r| r.status == 200),
                    None => true,
                };
                if healthy && control::ping(&self.socket) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "netban daemon not ready ({} with pid {}, /healthz 200, ping on {}) within {START_WAIT:?}\n--- daemon.out ---\n{}\n--- netban.log ---\n{}",
                    info_path.display(),
                    self.pid,
                    self.socket.display(),
                    tail(&self.out, 30),
                    tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The web listener's address (`127.0.0.1:PORT`), if it is on.
    pub fn web(&self) -> Option<&str> {
        self.web.as_deref()
    }

    /// The control socket.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Where the daemon's stdout and stderr go.
    pub fn out_path(&self) -> &std::path::Path {
        &self.out
    }

    /// `GET path` on the web listener (10 s timeout); `None` when it does not answer.
    pub fn get(&self, path: &str) -> Option<http::Response> {
        let web = self.web.as_deref()?;
        http::request_with_timeout(web, "GET", path, &[], None, Duration::from_secs(10)).ok()
    }

    /// `/metrics`, asserting 200.
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics").expect("GET /metrics answers");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        r.text()
    }

    /// Sends `sig` to the daemon (still our unreaped child, so the pid is not reused).
    pub fn signal(&self, sig: i32) {
        assert!(self.child.is_some(), "the daemon was already reaped");
        // SAFETY: kill(2) on our own child's pid, not reaped yet; no memory is involved.
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid);
    }

    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// The exit status if the daemon has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the daemon to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then a clean exit (0) within `timeout`; killed if it does not stop.
    pub fn stop(&mut self, timeout: Duration) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        self.sigterm();
        let status = self.wait_exit(timeout);
        self.kill9();
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => bail!("netban daemon exited with {s}:\n{}", tail(&self.out, 20)),
            None => bail!(
                "netban daemon did not stop within {timeout:?} of SIGTERM:\n{}",
                tail(&self.out, 20)
            ),
        }
    }

    /// `kill -9`, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
