//! Self-test of the fail2ban harness against the real fail2ban, with actions that only create
//! and remove files (argv only, no netban): bans from log lines and from the client, unban,
//! what runs at stop with and without `actionflush`, restored bans after a restart, and the
//! `norestored` trap that netban's action file avoids. These are the facts
//! `dist/fail2ban/action.d/netban.conf` and `docs/fail2ban.md` rely on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netban_testsupport::fail2ban::{ActionFile, Fail2ban, Jail, Options};

const WAIT: Duration = Duration::from_secs(20);

/// An action that touches `DIR/ban-RESTORED-IP` on ban, `DIR/unban-IP` on unban and, when
/// `flush`, `DIR/flush-JAIL` on flush. `extra` goes into `[Definition]` as is.
fn touch_action(flush: bool, extra: &str) -> ActionFile {
    let flush_line = if flush {
        "actionflush = touch \"<dir>/flush-<name>\"\n"
    } else {
        ""
    };
    ActionFile::new(
        "touchtest.conf",
        format!(
            "[Definition]\nactionstart =\nactionstop =\n\
             actionban = touch \"<dir>/ban-<restored>-<ip>\"\n\
             actionunban = touch \"<dir>/unban-<ip>\"\n{flush_line}{extra}\n[Init]\ndir = /nonexistent\n"
        ),
    )
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn marks(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn start(flush: bool, extra: &str) -> (Fail2ban, PathBuf, tempfile::TempDir) {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().to_path_buf();
    let opts = Options::new()
        .action_file(touch_action(flush, extra))
        .jail(Jail::new(
            "sshd",
            format!("touchtest[dir=\"{}\"]", dir.display()),
        ));
    let f2b = Fail2ban::start(opts).expect("fail2ban starts");
    (f2b, dir, out)
}

#[test]
fn log_lines_ban_and_client_unbans() {
    let (f2b, dir, _keep) = start(true, "");
    f2b.log_failures("192.0.2.10", 3);
    f2b.log_failures("2001:db8::5", 3);
    let e4 = f2b.wait_action(0, "ban", "sshd", "192.0.2.10", WAIT);
    let e6 = f2b.wait_action(0, "ban", "sshd", "2001:db8::5", WAIT);
    for e in [&e4, &e6] {
        assert_eq!(e.restored.as_deref(), Some("0"), "{e:?}");
        assert_eq!(e.bantime.as_deref(), Some("600"), "{e:?}");
        // A ban from log lines carries the time of the last failure, as a float
        // (`1795309592.0`); fail2ban's `banip` gives the current time with a fraction.
        let time = e.time.as_deref().unwrap_or_default();
        assert!(time.ends_with(".0"), "{e:?}");
        let time: f64 = time.parse().expect("<time> is a number");
        assert!((time - now()).abs() < 120.0, "{e:?}");
    }
    assert!(
        marks(&dir).contains(&"ban-0-192.0.2.10".to_string()),
        "{:?}",
        marks(&dir)
    );
    assert!(
        marks(&dir).contains(&"ban-0-2001:db8::5".to_string()),
        "{:?}",
        marks(&dir)
    );
    let mut banned = f2b.banned("sshd");
    banned.sort();
    assert_eq!(banned, ["192.0.2.10", "2001:db8::5"]);

    // Two failures stay below maxretry: no ban.
    f2b.log_failures("198.51.100.7", 2);
    let n = f2b.events().len();
    f2b.ban("sshd", "203.0.113.9");
    f2b.wait_action(n, "ban", "sshd", "203.0.113.9", WAIT);
    assert!(!f2b.banned("sshd").contains(&"198.51.100.7".to_string()));

    let n = f2b.events().len();
    f2b.unban("sshd", "192.0.2.10");
    f2b.wait_action(n, "unban", "sshd", "192.0.2.10", WAIT);
    assert!(
        marks(&dir).contains(&"unban-192.0.2.10".to_string()),
        "{:?}",
        marks(&dir)
    );
    assert!(!f2b.banned("sshd").contains(&"192.0.2.10".to_string()));
}

#[test]
fn stop_runs_actionflush_once_and_no_unban() {
    let (mut f2b, dir, _keep) = start(true, "");
    for ip in ["192.0.2.20", "192.0.2.21", "2001:db8::20"] {
        f2b.ban("sshd", ip);
        f2b.wait_action(0, "ban", "sshd", ip, WAIT);
    }
    f2b.stop().expect("stop");
    let m = marks(&dir);
    assert!(m.contains(&"flush-sshd".to_string()), "{m:?}");
    assert!(
        !m.iter().any(|f| f.starts_with("unban-")),
        "stop must not unban when actionflush exists: {m:?}"
    );
    let kinds: Vec<String> = f2b.events().iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "flush").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("stop"), "{kinds:?}");
}

/// `fail2ban-client unban --all` also goes through actionflush (not actionunban) when the
/// action has one, and forgets the bans: docs/fail2ban.md warns about it.
#[test]
fn unban_all_runs_actionflush_not_actionunban() {
    let (f2b, dir, _keep) = start(true, "");
    for ip in ["192.0.2.25", "2001:db8::25"] {
        f2b.ban("sshd", ip);
        f2b.wait_action(0, "ban", "sshd", ip, WAIT);
    }
    let n = f2b.events().len();
    f2b.client_ok(&["unban", "--all"]);
    f2b.wait_event(n, WAIT, "flush", |e| e.kind == "flush");
    let m = marks(&dir);
    assert!(m.contains(&"flush-sshd".to_string()), "{m:?}");
    assert!(!m.iter().any(|f| f.starts_with("unban-")), "{m:?}");
    assert!(f2b.banned("sshd").is_empty());
}

#[test]
fn stop_without_actionflush_unbans_every_address() {
    let (mut f2b, dir, _keep) = start(false, "");
    for ip in ["192.0.2.30", "2001:db8::30"] {
        f2b.ban("sshd", ip);
        f2b.wait_action(0, "ban", "sshd", ip, WAIT);
    }
    f2b.stop().expect("stop");
    let m = marks(&dir);
    assert!(
        m.contains(&"unban-192.0.2.30".to_string())
            && m.contains(&"unban-2001:db8::30".to_string()),
        "{m:?}"
    );
}

#[test]
fn restart_restores_bans_through_the_action() {
    let (mut f2b, dir, _keep) = start(true, "");
    f2b.log_failures("192.0.2.40", 3);
    let first = f2b.wait_action(0, "ban", "sshd", "192.0.2.40", WAIT);
    f2b.ban("sshd", "198.51.100.0/24");
    f2b.wait_action(0, "ban", "sshd", "198.51.100.0/24", WAIT);
    let n = f2b.events().len();
    f2b.restart().expect("restart");
    let events = f2b.events();
    let restored: Vec<_> = events[n..].iter().filter(|e| e.kind == "ban").collect();
    assert_eq!(restored.len(), 2, "{events:#?}");
    assert!(restored.iter().all(|e| e.is_restored()), "{restored:#?}");
    // The restored ticket keeps its ban start (as an integer) and the jail's bantime.
    let again = restored
        .iter()
        .find(|e| e.ip.as_deref() == Some("192.0.2.40"))
        .expect("restored 192.0.2.40");
    let t0: f64 = first
        .time
        .as_deref()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    assert_eq!(
        again.time.as_deref(),
        Some(format!("{}", t0.round() as i64).as_str()),
        "{again:?} vs {first:?}"
    );
    assert_eq!(again.bantime, first.bantime);
    assert!(
        marks(&dir).contains(&"ban-1-192.0.2.40".to_string()),
        "{:?}",
        marks(&dir)
    );
    // The stop in between flushed and did not unban.
    assert!(
        !marks(&dir).iter().any(|f| f.starts_with("unban-")),
        "{:?}",
        marks(&dir)
    );

    // A restored ban is unbanned through the action as usual.
    let n = f2b.events().len();
    f2b.unban("sshd", "192.0.2.40");
    f2b.wait_action(n, "unban", "sshd", "192.0.2.40", WAIT);
    assert!(
        marks(&dir).contains(&"unban-192.0.2.40".to_string()),
        "{:?}",
        marks(&dir)
    );
}

/// Upstream issue #3990: with `norestored = 1`, actionunban of a restored ban is skipped
/// after a restart. This is why netban's action handles `<restored>` instead.
#[test]
fn norestored_skips_unban_after_restart() {
    let (mut f2b, dir, _keep) = start(true, "norestored = 1\n");
    f2b.ban("sshd", "192.0.2.50");
    f2b.wait_action(0, "ban", "sshd", "192.0.2.50", WAIT);
    f2b.restart().expect("restart");
    assert!(
        !marks(&dir).contains(&"ban-1-192.0.2.50".to_string()),
        "norestored skips actionban: {:?}",
        marks(&dir)
    );
    let n = f2b.events().len();
    f2b.unban("sshd", "192.0.2.50");
    // The probe (no norestored) shows fail2ban did unban; the action under test never heard of it.
    f2b.wait_action(n, "unban", "sshd", "192.0.2.50", WAIT);
    assert!(
        !marks(&dir).contains(&"unban-192.0.2.50".to_string()),
        "the #3990 trap is gone? {:?}",
        marks(&dir)
    );
}

#[test]
fn jails_can_share_a_log_and_have_their_own_bantime() {
    let out = tempfile::tempdir().expect("tempdir");
    let action = format!("touchtest[dir=\"{}\"]", out.path().display());
    let opts = Options::new()
        .action_file(touch_action(true, ""))
        .jail(Jail::new("sshd", action.clone()).logfile("auth.log"))
        .jail(
            Jail::new("sshd-long", action)
                .logfile("auth.log")
                .bantime(-1),
        );
    let f2b = Fail2ban::start(opts).expect("fail2ban starts");
    f2b.log_failures("192.0.2.60", 3);
    let a = f2b.wait_action(0, "ban", "sshd", "192.0.2.60", WAIT);
    let b = f2b.wait_action(0, "ban", "sshd-long", "192.0.2.60", WAIT);
    assert_eq!(a.bantime.as_deref(), Some("600"));
    assert_eq!(b.bantime.as_deref(), Some("-1"));
}

#[test]
fn the_dist_action_file_passes_fail2bans_config_test() {
    // Start checks the configuration with `fail2ban-client -t` first; a jail overriding
    // both parameters must be accepted.
    let opts = Options::new()
        .action_file(ActionFile::netban_dist().expect("dist/fail2ban/action.d/netban.conf"))
        .jail(Jail::netban(
            "sshd",
            "/bin/true",
            "/nonexistent/netban.toml",
        ));
    let f2b =
        Fail2ban::start(opts).expect("fail2ban starts with dist/fail2ban/action.d/netban.conf");
    // With /bin/true as netban every command "succeeds": the ban reaches the probe.
    f2b.ban("sshd", "192.0.2.70");
    f2b.wait_action(0, "ban", "sshd", "192.0.2.70", WAIT);
    let log = f2b.fail2ban_log();
    assert!(!log.contains("ERROR"), "{}", f2b.log_tail(40));
}

/// An action like the old `exafs.conf` of `exafs_action.py`: ban and unban, no actionflush.
fn old_action(flush: bool) -> ActionFile {
    let flush_line = if flush { "actionflush = true\n" } else { "" };
    ActionFile::new(
        "oldaction.conf",
        format!(
            "[Definition]\nactionban = touch \"<dir>/old-ban-<ip>\"\n\
             actionunban = touch \"<dir>/old-unban-<ip>\"\n{flush_line}\n[Init]\ndir = /nonexistent\n"
        ),
    )
}

/// Switching a jail from the old action to a new one, as in docs/fail2ban.md ("Switching
/// from exafs_action.py"). A plain restart runs the old action's unban for every ban at stop
/// (it has no actionflush), then the new action gets every ban as restored. Giving the old
/// action an empty actionflush and reloading first makes the restart hand the bans over
/// without any unban.
#[test]
fn switching_from_an_action_without_actionflush() {
    for gap_free in [false, true] {
        let out = tempfile::tempdir().expect("tempdir");
        let dir = out.path();
        let old_jail = Jail::new("sshd", format!("oldaction[dir=\"{}\"]", dir.display()));
        let old = |flush| {
            Options::new()
                .action_file(old_action(flush))
                .jail(old_jail.clone())
        };
        let mut f2b = Fail2ban::start(old(false)).expect("fail2ban starts");
        for ip in ["192.0.2.80", "2001:db8::80"] {
            f2b.ban("sshd", ip);
            f2b.wait_action(0, "ban", "sshd", ip, WAIT);
        }
        if gap_free {
            f2b.reconfigure(old(true))
                .expect("old action with actionflush");
            f2b.reload();
        }
        let new = Options::new()
            .action_file(old_action(true))
            .action_file(touch_action(true, ""))
            .jail(Jail::new(
                "sshd",
                format!("touchtest[dir=\"{}\"]", dir.display()),
            ));
        f2b.reconfigure(new).expect("switch to the new action");
        f2b.restart().expect("restart");
        let m = marks(dir);
        for ip in ["192.0.2.80", "2001:db8::80"] {
            assert!(
                m.contains(&format!("ban-1-{ip}")),
                "the new action must get {ip} as restored: {m:?}"
            );
            let unbanned = m.contains(&format!("old-unban-{ip}"));
            assert_eq!(
                unbanned, !gap_free,
                "gap_free={gap_free}: old action's unban of {ip}: {m:?}"
            );
        }
    }
}

/// Adding an action to a jail with `fail2ban-client reload` does not work in fail2ban 1.0.2:
/// the new action is flushed and dropped at the end of the reload (upstream issue #3860), so
/// neither existing nor new bans reach it. A restart does it (docs/fail2ban.md).
#[test]
fn reload_does_not_add_a_new_action_restart_does() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path();
    let old_jail = Jail::new("sshd", format!("oldaction[dir=\"{}\"]", dir.display()));
    let opts = Options::new().action_file(old_action(false)).jail(old_jail);
    let mut f2b = Fail2ban::start(opts).expect("fail2ban starts");
    f2b.ban("sshd", "192.0.2.90");
    f2b.wait_action(0, "ban", "sshd", "192.0.2.90", WAIT);
    let both = Options::new()
        .action_file(old_action(false))
        .action_file(touch_action(true, ""))
        .jail(Jail::new(
            "sshd",
            format!(
                "oldaction[dir=\"{d}\"]\ntouchtest[dir=\"{d}\"]",
                d = dir.display()
            ),
        ));
    f2b.reconfigure(both).expect("add the new action");
    f2b.reload();
    assert!(
        f2b.banned("sshd").contains(&"192.0.2.90".to_string()),
        "reload keeps the ban"
    );
    // A ban after the reload: the probe sees it, the added action does not.
    let n = f2b.events().len();
    f2b.ban("sshd", "192.0.2.91");
    f2b.wait_action(n, "ban", "sshd", "192.0.2.91", WAIT);
    let m = marks(dir);
    assert!(m.contains(&"old-ban-192.0.2.91".to_string()), "{m:?}");
    assert!(
        !m.iter().any(|f| f.starts_with("ban-")),
        "the reload did add the action? {m:?}\n{}",
        f2b.log_tail(20)
    );
    assert!(
        f2b.fail2ban_log()
            .contains("Flush ticket(s) with touchtest"),
        "{}",
        f2b.log_tail(20)
    );

    f2b.restart().expect("restart");
    let m = marks(dir);
    for ip in ["192.0.2.90", "192.0.2.91"] {
        assert!(
            m.contains(&format!("ban-1-{ip}")),
            "after the restart the action gets {ip}: {m:?}"
        );
    }
}

/// With `bantime.increment`, a repeat offender is banned with the base bantime first and the
/// increased bantime reaches the actions as `actionprolong` right after: why netban.conf
/// defines `actionprolong`. Also: a jail's `bantime = 1w` arrives as whole seconds.
#[test]
fn bantime_increment_runs_actionprolong_with_the_longer_bantime() {
    let out = tempfile::tempdir().expect("tempdir");
    let action = format!("touchtest[dir=\"{}\"]", out.path().display());
    let opts = Options::new()
        .maxretry(2)
        .action_file(touch_action(true, ""))
        .jail(
            Jail::new("sshd", action.clone())
                .bantime(2)
                .option("bantime.increment", "true"),
        )
        .jail(Jail::new("sshd-week", action).option("bantime", "1w"));
    let f2b = Fail2ban::start(opts).expect("fail2ban starts");
    f2b.log_failures("192.0.2.95", 2);
    let first = f2b.wait_action(0, "ban", "sshd", "192.0.2.95", WAIT);
    assert_eq!(first.bantime.as_deref(), Some("2"), "{first:?}");
    f2b.wait_action(0, "unban", "sshd", "192.0.2.95", WAIT);
    let n = f2b.events().len();
    f2b.log_failures("192.0.2.95", 2);
    let again = f2b.wait_action(n, "ban", "sshd", "192.0.2.95", WAIT);
    // fail2ban's observer raises the bantime either before the ban (then actionban gets it)
    // or just after it (then actionban gets the base bantime and actionprolong the new one):
    // it is a race inside fail2ban, seen both ways. Either way the action learns it.
    let seconds = |e: &netban_testsupport::fail2ban::ActionEvent| -> i64 {
        e.bantime
            .as_deref()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0)
    };
    if seconds(&again) == 2 {
        let prolong = f2b.wait_action(n, "prolong", "sshd", "192.0.2.95", WAIT);
        assert!(seconds(&prolong) > 2, "{prolong:?}");
        assert_eq!(
            prolong.time, again.time,
            "same ban start: {prolong:?} vs {again:?}"
        );
    } else {
        assert!(seconds(&again) > 2, "{again:?}");
    }

    f2b.ban("sshd-week", "192.0.2.96");
    let week = f2b.wait_action(0, "ban", "sshd-week", "192.0.2.96", WAIT);
    assert_eq!(week.bantime.as_deref(), Some("604800"), "{week:?}");
}
