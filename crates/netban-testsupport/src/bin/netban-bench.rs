//! `netban-bench`: the benchmark of issues 2 and 3, against real components.
//!
//! It starts a real ExaFS 1.4.1 (werkzeug, SQLite) with a [`FaultProxy`] in front of it, points
//! netban instances (each in its own temporary state directory, with its own `host_id` so their
//! ExaFS rule marks never overlap) at the proxy, drives the given **release** `netban` binary,
//! and prints a markdown table (case, what, n, median, p90, max, unit, notes). It builds
//! nothing: `scripts/bench` builds and then runs it.
//!
//! Cases (`--only` selects some; the rest of the names are the table's `case` column):
//!
//! - `reference`: wall time of `/bin/true`, started exactly like `netban` (same spawn code).
//! - `inline`: `netban ban` with no daemon against a live ExaFS (one POST per call).
//! - `unreachable`: the same with ExaFS unreachable: proxy `Down` (connection refused) and
//!   `Blackhole` (nothing answers: the inline deadline bites). Then `netban sync` delivers
//!   what was left pending.
//! - `daemon`: `netban ban` with the daemon up; ExaFS fine, slow (`Delay` 500 ms), down.
//! - `direct`: POSTs made straight to ExaFS with a minimal client (no netban, no proxy):
//!   ExaFS's own ceiling, sequential and with 8 clients (netban's default concurrency).
//! - `burst-cli`: `--bans` distinct bans as sequential `netban ban` processes (the arguments
//!   of `netban.conf`), daemon up: time until ExaFS holds all, requests/s, daemon VmHWM.
//! - `burst-socket`: the same through the daemon's control socket (what `netban.py` sends).
//! - `restore`: fail2ban (Debian) restarts with N restored bans (each size of `--restore`),
//!   for: the probe alone (fail2ban's own floor), the command action without and with the
//!   daemon, the Python action with the daemon. Total time from server start until the last
//!   ban went through the actions, and the ExaFS requests the proxy saw meanwhile. Needs the
//!   leases and ExaFS rules of `burst-cli` (so it runs that too), and `--restore` <= `--bans`.
//!
//! fail2ban's database is seeded directly (rows in `bans`/`bips`, written with Python's
//! sqlite3 while the server is stopped) with the burst's addresses, time and bantime, so the
//! restored tickets are exactly the leases netban holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use netban_testsupport::exafs::ExaFs;
use netban_testsupport::fail2ban::{ActionFile, Fail2ban, Jail, Options, dist_dir};
use netban_testsupport::http;
use netban_testsupport::proxy::{FaultProxy, Mode, Seen};
use serde_json::{Value, json};

/// The jail of the burst and restore cases (fail2ban's jail name = netban's lease jail).
const JAIL: &str = "bench";
/// Bantime of the burst and restore bans (and fail2ban's jail bantime): long enough never
/// to expire during a run.
const BANTIME: i64 = 86_400;
/// The inline deadline netban uses by default (`[reconcile] inline_deadline`).
const INLINE_DEADLINE: Duration = Duration::from_secs(3);
const RULES_PATH: &str = "/api/v3/rules/rtbh";

const CASES: &[&str] = &[
    "reference",
    "inline",
    "unreachable",
    "daemon",
    "direct",
    "burst-cli",
    "burst-socket",
    "restore",
];

const USAGE: &str = "\
netban-bench: benchmark netban against a real ExaFS and a real fail2ban; prints a markdown table.

usage: netban-bench --netban PATH [options]

  --netban PATH        the netban binary to measure (a release build)
  --quick              small sizes for a smoke run (explicit options still win)
  --calls N            timed calls per single-call case (default 200, quick 20)
  --down N             calls with ExaFS refusing connections (default 20, quick 3)
  --blackhole N        calls with ExaFS blackholed, ~3 s each (default 5, quick 2)
  --bans N             bans per burst (default 10000, quick 300)
  --restore N,N        restored bans per fail2ban restart (default 2000,10000, quick 100,300);
                       each must be <= --bans
  --direct N           POSTs straight to ExaFS, per variant (default 1000, quick 50)
  --only CASE,CASE     run only these: reference, inline, unreachable, daemon, direct,
                       burst-cli, burst-socket, restore (restore also runs burst-cli)
  --timeout SECS       give up on one burst or restore after this long (default 3600)
  --out FILE           also write the report (environment + table) to FILE
  -h, --help           this text

Needs ExaFS in $NETBAN_EXAFS_VENV and fail2ban installed (scripts/test installs both).
";

// ------------------------------------------------------------------------------------------
// Arguments

struct Args {
    netban: PathBuf,
    quick: bool,
    calls: usize,
    down: usize,
    blackhole: usize,
    bans: usize,
    restore: Vec<usize>,
    direct: usize,
    only: BTreeSet<String>,
    timeout: Duration,
    out: Option<PathBuf>,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut raw: Vec<String> = std::env::args().skip(1).collect();
        raw.reverse();
        let mut netban = None;
        let mut quick = false;
        let (mut calls, mut down, mut blackhole, mut bans, mut direct) =
            (None, None, None, None, None);
        let mut restore: Option<Vec<usize>> = None;
        let mut only: Option<BTreeSet<String>> = None;
        let mut timeout = Duration::from_secs(3600);
        let mut out = None;
        while let Some(arg) = raw.pop() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || -> Result<String> {
                inline
                    .clone()
                    .or_else(|| raw.pop())
                    .ok_or_else(|| anyhow!("{key} needs a value\n\n{USAGE}"))
            };
            let num = |s: String| -> Result<usize> {
                s.parse::<usize>()
                    .map_err(|_| anyhow!("{key}: {s:?} is not a number"))
            };
            match key.as_str() {
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                "--netban" => netban = Some(PathBuf::from(value()?)),
                "--quick" => quick = true,
                "--calls" => calls = Some(num(value()?)?),
                "--down" => down = Some(num(value()?)?),
                "--blackhole" => blackhole = Some(num(value()?)?),
                "--bans" => bans = Some(num(value()?)?),
                "--direct" => direct = Some(num(value()?)?),
                "--restore" => {
                    let v = value()?;
                    let sizes = v
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| num(s.trim().to_string()))
                        .collect::<Result<Vec<_>>>()?;
                    restore = Some(sizes);
                }
                "--only" => {
                    let v = value()?;
                    let set: BTreeSet<String> = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if let Some(bad) = set.iter().find(|c| !CASES.contains(&c.as_str())) {
                        bail!("--only: unknown case {bad:?}; cases: {}", CASES.join(", "));
                    }
                    only = Some(set);
                }
                "--timeout" => timeout = Duration::from_secs(num(value()?)? as u64),
                "--out" => out = Some(PathBuf::from(value()?)),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        let netban = netban.ok_or_else(|| anyhow!("--netban PATH is required\n\n{USAGE}"))?;
        let netban = fs::canonicalize(&netban)
            .with_context(|| format!("--netban {}: no such file", netban.display()))?;
        let pick = |v: Option<usize>, full: usize, small: usize| {
            v.unwrap_or(if quick { small } else { full })
        };
        let mut restore = restore.unwrap_or_else(|| {
            if quick {
                vec![100, 300]
            } else {
                vec![2000, 10_000]
            }
        });
        restore.sort_unstable();
        restore.dedup();
        restore.retain(|&n| n > 0);
        let mut only =
            only.unwrap_or_else(|| CASES.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        if only.contains("restore") {
            only.insert("burst-cli".into());
        }
        let args = Args {
            netban,
            quick,
            calls: pick(calls, 200, 20).max(1),
            down: pick(down, 20, 3),
            blackhole: pick(blackhole, 5, 2),
            bans: pick(bans, 10_000, 300).max(1),
            restore,
            direct: pick(direct, 1000, 50).max(8),
            only,
            timeout,
            out,
        };
        if let Some(&big) = args.restore.last()
            && args.only.contains("restore")
            && big > args.bans
        {
            bail!(
                "--restore {big} exceeds --bans {}: the restored bans are the burst's",
                args.bans
            );
        }
        Ok(args)
    }

    fn runs(&self, case: &str) -> bool {
        self.only.contains(case)
    }
}

// ------------------------------------------------------------------------------------------
// Results

struct Row {
    case: String,
    what: String,
    n: String,
    median: String,
    p90: String,
    max: String,
    unit: String,
    notes: String,
}

/// Per-call timings are in milliseconds; totals (single values) in seconds.
#[derive(Clone, Copy)]
enum Unit {
    Ms,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
        }
    }
    fn of(self, d: Duration) -> f64 {
        match self {
            Unit::Ms => d.as_secs_f64() * 1000.0,
        }
    }
}

fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

struct Stats {
    n: usize,
    median: Duration,
    p90: Duration,
    max: Duration,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return Stats {
            n,
            median: Duration::ZERO,
            p90: Duration::ZERO,
            max: Duration::ZERO,
        };
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    };
    let p90 = v[((n * 9).div_ceil(10)).clamp(1, n) - 1];
    Stats {
        n,
        median,
        p90,
        max: v[n - 1],
    }
}

impl Row {
    fn timing(case: &str, what: &str, samples: &[Duration], unit: Unit, notes: String) -> Row {
        let s = stats(samples);
        Row {
            case: case.into(),
            what: what.into(),
            n: s.n.to_string(),
            median: num(unit.of(s.median)),
            p90: num(unit.of(s.p90)),
            max: num(unit.of(s.max)),
            unit: unit.name().into(),
            notes,
        }
    }

    fn single(case: &str, what: &str, n: usize, value: String, unit: &str, notes: String) -> Row {
        Row {
            case: case.into(),
            what: what.into(),
            n: n.to_string(),
            median: value,
            p90: "–".into(),
            max: "–".into(),
            unit: unit.into(),
            notes,
        }
    }

    fn failed(case: &str, what: &str, error: &anyhow::Error) -> Row {
        let text = format!("{error:#}").replace(['\n', '|'], " ");
        let text: String = text.chars().take(300).collect();
        Row::single(case, what, 0, "FAILED".into(), "", text)
    }
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from("| case | what | n | median | p90 | max | unit | notes |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.case,
            r.what,
            r.n,
            r.median,
            r.p90,
            r.max,
            r.unit,
            r.notes.replace('|', "/")
        );
    }
    s
}

/// Progress on stderr, with the time since the start.
struct Log(Instant);

impl Log {
    fn say(&self, msg: impl AsRef<str>) {
        eprintln!(
            "[bench {:7.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            msg.as_ref()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Processes

struct Run {
    wall: Duration,
    /// Exit code, or 128 + signal.
    code: i32,
    /// Peak resident set size of the process, KiB (getrusage via wait4).
    maxrss_kib: i64,
}

/// Spawns `cmd`, reaps it with wait4 (for its peak RSS) and times spawn-to-reap.
fn run_timed(cmd: &mut Command) -> Result<Run> {
    let start = Instant::now();
    let child = cmd.spawn().context("spawning a process")?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes only into the two out-pointers, which live on this stack.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let wall = start.elapsed();
    // Reaped above; dropping the handle neither waits nor kills.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Run {
        wall,
        code,
        maxrss_kib: usage.ru_maxrss,
    })
}

fn mib(kib: i64) -> String {
    num(kib as f64 / 1024.0)
}

fn median_i64(v: &[i64]) -> i64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a pid (or, negative, a process group) we started; no memory.
        unsafe { libc::kill(pid, sig) };
    }
}

// ------------------------------------------------------------------------------------------
// Addresses: 198.18.0.0/15 (RFC 2544, benchmarking), .0 and .255 skipped; then 2001:db8:be::/48

#[derive(Default)]
struct Ips {
    next: u64,
}

impl Ips {
    fn take(&mut self, n: usize) -> Vec<String> {
        let v = (self.next..self.next + n as u64).map(ip_at).collect();
        self.next += n as u64;
        v
    }
}

fn ip_at(i: u64) -> String {
    const V4: u64 = 512 * 254;
    if i < V4 {
        let (block, host) = (i / 254, i % 254 + 1);
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        Ipv4Addr::from(base + (block * 256 + host) as u32).to_string()
    } else {
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xbe, 0, 0, 0, 0, 0));
        Ipv6Addr::from(base + u128::from(i - V4 + 1)).to_string()
    }
}

/// `198.18.0.1` -> `198.18.0.1/32` (how ExaFS rules print with [`RtbhRule::prefix`]).
fn host_prefix(ip: &str) -> String {
    if ip.contains(':') {
        format!("{ip}/128")
    } else {
        format!("{ip}/32")
    }
}

// ------------------------------------------------------------------------------------------
// netban instances and the daemon

struct Nb {
    dir: tempfile::TempDir,
    bin: PathBuf,
    config: PathBuf,
    errlog: PathBuf,
}

impl Nb {
    fn new(bin: &Path, host: &str, exafs_url: &str, api_key: &str) -> Result<Nb> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netban-bench-{host}-"))
            .tempdir()
            .context("creating a temporary directory")?;
        let d = dir.path();
        let config = d.join("netban.toml");
        let text = format!(
            r#"# netban-bench: defaults, except logging to a file (no syslog here), the web
# listener off, and the periodic full check moved out of the measurements' way.
state_dir = "{state}"
host_id = "{host}"

[daemon]
resync_interval = 86400.0

[web]
listen = ""

[log]
syslog = false
file = "{log}"

[[sink]]
name = "exafs"
type = "exafs"
url = "{exafs_url}"
api_key = "{api_key}"
community = 1
"#,
            state = d.join("state").display(),
            log = d.join("netban.log").display(),
        );
        fs::write(&config, text).context("writing netban.toml")?;
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600))?;
        Ok(Nb {
            errlog: d.join("stderr.log"),
            bin: bin.to_path_buf(),
            config,
            dir,
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("state/netban.sock")
    }

    /// `netban --config C`, quiet, stderr appended to `stderr.log`.
    fn cmd(&self) -> Result<Command> {
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.errlog)
            .context("opening stderr.log")?;
        let mut c = Command::new(&self.bin);
        c.arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .env_remove("NETBAN_CONFIG")
            .env_remove("NOTIFY_SOCKET");
        Ok(c)
    }

    /// `netban ban` with the arguments `netban.conf` passes.
    fn ban_cmd(&self, ip: &str, time: &str, restored: bool) -> Result<Command> {
        let mut c = self.cmd()?;
        c.args(["ban", "--jail", JAIL, "--bantime", &BANTIME.to_string()])
            .args(["--time", time])
            .args(["--restored", if restored { "1" } else { "0" }])
            .args(["--failures", "3", ip]);
        Ok(c)
    }

    fn ban(&self, ip: &str) -> Result<Run> {
        run_timed(&mut self.ban_cmd(ip, &format!("{}.0", now_unix()), false)?)
    }

    fn err_tail(&self) -> String {
        tail(&self.errlog, 10)
    }

    fn start_daemon(&self) -> Result<Daemon> {
        let out_path = self.dir.path().join("daemon.out");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)?;
        let mut c = Command::new(&self.bin);
        c.arg("--config")
            .arg(&self.config)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .env_remove("NETBAN_CONFIG")
            .env_remove("NOTIFY_SOCKET");
        let child = c.spawn().context("starting netban daemon")?;
        let mut d = Daemon {
            child: Some(child),
            socket: self.socket(),
            out: out_path,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = d.child.as_mut()
                && let Ok(Some(s)) = c.try_wait()
            {
                d.child = None;
                bail!("netban daemon exited at start ({s}):\n{}", tail(&d.out, 20));
            }
            if Ctl::new(&d.socket)
                .call(&json!({"op": "ping"}))
                .is_ok_and(|v| v["ok"] == true)
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "netban daemon did not answer ping within 60 s:\n{}",
                    tail(&d.out, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the start-up full check (it lists ExaFS) finish before anything is measured.
        let answer = Ctl::new(&d.socket).call(&json!({"op": "sync", "timeout": 600}))?;
        if answer["ok"] != true {
            bail!("daemon sync after start: {answer}");
        }
        Ok(d)
    }
}

struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    out: PathBuf,
}

impl Daemon {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// (VmHWM, VmRSS) in KiB from /proc/PID/status.
    fn memory_kib(&self) -> Option<(i64, i64)> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
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
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), libc::SIGTERM);
        match wait_exit(&mut child, Duration::from_secs(90)) {
            Some(s) if s.success() => Ok(()),
            Some(s) => bail!("netban daemon exited with {s}:\n{}", tail(&self.out, 20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("netban daemon did not stop within 90 s of SIGTERM")
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
            if wait_exit(&mut child, Duration::from_secs(30)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A control-socket client that behaves like `netban.py`: one kept connection, one JSON line
/// per request and per answer; a failure on a reused connection is retried once on a new one.
struct Ctl {
    path: PathBuf,
    conn: Option<(BufReader<UnixStream>, UnixStream)>,
    reconnects: usize,
}

impl Ctl {
    fn new(path: &Path) -> Ctl {
        Ctl {
            path: path.to_path_buf(),
            conn: None,
            reconnects: 0,
        }
    }

    fn call(&mut self, request: &Value) -> Result<Value> {
        let mut line = request.to_string();
        line.push('\n');
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = UnixStream::connect(&self.path)
                    .with_context(|| format!("connecting to {}", self.path.display()))?;
                s.set_read_timeout(Some(Duration::from_secs(900)))?;
                self.conn = Some((BufReader::new(s.try_clone()?), s));
            }
            let Some((reader, writer)) = self.conn.as_mut() else {
                bail!("no connection");
            };
            let mut answer = String::new();
            let result = writer
                .write_all(line.as_bytes())
                .and_then(|()| reader.read_line(&mut answer));
            match result {
                Ok(n) if n > 0 => {
                    return serde_json::from_str(&answer)
                        .with_context(|| format!("daemon answer {answer:?}"));
                }
                other => {
                    self.conn = None;
                    if reused && attempt == 0 {
                        self.reconnects += 1;
                        continue;
                    }
                    match other {
                        Err(e) => return Err(e).context("control socket"),
                        Ok(_) => bail!("the daemon closed the connection"),
                    }
                }
            }
        }
        bail!("no answer from the daemon")
    }
}

// ------------------------------------------------------------------------------------------
// Proxy helpers

fn posts_ok(proxy: &FaultProxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path.starts_with(RULES_PATH) && s.status == 201)
        .count()
}

/// `3 POST /api/v3/rules/rtbh → 201, 1 GET /api/v3/auth → 200`, or `none`.
fn summarize(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "none".into();
    }
    let mut groups: BTreeMap<(String, String, u16), usize> = BTreeMap::new();
    for s in seen {
        let path: Vec<String> = s
            .path
            .split('/')
            .map(|seg| {
                if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                    "ID".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect();
        *groups
            .entry((s.method.clone(), path.join("/"), s.status))
            .or_default() += 1;
    }
    groups
        .iter()
        .map(|((m, p, st), n)| {
            let st = if *st == 0 {
                "no answer".to_string()
            } else {
                st.to_string()
            };
            format!("{n} {m} {p} → {st}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until the proxy has seen `want` successful rule POSTs since its last reset.
/// Returns (first POST seen, all seen), measured from `start`.
fn watch_posts(
    proxy: &FaultProxy,
    want: usize,
    start: Instant,
    timeout: Duration,
    stop: &AtomicBool,
) -> (Option<Duration>, Option<Duration>) {
    let mut first = None;
    loop {
        // Cheap count first (no copy); the exact one only when it may be done.
        let any = proxy.count("POST", RULES_PATH);
        if first.is_none() && any > 0 {
            first = Some(start.elapsed());
        }
        if any >= want && posts_ok(proxy) >= want {
            return (first, Some(start.elapsed()));
        }
        if start.elapsed() > timeout || stop.load(Ordering::SeqCst) {
            return (first, None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many of `ips` ExaFS holds as active rules (read from its database).
fn active_in_exafs(exafs: &ExaFs, ips: &[String]) -> Result<usize> {
    let want: BTreeSet<String> = ips.iter().map(|ip| host_prefix(ip)).collect();
    Ok(exafs
        .try_rtbh_rules()?
        .iter()
        .filter(|r| r.is_active() && want.contains(&r.prefix()))
        .count())
}

// ------------------------------------------------------------------------------------------
// Cases

/// An ExaFS with the fault proxy in front of it (netban talks to the proxy).
struct Exa {
    exafs: ExaFs,
    proxy: FaultProxy,
}

impl Exa {
    fn start() -> Result<Exa> {
        let exafs = ExaFs::start()?;
        let proxy = FaultProxy::start(exafs.authority())?;
        Ok(Exa { exafs, proxy })
    }

    fn rules(&self) -> usize {
        self.exafs.try_rtbh_rules().map(|r| r.len()).unwrap_or(0)
    }
}

/// What `burst-cli` leaves for `restore`: its ExaFS (holding the rules), the netban
/// instance (holding the leases), the addresses and the bans' `time`.
struct Burst {
    x: Exa,
    nb: Nb,
    ips: Vec<String>,
    t0: i64,
}

struct Bench {
    args: Args,
    log: Log,
    ips: Ips,
    rows: Vec<Row>,
    true_median: Option<Duration>,
}

impl Bench {
    fn nb(&self, host: &str, x: &Exa) -> Result<Nb> {
        Nb::new(&self.args.netban, host, &x.proxy.url(), x.exafs.api_key())
    }

    fn vs_true(&self, d: Duration) -> String {
        match self.true_median {
            Some(t) if !t.is_zero() => {
                format!("{:.1}× /bin/true", d.as_secs_f64() / t.as_secs_f64())
            }
            _ => String::new(),
        }
    }

    fn reference(&mut self) -> Result<()> {
        let n = self.args.calls.max(100);
        self.log.say(format!("reference: /bin/true x {n}"));
        for _ in 0..5 {
            run_timed(Command::new("/bin/true").stdin(Stdio::null()))?;
        }
        let mut walls = Vec::with_capacity(n);
        let mut rss = Vec::with_capacity(n);
        for _ in 0..n {
            let r = run_timed(
                Command::new("/bin/true")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )?;
            walls.push(r.wall);
            rss.push(r.maxrss_kib);
        }
        self.true_median = Some(stats(&walls).median);
        self.rows.push(Row::timing(
            "reference",
            "`/bin/true` (process start, spawned like netban)",
            &walls,
            Unit::Ms,
            format!("peak RSS {} MiB", mib(median_i64(&rss))),
        ));
        Ok(())
    }

    /// Times `n` `netban ban` calls with fresh addresses; returns (walls, rss, failures).
    fn bans(&mut self, nb: &Nb, n: usize) -> Result<(Vec<Duration>, Vec<i64>, Vec<String>)> {
        let ips = self.ips.take(n);
        let mut walls = Vec::with_capacity(n);
        let mut rss = Vec::with_capacity(n);
        let mut bad = Vec::new();
        for ip in &ips {
            let r = nb.ban(ip)?;
            if r.code != 0 {
                bad.push(format!("{ip}: exit {}", r.code));
            }
            walls.push(r.wall);
            rss.push(r.maxrss_kib);
        }
        if !bad.is_empty() {
            self.log.say(format!(
                "  {} calls failed, e.g. {}; stderr:\n{}",
                bad.len(),
                bad[0],
                nb.err_tail()
            ));
        }
        Ok((walls, rss, bad))
    }

    /// `n` inline bans (no daemon). The first time (`warm_up`), one call first fills the
    /// token cache and is not counted.
    fn inline(&mut self, x: &Exa, nb: &Nb, n: usize, what: &str, warm_up: bool) -> Result<()> {
        self.log
            .say(format!("inline: netban ban x {n}, no daemon: {what}"));
        x.proxy.set_mode(Mode::Pass);
        x.proxy.reset_counts();
        let warm = if warm_up {
            let r = self.bans(nb, 1)?;
            let reqs = summarize(&x.proxy.seen());
            x.proxy.reset_counts();
            format!(
                "; not counted: 1 warm-up call ({} ms: {reqs})",
                num(Unit::Ms.of(r.0[0]))
            )
        } else {
            String::new()
        };
        let (walls, rss, bad) = self.bans(nb, n)?;
        let seen = x.proxy.seen();
        let ok = posts_ok(&x.proxy);
        let s = stats(&walls);
        self.rows.push(Row::timing(
            "inline",
            &format!("`netban ban`, no daemon, {what}"),
            &walls,
            Unit::Ms,
            format!(
                "{}; peak RSS {} MiB/call; exit≠0: {}; ExaFS requests: {} ({ok} rules created of \
                 {n}){warm}",
                self.vs_true(s.median),
                mib(median_i64(&rss)),
                bad.len(),
                summarize(&seen),
            ),
        ));
        Ok(())
    }

    fn unreachable(&mut self, x: &Exa, nb: &Nb, token_cached: bool) -> Result<()> {
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

    fn daemon(&mut self, x: &Exa) -> Result<()> {
        let n = self.args.calls;
        let nb = self.nb("bench-daemon", x)?;
        x.proxy.set_mode(Mode::Pass);
        self.log.say("daemon: starting netban daemon");
        let mut d = nb.start_daemon()?;
        x.proxy.reset_counts();
        self.bans(&nb, 1)?; // warm-up
        let mut total = 1;
        for (mode, what) in [
            (Mode::Pass, "`netban ban`, daemon up, ExaFS live"),
            (
                Mode::Delay(Duration::from_millis(500)),
                "`netban ban`, daemon up, ExaFS slow (+500 ms per request)",
            ),
            (Mode::Down, "`netban ban`, daemon up, ExaFS down"),
        ] {
            self.log.say(format!("daemon: netban ban x {n}, {mode:?}"));
            x.proxy.set_mode(mode);
            let (walls, rss, bad) = self.bans(&nb, n)?;
            total += n;
            let s = stats(&walls);
            self.rows.push(Row::timing(
                "daemon",
                what,
                &walls,
                Unit::Ms,
                format!(
                    "{} (target ≤ 3×); peak RSS {} MiB/call; exit≠0: {}",
                    self.vs_true(s.median),
                    mib(median_i64(&rss)),
                    bad.len()
                ),
            ));
        }
        // ExaFS back: the daemon delivers everything (retries back off up to retry_max, so
        // this shows how long catching up takes, not a latency).
        x.proxy.set_mode(Mode::Pass);
        self.log.say(format!(
            "daemon: ExaFS back; waiting for all {total} rules (up to 10 min)"
        ));
        let back = Instant::now();
        let stop = AtomicBool::new(false);
        let (_, all) = watch_posts(&x.proxy, total, back, Duration::from_secs(600), &stop);
        let mem = d.memory_kib();
        d.stop()?;
        self.rows.push(Row::single(
            "daemon",
            "then ExaFS back: until the daemon delivered every ban above",
            total,
            all.map(|t| num(t.as_secs_f64()))
                .unwrap_or_else(|| "not within 600 s".into()),
            "s",
            format!(
                "rule POSTs answered 201 since the first call: {}; daemon VmHWM {} MiB",
                posts_ok(&x.proxy),
                mem.map(|(h, _)| mib(h)).unwrap_or_else(|| "?".into())
            ),
        ));
        Ok(())
    }

    /// POSTs straight to ExaFS (no proxy, no netban): `clients` threads, `n` rules in all.
    fn direct(&mut self, x: &Exa, label: &str, n: usize, clients: usize) -> Result<()> {
        let rules_before = x.rules();
        self.log.say(format!(
            "direct: {n} POSTs straight to ExaFS, {clients} client(s), {rules_before} rules stored"
        ));
        let token = x.exafs.token(x.exafs.api_key())?;
        let ips = self.ips.take(n);
        let expires = now_unix() + BANTIME;
        let authority = x.exafs.authority();
        let started = Instant::now();
        let chunks: Vec<&[String]> = ips.chunks(n.div_ceil(clients)).collect();
        let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|chunk| {
                    let (token, authority) = (&token, &authority);
                    s.spawn(move || -> Result<Vec<Duration>> {
                        let mut walls = Vec::with_capacity(chunk.len());
                        for ip in chunk.iter() {
                            let body = json!({
                                "ipv4": ip, "ipv4_mask": 32, "community": 1,
                                "expires": expires, "comment": "bench direct",
                            })
                            .to_string();
                            let t = Instant::now();
                            let r = http::request(
                                authority,
                                "POST",
                                RULES_PATH,
                                &[
                                    ("x-access-token", token.as_str()),
                                    ("Content-Type", "application/json"),
                                ],
                                Some(body.as_bytes()),
                            )?;
                            walls.push(t.elapsed());
                            if r.status != 201 {
                                bail!("POST {ip}: HTTP {}: {}", r.status, r.text());
                            }
                        }
                        Ok(walls)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("client thread panicked")))
                })
                .collect()
        });
        let elapsed = started.elapsed();
        let mut walls = Vec::new();
        for r in results {
            walls.extend(r?);
        }
        let rate = n as f64 / elapsed.as_secs_f64();
        self.rows.push(Row::timing(
            "direct",
            &format!("POST /rules/rtbh straight to ExaFS, {clients} client(s), {label}"),
            &walls,
            Unit::Ms,
            format!(
                "**{} req/s**; {rules_before} rules stored before; a minimal HTTP/1.1 client, \
                 new connection per request (werkzeug sends Connection: close)",
                num(rate)
            ),
        ));
        Ok(())
    }

    /// `--bans` bans as sequential `netban ban` processes, daemon up, on a fresh ExaFS (so
    /// both bursts start from an empty one). What it leaves feeds the restore case.
    fn burst_cli(&mut self) -> Result<Burst> {
        let n = self.args.bans;
        self.log.say("burst-cli: starting a fresh ExaFS");
        let x = Exa::start()?;
        let nb = self.nb("bench-burst", &x)?;
        x.proxy.set_mode(Mode::Pass);
        self.log.say("burst-cli: starting netban daemon");
        let mut d = nb.start_daemon()?;
        let ips = self.ips.take(n);
        let t0 = now_unix();
        let time = format!("{t0}.0");
        x.proxy.reset_counts();
        self.log
            .say(format!("burst-cli: {n} sequential netban ban processes"));
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let timeout = self.args.timeout;
        let proxy = &x.proxy;
        let (cli, watched) = std::thread::scope(|s| {
            let watcher = s.spawn(|| watch_posts(proxy, n, start, timeout, &stop));
            let cli = (|| -> Result<(Vec<Duration>, Vec<i64>, usize, Duration)> {
                let mut walls = Vec::with_capacity(n);
                let mut rss = Vec::with_capacity(n);
                let mut bad = 0;
                for ip in &ips {
                    let r = run_timed(&mut nb.ban_cmd(ip, &time, false)?)?;
                    bad += usize::from(r.code != 0);
                    walls.push(r.wall);
                    rss.push(r.maxrss_kib);
                }
                Ok((walls, rss, bad, start.elapsed()))
            })();
            if cli.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            let watched = watcher.join().unwrap_or((None, None));
            (cli, watched)
        });
        let (walls, rss, bad, cli_done) = cli?;
        let mem = d.memory_kib();
        let seen = x.proxy.seen();
        self.log.say("burst-cli: checking ExaFS");
        let held = active_in_exafs(&x.exafs, &ips)?;
        d.stop()?;
        if bad > 0 {
            self.log
                .say(format!("  {bad} calls failed; stderr:\n{}", nb.err_tail()));
        }
        self.burst_rows(
            "burst-cli",
            "`netban ban` processes",
            n,
            &walls,
            Some(&rss),
            bad,
            cli_done,
            watched,
            &seen,
            mem,
            held,
            "",
        );
        Ok(Burst { x, nb, ips, t0 })
    }

    /// `--bans` bans over the control socket, as `netban.py` sends them, daemon up, on a
    /// fresh ExaFS.
    fn burst_socket(&mut self) -> Result<()> {
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
                let mut ctl = Ctl::new(&socket);
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
                Ok((walls, bad, ctl.reconnects, start.elapsed()))
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
                "; the daemon closed the kept connection {reconnects}× (reconnected as netban.py does)"
            )
        } else {
            String::new()
        };
        self.burst_rows(
            "burst-socket",
            "control-socket requests (netban.py's path)",
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

    #[allow(clippy::too_many_arguments)]
    fn burst_rows(
        &mut self,
        case: &str,
        what: &str,
        n: usize,
        walls: &[Duration],
        rss: Option<&[i64]>,
        bad: usize,
        submitted: Duration,
        (first, all): (Option<Duration>, Option<Duration>),
        seen: &[Seen],
        mem: Option<(i64, i64)>,
        held: usize,
        extra: &str,
    ) {
        let rss = rss
            .map(|r| format!("; peak RSS {} MiB/call", mib(median_i64(r))))
            .unwrap_or_default();
        self.rows.push(Row::timing(
            case,
            &format!("{what}: per ban, while the daemon delivers"),
            walls,
            Unit::Ms,
            format!(
                "all {n} submitted in {} s ({} bans/s){rss}; failed: {bad}{extra}",
                num(submitted.as_secs_f64()),
                num(n as f64 / submitted.as_secs_f64())
            ),
        ));
        let (value, rate) = match all {
            Some(all) => {
                let sustained = match first {
                    Some(f) if all > f && n > 1 => format!(
                        ", {} req/s from first to last POST",
                        num((n - 1) as f64 / (all - f).as_secs_f64())
                    ),
                    _ => String::new(),
                };
                (
                    num(all.as_secs_f64()),
                    format!(
                        "**{} rules/s** overall{sustained}",
                        num(n as f64 / all.as_secs_f64())
                    ),
                )
            }
            None => (
                format!("not within {} s", self.args.timeout.as_secs()),
                String::new(),
            ),
        };
        self.rows.push(Row::single(
            case,
            &format!("first ban → ExaFS holds all {n} rules"),
            n,
            value,
            "s",
            format!(
                "{rate}; ExaFS active rules checked in its DB: {held}/{n}; requests: {}",
                summarize(seen)
            ),
        ));
        self.rows.push(Row::single(
            case,
            "daemon peak RSS (VmHWM) after the burst",
            n,
            mem.map(|(h, _)| mib(h)).unwrap_or_else(|| "?".into()),
            "MiB",
            mem.map(|(_, r)| format!("VmRSS at the end {} MiB", mib(r)))
                .unwrap_or_default(),
        ));
    }

    fn restore(&mut self, burst: &Burst) -> Result<()> {
        let Burst { x, nb, ips, t0 } = burst;
        let t0 = *t0;
        let bin = self.args.netban.display().to_string();
        let cfg = nb.config.display().to_string();
        let cmd_action = format!("netban[netban=\"{bin}\", config=\"{cfg}\"]");
        let py_action = format!("netban.py[netban=\"{bin}\", config=\"{cfg}\"]");
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
                ("Python action (netban.py), daemon up", &py_action, true),
            ];
            let mut daemon: Option<Daemon> = None;
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

// ------------------------------------------------------------------------------------------
// fail2ban

fn f2b_options(action: &str) -> Result<Options> {
    Ok(Options::new()
        .bantime(BANTIME)
        .action_file(ActionFile::netban_dist()?)
        .action_file(ActionFile::from_path(
            dist_dir().join("fail2ban/action.d/netban.py"),
        )?)
        .jail(Jail::new(JAIL, action)))
}

/// The database file fail2ban reports (`get dbfile`), else the harness's default place.
fn f2b_dbfile(f2b: &Fail2ban) -> PathBuf {
    let out = f2b.client(&["get", "dbfile"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("`- ")
                .map(|p| PathBuf::from(p.trim()))
        })
        .filter(|p| p.is_file())
        .unwrap_or_else(|| f2b.dir().join("run/fail2ban.sqlite3"))
}

const SEED_PY: &str = r#"
import json, sqlite3, sys
db, jail, t, bantime = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ips = [l.strip() for l in sys.stdin if l.strip()]
data = json.dumps({"matches": [], "failures": 3})
con = sqlite3.connect(db, timeout=30)
con.executemany("INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES(?,?,?,?,1,?)",
                [(jail, ip, t, bantime, data) for ip in ips])
con.executemany("INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES(?,?,?,?,1,?)",
                [(ip, jail, t, bantime, data) for ip in ips])
con.commit()
"#;

/// Adds active bans to fail2ban's database (server stopped), as fail2ban's `addBan` does.
fn seed_f2b_db(db: &Path, ips: &[String], t0: i64) -> Result<()> {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SEED_PY)
        .arg(db)
        .args([JAIL, &t0.to_string(), &BANTIME.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running python3 to seed fail2ban's database")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ips.join("\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "seeding fail2ban's database {}: {}",
            db.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// New complete lines of a growing file.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    fn at_end(path: PathBuf) -> Tail {
        let offset = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Tail {
            path,
            offset,
            partial: String::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = String::new();
        let Ok(n) = f.read_to_string(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(str::to_string).collect()
    }
}

struct RestoreRun {
    total: Duration,
    first: Option<Duration>,
    seen: Vec<Seen>,
    errors: usize,
    stop: Duration,
}

/// One fail2ban start with `n` bans in its database: from server spawn until the probe (the
/// last action of the jail) has seen `n` restored bans; then fail2ban is stopped again.
fn restore_once(
    f2b: &mut Fail2ban,
    action: &str,
    n: usize,
    proxy: &FaultProxy,
    timeout: Duration,
) -> Result<RestoreRun> {
    f2b.reconfigure(f2b_options(action)?)?;
    let mut probe = Tail::at_end(f2b.dir().join("probe.log"));
    let mut flog = Tail::at_end(f2b.log_path());
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(f2b.dir().join("run/server.out"))?;
    proxy.reset_counts();
    let start = Instant::now();
    let child = Command::new("fail2ban-server")
        .arg("-c")
        .arg(f2b.config_dir())
        .args(["-f", "-x"])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .env_remove("NOTIFY_SOCKET")
        .env("TZ", "UTC") // as the harness runs it
        .process_group(0)
        .spawn()
        .context("starting fail2ban-server")?;
    let mut server = Server(Some(child));
    let mut restored = 0;
    let mut first = None;
    let total = loop {
        for l in probe.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() >= 4 && f[0] == "ban" && f[1] == JAIL && f[3] == "1" {
                restored += 1;
                first.get_or_insert_with(|| start.elapsed());
            }
        }
        if restored >= n {
            break start.elapsed();
        }
        if let Some(c) = server.0.as_mut()
            && let Ok(Some(s)) = c.try_wait()
        {
            server.0 = None;
            bail!(
                "fail2ban-server exited ({s}) after {restored}/{n} restored\n{}",
                f2b.log_tail(20)
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "only {restored}/{n} bans restored within {} s\n{}",
                timeout.as_secs(),
                f2b.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Requests caused by the restart but sent a little later (the daemon's pass after pokes).
    std::thread::sleep(Duration::from_secs(2));
    let seen = proxy.seen();
    let errors = flog
        .lines()
        .iter()
        .filter(|l| l.contains(" ERROR ") || l.contains("Failed to execute"))
        .count();
    let stopping = Instant::now();
    let out = f2b.client(&["stop"]);
    let stopped = server
        .0
        .as_mut()
        .and_then(|c| wait_exit(c, Duration::from_secs(120)));
    let stop = stopping.elapsed();
    if stopped.is_none() || !out.status.success() {
        bail!(
            "fail2ban did not stop cleanly: {}{}",
            String::from_utf8_lossy(&out.stderr),
            f2b.log_tail(20)
        );
    }
    server.0 = None;
    Ok(RestoreRun {
        total,
        first,
        seen,
        errors,
        stop,
    })
}

/// Our own fail2ban-server; its process group is killed if still there when dropped.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on the process group we created with process_group(0).
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ------------------------------------------------------------------------------------------
// Environment

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn environment(args: &Args) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let exafs_python = netban_testsupport::exafs::venv_dir().join("bin/python");
    let exafs = command_line(
        &exafs_python.display().to_string(),
        &[
            "-c",
            "import importlib.metadata as m; print(m.version('exafs'))",
        ],
    );
    let mut s = String::new();
    let _ = writeln!(s, "- date: {}", command_line("date", &["-u", "+%F %T UTC"]));
    let _ = writeln!(
        s,
        "- machine: {cores} cores ({cpu}), {mem} RAM, {}",
        command_line("uname", &["-sr"])
    );
    let _ = writeln!(
        s,
        "- netban: {} ({})",
        command_line(&args.netban.display().to_string(), &["--version"]),
        args.netban.display()
    );
    let _ = writeln!(
        s,
        "- ExaFS {exafs} (werkzeug dev server, threaded, SQLite), behind the in-process FaultProxy; {}",
        command_line("fail2ban-server", &["--version"])
    );
    let _ = writeln!(
        s,
        "- sizes: calls {}, down {}, blackhole {}, bans {}, restore {:?}, direct {}{}",
        args.calls,
        args.down,
        args.blackhole,
        args.bans,
        args.restore,
        args.direct,
        if args.quick { " (--quick)" } else { "" }
    );
    s.push_str(
        "- method: wall time from spawn to reap (same spawn code for /bin/true and netban); \
         peak RSS from wait4; requests counted by the proxy; each burst on a fresh ExaFS; \
         restore: fail2ban's sqlite DB seeded directly (bans + bips rows, server stopped) with \
         the burst-cli addresses, time and bantime, and a restart is done when the harness's \
         probe action (the jail's last action) has logged every restored ban\n",
    );
    s
}

// ------------------------------------------------------------------------------------------

fn main() {
    match real_main() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("netban-bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse()?;
    let log = Log(Instant::now());
    let env = environment(&args);
    let load_start = loadavg();
    log.say(format!("load average {load_start}; starting ExaFS"));
    // The ExaFS of the single-call cases; each burst gets a fresh one.
    let main = Exa::start()?;
    let x = &main;
    let mut b = Bench {
        args,
        log,
        ips: Ips::default(),
        rows: Vec::new(),
        true_median: None,
    };

    // The reference always runs: the other rows are compared with it.
    if let Err(e) = b.reference() {
        b.rows.push(Row::failed("reference", "/bin/true", &e));
    }

    if b.args.runs("inline") || b.args.runs("unreachable") {
        let nb = b.nb("bench-inline", x)?;
        let mut warm = false;
        if b.args.runs("inline") {
            let n = b.args.calls;
            match b.inline(x, &nb, n, "ExaFS live, (almost) empty", true) {
                Ok(()) => warm = true,
                Err(e) => b.rows.push(Row::failed("inline", "netban ban", &e)),
            }
        }
        if b.args.runs("unreachable")
            && let Err(e) = b.unreachable(x, &nb, warm)
        {
            x.proxy.set_mode(Mode::Pass);
            b.rows.push(Row::failed("unreachable", "netban ban", &e));
        }
    }
    if b.args.runs("daemon")
        && let Err(e) = b.daemon(x)
    {
        x.proxy.set_mode(Mode::Pass);
        b.rows.push(Row::failed("daemon", "netban ban", &e));
    }
    let direct_n = b.args.direct;
    if b.args.runs("direct") {
        for clients in [1, 8] {
            if let Err(e) = b.direct(x, "small ExaFS", direct_n, clients) {
                b.rows.push(Row::failed("direct", "POST", &e));
            }
        }
    }
    let mut burst = None;
    if b.args.runs("burst-cli") {
        match b.burst_cli() {
            Ok(x) => burst = Some(x),
            Err(e) => b.rows.push(Row::failed("burst-cli", "netban ban", &e)),
        }
    }
    if b.args.runs("burst-socket")
        && let Err(e) = b.burst_socket()
    {
        b.rows
            .push(Row::failed("burst-socket", "control socket", &e));
    }
    // ExaFS holding the burst's rules: its own speed, and the inline path, on a big ExaFS.
    if let Some(big) = &burst {
        let stored = big.x.rules();
        if b.args.runs("direct")
            && let Err(e) = b.direct(&big.x, "ExaFS after burst-cli", direct_n, 1)
        {
            b.rows.push(Row::failed("direct", "POST", &e));
        }
        if b.args.runs("inline") {
            let n = b.args.calls.min(50);
            let what = format!("ExaFS live, holding {stored} rules (after burst-cli)");
            let run = b
                .nb("bench-inline-big", &big.x)
                .and_then(|nb| b.inline(&big.x, &nb, n, &what, true));
            if let Err(e) = run {
                b.rows.push(Row::failed("inline", "netban ban", &e));
            }
        }
    }
    if b.args.runs("restore") {
        match &burst {
            Some(big) => {
                if let Err(e) = b.restore(big) {
                    b.rows.push(Row::failed("restore", "fail2ban restart", &e));
                }
            }
            None => b.rows.push(Row::failed(
                "restore",
                "fail2ban restart",
                &anyhow!("needs the leases of burst-cli, which failed"),
            )),
        }
    }

    let elapsed = b.log.0.elapsed();
    let report = format!(
        "{env}- load average (1/5/15 min): {load_start} at the start, {} at the end; run took {} min\n\n{}",
        loadavg(),
        num(elapsed.as_secs_f64() / 60.0),
        table(&b.rows)
    );
    println!("{report}");
    if let Some(out) = &b.args.out {
        fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        b.log.say(format!("report written to {}", out.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_reserved_for_benchmarks() {
        assert_eq!(ip_at(0), "198.18.0.1");
        assert_eq!(ip_at(253), "198.18.0.254");
        assert_eq!(ip_at(254), "198.18.1.1");
        assert_eq!(ip_at(512 * 254 - 1), "198.19.255.254");
        assert_eq!(ip_at(512 * 254), "2001:db8:be::1");
        let mut ips = Ips::default();
        let a = ips.take(300);
        let b = ips.take(300);
        let all: BTreeSet<&String> = a.iter().chain(&b).collect();
        assert_eq!(all.len(), 600);
    }

    #[test]
    fn median_and_p90() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&x| Duration::from_millis(x))
                .collect::<Vec<_>>()
        };
        let s = stats(&ms(&[5, 1, 3, 2, 4, 6, 7, 8, 9, 10]));
        assert_eq!(s.median, Duration::from_micros(5500));
        assert_eq!(s.p90, Duration::from_millis(9));
        assert_eq!(s.max, Duration::from_millis(10));
        assert_eq!(stats(&ms(&[3])).p90, Duration::from_millis(3));
    }
}
