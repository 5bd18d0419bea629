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

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};

/// The message when fail2ban is not installed: tests never pass by skipping.
const INSTALL_HINT: &str = "install fail2ban (scripts/test does: apt-get install fail2ban)";

/// Where the Debian package keeps the filters we copy.
const SYSTEM_FILTER_DIR: &str = "/etc/fail2ban/filter.d";

/// How long to wait for the server to answer, for a jail to act, for a restart to restore.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The probe action's file name in `action.d` (fixed: the probe is the harness's own).
const PROBE_ACTION: &str = "netban-harness-probe";

/// The probe: one line per event, `KIND JAIL IP RESTORED TIME BANTIME` (empty fields `-`).
/// Every tag is passed as its own argument to a fixed script, never pasted into it.
const PROBE_ACTION_CONF: &str = r#"# Written by netban-testsupport: records what fail2ban did, one line per event.
[Definition]
actionstart = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" start "<name>"
actionstop = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" stop "<name>"
actioncheck =
actionban = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" ban "<name>" "<ip>" "<restored>" "<time>" "<bantime>"
actionunban = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" unban "<name>" "<ip>" "<restored>" "<time>" "<bantime>"
actionprolong = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" prolong "<name>" "<ip>" "<restored>" "<time>" "<bantime>"
actionflush = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" flush "<name>"

[Init]
out = /dev/null
"#;

/// The repository's `dist/` directory (fail2ban action files, example configs).
pub fn dist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

/// A file for fail2ban's `action.d/`: a command action (`NAME.conf`) or a Python one
/// (`NAME.py`).
#[derive(Debug, Clone)]
pub struct ActionFile {
    /// The file name inside `action.d`, e.g. `netban.conf` or `netban-socket.py`.
    pub file_name: String,
    pub content: String,
}

impl ActionFile {
    pub fn new(file_name: impl Into<String>, content: impl Into<String>) -> ActionFile {
        ActionFile {
            file_name: file_name.into(),
            content: content.into(),
        }
    }

    /// Reads an action file; it keeps its file name.
    pub fn from_path(path: impl AsRef<Path>) -> anyhow::Result<ActionFile> {
        let path = path.as_ref();
        let content = fs::read_to_string(path)
            .with_context(|| format!("reading action file {}", path.display()))?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("action file {} has no usable file name", path.display()))?;
        Ok(ActionFile::new(file_name, content))
    }

    /// The repository's `dist/fail2ban/action.d/netban.conf`, the file users install.
    pub fn netban_dist() -> anyhow::Result<ActionFile> {
        ActionFile::from_path(dist_dir().join("fail2ban/action.d/netban.conf"))
    }

    /// The repository's `dist/fail2ban/action.d/netban-socket.py`, the Python action.
    pub fn netban_socket_dist() -> anyhow::Result<ActionFile> {
        ActionFile::from_path(dist_dir().join("fail2ban/action.d/netban-socket.py"))
    }
}

/// One jail of the test configuration. It uses the `sshd` filter and watches its own log file
/// (`JAIL.log`) unless [`Jail::logfile`] makes several jails share one.
#[derive(Debug, Clone)]
pub struct Jail {
    pub name: String,
    /// The jail's `action =` value, e.g. `netban[netban="/path/netban", config="/path.toml"]`.
    pub action: String,
    /// The log file's name inside the harness's `logs/` directory.
    pub logfile: String,
    /// A bantime for this jail only (seconds, -1 permanent); default: [`Options::bantime`].
    pub bantime: Option<i64>,
    /// More `key = value` lines for the jail section.
    pub options: Vec<(String, String)>,
}

impl Jail {
    /// A jail whose action is given as a raw string (any action file, e.g. `netban-socket.py[...]`).
    pub fn new(name: impl Into<String>, action: impl Into<String>) -> Jail {
        let name = name.into();
        let logfile = format!("{name}.log");
        Jail {
            name,
            action: action.into(),
            logfile,
            bantime: None,
            options: Vec::new(),
        }
    }

    /// A jail using the `netban` command action, with the binary and config as action
    /// parameters: `action = netban[netban="BINARY", config="CONFIG"]`.
    pub fn netban(
        name: impl Into<String>,
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Jail {
        let action = format!(
            "netban[netban=\"{}\", config=\"{}\"]",
            binary.as_ref().display(),
            config.as_ref().display()
        );
        Jail::new(name, action)
    }

    /// A jail using the Python action (`netban-socket.py`), which hands bans to the daemon
    /// and falls back to `binary`: `action = netban-socket.py[netban="BINARY", config="CONFIG"]`.
    pub fn netban_socket(
        name: impl Into<String>,
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Jail {
        let action = format!(
            "netban-socket.py[netban=\"{}\", config=\"{}\"]",
            binary.as_ref().display(),
            config.as_ref().display()
        );
        Jail::new(name, action)
    }

    /// Watch this log file (a name inside `logs/`); jails with the same file see the same lines.
    pub fn logfile(mut self, file_name: impl Into<String>) -> Jail {
        self.logfile = file_name.into();
        self
    }

    /// This jail's bantime (seconds, -1 permanent).
    pub fn bantime(mut self, seconds: i64) -> Jail {
        self.bantime = Some(seconds);
        self
    }

    /// Another option line for the jail section.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Jail {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// What to run: jails, action files, and the `[DEFAULT]` timing of every jail.
#[derive(Debug, Clone)]
pub struct Options {
    pub jails: Vec<Jail>,
    pub action_files: Vec<ActionFile>,
    /// Seconds, -1 permanent.
    pub bantime: i64,
    pub maxretry: u32,
    pub findtime: u64,
    /// fail2ban's own `loglevel` (`INFO`, `DEBUG`, ...).
    pub loglevel: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jails: Vec::new(),
            action_files: Vec::new(),
            bantime: 600,
            maxretry: 3,
            findtime: 600,
            loglevel: "INFO".to_string(),
        }
    }
}

impl Options {
    /// No jails yet; bantime 600 s, maxretry 3, findtime 600 s.
    pub fn new() -> Options {
        Options::default()
    }

    /// The repository's `netban.conf` action and one jail per name, each calling `binary`
    /// with `config`.
    pub fn netban(
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
        jails: &[&str],
    ) -> anyhow::Result<Options> {
        let mut o = Options::new().action_file(ActionFile::netban_dist()?);
        for j in jails {
            o = o.jail(Jail::netban(*j, binary.as_ref(), config.as_ref()));
        }
        Ok(o)
    }

    /// The repository's Python action and one jail per name using it.
    pub fn netban_socket(
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
        jails: &[&str],
    ) -> anyhow::Result<Options> {
        let mut o = Options::new().action_file(ActionFile::netban_socket_dist()?);
        for j in jails {
            o = o.jail(Jail::netban_socket(*j, binary.as_ref(), config.as_ref()));
        }
        Ok(o)
    }

    pub fn jail(mut self, jail: Jail) -> Options {
        self.jails.push(jail);
        self
    }

    pub fn action_file(mut self, file: ActionFile) -> Options {
        self.action_files.push(file);
        self
    }

    pub fn bantime(mut self, seconds: i64) -> Options {
        self.bantime = seconds;
        self
    }

    pub fn maxretry(mut self, n: u32) -> Options {
        self.maxretry = n;
        self
    }

    pub fn findtime(mut self, seconds: u64) -> Options {
        self.findtime = seconds;
        self
    }

    pub fn loglevel(mut self, level: impl Into<String>) -> Options {
        self.loglevel = level.into();
        self
    }
}

/// What the probe action saw fail2ban do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEvent {
    /// `start`, `ban`, `prolong` (`bantime.increment`), `unban`, `flush` or `stop`.
    pub kind: String,
    pub jail: String,
    /// The `<ip>` tag (ban/prolong/unban only).
    pub ip: Option<String>,
    /// The `<restored>` tag: `0` or `1` (ban/prolong/unban only).
    pub restored: Option<String>,
    /// The `<time>` tag verbatim (e.g. `1795303972.0`, or an integer for restored bans).
    pub time: Option<String>,
    /// The `<bantime>` tag verbatim.
    pub bantime: Option<String>,
}

impl ActionEvent {
    fn parse(line: &str) -> Option<ActionEvent> {
        let mut f = line.split(' ');
        let kind = f.next()?.to_string();
        let jail = f.next()?.to_string();
        let mut next = || f.next().map(str::to_string);
        Some(ActionEvent {
            kind,
            jail,
            ip: next(),
            restored: next(),
            time: next(),
            bantime: next(),
        })
    }

    /// True for a ban (`ban`) of `ip` by `jail`.
    pub fn is(&self, kind: &str, jail: &str, ip: &str) -> bool {
        self.kind == kind && self.jail == jail && self.ip.as_deref() == Some(ip)
    }

    pub fn is_restored(&self) -> bool {
        self.restored.as_deref() == Some("1")
    }

    /// When the ban ends by its own tags (`time + bantime`), `None` for permanent or unknown.
    pub fn ends_at(&self) -> Option<f64> {
        let t: f64 = self.time.as_deref()?.parse().ok()?;
        let b: f64 = self.bantime.as_deref()?.parse().ok()?;
        (b >= 0.0).then_some(t + b)
    }
}

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

    fn write_config(&self, opts: &Options) -> anyhow::Result<()> {
        let etc = self.config_dir();
        for d in ["etc/action.d", "etc/filter.d", "run", "logs"] {
            fs::create_dir_all(self.dir().join(d)).with_context(|| format!("creating {d}"))?;
        }
        let run = self.dir().join("run");
        let fail2ban_conf = format!(
            "# Written by netban-testsupport.\n[Definition]\nloglevel = {level}\nlogtarget = {log}\n\
             syslogsocket = auto\nsocket = {sock}\npidfile = {pid}\nallowipv6 = auto\n\
             dbfile = {db}\ndbpurgeage = 1d\ndbmaxmatches = 10\n",
            level = opts.loglevel,
            log = self.log_path().display(),
            sock = self.socket().display(),
            pid = run.join("fail2ban.pid").display(),
            db = run.join("fail2ban.sqlite3").display(),
        );
        fs::write(etc.join("fail2ban.conf"), fail2ban_conf)?;

        let mut jail_conf = format!(
            "# Written by netban-testsupport.\n[DEFAULT]\nbackend = polling\nusedns = no\nignoreself = false\nignoreip =\nmaxretry = {}\nfindtime = {}\nbantime = {}\n",
            opts.maxretry, opts.findtime, opts.bantime
        );
        let probe_out = self.probe_path();
        for j in &opts.jails {
            if j.name.is_empty()
                || !j
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                bail!(
                    "fail2ban harness: jail name {:?} must be letters, digits, - _ .",
                    j.name
                );
            }
            let logfile = self.dir().join("logs").join(&j.logfile);
            if !logfile.exists() {
                fs::write(&logfile, "")
                    .with_context(|| format!("creating {}", logfile.display()))?;
            }
            let _ = write!(
                jail_conf,
                "\n[{name}]\nenabled = true\nfilter = sshd\nlogpath = {log}\naction = {action}\n         {PROBE_ACTION}[out=\"{probe}\"]\n",
                name = j.name,
                log = logfile.display(),
                action = j.action.trim().replace('\n', "\n         "),
                probe = probe_out.display(),
            );
            if let Some(b) = j.bantime {
                let _ = writeln!(jail_conf, "bantime = {b}");
            }
            for (k, v) in &j.options {
                let _ = writeln!(jail_conf, "{k} = {v}");
            }
        }
        fs::write(etc.join("jail.conf"), jail_conf)?;

        for a in &opts.action_files {
            if a.file_name.contains('/') || a.file_name.starts_with('.') {
                bail!(
                    "fail2ban harness: action file name {:?} must be a plain file name",
                    a.file_name
                );
            }
            fs::write(etc.join("action.d").join(&a.file_name), &a.content)?;
        }
        fs::write(
            etc.join("action.d").join(format!("{PROBE_ACTION}.conf")),
            PROBE_ACTION_CONF,
        )?;
        copy_filter("sshd.conf", &etc.join("filter.d"))?;
        Ok(())
    }

    /// `fail2ban-client -c DIR -t`: a config error is reported before any server runs.
    fn test_config(&self) -> anyhow::Result<()> {
        let out = Command::new(&self.client_bin)
            .arg("-c")
            .arg(self.config_dir())
            .arg("-t")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "fail2ban-client -t refused the test configuration in {}:\n{}{}",
                self.config_dir().display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
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
    fn wait_ready(&mut self) -> anyhow::Result<()> {
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

/// Copies a filter from /etc/fail2ban/filter.d, with the files its `before`/`after` include.
fn copy_filter(name: &str, to: &Path) -> anyhow::Result<()> {
    let mut todo = vec![name.to_string()];
    let mut done = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let src = Path::new(SYSTEM_FILTER_DIR).join(&name);
        let text = match fs::read_to_string(&src) {
            Ok(t) => t,
            // Includes are optional (`after = common.local` usually does not exist).
            Err(_) if done.len() > 1 => continue,
            Err(e) => panic!("{INSTALL_HINT}: cannot read {}: {e}", src.display()),
        };
        fs::write(to.join(&name), &text).with_context(|| format!("copying {}", src.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if let Some((key, value)) = line.split_once('=')
                && matches!(key.trim(), "before" | "after")
            {
                todo.extend(value.split_whitespace().map(str::to_string));
            }
        }
    }
    Ok(())
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `['192.0.2.1', '2001:db8::1']` -> the strings between quotes.
fn parse_py_list(s: &str) -> Vec<String> {
    s.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A syslog timestamp in UTC (`Nov 21 10:00:00`); the server runs with `TZ=UTC`.
fn syslog_stamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (_, month, day) = civil_from_days(days as i64);
    format!(
        "{} {:02} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        // 2026-11-21 10:00:00 UTC
        assert_eq!(
            syslog_stamp(UNIX_EPOCH + Duration::from_secs(1_795_255_200)),
            "Nov 21 10:00:00"
        );
    }

    #[test]
    fn python_lists() {
        assert_eq!(
            parse_py_list("['192.0.2.1', '2001:db8::1']\n"),
            ["192.0.2.1", "2001:db8::1"]
        );
        assert!(parse_py_list("[]\n").is_empty());
    }

    #[test]
    fn probe_lines() {
        let e = ActionEvent::parse("ban sshd 192.0.2.10 1 1795309592 600").unwrap();
        assert!(e.is("ban", "sshd", "192.0.2.10") && e.is_restored());
        assert_eq!(e.ends_at(), Some(1_795_310_192.0));
        let f = ActionEvent::parse("flush sshd").unwrap();
        assert_eq!((f.kind.as_str(), f.ip), ("flush", None));
    }
}
