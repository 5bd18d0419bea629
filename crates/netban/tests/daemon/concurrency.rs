//! Hundreds of concurrent bans and unbans on the same addresses and jails, with the daemon and
//! without it (inline delivery under the lock, then `netban sync`): ExaFS, `netban list` and
//! the operations agree.

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use crate::env::{Env, listed, sync};
use crate::ops::{Addr, Op, Rng, addr, assert_all_ok, expected_after, random_ops, run_ops};
use crate::rules::{exafs_exactly, wait_exafs_exactly};

/// 400 bans/unbans over 40 addresses and 8 jails, 16 processes at a time; returns the ops.
fn concurrent_burst(env: &Env, rng: &mut Rng) -> Vec<Op> {
    let addrs: Vec<Addr> = (0..15)
        .chain(300..310)
        .chain(600..610)
        .chain(760..765)
        .map(addr)
        .collect();
    assert_eq!(addrs.len(), 40);
    let jails: Vec<String> = (0..8).map(|j| format!("jail{j}")).collect();
    let ops = random_ops(rng, 400, &addrs, &jails, 60);
    let progress = AtomicUsize::new(0);
    let began = Instant::now();
    let done = run_ops(&env.nb, &ops, 16, &progress);
    let slowest = assert_all_ok(&done, || env.ctx());
    eprintln!(
        "concurrency: 400 calls in {:?}, slowest {slowest:?}",
        began.elapsed()
    );
    ops
}

/// With the daemon up: ExaFS, `netban list` and the operations agree.
#[test]
fn concurrent_bans_and_unbans_with_the_daemon() {
    let env = Env::new();
    let mut rng = Rng::new("concurrency-daemon");
    let _daemon = env.start_daemon();
    let ops = concurrent_burst(&env, &mut rng);
    let expected = expected_after(&ops);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list --json vs the operations"
    );
    wait_exafs_exactly(
        &env,
        &expected,
        Duration::from_secs(90),
        "concurrency (daemon)",
    );
    assert_eq!(listed(&env.nb), expected);
}

/// Without a daemon (each CLI delivers inline under the lock), then `netban sync`: ExaFS,
/// `netban list` and the operations agree.
#[test]
fn concurrent_bans_and_unbans_inline_then_sync() {
    let env = Env::new();
    let mut rng = Rng::new("concurrency-inline");
    let ops = concurrent_burst(&env, &mut rng);
    let expected = expected_after(&ops);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list --json vs the operations"
    );
    sync(&env);
    if let Err(e) = exafs_exactly(&env.exafs, &expected) {
        panic!(
            "concurrency (inline) after netban sync (exit 0): {e}\n{}",
            env.ctx()
        );
    }
    assert_eq!(listed(&env.nb), expected);
}
