//! What an operator reads: `netban status --json`, `/metrics` and `/healthz` tell the truth
//! about leases, deliveries and guard refusals.

use std::time::Duration;

use netban_testsupport::runner::out_text;
use netban_testsupport::wait::wait_until;

use crate::env::{Env, metric};

#[test]
fn status_metrics_and_healthz_tell_the_truth() {
    let env = Env::new();
    let daemon = env.start_daemon();
    let h = daemon.get("/healthz").expect("/healthz answers");
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));

    for ip in ["198.51.100.21", "198.51.100.22", "2001:db8::23"] {
        env.nb.expect(0, &["ban", "--jail", "sshd", ip]);
    }
    env.nb
        .expect(0, &["ban", "--jail", "postfix", "198.51.100.21"]);
    let status = wait_until(
        "netban status --json shows the 3 targets in place on exafs",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let out = env.nb.expect(0, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
            (v["sinks"][0]["in_place"] == 3).then_some(v)
        },
    );
    assert_eq!(status["daemon"]["running"], true, "{status:#}");
    assert_eq!(status["leases"], 4, "{status:#}");
    assert_eq!(status["sinks"][0]["sink"], "exafs", "{status:#}");
    assert_eq!(status["sinks"][0]["pending"], 0, "{status:#}");
    assert_eq!(status["sinks"][0]["failing"], 0, "{status:#}");

    let ok_adds = r#"netban_sink_changes_total{sink="exafs",op="add",result="ok"}"#;
    let m = wait_until(
        "/metrics shows the leases and the adds",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || env.ctx(),
        || {
            let m = daemon.metrics();
            (metric(&m, "netban_leases") == Some(4.0) && metric(&m, ok_adds) >= Some(3.0))
                .then_some(m)
        },
    );
    assert_eq!(
        metric(&m, r#"netban_sink_held{sink="exafs"}"#),
        Some(3.0),
        "{m}"
    );
    assert!(
        metric(&m, "netban_reconcile_passes_total") >= Some(1.0),
        "{m}"
    );
    let refusals = metric(&m, "netban_guard_refusals_total")
        .unwrap_or_else(|| panic!("netban_guard_refusals_total in /metrics:\n{m}"));

    // The guard refuses loopback: exit 0 (not an error for fail2ban), counted.
    let out = env.nb.expect(0, &["ban", "--jail", "sshd", "127.0.0.1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1"),
        "the refusal is logged: {}",
        out_text(&out)
    );
    wait_until(
        "netban_guard_refusals_total increments after `netban ban 127.0.0.1`",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || format!("{}\n{}", daemon.metrics(), env.ctx()),
        || {
            (metric(&daemon.metrics(), "netban_guard_refusals_total") >= Some(refusals + 1.0))
                .then_some(())
        },
    );
    let h = daemon.get("/healthz").expect("/healthz answers");
    assert_eq!(h.status, 200);
    assert!(
        env.exafs.rules_for("127.0.0.1", 32).is_empty(),
        "a refused target never reaches ExaFS"
    );
}
