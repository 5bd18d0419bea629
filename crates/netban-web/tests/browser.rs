//! The dashboard in a real headless Chromium (Debian `chromium`, driven through Debian's
//! `chromedriver` over WebDriver), served by the real listener over a real store, engine
//! and SQLite statistics: it loads with no console error and no request outside its
//! origin, the charts hold the API's series, the blocked-now table filters as one types,
//! the token login refuses a wrong token and opens the page with the right one, and dark,
//! light and a phone's width all render. Screenshots go to `target/netban-screenshots/`
//! (the path is printed): look at them.

mod common;

use common::page::{WAIT, check_stacked, errors, month, open, rows, save, series, top};
use common::{Fixture, Options, TOKEN, get_json};
use netban_testsupport::chromium::Chromedriver;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_charts_and_table_in_light_dark_and_on_a_phone() {
    let f = Fixture::start(Options::default()).await;
    f.populate().await;
    month(&f).await;
    let driver = Chromedriver::start().unwrap();
    let s = driver.session(1280, 900).await.unwrap();
    s.prefer_dark(false).await.unwrap();
    open(&s, &f).await;
    assert_eq!(errors(&s).await, Vec::<String>::new(), "console errors");

    // Nothing outside the origin, and every request went somewhere.
    let origin = f.url("");
    let resources: Vec<String> = serde_json::from_value(
        s.execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            json!([]),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(resources.len() >= 8, "{resources:?}");
    for r in &resources {
        assert!(r.starts_with(&origin), "{r} is outside {origin}");
    }

    // The charts hold the API's numbers.
    let (_, summary) = get_json(&f, "/api/v1/stats/summary?days=30&limit=10").await;
    let report = &summary["report"];
    let (labels, sets) = series(&s, "chart-country-days").await;
    check_stacked(report, "by_country", &labels, &sets);
    let (labels, sets) = series(&s, "chart-jail-days").await;
    check_stacked(report, "by_jail", &labels, &sets);
    let (labels, sets) = series(&s, "chart-country").await;
    assert_eq!(labels, top(&report["by_country"], 8));
    let sum: u64 = sets[0].1.iter().sum();
    assert_eq!(sum, report["total"].as_u64().unwrap());
    let asn_rows = s
        .execute(
            "return document.querySelectorAll('#top-asns tbody tr').length",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        asn_rows,
        json!(summary["top_asns"].as_array().unwrap().len())
    );
    save(&s, "dashboard-light", 1280).await;

    // The table: every target, then what the search box says.
    let all = rows(&s).await;
    assert_eq!(all.len(), 8, "{all:?}");
    let search = s.find("#search").await.unwrap();
    s.type_into(&search, "89.160").await.unwrap();
    s.wait_for(
        "const r = document.querySelectorAll('#active tbody tr[data-target]'); \
         return r.length === 1 && r[0].dataset.target === '89.160.20.128/32'",
        WAIT,
    )
    .await
    .unwrap();
    assert!(
        s.execute(
            "return document.getElementById('active-count').textContent",
            json!([])
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .contains("1 of 8")
    );
    s.clear(&search).await.unwrap();
    s.type_into(&search, "failing").await.unwrap();
    s.wait_for(
        "return document.querySelectorAll('#active tbody tr[data-target]').length === 6",
        WAIT,
    )
    .await
    .unwrap();
    s.clear(&search).await.unwrap();
    s.type_into(&search, " ").await.unwrap();
    s.wait_for(
        "return document.querySelectorAll('#active tbody tr[data-target]').length === 8",
        WAIT,
    )
    .await
    .unwrap();
    // Sorting by target, from the header.
    let th = s.find("#active thead th").await.unwrap();
    s.click(&th).await.unwrap();
    s.wait_for(
        "return document.querySelector('#active tbody tr[data-target]').dataset.target === '1.2.3.4/32'",
        WAIT,
    )
    .await
    .unwrap();

    // The time range: 7 days redraws with 7 bars.
    let b7 = s.find("#range button[data-days='7']").await.unwrap();
    s.click(&b7).await.unwrap();
    s.wait_for(
        "return Chart.getChart('chart-jail-days').data.labels.length === 7",
        WAIT,
    )
    .await
    .unwrap();
    let b30 = s.find("#range button[data-days='30']").await.unwrap();
    s.click(&b30).await.unwrap();
    s.wait_for(
        "return Chart.getChart('chart-jail-days').data.labels.length === 30",
        WAIT,
    )
    .await
    .unwrap();

    // Dark: the system's preference, then the toggle back to light and to dark again.
    s.prefer_dark(true).await.unwrap();
    let bg = "return getComputedStyle(document.body).backgroundColor";
    s.wait_for(&format!("{bg} === 'rgb(15, 20, 25)'"), WAIT)
        .await
        .unwrap();
    save(&s, "dashboard-dark", 1280).await;
    let toggle = s.find("#theme").await.unwrap();
    s.click(&toggle).await.unwrap();
    s.wait_for(&format!("{bg} === 'rgb(244, 246, 249)'"), WAIT)
        .await
        .unwrap();
    let legend = s
        .execute(
            "return Chart.getChart('chart-country').options.plugins.legend.labels.color",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(legend, "#1b1f24", "the charts follow the theme");
    s.click(&toggle).await.unwrap();
    s.wait_for(&format!("{bg} === 'rgb(15, 20, 25)'"), WAIT)
        .await
        .unwrap();
    assert_eq!(errors(&s).await, Vec::<String>::new(), "console errors");
    s.close().await.unwrap();

    // A phone.
    let p = driver.session(390, 844).await.unwrap();
    p.prefer_dark(false).await.unwrap();
    open(&p, &f).await;
    let overflow = p
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(0), "no sideways scrolling of the page");
    save(&p, "dashboard-phone", 390).await;
    assert_eq!(errors(&p).await, Vec::<String>::new(), "console errors");
    p.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_statistics_off_the_page_says_so_and_still_shows_what_is_blocked() {
    let f = Fixture::start(Options {
        stats: false,
        ..Options::default()
    })
    .await;
    f.populate().await;
    let driver = Chromedriver::start().unwrap();
    let s = driver.session(1280, 900).await.unwrap();
    s.prefer_dark(false).await.unwrap();
    open(&s, &f).await;
    let visible = s
        .execute(
            "return [!document.getElementById('stats-off').classList.contains('hidden'), \
                     document.getElementById('charts').classList.contains('hidden')]",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(visible, json!([true, true]));
    assert_eq!(rows(&s).await.len(), 8);
    assert_eq!(errors(&s).await, Vec::<String>::new(), "console errors");
    save(&s, "dashboard-stats-off", 1280).await;
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_form_refuses_a_wrong_token_and_opens_the_page_with_the_right_one() {
    let f = Fixture::start(Options {
        token: true,
        ..Options::default()
    })
    .await;
    f.populate().await;
    *f.backend.cluster.lock().unwrap() = Some(cluster_status());
    let driver = Chromedriver::start().unwrap();
    let s = driver.session(1280, 900).await.unwrap();
    s.prefer_dark(false).await.unwrap();
    s.goto(&f.url("/")).await.unwrap();
    let input = s.find("#token").await.unwrap();
    s.type_into(&input, "not-the-token").await.unwrap();
    let button = s.find("#login").await.unwrap();
    s.click(&button).await.unwrap();
    s.wait_for(
        "return document.getElementById('message')?.textContent.includes('not the one')",
        WAIT,
    )
    .await
    .unwrap();
    save(&s, "login-refused", 1280).await;
    // The failed login's 401 is the only error the browser may log.
    for e in errors(&s).await {
        assert!(e.contains("/login") && e.contains("401"), "{e}");
    }
    let input = s.find("#token").await.unwrap();
    s.type_into(&input, TOKEN).await.unwrap();
    let button = s.find("#login").await.unwrap();
    s.click(&button).await.unwrap();
    s.wait_for("return document.body.dataset.loaded === 'true'", WAIT)
        .await
        .unwrap();
    let seen = s
        .execute(
            "return [!document.getElementById('logout').classList.contains('hidden'), \
                     !document.getElementById('cluster-panel').classList.contains('hidden'), \
                     document.querySelectorAll('#cluster-peers tbody tr').length, \
                     document.cookie]",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        json!([true, true, 2, ""]),
        "HttpOnly: no script sees the cookie"
    );
    // The panel says what the operator needs of the cluster: links, backlog, lag, locks, peers.
    let panel = s
        .execute(
            "return document.getElementById('cluster-panel').textContent",
            json!([]),
        )
        .await
        .unwrap();
    let panel = panel.as_str().unwrap_or_default();
    for want in [
        "DOWN: connection refused",
        "3 events waiting in the outbox",
        "12 s behind the stream",
        "this host writes it (holds the lock)",
        "web-03 (not trusted)",
        "guard 1, rate 2",
    ] {
        assert!(
            panel.contains(want),
            "{want:?} in the cluster panel: {panel}"
        );
    }
    assert_eq!(errors(&s).await, Vec::<String>::new(), "console errors");
    save(&s, "dashboard-logged-in-cluster", 1280).await;
    let out = s.find("#logout").await.unwrap();
    s.click(&out).await.unwrap();
    s.wait_for("return !!document.getElementById('token')", WAIT)
        .await
        .unwrap();
    s.close().await.unwrap();
}

/// A cluster status as the daemon serves it (netban_cluster's own type, serialized).
fn cluster_status() -> serde_json::Value {
    use netban_cluster::counts::Counts;
    use netban_cluster::status::{BusStatus, ClusterStatus, LinkStatus, PeerStatus};
    let now = common::now();
    let status = ClusterStatus {
        host: "web-01".into(),
        bus: Some(BusStatus {
            url: Some("redis://127.0.0.1:6379/".into()),
            publisher: LinkStatus {
                connected: true,
                since: Some(now - 3600),
                last_error: None,
            },
            receiver: LinkStatus {
                connected: false,
                since: Some(now - 30),
                last_error: Some("connection refused".into()),
            },
            publish_lag: 3,
            published: 120,
            cursor: Some(format!("{}-0", (now - 12) * 1000)),
            stream_head: Some(format!("{}-0", now * 1000)),
            lag_seconds: Some(12.0),
        }),
        fanout: None,
        peers: vec![
            PeerStatus {
                host: "web-02".into(),
                trusted: true,
                last_event: Some(now - 4),
                last_seen: Some(now - 4),
                counts: Counts {
                    accepted: 40,
                    rate: 2,
                    guard: 1,
                    ..Counts::default()
                },
                refused: 3,
                leases: 17,
                ..PeerStatus::default()
            },
            PeerStatus {
                host: "web-03".into(),
                trusted: false,
                last_seen: Some(now - 95),
                ..PeerStatus::default()
            },
        ],
        locks: vec![("exafs".into(), true)],
    };
    serde_json::to_value(status).expect("serializes")
}
