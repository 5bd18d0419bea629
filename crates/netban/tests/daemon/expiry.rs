//! A ban ends on its own: the daemon deletes the rule when the ban's time is up, long before
//! ExaFS' own (10-minute rounded) expiry.

use std::time::{Duration, Instant};

use netban_testsupport::wait::wait_until;

use crate::env::Env;

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
    wait_until(
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
    let added = env.log_tail(200);
    assert!(
        added.contains("exafs: 198.51.100.77/32 added"),
        "netban logs the add\n{}",
        env.ctx()
    );
    let ended = banned_at + Duration::from_secs(2);
    wait_until(
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
