//! An ExaFS outage with the daemon up: every ban and unban is accepted at once, quietly, with
//! no network wait, and nothing is lost once ExaFS is back.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use netban_testsupport::proxy::Mode;
use netban_testsupport::runner::out_text;
use netban_testsupport::wait::wait_until;

use crate::env::{Env, listed, metric};
use crate::ops::{Addr, Op, addr, assert_all_ok, run_ops};
use crate::rules::wait_exafs_exactly;

/// ExaFS unreachable: 500 bans and 200 unbans are each accepted at once (exit 0, no wait on
/// the network: the daemon delivers), and once ExaFS is back the daemon makes ExaFS hold
/// exactly the 300 targets still banned, each once.
#[test]
fn outage_loses_nothing_and_costs_fail2ban_nothing() {
    let env = Env::new();
    let daemon = env.start_daemon();
    env.proxy.set_mode(Mode::Down);

    // 150 of each IPv4 range, 50 IPv6.
    let addrs: Vec<Addr> = (0..150)
        .chain(250..400)
        .chain(500..650)
        .chain(750..800)
        .map(addr)
        .collect();
    assert_eq!(addrs.len(), 500);
    let jails = ["sshd", "postfix", "nginx", "dovecot"];
    let bans: Vec<Op> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| Op::ban(a.clone(), jails[i % jails.len()]))
        .collect();
    // Unban every 5th address twice over (200 of 500), with the jail it was banned in.
    let unbans: Vec<Op> = bans
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 0 || i % 5 == 3)
        .map(|(_, b)| Op::unban(b.addr.clone(), &b.jail))
        .collect();
    assert_eq!(unbans.len(), 200);

    let progress = AtomicUsize::new(0);
    let began = Instant::now();
    let done_bans = run_ops(&env.nb, &bans, 4, &progress);
    let max_ban = assert_all_ok(&done_bans, || env.ctx());
    let done_unbans = run_ops(&env.nb, &unbans, 4, &progress);
    let max_unban = assert_all_ok(&done_unbans, || env.ctx());
    eprintln!(
        "outage: 700 calls in {:?}; slowest ban {max_ban:?}, slowest unban {max_unban:?}",
        began.elapsed()
    );
    let quiet: Vec<String> = done_bans
        .iter()
        .chain(&done_unbans)
        .filter(|d| !d.out.stdout.is_empty() || !d.out.stderr.is_empty())
        .take(3)
        .map(|d| format!("netban {:?}: {}", d.op.args(), out_text(&d.out)))
        .collect();
    assert!(
        quiet.is_empty(),
        "a successful ban/unban prints nothing (fail2ban reads it after exit): {quiet:?}"
    );
    // With the daemon up, a ban is a SQLite write and a poke: no network I/O. A sanity bound
    // far below the inline deadline (3 s), not a benchmark.
    let slowest = max_ban.max(max_unban);
    assert!(
        slowest < Duration::from_secs(1),
        "a ban/unban with the daemon up took {slowest:?} while ExaFS was down\n{}",
        env.ctx()
    );

    let expected: BTreeSet<String> = {
        let gone: BTreeSet<&String> = unbans.iter().map(|u| &u.addr.target).collect();
        addrs
            .iter()
            .map(|a| &a.target)
            .filter(|t| !gone.contains(t))
            .cloned()
            .collect()
    };
    assert_eq!(expected.len(), 300);
    assert_eq!(
        listed(&env.nb),
        expected,
        "netban list must show the 300 remaining bans"
    );
    assert!(
        env.exafs.rtbh_rules().is_empty(),
        "nothing can reach ExaFS while the proxy is down"
    );
    // The daemon did try (and failed) while ExaFS was down.
    wait_until(
        "the daemon records failed adds while ExaFS is down",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            metric(
                &daemon.metrics(),
                r#"netban_sink_changes_total{sink="exafs",op="add",result="failed"}"#,
            )
            .filter(|v| *v > 0.0)
        },
    );

    env.proxy.set_mode(Mode::Pass);
    wait_exafs_exactly(&env, &expected, Duration::from_secs(90), "after the outage");
    assert_eq!(listed(&env.nb), expected);
}
