//! The Grafana dashboard (`dist/grafana/netban.json`): every query is valid PromQL (checked
//! by the real `promtool` from Debian's prometheus package), uses only metrics the daemon
//! exports and docs/operations.md documents, and groups by no per-address label.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn exprs() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("dist/grafana/netban.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in v["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(out.len() >= 15, "{out:?}");
    out
}

/// `netban_...` names in `text`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("netban_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

#[test]
fn every_panel_query_is_promql_over_documented_metrics_the_daemon_exports() {
    let exprs = exprs();
    let ops = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let dir = root().join("crates/netban/src/daemon/metrics");
    let metrics_rs: String = ["mod.rs", "cluster.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    for e in &exprs {
        for n in names(e) {
            let n = base(&n);
            assert!(
                ops.contains(&format!("`{n}`")),
                "{n} is not in docs/operations.md"
            );
            // The cluster's metrics are registered under the `cluster` sub-registry.
            let registered = n
                .strip_prefix("netban_")
                .map(|r| r.strip_suffix("_total").unwrap_or(r))
                .map(|r| r.strip_prefix("cluster_").unwrap_or(r))
                .unwrap();
            assert!(
                metrics_rs.contains(&format!("\"{registered}\",")),
                "{n} is not registered in crates/netban/src/daemon/metrics/"
            );
        }
        for label in ["ip", "address", "target"] {
            for pat in [
                format!("{label}=~"),
                format!("{label}="),
                format!(" {label},"),
                format!(" {label})"),
            ] {
                assert!(!e.contains(&pat), "{e} uses a per-address label");
            }
        }
    }
    // Grafana's variables, as a Prometheus would see them once filled in.
    let mut rules = String::from("groups:\n  - name: netban-grafana\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let filled = e
            .replace("$__rate_interval", "5m")
            .replace("$job", ".*")
            .replace("$instance", ".*");
        rules.push_str(&format!(
            "      - record: netban_grafana_check_{i}\n        expr: '{}'\n",
            filled.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let promtool = ["/usr/bin/promtool"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("promtool not found: install Debian's prometheus (scripts/test does: apt-get install --no-install-recommends prometheus)")
        });
    let out = Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool refused a query: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
