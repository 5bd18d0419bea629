//! The nftables sink benchmark (issue 10): how long 10,000 bans take to reach the kernel's set
//! through netban's batches, against one `nft add element` process per ban (what a per-ban
//! firewall action such as fail2ban's `nftables` action does). Prints a table.
//!
//! Runs as root, inside a private network namespace (the host's firewall is not touched):
//!
//! ```text
//! cargo run --release -p netban-nft --example nft-bench            # 10,000 bans
//! cargo run --release -p netban-nft --example nft-bench -- 2000    # fewer
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netban_core::config::SinkEnv;
use netban_core::owner::Mark;
use netban_core::sink::{Change, LeaseInfo};
use netban_core::{Target, clock};
use netban_nft::{NftConfig, NftSink};
use netban_testsupport::netns::{self, NFT, Netns};

const TABLE: &str = "netban";

struct Row {
    case: String,
    calls: usize,
    total: Duration,
    bans: usize,
}

fn host(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn net(i: usize) -> String {
    format!("100.{}.{}.0/24", 64 + ((i >> 8) & 63), i & 255)
}

fn ban(target: &str, now: i64) -> Change {
    Change::Add {
        target: Target::parse(target).expect("benchmark target"),
        expires: Some(now + 3600),
        lease: LeaseInfo {
            jail: "sshd".into(),
            origin: "local".into(),
            bantime: 3600,
            until: Some(now + 3600),
        },
        remote_id: None,
    }
}

fn unban(target: &str, now: i64) -> Change {
    match ban(target, now) {
        Change::Add { target, lease, .. } => Change::Remove {
            target,
            remote_id: None,
            lease,
            adopted: false,
        },
        other => other,
    }
}

fn sink() -> NftSink {
    let env = SinkEnv {
        state_dir: "/nonexistent".into(),
        host_id: "bench".into(),
        mark: Mark::new("bench", "0"),
    };
    NftSink::new("bench", &NftConfig::default(), &env).expect("default config")
}

/// Applies `changes` in batches of `size` through a fresh sink on an empty namespace.
async fn batches(ns: &Netns, case: &str, changes: &[Change], size: usize, fresh: bool) -> Row {
    if fresh && ns.tables().iter().any(|t| t == TABLE) {
        ns.delete_table(TABLE);
    }
    let sink = sink();
    let started = Instant::now();
    let mut calls = 0;
    for chunk in changes.chunks(size) {
        let out = sink
            .apply_batch(chunk, Instant::now() + Duration::from_secs(600))
            .await;
        if let Some(Err(e)) = out.iter().find(|o| o.is_err()) {
            panic!("{case}: {}", e.message);
        }
        calls += 1;
    }
    Row {
        case: case.to_string(),
        calls,
        total: started.elapsed(),
        bans: changes.len(),
    }
}

fn count(ns: &Netns, set: &str) -> usize {
    ns.elements(TABLE, set).map_or(0, |e| e.len())
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let per_ban: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(n);
    let rows = netns::block_on(move |ns| async move {
        let now = clock::now();
        let hosts: Vec<String> = (0..n).map(host).collect();
        let adds: Vec<Change> = hosts.iter().map(|h| ban(h, now)).collect();
        let removes: Vec<Change> = hosts.iter().map(|h| unban(h, now)).collect();
        let mut rows = Vec::new();
        let mut sizes = vec![n, 1000, 100, 32];
        sizes.retain(|s| *s <= n);
        sizes.dedup();
        for size in sizes {
            let case = format!("netban, batches of {size}");
            rows.push(batches(&ns, &case, &adds, size, true).await);
            assert_eq!(count(&ns, "hosts4"), n, "{case}: all in the set");
        }
        // Extends of every element (delete + add of each), then unbans, on a full set.
        rows.push(
            batches(
                &ns,
                &format!("netban, extend {n} in one batch"),
                &adds,
                n,
                false,
            )
            .await,
        );
        let sink = sink();
        let started = Instant::now();
        let held = sink
            .held_entries(Instant::now() + Duration::from_secs(600))
            .await
            .expect("held");
        assert_eq!(held.len(), n);
        rows.push(Row {
            case: format!("netban held (repair listing of {n})"),
            calls: 1,
            total: started.elapsed(),
            bans: n,
        });
        rows.push(
            batches(
                &ns,
                &format!("netban, unban {n} in one batch"),
                &removes,
                n,
                false,
            )
            .await,
        );
        assert_eq!(count(&ns, "hosts4"), 0);

        let nets = (n / 10).clamp(1, 16_384);
        let net_adds: Vec<Change> = (0..nets).map(|i| ban(&net(i), now)).collect();
        let net_removes: Vec<Change> = (0..nets).map(|i| unban(&net(i), now)).collect();
        rows.push(
            batches(
                &ns,
                &format!("netban, {nets} /24 networks in one batch"),
                &net_adds,
                nets,
                true,
            )
            .await,
        );
        assert_eq!(count(&ns, "nets4_24"), nets);
        rows.push(
            batches(
                &ns,
                &format!("netban, unban {nets} /24 in one batch"),
                &net_removes,
                nets,
                false,
            )
            .await,
        );

        // What a per-ban action does: one nft process per ban.
        ns.delete_table(TABLE);
        ns.load("table inet netban {\n  set hosts4 { type ipv4_addr; flags timeout; }\n}\n");
        let started = Instant::now();
        for h in hosts.iter().take(per_ban) {
            let ok = Command::new(NFT)
                .args([
                    "add", "element", "inet", TABLE, "hosts4", "{", h, "timeout", "3600s", "}",
                ])
                .stdin(Stdio::null())
                .status()
                .expect("run nft")
                .success();
            assert!(ok, "nft add element {h}");
        }
        rows.push(Row {
            case: "one `nft add element` process per ban".into(),
            calls: per_ban,
            total: started.elapsed(),
            bans: per_ban,
        });
        assert_eq!(count(&ns, "hosts4"), per_ban);
        rows
    });
    let version = Command::new(NFT)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "nftables sink benchmark: {version}, Linux {}, private network namespace",
        kernel.trim()
    );
    println!();
    println!("| case | batches (nft processes) | total s | per batch ms | per ban µs | bans/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let total = r.total.as_secs_f64();
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.0} | {:.0} |",
            r.case,
            r.calls,
            total,
            total * 1000.0 / r.calls.max(1) as f64,
            total * 1e6 / r.bans.max(1) as f64,
            r.bans as f64 / total.max(1e-9)
        );
    }
}
