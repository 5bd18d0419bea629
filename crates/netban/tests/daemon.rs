//! The daemon against a real ExaFS 1.4.1 (from PyPI), through a fault-injecting proxy.
//!
//! Every test runs the real `netban daemon` binary as a child process (killed on drop) with a
//! temporary state directory, `/healthz` + `/metrics` on a free loopback port, a repair pass
//! every 2 s and short retry times, and one ExaFS sink pointing at a [`FaultProxy`] in front
//! of ExaFS. `netban ban` / `unban` / `sync` run as separate processes, as fail2ban runs them.
//!
//! What a user would notice: an ExaFS outage costs fail2ban nothing and loses nothing;
//! `kill -9` of the daemon at any moment loses nothing and duplicates nothing; hundreds of
//! concurrent bans and unbans on the same addresses end in exactly the right rules, with or
//! without the daemon; rules removed behind netban's back come back while foreign rules stay
//! untouched; bans end on their own; status, metrics and health tell the truth; SIGTERM and
//! SIGHUP do what operations.md says; restored bans cost no ExaFS call.
//!
//! Waits poll with generous timeouts (the machine is shared); nothing is asserted after a
//! fixed sleep.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Netban;
use netban_testsupport::exafs::{ExaFs, RtbhRule, now_unix};
use netban_testsupport::http;
use netban_testsupport::proxy::{FaultProxy, Mode};

/// How long a daemon may take to answer `/healthz` after spawn (shared, loaded machine).
const START_WAIT: Duration = Duration::from_secs(60);

/// The host id of every test netban; ExaFS comments are `netban test-host JAIL`.
const HOST: &str = "test-host";

/// The start of the ownership mark of this host's netban rules (`netban:<host>:<instance>`).
const MARK: &str = "netban:test-host:";

// ------------------------------------------------------------------------------------------
// Set-up: ExaFS, proxy, netban config, daemon
// ------------------------------------------------------------------------------------------

/// A real ExaFS, a proxy in front of it, and a netban whose only sink is that ExaFS (through
/// the proxy), configured for the daemon.
struct Env {
    // Fields drop in order: the daemon (held by tests) goes first, ExaFS last.
    nb: Netban,
    web: String,
    proxy: FaultProxy,
    exafs: ExaFs,
}

impl Env {
    fn new() -> Env {
        Env::with_extra("")
    }

    /// `extra` is appended to the config (more sinks, ...).
    fn with_extra(extra: &str) -> Env {
        let exafs = ExaFs::start().unwrap_or_else(|e| panic!("starting ExaFS: {e:#}"));
        let proxy = FaultProxy::start(exafs.authority())
            .unwrap_or_else(|e| panic!("starting the proxy: {e:#}"));
        let web = format!("127.0.0.1:{}", free_port());
        let nb = Netban::new("");
        std::fs::write(&nb.config, config_text(&nb, &web, &proxy, &exafs, extra))
            .expect("write netban config");
        Env {
            nb,
            web,
            proxy,
            exafs,
        }
    }

    fn config_text(&self, extra: &str) -> String {
        config_text(&self.nb, &self.web, &self.proxy, &self.exafs, extra)
    }

    fn start_daemon(&self) -> Daemon {
        Daemon::start(&self.nb, &self.web)
    }

    /// Everything a failing assertion needs: netban's log, the daemon's stderr, ExaFS' rules,
    /// the proxy's request counts.
    fn ctx(&self) -> String {
        let rules = match self.exafs.try_rtbh_rules() {
            Ok(r) => summarize_rules(&r),
            Err(e) => format!("(cannot read: {e:#})"),
        };
        let seen = self.proxy.seen();
        let mut by_req: BTreeMap<(String, String, u16), usize> = BTreeMap::new();
        for s in &seen {
            let path = if s.path.starts_with("/api/v3/rules/rtbh/") {
                "/api/v3/rules/rtbh/ID".to_string()
            } else {
                s.path.clone()
            };
            *by_req
                .entry((s.method.clone(), path, s.status))
                .or_default() += 1;
        }
        format!(
            "--- netban log (last lines) ---\n{}\n--- daemon stderr (last lines) ---\n{}\n\
             --- ExaFS rules ---\n{rules}\n--- proxy requests (method, path, status: count) ---\n{by_req:?}",
            tail(&self.nb.path("netban.log"), 40),
            tail(&self.nb.path("daemon.stderr"), 20),
        )
    }

    /// `GET path` on the daemon's web listener.
    fn get(&self, path: &str) -> Option<http::Response> {
        http::request_with_timeout(&self.web, "GET", path, &[], None, Duration::from_secs(10)).ok()
    }

    fn metrics(&self) -> String {
        let r = self.get("/metrics").expect("GET /metrics answers");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        r.text()
    }
}

fn config_text(nb: &Netban, web: &str, proxy: &FaultProxy, exafs: &ExaFs, extra: &str) -> String {
    format!(
        r#"state_dir = "{state}"
host_id = "{HOST}"

[log]
level = "info"
syslog = false
file = "{log}"

# The test addresses are documentation ranges, which a test machine may use itself (e.g.
# 192.0.2.2 on a sandbox's eth0); loopback and the other never-ban ranges stay refused.
[guard]
protect_own_addresses = false

[daemon]
resync_interval = 2

[web]
listen = "{web}"

[reconcile]
retry_initial = 0.5
retry_max = 2

[[sink]]
name = "exafs"
type = "exafs"
url = "{url}"
api_key = "{key}"
community = 1
{extra}"#,
        state = nb.state_dir().display(),
        log = nb.path("netban.log").display(),
        url = proxy.url(),
        key = exafs.api_key(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running `netban daemon`; SIGKILLed and reaped on drop.
struct Daemon {
    child: Option<Child>,
    web: String,
    socket: PathBuf,
    stderr: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `netban daemon` and waits for `/healthz` 200 (its control socket listens by
    /// then).
    fn start(nb: &Netban, web: &str) -> Daemon {
        let stderr_path = nb.path("daemon.stderr");
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .expect("open daemon.stderr");
        let child = nb
            .cmd()
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("dup daemon.stderr"))
            .stderr(stderr)
            .spawn()
            .expect("spawn netban daemon");
        let mut d = Daemon {
            child: Some(child),
            web: web.to_string(),
            socket: nb.state_dir().join("netban.sock"),
            stderr: stderr_path,
            log: nb.path("netban.log"),
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "netban daemon exited with {status} before it was ready\n--- stderr ---\n{}\n--- log ---\n{}",
                    tail(&self.stderr, 30),
                    tail(&self.log, 30)
                );
            }
            let healthy = http::request_with_timeout(
                &self.web,
                "GET",
                "/healthz",
                &[],
                None,
                Duration::from_secs(5),
            )
            .is_ok_and(|r| r.status == 200);
            if healthy && self.socket.exists() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "netban daemon not ready (/healthz 200 and {}) within {START_WAIT:?}\n--- stderr ---\n{}\n--- log ---\n{}",
                    self.socket.display(),
                    tail(&self.stderr, 30),
                    tail(&self.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> i32 {
        let c = self.child.as_ref().expect("daemon child");
        i32::try_from(c.id()).expect("pid fits i32")
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// The exit status if the daemon has exited.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the daemon to exit.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
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

    /// `kill -9`, then reap.
    fn kill9(&mut self) {
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

// ------------------------------------------------------------------------------------------
// Addresses, operations, expected sets
// ------------------------------------------------------------------------------------------

/// A test address: the string given to netban and its canonical target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Addr {
    input: String,
    target: String,
}

/// The `i`-th test address (distinct for distinct `i` < 812): hosts of 198.51.100.0/24,
/// 203.0.113.0/24, 192.0.2.0/24, then 2001:db8::/64. Some are written as fail2ban may pass
/// them (IPv4-mapped IPv6, upper-case IPv6, uncompressed zeros); the target is canonical.
fn addr(i: usize) -> Addr {
    let (input, target) = match i {
        0..=249 => {
            let a = format!("198.51.100.{}", i + 1);
            (a.clone(), format!("{a}/32"))
        }
        250..=499 => {
            let a = format!("203.0.113.{}", i - 249);
            // Every 7th as IPv4-mapped IPv6: netban must store and post it as IPv4.
            let input = if i.is_multiple_of(7) {
                format!("::ffff:{a}")
            } else {
                a.clone()
            };
            (input, format!("{a}/32"))
        }
        500..=749 => {
            let a = format!("192.0.2.{}", i - 499);
            (a.clone(), format!("{a}/32"))
        }
        _ => {
            let n = i - 749;
            let input = match n % 3 {
                0 => format!("2001:DB8::{n:X}"),
                1 => format!("2001:db8:0:0:0:0:0:{n:x}"),
                _ => format!("2001:db8::{n:x}"),
            };
            (input, format!("2001:db8::{n:x}/128"))
        }
    };
    Addr { input, target }
}

/// One `netban ban` or `unban`.
#[derive(Debug, Clone)]
struct Op {
    ban: bool,
    addr: Addr,
    jail: String,
    extra: Vec<String>,
}

impl Op {
    fn ban(addr: Addr, jail: &str) -> Op {
        Op {
            ban: true,
            addr,
            jail: jail.to_string(),
            extra: Vec::new(),
        }
    }

    fn unban(addr: Addr, jail: &str) -> Op {
        Op {
            ban: false,
            addr,
            jail: jail.to_string(),
            extra: Vec::new(),
        }
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            if self.ban { "ban" } else { "unban" }.to_string(),
            "--jail".into(),
            self.jail.clone(),
        ];
        a.extend(self.extra.iter().cloned());
        a.push(self.addr.input.clone());
        a
    }

    fn key(&self) -> (String, String) {
        (self.addr.target.clone(), self.jail.clone())
    }
}

/// One finished op.
struct Done {
    op: Op,
    out: Output,
    took: Duration,
}

/// Runs `ops` as separate `netban` processes on `workers` threads. Ops on the same
/// (target, jail) run on the same thread in their order, so "the last op per (target, jail)"
/// is well defined; ops on different keys (including other jails of the same address) run
/// concurrently. `progress` counts finished ops.
fn run_ops(nb: &Netban, ops: &[Op], workers: usize, progress: &AtomicUsize) -> Vec<Done> {
    let mut queues: Vec<Vec<(usize, Op)>> = vec![Vec::new(); workers];
    let mut owner: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let n = owner.len();
        let w = *owner.entry(op.key()).or_insert(n % workers);
        queues[w].push((i, op.clone()));
    }
    let results: Mutex<Vec<(usize, Done)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for q in queues {
            let results = &results;
            s.spawn(move || {
                for (i, op) in q {
                    let began = Instant::now();
                    let out = nb.run(&op.args().iter().map(String::as_str).collect::<Vec<_>>());
                    let took = began.elapsed();
                    progress.fetch_add(1, Ordering::SeqCst);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, Done { op, out, took }));
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_else(|p| p.into_inner());
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, d)| d).collect()
}

/// Asserts every op exited 0 (quietly); returns the longest wall time.
fn assert_all_ok(done: &[Done], ctx: impl Fn() -> String) -> Duration {
    let failed: Vec<String> = done
        .iter()
        .filter(|d| !d.out.status.success())
        .take(5)
        .map(|d| {
            format!(
                "netban {:?}: {}\nstdout: {}\nstderr: {}",
                d.op.args(),
                d.out.status,
                String::from_utf8_lossy(&d.out.stdout),
                String::from_utf8_lossy(&d.out.stderr)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} netban calls failed; first ones:\n{}\n{}",
        done.iter().filter(|d| !d.out.status.success()).count(),
        done.len(),
        failed.join("\n"),
        ctx()
    );
    done.iter().map(|d| d.took).max().unwrap_or_default()
}

/// The targets that must be banned after `ops` ran in order: the last op per (target, jail)
/// wins; a target is banned while any jail's last op is a ban.
fn expected_after(ops: &[Op]) -> BTreeSet<String> {
    let mut last: BTreeMap<(String, String), bool> = BTreeMap::new();
    for op in ops {
        last.insert(op.key(), op.ban);
    }
    last.into_iter()
        .filter(|(_, ban)| *ban)
        .map(|((t, _), _)| t)
        .collect()
}

/// The targets of `netban list --json` (targets with a live lease).
fn listed(nb: &Netban) -> BTreeSet<String> {
    nb.targets().into_iter().collect()
}

/// A small deterministic PRNG (xorshift64*), seeded per test and printed for reproduction.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("NETBAN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("{test}: NETBAN_TEST_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `p` percent.
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// `ops` random bans (`ban_pct` %) and unbans over `addrs` addresses and `jails` jails.
fn random_ops(rng: &mut Rng, n: usize, addrs: &[Addr], jails: &[String], ban_pct: u64) -> Vec<Op> {
    (0..n)
        .map(|_| {
            let a = addrs[rng.below(addrs.len())].clone();
            let j = &jails[rng.below(jails.len())];
            if rng.percent(ban_pct) {
                Op::ban(a, j)
            } else {
                Op::unban(a, j)
            }
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// ExaFS checks
// ------------------------------------------------------------------------------------------

fn summarize_rules(rules: &[RtbhRule]) -> String {
    let mut lines: Vec<String> = rules
        .iter()
        .take(60)
        .map(|r| {
            format!(
                "#{} {} {} expires {:?} {:?}",
                r.id,
                r.prefix(),
                r.rstate,
                r.expires,
                r.comment
            )
        })
        .collect();
    if rules.len() > 60 {
        lines.push(format!("... {} rules in all", rules.len()));
    }
    if lines.is_empty() {
        "(none)".into()
    } else {
        lines.join("\n")
    }
}

/// Checks that ExaFS holds exactly `expected` (canonical prefixes): one active rule each, no
/// other rule at all (no duplicate, no withdrawn leftover, no orphan with netban's mark).
fn exafs_exactly(exafs: &ExaFs, expected: &BTreeSet<String>) -> Result<(), String> {
    let rules = exafs.try_rtbh_rules().map_err(|e| format!("{e:#}"))?;
    let mut per_prefix: BTreeMap<String, Vec<&RtbhRule>> = BTreeMap::new();
    for r in &rules {
        per_prefix.entry(r.prefix()).or_default().push(r);
    }
    let mut problems = Vec::new();
    let dups: Vec<String> = per_prefix
        .iter()
        .filter(|(_, rs)| rs.len() > 1)
        .map(|(p, rs)| {
            let each: Vec<String> = rs
                .iter()
                .map(|r| {
                    format!(
                        "#{} created {:?} {} {:?}",
                        r.id, r.created, r.rstate, r.comment
                    )
                })
                .collect();
            format!("{p} x{}: {}", rs.len(), each.join(", "))
        })
        .collect();
    if !dups.is_empty() {
        problems.push(format!("duplicate rules: {dups:?}"));
    }
    let inactive: Vec<String> = rules
        .iter()
        .filter(|r| !r.is_active())
        .map(|r| format!("{} ({})", r.prefix(), r.rstate))
        .collect();
    if !inactive.is_empty() {
        problems.push(format!("rules not active: {inactive:?}"));
    }
    let active: BTreeSet<String> = rules
        .iter()
        .filter(|r| r.is_active())
        .map(RtbhRule::prefix)
        .collect();
    let missing: Vec<&String> = expected.difference(&active).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} expected targets have no active rule: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        ));
    }
    let orphans: Vec<String> = rules
        .iter()
        .filter(|r| !expected.contains(&r.prefix()))
        .map(|r| format!("{} {:?}", r.prefix(), r.comment))
        .collect();
    if !orphans.is_empty() {
        problems.push(format!(
            "{} rules for targets that are not banned (orphans): {:?}",
            orphans.len(),
            &orphans[..orphans.len().min(20)]
        ));
    }
    let unmarked: Vec<String> = rules
        .iter()
        .filter(|r| !r.comment.as_deref().is_some_and(|c| c.starts_with(MARK)))
        .map(|r| format!("{} {:?}", r.prefix(), r.comment))
        .collect();
    if !unmarked.is_empty() {
        problems.push(format!("rules without netban's mark: {unmarked:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} rules, {} expected:\n{}",
            rules.len(),
            expected.len(),
            problems.join("\n")
        ))
    }
}

/// Polls until ExaFS holds exactly `expected`, within `timeout`.
fn wait_exafs_exactly(env: &Env, expected: &BTreeSet<String>, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    let began = Instant::now();
    loop {
        let r = exafs_exactly(&env.exafs, expected);
        match r {
            Ok(()) => {
                eprintln!("{what}: ExaFS converged after {:?}", began.elapsed());
                return;
            }
            Err(e) if Instant::now() > deadline => {
                panic!(
                    "{what}: ExaFS not exactly as expected within {timeout:?}: {e}\n{}",
                    env.ctx()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Active rules for exactly `prefix` (`addr/mask`).
fn active_rules(exafs: &ExaFs, prefix: &str) -> Vec<RtbhRule> {
    exafs
        .rtbh_rules()
        .into_iter()
        .filter(|r| r.prefix() == prefix && r.is_active())
        .collect()
}

/// Polls `f` every `every` until it returns `Some`, or panics after `timeout` with `ctx()`.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    ctx: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}\n{}", ctx());
        }
        std::thread::sleep(every);
    }
}

/// The value of one series (`name` or `name{labels}`) in a Prometheus text exposition.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The lines of netban's log (and the daemon's stderr) that name a target mentioned in
/// `error`, in order, plus the daemon start/stop lines: the history of what went wrong.
fn log_about(nb: &Netban, error: &str) -> String {
    let targets: BTreeSet<&str> = error
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '[' | ']' | ',' | '(' | ')'))
        .filter(|w| w.contains('/') && (w.contains('.') || w.contains("db8")))
        .collect();
    let text = std::fs::read_to_string(nb.path("netban.log")).unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.contains("daemon started")
                || l.contains("daemon stopping")
                || targets.iter().any(|t| {
                    l.contains(&format!("{t} "))
                        || l.contains(&format!("{t};"))
                        || l.contains(&format!("{t}:"))
                })
        })
        .take(400)
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn out_text(out: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `netban sync --timeout 120`, asserting exit 0.
fn sync(env: &Env) {
    let out = env.nb.run(&["sync", "--timeout", "120"]);
    assert!(
        out.status.success(),
        "netban sync must converge: {}\n{}",
        out_text(&out),
        env.ctx()
    );
}

// ------------------------------------------------------------------------------------------
// 1. Outage
// ------------------------------------------------------------------------------------------

/// ExaFS unreachable: 500 bans and 200 unbans are each accepted at once (exit 0, no wait on
/// the network: the daemon delivers), and once ExaFS is back the daemon makes ExaFS hold
/// exactly the 300 targets still banned, each once.
#[test]
fn outage_loses_nothing_and_costs_fail2ban_nothing() {
    let env = Env::new();
    let _daemon = env.start_daemon();
    env.proxy.set_mode(Mode::Down);

    // 150 of each IPv4 range, 50 IPv6.
    let addrs: Vec<Addr> = (0..150)
        .chain(250..400)
        .chain(500..650)
        .chain(750..800)
        .map(addr)
        .collect();
    assert_eq!(addrs.len(), 500);
    let jails = ["sshd", "postfix", "nginx", "dovecot"];
    let bans: Vec<Op> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| Op::ban(a.clone(), jails[i % jails.len()]))
        .collect();
    // Unban every 5th address twice over (200 of 500), with the jail it was banned in.
    let unbans: Vec<Op> = bans
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 0 || i % 5 == 3)
        .map(|(_, b)| Op::unban(b.addr.clone(), &b.jail))
        .collect();
    assert_eq!(unbans.len(), 200);

    let progress = AtomicUsize::new(0);
    let began = Instant::now();
    let done_bans = run_ops(&env.nb, &bans, 4, &progress);
    let max_ban = assert_all_ok(&done_bans, || env.ctx());
    let done_unbans = run_ops(&env.nb, &unbans, 4, &progress);
    let max_unban = assert_all_ok(&done_unbans, || env.ctx());
    eprintln!(
        "outage: 700 calls in {:?}; slowest ban {max_ban:?}, slowest unban {max_unban:?}",
        began.elapsed()
    );
    let quiet: Vec<String> = done_bans
        .iter()
        .chain(&done_unbans)
        .filter(|d| !d.out.stdout.is_empty() || !d.out.stderr.is_empty())
        .take(3)
        .map(|d| format!("netban {:?}: {}", d.op.args(), out_text(&d.out)))
        .collect();
    assert!(
        quiet.is_empty(),
        "a successful ban/unban prints nothing (fail2ban reads it after exit): {quiet:?}"
    );
    // With the daemon up, a ban is a SQLite write and a poke: no network I/O. A sanity bound
    // far below the inline deadline (3 s), not a benchmark.
    let slowest = max_ban.max(max_unban);
    assert!(
        slowest < Duration::from_secs(1),
        "a ban/unban with the daemon up took {slowest:?} while ExaFS was down\n{}",
        env.ctx()
    );

    let expected: BTreeSet<String> = {
        let gone: BTreeSet<&String> = unbans.iter().map(|u| &u.addr.target).collect();
        addrs
            .iter()
            .map(|a| &a.target)
            .filter(|t| !gone.contains(t))
            .cloned()
            .collect()
    };
    assert_eq!(expected.len(), 300);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list must show the 300 remaining bans"
    );
    assert!(
        env.exafs.rtbh_rules().is_empty(),
        "nothing can reach ExaFS while the proxy is down"
    );
    // The daemon did try (and failed) while ExaFS was down.
    wait_for(
        "the daemon records failed adds while ExaFS is down",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            metric(
                &env.metrics(),
                r#"netban_sink_changes_total{sink="exafs",op="add",result="failed"}"#,
            )
            .filter(|v| *v > 0.0)
        },
    );

    env.proxy.set_mode(Mode::Pass);
    wait_exafs_exactly(&env, &expected, Duration::from_secs(90), "after the outage");
    assert_eq!(listed(&env.nb), expected);
}

// ------------------------------------------------------------------------------------------
// 2. Crash
// ------------------------------------------------------------------------------------------

/// 300 bans and unbans over 60 addresses and 3 jails while the daemon is `kill -9`ed and
/// restarted 4 times at random moments: every call exits 0, and after a final restart and
/// `netban sync` ExaFS holds exactly the targets the operations leave banned, once each, with
/// no orphan; after unbanning all of them (and `netban sync`) no rule of netban's is left.
#[test]
fn kill_9_of_the_daemon_loses_and_duplicates_nothing() {
    let env = Env::new();
    let mut rng = Rng::new("crash");
    let addrs: Vec<Addr> = (0..20)
        .chain(250..260)
        .chain(500..520)
        .chain(750..760)
        .map(addr)
        .collect();
    let jails: Vec<String> = ["sshd", "postfix", "nginx"].map(String::from).to_vec();
    let ops = random_ops(&mut rng, 300, &addrs, &jails, 65);
    let kills = 4;
    let mut kill_at: Vec<usize> = (0..kills).map(|k| 20 + k * 65 + rng.below(40)).collect();
    kill_at.sort_unstable();
    let pauses: Vec<(u64, u64)> = (0..kills)
        .map(|_| (rng.below(150) as u64, rng.below(400) as u64))
        .collect();

    let daemon = Mutex::new(env.start_daemon());
    let progress = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let killed = AtomicUsize::new(0);
    let done = std::thread::scope(|s| {
        s.spawn(|| {
            for (at, (before, down)) in kill_at.iter().zip(&pauses) {
                // Bounded: stops when the burst is over.
                while progress.load(Ordering::SeqCst) < *at && !finished.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if finished.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(*before));
                let mut d = daemon.lock().unwrap_or_else(|p| p.into_inner());
                d.kill9();
                killed.fetch_add(1, Ordering::SeqCst);
                eprintln!(
                    "crash: SIGKILL after {} ops",
                    progress.load(Ordering::SeqCst)
                );
                // While it is down, bans are delivered inline by the CLI.
                std::thread::sleep(Duration::from_millis(*down));
                *d = env.start_daemon();
            }
        });
        let done = run_ops(&env.nb, &ops, 2, &progress);
        finished.store(true, Ordering::SeqCst);
        done
    });
    assert_all_ok(&done, || env.ctx());
    assert!(
        killed.load(Ordering::SeqCst) >= 3,
        "the daemon was killed only {} times during the burst",
        killed.load(Ordering::SeqCst)
    );

    let expected = expected_after(&ops);
    eprintln!(
        "crash: {} ops, {} kills, {} targets expected",
        ops.len(),
        killed.load(Ordering::SeqCst),
        expected.len()
    );
    // A final restart, then `netban sync` (it waits for the daemon's pass in flight).
    {
        let mut d = daemon.lock().unwrap_or_else(|p| p.into_inner());
        d.kill9();
        *d = env.start_daemon();
    }
    sync(&env);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list must show the bans the operations leave\n{}",
        env.ctx()
    );
    let converged = exafs_exactly(&env.exafs, &expected);
    let history = converged
        .as_ref()
        .err()
        .map(|e| log_about(&env.nb, e))
        .unwrap_or_default();

    // Then every remaining ban is lifted: nothing of netban's may stay in ExaFS (a leftover
    // rule would keep blackholing an address nobody bans any more).
    let mut last: BTreeMap<(String, String), &Op> = BTreeMap::new();
    for op in &ops {
        last.insert(op.key(), op);
    }
    let lift: Vec<Op> = last
        .values()
        .filter(|op| op.ban)
        .map(|op| Op::unban(op.addr.clone(), &op.jail))
        .collect();
    assert_all_ok(&run_ops(&env.nb, &lift, 2, &progress), || env.ctx());
    sync(&env);
    let lifted = exafs_exactly(&env.exafs, &BTreeSet::new());

    if converged.is_err() || lifted.is_err() {
        panic!(
            "after kill -9 x{} and netban sync (exit 0): {}\n\
             after unbanning everything and netban sync (exit 0): {}\n{}\n\
             --- netban log about the targets in error (first phase) ---\n{history}",
            killed.load(Ordering::SeqCst),
            converged.err().unwrap_or_else(|| "ok".into()),
            lifted.err().unwrap_or_else(|| "ok".into()),
            env.ctx(),
        );
    }
    drop(daemon);
}

// ------------------------------------------------------------------------------------------
// 3. Concurrency
// ------------------------------------------------------------------------------------------

/// 400 bans/unbans over 40 addresses and 8 jails, 16 processes at a time; returns the ops.
fn concurrent_burst(env: &Env, rng: &mut Rng) -> Vec<Op> {
    let addrs: Vec<Addr> = (0..15)
        .chain(300..310)
        .chain(600..610)
        .chain(760..765)
        .map(addr)
        .collect();
    assert_eq!(addrs.len(), 40);
    let jails: Vec<String> = (0..8).map(|j| format!("jail{j}")).collect();
    let ops = random_ops(rng, 400, &addrs, &jails, 60);
    let progress = AtomicUsize::new(0);
    let began = Instant::now();
    let done = run_ops(&env.nb, &ops, 16, &progress);
    let slowest = assert_all_ok(&done, || env.ctx());
    eprintln!(
        "concurrency: 400 calls in {:?}, slowest {slowest:?}",
        began.elapsed()
    );
    ops
}

/// With the daemon up: ExaFS, `netban list` and the operations agree.
#[test]
fn concurrent_bans_and_unbans_with_the_daemon() {
    let env = Env::new();
    let mut rng = Rng::new("concurrency-daemon");
    let _daemon = env.start_daemon();
    let ops = concurrent_burst(&env, &mut rng);
    let expected = expected_after(&ops);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list --json vs the operations"
    );
    wait_exafs_exactly(
        &env,
        &expected,
        Duration::from_secs(90),
        "concurrency (daemon)",
    );
    assert_eq!(listed(&env.nb), expected);
}

/// Without a daemon (each CLI delivers inline under the lock), then `netban sync`: ExaFS,
/// `netban list` and the operations agree.
#[test]
fn concurrent_bans_and_unbans_inline_then_sync() {
    let env = Env::new();
    let mut rng = Rng::new("concurrency-inline");
    let ops = concurrent_burst(&env, &mut rng);
    let expected = expected_after(&ops);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list --json vs the operations"
    );
    sync(&env);
    if let Err(e) = exafs_exactly(&env.exafs, &expected) {
        panic!(
            "concurrency (inline) after netban sync (exit 0): {e}\n{}",
            env.ctx()
        );
    }
    assert_eq!(listed(&env.nb), expected);
}

// ------------------------------------------------------------------------------------------
// 4. Drift
// ------------------------------------------------------------------------------------------

/// Number of full listings (`GET /api/v3/rules`, one per repair) the proxy has seen.
fn listings(proxy: &FaultProxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path == "/api/v3/rules" && s.status == 200)
        .count()
}

/// A rule deleted behind netban's back comes back within a repair cycle; a human's rule and
/// another host's netban rule are never touched; a rule with this host's mark that no lease
/// wants is removed.
#[test]
fn drift_is_repaired_and_foreign_rules_are_left_alone() {
    let env = Env::new();
    let _daemon = env.start_daemon();
    let targets = ["198.51.100.11/32", "203.0.113.12/32", "2001:db8::13/128"];
    for t in ["198.51.100.11", "203.0.113.12", "2001:db8::13"] {
        env.nb.expect(0, &["ban", "--jail", "sshd", t]);
    }
    let expected: BTreeSet<String> = targets.iter().map(|t| t.to_string()).collect();
    wait_exafs_exactly(&env, &expected, Duration::from_secs(30), "3 bans");

    // A human deletes one of netban's rules.
    let victim = active_rules(&env.exafs, "203.0.113.12/32")
        .pop()
        .expect("the rule for 203.0.113.12");
    let deleted_at = Instant::now();
    env.exafs.delete_rule(victim.id);
    assert!(env.exafs.rule(victim.id).is_none(), "ExaFS deleted it");
    let back = wait_for(
        "netban re-creates the rule deleted behind its back (resync_interval = 2 s)",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || env.ctx(),
        || active_rules(&env.exafs, "203.0.113.12/32").pop(),
    );
    eprintln!(
        "drift: rule re-created as #{} after {:?}",
        back.id,
        deleted_at.elapsed()
    );
    assert_eq!(
        back.comment,
        Some(format!("{} sshd", env.nb.mark())),
        "re-created by netban with its mark and comment"
    );

    // Rules netban must not delete: a human's, another host's netban rule, and two with this
    // host's mark that this state has no record of (one from netban 0.1, one with this very
    // state's mark, as after a restore from an old backup): kept until they expire, loudly.
    let far = now_unix() + 30 * 86_400;
    let human = env
        .exafs
        .create_foreign_rule("198.51.100.200/32", far, "made by a human");
    let other_host =
        env.exafs
            .create_foreign_rule("198.51.100.201/32", far, "netban other-host sshd");
    let stray = env
        .exafs
        .create_foreign_rule("198.51.100.202/32", far, "netban test-host sshd");
    let restored =
        env.exafs
            .create_foreign_rule("198.51.100.203/32", far, &format!("{} sshd", env.nb.mark()));
    let before = (
        env.exafs.rule(human).expect("human rule"),
        env.exafs.rule(other_host).expect("other host's rule"),
        env.exafs.rule(stray).expect("0.1 rule"),
        env.exafs.rule(restored).expect("restored state's rule"),
    );

    // Let at least 3 full repairs happen after they exist.
    let base = listings(&env.proxy);
    wait_for(
        "3 repair passes (GET /api/v3/rules)",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || env.ctx(),
        || (listings(&env.proxy) >= base + 3).then_some(()),
    );
    let after = (
        env.exafs.rule(human),
        env.exafs.rule(other_host),
        env.exafs.rule(stray),
        env.exafs.rule(restored),
    );
    assert_eq!(
        after.0.as_ref(),
        Some(&before.0),
        "a rule made by a human must be left exactly as it was\n{}",
        env.ctx()
    );
    assert_eq!(
        after.1.as_ref(),
        Some(&before.1),
        "another host's netban rule must be left exactly as it was\n{}",
        env.ctx()
    );
    assert_eq!(
        (after.2.as_ref(), after.3.as_ref()),
        (Some(&before.2), Some(&before.3)),
        "rules with this host's mark that the state does not know are kept (issue 6)\n{}",
        env.ctx()
    );
    // ... and said so loudly.
    let status = env.nb.expect(0, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    for t in ["198.51.100.202/32", "198.51.100.203/32"] {
        assert!(
            text.contains(&format!("WARNING: exafs {t} stays on the sink")),
            "{t}: {text}"
        );
    }
    assert!(
        !text.contains("198.51.100.200") && !text.contains("198.51.100.201"),
        "{text}"
    );
    // netban's own rules: still exactly one each, active.
    for t in targets {
        assert_eq!(
            active_rules(&env.exafs, t).len(),
            1,
            "{t}: one active rule\n{}",
            env.ctx()
        );
    }
    let total = env.exafs.rtbh_rules().len();
    assert_eq!(total, 7, "3 of netban's + 4 it leaves\n{}", env.ctx());
}

// ------------------------------------------------------------------------------------------
// 5. Expiry without unban
// ------------------------------------------------------------------------------------------

/// A ban of 2 s with no unban: the daemon puts it in ExaFS and deletes it after it ended,
/// even though ExaFS' own expiry (rounded to 10 minutes) is far later.
#[test]
fn a_ban_ends_on_its_own_without_unban() {
    let env = Env::new();
    let _daemon = env.start_daemon();
    let banned_at = Instant::now();
    env.nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "2", "198.51.100.77"],
    );
    // The add: a confirmed POST (the rule may already be gone again when we look at ExaFS).
    wait_for(
        "the daemon posts the 2 s ban to ExaFS",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || env.ctx(),
        || {
            (env.proxy
                .seen()
                .iter()
                .any(|s| s.method == "POST" && s.path == "/api/v3/rules/rtbh" && s.status == 201))
            .then_some(())
        },
    );
    let added = tail(&env.nb.path("netban.log"), 200);
    assert!(
        added.contains("exafs: 198.51.100.77/32 added"),
        "netban logs the add\n{}",
        env.ctx()
    );
    let ended = banned_at + Duration::from_secs(2);
    wait_for(
        "netban deletes the rule after the ban ended",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            env.exafs
                .rules_for("198.51.100.77", 32)
                .is_empty()
                .then_some(())
        },
    );
    eprintln!(
        "expiry: rule gone {:?} after the ban ended",
        Instant::now().saturating_duration_since(ended)
    );
    assert!(
        env.proxy.count("DELETE", "/api/v3/rules/rtbh/") >= 1,
        "netban deleted it (not ExaFS)\n{}",
        env.ctx()
    );
    assert!(env.nb.targets().is_empty(), "no live lease is left");
}

// ------------------------------------------------------------------------------------------
// 6. Status and metrics
// ------------------------------------------------------------------------------------------

#[test]
fn status_metrics_and_healthz_tell_the_truth() {
    let env = Env::new();
    let _daemon = env.start_daemon();
    let h = env.get("/healthz").expect("/healthz answers");
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));

    for ip in ["198.51.100.21", "198.51.100.22", "2001:db8::23"] {
        env.nb.expect(0, &["ban", "--jail", "sshd", ip]);
    }
    env.nb
        .expect(0, &["ban", "--jail", "postfix", "198.51.100.21"]);
    let status = wait_for(
        "netban status --json shows the 3 targets in place on exafs",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let out = env.nb.expect(0, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
            (v["sinks"][0]["in_place"] == 3).then_some(v)
        },
    );
    assert_eq!(status["daemon"]["running"], true, "{status:#}");
    assert_eq!(status["leases"], 4, "{status:#}");
    assert_eq!(status["sinks"][0]["sink"], "exafs", "{status:#}");
    assert_eq!(status["sinks"][0]["pending"], 0, "{status:#}");
    assert_eq!(status["sinks"][0]["failing"], 0, "{status:#}");

    let ok_adds = r#"netban_sink_changes_total{sink="exafs",op="add",result="ok"}"#;
    let m = wait_for(
        "/metrics shows the leases and the adds",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let m = env.metrics();
            (metric(&m, "netban_leases") == Some(4.0) && metric(&m, ok_adds) >= Some(3.0))
                .then_some(m)
        },
    );
    assert_eq!(
        metric(&m, r#"netban_sink_held{sink="exafs"}"#),
        Some(3.0),
        "{m}"
    );
    assert!(
        metric(&m, "netban_reconcile_passes_total") >= Some(1.0),
        "{m}"
    );
    let refusals = metric(&m, "netban_guard_refusals_total")
        .unwrap_or_else(|| panic!("netban_guard_refusals_total in /metrics:\n{m}"));

    // The guard refuses loopback: exit 0 (not an error for fail2ban), counted.
    let out = env.nb.expect(0, &["ban", "--jail", "sshd", "127.0.0.1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1"),
        "the refusal is logged: {}",
        out_text(&out)
    );
    wait_for(
        "netban_guard_refusals_total increments after `netban ban 127.0.0.1`",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || format!("{}\n{}", env.metrics(), env.ctx()),
        || {
            (metric(&env.metrics(), "netban_guard_refusals_total") >= Some(refusals + 1.0))
                .then_some(())
        },
    );
    let h = env.get("/healthz").expect("/healthz answers");
    assert_eq!(h.status, 200);
    assert!(
        env.exafs.rules_for("127.0.0.1", 32).is_empty(),
        "a refused target never reaches ExaFS"
    );
}

// ------------------------------------------------------------------------------------------
// 7. Graceful stop and SIGHUP
// ------------------------------------------------------------------------------------------

#[test]
fn sighup_reloads_or_keeps_and_sigterm_stops_cleanly() {
    let env = Env::new();
    let mut daemon = env.start_daemon();
    let ips = ["198.51.100.31", "203.0.113.32", "2001:db8::33"];
    for ip in ips {
        env.nb.expect(0, &["ban", "--jail", "sshd", ip]);
    }
    let expected: BTreeSet<String> = ["198.51.100.31/32", "203.0.113.32/32", "2001:db8::33/128"]
        .map(String::from)
        .into();
    wait_exafs_exactly(&env, &expected, Duration::from_secs(30), "3 bans");

    // A broken config: logged, the running one kept, the daemon keeps working.
    let good = std::fs::read_to_string(&env.nb.config).expect("read config");
    std::fs::write(&env.nb.config, format!("{good}\nthis is not toml = = =\n"))
        .expect("write broken config");
    daemon.signal(libc::SIGHUP);
    wait_for(
        "the daemon logs that it keeps the running config",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || env.ctx(),
        || {
            tail(&env.nb.path("netban.log"), 50)
                .contains("keeping the running config")
                .then_some(())
        },
    );
    assert!(
        daemon.try_wait().is_none(),
        "the daemon survives a bad reload\n{}",
        env.ctx()
    );
    let h = env
        .get("/healthz")
        .expect("/healthz answers after a bad reload");
    assert_eq!(h.status, 200);
    // Still delivering with the old config (the broken file is still in place).
    std::fs::write(&env.nb.config, &good).expect("restore config");
    env.nb
        .expect(0, &["ban", "--jail", "sshd", "198.51.100.34"]);
    let mut expected4 = expected.clone();
    expected4.insert("198.51.100.34/32".into());
    wait_exafs_exactly(
        &env,
        &expected4,
        Duration::from_secs(30),
        "a ban after the bad reload",
    );

    // A valid config with an exec sink added: the new sink receives the existing bans.
    let sink_log = env.nb.path("exec-sink.log");
    std::fs::write(
        &env.nb.config,
        env.config_text(&common::exec_sink(&sink_log)),
    )
    .expect("write config with an exec sink");
    daemon.signal(libc::SIGHUP);
    let want: BTreeSet<String> = [
        "198.51.100.31",
        "203.0.113.32",
        "2001:db8::33",
        "198.51.100.34",
    ]
    .map(|ip| format!("ban sshd 3600 {ip}"))
    .into();
    wait_for(
        "after SIGHUP the new exec sink receives every existing ban",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            format!(
                "--- exec sink log ---\n{}\n{}",
                common::read(&sink_log),
                env.ctx()
            )
        },
        || {
            let got: BTreeSet<String> = common::read(&sink_log).lines().map(String::from).collect();
            want.is_subset(&got).then_some(())
        },
    );
    let lines: Vec<String> = common::read(&sink_log).lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "each ban once on the new sink: {lines:?}");
    assert!(
        tail(&env.nb.path("netban.log"), 50).contains("2 sinks"),
        "the reload is logged with the new sink count\n{}",
        env.ctx()
    );
    // ExaFS is untouched by the reload.
    assert!(
        exafs_exactly(&env.exafs, &expected4).is_ok(),
        "{}",
        env.ctx()
    );

    // SIGTERM: exit 0 within a few seconds, socket removed.
    let socket = env.nb.state_dir().join("netban.sock");
    assert!(socket.exists());
    let stop = Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| {
            panic!(
                "the daemon did not exit within 15 s of SIGTERM\n{}",
                env.ctx()
            )
        });
    eprintln!("sigterm: exited {status} after {:?}", stop.elapsed());
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0\n{}", env.ctx());
    assert!(!socket.exists(), "the control socket is removed at stop");
    assert!(
        tail(&env.nb.path("netban.log"), 20).contains("daemon stopped"),
        "{}",
        env.ctx()
    );
    // Bans still work: inline now.
    env.nb
        .expect(0, &["unban", "--jail", "sshd", "198.51.100.34"]);
    assert!(
        exafs_exactly(&env.exafs, &expected).is_ok(),
        "{}",
        env.ctx()
    );
}

// ------------------------------------------------------------------------------------------
// 8. Restored bans with the daemon up
// ------------------------------------------------------------------------------------------

/// fail2ban restarts and restores 200 bans already in ExaFS: no POST at all.
#[test]
fn restored_bans_already_in_place_cost_no_exafs_call() {
    let env = Env::new();
    let _daemon = env.start_daemon();
    let time = format!("{}.25", now_unix() - 60);
    let addrs: Vec<Addr> = (0..100).chain(500..560).chain(760..800).map(addr).collect();
    assert_eq!(addrs.len(), 200);
    let with = |restored: &str| -> Vec<Op> {
        addrs
            .iter()
            .map(|a| Op {
                extra: vec![
                    "--bantime".into(),
                    "86400".into(),
                    "--time".into(),
                    time.clone(),
                    "--restored".into(),
                    restored.into(),
                ],
                ..Op::ban(a.clone(), "sshd")
            })
            .collect()
    };
    let progress = AtomicUsize::new(0);
    assert_all_ok(&run_ops(&env.nb, &with("0"), 4, &progress), || env.ctx());
    let expected: BTreeSet<String> = addrs.iter().map(|a| a.target.clone()).collect();
    wait_exafs_exactly(&env, &expected, Duration::from_secs(90), "200 bans");
    // Let the daemon finish recording (status: all in place), then count from zero.
    wait_for(
        "all 200 in place",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let out = env.nb.expect(0, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
            (v["sinks"][0]["in_place"] == 200 && v["sinks"][0]["pending"] == 0).then_some(())
        },
    );
    env.proxy.reset_counts();
    let passes_before = metric(&env.metrics(), "netban_reconcile_passes_total").unwrap_or(0.0);

    let restored = with("1");
    assert_all_ok(&run_ops(&env.nb, &restored, 4, &progress), || env.ctx());
    // Wait until the daemon ran passes after the last poke, including a repair (a listing).
    let listed_before = listings(&env.proxy);
    wait_for(
        "the daemon runs passes (with a repair) after the restored bans",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let passes = metric(&env.metrics(), "netban_reconcile_passes_total").unwrap_or(0.0);
            (passes >= passes_before + 2.0 && listings(&env.proxy) > listed_before).then_some(())
        },
    );
    let posts = env.proxy.count("POST", "/api");
    let deletes = env.proxy.count("DELETE", "/api");
    assert_eq!(
        (posts, deletes),
        (0, 0),
        "restored bans already in place must cost no POST/DELETE\n{}",
        env.ctx()
    );
    assert!(
        exafs_exactly(&env.exafs, &expected).is_ok(),
        "{}",
        env.ctx()
    );
    assert_eq!(listed(&env.nb), expected);
}
