//! The statistics in production shape: a real fail2ban runs the Python action
//! (`netban-socket.py`), a real `netban daemon` takes the bans and counts them (its stats
//! component drains the outbox), with countries and ASNs from MaxMind's test databases.
//!
//! What an operator would notice in `netban stats`: every ban fail2ban made counts once, a
//! daemon restart loses none and counts none twice, a fail2ban restart (which restores every
//! ban) counts nothing, and a ban after an unban is a new ban.

use std::path::Path;
use std::time::Duration;

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::fail2ban::{Fail2ban, Options};
use netban_testsupport::runner::{Netban, read};
use netban_testsupport::wait::wait_until;

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

fn geoip(file: &str) -> String {
    format!(
        "{}/../netban-stats/testdata/geoip/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn stats(nb: &Netban) -> serde_json::Value {
    let out = nb.expect(0, &["stats", "--days", "7", "--json"]);
    serde_json::from_slice(&out.stdout).expect("stats --json is JSON")
}

fn sink_has(sink: &Path, line: &str) -> usize {
    read(sink).lines().filter(|l| *l == line).count()
}

#[test]
fn fail2ban_bans_count_once_across_daemon_and_fail2ban_restarts() {
    let nb = Netban::new(
        env!("CARGO_BIN_EXE_netban"),
        &Config::new()
            .host_id("web-01")
            .guard("protect_own_addresses = false")
            .section(
                "stats",
                format!(
                    "country_db = {:?}\nasn_db = {:?}",
                    geoip("GeoLite2-Country-Test.mmdb"),
                    geoip("GeoLite2-ASN-Test.mmdb")
                ),
            )
            .log_file("netban.log", Some("debug"))
            .sink(Sink::exec_to_file("sink.log")),
    );
    let sink = nb.path("sink.log");
    let mut daemon = Daemon::start(&nb);
    let mut f2b = Fail2ban::start(
        Options::netban_socket(env!("CARGO_BIN_EXE_netban"), nb.config(), &["sshd"])
            .expect("dist/fail2ban/action.d/netban-socket.py"),
    )
    .expect("start fail2ban with the Python action");
    let diag = |f2b: &Fail2ban| {
        format!(
            "--- sink ---\n{}\n--- netban log ---\n{}\n{}",
            read(&sink),
            read(&nb.path("netban.log")),
            f2b.log_tail(40)
        )
    };
    let delivered = |f2b: &Fail2ban, line: &str, times: usize| {
        wait_until(
            &format!("{line:?} in the sink {times} times"),
            WAIT,
            POLL,
            || diag(f2b),
            || (sink_has(&sink, line) >= times).then_some(()),
        )
    };

    f2b.ban("sshd", "81.2.69.160");
    f2b.ban("sshd", "89.160.20.128");
    delivered(&f2b, "ban sshd 600 81.2.69.160", 1);
    delivered(&f2b, "ban sshd 600 89.160.20.128", 1);

    // The daemon restarts; the next ban goes through the new one.
    daemon.stop(WAIT).expect("the daemon stops on SIGTERM");
    daemon = Daemon::start(&nb);
    f2b.ban("sshd", "2001:218::1");
    delivered(&f2b, "ban sshd 600 2001:218::1", 1);

    // fail2ban restarts and restores its three bans: no new ban anywhere.
    f2b.restart().expect("restart fail2ban");

    // An unban and a ban again: a new ban.
    f2b.unban("sshd", "89.160.20.128");
    delivered(&f2b, "unban 89.160.20.128", 1);
    f2b.ban("sshd", "89.160.20.128");
    delivered(&f2b, "ban sshd 600 89.160.20.128", 2);

    // The daemon counts in the background; the last ban counted means every earlier event
    // (the restores included) has been read.
    let v = wait_until(
        "the last ban counted",
        WAIT,
        POLL,
        || diag(&f2b),
        || {
            let v = stats(&nb);
            (v["by_country"]["SE"] == 2).then_some(v)
        },
    );
    assert_eq!(v["total"], 4, "four bans, the restores not counted: {v}");
    assert_eq!(v["targets"], 3, "{v}");
    assert_eq!(v["by_country"]["GB"], 1, "{v}");
    assert_eq!(v["by_country"]["JP"], 1, "{v}");
    assert_eq!(v["by_jail"]["sshd"], 4, "{v}");
    assert_eq!(v["by_asn"]["AS29518"], 2, "{v}");
    assert_eq!(v["by_asn"]["unknown"], 2, "{v}");
    drop(daemon);
}
