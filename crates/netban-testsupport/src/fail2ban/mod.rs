//! A real fail2ban server (the Debian package), run unprivileged in a private directory.
//!
//! [`Fail2ban::start`] writes a complete fail2ban configuration into a temporary directory
//! (`fail2ban.conf` with the log, socket, pid file and database there; `jail.conf` with the
//! polling backend, `usedns = no`, `ignoreself = false`; the server runs with `TZ=UTC`; the `sshd`
//! filter copied from `/etc/fail2ban` with what it includes; the action files of the test),
//! starts `fail2ban-server -c DIR -f -x` in its own process group and waits until it answers
//! `ping` and every jail exists. Tests then append sshd failure lines to a jail's log file
//! ([`Fail2ban::log_failures`]) or drive it with `fail2ban-client`, exactly as in production.
//!
//! Every jail also gets a second action after the test's own, the *probe*: it appends one line
//! per `start`/`ban`/`prolong`/`unban`/`flush`/`stop` to a file. fail2ban runs a jail's actions in order,
//! one command at a time, so when the probe has seen a ticket, the action under test has
//! finished with it. That is how [`Fail2ban::wait_action`] and [`Fail2ban::restart`] know when
//! fail2ban is done, without sleeping and without a debug log.
//!
//! Dropping the handle kills the server's process group; the directory goes with it.

//! The pieces: `options` (what to run: jails, action files, timing), `config_files` (the
//! configuration written for the server, with the probe), `lifecycle` (spawn, stop,
//! restart, reload), `events` (what the probe saw), `text` (log lines and client output).

mod config_files;
mod events;
mod lifecycle;
mod options;
mod text;

pub use events::ActionEvent;
pub use options::{ActionFile, Jail, Options, dist_dir};

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};

use text::{parse_py_list, syslog_stamp};

/// The message when fail2ban is not installed: tests never pass by skipping.
const INSTALL_HINT: &str = "install fail2ban (scripts/test does: apt-get install fail2ban)";

/// How long to wait for the server to answer, for a jail to act, for a restart to restore.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running fail2ban server; see the module docs.
pub struct Fail2ban {
    dir: tempfile::TempDir,
    jails: Vec<Jail>,
    server: Option<Child>,
    server_bin: PathBuf,
    client_bin: PathBuf,
    /// Makes every failure line's `sshd[PID]` unique: the sshd filter groups lines by it.
    pid_counter: AtomicU32,
}

impl Fail2ban {
    /// Writes the configuration and starts the server; returns once it answers and every jail
    /// exists. Panics when fail2ban is not installed.
    pub fn start(opts: Options) -> anyhow::Result<Fail2ban> {
        let server_bin = find_program("fail2ban-server")
            .unwrap_or_else(|| panic!("{INSTALL_HINT}: fail2ban-server not found"));
        let client_bin = find_program("fail2ban-client")
            .unwrap_or_else(|| panic!("{INSTALL_HINT}: fail2ban-client not found"));
        if opts.jails.is_empty() {
            bail!("fail2ban harness: Options has no jail; add one with .jail(...)");
        }
        let dir = tempfile::Builder::new()
            .prefix("f2b-")
            .tempdir()
            .context("creating fail2ban's temp dir")?;
        let mut f2b = Fail2ban {
            dir,
            jails: opts.jails.clone(),
            server: None,
            server_bin,
            client_bin,
            pid_counter: AtomicU32::new(1000),
        };
        f2b.write_config(&opts)?;
        f2b.test_config()?;
        f2b.spawn()?;
        Ok(f2b)
    }

    /// The harness's temporary directory (`etc/`, `run/`, `logs/`, `probe.log`, ...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The fail2ban configuration directory (`-c DIR`).
    pub fn config_dir(&self) -> PathBuf {
        self.dir().join("etc")
    }

    /// The server's control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir().join("run/fail2ban.sock")
    }

    /// fail2ban's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("run/fail2ban.log")
    }

    /// The log file `jail` watches.
    pub fn jail_log_path(&self, jail: &str) -> PathBuf {
        let file = self
            .jails
            .iter()
            .find(|j| j.name == jail)
            .map(|j| j.logfile.clone())
            .unwrap_or_else(|| panic!("fail2ban harness: no jail named {jail:?}"));
        self.dir().join("logs").join(file)
    }

    fn probe_path(&self) -> PathBuf {
        self.dir().join("probe.log")
    }

    /// The text of fail2ban's log.
    pub fn fail2ban_log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last `n` lines of fail2ban's log and of the server's stdout/stderr, for messages.
    pub fn log_tail(&self, n: usize) -> String {
        let tail = |text: String| -> String {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        let mut s = format!(
            "--- fail2ban log ({}), last {n} lines ---\n{}",
            self.log_path().display(),
            tail(self.fail2ban_log())
        );
        let out = fs::read_to_string(self.dir().join("run/server.out")).unwrap_or_default();
        if !out.trim().is_empty() {
            let _ = write!(s, "\n--- fail2ban-server stdout/stderr ---\n{}", tail(out));
        }
        s
    }

    /// Runs `fail2ban-client -c DIR -s SOCKET ARGS`.
    pub fn client(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.client_bin);
        cmd.arg("-c")
            .arg(self.config_dir())
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null());
        cmd.output()
            .unwrap_or_else(|e| panic!("{INSTALL_HINT}: cannot run fail2ban-client: {e}"))
    }

    /// Runs a client command that must succeed; returns its stdout. Panics with the log tail.
    pub fn client_ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        if !out.status.success() {
            panic!(
                "fail2ban-client {args:?} failed ({}):\nstdout: {}\nstderr: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(40)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Appends `n` sshd failure lines for `ip`, stamped now, to the first jail's log.
    pub fn log_failures(&self, ip: &str, n: usize) {
        let jail = self.jails[0].name.clone();
        self.log_failures_to(&jail, ip, n);
    }

    /// Appends `n` sshd failure lines for `ip`, stamped now, to `jail`'s log file.
    pub fn log_failures_to(&self, jail: &str, ip: &str, n: usize) {
        let path = self.jail_log_path(jail);
        let stamp = syslog_stamp(SystemTime::now());
        let mut text = String::new();
        for _ in 0..n {
            let pid = self.pid_counter.fetch_add(1, Ordering::Relaxed);
            let _ = writeln!(
                text,
                "{stamp} host sshd[{pid}]: Failed password for invalid user bob from {ip} port 22 ssh2"
            );
        }
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("appending to {}: {e}", path.display()));
        // One write, so the poller never sees half a line.
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("appending to {}: {e}", path.display()));
    }

    /// `fail2ban-client get JAIL banned`: what fail2ban holds as banned (its view, not the
    /// actions' progress; see [`Fail2ban::wait_action`]).
    pub fn banned(&self, jail: &str) -> Vec<String> {
        parse_py_list(&self.client_ok(&["get", jail, "banned"]))
    }

    /// `fail2ban-client set JAIL banip IP` (synchronous: fail2ban has queued the ticket).
    pub fn ban(&self, jail: &str, ip: &str) {
        self.client_ok(&["set", jail, "banip", ip]);
    }

    /// `fail2ban-client set JAIL unbanip IP`: runs actionunban before it returns.
    pub fn unban(&self, jail: &str, ip: &str) {
        self.client_ok(&["set", jail, "unbanip", ip]);
    }

    /// Everything the probe saw, in order.
    pub fn events(&self) -> Vec<ActionEvent> {
        fs::read_to_string(self.probe_path())
            .unwrap_or_default()
            .lines()
            .filter_map(ActionEvent::parse)
            .collect()
    }

    /// Waits until the probe has seen an event matching `pred` at index `from` or later (so
    /// the action under test has finished with it); returns it. Panics with the log tail.
    pub fn wait_event(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&ActionEvent) -> bool,
    ) -> ActionEvent {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().into_iter().skip(from).find(|e| pred(e)) {
                return e;
            }
            if Instant::now() >= deadline {
                panic!(
                    "fail2ban harness: no {what} within {timeout:?}\nprobe events: {:#?}\n{}",
                    self.events(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until fail2ban has run the actions for a `kind` (`ban`, `unban`) of `ip` by
    /// `jail`, counting only events at index `from` or later; returns the probe's event.
    pub fn wait_action(
        &self,
        from: usize,
        kind: &str,
        jail: &str,
        ip: &str,
        timeout: Duration,
    ) -> ActionEvent {
        self.wait_event(
            from,
            timeout,
            &format!("{kind} of {ip} by jail {jail}"),
            |e| e.is(kind, jail, ip),
        )
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
