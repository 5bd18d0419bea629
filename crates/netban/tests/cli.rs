//! The CLI contract (DESIGN.md): exit codes, bad input, the guard, config errors, and the
//! exec sink end to end — everything a fail2ban action or a script depends on.

use std::os::unix::fs::PermissionsExt;

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::runner::{Netban, read, stderr};

const NETBAN: &str = env!("CARGO_BIN_EXE_netban");

/// A netban whose config is `state_dir = <tmp>/state` followed by `extra` (TOML).
fn netban(extra: &str) -> Netban {
    Netban::new(NETBAN, &Config::new().raw(extra))
}

/// A netban whose only sink appends `ban JAIL BANTIME IP` / `unban IP` lines to `log`.
fn netban_logging_to(log: &std::path::Path) -> Netban {
    Netban::new(NETBAN, &Config::new().sink(Sink::exec_to_file(log)))
}

#[test]
fn bad_input_is_exit_2_and_changes_nothing() {
    let nb = netban("");
    nb.expect(0, &["ban", "192.0.2.1"]);
    for bad in [
        "192.0.2.300",
        "1.2.3.4;reboot",
        "$(id)",
        "`id`",
        "192.0.2.1/33",
        "fe80::1%eth0",
        "",
        "-",
        "192.0.2.1 ",
    ] {
        let out = nb.expect(2, &["ban", "--", bad]);
        assert!(
            stderr(&out).contains("not an IP address") || stderr(&out).contains("prefix"),
            "{bad:?}: {}",
            stderr(&out)
        );
    }
    nb.expect(2, &["ban", "--jail", "a;b", "192.0.2.2"]);
    nb.expect(2, &["ban", "--bantime", "soon", "192.0.2.2"]);
    nb.expect(2, &["ban", "192.0.2.2", "0"]);
    nb.expect(2, &["ban", "--restored", "2", "192.0.2.2"]);
    nb.expect(2, &["ban", "--time", "yesterday", "192.0.2.2"]);
    nb.expect(2, &["unban", "not-an-ip"]);
    nb.expect(2, &["frobnicate"]);
    assert_eq!(nb.targets(), ["192.0.2.1/32"]);
}

#[test]
fn guard_refusals_are_exit_0_with_a_reason() {
    let allow = "203.0.113.0/28 # office\n";
    let nb = netban("");
    std::fs::write(nb.path("allow.conf"), allow).unwrap();
    let nb2 = netban(&format!(
        "[guard]\nallowlist = [\"{}\"]\n",
        nb.path("allow.conf").display()
    ));
    for (ip, why) in [
        ("0.0.0.0/0", "wider than /24"),
        ("10.0.0.0/8", "wider than /24"),
        ("2001:db8::/32", "wider than /64"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.0.1", "link-local"),
        ("224.0.0.5", "multicast"),
        ("203.0.113.5", "allow.conf:1"),
    ] {
        let out = nb2.expect(0, &["ban", ip]);
        assert!(stderr(&out).contains(why), "{ip}: {}", stderr(&out));
    }
    assert!(nb2.targets().is_empty());
    // The allowlist is re-read when it changes.
    nb2.expect(0, &["ban", "198.51.100.1"]);
    std::fs::write(nb.path("allow.conf"), "198.51.100.0/24\n").unwrap();
    let out = nb2.expect(0, &["ban", "198.51.100.2"]);
    assert!(stderr(&out).contains("skipped"), "{}", stderr(&out));
}

#[test]
fn broken_config_is_exit_3_naming_key_and_line() {
    let nb = netban("[guard]\nmax_prefix_v4 = 24\nmax_prefx_v6 = 64\n");
    let out = nb.expect(3, &["ban", "192.0.2.1"]);
    let e = stderr(&out);
    assert!(e.contains("max_prefx_v6") && e.contains("line 4"), "{e}");
    let nb = netban("[[sink]]\nname = \"x\"\ntype = \"exec\"\nban = [\"/bin/echo\", \"{jial}\"]\n");
    let e = stderr(&nb.expect(3, &["check"]));
    assert!(e.contains("{jial}"), "{e}");
    let nb = netban("");
    nb.expect(3, &["--config", "/nonexistent/netban.toml", "list"]);
    // Bad input is still exit 2 with a broken config: nothing is read first.
    let nb = netban("bogus = 1\n");
    nb.expect(2, &["ban", "x"]);
}

#[test]
fn secret_in_a_readable_config_is_warned_about_and_never_printed() {
    let nb = netban(
        "[[sink]]\nname=\"e\"\ntype=\"exafs\"\nurl=\"http://127.0.0.1:9\"\napi_key=\"s3cr3t-key-value\"\ncommunity=1\n",
    );
    std::fs::set_permissions(nb.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = nb.expect(0, &["-vv", "ban", "192.0.2.1"]);
    let e = stderr(&out);
    assert!(e.contains("chmod 600"), "{e}");
    assert!(!e.contains("s3cr3t-key-value"), "secret leaked: {e}");
}

#[test]
fn state_files_are_private() {
    let nb = netban("");
    nb.expect(0, &["ban", "192.0.2.1"]);
    let db = nb.state_dir().join("netban.db");
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(nb.state_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn exec_sink_runs_templates_and_keeps_a_target_while_any_jail_bans_it() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let nb = netban_logging_to(log.path());
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "600", "192.0.2.1"],
    );
    // The old positional form, and an IPv6 spelling that is canonicalised.
    nb.expect(0, &["ban", "2001:DB8:0::5", "-1"]);
    nb.expect(
        0,
        &["ban", "--jail", "postfix", "--bantime", "6000", "192.0.2.1"],
    );
    assert_eq!(
        read(log.path()),
        "ban sshd 600 192.0.2.1\nban default -1 2001:db8::5\n"
    );
    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.1"]);
    assert!(
        !read(log.path()).contains("unban"),
        "still banned by postfix"
    );
    nb.expect(0, &["unban", "--jail", "postfix", "192.0.2.1"]);
    nb.expect(0, &["unban", "2001:db8::5"]);
    assert_eq!(
        read(log.path()),
        "ban sshd 600 192.0.2.1\nban default -1 2001:db8::5\nunban 192.0.2.1\nunban 2001:db8::5\n"
    );
    // Hostile values never reach a shell: the jail name is validated, the IP is parsed.
    nb.expect(2, &["ban", "--jail", "$(touch pwned)", "192.0.2.9"]);
}

#[test]
fn a_failing_sink_keeps_the_ban_pending_until_sync_succeeds() {
    let nb = netban("");
    let flag = nb.path("ok");
    let log = nb.path("log");
    nb.write_config(&Config::new().sink(Sink::new("flaky", "exec").set(
        "ban",
        format!(
            r#"["/bin/sh", "-c", "test -e {} && echo ban $0 >> {}", "{{ip}}"]"#,
            flag.display(),
            log.display()
        ),
    )));
    nb.expect(0, &["ban", "192.0.2.1"]);
    assert_eq!(read(&log), "");
    let list = nb.list();
    assert_eq!(list[0]["sinks"]["flaky"]["state"], "pending", "{list}");
    assert_eq!(list[0]["sinks"]["flaky"]["attempts"], 1, "{list}");
    let out = nb.expect(1, &["sync", "--timeout", "5"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 failed"));
    std::fs::write(&flag, "").unwrap();
    nb.expect(0, &["sync"]);
    assert_eq!(read(&log), "ban 192.0.2.1\n");
    assert_eq!(nb.list()[0]["sinks"]["flaky"]["state"], "in_place");
}

#[test]
fn restored_ban_already_in_place_runs_nothing() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let nb = netban_logging_to(log.path());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t = format!("{now}.0");
    nb.expect(
        0,
        &[
            "ban",
            "--jail",
            "sshd",
            "--bantime",
            "600",
            "--time",
            &t,
            "192.0.2.1",
        ],
    );
    nb.expect(
        0,
        &[
            "ban",
            "--jail",
            "sshd",
            "--bantime",
            "600",
            "--time",
            &now.to_string(),
            "--restored",
            "1",
            "192.0.2.1",
        ],
    );
    assert_eq!(read(log.path()).lines().count(), 1);
    // A restored ban whose time already ran out is skipped.
    nb.expect(
        0,
        &[
            "ban",
            "--jail",
            "sshd",
            "--bantime",
            "600",
            "--time",
            "1000000000",
            "--restored",
            "1",
            "192.0.2.7",
        ],
    );
    assert_eq!(nb.targets(), ["192.0.2.1/32"]);
}

#[test]
fn flush_keeps_network_bans() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let nb = netban_logging_to(log.path());
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.1"]);
    nb.expect(0, &["flush", "--jail", "sshd"]);
    assert_eq!(nb.targets(), ["192.0.2.1/32"]);
    assert!(!read(log.path()).contains("unban"));
}

#[test]
fn dry_run_changes_nothing() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let nb = netban_logging_to(log.path());
    let out = nb.expect(0, &["--dry-run", "ban", "192.0.2.1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("would ban 192.0.2.1/32"));
    assert!(nb.targets().is_empty());
    assert_eq!(read(log.path()), "");
}

/// `--dry-run unban --everywhere` says what the fleet-wide unban would do (the leases here,
/// the signed revoke for the fleet, what the sink would be sent) and does none of it: no lease
/// ends, nothing is queued for the publisher, the sink is sent nothing.
#[test]
fn dry_run_unban_everywhere_previews_the_revoke_and_publishes_nothing() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let nb = Netban::new(
        NETBAN,
        &Config::new()
            .host_id("ops-01")
            .section(
                "cluster",
                // Never reached: a dry run connects to nothing.
                "redis = \"redis://127.0.0.1:1/0\"\nkey_file = \"/nonexistent/cluster.key\"",
            )
            .sink(Sink::exec_to_file(log.path())),
    );
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.9"]);
    let before = read(log.path());
    let out = nb.expect(0, &["--dry-run", "unban", "--everywhere", "192.0.2.9"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("would end every lease of 192.0.2.9/32 here: sshd (local)"),
        "{text}"
    );
    assert!(
        text.contains("would publish a signed revoke of 192.0.2.9/32 from ops-01")
            && text.contains("every host of the cluster")
            && text.contains("nothing is published now"),
        "{text}"
    );
    assert!(
        text.contains("remove 192.0.2.9/32"),
        "the sink's preview: {text}"
    );
    assert!(
        !text.contains("would unban 192.0.2.9/32 (jails"),
        "not the local-only preview: {text}"
    );
    // Nothing happened.
    assert_eq!(nb.targets(), ["192.0.2.9/32"]);
    assert_eq!(read(log.path()), before);
    let store = netban_core::store::Store::open(&nb.state_dir()).unwrap();
    assert!(
        store.pending_revokes(10).unwrap().is_empty(),
        "no revoke queued"
    );
}

#[test]
fn check_reports_each_sink() {
    let nb = netban(
        "[[sink]]\nname=\"a\"\ntype=\"exec\"\nban=[\"/bin/true\"]\n[[sink]]\nname=\"b\"\ntype=\"exec\"\nban=[\"/nonexistent/cmd\"]\n",
    );
    let out = nb.expect(1, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sink a (exec): ok"), "{text}");
    assert!(
        text.contains("sink b (exec): FAILED") && text.contains("not found"),
        "{text}"
    );
}

#[test]
fn ban_is_quiet_on_success() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let nb = netban_logging_to(log.path());
    let out = nb.expect(0, &["ban", "192.0.2.1"]);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
}
