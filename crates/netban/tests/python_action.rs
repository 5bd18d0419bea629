//! The Python fail2ban action (`dist/fail2ban/action.d/netban-socket.py`) end to end: a real
//! fail2ban (Debian) loads it, a real `netban daemon` receives its bans on the control socket
//! and delivers them to an `exec` sink that appends to a file.
//!
//! What a user would notice: a ban found in a log reaches the sink; `unbanip` removes it; a
//! target the guard refuses is skipped without an error; a fail2ban restart neither unbans
//! anything (flush keeps network bans) nor bans anything again (restored bans are no-ops); a
//! daemon restart is survived on the kept connection; with the daemon stopped, the action
//! falls back to the `netban` binary and bans and unbans still happen.
//!
//! fail2ban must be installed: run `scripts/test`, which installs it. The test never skips.

use std::path::Path;
use std::time::{Duration, Instant};

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::fail2ban::{Fail2ban, Options};
use netban_testsupport::runner::{Netban, read};
use netban_testsupport::wait::wait_until;

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// The lines of the exec sink's file.
fn sink_lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_string).collect()
}

/// Everything useful when a step fails.
fn diagnostics(nb: &Netban, f2b: &Fail2ban, sink: &Path) -> String {
    format!(
        "--- sink ---\n{}\n--- netban log ---\n{}\n--- daemon output ---\n{}\n{}",
        read(sink),
        read(&nb.path("netban.log")),
        read(&nb.path("daemon.out")),
        f2b.log_tail(60)
    )
}

/// The action's log lines (fail2ban's logger `fail2ban.NetbanAction`).
fn action_log(f2b: &Fail2ban) -> Vec<String> {
    f2b.fail2ban_log()
        .lines()
        .filter(|l| l.contains("NetbanAction"))
        .map(str::to_string)
        .collect()
}

/// The local lease of `jail` on `target` in `netban list --json`: `(since, until)`.
fn lease(nb: &Netban, target: &str, jail: &str) -> Option<(i64, Option<i64>)> {
    let list = nb.list();
    let entry = list.as_array()?.iter().find(|e| e["target"] == target)?;
    let l = entry["leases"]
        .as_array()?
        .iter()
        .find(|l| l["jail"] == jail && l["origin"] == "local")?;
    Some((l["since"].as_i64()?, l["until"].as_i64()))
}

#[test]
fn python_action_hands_bans_to_the_daemon_and_falls_back_to_the_binary() {
    // An exec sink appending to sink.log; the web listener on a port the kernel picks; a
    // debug log file to read when something fails.
    let nb = Netban::new(
        env!("CARGO_BIN_EXE_netban"),
        &Config::new()
            .log_file("netban.log", Some("debug"))
            .sink(Sink::exec_to_file("sink.log")),
    );
    let sink = nb.path("sink.log");

    let mut daemon = Daemon::start(&nb);

    // The action finds the socket through the config (state_dir/netban.sock).
    let opts = Options::netban_socket(env!("CARGO_BIN_EXE_netban"), nb.config(), &["sshd"])
        .expect("dist/fail2ban/action.d/netban-socket.py")
        .loglevel("DEBUG");
    let mut f2b = Fail2ban::start(opts).expect("start fail2ban with the Python action");
    let diag = |f2b: &Fail2ban| diagnostics(&nb, f2b, &sink);

    // 1. Failed logins: fail2ban bans, the action hands the ban to the daemon, the daemon
    //    delivers it to the exec sink.
    f2b.log_failures("192.0.2.10", 3);
    let event = f2b.wait_action(0, "ban", "sshd", "192.0.2.10", WAIT);
    wait_until(
        "the ban in the exec sink",
        WAIT,
        POLL,
        || diag(&f2b),
        || (sink_lines(&sink).contains(&"ban sshd 600 192.0.2.10".to_string())).then_some(()),
    );
    assert!(
        action_log(&f2b)
            .iter()
            .any(|l| l.contains("ban 192.0.2.10: recorded")),
        "not recorded through the daemon\n{}",
        diag(&f2b)
    );
    // fail2ban's <time> (a float) is the lease's start; bantime 600 its length.
    let time: f64 = event
        .time
        .as_deref()
        .and_then(|t| t.parse().ok())
        .expect("the probe saw <time>");
    let (since, until) = lease(&nb, "192.0.2.10/32", "sshd").expect("a lease for 192.0.2.10");
    assert_eq!(since, time.floor() as i64);
    assert_eq!(until, Some(since + 600));

    // 2. unbanip: the unban reaches the sink.
    f2b.unban("sshd", "192.0.2.10");
    wait_until(
        "the unban in the exec sink",
        WAIT,
        POLL,
        || diag(&f2b),
        || (sink_lines(&sink).contains(&"unban 192.0.2.10".to_string())).then_some(()),
    );
    assert!(lease(&nb, "192.0.2.10/32", "sshd").is_none());

    // 3. More bans: IPv6, and one the guard refuses (loopback): skipped, not an error.
    let mark = f2b.events().len();
    f2b.ban("sshd", "2001:db8::7");
    f2b.ban("sshd", "127.0.0.1");
    f2b.wait_action(mark, "ban", "sshd", "2001:db8::7", WAIT);
    f2b.wait_action(mark, "ban", "sshd", "127.0.0.1", WAIT);
    wait_until(
        "the IPv6 ban in the exec sink",
        WAIT,
        POLL,
        || diag(&f2b),
        || (sink_lines(&sink).contains(&"ban sshd 600 2001:db8::7".to_string())).then_some(()),
    );
    assert!(
        action_log(&f2b)
            .iter()
            .any(|l| l.contains("ban 127.0.0.1 skipped")),
        "no skip message\n{}",
        diag(&f2b)
    );
    assert!(
        !f2b.fail2ban_log().contains("Failed to execute ban"),
        "a refused target must not fail the action\n{}",
        diag(&f2b)
    );

    // 4. fail2ban restart: flush at stop keeps the network bans, the restored bans at start
    //    are no-ops. After a full reconcile pass the sink has seen nothing new.
    let before = sink_lines(&sink);
    let started = Instant::now();
    f2b.restart().expect("restart fail2ban");
    let restart_took = started.elapsed();
    nb.expect(0, &["sync", "--timeout", "20"]);
    assert_eq!(
        sink_lines(&sink),
        before,
        "a fail2ban restart changed the sink\n{}",
        diag(&f2b)
    );
    assert!(
        f2b.fail2ban_log().contains("Flush ticket(s) with netban"),
        "flush was not called at stop\n{}",
        diag(&f2b)
    );
    assert!(
        lease(&nb, "2001:db8::7/128", "sshd").is_some(),
        "the lease survived the restart"
    );
    eprintln!("fail2ban restart with 2 restored bans took {restart_took:?}");

    // `fail2ban-client reload` keeps the action (it has reload() and clearAllParams()) and
    // its bans.
    f2b.client_ok(&["reload"]);
    let actions = f2b.client_ok(&["get", "sshd", "actions"]);
    assert!(
        actions
            .lines()
            .any(|l| l.split([',', ' ']).any(|a| a == "netban-socket")),
        "reload dropped the action: {actions}\n{}",
        diag(&f2b)
    );
    assert_eq!(
        sink_lines(&sink),
        before,
        "a fail2ban reload changed the sink\n{}",
        diag(&f2b)
    );

    // 5. The daemon restarts behind the action's back: the kept connection is dead, the
    //    action reconnects once and the ban still goes through the daemon.
    daemon
        .stop(WAIT)
        .expect("netban daemon stops cleanly on SIGTERM");
    daemon = Daemon::start(&nb);
    let mark = f2b.events().len();
    f2b.ban("sshd", "198.51.100.7");
    f2b.wait_action(mark, "ban", "sshd", "198.51.100.7", WAIT);
    assert!(
        action_log(&f2b)
            .iter()
            .any(|l| l.contains("ban 198.51.100.7: recorded")),
        "not recorded through the daemon\n{}",
        diag(&f2b)
    );
    wait_until(
        "the ban in the exec sink",
        WAIT,
        POLL,
        || diag(&f2b),
        || (sink_lines(&sink).contains(&"ban sshd 600 198.51.100.7".to_string())).then_some(()),
    );

    // 6. Daemon stopped: the action falls back to the binary, which records the ban and
    //    delivers it inline; the unban takes the same way.
    daemon
        .stop(WAIT)
        .expect("netban daemon stops cleanly on SIGTERM");
    let mark = f2b.events().len();
    f2b.ban("sshd", "203.0.113.9");
    f2b.wait_action(mark, "ban", "sshd", "203.0.113.9", WAIT);
    assert!(
        lease(&nb, "203.0.113.9/32", "sshd").is_some(),
        "the fallback did not record the ban\n{}",
        diag(&f2b)
    );
    assert!(
        sink_lines(&sink).contains(&"ban sshd 600 203.0.113.9".to_string()),
        "the fallback did not deliver inline\n{}",
        diag(&f2b)
    );
    let log = action_log(&f2b);
    assert!(
        log.iter()
            .any(|l| l.contains("WARNING") && l.contains("daemon unreachable")),
        "no warning about the daemon\n{}",
        diag(&f2b)
    );
    assert!(
        log.iter().any(|l| l.contains("ban 203.0.113.9: done by")),
        "the binary did not run\n{}",
        diag(&f2b)
    );
    f2b.unban("sshd", "203.0.113.9");
    assert!(
        lease(&nb, "203.0.113.9/32", "sshd").is_none(),
        "the fallback did not end the lease\n{}",
        diag(&f2b)
    );
    assert!(
        sink_lines(&sink).contains(&"unban 203.0.113.9".to_string()),
        "the fallback did not unban inline\n{}",
        diag(&f2b)
    );
}
