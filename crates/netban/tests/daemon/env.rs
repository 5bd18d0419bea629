//! The set-up every daemon test shares: a real ExaFS, a fault proxy in front of it, and a
//! netban whose only sink is that ExaFS (through the proxy), configured for the daemon; plus
//! what a failing assertion prints about them ([`Env::ctx`]).

use std::collections::{BTreeMap, BTreeSet};

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::exafs::ExaFs;
use netban_testsupport::proxy::FaultProxy;
use netban_testsupport::runner::{Netban, out_text, tail};

use crate::rules::summarize_rules;

/// The host id of every test netban; ExaFS comments are `netban test-host JAIL`.
const HOST: &str = "test-host";

/// The start of the ownership mark of this host's netban rules (`netban:<host>:<instance>`).
pub const MARK: &str = "netban:test-host:";

/// A real ExaFS, a proxy in front of it, and a netban whose only sink is that ExaFS (through
/// the proxy), configured for the daemon.
pub struct Env {
    // Fields drop in order: the daemon (held by tests) goes first, ExaFS last.
    pub nb: Netban,
    pub proxy: FaultProxy,
    pub exafs: ExaFs,
}

impl Env {
    pub fn new() -> Env {
        let exafs = ExaFs::start().unwrap_or_else(|e| panic!("starting ExaFS: {e:#}"));
        let proxy = FaultProxy::start(exafs.authority())
            .unwrap_or_else(|e| panic!("starting the proxy: {e:#}"));
        let nb = Netban::new(env!("CARGO_BIN_EXE_netban"), &config(&proxy, &exafs));
        Env { nb, proxy, exafs }
    }

    /// The config every test starts with; a test adds to it and rewrites it (SIGHUP).
    pub fn config(&self) -> Config {
        config(&self.proxy, &self.exafs)
    }

    pub fn start_daemon(&self) -> Daemon {
        Daemon::start(&self.nb)
    }

    /// Everything a failing assertion needs: netban's log, the daemon's output, ExaFS' rules,
    /// the proxy's request counts.
    pub fn ctx(&self) -> String {
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
            "--- netban log (last lines) ---\n{}\n--- daemon output (last lines) ---\n{}\n\
             --- ExaFS rules ---\n{rules}\n--- proxy requests (method, path, status: count) ---\n{by_req:?}",
            tail(&self.nb.path("netban.log"), 40),
            tail(&self.nb.path("daemon.out"), 20),
        )
    }

    /// The last `lines` lines of netban's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.nb.path("netban.log"), lines)
    }
}

/// Logs to `netban.log`; the test addresses are documentation ranges, which a test machine
/// may use itself (e.g. 192.0.2.2 on a sandbox's eth0): loopback and the other never-ban
/// ranges stay refused. A repair every 2 s, retries after 0.5 s up to 2 s.
fn config(proxy: &FaultProxy, exafs: &ExaFs) -> Config {
    Config::new()
        .host_id(HOST)
        .log_file("netban.log", Some("info"))
        .guard("protect_own_addresses = false")
        .daemon("resync_interval = 2")
        .reconcile("retry_initial = 0.5\nretry_max = 2")
        .sink(Sink::exafs(&proxy.url(), exafs.api_key()))
}

/// The value of one series (`name` or `name{labels}`) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The lines of netban's log that name a target mentioned in `error`, in order, plus the
/// daemon start/stop lines: the history of what went wrong.
pub fn log_about(nb: &Netban, error: &str) -> String {
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

/// `netban sync --timeout 120`, asserting exit 0.
pub fn sync(env: &Env) {
    let out = env.nb.run(&["sync", "--timeout", "120"]);
    assert!(
        out.status.success(),
        "netban sync must converge: {}\n{}",
        out_text(&out),
        env.ctx()
    );
}

/// The targets of `netban list --json` (targets with a live lease).
pub fn listed(nb: &Netban) -> BTreeSet<String> {
    nb.targets().into_iter().collect()
}

/// Number of full listings (`GET /api/v3/rules`, one per repair) the proxy has seen.
pub fn listings(proxy: &FaultProxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path == "/api/v3/rules" && s.status == 200)
        .count()
}
