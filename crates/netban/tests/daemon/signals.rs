//! Signals as docs/operations.md describes them: SIGHUP with a broken config keeps the running
//! one, SIGHUP with a new sink feeds it the existing bans, SIGTERM stops cleanly.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use netban_testsupport::config::Sink;
use netban_testsupport::runner::read;
use netban_testsupport::wait::wait_until;

use crate::env::Env;
use crate::rules::{exafs_exactly, wait_exafs_exactly};

#[test]
fn sighup_reloads_or_keeps_and_sigterm_stops_cleanly() {
    let env = Env::new();
    let mut daemon = env.start_daemon();
    let ips = ["198.51.100.31", "203.0.113.32", "2001:db8::33"];
    for ip in ips {
        env.nb.expect(0, &["ban", "--jail", "sshd", ip]);
    }
    let expected: BTreeSet<String> = ["198.51.100.31/32", "203.0.113.32/32", "2001:db8::33/128"]
        .map(String::from)
        .into();
    wait_exafs_exactly(&env, &expected, Duration::from_secs(30), "3 bans");

    // A broken config: logged, the running one kept, the daemon keeps working.
    let good = env.nb.config_text();
    env.nb
        .write_config_text(&format!("{good}\nthis is not toml = = =\n"));
    daemon.sighup();
    wait_until(
        "the daemon logs that it keeps the running config",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || env.ctx(),
        || {
            env.log_tail(50)
                .contains("keeping the running config")
                .then_some(())
        },
    );
    assert!(
        daemon.try_wait().is_none(),
        "the daemon survives a bad reload\n{}",
        env.ctx()
    );
    let h = daemon
        .get("/healthz")
        .expect("/healthz answers after a bad reload");
    assert_eq!(h.status, 200);
    // Still delivering with the old config (the broken file is still in place).
    env.nb.write_config_text(&good);
    env.nb
        .expect(0, &["ban", "--jail", "sshd", "198.51.100.34"]);
    let mut expected4 = expected.clone();
    expected4.insert("198.51.100.34/32".into());
    wait_exafs_exactly(
        &env,
        &expected4,
        Duration::from_secs(30),
        "a ban after the bad reload",
    );

    // A valid config with an exec sink added: the new sink receives the existing bans.
    let sink_log = env.nb.path("exec-sink.log");
    env.nb
        .write_config(&env.config().sink(Sink::exec_to_file(&sink_log)));
    daemon.sighup();
    let want: BTreeSet<String> = [
        "198.51.100.31",
        "203.0.113.32",
        "2001:db8::33",
        "198.51.100.34",
    ]
    .map(|ip| format!("ban sshd 3600 {ip}"))
    .into();
    wait_until(
        "after SIGHUP the new exec sink receives every existing ban",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || format!("--- exec sink log ---\n{}\n{}", read(&sink_log), env.ctx()),
        || {
            let got: BTreeSet<String> = read(&sink_log).lines().map(String::from).collect();
            want.is_subset(&got).then_some(())
        },
    );
    let lines: Vec<String> = read(&sink_log).lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "each ban once on the new sink: {lines:?}");
    assert!(
        env.log_tail(50).contains("2 sinks"),
        "the reload is logged with the new sink count\n{}",
        env.ctx()
    );
    // ExaFS is untouched by the reload.
    assert!(
        exafs_exactly(&env.exafs, &expected4).is_ok(),
        "{}",
        env.ctx()
    );

    // SIGTERM: exit 0 within a few seconds, socket removed.
    let socket = env.nb.socket();
    assert!(socket.exists());
    let stop = Instant::now();
    daemon.sigterm();
    let status = daemon
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| {
            panic!(
                "the daemon did not exit within 15 s of SIGTERM\n{}",
                env.ctx()
            )
        });
    eprintln!("sigterm: exited {status} after {:?}", stop.elapsed());
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0\n{}", env.ctx());
    assert!(!socket.exists(), "the control socket is removed at stop");
    assert!(env.log_tail(20).contains("daemon stopped"), "{}", env.ctx());
    // Bans still work: inline now.
    env.nb
        .expect(0, &["unban", "--jail", "sshd", "198.51.100.34"]);
    assert!(
        exafs_exactly(&env.exafs, &expected).is_ok(),
        "{}",
        env.ctx()
    );
}
