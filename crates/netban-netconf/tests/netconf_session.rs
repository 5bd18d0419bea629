//! The NETCONF transport against the real netconfd behind a real OpenSSH sshd: host keys,
//! logins, both framings, the kept session, an outage, somebody else's lock, `netban check`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use netban_core::sink::Retry;
use netban_netconf::hostkey::HostKeyPolicy;
use netban_netconf::session::{Session, SessionOptions};
use netban_netconf::transport::{Endpoint, Login};
use netban_testsupport::netconfd::Netconfd;

fn sshd_log(nc: &Netconfd) -> String {
    std::fs::read_to_string(nc.dir().join("sshd.log")).unwrap_or_default()
}

#[tokio::test]
async fn unknown_or_changed_host_keys_are_refused_with_the_fingerprint() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let fp = nc.host_key_fingerprint().to_string();
    let cases = [
        (
            "unrelated known_hosts",
            {
                let mut c = config(&nc);
                c.known_hosts = Some(nc.unrelated_known_hosts());
                c
            },
            "is not in",
        ),
        (
            "changed key in known_hosts",
            {
                let mut c = config(&nc);
                c.known_hosts = Some(nc.wrong_known_hosts());
                c
            },
            "has changed",
        ),
        (
            "wrong pin",
            {
                let mut c = config(&nc);
                c.known_hosts = None;
                c.host_key = Some(nc.other_fingerprint());
                c
            },
            "is not the pinned one",
        ),
    ];
    for (what, c, want) in cases {
        let sink = sink_with(&c);
        let msg = all_failed(
            &sink.apply_batch(&[add("192.0.2.1")], within(20)).await,
            Retry::Later,
        );
        assert!(msg.contains(want), "{what}: {msg}");
        assert!(
            msg.contains(&fp),
            "{what}: the offered key's fingerprint is named: {msg}"
        );
        assert!(
            msg.contains(&format!("127.0.0.1:{}", nc.port())),
            "{what}: {msg}"
        );
        let check = sink.check(within(20)).await.unwrap_err();
        assert!(check.message.contains(&fp), "{what}: {check:?}");
    }
    // Refused before any credential was offered.
    let log = sshd_log(&nc);
    assert!(
        !log.contains("Accepted") && !log.contains("Failed"),
        "{log}"
    );
    // The right pin works.
    let mut c = config(&nc);
    c.known_hosts = None;
    c.host_key = Some(fp.clone());
    all_ok(
        &sink_with(&c)
            .apply_batch(&[add("192.0.2.1")], within(20))
            .await,
    );
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.1/32"]);
}

#[tokio::test]
async fn password_and_key_logins() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let mut c = config(&nc);
    c.key_file = None;
    c.password_file = Some(nc.password_file());
    all_ok(
        &sink_with(&c)
            .apply_batch(&[add("192.0.2.1")], within(20))
            .await,
    );
    assert!(sshd_log(&nc).contains("Accepted password for netban-test"));

    c.password_file = Some(nc.wrong_password_file());
    let msg = all_failed(
        &sink_with(&c)
            .apply_batch(&[add("192.0.2.2")], within(20))
            .await,
        Retry::Later,
    );
    assert!(
        msg.contains("refused the login of user \"netban-test\" with password"),
        "{msg}"
    );
    assert!(
        !msg.contains(nc.password()) && !msg.contains("not-the-password"),
        "no secret in {msg}"
    );

    let mut c = config(&nc);
    all_ok(
        &sink_with(&c)
            .apply_batch(&[add("192.0.2.3")], within(20))
            .await,
    );
    assert!(sshd_log(&nc).contains("Accepted publickey for netban-test"));
    c.key_file = Some(nc.unauthorized_key_file());
    let msg = all_failed(
        &sink_with(&c)
            .apply_batch(&[add("192.0.2.4")], within(20))
            .await,
        Retry::Later,
    );
    assert!(msg.contains("with key"), "{msg}");
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.1/32", "192.0.2.3/32"]);
}

#[tokio::test]
async fn both_framings_work() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let mut c = config(&nc);
    let line = sink_with(&c).check(within(20)).await.expect("check");
    assert!(line.contains("base:1.1 chunked framing"), "{line}");
    c.base11 = false;
    let sink = sink_with(&c);
    let line = sink.check(within(20)).await.expect("check");
    assert!(line.contains("base:1.0 end-of-message framing"), "{line}");
    all_ok(
        &sink
            .apply_batch(&[add("192.0.2.1"), add("192.0.2.2")], within(20))
            .await,
    );
    // The preset removes with nc:operation="delete", which netconfd accepts in base:1.0
    // ("remove" it refuses there).
    all_ok(&sink.apply_batch(&[remove("192.0.2.1")], within(20)).await);
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.2/32"]);
    let log = std::fs::read_to_string(nc.log_path()).unwrap();
    assert!(log.contains("now active (base:1.0)") && log.contains("now active (base:1.1)"));
}

#[tokio::test]
async fn one_session_is_kept_between_batches() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    for i in 1..=5 {
        all_ok(
            &sink
                .apply_batch(&[add(&format!("192.0.2.{i}"))], within(20))
                .await,
        );
    }
    sink.list(within(20)).await.unwrap();
    assert_eq!(
        sshd_log(&nc).matches("Accepted publickey").count(),
        1,
        "one login"
    );
    assert_eq!(nc.commits(), 5);
}

#[tokio::test]
async fn the_device_going_away_and_coming_back() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    all_ok(&sink.apply_batch(&[add("192.0.2.1")], within(20)).await);
    nc.stop();
    let msg = all_failed(
        &sink
            .apply_batch(&[add("192.0.2.2"), remove("192.0.2.1")], within(10))
            .await,
        Retry::Soon,
    );
    assert!(msg.starts_with("edge-1: "), "{msg}");
    // Down: connection refused, retried soon (and not hammered: the next call backs off).
    let msg = all_failed(
        &sink
            .apply_batch(
                &[add("192.0.2.2")],
                Instant::now() + Duration::from_millis(200),
            )
            .await,
        Retry::Soon,
    );
    assert!(
        msg.contains("not connected") || msg.contains("cannot connect"),
        "{msg}"
    );
    nc.start_again().expect("netconfd again");
    let began = Instant::now();
    all_ok(
        &sink
            .apply_batch(&[add("192.0.2.2"), remove("192.0.2.1")], within(60))
            .await,
    );
    assert!(began.elapsed() < Duration::from_secs(30));
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.2/32"]);
}

#[tokio::test]
async fn somebody_elses_lock_is_retried_soon() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    let mut operator = nc.client().open().expect("operator session");
    let r = operator
        .rpc("<lock><target><candidate/></target></lock>")
        .unwrap();
    assert!(r.contains("<ok/>"), "{r}");
    let msg = all_failed(
        &sink.apply_batch(&[add("192.0.2.1")], within(20)).await,
        Retry::Soon,
    );
    assert!(
        msg.starts_with("edge-1: the candidate of 127.0.0.1:")
            && msg.contains(
                "is locked by another session (session 1): somebody is editing the device; netban tries again soon"
            ),
        "{msg}"
    );
    drop(operator);
    // The device releases the lock when the operator's session ends; the engine retries soon.
    let deadline = within(20);
    loop {
        let out = sink.apply_batch(&[add("192.0.2.1")], within(20)).await;
        if out.iter().all(Result::is_ok) {
            break;
        }
        assert_eq!(all_failed(&out, Retry::Soon), msg);
        assert!(
            Instant::now() < deadline,
            "the lock was never released\n{}",
            nc.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.1/32"]);
}

#[tokio::test]
async fn check_reads_the_blocklist_and_counts_netbans_entries() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    all_ok(
        &sink
            .apply_batch(&[add("192.0.2.1"), add("192.0.2.2")], within(20))
            .await,
    );
    nc.add_entry("192.0.2.50/32", Some("by hand"));
    nc.add_entry("192.0.2.51/32", Some("netban:web-02:00ff sshd"));
    let line = sink.check(within(20)).await.expect("check");
    assert!(line.contains(nc.host_key_fingerprint()), "{line}");
    assert!(
        line.contains("4 entries in the blocklist: 2 netban's (this instance), 1 of other netban instances, 1 not netban's"),
        "{line}"
    );
}

#[tokio::test]
async fn hello_and_first_rpc_in_one_write_still_get_an_answer() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port: nc.port(),
        host_key: HostKeyPolicy::KnownHosts(nc.known_hosts()),
    };
    let login = netban_netconf::build::login(&config(&nc)).expect("key loads");
    assert!(matches!(login, Login::Key { .. }));
    for base11 in [true, false] {
        let options = SessionOptions {
            settle: Duration::ZERO,
            offer_base11: base11,
            ..SessionOptions::default()
        };
        for _ in 0..3 {
            let mut s = Session::open(&endpoint, &login, &options, within(20))
                .await
                .expect("session");
            let began = Instant::now();
            let r = s
                .rpc(
                    "get-config",
                    r#"<nc:get-config><nc:source><nc:running/></nc:source></nc:get-config>"#,
                    within(20),
                )
                .await
                .expect("answered");
            assert!(r.data.is_some());
            assert!(
                began.elapsed() < Duration::from_secs(5),
                "{:?}",
                began.elapsed()
            );
            s.close().await;
        }
    }
}
