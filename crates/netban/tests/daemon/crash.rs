//! `kill -9` of the daemon at random moments during a burst of bans and unbans: nothing is
//! lost, nothing is duplicated, and nothing of netban's is left after everything is lifted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::env::{Env, listed, log_about, sync};
use crate::ops::{Addr, Op, Rng, addr, assert_all_ok, expected_after, random_ops, run_ops};
use crate::rules::exafs_exactly;

/// 300 bans and unbans over 60 addresses and 3 jails while the daemon is `kill -9`ed and
/// restarted 4 times at random moments: every call exits 0, and after a final restart and
/// `netban sync` ExaFS holds exactly the targets the operations leave banned, once each, with
/// no orphan; after unbanning all of them (and `netban sync`) no rule of netban's is left.
#[test]
fn kill_9_of_the_daemon_loses_and_duplicates_nothing() {
    let env = Env::new();
    let mut rng = Rng::new("crash");
    let addrs: Vec<Addr> = (0..20)
        .chain(250..260)
        .chain(500..520)
        .chain(750..760)
        .map(addr)
        .collect();
    let jails: Vec<String> = ["sshd", "postfix", "nginx"].map(String::from).to_vec();
    let ops = random_ops(&mut rng, 300, &addrs, &jails, 65);
    let kills = 4;
    let mut kill_at: Vec<usize> = (0..kills).map(|k| 20 + k * 65 + rng.below(40)).collect();
    kill_at.sort_unstable();
    let pauses: Vec<(u64, u64)> = (0..kills)
        .map(|_| (rng.below(150) as u64, rng.below(400) as u64))
        .collect();

    let daemon = Mutex::new(env.start_daemon());
    let progress = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let killed = AtomicUsize::new(0);
    let done = std::thread::scope(|s| {
        s.spawn(|| {
            for (at, (before, down)) in kill_at.iter().zip(&pauses) {
                // Bounded: stops when the burst is over.
                while progress.load(Ordering::SeqCst) < *at && !finished.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if finished.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(*before));
                let mut d = daemon.lock().unwrap_or_else(|p| p.into_inner());
                d.kill9();
                killed.fetch_add(1, Ordering::SeqCst);
                eprintln!(
                    "crash: SIGKILL after {} ops",
                    progress.load(Ordering::SeqCst)
                );
                // While it is down, bans are delivered inline by the CLI.
                std::thread::sleep(Duration::from_millis(*down));
                *d = env.start_daemon();
            }
        });
        let done = run_ops(&env.nb, &ops, 2, &progress);
        finished.store(true, Ordering::SeqCst);
        done
    });
    assert_all_ok(&done, || env.ctx());
    assert!(
        killed.load(Ordering::SeqCst) >= 3,
        "the daemon was killed only {} times during the burst",
        killed.load(Ordering::SeqCst)
    );

    let expected = expected_after(&ops);
    eprintln!(
        "crash: {} ops, {} kills, {} targets expected",
        ops.len(),
        killed.load(Ordering::SeqCst),
        expected.len()
    );
    // A final restart, then `netban sync` (it waits for the daemon's pass in flight).
    {
        let mut d = daemon.lock().unwrap_or_else(|p| p.into_inner());
        d.kill9();
        *d = env.start_daemon();
    }
    sync(&env);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list must show the bans the operations leave\n{}",
        env.ctx()
    );
    let converged = exafs_exactly(&env.exafs, &expected);
    let history = converged
        .as_ref()
        .err()
        .map(|e| log_about(&env.nb, e))
        .unwrap_or_default();

    // Then every remaining ban is lifted: nothing of netban's may stay in ExaFS (a leftover
    // rule would keep blackholing an address nobody bans any more).
    let mut last: BTreeMap<(String, String), &Op> = BTreeMap::new();
    for op in &ops {
        last.insert(op.key(), op);
    }
    let lift: Vec<Op> = last
        .values()
        .filter(|op| op.ban)
        .map(|op| Op::unban(op.addr.clone(), &op.jail))
        .collect();
    assert_all_ok(&run_ops(&env.nb, &lift, 2, &progress), || env.ctx());
    sync(&env);
    let lifted = exafs_exactly(&env.exafs, &BTreeSet::new());

    if converged.is_err() || lifted.is_err() {
        panic!(
            "after kill -9 x{} and netban sync (exit 0): {}\n\
             after unbanning everything and netban sync (exit 0): {}\n{}\n\
             --- netban log about the targets in error (first phase) ---\n{history}",
            killed.load(Ordering::SeqCst),
            converged.err().unwrap_or_else(|| "ok".into()),
            lifted.err().unwrap_or_else(|| "ok".into()),
            env.ctx(),
        );
    }
    drop(daemon);
}
