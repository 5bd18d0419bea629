//! Shared helpers of the NETCONF sink tests: a sink for the harness's netconfd, changes, leases.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use netban_core::Target;
use netban_core::config::SinkEnv;
use netban_core::sink::{Change, LeaseInfo, Outcome, Retry};
use netban_netconf::presets::Preset;
use netban_netconf::{NetconfConfig, NetconfSink};
use netban_testsupport::netconfd::Netconfd;

pub const HOST: &str = "web-01";
pub const MARK: &str = "netban:web-01:3f9a2c1d7e4b";

pub fn env() -> SinkEnv {
    SinkEnv {
        state_dir: std::env::temp_dir(),
        host_id: HOST.into(),
        mark: netban_core::owner::Mark::new("web-01", "3f9a2c1d7e4b"),
    }
}

/// Key login, known_hosts, the generic blocklist preset, candidate + lock.
pub fn config(nc: &Netconfd) -> NetconfConfig {
    NetconfConfig {
        host: Some(nc.host().into()),
        port: nc.port(),
        user: nc.user().into(),
        key_file: Some(nc.key_file()),
        known_hosts: Some(nc.known_hosts()),
        preset: Some(Preset::Blocklist),
        connect_timeout: 10.0,
        rpc_timeout: 30.0,
        ..NetconfConfig::default()
    }
}

pub fn sink_with(config: &NetconfConfig) -> NetconfSink {
    NetconfSink::new("edge-1", config, &env()).unwrap_or_else(|e| panic!("sink builds: {e}"))
}

pub fn sink(nc: &Netconfd) -> NetconfSink {
    sink_with(&config(nc))
}

pub fn lease(jail: &str) -> LeaseInfo {
    LeaseInfo {
        jail: jail.into(),
        origin: "local".into(),
        bantime: 3600,
        until: Some(4_000_000_000),
    }
}

pub fn target(s: &str) -> Target {
    Target::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn add(ip: &str) -> Change {
    add_jail(ip, "sshd")
}

pub fn add_jail(ip: &str, jail: &str) -> Change {
    Change::Add {
        target: target(ip),
        expires: None,
        lease: lease(jail),
        remote_id: None,
    }
}

pub fn remove(ip: &str) -> Change {
    Change::Remove {
        target: target(ip),
        remote_id: None,
        lease: lease("sshd"),
        adopted: false,
    }
}

pub fn within(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Asserts every outcome succeeded.
pub fn all_ok(out: &[Outcome]) {
    for (i, o) in out.iter().enumerate() {
        assert!(o.is_ok(), "outcome {i}: {o:?}");
    }
}

/// Asserts every outcome failed with `retry`, and returns the first message.
pub fn all_failed(out: &[Outcome], retry: Retry) -> String {
    assert!(!out.is_empty());
    for (i, o) in out.iter().enumerate() {
        match o {
            Err(e) => assert_eq!(e.retry, retry, "outcome {i}: {e:?}"),
            Ok(a) => panic!("outcome {i} succeeded: {a:?}"),
        }
    }
    match &out[0] {
        Err(e) => e.message.clone(),
        Ok(_) => unreachable!(),
    }
}

/// `192.0.2.0/24` is not enough for a thousand: 10.x.y.z hosts.
pub fn many(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255))
        .collect()
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
