//! The JSON API against a real state database, reconcile engine (exec sinks) and SQLite
//! statistics, over real HTTP: every endpoint of docs/stats.md, its parameters and errors,
//! and that no answer carries a secret.

mod common;

use common::{Fixture, Options, PASSWORD, get_json, now};
use netban_core::store::Kept;
use serde_json::{Value, json};

async fn populated(opts: Options) -> Fixture {
    let f = Fixture::start(opts).await;
    f.populate().await;
    f
}

fn item<'a>(active: &'a Value, target: &str) -> &'a Value {
    active["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["target"] == target)
        .unwrap_or_else(|| panic!("{target} is not in {active}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_is_the_netban_stats_json_of_the_window() {
    let f = populated(Options::default()).await;
    let (status, r) = get_json(&f, "/api/v1/stats/report?days=7").await;
    assert_eq!(status, 200, "{r}");
    let direct = f.stats().report(7, now()).await.unwrap();
    assert_eq!(r, serde_json::to_value(&direct).unwrap());
    assert_eq!(r["days"], 7);
    assert_eq!(r["per_day"].as_array().unwrap().len(), 7);
    // Today: the 8 local bans of the outbox (the peer's is counted by web-02); 7 in the six
    // days before.
    assert_eq!(r["per_day"][6]["total"], 8, "{r}");
    assert_eq!(r["total"], 8 + 7);
    assert_eq!(r["by_country"]["GB"], 2 + 3, "{r}");
    assert_eq!(r["by_country"]["JP"], 2);
    assert_eq!(r["by_country"]["SE"], 4);
    assert_eq!(r["by_jail"]["recidive"], 1);
    assert_eq!(r["by_asn"]["AS29518"], 4);
    // The ban 40 days back only shows in a longer window.
    let (_, r90) = get_json(&f, "/api/v1/stats/report?days=90").await;
    assert_eq!(r90["total"], 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn top_lists_hosts_and_summary() {
    let f = populated(Options::default()).await;
    let (_, asns) = get_json(&f, "/api/v1/stats/asns?days=30&limit=2").await;
    assert_eq!(
        asns,
        json!([{"asn": "unknown", "org": null, "bans": 11},
               {"asn": "AS29518", "org": "Bredband2 AB", "bans": 4}])
    );
    let (_, nets) = get_json(&f, "/api/v1/stats/networks?days=30").await;
    let first = &nets[0];
    assert_eq!(
        (
            first["network"].as_str(),
            first["country"].as_str(),
            first["bans"].as_u64()
        ),
        (Some("81.2.69.0/24"), Some("GB"), Some(4)),
        "{nets}"
    );
    let (_, off) = get_json(&f, "/api/v1/stats/offenders?days=30&limit=2").await;
    let mut two: Vec<(&str, u64)> = off
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["target"].as_str().unwrap(), o["bans"].as_u64().unwrap()))
        .collect();
    two.sort();
    assert_eq!(
        two,
        [("81.2.69.160/32", 3), ("89.160.20.128/32", 3)],
        "{off}"
    );
    let (_, hosts) = get_json(&f, "/api/v1/stats/hosts?days=30").await;
    assert_eq!(hosts[0]["host"], "web-01");
    assert_eq!(hosts[0]["bans"], 15);
    let (status, s) = get_json(&f, "/api/v1/stats/summary?days=30&limit=3").await;
    assert_eq!(status, 200);
    assert_eq!(s["report"]["total"], 15);
    for k in ["top_asns", "top_networks", "top_offenders", "hosts"] {
        assert!(s[k].is_array(), "{k} in {s}");
    }
    assert!(s["top_offenders"].as_array().unwrap().len() <= 3);
    assert_eq!(s["zone"], "UTC");
    assert_eq!(s["backend"], "sqlite");
    assert_eq!(s["last"], s["report"]["per_day"][29]["day"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_400_with_the_documented_message() {
    let f = Fixture::start(Options::default()).await;
    let days = json!({"error": "days must be an integer from 1 to 3660"});
    let limit = json!({"error": "limit must be an integer from 1 to 100"});
    for (path, want) in [
        ("/api/v1/stats/report?days=0", &days),
        ("/api/v1/stats/report?days=3661", &days),
        ("/api/v1/stats/summary?days=week", &days),
        ("/api/v1/stats/asns?days=-1", &days),
        ("/api/v1/stats/offenders?limit=101", &limit),
        ("/api/v1/stats/networks?limit=0", &limit),
    ] {
        let (status, body) = get_json(&f, path).await;
        assert_eq!((status, &body), (400, want), "{path}");
    }
    let (status, body) = get_json(&f, "/api/v1/active?sort=colour").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "sort must be one of target, since, until, state, jail"
    );
    let (status, body) = get_json(&f, "/api/v1/nothing").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_off_and_clustering_off_are_404_with_what_to_do() {
    let f = populated(Options {
        stats: false,
        ..Options::default()
    })
    .await;
    let (status, body) = get_json(&f, "/api/v1/stats/summary").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("statistics are off: this daemon has no [stats] section"),
        "{body}"
    );
    let (status, body) = get_json(&f, "/api/v1/cluster").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("[cluster]"));
    // What is blocked now does not need statistics.
    let (status, a) = get_json(&f, "/api/v1/active").await;
    assert_eq!(status, 200);
    assert_eq!(a["total"], 8);
    let (_, s) = get_json(&f, "/api/v1/status").await;
    assert_eq!(s["stats"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_answer_is_passed_through_without_credentials() {
    let f = Fixture::start(Options::default()).await;
    *f.backend.cluster.lock().unwrap() = Some(json!({
        "host": "web-01",
        "bus": format!("rediss://netban:{PASSWORD}@bus.example:6380/0"),
        "peers": [{"host": "web-02", "lag_events": 3, "last_seen": now() - 5}],
    }));
    let (status, c) = get_json(&f, "/api/v1/cluster").await;
    assert_eq!(status, 200);
    assert_eq!(c["peers"][0]["lag_events"], 3);
    assert_eq!(c["bus"], "rediss://<redacted>@bus.example:6380/0");
    let (_, s) = get_json(&f, "/api/v1/status").await;
    assert_eq!(s["cluster"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_does_not_answer_is_503_and_says_so_without_its_password() {
    use netban_testsupport::redis::{RedisOptions, RedisServer};
    let mut server = RedisServer::start_with(RedisOptions {
        password: Some(PASSWORD.into()),
        ..RedisOptions::default()
    })
    .unwrap();
    let url = netban_core::config::Secret::new(server.url());
    assert!(server.url().contains(PASSWORD));
    let backend = netban_stats::redis::RedisBackend::connect(&url, "netban", 400).unwrap();
    let stats = netban_stats::Stats::new(
        common::HOST,
        jiff::tz::TimeZone::UTC,
        400,
        common::test_geo(),
        std::sync::Arc::new(backend),
    )
    .unwrap();
    let f = Fixture::start(Options::default()).await;
    *f.backend.stats.lock().unwrap() = Some(std::sync::Arc::new(stats));
    let (status, r) = get_json(&f, "/api/v1/stats/report?days=7").await;
    assert_eq!(status, 200, "{r}");
    server.stop();
    let (status, body) = get_json(&f, "/api/v1/stats/summary?days=7").await;
    assert_eq!(status, 503, "{body}");
    let e = body["error"].as_str().unwrap();
    assert!(e.starts_with("stats: Redis"), "{e}");
    assert!(e.contains("check [stats] redis"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_windows_are_cached_a_minute_and_30_days_are_live() {
    let f = populated(Options::default()).await;
    let (_, before90) = get_json(&f, "/api/v1/stats/report?days=90").await;
    let (_, before30) = get_json(&f, "/api/v1/stats/report?days=30").await;
    f.history(5000, &[(0, "81.2.69.162", "sshd")]).await;
    let (_, after90) = get_json(&f, "/api/v1/stats/report?days=90").await;
    let (_, after30) = get_json(&f, "/api/v1/stats/report?days=30").await;
    assert_eq!(after90, before90, "90 days: the cached answer");
    assert_eq!(
        after30["total"].as_u64().unwrap(),
        before30["total"].as_u64().unwrap() + 1,
        "30 days: live"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn active_lists_every_target_with_its_leases_and_each_sinks_state() {
    let f = populated(Options::default()).await;
    let (status, a) = get_json(&f, "/api/v1/active?limit=1000").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["sinks"], json!(["fw", "exafs-lab"]));
    // 7 live targets and one whose removal is pending.
    assert_eq!(a["total"], 8, "{a}");
    assert_eq!(a["matched"], 8);
    let se = item(&a, "89.160.20.128/32");
    let jails: Vec<&str> = se["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["jail"].as_str().unwrap())
        .collect();
    assert_eq!(jails.len(), 2);
    assert!(jails.contains(&"sshd") && jails.contains(&"recidive"));
    assert_eq!(se["sinks"]["fw"]["state"], "in_place");
    let lab = &se["sinks"]["exafs-lab"];
    assert_eq!(lab["state"], "failing", "{se}");
    assert_eq!(lab["attempts"], 1);
    assert_eq!(
        lab["error"].as_str().unwrap(),
        "exafs-lab: /bin/sh exited with exit status: 1: \
         POST https://<redacted>@exafs.example/api/v3/rules: connection refused"
    );
    assert_eq!(se["state"], "failing");
    assert!(
        se["until"].as_i64().unwrap() > now() + 6 * 86_400,
        "the later lease"
    );
    let perm = item(&a, "1.2.3.4/32");
    assert_eq!(
        (perm["permanent"].as_bool(), &perm["until"]),
        (Some(true), &Value::Null)
    );
    let peer = item(&a, "203.0.113.9/32");
    assert_eq!(peer["leases"][0]["origin"], "web-02");
    let fresh = item(&a, "2.125.160.216/32");
    assert_eq!(fresh["sinks"]["fw"]["state"], "pending", "{fresh}");
    assert_eq!(fresh["sinks"]["exafs-lab"]["state"], "pending");
    let gone = item(&a, "198.51.100.77/32");
    assert_eq!(gone["leases"], json!([]));
    assert_eq!(gone["sinks"]["fw"]["state"], "removing", "{gone}");
    assert_eq!(a["counts"]["failing"], 6, "{}", a["counts"]);
    assert_eq!(a["counts"]["pending"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn active_is_searched_filtered_sorted_and_paged_by_the_server() {
    let f = populated(Options::default()).await;
    let targets = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["target"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, a) = get_json(&f, "/api/v1/active?q=89.160").await;
    assert_eq!(targets(&a), ["89.160.20.128/32"]);
    assert_eq!(
        (a["matched"].as_u64(), a["total"].as_u64()),
        (Some(1), Some(8))
    );
    // An address finds the network that covers it.
    let (_, a) = get_json(&f, "/api/v1/active?q=192.0.2.7").await;
    assert_eq!(targets(&a), ["192.0.2.0/24"]);
    let (_, a) = get_json(&f, "/api/v1/active?q=RECIDIVE").await;
    assert_eq!(targets(&a), ["89.160.20.128/32"]);
    let (_, a) = get_json(&f, "/api/v1/active?q=sshd%20web-02").await;
    assert_eq!(targets(&a), ["203.0.113.9/32"]);
    let (_, a) = get_json(&f, "/api/v1/active?state=pending").await;
    assert_eq!(targets(&a), ["2.125.160.216/32"]);
    let (_, a) = get_json(&f, "/api/v1/active?sort=target&order=asc&limit=3").await;
    assert_eq!(
        targets(&a),
        ["1.2.3.4/32", "2.125.160.216/32", "81.2.69.160/32"]
    );
    let (_, b) = get_json(&f, "/api/v1/active?sort=target&order=asc&limit=3&offset=3").await;
    assert_eq!(targets(&b).len(), 3);
    assert!(!targets(&b).iter().any(|t| targets(&a).contains(t)));
    let (_, a) = get_json(&f, "/api/v1/active?sort=until&order=desc&limit=1").await;
    assert_eq!(targets(&a), ["1.2.3.4/32"], "permanent outlasts everything");
    let (_, a) = get_json(&f, "/api/v1/active?sort=since&limit=1").await;
    assert_eq!(targets(&a), ["203.0.113.9/32"], "newest first by default");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_sinks_kept_entries_guard_problems_refusals_and_uptime() {
    let f = populated(Options {
        broken_allowlist: true,
        ..Options::default()
    })
    .await;
    f.store()
        .note_kept(&Kept {
            sink: "fw".into(),
            target: common::t("192.0.2.200"),
            remote_id: Some("rule-7".into()),
            owner: "the old ExaFS script".into(),
            reason: "not netban's to remove".into(),
            expires: Some(now() + 3600),
            noticed: now(),
        })
        .unwrap();
    f.store()
        .record_refusal(&common::t("127.0.0.2"), "sshd", "local", "loopback", now())
        .unwrap();
    let (status, s) = get_json(&f, "/api/v1/status").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["host_id"], "web-01");
    assert_eq!(s["leases"], 8);
    let fw = &s["sinks"][0];
    assert_eq!(fw["sink"], "fw");
    assert_eq!(fw["in_place"], 6, "{fw}");
    assert_eq!(fw["pending"], 1);
    assert_eq!(fw["removing"], 1);
    assert_eq!(fw["failing"], 0);
    assert_eq!(fw["kept"], 1);
    let lab = &s["sinks"][1];
    assert!(lab["failing"].as_u64().unwrap() >= 6, "{lab}");
    assert!(
        lab["last_error"]
            .as_str()
            .unwrap()
            .contains("<redacted>@exafs.example")
    );
    assert_eq!(s["kept"][0]["remote_id"], "rule-7");
    let problems = s["guard_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{s}");
    assert!(
        problems[0].as_str().unwrap().contains("not-a-network"),
        "{s}"
    );
    assert_eq!(s["refusals_24h"], 1);
    assert!(s["uptime"].as_i64().unwrap() >= 0);
    assert_eq!(s["stats"]["backend"], "sqlite");
    assert_eq!(s["cluster"], false);
}
