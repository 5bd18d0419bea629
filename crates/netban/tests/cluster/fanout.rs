//! fail2ban-clusterd's fanout messages with a real daemon: received bans are applied with the
//! configured bantime, this host's bans are announced in clusterd's format, and hostile
//! messages run nothing and make no lease. The fanout server is the harness's minimal one
//! (no registry reachable here ships the real one; shared/reference/cluster.md).

use std::time::Duration;

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::fanout::{FanoutClient, FanoutServer};
use netban_testsupport::runner::{Netban, read, tail};
use netban_testsupport::wait;

use crate::fleet::{NETBAN, WAIT};

#[test]
fn clusterd_messages_go_both_ways_and_hostile_ones_run_nothing() {
    let server = FanoutServer::start().unwrap_or_else(|e| panic!("fanout server: {e:#}"));
    let nb = Netban::new(
        NETBAN,
        &Config::new()
            .host_id("web-01")
            .log_file("netban.log", Some("debug"))
            .guard("protect_own_addresses = false")
            .section(
                "cluster.fanout",
                format!(
                    "server = \"{}\"\nchannel = \"Fail2ban\"\njails = [\"sshd\"]\nbantime = 900",
                    server.addr()
                ),
            )
            .sink(Sink::exec_to_file("sink.log")),
    );
    let _daemon = Daemon::start(&nb);
    let ctx = || tail(&nb.path("netban.log"), 30);
    wait::wait_until(
        "netban subscribed",
        WAIT,
        Duration::from_millis(50),
        ctx,
        || (server.subscribers("Fail2ban") == 1).then_some(()),
    );
    let mut clusterd = FanoutClient::connect(&server.addr()).expect("clusterd connects");
    clusterd.subscribe("Fail2ban").expect("subscribe");
    // Hostile: shell syntax, the whole Internet, another jail; then a real ban.
    for msg in [
        "jail=sshd, action=banip, ip=1.2.3.4;touch /tmp/netban-fanout-pwned",
        "jail=sshd, action=banip, ip=$(touch /tmp/netban-fanout-pwned)",
        "jail=sshd, action=banip, ip=0.0.0.0/0",
        "jail=postfix, action=banip, ip=198.51.100.91",
        "jail=sshd, action=banip, ip=198.51.100.90",
    ] {
        clusterd.announce("Fail2ban", msg).expect("announce");
    }
    let sink = nb.path("sink.log");
    wait::wait_until(
        "the clusterd ban is enforced",
        WAIT,
        Duration::from_millis(50),
        ctx,
        || {
            read(&sink)
                .contains("ban sshd 900 198.51.100.90")
                .then_some(())
        },
    );
    let list = nb.list();
    let targets: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["target"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(targets, ["198.51.100.90/32"], "{list:#}\n{}", ctx());
    assert!(!std::path::Path::new("/tmp/netban-fanout-pwned").exists());
    // This host's own ban goes out in clusterd's format.
    nb.expect(0, &["ban", "--jail", "sshd", "203.0.113.92"]);
    let heard = clusterd.messages("Fail2ban", Duration::from_secs(10));
    assert!(
        heard
            .iter()
            .any(|m| m.contains("action=banip") && m.contains("ip=203.0.113.92")),
        "{heard:?}\n{}",
        ctx()
    );
    // clusterd's unban lifts it.
    clusterd
        .announce("Fail2ban", "jail=sshd, action=unbanip, ip=198.51.100.90")
        .expect("announce");
    wait::wait_until(
        "the clusterd unban is enforced",
        WAIT,
        Duration::from_millis(50),
        ctx,
        || read(&sink).contains("unban 198.51.100.90").then_some(()),
    );
}
