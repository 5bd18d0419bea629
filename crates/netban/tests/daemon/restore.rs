//! fail2ban restarts and restores bans already in ExaFS, with the daemon up: no ExaFS write.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use netban_testsupport::exafs::now_unix;
use netban_testsupport::wait::wait_until;

use crate::env::{Env, listed, listings, metric};
use crate::ops::{Addr, Op, addr, assert_all_ok, run_ops};
use crate::rules::{exafs_exactly, wait_exafs_exactly};

/// fail2ban restarts and restores 200 bans already in ExaFS: no POST at all.
#[test]
fn restored_bans_already_in_place_cost_no_exafs_call() {
    let env = Env::new();
    let daemon = env.start_daemon();
    let time = format!("{}.25", now_unix() - 60);
    let addrs: Vec<Addr> = (0..100).chain(500..560).chain(760..800).map(addr).collect();
    assert_eq!(addrs.len(), 200);
    let with = |restored: &str| -> Vec<Op> {
        addrs
            .iter()
            .map(|a| Op {
                extra: vec![
                    "--bantime".into(),
                    "86400".into(),
                    "--time".into(),
                    time.clone(),
                    "--restored".into(),
                    restored.into(),
                ],
                ..Op::ban(a.clone(), "sshd")
            })
            .collect()
    };
    let progress = AtomicUsize::new(0);
    assert_all_ok(&run_ops(&env.nb, &with("0"), 4, &progress), || env.ctx());
    let expected: BTreeSet<String> = addrs.iter().map(|a| a.target.clone()).collect();
    wait_exafs_exactly(&env, &expected, Duration::from_secs(90), "200 bans");
    // Let the daemon finish recording (status: all in place), then count from zero.
    wait_until(
        "all 200 in place",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let out = env.nb.expect(0, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
            (v["sinks"][0]["in_place"] == 200 && v["sinks"][0]["pending"] == 0).then_some(())
        },
    );
    env.proxy.reset_counts();
    let passes_before = metric(&daemon.metrics(), "netban_reconcile_passes_total").unwrap_or(0.0);

    let restored = with("1");
    assert_all_ok(&run_ops(&env.nb, &restored, 4, &progress), || env.ctx());
    // Wait until the daemon ran passes after the last poke, including a repair (a listing).
    let listed_before = listings(&env.proxy);
    wait_until(
        "the daemon runs passes (with a repair) after the restored bans",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let passes = metric(&daemon.metrics(), "netban_reconcile_passes_total").unwrap_or(0.0);
            (passes >= passes_before + 2.0 && listings(&env.proxy) > listed_before).then_some(())
        },
    );
    let posts = env.proxy.count("POST", "/api");
    let deletes = env.proxy.count("DELETE", "/api");
    assert_eq!(
        (posts, deletes),
        (0, 0),
        "restored bans already in place must cost no POST/DELETE\n{}",
        env.ctx()
    );
    assert!(
        exafs_exactly(&env.exafs, &expected).is_ok(),
        "{}",
        env.ctx()
    );
    assert_eq!(listed(&env.nb), expected);
}
