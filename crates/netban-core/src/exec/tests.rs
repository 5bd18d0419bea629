use super::*;
use crate::config::DriverConfig;
use crate::sink::{LeaseInfo, Retry};

fn env() -> SinkEnv {
    SinkEnv {
        state_dir: std::env::temp_dir(),
        host_id: "web-01".into(),
        mark: Mark::new("web-01", "0123456789ab"),
    }
}

fn sink(ban: &[&str], unban: Option<&[&str]>, timeout: f64) -> ExecSink {
    let cfg = ExecConfig {
        ban: Some(ban.iter().map(|s| s.to_string()).collect()),
        unban: unban.map(|u| u.iter().map(|s| s.to_string()).collect()),
        timeout,
        ..ExecConfig::default()
    };
    cfg.validate().unwrap();
    ExecSink::new("cmd", &cfg, &env()).unwrap()
}

fn lease(jail: &str) -> LeaseInfo {
    LeaseInfo {
        jail: jail.into(),
        origin: "local".into(),
        bantime: 600,
        until: Some(1000),
    }
}

fn add(t: &str, jail: &str) -> Change {
    Change::Add {
        target: Target::parse(t).unwrap(),
        expires: None,
        lease: lease(jail),
        remote_id: None,
    }
}

fn remove(t: &str) -> Change {
    Change::Remove {
        target: Target::parse(t).unwrap(),
        remote_id: None,
        lease: lease("sshd"),
        adopted: false,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn runs_argv_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "printf '%s|' \"$@\" \"$NETBAN_IP\" \"$NETBAN_JAIL\" > {}",
        out.display()
    );
    let s = sink(
        &[
            "/bin/sh",
            "-c",
            &script,
            "sh",
            "{jail}",
            "{bantime}",
            "{ip}",
        ],
        None,
        5.0,
    );
    // A hostile jail value arrives as one argument, unexpanded.
    let r = s
        .apply(&[add("192.0.2.1", "x;$(touch /tmp/pwned)")], soon())
        .await;
    assert!(r[0].is_ok(), "{r:?}");
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        got,
        "x;$(touch /tmp/pwned)|600|192.0.2.1|192.0.2.1|x;$(touch /tmp/pwned)|"
    );
}

#[tokio::test]
async fn nonzero_exit_and_timeout_are_retryable_failures() {
    let s = sink(&["/bin/false"], None, 5.0);
    let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
    let e = r[0].clone().unwrap_err();
    assert_eq!(e.retry, Retry::Soon);
    assert!(e.message.contains("exited"), "{e}");
    let s = sink(&["/bin/sleep", "5"], None, 0.2);
    let t0 = Instant::now();
    let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
    assert!(r[0].as_ref().unwrap_err().message.contains("killed"));
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_command_that_leaves_a_background_child_succeeds_by_its_exit_status() {
    // Issue 6: judged by the pipes, this was "killed" and retried forever.
    let s = sink(&["/bin/sh", "-c", "sleep 30 & echo started"], None, 2.0);
    let t0 = Instant::now();
    let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
    assert!(r[0].is_ok(), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn a_timed_out_command_has_its_whole_process_group_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child");
    let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
    let s = sink(&["/bin/sh", "-c", &script], None, 0.5);
    let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
    assert!(r[0].is_err());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild is gone (or a zombie reaped by init shortly).
    let mut alive = true;
    for _ in 0..50 {
        // SAFETY: signal 0 only checks that the process exists.
        alive = unsafe { libc::kill(pid, 0) } == 0
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z"));
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive, "the background child {pid} survived the timeout");
}

#[tokio::test]
async fn huge_output_is_not_kept_in_memory() {
    // Issue 6: 2 GB of stdout meant 2 GB resident. 200 MB here, through /dev/zero.
    let s = sink(
        &[
            "/bin/sh",
            "-c",
            "head -c 200000000 /dev/zero; head -c 100000000 /dev/zero >&2; exit 3",
        ],
        None,
        20.0,
    );
    let r = s
        .apply(
            &[add("192.0.2.1", "sshd")],
            Instant::now() + Duration::from_secs(30),
        )
        .await;
    let e = r[0].clone().unwrap_err();
    assert!(e.message.len() < 1000, "{}", e.message.len());
    assert!(e.message.contains("exit status: 3"), "{}", e.message);
}

#[tokio::test]
async fn missing_program_is_reported() {
    let s = sink(&["/nonexistent/notify", "{ip}"], None, 1.0);
    let e = s.check(soon()).await.unwrap_err();
    assert!(e.message.contains("not found"), "{e}");
    let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
    assert!(r[0].as_ref().unwrap_err().message.contains("cannot run"));
}

#[tokio::test]
async fn a_batch_command_gets_one_argument_per_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!("echo \"$@\" >> {}", out.display());
    let cfg = ExecConfig {
        ban_batch: Some(
            ["/bin/sh", "-c", &script, "sh", "ban", "{host}", "{ips}"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        unban_batch: Some(
            ["/bin/sh", "-c", &script, "sh", "unban", "{prefixes}"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        ..ExecConfig::default()
    };
    cfg.validate().unwrap();
    let s = ExecSink::new("peers", &cfg, &env()).unwrap();
    assert_eq!(s.commit(), Commit::Atomic);
    let r = s
        .apply(
            &[
                add("192.0.2.1", "a"),
                remove("192.0.2.9"),
                add("2001:db8::1", "b"),
            ],
            soon(),
        )
        .await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "ban web-01 192.0.2.1 2001:db8::1\nunban 192.0.2.9/32\n"
    );
}

#[test]
fn batch_templates_are_checked() {
    let bad = |ban_batch: &[&str]| {
        ExecConfig {
            ban_batch: Some(ban_batch.iter().map(|s| s.to_string()).collect()),
            ..ExecConfig::default()
        }
        .validate()
        .unwrap_err()
    };
    assert!(bad(&["/bin/true", "{jail}", "{ips}"]).contains("differs between the targets"));
    assert!(bad(&["/bin/true"]).contains("exactly one argument {ips}"));
    assert!(
        ExecConfig::default()
            .validate()
            .unwrap_err()
            .contains("ban_batch"),
        "one of ban or ban_batch"
    );
}

/// A mixed pair would never run its unban command (its removes go unrun and the target is
/// forgotten): refused, naming the key to change.
#[test]
fn a_batched_ban_needs_a_batched_unban_and_the_other_way_round() {
    let argv = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let batch = argv(&["/bin/echo", "{ips}"]);
    let each = argv(&["/bin/echo", "{ip}"]);
    let mixed1 = ExecConfig {
        ban_batch: batch.clone(),
        unban: each.clone(),
        ..ExecConfig::default()
    };
    assert!(
        mixed1
            .validate()
            .unwrap_err()
            .contains("replace unban with unban_batch")
    );
    let mixed2 = ExecConfig {
        ban: each.clone(),
        unban_batch: batch.clone(),
        ..ExecConfig::default()
    };
    assert!(
        mixed2
            .validate()
            .unwrap_err()
            .contains("unban_batch goes with ban_batch")
    );
    let ok = ExecConfig {
        ban_batch: batch.clone(),
        unban_batch: batch,
        ..ExecConfig::default()
    };
    assert!(ok.validate().is_ok());
    let ok = ExecConfig {
        ban: each.clone(),
        unban: each,
        ..ExecConfig::default()
    };
    assert!(ok.validate().is_ok());
}
