//! The plain sections of the config: `[guard]`, `[reconcile]`, `[daemon]`, `[web]`, `[log]`.
//!
//! Each struct denies unknown keys, takes its defaults from one `impl Default` (container-level
//! `#[serde(default)]`), and documents each key: these comments are the user documentation
//! (`docs/config.md`).

use std::path::PathBuf;

use serde::Deserialize;

use super::secret::Secret;

pub const DEFAULT_MAX_PREFIX_V4: u8 = 24;
pub const DEFAULT_MAX_PREFIX_V6: u8 = 64;
pub const DEFAULT_INLINE_DEADLINE: f64 = 3.0;
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:9180";
pub const DEFAULT_RESYNC_INTERVAL: f64 = 300.0;

/// `[guard]`: the policy every lease passes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Files with one CIDR per line (`#` comments): never ban what they cover. Re-read when
    /// they change; a file with a bad line keeps its last good version in force.
    pub allowlist: Vec<PathBuf>,
    /// CIDRs never to ban, inline.
    pub allow: Vec<String>,
    /// Refuse IPv4 targets wider than this prefix length (e.g. a /16 when 24).
    pub max_prefix_v4: u8,
    /// Refuse IPv6 targets wider than this prefix length.
    pub max_prefix_v6: u8,
    /// Never ban the addresses of this host's interfaces.
    pub protect_own_addresses: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            allowlist: Vec::new(),
            allow: Vec::new(),
            max_prefix_v4: DEFAULT_MAX_PREFIX_V4,
            max_prefix_v6: DEFAULT_MAX_PREFIX_V6,
            protect_own_addresses: true,
        }
    }
}

/// `[reconcile]`: delivery timing shared by every sink.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Without a daemon, how long `netban ban`/`unban` may spend delivering (seconds) before
    /// leaving the rest pending.
    pub inline_deadline: f64,
    /// First retry delay after a transient failure (seconds); doubles up to `retry_max`.
    pub retry_initial: f64,
    /// Longest retry delay (seconds).
    pub retry_max: f64,
    /// Retry delay after the remote side refused a change (validation, limit, permission).
    pub retry_refused: f64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            inline_deadline: DEFAULT_INLINE_DEADLINE,
            retry_initial: 2.0,
            retry_max: 300.0,
            retry_refused: 900.0,
        }
    }
}

/// `[daemon]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// The unix socket the CLI pokes; default `netban.sock` in `state_dir`.
    pub socket: Option<PathBuf>,
    /// How often the daemon checks the whole desired set against every sink, including
    /// listing what the remote side holds (seconds).
    pub resync_interval: f64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: None,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
        }
    }
}

/// `[web]`: dashboard, JSON API, /metrics, /healthz (daemon only).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// `host:port`; 127.0.0.1 unless you mean to expose it. Empty string disables.
    pub listen: String,
    /// A bearer token required for every request but /healthz.
    pub token: Option<Secret>,
    /// A file holding the token instead (first line).
    pub token_file: Option<PathBuf>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: DEFAULT_WEB_LISTEN.to_string(),
            token: None,
            token_file: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level for the log file, syslog and journald: error, warn, info, debug, trace.
    pub level: String,
    /// Append log lines to this file.
    pub file: Option<PathBuf>,
    /// Send log lines to the local syslog (/dev/log, facility daemon) when it exists.
    pub syslog: bool,
    /// Send log lines to journald.
    pub journald: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            file: None,
            syslog: true,
            journald: false,
        }
    }
}
