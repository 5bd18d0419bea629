//! A real redis-server (the Debian package) on a free loopback port, for netban's tests.
//!
//! [`RedisServer::start`] writes a `redis.conf` into a fresh temporary directory (bind
//! `127.0.0.1`, no RDB snapshots, no AOF, protected mode, the log file there), starts
//! `redis-server redis.conf` in its own process group and waits until it answers `PING`.
//! Nothing is persisted: a [`RedisServer::stop`] followed by [`RedisServer::start_again`] is an
//! outage that comes back *empty*, on the same port, the way a cache node restarted without
//! persistence does. [`RedisServer::freeze`] / [`RedisServer::thaw`] stop and continue the
//! process (SIGSTOP / SIGCONT): the port stays open but nothing answers, which is what a hung
//! or overloaded server looks like to a client (its timeouts fire, not its connect errors).
//!
//! The stats story suite, the stats benchmark and the cluster bus tests share this harness.
//! [`RedisOptions`] adds a password (`requirepass`), TLS (a private CA and a server
//! certificate for 127.0.0.1 made with `openssl`, the server on a TLS port only, the URL
//! `rediss://`), and raw config lines for what a test needs beyond that (`maxmemory`, ACL
//! users, ...).
//!
//! Dropping the handle kills the server's process group; the directory goes with it. The server
//! also gets `PR_SET_PDEATHSIG`: if the thread that started it dies (a test process killed by
//! the runner), the kernel kills redis-server too, so no server outlives its test run. Start it
//! from the thread that keeps the handle (a test body, `main`), not from a short-lived thread.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

/// The message when redis-server is not installed: tests never pass by skipping.
const INSTALL_HINT: &str = "install redis-server and redis-tools (scripts/test does: apt-get install redis-server redis-tools)";

/// How long [`RedisServer::start`] waits for the first `PONG`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How many free ports to try when another process takes the one we picked first.
const PORT_ATTEMPTS: usize = 5;

/// Options for [`RedisServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`: clients must `AUTH` (the URL from [`RedisServer::url`] carries it).
    pub password: Option<String>,
    /// TLS only (`port 0`, `tls-port`): clients must speak TLS and trust [`RedisServer::ca_file`].
    pub tls: bool,
    /// More `redis.conf` lines, e.g. `maxmemory 64mb`.
    pub extra_config: Vec<String>,
}

/// A running (or stopped) redis-server owned by one test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    tls: bool,
    server_bin: PathBuf,
    cli_bin: PathBuf,
    // Last, so the directory goes after the process is dead.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server with no password on a free loopback port.
    pub fn start() -> anyhow::Result<RedisServer> {
        RedisServer::start_with(RedisOptions::default())
    }

    pub fn start_with(opts: RedisOptions) -> anyhow::Result<RedisServer> {
        let server_bin = find_program("redis-server")
            .ok_or_else(|| anyhow!("redis-server not found: {INSTALL_HINT}"))?;
        let cli_bin = find_program("redis-cli")
            .ok_or_else(|| anyhow!("redis-cli not found: {INSTALL_HINT}"))?;
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("netban-redis-")
                .tempdir()
                .context("creating a temporary directory for redis-server")?;
            let mut server = RedisServer {
                child: None,
                port: free_port()?,
                password: opts.password.clone(),
                tls: opts.tls,
                server_bin: server_bin.clone(),
                cli_bin: cli_bin.clone(),
                dir,
            };
            if opts.tls {
                server.make_certificates()?;
            }
            server.write_config(&opts)?;
            match server.spawn() {
                Ok(()) => return Ok(server),
                // Most likely the port was taken between our probe and redis's bind.
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("redis-server did not start")))
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://` with TLS), with the password when there is one.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        match &self.password {
            Some(p) => format!("{scheme}://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("{scheme}://127.0.0.1:{}/0", self.port),
        }
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir().join("redis.log")
    }

    /// The last `n` lines of the server's log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL to its group): clients see refused connections. Everything in
    /// it is gone (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts it again on the same port, empty. Fails if the port was taken meanwhile.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }

    /// SIGSTOP: connections are accepted by the kernel but nothing answers.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`RedisServer::freeze`].
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// `FLUSHALL`: every key of every database is gone.
    pub fn flush(&self) {
        let reply = self.cli(&["FLUSHALL"]);
        assert_eq!(reply.trim(), "OK", "FLUSHALL answered {reply:?}");
    }

    /// Runs `redis-cli ARGS` against this server and returns its stdout (`--no-raw` off: raw
    /// replies, one per line). Panics when redis-cli fails: for tests.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis-cli ARGS` with its exit status, for tests that expect failures.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.cli_bin);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"]);
        if self.tls {
            cmd.arg("--tls").arg("--cacert").arg(self.ca_file());
        }
        if let Some(p) = &self.password {
            // REDISCLI_AUTH keeps the password off the command line (and out of `ps`).
            cmd.env("REDISCLI_AUTH", p);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e} ({INSTALL_HINT})", self.cli_bin.display()))
    }

    /// The keys matching `pattern` (`SCAN`, so fine on a big test database), sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let out = self.cli(&["--scan", "--pattern", pattern]);
        let mut keys: Vec<String> = out.lines().map(str::to_string).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub fn used_memory(&self) -> anyhow::Result<u64> {
        let info = self.cli(&["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow!("no used_memory in INFO memory: {info}"))
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(child) = &self.child
            && let Ok(pid) = i32::try_from(child.id())
        {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// A CA and a server certificate for 127.0.0.1 signed by it (ECDSA P-256, two days), in
    /// the server's directory: `ca.pem`, `server.pem`, `server.key`.
    fn make_certificates(&self) -> anyhow::Result<()> {
        let d = self.dir();
        fs::write(
            d.join("server.ext"),
            "subjectAltName = IP:127.0.0.1, DNS:localhost\n",
        )?;
        // Each server's CA has a name of its own, as two real CAs have.
        let ca = format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout ca.key -out ca.pem -days 2 -subj /CN=netban-test-CA-{}",
            self.port
        );
        let steps = [
            ca.as_str(),
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout server.key -out server.csr -subj /CN=127.0.0.1",
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
             -out server.pem -days 2 -extfile server.ext",
        ];
        for step in steps {
            let args: Vec<&str> = step.split_whitespace().collect();
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(d)
                .stdin(Stdio::null())
                .output()
                .context("running openssl (scripts/test installs it: apt-get install openssl)")?;
            if !out.status.success() {
                bail!(
                    "openssl {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }

    fn write_config(&self, opts: &RedisOptions) -> anyhow::Result<()> {
        let d = self.dir();
        let mut conf = format!(
            "# Written by netban-testsupport: a private, non-persistent test server.\n\
             bind 127.0.0.1\n\
             port {port}\n\
             protected-mode yes\n\
             daemonize no\n\
             dir {dir}\n\
             logfile {log}\n\
             save \"\"\n\
             appendonly no\n\
             databases 16\n",
            port = self.port,
            dir = d.display(),
            log = d.join("redis.log").display(),
        );
        if let Some(p) = &opts.password {
            conf.push_str(&format!("requirepass {p}\n"));
        }
        if opts.tls {
            conf.push_str(&format!(
                "port 0\ntls-port {port}\ntls-cert-file {d}/server.pem\ntls-key-file {d}/server.key\n\
                 tls-ca-cert-file {d}/ca.pem\ntls-auth-clients no\n",
                port = self.port,
                d = d.display()
            ));
        }
        for line in &opts.extra_config {
            conf.push_str(line);
            conf.push('\n');
        }
        fs::write(d.join("redis.conf"), conf).context("writing redis.conf")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.server_bin)
            .arg(self.dir().join("redis.conf"))
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .parent_death_kill()
            .spawn()
            .with_context(|| format!("starting {} ({INSTALL_HINT})", self.server_bin.display()))?;
        self.child = Some(child);
        if let Err(e) = self.wait_ready() {
            self.stop();
            return Err(e);
        }
        Ok(())
    }

    /// Waits for `+PONG` on a raw connection (no client library: the harness tests clients).
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                bail!(
                    "redis-server exited during start ({status}) on port {}\n{}",
                    self.port,
                    self.log_tail(20)
                );
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}\n{}",
                    self.port,
                    self.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> anyhow::Result<()> {
        if self.tls {
            // The raw check below speaks plain RESP; over TLS, ask redis-cli.
            let out = self.cli_output(&["PING"]);
            let reply = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && reply.trim() == "PONG" {
                return Ok(());
            }
            bail!("PING over TLS answered {reply:?}");
        }
        let mut s = TcpStream::connect(self.addr())?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        let mut cmd = Vec::new();
        if let Some(p) = &self.password {
            write!(cmd, "*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len())?;
        }
        cmd.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        s.write_all(&cmd)?;
        let mut r = BufReader::new(s.take(4096));
        let mut line = String::new();
        if self.password.is_some() {
            r.read_line(&mut line)?;
            line.clear();
        }
        r.read_line(&mut line)?;
        if line.trim_end() == "+PONG" {
            Ok(())
        } else {
            bail!("PING answered {line:?}")
        }
    }
}

/// A multi-thread tokio runtime (two workers) for a test whose TLS clients must trust
/// `ca_file`, a [`RedisServer::ca_file`]: sets `SSL_CERT_FILE`, which rustls-native-certs
/// reads at every TLS connection, the way an operator trusts a private CA without the system
/// store. Call it at the start of a plain `#[test]` (not `#[tokio::test]`), before any other
/// thread of the test exists; nextest runs each test in a process of its own.
pub fn runtime_trusting(ca_file: &Path) -> tokio::runtime::Runtime {
    // SAFETY: no other thread of this test process reads the environment yet (the runtime's
    // threads are made below).
    unsafe { std::env::set_var("SSL_CERT_FILE", ca_file) };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.stop();
    }
}

/// Sets `PR_SET_PDEATHSIG` to SIGKILL in the child.
trait ParentDeathKill {
    fn parent_death_kill(&mut self) -> &mut Self;
}

impl ParentDeathKill for Command {
    fn parent_death_kill(&mut self) -> &mut Self {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            self.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            })
        }
    }
}

/// A port that was free a moment ago (bind port 0, read it, close).
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a probe socket on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// SIGKILL to the server's process group, then reap it.
fn kill_group(child: &mut Child) {
    match i32::try_from(child.id()) {
        // SAFETY: kill(2) on the process group we created for our own child.
        Ok(pid) => unsafe {
            libc::kill(-pid, libc::SIGCONT);
            libc::kill(-pid, libc::SIGKILL);
        },
        Err(_) => {
            let _ = child.kill();
        }
    };
    let _ = child.wait();
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
