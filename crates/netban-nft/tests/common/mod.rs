//! Shared helpers of the nftables sink tests: building a sink from TOML, and the changes the
//! engine would send. Each test runs in its own network namespace (`netns::block_on`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use netban_core::config::SinkEnv;
use netban_core::owner::Mark;
use netban_core::sink::{Change, LeaseInfo, Outcome};
use netban_core::{Target, Until, clock};
use netban_nft::{NftConfig, NftSink};

pub const MARK: &str = "netban:web-01:3f9a2c1d7e4b";
pub const TABLE: &str = "netban";

/// The mark of [`MARK`].
pub fn mark() -> Mark {
    Mark::new("web-01", "3f9a2c1d7e4b")
}

pub fn env() -> SinkEnv {
    SinkEnv {
        state_dir: PathBuf::from("/nonexistent"),
        host_id: "web-01".into(),
        mark: mark(),
    }
}

pub fn config(text: &str) -> NftConfig {
    let c: NftConfig = toml::from_str(text).expect("config parses");
    c.validate().expect("config is valid");
    c
}

pub fn sink(text: &str) -> NftSink {
    NftSink::new("fw", &config(text), &env()).expect("sink builds")
}

pub fn t(s: &str) -> Target {
    Target::parse(s).expect("target")
}

pub fn now() -> i64 {
    clock::now()
}

pub fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

pub fn lease(until: Until) -> LeaseInfo {
    LeaseInfo {
        jail: "sshd".into(),
        origin: "local".into(),
        bantime: match until {
            Until::At(u) => u - now(),
            Until::Never => -1,
        },
        until: until.to_db(),
    }
}

/// A ban of `secs` seconds from now, as the engine sends it (expires = the lease end).
pub fn ban(target: &str, secs: i64) -> Change {
    let until = Until::At(now() + secs);
    Change::Add {
        target: t(target),
        expires: until.to_db(),
        lease: lease(until),
        remote_id: None,
    }
}

/// An extend: the target is on the sink (remote id = its set) and its lease now ends later.
pub fn extend(target: &str, set: &str, secs: i64) -> Change {
    match ban(target, secs) {
        Change::Add {
            target,
            expires,
            lease,
            ..
        } => Change::Add {
            target,
            expires,
            lease,
            remote_id: Some(set.into()),
        },
        other => other,
    }
}

pub fn ban_forever(target: &str) -> Change {
    Change::Add {
        target: t(target),
        expires: None,
        lease: lease(Until::Never),
        remote_id: None,
    }
}

pub fn unban(target: &str) -> Change {
    Change::Remove {
        target: t(target),
        remote_id: None,
        lease: lease(Until::At(now())),
        adopted: false,
    }
}

pub async fn apply(sink: &NftSink, changes: &[Change]) -> Vec<Outcome> {
    let out = sink.apply_batch(changes, deadline()).await;
    assert_eq!(out.len(), changes.len(), "one outcome per change");
    out
}

/// Applies and asserts every change succeeded.
pub async fn apply_ok(sink: &NftSink, changes: &[Change]) {
    for (c, o) in changes.iter().zip(apply(sink, changes).await) {
        if let Err(e) = o {
            panic!("{} {} failed: {}", c.verb(), c.target(), e.message);
        }
    }
}

/// Asserts a timeout the kernel shows is what `secs` from a moment ago gives.
pub fn assert_timeout(got: Option<u64>, secs: u64) {
    let got = got.expect("element has a timeout");
    assert!(
        got <= secs && got + 3 >= secs,
        "timeout {got} s, expected about {secs} s"
    );
}
