//! The statistics story, told once and run against every backend: SQLite in a temp dir and a
//! real redis-server (`stories!` below instantiates each story per backend). Each story is
//! what an operator would check in `netban stats`: exact counts by day, country, jail and AS
//! after bans; repeats counted as bans but not as targets; restores, extends, unbans, expiry
//! and peer leases changing nothing; re-ingesting changing nothing; days in the configured
//! zone; retention; several hosts in one answer with per-host numbers.

mod common;

use common::*;
use jiff::tz::TimeZone;
use netban_stats::{Cause, EventKind, Report};
use serde_json::json;

macro_rules! stories {
    ($backend:ident, $fixture:expr, [$($story:ident),* $(,)?]) => {
        mod $backend {
            use super::common::Fixture;
            $(
                #[tokio::test]
                async fn $story() {
                    let f = $fixture;
                    super::$story(&f).await;
                }
            )*
        }
    };
}

stories!(
    sqlite,
    Fixture::sqlite(),
    [
        counts_by_day_country_jail_and_asn_are_exact,
        a_repeated_ban_is_two_bans_of_one_target,
        restores_extends_unbans_expiry_and_peer_leases_change_nothing,
        ingesting_the_same_events_again_changes_nothing,
        days_follow_the_configured_zone,
        retention_forgets_old_days_only,
        top_asns_networks_and_offenders,
        two_hosts_one_answer_and_per_host_numbers,
        top_lists_of_the_default_window_follow_late_and_new_bans,
        the_summary_is_every_answer_of_the_window_at_once,
    ]
);

stories!(
    redis,
    Fixture::redis(),
    [
        counts_by_day_country_jail_and_asn_are_exact,
        a_repeated_ban_is_two_bans_of_one_target,
        restores_extends_unbans_expiry_and_peer_leases_change_nothing,
        ingesting_the_same_events_again_changes_nothing,
        days_follow_the_configured_zone,
        retention_forgets_old_days_only,
        top_asns_networks_and_offenders,
        two_hosts_one_answer_and_per_host_numbers,
        top_lists_of_the_default_window_follow_late_and_new_bans,
        the_summary_is_every_answer_of_the_window_at_once,
    ]
);

fn json_of(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

async fn counts_by_day_country_jail_and_asn_are_exact(f: &Fixture) {
    let stats = f.stats("web-01");
    let got = stats
        .ingest(&[
            ban(1, noon(2), "81.2.69.160", "sshd"),
            ban(2, noon(1), "89.160.20.128", "sshd"),
            ban(3, noon(1) + 60, "2001:218::1", "postfix"),
            ban(4, noon(0) - 3600, "1.2.3.4", "sshd"),
        ])
        .await
        .unwrap();
    assert_eq!(
        (got.counted, got.recorded.applied, got.last_id),
        (4, 4, Some(4))
    );
    let r = stats.report(3, now()).await.unwrap();
    assert_eq!(
        json_of(&r),
        json!({
            "days": 3, "total": 4, "targets": 4,
            "by_country": {"GB": 1, "JP": 1, "SE": 1, "unknown": 1},
            "by_jail": {"postfix": 1, "sshd": 3},
            "by_asn": {"AS29518": 1, "unknown": 3},
            "per_day": [
                {"day": day(2), "total": 1, "by_country": {"GB": 1}, "by_jail": {"sshd": 1}},
                {"day": day(1), "total": 2, "by_country": {"JP": 1, "SE": 1},
                 "by_jail": {"postfix": 1, "sshd": 1}},
                {"day": day(0), "total": 1, "by_country": {"unknown": 1}, "by_jail": {"sshd": 1}},
            ]
        })
    );
    // A shorter window sees only its days.
    let r = stats.report(1, now()).await.unwrap();
    assert_eq!((r.days, r.total, r.targets), (1, 1, 1));
}

async fn a_repeated_ban_is_two_bans_of_one_target(f: &Fixture) {
    let stats = f.stats("web-01");
    stats
        .ingest(&[
            ban(1, noon(3), "81.2.69.160", "sshd"),
            ban(2, noon(3), "89.160.20.128", "sshd"),
            ban(5, noon(1), "81.2.69.160", "sshd"),
        ])
        .await
        .unwrap();
    let r = stats.report(7, now()).await.unwrap();
    assert_eq!((r.total, r.targets), (3, 2));
    assert_eq!(r.by_country["GB"], 2);
    let top = stats
        .backend()
        .top_offenders(stats.window(7, now()), 10)
        .await
        .unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(
        (
            top[0].target.as_str(),
            top[0].bans,
            top[0].last_seen,
            top[0].country.as_str()
        ),
        ("81.2.69.160/32", 2, noon(1), "GB")
    );
    assert_eq!(
        (top[1].target.as_str(), top[1].bans),
        ("89.160.20.128/32", 1)
    );
    assert_eq!(
        (top[1].asn.as_str(), top[1].jail.as_str()),
        ("AS29518", "sshd")
    );
}

async fn restores_extends_unbans_expiry_and_peer_leases_change_nothing(f: &Fixture) {
    let stats = f.stats("web-01");
    let t = noon(1);
    stats
        .ingest(&[ban(1, t, "81.2.69.160", "sshd")])
        .await
        .unwrap();
    let before = stats.report(7, now()).await.unwrap();
    let mut peer = ban(6, t + 5, "89.160.20.128", "sshd");
    peer.origin = "web-02".into();
    peer.cause = Cause::Peer;
    let got = stats
        .ingest(&[
            // fail2ban restart: the ban comes back as a restore.
            event(
                2,
                t + 1,
                EventKind::Start,
                Cause::Restore,
                "81.2.69.160",
                "sshd",
            ),
            event(
                3,
                t + 2,
                EventKind::Extend,
                Cause::Ban,
                "81.2.69.160",
                "sshd",
            ),
            event(
                4,
                t + 3,
                EventKind::End,
                Cause::Unban,
                "81.2.69.160",
                "sshd",
            ),
            event(
                5,
                t + 4,
                EventKind::End,
                Cause::Expired,
                "81.2.69.160",
                "sshd",
            ),
            peer,
            event(
                7,
                t + 6,
                EventKind::Start,
                Cause::Adopt,
                "81.2.69.160",
                "sshd",
            ),
            event(
                8,
                t + 7,
                EventKind::End,
                Cause::Revoke,
                "81.2.69.160",
                "sshd",
            ),
        ])
        .await
        .unwrap();
    assert_eq!((got.read, got.counted, got.last_id), (7, 0, Some(8)));
    assert_eq!(stats.report(7, now()).await.unwrap(), before);
    assert_eq!(before.total, 1);
}

async fn ingesting_the_same_events_again_changes_nothing(f: &Fixture) {
    let stats = f.stats("web-01");
    let batch = vec![
        ban(10, noon(2), "81.2.69.160", "sshd"),
        ban(11, noon(2), "89.160.20.128", "sshd"),
        ban(12, noon(0), "2001:218::1", "sshd"),
    ];
    stats.ingest(&batch).await.unwrap();
    let once = stats.report(7, now()).await.unwrap();
    // The daemon crashed before committing its outbox cursor: the same batch comes again,
    // then an overlapping one.
    let again = stats.ingest(&batch).await.unwrap();
    assert_eq!((again.recorded.applied, again.recorded.duplicates), (0, 3));
    let overlap = stats
        .ingest(&[batch[2].clone(), ban(13, noon(0), "1.2.3.4", "sshd")])
        .await
        .unwrap();
    assert_eq!(
        (overlap.recorded.applied, overlap.recorded.duplicates),
        (1, 1)
    );
    let r = stats.report(7, now()).await.unwrap();
    assert_eq!(r.total, once.total + 1);
    assert_eq!(r.targets, 4);
    assert_eq!(stats.backend().mark("web-01").await.unwrap(), 13);
}

async fn days_follow_the_configured_zone(f: &Fixture) {
    // 23:30 UTC two days ago is already the next day in Tokyo (UTC+9).
    let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
    let stats = f.stats_in("web-01", tokyo.clone(), 400);
    let late = noon(2) + 11 * 3600 + 1800;
    stats
        .ingest(&[ban(1, late, "81.2.69.160", "sshd")])
        .await
        .unwrap();
    let r = stats.report(5, now()).await.unwrap();
    let expected = netban_stats::Day::of(late, &tokyo);
    assert_eq!(expected.to_string(), day(1), "the UTC day after");
    let hit: Vec<_> = r.per_day.iter().filter(|d| d.total > 0).collect();
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0].day, expected);
}

async fn retention_forgets_old_days_only(f: &Fixture) {
    let stats = f.stats_in("web-01", TimeZone::UTC, 30);
    stats
        .ingest(&[
            ban(1, noon(45), "81.2.69.160", "sshd"),
            ban(2, noon(10), "89.160.20.128", "sshd"),
            ban(3, noon(0), "2001:218::1", "sshd"),
        ])
        .await
        .unwrap();
    stats.prune(now()).await.unwrap();
    let r = stats.report(100, now()).await.unwrap();
    assert_eq!((r.total, r.targets), (2, 2));
    assert_eq!(r.by_country.get("GB"), None);
    // Pruning again removes nothing more.
    assert_eq!(stats.prune(now()).await.unwrap(), 0);
    assert_eq!(stats.report(100, now()).await.unwrap(), r);
}

async fn top_asns_networks_and_offenders(f: &Fixture) {
    let stats = f.stats("web-01");
    stats
        .ingest(&[
            ban(1, noon(1), "89.160.20.128", "sshd"),
            ban(2, noon(1), "89.160.20.129", "sshd"),
            ban(3, noon(0), "89.160.20.130", "postfix"),
            ban(4, noon(0), "1.2.3.4", "sshd"),
            ban(5, noon(0), "1.2.3.5", "sshd"),
            ban(6, noon(0), "1.128.0.1", "sshd"),
        ])
        .await
        .unwrap();
    let w = stats.window(7, now());
    let asns = stats.backend().top_asns(w, 10).await.unwrap();
    let asns: Vec<_> = asns
        .iter()
        .map(|a| (a.asn.as_str(), a.org.as_deref(), a.bans))
        .collect();
    assert_eq!(
        asns,
        [
            ("AS29518", Some("Bredband2 AB"), 3),
            ("unknown", None, 2),
            ("AS1221", Some("Telstra Pty Ltd"), 1),
        ]
    );
    let nets = stats.backend().top_networks(w, 2).await.unwrap();
    let nets: Vec<_> = nets
        .iter()
        .map(|n| {
            (
                n.network.as_str(),
                n.bans,
                n.country.as_str(),
                n.asn.as_str(),
            )
        })
        .collect();
    // The ASN database's network; without ASN data, the /24.
    assert_eq!(
        nets,
        [
            ("89.160.0.0/17", 3, "SE", "AS29518"),
            ("1.2.3.0/24", 2, "unknown", "unknown")
        ]
    );
    let (_, details) = stats.summary(7, now(), 1).await.unwrap().into_parts();
    assert_eq!(details.top_asns.len(), 1);
    assert_eq!(details.top_offenders.len(), 1);
    assert_eq!(details.hosts.len(), 1);
    assert_eq!(details.hosts[0].bans, 6);
    assert_eq!(details.hosts[0].by_jail["postfix"], 1);
    assert_eq!(details.hosts[0].last_seen, Some(noon(0)));
}

async fn two_hosts_one_answer_and_per_host_numbers(f: &Fixture) {
    let web1 = f.stats("web-01");
    let web2 = f.stats("web-02");
    // Each host's outbox ids start at 1: the marks are per host.
    web1.ingest(&[
        ban(1, noon(1), "81.2.69.160", "sshd"),
        ban(2, noon(0), "89.160.20.128", "sshd"),
    ])
    .await
    .unwrap();
    web2.ingest(&[
        ban(1, noon(0), "81.2.69.160", "postfix"),
        ban(2, noon(0), "2001:218::1", "postfix"),
        ban(3, noon(0), "1.2.3.4", "postfix"),
    ])
    .await
    .unwrap();
    // Retries on either host change nothing.
    web2.ingest(&[ban(3, noon(0), "1.2.3.4", "postfix")])
        .await
        .unwrap();
    let from1 = web1.report(7, now()).await.unwrap();
    let from2 = web2.report(7, now()).await.unwrap();
    assert_eq!(from1, from2, "any host reads the same fleet answer");
    assert_eq!((from1.total, from1.targets), (5, 4));
    assert_eq!(from1.by_jail["postfix"], 3);
    let hosts = web1.backend().hosts(web1.window(7, now())).await.unwrap();
    let hosts: Vec<_> = hosts
        .iter()
        .map(|h| (h.host.as_str(), h.bans, h.by_jail.clone()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("web-02", 3, [("postfix".to_string(), 3)].into()),
            ("web-01", 2, [("sshd".to_string(), 2)].into()),
        ]
    );
    assert_eq!(web1.backend().mark("web-01").await.unwrap(), 2);
    assert_eq!(web1.backend().mark("web-02").await.unwrap(), 3);
}

async fn top_lists_of_the_default_window_follow_late_and_new_bans(f: &Fixture) {
    // 30 days is the dashboard's default window (Redis keeps a rolling list for it); 31 days
    // is summed day by day. Both must agree after bans arrive in any order.
    let stats = f.stats("web-01");
    stats
        .ingest(&[
            ban(1, noon(29), "81.2.69.160", "sshd"),
            ban(2, noon(10), "81.2.69.160", "sshd"),
            ban(3, noon(5), "89.160.20.128", "sshd"),
        ])
        .await
        .unwrap();
    let w30 = stats.window(30, now());
    let first = stats.backend().top_offenders(w30, 10).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(
        (first[0].target.as_str(), first[0].bans),
        ("81.2.69.160/32", 2)
    );
    // A late ban for a day inside the window, a ban today, one outside the window.
    stats
        .ingest(&[
            ban(4, noon(20), "89.160.20.128", "sshd"),
            ban(5, noon(0), "89.160.20.128", "postfix"),
            ban(6, noon(40), "89.160.20.128", "sshd"),
        ])
        .await
        .unwrap();
    let top30 = stats.backend().top_offenders(w30, 10).await.unwrap();
    let summary: Vec<_> = top30
        .iter()
        .map(|o| (o.target.as_str(), o.bans, o.last_seen, o.jail.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("89.160.20.128/32", 3, noon(0), "postfix"),
            ("81.2.69.160/32", 2, noon(10), "sshd")
        ]
    );
    let nets = stats.backend().top_networks(w30, 10).await.unwrap();
    let nets: Vec<_> = nets.iter().map(|n| (n.network.as_str(), n.bans)).collect();
    assert_eq!(nets, [("89.160.0.0/17", 3), ("81.2.69.0/24", 2)]);
    let w31 = stats.window(31, now());
    let top31 = stats.backend().top_offenders(w31, 10).await.unwrap();
    assert_eq!(top31, top30);
    // A 30-day window that ends yesterday is answered too (summed, not rolled).
    let yesterday = stats.window(30, now() - 86_400);
    let older = stats.backend().top_offenders(yesterday, 10).await.unwrap();
    // Equal bans: the most recent first.
    assert_eq!(
        (older[0].target.as_str(), older[0].bans),
        ("89.160.20.128/32", 2)
    );
    assert_eq!(
        (older[1].target.as_str(), older[1].bans),
        ("81.2.69.160/32", 2)
    );
}

async fn the_summary_is_every_answer_of_the_window_at_once(f: &Fixture) {
    // What a dashboard refresh and the `netban stats` table ask in one call (SQLite answers it
    // in one pass over its rollups): the same as each answer asked alone.
    let web1 = f.stats("web-01");
    let web2 = f.stats("web-02");
    web1.ingest(&[
        ban(1, noon(3), "81.2.69.160", "sshd"),
        ban(2, noon(1), "89.160.20.128", "sshd"),
        ban(3, noon(1), "89.160.20.129", "postfix"),
        ban(4, noon(0), "81.2.69.160", "sshd"),
        ban(5, noon(0), "2001:218::1", "sshd"),
        ban(6, noon(9), "1.2.3.4", "sshd"),
    ])
    .await
    .unwrap();
    web2.ingest(&[
        ban(1, noon(0), "1.2.3.4", "postfix"),
        ban(2, noon(2), "81.2.69.160", "nginx"),
    ])
    .await
    .unwrap();
    let b = web1.backend();
    for (days, limit) in [(7, 10), (7, 1), (30, 2), (31, 10)] {
        let w = web1.window(days, now());
        let sum = web1.summary(days, now(), limit).await.unwrap();
        let what = format!("{days} days, {limit} rows");
        assert_eq!(sum.report, b.report(w).await.unwrap(), "{what}");
        assert_eq!(sum.top_asns, b.top_asns(w, limit).await.unwrap(), "{what}");
        assert_eq!(
            sum.top_networks,
            b.top_networks(w, limit).await.unwrap(),
            "{what}"
        );
        assert_eq!(
            sum.top_offenders,
            b.top_offenders(w, limit).await.unwrap(),
            "{what}"
        );
        assert_eq!(sum.hosts, b.hosts(w).await.unwrap(), "{what}");
    }
    let sum = web1.summary(7, now(), 10).await.unwrap();
    assert_eq!((sum.report.total, sum.report.targets), (7, 5));
    assert_eq!(
        (
            sum.top_offenders[0].target.as_str(),
            sum.top_offenders[0].bans
        ),
        ("81.2.69.160/32", 3)
    );
    let asns: Vec<_> = sum
        .top_asns
        .iter()
        .map(|a| (a.asn.as_str(), a.bans))
        .collect();
    assert_eq!(asns, [("unknown", 5), ("AS29518", 2)]);
    let hosts: Vec<_> = sum
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.bans))
        .collect();
    assert_eq!(hosts, [("web-01", 5), ("web-02", 2)]);
    assert_eq!(sum.hosts[1].by_jail["nginx"], 1);
}
