//! The ExaFS sink against a real ExaFS 1.4.1 (netban-testsupport starts it from PyPI), with a
//! fault-injecting proxy in front where the test needs faults or request counts.

use std::path::Path;
use std::time::{Duration, Instant};

use netban_core::config::{DriverConfig, SinkEnv};
use netban_core::owner::{Mark, Owner};
use netban_core::sink::{Applied, Change, LeaseInfo, Outcome, Retry, Sink, SinkError};
use netban_core::{Target, Until};
use netban_exafs::ExafsConfig;
use netban_exafs::ExafsSink;
use netban_testsupport::exafs::{ExaFs, ExaFsOptions, now_unix};
use netban_testsupport::jwt;
use netban_testsupport::proxy::{FaultProxy, Mode};

const HOST: &str = "web-01";
/// The instance id of the test's state; the mark of its rules.
const INSTANCE: &str = "0123456789ab";
const MARK: &str = "netban:web-01:0123456789ab";
const POST_RTBH: &str = "/api/v3/rules/rtbh";
const AUTH: &str = "/api/v3/auth";

fn config(url: &str, key: &str, extra: &str) -> ExafsConfig {
    let text = format!("url = {url:?}\napi_key = {key:?}\ncommunity = 1\n{extra}");
    let c: ExafsConfig = toml::from_str(&text).expect("valid config");
    c.validate().expect("valid values");
    c
}

fn env(state: &Path) -> SinkEnv {
    SinkEnv {
        state_dir: state.to_path_buf(),
        host_id: HOST.into(),
        mark: Mark::new(HOST, INSTANCE),
    }
}

fn new_sink(c: &ExafsConfig, state: &Path) -> Result<ExafsSink, netban_exafs::ExafsError> {
    ExafsSink::new("exafs", c, &env(state))
}

fn sink_with(url: &str, key: &str, state: &Path, extra: &str) -> ExafsSink {
    new_sink(&config(url, key, extra), state).expect("sink builds")
}

fn sink(url: &str, key: &str, state: &Path) -> ExafsSink {
    sink_with(url, key, state, "")
}

fn lease(jail: &str, until: Until) -> LeaseInfo {
    let bantime = match until {
        Until::At(u) => u - now_unix(),
        Until::Never => -1,
    };
    LeaseInfo {
        jail: jail.into(),
        origin: "local".into(),
        bantime,
        until: until.to_db(),
    }
}

fn add(sink: &ExafsSink, target: &str, until: Until) -> Change {
    Change::Add {
        target: Target::parse(target).expect("target"),
        expires: sink.expiry_for(until, now_unix()),
        lease: lease("sshd", until),
        remote_id: None,
    }
}

fn remove(target: &str, remote_id: Option<&str>) -> Change {
    Change::Remove {
        target: Target::parse(target).expect("target"),
        remote_id: remote_id.map(str::to_string),
        lease: lease("sshd", Until::At(now_unix() + 3600)),
        adopted: false,
    }
}

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

async fn apply_one(sink: &ExafsSink, change: Change) -> Outcome {
    let mut out = sink.apply(&[change], soon(20)).await;
    assert_eq!(out.len(), 1);
    out.remove(0)
}

async fn added(sink: &ExafsSink, change: Change) -> Applied {
    match apply_one(sink, change).await {
        Ok(a) => a,
        Err(e) => panic!("apply failed: {e:?}"),
    }
}

async fn refused(sink: &ExafsSink, change: Change) -> SinkError {
    match apply_one(sink, change).await {
        Ok(a) => panic!("apply should fail, got {a:?}"),
        Err(e) => e,
    }
}

fn start() -> ExaFs {
    ExaFs::start().expect("ExaFS starts (run scripts/test to install it)")
}

fn proxy(exafs: &ExaFs) -> FaultProxy {
    FaultProxy::start(exafs.authority()).expect("proxy starts")
}

#[tokio::test]
async fn add_creates_an_active_rule_with_prefix_community_expiry_and_comment() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let until = Until::At(now_unix() + 3600);
    let change = add(&sink, "192.0.2.1", until);
    let Change::Add {
        expires: Some(sent),
        ..
    } = change
    else {
        unreachable!()
    };
    assert_eq!(sent % 600, 0);
    let applied = added(&sink, change).await;

    let rules = exafs.rules_for("192.0.2.1", 32);
    assert_eq!(rules.len(), 1, "{rules:?}");
    let rule = &rules[0];
    assert!(rule.is_active(), "{rule:?}");
    assert_eq!(rule.community_id, 1);
    assert_eq!(rule.comment, Some(format!("{MARK} sshd")));
    assert_eq!(rule.expires, Some(sent));
    assert_eq!(
        applied,
        Applied {
            remote_id: Some(rule.id.to_string()),
            expires: Some(sent),
            not_enforced: None,
            owner: Owner::This,
            absent: false,
        }
    );
}

#[tokio::test]
async fn adding_twice_keeps_the_id_and_extends_the_expiry() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let first = added(&sink, add(&sink, "192.0.2.2", Until::At(now_unix() + 3600))).await;
    let mut extend = add(&sink, "192.0.2.2", Until::At(now_unix() + 7200));
    if let Change::Add { remote_id, .. } = &mut extend {
        *remote_id = first.remote_id.clone();
    }
    let second = added(&sink, extend).await;
    assert_eq!(second.remote_id, first.remote_id);
    assert!(second.expires > first.expires, "{first:?} then {second:?}");
    let rules = exafs.rules_for("192.0.2.2", 32);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].expires, second.expires);
}

#[tokio::test]
async fn ipv6_and_cidr_targets_are_sent_canonical() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let until = Until::At(now_unix() + 3600);
    let changes = [
        add(&sink, "2001:DB8:0::5", until),
        add(&sink, "203.0.113.77/24", until),
        add(&sink, "2001:db8:1::/48", until),
    ];
    let outcomes = sink.apply(&changes, soon(20)).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(exafs.count_rules_for("2001:db8::5", 128), 1);
    assert_eq!(exafs.count_rules_for("203.0.113.0", 24), 1);
    assert_eq!(exafs.count_rules_for("2001:db8:1::", 48), 1);
    assert_eq!(exafs.rtbh_rules().len(), 3);
}

#[tokio::test]
async fn remove_deletes_the_rule_and_a_second_remove_is_fine() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let applied = added(&sink, add(&sink, "192.0.2.3", Until::At(now_unix() + 3600))).await;
    let id = applied.remote_id.expect("rule id");
    apply_one(&sink, remove("192.0.2.3", Some(&id)))
        .await
        .expect("removed");
    assert_eq!(exafs.count_rules_for("192.0.2.3", 32), 0);
    // Already gone (ExaFS answers 404): done, not an error.
    apply_one(&sink, remove("192.0.2.3", Some(&id)))
        .await
        .expect("second remove is fine");
    apply_one(&sink, remove("192.0.2.3", None))
        .await
        .expect("remove by lookup of nothing is fine");
}

#[tokio::test]
async fn remove_without_an_id_finds_our_rule_and_leaves_foreign_ones() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    added(&sink, add(&sink, "192.0.2.4", Until::At(now_unix() + 3600))).await;
    let foreign = exafs.create_foreign_rule("192.0.2.5/32", now_unix() + 3600, "blocked by hand");
    let outcomes = sink
        .apply(
            &[remove("192.0.2.4", None), remove("192.0.2.5", None)],
            soon(20),
        )
        .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(exafs.count_rules_for("192.0.2.4", 32), 0);
    assert!(
        exafs.rule(foreign).is_some(),
        "a rule netban did not make stays"
    );
}

/// ExaFS on SQLite gives a deleted rule's id to the next new rule: a remembered id must not
/// delete somebody else's rule.
#[tokio::test]
async fn a_reused_rule_id_does_not_delete_another_rule() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let ours = added(&sink, add(&sink, "192.0.2.6", Until::At(now_unix() + 3600))).await;
    let id: u64 = ours.remote_id.as_deref().unwrap().parse().unwrap();
    exafs.delete_rule(id);
    let other = exafs.create_foreign_rule("192.0.2.66/32", now_unix() + 3600, "someone else");
    assert_eq!(other, id, "this test relies on ExaFS reusing the id");
    apply_one(&sink, remove("192.0.2.6", Some(&id.to_string())))
        .await
        .expect("our rule is gone: done");
    assert!(
        exafs.rule(other).is_some(),
        "the other rule with the reused id is still there"
    );

    // The same address in another community is another rule too.
    let ours = added(&sink, add_for("192.0.2.7")).await;
    let id: u64 = ours.remote_id.as_deref().unwrap().parse().unwrap();
    exafs.delete_rule(id);
    let body = serde_json::json!({"ipv4": "192.0.2.7", "ipv4_mask": 32, "community": 2, "expires": now_unix() + 3600});
    let r = exafs
        .api(exafs.operator_key(), "POST", "/rules/rtbh", Some(&body))
        .unwrap();
    assert_eq!(
        r.json().unwrap()["rule"]["id"].as_u64(),
        Some(id),
        "this test relies on ExaFS reusing the id"
    );
    apply_one(&sink, remove("192.0.2.7", Some(&id.to_string())))
        .await
        .expect("done");
    assert!(
        exafs.rule(id).is_some_and(|r| r.community_id == 2),
        "the community-2 rule stays"
    );
}

#[tokio::test]
async fn a_bad_cached_token_is_replaced_once() {
    let exafs = start();
    let proxy = proxy(&exafs);
    let state = tempfile::tempdir().unwrap();
    added(
        &sink(&proxy.url(), exafs.api_key(), state.path()),
        add_for("192.0.2.7"),
    )
    .await;
    // Keep the header line, replace the token with one ExaFS did not sign (valid for a day by
    // its own exp claim, so netban uses it).
    let path = state.path().join("exafs-exafs.token");
    let text = std::fs::read_to_string(&path).unwrap();
    let header = text.lines().next().unwrap();
    let forged = jwt::forged(now_unix() + 86_400);
    std::fs::write(&path, format!("{header}\n{forged}\n")).unwrap();

    proxy.reset_counts();
    let fresh = sink(&proxy.url(), exafs.api_key(), state.path());
    added(&fresh, add_for("192.0.2.8")).await;
    assert_eq!(proxy.count("GET", AUTH), 1, "{:?}", proxy.requests());
    // The rule listing is cached from the first add, so the POST is the first call with the
    // forged token: refused (403 "auth token is invalid"), then sent again with a new one.
    assert_eq!(
        proxy.count("POST", POST_RTBH),
        2,
        "refused once, then sent again: {:?}",
        proxy.requests()
    );
    assert_eq!(exafs.count_rules_for("192.0.2.8", 32), 1);
    // Garbage (not a JWT at all) is never sent: a token is fetched first.
    std::fs::write(&path, format!("{header}\ngarbage\n")).unwrap();
    proxy.reset_counts();
    added(
        &sink(&proxy.url(), exafs.api_key(), state.path()),
        add_for("192.0.2.9"),
    )
    .await;
    assert_eq!(
        (proxy.count("GET", AUTH), proxy.count("POST", POST_RTBH)),
        (1, 1),
        "{:?}",
        proxy.requests()
    );
}

#[tokio::test]
async fn the_cached_token_is_reused_by_the_next_process() {
    let exafs = start();
    let proxy = proxy(&exafs);
    let state = tempfile::tempdir().unwrap();
    added(
        &sink(&proxy.url(), exafs.api_key(), state.path()),
        add_for("192.0.2.10"),
    )
    .await;
    assert_eq!(proxy.count("GET", AUTH), 1);
    // A new sink value stands for the next `netban ban` process.
    added(
        &sink(&proxy.url(), exafs.api_key(), state.path()),
        add_for("192.0.2.11"),
    )
    .await;
    assert_eq!(proxy.count("GET", AUTH), 1, "{:?}", proxy.requests());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.path().join("exafs-exafs.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Another key does not reuse that token.
    let err = refused(
        &sink(&proxy.url(), exafs.readonly_key(), state.path()),
        add_for("192.0.2.12"),
    )
    .await;
    assert!(err.message.contains("read-write key"), "{err:?}");
    assert_eq!(proxy.count("GET", AUTH), 2);
}

#[tokio::test]
async fn a_batch_runs_concurrently_in_order_with_one_token() {
    let exafs = start();
    let proxy = proxy(&exafs);
    let state = tempfile::tempdir().unwrap();
    let sink = sink_with(
        &proxy.url(),
        exafs.api_key(),
        state.path(),
        "concurrency = 4\n",
    );
    let targets: Vec<String> = (1..=20).map(|i| format!("198.51.100.{i}")).collect();
    let changes: Vec<Change> = targets.iter().map(|t| add_for(t)).collect();
    let outcomes = sink.apply(&changes, soon(30)).await;
    assert_eq!(outcomes.len(), 20);
    for (t, o) in targets.iter().zip(&outcomes) {
        let id = o.as_ref().expect("added").remote_id.clone().unwrap();
        let rule = exafs.rule(id.parse().unwrap()).expect("rule exists");
        assert_eq!(
            rule.prefix(),
            format!("{t}/32"),
            "outcome order matches change order"
        );
    }
    assert_eq!(proxy.count("GET", AUTH), 1);
    assert_eq!(proxy.count("POST", POST_RTBH), 20);
    // Keep-alive: 21 requests over at most `concurrency` connections (plus the token's).
    assert!(
        proxy.connection_count() <= 5,
        "{} connections",
        proxy.connection_count()
    );
}

#[tokio::test]
async fn two_503s_then_success_makes_exactly_one_rule() {
    let exafs = start();
    let proxy = proxy(&exafs);
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&proxy.url(), exafs.api_key(), state.path());
    added(&sink, add_for("192.0.2.13")).await; // token in hand
    proxy.reset_counts();
    proxy.set_mode(Mode::Status503 { count: Some(2) });
    added(&sink, add_for("192.0.2.14")).await;
    assert_eq!(proxy.count("POST", POST_RTBH), 3, "{:?}", proxy.requests());
    assert_eq!(exafs.count_rules_for("192.0.2.14", 32), 1);
}

#[tokio::test]
async fn exafs_down_is_a_retry_soon_within_the_deadline() {
    let exafs = start();
    let proxy = proxy(&exafs);
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&proxy.url(), exafs.api_key(), state.path());
    proxy.set_mode(Mode::Down);
    let started = Instant::now();
    let out = sink
        .apply(
            &[add_for("192.0.2.15"), add_for("192.0.2.16")],
            started + Duration::from_secs(2),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    for o in &out {
        let e = o.as_ref().expect_err("ExaFS is down");
        assert_eq!(e.retry, Retry::Soon, "{e:?}");
        assert!(e.message.contains("cannot connect"), "{e:?}");
    }
    // Back up: the same changes go through.
    proxy.set_mode(Mode::Pass);
    let out = sink.apply(&[add_for("192.0.2.15")], soon(20)).await;
    assert!(out[0].is_ok(), "{out:?}");
}

#[tokio::test]
async fn an_unanswered_request_stops_at_the_deadline() {
    let exafs = start();
    let proxy = proxy(&exafs);
    let state = tempfile::tempdir().unwrap();
    let sink = sink_with(
        &proxy.url(),
        exafs.api_key(),
        state.path(),
        "timeout = 30\n",
    );
    added(&sink, add_for("192.0.2.17")).await;
    proxy.set_mode(Mode::Blackhole);
    let started = Instant::now();
    let out = sink
        .apply(
            &[add_for("192.0.2.18")],
            started + Duration::from_millis(1500),
        )
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_millis(2000),
        "{elapsed:?}"
    );
    let e = out[0].as_ref().expect_err("no answer");
    assert_eq!(e.retry, Retry::Soon, "{e:?}");
    proxy.set_mode(Mode::Down);
}

#[tokio::test]
async fn a_read_only_key_is_refused_with_the_fix() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.readonly_key(), state.path());
    let e = refused(&sink, add_for("192.0.2.19")).await;
    assert_eq!(e.retry, Retry::Later);
    assert_eq!(
        e.message,
        "exafs: 403 from POST /rules/rtbh: API key is read-only; create a read-write key in ExaFS > API keys"
    );
    let e = sink
        .check(soon(20))
        .await
        .expect_err("check fails for a read-only key");
    assert!(e.message.contains("read-write key"), "{e:?}");
}

#[tokio::test]
async fn a_target_outside_the_organisation_is_refused_with_exafs_words() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.limited_key(), state.path());
    let e = refused(&sink, add_for("192.0.2.20")).await;
    assert_eq!(e.retry, Retry::Later);
    assert!(
        e.message
            .starts_with("exafs: 400 from POST /rules/rtbh: ExaFS refused the rule: "),
        "{e:?}"
    );
    assert!(e.message.contains("must be in organization range"), "{e:?}");
    assert!(e.message.contains("198.51.100.0/24"), "{e:?}");
    // Inside the range it works.
    added(&sink, add_for("198.51.100.20")).await;
}

#[tokio::test]
async fn key_problems_say_what_to_do() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let cases = [
        (
            exafs.wrong_machine_key(),
            "set its Machine to this host's address as ExaFS sees it (127.0.0.1)",
        ),
        (exafs.expired_key(), "API key has expired"),
        ("no-such-key", "ExaFS does not know this API key"),
    ];
    for (key, words) in cases {
        let sink = sink(&exafs.url(), key, state.path());
        let e = refused(&sink, add_for("192.0.2.21")).await;
        assert_eq!(e.retry, Retry::Later, "{e:?}");
        assert!(
            e.message.contains("from GET /auth") && e.message.contains(words),
            "{e:?}"
        );
        assert!(
            !e.message.contains(key),
            "the key never appears in messages: {e:?}"
        );
        let e = sink.check(soon(20)).await.expect_err("check fails");
        assert!(e.message.contains(words), "{e:?}");
    }
}

#[tokio::test]
async fn another_users_rule_is_not_deleted_and_says_why() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let id = exafs.create_foreign_rule("198.51.100.30/32", now_unix() + 3600, "netban web-01 sshd");
    let sink = sink(&exafs.url(), exafs.limited_key(), state.path());
    let out = apply_one(&sink, remove("198.51.100.30", Some(&id.to_string()))).await;
    let e = out.expect_err("not the owner");
    assert_eq!(e.retry, Retry::Later);
    assert!(e.message.contains("401 from DELETE /rules/rtbh/"), "{e:?}");
    assert!(e.message.contains("belongs to another ExaFS user"), "{e:?}");
    assert!(exafs.rule(id).is_some());
}

#[tokio::test]
async fn held_lists_our_rules_marked_and_foreign_rules_unmarked() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let ours = added(&sink, add_for("192.0.2.22")).await;
    let perm = added(&sink, add(&sink, "2001:db8::22", Until::Never)).await;
    let foreign = exafs.create_foreign_rule("192.0.2.23/32", now_unix() + 3600, "blocked by hand");
    let other_host =
        exafs.create_foreign_rule("192.0.2.24/32", now_unix() + 3600, "netban web-02 sshd");
    // Another community is not this sink's business.
    let body = serde_json::json!({"ipv4": "192.0.2.25", "ipv4_mask": 32, "community": 2, "expires": now_unix() + 3600});
    assert_eq!(
        exafs
            .api(exafs.operator_key(), "POST", "/rules/rtbh", Some(&body))
            .unwrap()
            .status,
        201
    );

    let held = sink
        .held(soon(20))
        .await
        .expect("held")
        .expect("ExaFS can list");
    let find = |t: &str| {
        held.iter()
            .find(|h| h.target == Target::parse(t).unwrap())
            .cloned()
    };
    let h = find("192.0.2.22").expect("our rule");
    assert_eq!(h.owner, Owner::This);
    assert_eq!(
        (h.remote_id.clone(), h.expires, h.not_enforced.clone()),
        (ours.remote_id, ours.expires, None)
    );
    let h = find("2001:db8::22").expect("our permanent rule");
    assert_eq!(h.owner, Owner::This);
    assert_eq!(h.expires, perm.expires);
    let h = find("192.0.2.23").expect("foreign rule");
    assert_eq!(h.owner, Owner::Foreign);
    assert_eq!(h.remote_id, Some(foreign.to_string()));
    let h = find("192.0.2.24").expect("another host's netban rule");
    assert_eq!(
        h.owner,
        Owner::Host("web-02".into()),
        "another host's rules are not this host's to remove"
    );
    assert_eq!(h.remote_id, Some(other_host.to_string()));
    assert!(find("192.0.2.25").is_none(), "{held:?}");
    assert_eq!(held.len(), 4, "{held:?}");
}

#[tokio::test]
async fn rules_exafs_does_not_announce_are_reported() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    // An expiry in the past (as a wrong clock would make it): stored, but withdrawn.
    let past = Change::Add {
        target: Target::parse("192.0.2.26").unwrap(),
        expires: Some((now_unix() - 3600) / 600 * 600),
        lease: lease("sshd", Until::At(now_unix() + 60)),
        remote_id: None,
    };
    let a = added(&sink, past).await;
    assert!(
        a.not_enforced
            .as_deref()
            .is_some_and(|w| w.contains("withdrawn")),
        "{a:?}"
    );
    // Inside an ExaFS whitelist: stored, but whitelisted.
    exafs.add_whitelist("192.0.2.128/25", now_unix() + 86_400, "our servers");
    let a = added(&sink, add_for("192.0.2.130")).await;
    assert!(
        a.not_enforced
            .as_deref()
            .is_some_and(|w| w.starts_with("ExaFS whitelisted the rule (")),
        "{a:?}"
    );
    let held = sink.held(soon(20)).await.unwrap().unwrap();
    let h = held
        .iter()
        .find(|h| h.target == Target::parse("192.0.2.130").unwrap())
        .unwrap();
    assert_eq!(
        h.not_enforced, a.not_enforced,
        "held and apply describe the rule alike"
    );
}

#[tokio::test]
async fn check_reports_what_it_reached() {
    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    added(&sink, add_for("192.0.2.27")).await;
    exafs.create_foreign_rule("192.0.2.28/32", now_unix() + 3600, "by hand");
    let line = sink.check(soon(20)).await.expect("check passes");
    assert!(
        line.starts_with(&format!(
            "ExaFS {} reachable as admin@example.com",
            exafs.url()
        )),
        "{line}"
    );
    assert!(line.contains("token valid until"), "{line}");
    assert!(line.contains("community 1 is 65535:65283"), "{line}");
    assert!(
        line.contains("2 RTBH rules on it: 1 by this netban"),
        "{line}"
    );
    // A community the key cannot use.
    let cfg = ExafsConfig {
        community: 9,
        ..config(&exafs.url(), exafs.api_key(), "")
    };
    let bad = new_sink(&cfg, state.path()).unwrap();
    let e = bad
        .check(soon(20))
        .await
        .expect_err("community 9 does not exist");
    assert!(
        e.message.contains("community 9 is not offered") && e.message.contains("1 (65535:65283)"),
        "{e:?}"
    );
    // A wrong url.
    let wrong = sink_with(
        &format!("{}/nope", exafs.url()),
        exafs.api_key(),
        state.path(),
        "",
    );
    let e = wrong.check(soon(20)).await.expect_err("nothing there");
    assert!(
        e.message.contains("404 from GET /auth") && e.message.contains("without /api/v3"),
        "{e:?}"
    );
}

/// ExaFS builds `exp` from its local time read as UTC: west of UTC its tokens are born
/// expired. netban says so instead of failing mysteriously.
#[tokio::test]
async fn an_exafs_west_of_utc_is_diagnosed() {
    let exafs = ExaFs::start_with(ExaFsOptions {
        tz: "America/New_York".into(),
    })
    .expect("ExaFS starts");
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let e = refused(&sink, add_for("192.0.2.29")).await;
    assert_eq!(e.retry, Retry::Later);
    assert!(e.message.contains("TZ=UTC"), "{e:?}");
    let e = sink
        .check(soon(20))
        .await
        .expect_err("tokens are born expired");
    assert!(e.message.contains("already expired"), "{e:?}");
}

fn add_for(target: &str) -> Change {
    let until = Until::At(now_unix() + 3600);
    let expires = Some((now_unix() + 3600) / 600 * 600 + 600);
    Change::Add {
        target: Target::parse(target).expect("target"),
        expires,
        lease: lease("sshd", until),
        remote_id: None,
    }
}

/// A TLS terminator in front of ExaFS (Python's ssl, a certificate from a private CA):
/// what a production ExaFS behind nginx looks like to netban.
struct TlsFront {
    child: std::process::Child,
    port: u16,
    /// The CA that signed the server certificate.
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const TLS_FRONT_PY: &str = r#"
import asyncio, ssl, sys
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
async def pipe(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass
async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
    except Exception:
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
"#;

impl TlsFront {
    fn start(upstream_port: u16) -> TlsFront {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = (
            dir.path().join("ca.pem"),
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
        );
        // A private CA, and a server certificate for 127.0.0.1 signed by it.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "netban test CA");
        let ca_cert = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca_cert)
            .unwrap();
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        std::fs::write(&cert, leaf.pem()).unwrap();
        std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
        let python = netban_testsupport::exafs::venv_dir().join("bin/python");
        let mut child = Command::new(python)
            .arg("-c")
            .arg(TLS_FRONT_PY)
            .arg(&cert)
            .arg(&key)
            .arg(upstream_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("TLS front did not start: {line:?}"));
        TlsFront {
            child,
            port,
            ca,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn https_with_a_private_ca_needs_ca_file() {
    let exafs = start();
    let front = TlsFront::start(exafs.port());
    let state = tempfile::tempdir().unwrap();
    let untrusting = sink(&front.url(), exafs.api_key(), state.path());
    let e = untrusting
        .check(soon(20))
        .await
        .expect_err("the certificate is not trusted");
    assert_eq!(e.retry, Retry::Later, "{e:?}");
    assert!(
        e.message.contains("TLS with") && e.message.contains("set ca_file"),
        "{e:?}"
    );
    let extra = format!("ca_file = {:?}\n", front.ca.display().to_string());
    let trusting = sink_with(&front.url(), exafs.api_key(), state.path(), &extra);
    let line = trusting
        .check(soon(20))
        .await
        .expect("trusted through ca_file");
    assert!(line.contains("reachable"), "{line}");
    added(&trusting, add_for("192.0.2.31")).await;
    assert_eq!(exafs.count_rules_for("192.0.2.31", 32), 1);
}

/// Collects log output for [`secrets_never_reach_the_log`].
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let log = LogBuffer::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let exafs = start();
    let state = tempfile::tempdir().unwrap();
    let sink = sink(&exafs.url(), exafs.api_key(), state.path());
    let a = added(&sink, add_for("192.0.2.40")).await;
    let token_file = state.path().join("exafs-exafs.token");
    let first_token = std::fs::read_to_string(&token_file)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    // A refused token, so the refresh path logs too.
    let header = std::fs::read_to_string(&token_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        &token_file,
        format!("{header}\n{}\n", jwt::forged(now_unix() + 86_400)),
    )
    .unwrap();
    let again = new_sink(&config(&exafs.url(), exafs.api_key(), ""), state.path()).unwrap();
    apply_one(&again, remove("192.0.2.40", a.remote_id.as_deref()))
        .await
        .expect("removed");
    again.held(soon(20)).await.expect("held");
    again.check(soon(20)).await.expect("check");
    let second_token = std::fs::read_to_string(&token_file)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    refused(
        &sink_with(&exafs.url(), exafs.readonly_key(), state.path(), ""),
        add_for("192.0.2.41"),
    )
    .await;

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("new ExaFS token"),
        "debug lines are on:\n{text}"
    );
    for secret in [
        exafs.api_key(),
        exafs.readonly_key(),
        first_token.as_str(),
        second_token.as_str(),
    ] {
        assert!(!text.contains(secret), "a secret is in the log:\n{text}");
    }
    // Nor the parts of a token (its signature is what makes it a credential).
    let signature = second_token.rsplit('.').next().unwrap();
    assert!(!text.contains(signature), "{text}");
}
