//! End to end: the real fail2ban (Debian) runs the repository's
//! `dist/fail2ban/action.d/netban.conf`, which runs the real `netban` binary, which talks to a
//! real ExaFS (from PyPI), optionally through a fault-injecting proxy.
//!
//! What a user would notice: sshd failures become an RTBH rule; `unbanip` removes it; a
//! fail2ban restart neither unbans nor re-posts anything; one jail's unban does not lift
//! another jail's ban; a ban made while ExaFS is down is not lost. The first test uses an exec
//! sink and checks the values fail2ban's tags carry into netban.

use std::time::{Duration, Instant};

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::exafs::{ExaFs, RtbhRule};
use netban_testsupport::fail2ban::{Fail2ban, Jail, Options};
use netban_testsupport::proxy::{FaultProxy, Mode};
use netban_testsupport::runner::{Netban, read, tail};
use netban_testsupport::wait;

/// How long fail2ban + netban + ExaFS may take for one ban or unban (about 1-2 s normally).
const WAIT: Duration = Duration::from_secs(20);

const NETBAN: &str = env!("CARGO_BIN_EXE_netban");

/// A netban config for these tests: state in a temp dir, logs (debug) to `netban.log` there,
/// then `sink`.
fn netban_with(sink: Sink) -> Netban {
    Netban::new(
        NETBAN,
        &Config::new()
            .log_file("netban.log", Some("debug"))
            .sink(sink),
    )
}

/// The last lines of netban's own log.
fn netban_log(nb: &Netban) -> String {
    tail(&nb.path("netban.log"), 30)
}

fn start_exafs() -> ExaFs {
    ExaFs::start().unwrap_or_else(|e| panic!("starting ExaFS: {e:#}"))
}

fn start_fail2ban(nb: &Netban, jails: Vec<Jail>) -> Fail2ban {
    let mut opts =
        Options::netban(NETBAN, nb.config(), &[]).expect("dist/fail2ban/action.d/netban.conf");
    for j in jails {
        opts = opts.jail(j);
    }
    Fail2ban::start(opts).unwrap_or_else(|e| panic!("starting fail2ban: {e:#}"))
}

fn sshd(nb: &Netban) -> Jail {
    Jail::netban("sshd", NETBAN, nb.config())
}

/// Everything a failing assertion needs: both logs and what ExaFS holds.
fn context(f2b: &Fail2ban, nb: &Netban, exafs: Option<&ExaFs>) -> String {
    let rules = exafs
        .map(|x| format!("{:#?}", x.rtbh_rules()))
        .unwrap_or_default();
    format!(
        "{}\n--- netban log ---\n{}\n--- ExaFS rules ---\n{rules}",
        f2b.log_tail(30),
        netban_log(nb)
    )
}

/// Polls `f` (every 100 ms, up to [`WAIT`]) until it returns `Some`.
fn wait_until<T>(what: &str, ctx: impl Fn() -> String, f: impl FnMut() -> Option<T>) -> T {
    wait::wait_until(what, WAIT, Duration::from_millis(100), ctx, f)
}

fn active_rule(exafs: &ExaFs, addr: &str, mask: u8) -> Option<RtbhRule> {
    exafs
        .rules_for(addr, mask)
        .into_iter()
        .find(RtbhRule::is_active)
}

/// The tags fail2ban passes arrive in netban as the contract says: jail, bantime, ban start,
/// canonical target; unban ends the lease; a restart changes nothing (no unban at stop, the
/// restored ban is already delivered). Uses an exec sink, so it runs without ExaFS.
#[test]
fn fail2ban_tags_reach_netban() {
    let nb = netban_with(Sink::exec_to_file("sink.log"));
    let events = nb.path("sink.log");
    let mut f2b = start_fail2ban(&nb, vec![sshd(&nb)]);
    let ctx = || context(&f2b, &nb, None);

    f2b.log_failures("192.0.2.10", 3);
    f2b.log_failures("2001:DB8:0:0::7", 3);
    let e4 = f2b.wait_action(0, "ban", "sshd", "192.0.2.10", WAIT);
    f2b.wait_action(0, "ban", "sshd", "2001:db8::7", WAIT);
    assert!(
        !f2b.fail2ban_log().contains("ERROR"),
        "fail2ban reported an action error\n{}",
        ctx()
    );

    let list = nb.list();
    let item = |target: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|i| i["target"] == target))
            .unwrap_or_else(|| panic!("no lease for {target} in netban list: {list:#}\n{}", ctx()))
            .clone()
    };
    let l4 = &item("192.0.2.10/32")["leases"][0];
    item("2001:db8::7/128");
    assert_eq!(l4["jail"], "sshd", "{l4}");
    assert_eq!(l4["bantime"], 600, "{l4}");
    // The lease starts at fail2ban's <time> (the failure's time), not when netban ran.
    let time: f64 = e4
        .time
        .as_deref()
        .unwrap_or_default()
        .parse()
        .expect("<time>");
    assert_eq!(
        l4["since"].as_f64().map(f64::round),
        Some(time.round()),
        "{l4} vs {e4:?}"
    );
    assert_eq!(
        l4["until"].as_f64().map(f64::round),
        Some(time.round() + 600.0),
        "{l4} vs {e4:?}"
    );
    let sink_log = read(&events);
    assert!(
        sink_log.contains("ban sshd 600 192.0.2.10\n"),
        "{sink_log}\n{}",
        ctx()
    );
    assert!(
        sink_log.contains("ban sshd 600 2001:db8::7\n"),
        "{sink_log}\n{}",
        ctx()
    );

    let n = f2b.events().len();
    f2b.unban("sshd", "192.0.2.10");
    f2b.wait_action(n, "unban", "sshd", "192.0.2.10", WAIT);
    assert_eq!(nb.targets(), ["2001:db8::7/128"], "{}", ctx());
    assert!(
        read(&events).contains("unban 192.0.2.10\n"),
        "{}\n{}",
        read(&events),
        ctx()
    );

    // Restart: actionflush at stop keeps the ban, the restored ban costs nothing.
    let before = read(&events);
    f2b.restart().unwrap_or_else(|e| panic!("{e:#}"));
    let restored = f2b
        .events()
        .into_iter()
        .rev()
        .find(|e| e.is("ban", "sshd", "2001:db8::7"))
        .expect("restored");
    assert!(restored.is_restored(), "{restored:?}");
    assert_eq!(
        nb.targets(),
        ["2001:db8::7/128"],
        "{}",
        context(&f2b, &nb, None)
    );
    assert_eq!(
        read(&events),
        before,
        "the sink was called during the restart\n{}",
        context(&f2b, &nb, None)
    );
    assert!(
        !f2b.fail2ban_log().contains("ERROR"),
        "{}",
        context(&f2b, &nb, None)
    );
}

/// Test 1 and 2: failed sshd logins -> fail2ban ban -> an active RTBH rule in ExaFS;
/// `fail2ban-client set sshd unbanip` -> the rule is gone.
#[test]
fn sshd_failures_become_an_exafs_rule_and_unbanip_removes_it() {
    let exafs = start_exafs();
    let nb = netban_with(Sink::exafs(&exafs.url(), exafs.api_key()));
    let f2b = start_fail2ban(&nb, vec![sshd(&nb)]);
    let ctx = || context(&f2b, &nb, Some(&exafs));

    f2b.log_failures("192.0.2.10", 3);
    f2b.log_failures("2001:db8::5", 3);
    let r4 = wait_until("an active ExaFS rule for 192.0.2.10/32", ctx, || {
        active_rule(&exafs, "192.0.2.10", 32)
    });
    let r6 = wait_until("an active ExaFS rule for 2001:db8::5/128", ctx, || {
        active_rule(&exafs, "2001:db8::5", 128)
    });
    assert_eq!(r4.community_id, 1, "{r4:?}");
    let expires = r4.expires.unwrap_or_default();
    let now = netban_testsupport::exafs::now_unix();
    // bantime 600: ExaFS rounds to 10 minutes and netban keeps at least 10 minutes ahead.
    assert!(
        expires > now && expires <= now + 3 * 600,
        "expires {expires}, now {now}\n{}",
        ctx()
    );

    f2b.unban("sshd", "192.0.2.10");
    wait_until("the ExaFS rule for 192.0.2.10/32 to go", ctx, || {
        active_rule(&exafs, "192.0.2.10", 32)
            .is_none()
            .then_some(())
    });
    assert!(
        exafs.rule(r6.id).is_some_and(|r| r.is_active()),
        "the other rule must stay\n{}",
        ctx()
    );
    assert!(!f2b.fail2ban_log().contains("ERROR"), "{}", ctx());
}

/// Test 3: restarting fail2ban with active bans makes no POST and no DELETE: the same rules,
/// same ids, still active. netban talks to ExaFS through a proxy that counts requests.
#[test]
fn fail2ban_restart_makes_no_exafs_calls() {
    let exafs = start_exafs();
    let proxy = FaultProxy::start(exafs.authority())
        .unwrap_or_else(|e| panic!("starting the proxy: {e:#}"));
    let nb = netban_with(Sink::exafs(&proxy.url(), exafs.api_key()));
    let mut f2b = start_fail2ban(&nb, vec![sshd(&nb)]);

    for ip in ["192.0.2.31", "198.51.100.32", "2001:db8::33"] {
        f2b.ban("sshd", ip);
    }
    let ids_before: Vec<u64> = {
        let ctx = || context(&f2b, &nb, Some(&exafs));
        let mut ids = vec![
            wait_until("rule 192.0.2.31", ctx, || {
                active_rule(&exafs, "192.0.2.31", 32)
            })
            .id,
            wait_until("rule 198.51.100.32", ctx, || {
                active_rule(&exafs, "198.51.100.32", 32)
            })
            .id,
            wait_until("rule 2001:db8::33", ctx, || {
                active_rule(&exafs, "2001:db8::33", 128)
            })
            .id,
        ];
        ids.sort();
        ids
    };
    // Let the probe confirm netban returned for all three, then count from zero.
    for ip in ["192.0.2.31", "198.51.100.32", "2001:db8::33"] {
        f2b.wait_action(0, "ban", "sshd", ip, WAIT);
    }
    // netban really goes through the proxy: the three rules were posted through it.
    assert_eq!(
        proxy.count("POST", "/api/v3/rules/rtbh"),
        3,
        "{:?}",
        proxy.requests()
    );
    proxy.reset_counts();

    f2b.restart()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", netban_log(&nb)));
    let ctx = || context(&f2b, &nb, Some(&exafs));
    let writes: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|(m, _, _)| m == "POST" || m == "DELETE")
        .collect();
    assert!(
        writes.is_empty(),
        "fail2ban restart caused ExaFS writes: {writes:?}\nall: {:?}\n{}",
        proxy.requests(),
        ctx()
    );
    // Restored bans already in place cost no network call at all, not even a token.
    assert!(
        proxy.requests().is_empty(),
        "requests during the restart: {:?}\n{}",
        proxy.requests(),
        ctx()
    );

    let mut ids_after: Vec<u64> = exafs
        .rtbh_rules()
        .into_iter()
        .filter(RtbhRule::is_active)
        .map(|r| r.id)
        .collect();
    ids_after.sort();
    assert_eq!(ids_after, ids_before, "{}", ctx());
    let mut banned = f2b.banned("sshd");
    banned.sort();
    assert_eq!(
        banned,
        ["192.0.2.31", "198.51.100.32", "2001:db8::33"],
        "{}",
        ctx()
    );
    assert!(!f2b.fail2ban_log().contains("ERROR"), "{}", ctx());
}

/// Two jails ban the same address: one jail's unban leaves the rule, the last one removes it.
#[test]
fn one_jails_unban_does_not_lift_another_jails_ban() {
    let exafs = start_exafs();
    let nb = netban_with(Sink::exafs(&exafs.url(), exafs.api_key()));
    let f2b = start_fail2ban(
        &nb,
        vec![
            sshd(&nb).logfile("auth.log"),
            Jail::netban("sshd-long", NETBAN, nb.config())
                .logfile("auth.log")
                .bantime(86_400),
        ],
    );
    let ctx = || context(&f2b, &nb, Some(&exafs));
    f2b.log_failures("203.0.113.40", 3);
    f2b.wait_action(0, "ban", "sshd", "203.0.113.40", WAIT);
    f2b.wait_action(0, "ban", "sshd-long", "203.0.113.40", WAIT);
    let rule = wait_until("rule 203.0.113.40", ctx, || {
        active_rule(&exafs, "203.0.113.40", 32)
    });
    // The short jail must not shorten the long one's rule (ExaFS overwrites expiry on re-POST).
    let now = netban_testsupport::exafs::now_unix();
    assert!(
        rule.expires.unwrap_or_default() >= now + 86_400 - 600,
        "{rule:?}\n{}",
        ctx()
    );

    let n = f2b.events().len();
    f2b.unban("sshd", "203.0.113.40");
    f2b.wait_action(n, "unban", "sshd", "203.0.113.40", WAIT);
    assert!(
        exafs.rule(rule.id).is_some_and(|r| r.is_active()),
        "sshd's unban removed sshd-long's ban\n{}",
        ctx()
    );

    f2b.unban("sshd-long", "203.0.113.40");
    wait_until("the rule to go after the last jail's unban", ctx, || {
        active_rule(&exafs, "203.0.113.40", 32)
            .is_none()
            .then_some(())
    });
}

/// ExaFS unreachable when fail2ban bans: the action still succeeds at once (fail2ban is not
/// held up, nothing is retried by fail2ban), and `netban sync` delivers the ban later.
#[test]
fn a_ban_while_exafs_is_down_is_delivered_later() {
    let exafs = start_exafs();
    let proxy = FaultProxy::start(exafs.authority())
        .unwrap_or_else(|e| panic!("starting the proxy: {e:#}"));
    let nb = netban_with(Sink::exafs(&proxy.url(), exafs.api_key()));
    let f2b = start_fail2ban(&nb, vec![sshd(&nb)]);
    let ctx = || context(&f2b, &nb, Some(&exafs));

    proxy.set_mode(Mode::Down);
    let began = Instant::now();
    f2b.ban("sshd", "192.0.2.77");
    f2b.wait_action(0, "ban", "sshd", "192.0.2.77", WAIT);
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the ban action held fail2ban for {took:?}\n{}",
        ctx()
    );
    assert!(
        !f2b.fail2ban_log().contains("ERROR"),
        "a ban with ExaFS down must not be an action error\n{}",
        ctx()
    );
    assert!(exafs.rules_for("192.0.2.77", 32).is_empty());
    assert_eq!(
        nb.targets(),
        ["192.0.2.77/32"],
        "the ban must be recorded\n{}",
        ctx()
    );

    proxy.set_mode(Mode::Pass);
    let out = nb.run(&["sync", "--timeout", "15"]);
    assert!(
        out.status.success(),
        "netban sync: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ctx()
    );
    assert!(active_rule(&exafs, "192.0.2.77", 32).is_some(), "{}", ctx());
}
