//! Issue 7: an operator always knows what is blocked, where, and why. Each point of the issue
//! as a test of what the operator sees (output, exit status, ExaFS's state).

use std::time::Duration;

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::exafs::{ExaFs, now_unix};
use netban_testsupport::runner::{Netban, read, stderr, stdout};
use netban_testsupport::wait::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_netban");

fn exafs_netban(exafs: &ExaFs) -> Netban {
    Netban::new(
        BIN,
        &Config::new()
            .host_id("web-01")
            .guard("protect_own_addresses = false")
            .sink(Sink::exafs(&exafs.url(), exafs.api_key())),
    )
}

fn plain(extra: &str) -> Netban {
    Netban::new(BIN, &Config::new().no_web().raw(extra))
}

/// 7.1: a rule netban leaves in place on purpose after the last unban (the old script's) is
/// a warning on stderr, in status and in the metrics, not an INFO line.
#[test]
fn an_old_scripts_rule_left_at_the_last_unban_is_said_loudly() {
    let exafs = ExaFs::start().expect("ExaFS");
    let nb = exafs_netban(&exafs);
    let old = exafs.create_foreign_rule("192.0.2.100/32", now_unix() + 7200, "fail2ban auto-block");
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.100"]);
    let list = nb.list();
    assert_eq!(
        list[0]["sinks"]["exafs"]["remote_id"],
        old.to_string(),
        "{list}"
    );
    assert!(
        list[0]["sinks"]["exafs"]["foreign_owner"].is_string(),
        "{list}"
    );
    let out = nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.100"]);
    assert!(
        stderr(&out).contains("WARN") && stderr(&out).contains("stays on the sink"),
        "{}",
        stderr(&out)
    );
    assert!(
        exafs.rule(old).is_some(),
        "netban did not delete the old script's rule"
    );
    let status = stdout(&nb.expect(0, &["status"]));
    assert!(
        status.contains("WARNING: exafs 192.0.2.100/32 stays on the sink"),
        "{status}"
    );
    let explain = stdout(&nb.expect(0, &["explain", "192.0.2.100"]));
    assert!(explain.contains("left on the sink on purpose"), "{explain}");
    let d = Daemon::start(&nb);
    let metrics = d.metrics();
    assert!(
        metrics.contains("netban_sink_kept{sink=\"exafs\"} 1"),
        "{metrics}"
    );
}

/// 7.2: a jail whose network bans were all unbanned at once and restored (a fail2ban stop
/// without the action's flush, as after a `reload` that switched actions) is noticed.
#[test]
fn a_jail_unbanned_at_a_stop_is_noticed_by_status() {
    let nb = plain("[guard]\nprotect_own_addresses = false\n");
    let ips: Vec<String> = (1..=25).map(|i| format!("198.51.100.{i}")).collect();
    for ip in &ips {
        nb.expect(0, &["ban", "--jail", "sshd", ip]);
    }
    for ip in &ips {
        nb.expect(0, &["unban", "--jail", "sshd", ip]);
    }
    for ip in &ips {
        nb.expect(0, &["ban", "--jail", "sshd", "--restored", "1", ip]);
    }
    let status = stdout(&nb.expect(0, &["status"]));
    assert!(
        status.contains("WARNING: jail sshd: 25 bans were unbanned within seconds"),
        "{status}"
    );
    assert!(status.contains("never reload"), "{status}");
}

/// 7.3: `unban IP` without `--jail` ends every local lease and says which.
#[test]
fn unban_without_a_jail_ends_every_local_ban_and_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("sink.log");
    let nb = Netban::new(
        BIN,
        &Config::new()
            .no_web()
            .guard("protect_own_addresses = false")
            .sink(Sink::exec_to_file(&log)),
    );
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.5"]);
    nb.expect(0, &["ban", "--jail", "recidive", "192.0.2.5"]);
    let out = nb.expect(0, &["unban", "192.0.2.5"]);
    assert_eq!(
        stdout(&out).trim(),
        "192.0.2.5/32: ended the bans of recidive, sshd"
    );
    assert!(nb.targets().is_empty());
    assert!(read(&log).contains("unban 192.0.2.5"));
    // fail2ban's form (with --jail) stays quiet, and nothing to end is not an error.
    let out = nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.5"]);
    assert!(stdout(&out).is_empty());
    let out = nb.expect(0, &["unban", "192.0.2.5"]);
    assert_eq!(stdout(&out).trim(), "192.0.2.5/32: no local ban to end");
}

/// 7.4: a dry run reports exactly what the real run does, per sink, down to the request.
#[test]
fn dry_runs_say_what_the_real_run_does_down_to_the_request() {
    let exafs = ExaFs::start().expect("ExaFS");
    let nb = exafs_netban(&exafs);
    let out = nb.expect(0, &["--dry-run", "ban", "--jail", "sshd", "192.0.2.110"]);
    let text = stdout(&out);
    assert!(
        text.contains("would ban 192.0.2.110/32 (jail sshd)"),
        "{text}"
    );
    assert!(
        text.contains("POST ")
            && text.contains("/api/v3/rules/rtbh")
            && text.contains("\"ipv4\":\"192.0.2.110\""),
        "{text}"
    );
    assert!(
        !text.contains(exafs.api_key()),
        "no secret in a dry run: {text}"
    );
    assert!(exafs.rtbh_rules().is_empty(), "a dry run sends nothing");
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.110"]);
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.111"]);
    // A rule deleted in ExaFS: the dry sync and the real one agree, once.
    let victim = exafs.rules_for("192.0.2.111", 32)[0].id;
    exafs.delete_rule(victim);
    let dry = stdout(&nb.expect(0, &["--dry-run", "sync"]));
    assert!(
        dry.contains("exafs: 1 to add, 0 to extend, 0 to remove, 0 repaired"),
        "{dry}"
    );
    assert!(
        dry.contains("would POST") && dry.contains("192.0.2.111"),
        "{dry}"
    );
    assert!(exafs.rules_for("192.0.2.111", 32).is_empty());
    let real = stdout(&nb.expect(0, &["sync"]));
    assert!(
        real.contains("exafs: 1 added, 0 extended, 0 removed, 0 repaired"),
        "{real}"
    );
    assert_eq!(exafs.rules_for("192.0.2.111", 32).len(), 1);
    let out = nb.expect(0, &["--dry-run", "unban", "--jail", "sshd", "192.0.2.110"]);
    let text = stdout(&out);
    assert!(
        text.contains("would unban 192.0.2.110/32 (jails sshd)"),
        "{text}"
    );
    assert!(
        text.contains("DELETE ") && text.contains("/api/v3/rules/rtbh/"),
        "{text}"
    );
    assert_eq!(exafs.rules_for("192.0.2.110", 32).len(), 1, "still there");
}

/// 7.5: `explain` and `list --remote` show what is really blocked; refused bans are recorded.
#[test]
fn explain_and_list_remote_show_what_is_really_blocked() {
    let exafs = ExaFs::start().expect("ExaFS");
    let nb = exafs_netban(&exafs);
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.120"]);
    nb.expect(0, &["ban", "--jail", "sshd", "127.0.0.1"]);
    let id = exafs.rules_for("192.0.2.120", 32)[0].id;
    let text = stdout(&nb.expect(0, &["explain", "--remote", "192.0.2.120"]));
    assert!(text.contains("192.0.2.120/32: banned"), "{text}");
    assert!(text.contains("jail sshd from local"), "{text}");
    assert!(text.contains("guard: allows it"), "{text}");
    assert!(text.contains(&format!("remote id {id}")), "{text}");
    assert!(
        text.contains(&format!("the sink lists: 192.0.2.120/32 id {id}")),
        "{text}"
    );
    assert!(
        text.contains("start (jail sshd, origin local, cause ban)"),
        "{text}"
    );
    // Deleted behind netban's back: list shows it until netban notices.
    exafs.delete_rule(id);
    let text = stdout(&nb.expect(0, &["list", "--remote"]));
    assert!(text.contains("MISSING on the sink"), "{text}");
    let text = stdout(&nb.expect(0, &["explain", "--remote", "192.0.2.120"]));
    assert!(text.contains("drift: MISSING"), "{text}");
    // A refused ban is recorded, with the rule that refused it.
    let text = stdout(&nb.expect(0, &["explain", "127.0.0.1"]));
    assert!(
        text.contains("guard: refuses it: 127.0.0.1/32 overlaps 127.0.0.0/8 (loopback)"),
        "{text}"
    );
    assert!(text.contains("refused 1 time(s) (jail sshd"), "{text}");
    let status = stdout(&nb.expect(0, &["status"]));
    assert!(
        status.contains("guard: refused 1 target(s) in the last 24 h"),
        "{status}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&nb.expect(0, &["--json", "explain", "192.0.2.120"]).stdout)
            .unwrap();
    assert_eq!(v["leases"][0]["jail"], "sshd");
}

/// 7.6: a typo in an allowlist file never loses a ban; it is reported loudly.
#[test]
fn an_allowlist_typo_never_loses_a_ban() {
    let tmp = tempfile::tempdir().unwrap();
    let allow = tmp.path().join("allow.conf");
    std::fs::write(&allow, "203.0.113.0/24\n").unwrap();
    let nb = plain(&format!(
        "[guard]\nprotect_own_addresses = false\nallowlist = [\"{}\"]\n",
        allow.display()
    ));
    nb.expect(0, &["ban", "203.0.113.9"]);
    std::fs::write(&allow, "203.0.113.0/24\n198.51.100.0/33\n").unwrap();
    let out = nb.expect(0, &["ban", "192.0.2.9"]);
    assert!(
        stderr(&out).contains("allowlist") && stderr(&out).contains("line 2"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("last good version"),
        "{}",
        stderr(&out)
    );
    assert_eq!(nb.targets(), ["192.0.2.9/32"], "the ban is recorded");
    // The good version stays in force.
    nb.expect(0, &["ban", "203.0.113.10"]);
    assert_eq!(nb.targets(), ["192.0.2.9/32"]);
    let status = stdout(&nb.expect(0, &["status"]));
    assert!(
        status.contains("WARNING: guard: allowlist") && status.contains("line 2"),
        "{status}"
    );
    let out = nb.expect(1, &["check"]);
    assert!(stdout(&out).contains("guard: FAILED"), "{}", stdout(&out));
    nb.expect(0, &["list"]);
}

/// 7.7: help and man pages.
#[test]
fn help_and_man_pages_say_what_an_operator_needs() {
    let nb = plain("");
    let help = stdout(&nb.expect(0, &["--help"]));
    for want in ["generate", "explain", "Examples:", "Exit status:"] {
        assert!(help.contains(want), "{want}: {help}");
    }
    let ban = stdout(&nb.expect(0, &["help", "ban"]));
    assert!(ban.contains("[default: 3600]"), "{ban}");
    let dir = tempfile::tempdir().unwrap();
    nb.expect(
        0,
        &["generate", "man", "--out-dir", dir.path().to_str().unwrap()],
    );
    let main = read(&dir.path().join("netban.1"));
    for section in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            main.contains(&format!(".SH {section}"))
                || main.contains(&format!(".SH \"{section}\"")),
            "{section}"
        );
    }
    for sub in [
        "ban", "unban", "list", "sync", "explain", "status", "stats", "daemon",
    ] {
        let page = dir.path().join(format!("netban-{sub}.1"));
        assert!(page.exists(), "{}", page.display());
        assert!(
            main.contains(&format!("netban\\-{sub} (1)")),
            "{sub} in SEE ALSO"
        );
    }
    assert!(read(&dir.path().join("netban-ban.1")).contains(".SH EXAMPLES"));
    // Every page a page refers to is there (netban-cluster(1) names netban-cluster-keygen(1)
    // and netban-migrate(1) netban-migrate-exafs-action(1), which hold their options).
    let mut referenced = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let text = read(&entry.unwrap().path());
        for (i, _) in text.match_indices("netban\\-") {
            let rest = &text[i..];
            let len = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '\\' || c == '-'))
                .unwrap_or(rest.len());
            let tail = rest[len..].trim_start_matches(' ');
            if tail.starts_with("(1)") {
                referenced.insert(rest[..len].replace('\\', ""));
            }
        }
    }
    for name in ["netban-cluster-keygen", "netban-migrate-exafs-action"] {
        assert!(referenced.contains(name), "{name} in {referenced:?}");
    }
    for name in &referenced {
        let page = dir.path().join(format!("{name}.1"));
        assert!(page.exists(), "{name}(1) is named but not written");
    }
    let migrate = read(&dir.path().join("netban-migrate-exafs-action.1"));
    for option in ["\\-\\-from", "\\-\\-rules", "\\-\\-write"] {
        assert!(
            migrate.contains(option),
            "{option} in netban-migrate-exafs-action(1)"
        );
    }
    assert!(dir.path().join("netban.toml.5").exists());
    // A closed pipe is not a panic.
    let mut child = nb
        .cmd()
        .args(["generate", "bash"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(101), "{status}");
    let out = nb.run(&["list"]);
    assert!(out.status.success());
}

/// 7.8: the daemon says what it serves when it starts; stderr lines have a timestamp.
#[test]
fn the_daemon_says_what_it_serves_and_stderr_lines_are_dated() {
    let nb = Netban::new(BIN, &Config::new());
    let d = Daemon::start(&nb);
    let out = wait_until(
        "the daemon's start line",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || read(d.out_path()),
        || {
            let text = read(d.out_path());
            text.contains("netban daemon: 0 sink(s)").then_some(text)
        },
    );
    assert!(
        out.contains("control socket") && out.contains("web http://127.0.0.1:"),
        "{out}"
    );
    let nb = plain("");
    let out = nb.expect(0, &["ban", "127.0.0.1"]);
    let line = stderr(&out);
    let first = line.lines().next().unwrap_or("");
    assert!(
        first.len() > 21 && first.as_bytes()[4] == b'-' && first.as_bytes()[19] == b'Z',
        "{first}"
    );
    assert!(first[21..].starts_with("WARN "), "{first}");
}
