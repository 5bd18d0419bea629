//! Drift: a rule deleted behind netban's back comes back within a repair cycle; rules netban
//! did not make (a human's, another host's, ones its state has no record of) are left alone.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use netban_testsupport::exafs::now_unix;
use netban_testsupport::wait::wait_until;

use crate::env::{Env, listings};
use crate::rules::{active_rules, wait_exafs_exactly};

/// A rule deleted behind netban's back comes back within a repair cycle; a human's rule and
/// another host's netban rule are never touched; a rule with this host's mark that no lease
/// wants is removed.
#[test]
fn drift_is_repaired_and_foreign_rules_are_left_alone() {
    let env = Env::new();
    let _daemon = env.start_daemon();
    let targets = ["198.51.100.11/32", "203.0.113.12/32", "2001:db8::13/128"];
    for t in ["198.51.100.11", "203.0.113.12", "2001:db8::13"] {
        env.nb.expect(0, &["ban", "--jail", "sshd", t]);
    }
    let expected: BTreeSet<String> = targets.iter().map(|t| t.to_string()).collect();
    wait_exafs_exactly(&env, &expected, Duration::from_secs(30), "3 bans");

    // A human deletes one of netban's rules.
    let victim = active_rules(&env.exafs, "203.0.113.12/32")
        .pop()
        .expect("the rule for 203.0.113.12");
    let deleted_at = Instant::now();
    env.exafs.delete_rule(victim.id);
    assert!(env.exafs.rule(victim.id).is_none(), "ExaFS deleted it");
    let back = wait_until(
        "netban re-creates the rule deleted behind its back (resync_interval = 2 s)",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || env.ctx(),
        || active_rules(&env.exafs, "203.0.113.12/32").pop(),
    );
    eprintln!(
        "drift: rule re-created as #{} after {:?}",
        back.id,
        deleted_at.elapsed()
    );
    assert_eq!(
        back.comment,
        Some(format!("{} sshd", env.nb.mark())),
        "re-created by netban with its mark and comment"
    );

    // Rules netban must not delete: a human's, another host's netban rule, and two with this
    // host's mark that this state has no record of (one from netban 0.1, one with this very
    // state's mark, as after a restore from an old backup): kept until they expire, loudly.
    let far = now_unix() + 30 * 86_400;
    let human = env
        .exafs
        .create_foreign_rule("198.51.100.200/32", far, "made by a human");
    let other_host =
        env.exafs
            .create_foreign_rule("198.51.100.201/32", far, "netban other-host sshd");
    let stray = env
        .exafs
        .create_foreign_rule("198.51.100.202/32", far, "netban test-host sshd");
    let restored =
        env.exafs
            .create_foreign_rule("198.51.100.203/32", far, &format!("{} sshd", env.nb.mark()));
    let before = (
        env.exafs.rule(human).expect("human rule"),
        env.exafs.rule(other_host).expect("other host's rule"),
        env.exafs.rule(stray).expect("0.1 rule"),
        env.exafs.rule(restored).expect("restored state's rule"),
    );

    // Let at least 3 full repairs happen after they exist.
    let base = listings(&env.proxy);
    wait_until(
        "3 repair passes (GET /api/v3/rules)",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || env.ctx(),
        || (listings(&env.proxy) >= base + 3).then_some(()),
    );
    let after = (
        env.exafs.rule(human),
        env.exafs.rule(other_host),
        env.exafs.rule(stray),
        env.exafs.rule(restored),
    );
    assert_eq!(
        after.0.as_ref(),
        Some(&before.0),
        "a rule made by a human must be left exactly as it was\n{}",
        env.ctx()
    );
    assert_eq!(
        after.1.as_ref(),
        Some(&before.1),
        "another host's netban rule must be left exactly as it was\n{}",
        env.ctx()
    );
    assert_eq!(
        (after.2.as_ref(), after.3.as_ref()),
        (Some(&before.2), Some(&before.3)),
        "rules with this host's mark that the state does not know are kept (issue 6)\n{}",
        env.ctx()
    );
    // ... and said so loudly.
    let status = env.nb.expect(0, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    for t in ["198.51.100.202/32", "198.51.100.203/32"] {
        assert!(
            text.contains(&format!("WARNING: exafs {t} stays on the sink")),
            "{t}: {text}"
        );
    }
    assert!(
        !text.contains("198.51.100.200") && !text.contains("198.51.100.201"),
        "{text}"
    );
    // netban's own rules: still exactly one each, active.
    for t in targets {
        assert_eq!(
            active_rules(&env.exafs, t).len(),
            1,
            "{t}: one active rule\n{}",
            env.ctx()
        );
    }
    let total = env.exafs.rtbh_rules().len();
    assert_eq!(total, 7, "3 of netban's + 4 it leaves\n{}", env.ctx());
}
