//! A real NETCONF server for netban's tests: netconfd (yuma123, Debian package `netconfd`)
//! with a YANG blocklist module, behind a private OpenSSH sshd (package `openssh-server`) on a
//! free loopback port, exactly as `reference/netconf.md` describes.
//!
//! [`Netconfd::start`] makes a temporary directory (mode 0755: the NETCONF subsystem runs as
//! the test user and must reach the server socket there) with the YANG module
//! (`crates/netban-testsupport/netconfd/netban-blocklist.yang`), an empty startup config, a
//! fresh ed25519 host key, a client key (in `authorized_keys`) and a password file for the
//! test user, `known_hosts` files (right and wrong), and an sshd config; then starts netconfd
//! (`--target=candidate` or `running`) and sshd, each in its own process group, killed on drop
//! (and when the test thread dies). The test user [`TEST_USER`] is a system account the
//! harness creates once per machine; its password is random, kept in a root-only file.
//!
//! The device behind netban's back is [`crate::netconf_client::NcClient`]: OpenSSH's `ssh -s
//! netconf` as a second client, to read `running`/`candidate` and to edit them.
//!
//! # Facts observed against netconfd 2.13 (Debian 12)
//!
//! - `--yuma-home=DIR` needs `DIR/data/` to exist: netconfd writes
//!   `data/startup-cfg-txid.txt` there and exits with "Open txid file for write failed"
//!   without it. sshd needs `/run/sshd` ("Missing privilege separation directory").
//! - With `--with-startup=false` every commit is saved into the `--startup` file: the running
//!   configuration survives a restart of netconfd (an outage keeps the device's config).
//! - OpenSSH's `StrictModes yes` refuses an `AuthorizedKeysFile` under `/tmp` (world-writable
//!   `/tmp`); the private sshd runs with `StrictModes no`.
//! - Each commit that changes running is logged (`--log-level=info`) as
//!   `edit-transaction N: operation OP on session S by USER@ADDR` / `  at TIME on target
//!   'running'`, one block per changed node, all with the commit's transaction id N: counting
//!   distinct N counts commits ([`Netconfd::commits`]). An empty commit logs nothing.
//! - `nc:operation="remove"` in a base:1.0 session is refused (`unknown-element`, app-tag
//!   `no-support`, "base:1.1 protocol not enabled"); `delete` works in both.
//! - Several `delete`s of absent entries in one edit give ONE `data-missing` rpc-error (for
//!   the last of them); a rejected edit-config leaves the candidate unchanged.
//! - The hello quirk: when the client's hello and first rpc arrive in one read, the rpc is
//!   answered only when more input arrives (any further rpc, or in base:1.0 a newline).
//!   Several rpcs in one write after the hello are all answered.
//! - A YANG `must` is checked at edit-config time on the candidate (error-tag
//!   `operation-failed`, app-tag `must-violation`, with `error-path` and the must's
//!   `error-message`); the blocklist module here refuses 198.51.100.0/24 that way, so tests
//!   have an entry the device rejects.
//! - A session that ends (its SSH client gone) releases its lock within about 100 ms, and
//!   its uncommitted candidate edits are discarded. The candidate is shared: another
//!   session's `get-config` of the candidate shows uncommitted edits.
//! - A lock held by another session: error-tag `lock-denied`, app-tag `no-access`,
//!   `<session-id>` of the holder in `error-info`.
//! - Cost, loopback, 2 cores: a new SSH + NETCONF session takes 130–200 ms (sshd forks a
//!   login shell that runs `netconf-subsystem`); a commit takes from ~15 ms on an empty
//!   blocklist to ~75 ms on average while it grows to 1000 entries (netconfd rewrites the
//!   whole `--startup` file on every commit); one edit of 1000 entries plus its commit about
//!   0.35 s.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::netconf_client::{Entry, NcClient};
use crate::netconfd_files;
use crate::netconfd_user::{self, TEST_USER};
use crate::process::{command_exists, free_port, kill_group, spawn_guarded};
use crate::ssh_keys::{fingerprint_of, ssh_banner};

pub use crate::netconfd_user::TEST_USER as USER;

const INSTALL_HINT: &str = "install netconfd and openssh-server (scripts/test does: apt-get install netconfd openssh-server openssh-client)";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which datastore netconfd edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// `--target=candidate`: edit-config on the candidate, then commit.
    #[default]
    Candidate,
    /// `--target=running`: no candidate; edit-config changes running.
    Running,
}

/// Options for [`Netconfd::start_with`].
#[derive(Debug, Clone, Default)]
pub struct NetconfdOptions {
    pub target: Target,
}

/// A running netconfd behind sshd. Dropping it kills both and removes the directory.
pub struct Netconfd {
    procs: Mutex<Procs>,
    port: AtomicU16,
    target: Target,
    fingerprint: String,
    password: String,
    dir: tempfile::TempDir,
}

#[derive(Default)]
struct Procs {
    netconfd: Option<Child>,
    sshd: Option<Child>,
}

impl Netconfd {
    pub fn start() -> Result<Netconfd> {
        Self::start_with(NetconfdOptions::default())
    }

    pub fn start_with(options: NetconfdOptions) -> Result<Netconfd> {
        for program in [
            "/usr/sbin/netconfd",
            "/usr/sbin/netconf-subsystem",
            "/usr/sbin/sshd",
        ] {
            if !Path::new(program).exists() {
                bail!("{program} is missing: {INSTALL_HINT}");
            }
        }
        for program in ["ssh", "ssh-keygen"] {
            if !command_exists(program) {
                bail!("{program} is missing: {INSTALL_HINT}");
            }
        }
        let password = netconfd_user::ensure()?;
        fs::create_dir_all("/run/sshd").context("creating /run/sshd for sshd")?;
        let dir = tempfile::Builder::new()
            .prefix("netban-netconfd-")
            .tempdir_in("/tmp")
            .context("creating a temporary directory for netconfd")?;
        netconfd_files::populate(dir.path(), &password)?;
        let fingerprint = fingerprint_of(&dir.path().join("host_key.pub"))?;

        let h = Netconfd {
            procs: Mutex::new(Procs::default()),
            port: AtomicU16::new(0),
            target: options.target,
            fingerprint,
            password,
            dir,
        };
        // A free port can be taken between the probe and sshd's bind: try a few.
        let mut last_err = None;
        for _ in 0..5 {
            h.port.store(free_port()?, Ordering::SeqCst);
            h.write_port_files()?;
            match h.spawn_all() {
                Ok(()) => return Ok(h),
                Err(e) => {
                    h.kill_all();
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("netconfd did not start")))
    }

    /// 127.0.0.1
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// The test user's SSH login name.
    pub fn user(&self) -> &'static str {
        TEST_USER
    }

    /// A file whose first line is the test user's password (0600).
    pub fn password_file(&self) -> PathBuf {
        self.dir().join("password")
    }

    /// A password file with a wrong password.
    pub fn wrong_password_file(&self) -> PathBuf {
        self.dir().join("wrong_password")
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// An unencrypted ed25519 private key in the test user's authorized keys.
    pub fn key_file(&self) -> PathBuf {
        self.dir().join("client_key")
    }

    /// A key that is not authorized.
    pub fn unauthorized_key_file(&self) -> PathBuf {
        self.dir().join("other_client_key")
    }

    /// `SHA256:...` of the server's host key, as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The fingerprint of another key, for pin-mismatch tests.
    pub fn other_fingerprint(&self) -> String {
        fingerprint_of(&self.dir().join("other_host_key.pub")).unwrap_or_default()
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 ...` with the right host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    /// The same host with another ed25519 key: a changed host key.
    pub fn wrong_known_hosts(&self) -> PathBuf {
        self.dir().join("wrong_known_hosts")
    }

    /// A known_hosts file that does not mention this server.
    pub fn unrelated_known_hosts(&self) -> PathBuf {
        self.dir().join("unrelated_known_hosts")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir().join("netconfd.log")
    }

    /// The last `lines` lines of netconfd's and sshd's logs.
    pub fn log_tail(&self, lines: usize) -> String {
        let tail = |p: PathBuf| {
            let t = fs::read_to_string(&p).unwrap_or_default();
            let all: Vec<&str> = t.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "--- netconfd.log ---\n{}\n--- sshd.log ---\n{}",
            tail(self.log_path()),
            tail(self.dir().join("sshd.log"))
        )
    }

    /// Commits that changed running so far (transactions on target 'running' in the log).
    pub fn commits(&self) -> usize {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let mut ids = std::collections::BTreeSet::new();
        let mut current: Option<&str> = None;
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("edit-transaction ") {
                current = rest.split(':').next();
            } else if line.trim_start().starts_with("at ")
                && line.ends_with("on target 'running'")
                && let Some(id) = current.take()
            {
                ids.insert(id.to_string());
            }
        }
        ids.len()
    }

    /// A second NETCONF client (OpenSSH `ssh -s netconf`), the operator behind netban's back.
    pub fn client(&self) -> NcClient {
        NcClient::new(
            self.port(),
            self.key_file(),
            self.known_hosts(),
            self.target == Target::Candidate,
        )
    }

    /// The entries of the running blocklist. Panics when it cannot be read.
    pub fn running(&self) -> Vec<Entry> {
        self.client()
            .entries("running")
            .unwrap_or_else(|e| panic!("reading running: {e:#}\n{}", self.log_tail(20)))
    }

    /// The entries of the candidate blocklist. Panics when it cannot be read.
    pub fn candidate(&self) -> Vec<Entry> {
        self.client()
            .entries("candidate")
            .unwrap_or_else(|e| panic!("reading candidate: {e:#}\n{}", self.log_tail(20)))
    }

    /// The running prefixes, sorted.
    pub fn running_prefixes(&self) -> Vec<String> {
        let mut p: Vec<String> = self.running().into_iter().map(|e| e.prefix).collect();
        p.sort();
        p
    }

    /// Adds an entry as an operator would (edit + commit). Panics on failure.
    pub fn add_entry(&self, prefix: &str, comment: Option<&str>) {
        self.client()
            .add(prefix, comment)
            .unwrap_or_else(|e| panic!("adding {prefix}: {e:#}\n{}", self.log_tail(20)));
    }

    /// Deletes an entry as an operator would (edit + commit). Panics on failure.
    pub fn delete_entry(&self, prefix: &str) {
        self.client()
            .delete(prefix)
            .unwrap_or_else(|e| panic!("deleting {prefix}: {e:#}\n{}", self.log_tail(20)));
    }

    /// Stops netconfd and sshd (the device goes away; the saved config stays).
    pub fn stop(&self) {
        self.kill_all();
    }

    /// Starts both again on the same port with the saved config (stops them first).
    pub fn start_again(&self) -> Result<()> {
        self.kill_all();
        self.spawn_all()
    }

    /// Whether both processes are running.
    pub fn is_running(&self) -> bool {
        let mut p = self.lock();
        let alive =
            |c: &mut Option<Child>| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        alive(&mut p.netconfd) && alive(&mut p.sshd)
    }

    fn lock(&self) -> MutexGuard<'_, Procs> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_port_files(&self) -> Result<()> {
        netconfd_files::for_port(self.dir(), self.port())
    }

    fn spawn_all(&self) -> Result<()> {
        let d = self.dir();
        let sock = d.join("ncxserver.sock");
        // netconfd removes only its default socket when it exits.
        let _ = fs::remove_file(&sock);
        let target = match self.target {
            Target::Candidate => "candidate",
            Target::Running => "running",
        };
        let log = |name: &str| -> Result<fs::File> {
            fs::File::options()
                .create(true)
                .append(true)
                .open(d.join(name))
                .with_context(|| format!("opening {name}"))
        };
        let mut netconfd = Command::new("/usr/sbin/netconfd");
        netconfd
            .arg(format!(
                "--module={}",
                d.join("netban-blocklist.yang").display()
            ))
            .arg(format!("--startup={}", d.join("startup.xml").display()))
            .arg(format!("--yuma-home={}", d.join("yuma").display()))
            .arg(format!("--target={target}"))
            .args(["--with-startup=false", "--access-control=off"])
            .arg(format!("--superuser={TEST_USER}"))
            .arg(format!("--ncxserver-sockname={}", sock.display()))
            .arg(format!("--port={}", self.port()))
            .args(["--hello-timeout=0", "--idle-timeout=0", "--log-append"])
            .arg(format!("--log={}", self.log_path().display()))
            .arg("--log-level=info")
            .env("HOME", d)
            .stdin(Stdio::null())
            .stdout(log("netconfd.out")?)
            .stderr(log("netconfd.out")?);
        let child = spawn_guarded(&mut netconfd).context("starting netconfd")?;
        self.lock().netconfd = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while !sock.exists() {
            if let Some(status) = self.exited(|p| &mut p.netconfd) {
                bail!("netconfd exited with {status}\n{}", self.log_tail(30));
            }
            if Instant::now() > deadline {
                bail!(
                    "netconfd made no socket within {START_TIMEOUT:?}\n{}",
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut sshd = Command::new("/usr/sbin/sshd");
        sshd.arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log("sshd.log")?);
        let child = spawn_guarded(&mut sshd).context("starting sshd")?;
        self.lock().sshd = Some(child);
        loop {
            if let Some(status) = self.exited(|p| &mut p.sshd) {
                bail!("sshd exited with {status}\n{}", self.log_tail(30));
            }
            if ssh_banner(self.port()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "sshd did not answer within {START_TIMEOUT:?}\n{}",
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exited(
        &self,
        which: impl Fn(&mut Procs) -> &mut Option<Child>,
    ) -> Option<std::process::ExitStatus> {
        let mut p = self.lock();
        let c = which(&mut p);
        match c.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => {
                *c = None;
                Some(status)
            }
            _ => None,
        }
    }

    fn kill_all(&self) {
        let mut p = self.lock();
        kill_group(&mut p.sshd);
        kill_group(&mut p.netconfd);
    }
}

impl Drop for Netconfd {
    fn drop(&mut self) {
        self.kill_all();
    }
}
