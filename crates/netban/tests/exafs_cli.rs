//! The `netban` binary against a real ExaFS 1.4.1 (no daemon: the CLI delivers inline, within
//! `reconcile.inline_deadline`). Every test looks at what an operator would see in ExaFS: the
//! rules it stores (read from its database), and, through a fault-injecting proxy where it
//! matters, the requests netban sent.

use std::time::{Duration, Instant};

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::exafs::{ExaFs, RtbhRule, now_unix};
use netban_testsupport::jwt;
use netban_testsupport::proxy::{FaultProxy, Mode};
use netban_testsupport::runner::{Netban, stderr, stdout};

const NETBAN: &str = env!("CARGO_BIN_EXE_netban");
const HOST_ID: &str = "nb-test-01";
const AUTH: &str = "/api/v3/auth";
const RTBH: &str = "/api/v3/rules/rtbh";
/// `[reconcile] inline_deadline` in every test config, seconds.
const DEADLINE: u64 = 2;
/// The default `permanent_expiry` of the ExaFS sink (7 days).
const PERMANENT_EXPIRY: i64 = 7 * 86_400;

fn start_exafs() -> ExaFs {
    ExaFs::start().unwrap_or_else(|e| panic!("{e:#}"))
}

fn start_proxy(exafs: &ExaFs) -> FaultProxy {
    FaultProxy::start(exafs.authority()).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The parts of a test config that vary.
#[derive(Default)]
struct Cfg<'a> {
    /// `[guard]` lines (default: `protect_own_addresses = false`, so a documentation address
    /// that happens to be this machine's, like 192.0.2.2 on some CI hosts, is still banned).
    guard: &'a str,
    /// `[log]` lines (default: syslog off).
    log: &'a str,
    /// The key from this file (`api_key_file`) instead of `api_key`.
    key_file: Option<std::path::PathBuf>,
    /// `host_id` (default [`HOST_ID`]).
    host: Option<&'a str>,
    /// `community` (default 1).
    community: Option<u32>,
}

/// The config: one ExaFS sink named `exafs`, community 1.
fn config(url: &str, key: &str, cfg: &Cfg) -> Config {
    let guard = if cfg.guard.is_empty() {
        "protect_own_addresses = false"
    } else {
        cfg.guard
    };
    let log = if cfg.log.is_empty() {
        "syslog = false"
    } else {
        cfg.log
    };
    let mut sink = Sink::exafs(url, key).set("community", cfg.community.unwrap_or(1).to_string());
    if let Some(f) = &cfg.key_file {
        sink = sink.api_key_file(f);
    }
    Config::new()
        .host_id(cfg.host.unwrap_or(HOST_ID))
        .reconcile(format!("inline_deadline = {DEADLINE}"))
        .guard(guard)
        .section("log", log)
        .sink(sink)
}

fn netban_with(url: &str, key: &str, cfg: &Cfg) -> Netban {
    Netban::new(NETBAN, &config(url, key, cfg))
}

fn netban(url: &str, key: &str) -> Netban {
    netban_with(url, key, &Cfg::default())
}

/// Rewrites the config of `nb` in place (same state directory).
fn rewrite_config(nb: &Netban, url: &str, key: &str, cfg: &Cfg) {
    nb.write_config(&config(url, key, cfg));
}

/// The next 10-minute mark at or after `t`.
fn ceil600(t: i64) -> i64 {
    (t + 599).div_euclid(600) * 600
}

/// The rule's expiry is what netban sends for an end between `lo` and `hi` (the clock moved
/// while netban ran): rounded up to a 10-minute mark.
fn assert_expiry(rule: &RtbhRule, lo: i64, hi: i64) {
    let e = rule
        .expires
        .unwrap_or_else(|| panic!("rule without expiry: {rule:?}"));
    assert_eq!(
        e % 600,
        0,
        "expiry {e} is not on a 10-minute mark: {rule:?}"
    );
    assert!(
        (ceil600(lo)..=ceil600(hi)).contains(&e),
        "expiry {e} not in {}..={} (end between {lo} and {hi}): {rule:?}",
        ceil600(lo),
        ceil600(hi)
    );
}

/// The only rule ExaFS stores; panics with all of them otherwise.
fn only_rule(exafs: &ExaFs) -> RtbhRule {
    let rules = exafs.rtbh_rules();
    assert_eq!(rules.len(), 1, "expected exactly one rule: {rules:#?}");
    rules.into_iter().next().unwrap()
}

fn prefixes(exafs: &ExaFs) -> Vec<String> {
    let mut p: Vec<String> = exafs.rtbh_rules().iter().map(RtbhRule::prefix).collect();
    p.sort();
    p
}

/// `netban list --json`'s entry for `target` on the sink `exafs`.
fn sink_entry(nb: &Netban, target: &str) -> serde_json::Value {
    let list = nb.list();
    list.as_array()
        .and_then(|a| a.iter().find(|e| e["target"] == target))
        .map(|e| e["sinks"]["exafs"].clone())
        .unwrap_or_else(|| panic!("{target} not in netban list: {list:#}"))
}

/// The address this host sends from (no packet is sent: a connected UDP socket only picks a
/// route), if it has a route for documentation addresses and it is not loopback.
fn own_address() -> Option<std::net::IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("192.0.2.1:9").ok()?;
    Some(sock.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[test]
fn ban_makes_one_active_rule_with_rounded_expiry_and_host_comment_and_unban_removes_it() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let t0 = now_unix();
    let out = nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "600", "192.0.2.1"],
    );
    let t1 = now_unix();
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "ban must be quiet on success: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let rule = only_rule(&exafs);
    assert_eq!(rule.prefix(), "192.0.2.1/32", "{rule:?}");
    assert_eq!(rule.ipv4.as_deref(), Some("192.0.2.1"));
    assert_eq!(rule.ipv4_mask, Some(32));
    assert!(rule.is_active(), "{rule:?}");
    assert_eq!(rule.rstate, "active rule");
    assert_eq!(rule.community_id, 1, "{rule:?}");
    // The ownership mark (host id and this state's instance), then the comment template.
    assert_eq!(rule.comment, Some(format!("{} sshd", nb.mark())));
    assert!(nb.mark().starts_with(&format!("netban:{HOST_ID}:")));
    assert_expiry(&rule, t0 + 600, t1 + 600);

    let entry = sink_entry(&nb, "192.0.2.1/32");
    assert_eq!(entry["state"], "in_place", "{entry}");
    assert_eq!(entry["remote_id"], rule.id.to_string(), "{entry}");
    assert_eq!(entry["expires"], rule.expires.unwrap(), "{entry}");

    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.1"]);
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
    assert!(nb.targets().is_empty());
}

#[test]
fn ipv6_spellings_and_mapped_ipv4_become_one_canonical_rule_each() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    for ip in ["2001:DB8:0::5", "2001:db8::5", "2001:0db8::0005"] {
        nb.expect(0, &["ban", "--jail", "sshd", ip]);
    }
    nb.expect(0, &["ban", "--jail", "sshd", "::ffff:198.51.100.9"]);
    assert_eq!(prefixes(&exafs), ["198.51.100.9/32", "2001:db8::5/128"]);
    let rules = exafs.rtbh_rules();
    let v4 = rules.iter().find(|r| r.ipv4.is_some()).unwrap();
    assert_eq!(
        (v4.ipv4.as_deref(), v4.ipv4_mask),
        (Some("198.51.100.9"), Some(32)),
        "the mapped address is an IPv4 rule: {v4:?}"
    );
    let v6 = rules.iter().find(|r| r.ipv6.is_some()).unwrap();
    assert_eq!(
        (v6.ipv6.as_deref(), v6.ipv6_mask),
        (Some("2001:db8::5"), Some(128))
    );
    assert!(rules.iter().all(RtbhRule::is_active), "{rules:#?}");
    // An unban in yet another spelling finds the same rule.
    nb.expect(0, &["unban", "--jail", "sshd", "2001:0DB8:0:0::5"]);
    nb.expect(0, &["unban", "--jail", "sshd", "::ffff:198.51.100.9"]);
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
}

#[test]
fn a_cidr_ban_is_one_rule_with_its_mask_whatever_the_host_bits() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    nb.expect(0, &["ban", "--jail", "sshd", "203.0.113.0/24"]);
    nb.expect(0, &["ban", "--jail", "sshd", "203.0.113.77/24"]);
    let rule = only_rule(&exafs);
    assert_eq!(
        (rule.ipv4.as_deref(), rule.ipv4_mask),
        (Some("203.0.113.0"), Some(24)),
        "{rule:?}"
    );
    assert!(rule.is_active());
    // The IPv4-mapped spelling of the same network is the same target too.
    nb.expect(0, &["ban", "--jail", "sshd", "::ffff:203.0.113.5/120"]);
    assert_eq!(only_rule(&exafs).id, rule.id);
    assert_eq!(nb.targets(), ["203.0.113.0/24"]);
    // An IPv6 /64 with host bits set.
    nb.expect(0, &["ban", "--jail", "sshd", "2001:DB8:1:0:abcd::1/64"]);
    assert_eq!(prefixes(&exafs), ["2001:db8:1::/64", "203.0.113.0/24"]);
    nb.expect(0, &["unban", "--jail", "sshd", "203.0.113.77/24"]);
    nb.expect(0, &["unban", "--jail", "sshd", "2001:db8:1::/64"]);
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
}

#[test]
fn a_rule_exafs_whitelists_is_reported_as_not_enforced() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    exafs.add_whitelist("192.0.2.80/32", now_unix() + 86_400, "our partner");
    let out = nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.80"]);
    let rule = only_rule(&exafs);
    assert_eq!(rule.rstate, "whitelisted rule", "{rule:?}");
    // Accepted by ExaFS (201), but not announced: the operator hears about it.
    assert!(
        stderr(&out).contains("NOT enforced") && stderr(&out).contains("whitelist"),
        "{}",
        stderr(&out)
    );
    let entry = sink_entry(&nb, "192.0.2.80/32");
    assert_eq!(entry["state"], "in_place", "{entry}");
    assert!(
        entry["not_enforced"]
            .as_str()
            .is_some_and(|w| w.contains("whitelisted")),
        "{entry}"
    );
    let list = stdout(&nb.expect(0, &["list"]));
    assert!(list.contains("NOT ENFORCED"), "{list}");
    let status = stdout(&nb.expect(0, &["status"]));
    assert!(status.contains("1 NOT ENFORCED"), "{status}");
}

#[test]
fn two_jails_make_one_rule_with_the_later_expiry_until_both_unban() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let t0 = now_unix();
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "600", "192.0.2.2"],
    );
    let first = only_rule(&exafs);
    nb.expect(
        0,
        &["ban", "--jail", "postfix", "--bantime", "7200", "192.0.2.2"],
    );
    let t1 = now_unix();
    let rule = only_rule(&exafs);
    assert_eq!(rule.id, first.id, "the same rule is extended");
    assert_expiry(&rule, t0 + 7200, t1 + 7200);
    assert!(rule.is_active());

    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.2"]);
    let after = only_rule(&exafs);
    assert_eq!(
        (after.id, after.expires),
        (rule.id, rule.expires),
        "postfix still bans it: the rule and its later expiry stay"
    );
    assert!(after.is_active());
    nb.expect(0, &["unban", "--jail", "postfix", "192.0.2.2"]);
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
}

#[test]
fn a_short_ban_after_a_long_one_does_not_shorten_the_rule() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let t0 = now_unix();
    nb.expect(
        0,
        &["ban", "--jail", "postfix", "--bantime", "7200", "192.0.2.3"],
    );
    let t1 = now_unix();
    let long = only_rule(&exafs);
    assert_expiry(&long, t0 + 7200, t1 + 7200);
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "600", "192.0.2.3"],
    );
    let rule = only_rule(&exafs);
    assert_eq!(
        (rule.id, rule.expires),
        (long.id, long.expires),
        "ExaFS overwrites expiry on every POST: a short ban must not be sent over a long one"
    );
    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.3"]);
    assert_eq!(only_rule(&exafs).expires, long.expires);
    nb.expect(0, &["unban", "--jail", "postfix", "192.0.2.3"]);
    assert!(exafs.rtbh_rules().is_empty());
}

#[test]
fn a_permanent_ban_gets_the_permanent_expiry_rounded_up() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let t0 = now_unix();
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "-1", "192.0.2.4"],
    );
    let t1 = now_unix();
    let rule = only_rule(&exafs);
    assert!(rule.is_active());
    assert_expiry(&rule, t0 + PERMANENT_EXPIRY, t1 + PERMANENT_EXPIRY);
    // The old positional form means the same.
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.5", "-1"]);
    let t2 = now_unix();
    let r5 = exafs.rules_for("192.0.2.5", 32);
    assert_eq!(r5.len(), 1, "{r5:#?}");
    assert_expiry(&r5[0], t1 + PERMANENT_EXPIRY, t2 + PERMANENT_EXPIRY);
}

#[test]
fn a_corrupt_or_expired_or_refused_cached_token_is_replaced_and_the_ban_still_works() {
    let exafs = start_exafs();
    let proxy = start_proxy(&exafs);
    let nb = netban(&proxy.url(), exafs.api_key());
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.10"]);
    let path = nb.state_dir().join("exafs-exafs.token");
    let text = std::fs::read_to_string(&path).expect("token cache written");
    let header = text.lines().next().unwrap().to_string();
    assert!(header.starts_with("netban-exafs-token 1 "), "{header}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "token cache mode {mode:o}");
    }

    // (what, cache contents, requests ExaFS refuses with 403 before the new token is fetched)
    let cases = [
        ("garbage instead of the file", "garbage\n".to_string(), 0),
        (
            "a token that expired by its own exp",
            format!("{header}\n{}\n", jwt::forged(now_unix() - 3600)),
            0,
        ),
        (
            "a fresh-looking token ExaFS refuses (403 auth token is invalid)",
            format!("{header}\n{}\n", jwt::forged(now_unix() + 86_400)),
            1,
        ),
        ("an empty file", String::new(), 0),
    ];
    for (i, (what, contents, refused)) in cases.iter().enumerate() {
        std::fs::write(&path, contents).unwrap();
        proxy.reset_counts();
        let ip = format!("192.0.2.{}", 11 + i);
        nb.expect(0, &["ban", "--jail", "sshd", &ip]);
        assert_eq!(
            exafs.count_rules_for(&ip, 32),
            1,
            "{what}: {:#?}",
            exafs.rtbh_rules()
        );
        let forbidden = proxy.requests().iter().filter(|r| r.2 == 403).count();
        assert_eq!(
            (
                proxy.count("GET", AUTH),
                proxy.count("POST", RTBH),
                forbidden
            ),
            (1, 1 + refused, *refused),
            "{what}: one new token; the rule listing is cached from the first ban, so a refused call is the POST, sent again: {:?}",
            proxy.requests()
        );
        assert_eq!(sink_entry(&nb, &format!("{ip}/32"))["state"], "in_place");
    }
    // The replaced token was cached: the next process needs no GET /auth.
    proxy.reset_counts();
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.20"]);
    assert_eq!(
        (proxy.count("GET", AUTH), proxy.count("POST", RTBH)),
        (0, 1),
        "{:?}",
        proxy.requests()
    );
    assert_eq!(exafs.rtbh_rules().len(), 6, "{:#?}", exafs.rtbh_rules());
}

#[test]
fn exafs_down_keeps_the_ban_pending_within_the_deadline_and_sync_delivers_it_later() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    exafs.stop().unwrap();
    let started = Instant::now();
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.30"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(DEADLINE) + Duration::from_millis(1500),
        "ban took {took:?} with ExaFS down (inline_deadline {DEADLINE}s)"
    );
    let entry = sink_entry(&nb, "192.0.2.30/32");
    assert_eq!(entry["state"], "pending", "{entry}");
    assert_eq!(entry["attempts"], 1, "{entry}");
    let err = entry["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("cannot connect") && err.contains("is ExaFS running"),
        "{entry}"
    );
    let out = nb.expect(1, &["sync", "--timeout", "10"]);
    assert!(stdout(&out).contains("1 failed"), "{}", stdout(&out));

    exafs.restart().unwrap();
    assert!(exafs.rtbh_rules().is_empty());
    let out = nb.expect(0, &["sync", "--timeout", "10"]);
    assert!(stdout(&out).contains("1 added"), "{}", stdout(&out));
    let rule = only_rule(&exafs);
    assert_eq!(rule.prefix(), "192.0.2.30/32");
    assert!(rule.is_active());
    assert_eq!(sink_entry(&nb, "192.0.2.30/32")["state"], "in_place");
}

#[test]
fn an_unban_while_exafs_is_down_removes_the_rule_after_it_is_back() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.31"]);
    let rule = only_rule(&exafs);
    exafs.stop().unwrap();
    let started = Instant::now();
    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.31"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(DEADLINE) + Duration::from_millis(1500),
        "unban took {took:?}"
    );
    assert_eq!(
        exafs.rtbh_rules(),
        std::slice::from_ref(&rule),
        "ExaFS is down: its rule is still there"
    );
    nb.expect(1, &["sync", "--timeout", "10"]);
    exafs.restart().unwrap();
    let out = nb.expect(0, &["sync", "--timeout", "10"]);
    assert!(stdout(&out).contains("1 removed"), "{}", stdout(&out));
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
}

#[test]
fn an_exafs_that_never_answers_does_not_hold_ban_past_the_deadline() {
    let exafs = start_exafs();
    let proxy = start_proxy(&exafs);
    let nb = netban(&proxy.url(), exafs.api_key());
    proxy.set_mode(Mode::Blackhole);
    let started = Instant::now();
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.32"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(DEADLINE) + Duration::from_millis(1500),
        "ban took {took:?} against a silent ExaFS (inline_deadline {DEADLINE}s)"
    );
    assert!(proxy.count("GET", AUTH) >= 1, "{:?}", proxy.requests());
    assert_eq!(sink_entry(&nb, "192.0.2.32/32")["state"], "pending");
    proxy.set_mode(Mode::Pass);
    nb.expect(0, &["sync", "--timeout", "10"]);
    assert_eq!(only_rule(&exafs).prefix(), "192.0.2.32/32");
}

#[test]
fn a_slow_exafs_still_gets_exactly_one_rule() {
    let exafs = start_exafs();
    let proxy = start_proxy(&exafs);
    let nb = netban(&proxy.url(), exafs.api_key());
    proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.40"]);
    let rule = only_rule(&exafs);
    assert_eq!(rule.prefix(), "192.0.2.40/32");
    assert!(rule.is_active());
    // A token, the community's name and the listing of rules netban did not make (so a new
    // ban never shortens one), then the rule: each once, no retry of the slow answers.
    assert_eq!(
        proxy.requests(),
        [
            ("GET".to_string(), AUTH.to_string(), 200),
            ("GET".to_string(), "/api/v3/communities".to_string(), 200),
            ("GET".to_string(), "/api/v3/rules".to_string(), 200),
            ("POST".to_string(), RTBH.to_string(), 201)
        ]
    );
    assert_eq!(sink_entry(&nb, "192.0.2.40/32")["state"], "in_place");
}

#[test]
fn two_503s_are_retried_within_the_call_and_make_exactly_one_rule() {
    let exafs = start_exafs();
    let proxy = start_proxy(&exafs);
    let nb = netban(&proxy.url(), exafs.api_key());
    // A first ban caches the token and the rule listing (shared with the next processes for
    // a minute), so the 503s hit the POST itself.
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.41"]);
    proxy.reset_counts();
    proxy.set_mode(Mode::Status503 { count: Some(2) });
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.42"]);
    let post = |status| ("POST".to_string(), RTBH.to_string(), status);
    assert_eq!(proxy.requests(), [post(503), post(503), post(201)]);
    assert_eq!(exafs.count_rules_for("192.0.2.42", 32), 1);
    assert_eq!(exafs.rtbh_rules().len(), 2, "{:#?}", exafs.rtbh_rules());
    assert_eq!(sink_entry(&nb, "192.0.2.42/32")["state"], "in_place");
    // The same with the token fetch refused twice.
    std::fs::remove_file(nb.state_dir().join("exafs-exafs.token")).unwrap();
    proxy.reset_counts();
    proxy.set_mode(Mode::Status503 { count: Some(2) });
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.43"]);
    let auth = |status| ("GET".to_string(), AUTH.to_string(), status);
    assert_eq!(
        proxy.requests(),
        [auth(503), auth(503), auth(200), post(201)]
    );
    assert_eq!(exafs.count_rules_for("192.0.2.43", 32), 1);
}

/// A POST whose answer was lost (netban timed out, ExaFS stored the rule) leaves a rule netban
/// has no record of. (The proxy cannot produce this: it drops a request whose client gave up
/// before forwarding it; so the rule is made the way that POST would have made it.)
#[test]
fn a_rule_left_by_a_lost_answer_is_reused_not_duplicated() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let body = serde_json::json!({
        "ipv4": "192.0.2.45", "ipv4_mask": 32, "community": 1,
        "expires": ceil600(now_unix() + 600),
        "comment": format!("{} sshd", nb.mark()),
    });
    let r = exafs
        .api(exafs.api_key(), "POST", "/rules/rtbh", Some(&body))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let lost = only_rule(&exafs);
    let t0 = now_unix();
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "3600", "192.0.2.45"],
    );
    let t1 = now_unix();
    let rule = only_rule(&exafs);
    assert_eq!(rule.id, lost.id);
    assert_expiry(&rule, t0 + 3600, t1 + 3600);
    assert_eq!(
        sink_entry(&nb, "192.0.2.45/32")["remote_id"],
        rule.id.to_string()
    );
    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.45"]);
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
}

#[test]
fn a_restored_ban_already_in_place_sends_no_request() {
    let exafs = start_exafs();
    let proxy = start_proxy(&exafs);
    let nb = netban(&proxy.url(), exafs.api_key());
    let time = format!("{}.25", now_unix());
    let ips = ["192.0.2.50", "192.0.2.51", "2001:db8::50"];
    for ip in ips {
        nb.expect(
            0,
            &[
                "ban",
                "--jail",
                "sshd",
                "--bantime",
                "3600",
                "--time",
                &time,
                ip,
            ],
        );
    }
    assert_eq!(exafs.rtbh_rules().len(), 3);
    let before = exafs.rtbh_rules();
    proxy.reset_counts();
    // fail2ban restarts and restores its bans.
    for ip in ips {
        nb.expect(
            0,
            &[
                "ban",
                "--jail",
                "sshd",
                "--bantime",
                "3600",
                "--time",
                &time,
                "--restored",
                "1",
                ip,
            ],
        );
    }
    assert_eq!(proxy.requests(), [], "a restore must cost no ExaFS request");
    assert_eq!(exafs.rtbh_rules(), before);
}

#[test]
fn a_read_only_key_is_accepted_durably_reported_with_the_fix_and_check_fails() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.readonly_key());
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.60"]);
    assert!(exafs.rtbh_rules().is_empty(), "{:#?}", exafs.rtbh_rules());
    let entry = sink_entry(&nb, "192.0.2.60/32");
    assert_eq!(entry["state"], "pending", "{entry}");
    assert!(entry["attempts"].as_i64().unwrap_or(0) >= 1, "{entry}");
    let err = entry["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("read-only") && err.contains("read-write key"),
        "{entry}"
    );
    let out = nb.expect(1, &["check"]);
    let text = stdout(&out);
    assert!(
        text.contains("sink exafs (exafs): FAILED")
            && text.contains("create a read-write key in ExaFS > API keys"),
        "{text}"
    );
    // The operator puts in a read-write key: check passes and sync delivers the ban.
    rewrite_config(&nb, &exafs.url(), exafs.api_key(), &Cfg::default());
    let out = nb.expect(0, &["check"]);
    assert!(
        stdout(&out).contains("sink exafs (exafs): ok"),
        "{}",
        stdout(&out)
    );
    nb.expect(0, &["sync", "--timeout", "10"]);
    assert_eq!(only_rule(&exafs).prefix(), "192.0.2.60/32");
}

#[test]
fn guarded_targets_never_reach_exafs() {
    let exafs = start_exafs();
    let proxy = start_proxy(&exafs);
    let nb = netban_with(
        &proxy.url(),
        exafs.api_key(),
        &Cfg {
            guard: "allow = [\"198.51.100.0/24\"]",
            ..Cfg::default()
        },
    );
    let mut cases: Vec<(String, &str)> = [
        ("0.0.0.0/0", "wider than /24"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("198.51.100.7", "198.51.100.0/24"),
        ("198.51.100.0/25", "198.51.100.0/24"),
        ("198.51.0.0/16", "wider than /24"),
    ]
    .into_iter()
    .map(|(ip, why)| (ip.to_string(), why))
    .collect();
    // This host's own (source) address, when it has a route: protect_own_addresses is on.
    if let Some(own) = own_address() {
        cases.push((own.to_string(), "this host's address"));
    }
    for (ip, why) in &cases {
        let ip = ip.as_str();
        let out = nb.expect(0, &["ban", "--jail", "sshd", ip]);
        assert!(
            stderr(&out).contains("skipped") && stderr(&out).contains(why),
            "{ip}: {}",
            stderr(&out)
        );
    }
    assert_eq!(proxy.requests(), [], "nothing may reach ExaFS");
    assert!(exafs.rtbh_rules().is_empty());
    assert!(nb.targets().is_empty());
    // sync has nothing to add either (it only lists).
    nb.expect(0, &["sync", "--timeout", "10"]);
    assert_eq!(proxy.count("POST", RTBH), 0, "{:?}", proxy.requests());
    assert!(exafs.rtbh_rules().is_empty());
}

/// The most verbose stderr (trace: everything `-vv` shows and more, the HTTP stack's own
/// events included).
const VERBOSITY: &str = "-vvv";

#[test]
fn the_api_key_and_token_never_appear_in_output_or_log_file() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let key_file = nb.path("exafs.key");
    std::fs::write(&key_file, format!("{}\n", exafs.api_key())).unwrap();
    let log_file = nb.path("netban.log");
    let log = format!(
        "file = \"{}\"\nlevel = \"trace\"\nsyslog = false",
        log_file.display()
    );
    rewrite_config(
        &nb,
        &exafs.url(),
        exafs.api_key(),
        &Cfg {
            log: &log,
            key_file: Some(key_file.clone()),
            ..Cfg::default()
        },
    );
    let mut outputs = Vec::new();
    let mut run = |code: i32, args: &[&str]| {
        let mut all = vec![VERBOSITY];
        all.extend_from_slice(args);
        let out = nb.expect(code, &all);
        outputs.push((args.join(" "), stdout(&out), stderr(&out)));
    };
    run(0, &["ban", "--jail", "sshd", "192.0.2.70"]);
    run(
        0,
        &["ban", "--jail", "sshd", "--bantime", "-1", "2001:db8::70"],
    );
    run(0, &["list"]);
    run(0, &["--json", "list"]);
    run(0, &["sync"]);
    run(0, &["check"]);
    run(0, &["--json", "check"]);
    run(0, &["status"]);
    run(0, &["unban", "--jail", "sshd", "192.0.2.70"]);
    // Failures print more: a refused token, then ExaFS down.
    let cache = nb.state_dir().join("exafs-exafs.token");
    let token_text = std::fs::read_to_string(&cache).expect("token cache");
    let token = token_text.lines().nth(1).expect("token line").to_string();
    assert!(token.len() > 20, "{token}");
    let header = token_text.lines().next().unwrap();
    std::fs::write(
        &cache,
        format!("{header}\n{}\n", jwt::forged(now_unix() + 86_400)),
    )
    .unwrap();
    run(0, &["ban", "--jail", "sshd", "192.0.2.71"]);
    let token2 = std::fs::read_to_string(&cache)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    exafs.stop().unwrap();
    run(0, &["ban", "--jail", "sshd", "192.0.2.72"]);
    run(1, &["sync", "--timeout", "5"]);
    run(1, &["check"]);

    let logged = std::fs::read_to_string(&log_file).expect("log file written");
    assert!(
        logged.contains("POST /rules/rtbh") && logged.contains("GET /auth"),
        "the log file has the debug lines: {logged}"
    );
    let stderr_all: String = outputs.iter().map(|(_, _, e)| e.as_str()).collect();
    assert!(
        stderr_all.contains("GET /auth"),
        "-vv shows debug lines: {stderr_all}"
    );
    for secret in [exafs.api_key(), token.as_str(), token2.as_str()] {
        for (cmd, out, err) in &outputs {
            assert!(!out.contains(secret), "secret in stdout of {cmd}: {out}");
            assert!(!err.contains(secret), "secret in stderr of {cmd}: {err}");
        }
        assert!(!logged.contains(secret), "secret in the log file: {logged}");
    }
    // The forged token (sent, refused) does not show either.
    let forged_sig = jwt::forged_signature();
    assert!(!logged.contains(&forged_sig));
}

/// ExaFS keeps one rule per address+mask+community whoever made it: a ban of an address an
/// operator already blocks by hand gets the operator's rule back from `POST /rules/rtbh`.
/// netban must not shorten that block, and its unban must not delete it.
#[test]
fn a_rule_an_operator_made_is_left_alone() {
    let exafs = start_exafs();
    let nb = netban(&exafs.url(), exafs.api_key());
    let expires = ceil600(now_unix() + 86_400);
    let id = exafs.create_foreign_rule("192.0.2.90/32", expires, "manual block, ticket 42");
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "600", "192.0.2.90"],
    );
    let after_ban = only_rule(&exafs);
    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.90"]);
    let after_unban = exafs.rtbh_rules();
    let mut problems = Vec::new();
    if after_ban.expires < Some(expires) {
        problems.push(format!(
            "netban's 600 s ban cut the operator's expiry from {expires} to {:?}",
            after_ban.expires
        ));
    }
    match after_unban.iter().find(|r| r.id == id) {
        None => problems.push("netban's unban deleted the operator's rule".to_string()),
        Some(r) => {
            assert_eq!(r.comment.as_deref(), Some("manual block, ticket 42"));
            assert_eq!(r.user, "operator@example.com");
        }
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\nafter ban: {after_ban:?}\nafter unban: {after_unban:#?}"
    );
}

/// The setup docs/exafs.md recommends for hosts sharing one ExaFS: a community each. Each
/// host's rule is its own; one host's unban leaves the other's block in place.
#[test]
fn hosts_with_a_community_each_keep_their_own_rules() {
    let exafs = start_exafs();
    let web1 = netban_with(
        &exafs.url(),
        exafs.api_key(),
        &Cfg {
            host: Some("web-01"),
            ..Cfg::default()
        },
    );
    let web2 = netban_with(
        &exafs.url(),
        exafs.api_key(),
        &Cfg {
            host: Some("web-02"),
            community: Some(2),
            ..Cfg::default()
        },
    );
    web1.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "7200", "192.0.2.91"],
    );
    web2.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "600", "192.0.2.91"],
    );
    let mut rules = exafs.rules_for("192.0.2.91", 32);
    rules.sort_by_key(|r| r.community_id);
    let seen: Vec<_> = rules
        .iter()
        .map(|r| (r.community_id, r.comment.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, format!("{} sshd", web1.mark())),
            (2, format!("{} sshd", web2.mark()))
        ]
    );
    let web1_rule = rules[0].clone();
    web2.expect(0, &["unban", "--jail", "sshd", "192.0.2.91"]);
    assert_eq!(
        exafs.rtbh_rules(),
        [web1_rule],
        "web-01's rule is untouched"
    );
    // A full sync on web-02 (it lists every rule) leaves web-01's rule alone too.
    web2.expect(0, &["sync", "--timeout", "10"]);
    assert_eq!(exafs.rtbh_rules().len(), 1);
    web1.expect(0, &["unban", "--jail", "sshd", "192.0.2.91"]);
    assert!(exafs.rtbh_rules().is_empty());
}
