//! The cluster, wired: `[cluster]` read into netban-cluster's config, and what the CLI and
//! the daemon need of it (the outbox consumers it keeps, the exclusive sinks' requirement,
//! the status lines).

use netban_cluster::{ClusterConfig, Verdict};
use netban_core::clock;
use netban_core::config::{Config, SinkDef};

use crate::exit::{CliError, CliResult};

/// `[cluster]`, when the config has it; exit 3 when it is wrong (naming the line).
pub fn config(config: &Config) -> CliResult<Option<ClusterConfig>> {
    let Some(section) = &config.cluster else {
        return Ok(None);
    };
    ClusterConfig::from_section(section)
        .map(Some)
        .map_err(|e| CliError::Config(e.to_string()))
}

/// An `exclusive` sink is written by the one daemon holding the fleet's lock, which lives in
/// the cluster's Redis: without one the sink would never be written.
pub fn check_exclusive(cluster: Option<&ClusterConfig>, sinks: &[SinkDef]) -> CliResult {
    let has_bus = cluster.is_some_and(ClusterConfig::has_redis);
    match sinks.iter().find(|s| s.common.exclusive) {
        Some(s) if !has_bus => Err(CliError::Config(format!(
            "sink {:?} is exclusive (one writer in the fleet), which needs the cluster's Redis for its lock: set [cluster] redis, or remove exclusive = true",
            s.name()
        ))),
        _ => Ok(()),
    }
}

/// The outbox consumers the cluster reads: their cursors hold back pruning.
pub fn consumers(cluster: Option<&ClusterConfig>) -> Vec<&'static str> {
    let Some(c) = cluster else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if c.has_redis() {
        out.push(netban_cluster::status::PUBLISHER_CONSUMER);
    }
    if c.fanout.as_ref().is_some_and(|f| f.publish) {
        out.push(netban_cluster::status::FANOUT_CONSUMER);
    }
    out
}

/// Lines for `netban status` and `netban cluster status`.
pub fn lines(s: &netban_cluster::ClusterStatus, daemon: bool) -> Vec<String> {
    let now = clock::now();
    let ago =
        |t: Option<i64>| t.map_or_else(|| "never".to_string(), |t| format!("{} ago", age(now - t)));
    let link = |l: &netban_cluster::status::LinkStatus| {
        if !daemon {
            "unknown (no daemon)".to_string()
        } else if l.connected {
            format!("connected {}", ago(l.since))
        } else {
            format!(
                "DOWN{}",
                l.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        }
    };
    let mut out = vec![format!("cluster: host {}", s.host)];
    if let Some(b) = &s.bus {
        out.push(format!(
            "  bus {}: publisher {}, receiver {}; {} event(s) waiting to be published{}",
            b.url.as_deref().unwrap_or("?"),
            link(&b.publisher),
            link(&b.receiver),
            b.publish_lag,
            b.lag_seconds.map(stream_lag).unwrap_or_default()
        ));
    }
    if let Some(f) = &s.fanout {
        out.push(format!("  fanout (unsigned): {}", link(f)));
    }
    for p in s.peers.iter().filter(|p| p.host != s.host) {
        let mut causes: Vec<(u64, &str)> = Verdict::COUNTED
            .into_iter()
            .filter(|v| v.is_refusal() && p.counts.get(*v) > 0)
            .map(|v| (p.counts.get(v), v.as_str()))
            .collect();
        causes.sort_by(|a, b| b.cmp(a));
        let refused: Vec<String> = causes
            .iter()
            .take(3)
            .map(|(n, cause)| format!("{n} {cause}"))
            .collect();
        out.push(format!(
            "  peer {}{}: last event {} (#{}), {} accepted, {} refused{}, caps hit {}, {} lease(s) here",
            p.host,
            if p.trusted { "" } else { " (not trusted)" },
            ago(p.last_event),
            p.sequence.seq,
            p.counts.accepted,
            p.refused,
            if refused.is_empty() {
                String::new()
            } else {
                format!(" ({})", refused.join(", "))
            },
            p.caps_hit,
            p.leases
        ));
    }
    for (sink, held) in &s.locks {
        out.push(format!(
            "  exclusive sink {sink}: {}",
            if *held {
                "this host holds the lock and writes it"
            } else {
                "standby (another host writes it)"
            }
        ));
    }
    out
}

/// The receiver against the stream's head.
fn stream_lag(seconds: f64) -> String {
    if seconds > 0.0 {
        format!(", reading {seconds:.1} s behind the stream")
    } else {
        ", caught up with the stream".to_string()
    }
}

fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}
