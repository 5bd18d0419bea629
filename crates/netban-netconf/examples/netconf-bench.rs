//! Benchmark of issue 11: N bans to one NETCONF device, batched versus one commit per ban,
//! against the same real netconfd (behind a real sshd) that the tests use.
//!
//! ```text
//! cargo run -p netban-netconf --release --example netconf-bench [N] [--skip-script]
//! ```
//!
//! Cases, each starting from an empty blocklist:
//! - `script per ban`: what a per-ban script does: a new SSH session, one edit-config, one
//!   commit, close, for every ban.
//! - `commit per ban`: one kept session, but still one edit-config and one commit per ban.
//! - `batched`: netban's way: all bans in one edit-config and one commit.
//!
//! Printed per case: commits the device made (its log), SSH logins, and the time until the
//! device's running configuration holds every ban (read back independently with OpenSSH).

use std::time::{Duration, Instant};

use netban_core::Target;
use netban_core::config::SinkEnv;
use netban_core::sink::{Change, LeaseInfo};
use netban_netconf::presets::Preset;
use netban_netconf::{NetconfConfig, NetconfSink};
use netban_testsupport::netconfd::Netconfd;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let skip_script = args.iter().any(|a| a == "--skip-script");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let nc = Netconfd::start()?;
    let config = NetconfConfig {
        host: Some(nc.host().into()),
        port: nc.port(),
        user: nc.user().into(),
        key_file: Some(nc.key_file()),
        known_hosts: Some(nc.known_hosts()),
        preset: Some(Preset::Blocklist),
        ..NetconfConfig::default()
    };
    let env = SinkEnv {
        state_dir: std::env::temp_dir(),
        host_id: "bench".into(),
        mark: netban_core::owner::Mark::new("bench", "0"),
    };
    let targets: Vec<Target> = (0..n)
        .map(|i| {
            Target::parse(&format!(
                "10.{}.{}.{}",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            ))
        })
        .collect::<Result<_, _>>()?;
    let lease = LeaseInfo {
        jail: "sshd".into(),
        origin: "local".into(),
        bantime: 3600,
        until: None,
    };
    let adds: Vec<Change> = targets
        .iter()
        .map(|t| Change::Add {
            target: *t,
            expires: None,
            lease: lease.clone(),
            remote_id: None,
        })
        .collect();
    let removes: Vec<Change> = targets
        .iter()
        .map(|t| Change::Remove {
            target: *t,
            remote_id: None,
            lease: lease.clone(),
            adopted: false,
        })
        .collect();
    let deadline = || Instant::now() + Duration::from_secs(600);
    let logins = || {
        std::fs::read_to_string(nc.dir().join("sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    };

    println!("netconfd behind OpenSSH sshd on 127.0.0.1, {n} bans, candidate + lock + commit");
    println!();
    println!(
        "| {:<44} | {:>5} | {:>7} | {:>8} | {:>9} | {:>8} |",
        "case", "bans", "commits", "sessions", "seconds", "bans/s"
    );
    println!(
        "|{:-<46}|{:->7}|{:->9}|{:->10}|{:->11}|{:->10}|",
        "", "", "", "", "", ""
    );
    let mut cases: Vec<&str> = Vec::new();
    if !skip_script {
        cases.push("script per ban (new SSH session, 1 commit)");
    }
    cases.push("commit per ban (kept session, 1 commit each)");
    cases.push("batched (1 edit-config, 1 commit)");
    for case in cases {
        // Start empty (and outside the measurement).
        let cleaner = NetconfSink::new("bench", &config, &env)?;
        rt.block_on(async {
            for chunk in removes.chunks(2000) {
                cleaner.apply_batch(chunk, deadline()).await;
            }
            cleaner.close().await;
        });
        anyhow::ensure!(
            nc.running().is_empty(),
            "the device is not empty before {case}"
        );
        let (commits0, logins0) = (nc.commits(), logins());
        let began = Instant::now();
        rt.block_on(async {
            if case.starts_with("script") {
                for c in &adds {
                    let s = NetconfSink::new("bench", &config, &env)?;
                    check(&s.apply_batch(std::slice::from_ref(c), deadline()).await)?;
                    s.close().await;
                }
            } else if case.starts_with("commit per ban") {
                let s = NetconfSink::new("bench", &config, &env)?;
                for c in &adds {
                    check(&s.apply_batch(std::slice::from_ref(c), deadline()).await)?;
                }
                s.close().await;
            } else {
                let s = NetconfSink::new("bench", &config, &env)?;
                check(&s.apply_batch(&adds, deadline()).await)?;
                s.close().await;
            }
            anyhow::Ok(())
        })?;
        // Every commit was confirmed: the device holds them all now (checked independently).
        let secs = began.elapsed().as_secs_f64();
        let (commits, sessions) = (nc.commits() - commits0, logins() - logins0);
        let held = nc.running().len();
        anyhow::ensure!(held == n, "{case}: the device holds {held} of {n}");
        println!(
            "| {:<44} | {:>5} | {:>7} | {:>8} | {:>9.2} | {:>8.0} |",
            case,
            n,
            commits,
            sessions,
            secs,
            n as f64 / secs
        );
    }
    Ok(())
}

fn check(out: &[netban_core::sink::Outcome]) -> anyhow::Result<()> {
    for o in out {
        if let Err(e) = o {
            anyhow::bail!("{}", e.message);
        }
    }
    Ok(())
}
