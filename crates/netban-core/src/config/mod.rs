//! The configuration file (TOML).
//!
//! Parsing happens in two stages, as in ripgrep: serde reads the file into plain structs
//! (unknown keys and wrong types are errors with the line), then [`Config::validate`] checks
//! the values without I/O. Parts that other crates own (each `[[sink]]`'s driver keys,
//! `[stats]`, `[cluster]`) are kept as [`Section`]s and read by their crate; see
//! [`section`] and [`sink`].
//!
//! - [`sections`]: `[guard]`, `[reconcile]`, `[daemon]`, `[web]`, `[log]`;
//! - [`secret`]: secrets that never print, and URL credentials redacted;
//! - [`sink`]: the common `[[sink]]` keys and the driver seam.

pub mod secret;
pub mod section;
pub mod sections;
pub mod sink;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use secret::{
    Secret, read_redis_url_file, redact_userinfo, redis_tls_hint, redis_url_problem,
    url_has_userinfo,
};
pub use section::Section;
pub use sections::*;
pub use sink::{
    DriverConfig, OriginFilter, SinkCommon, SinkDef, SinkEnv, SinkSection, SinkSpec, valid_name,
};

use crate::target::Target;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/netban/netban.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/netban";

/// A configuration error for the operator: what is wrong, where, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What core reads of the file directly.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Plain {
    state_dir: PathBuf,
    host_id: Option<String>,
    guard: GuardConfig,
    reconcile: ReconcileConfig,
    daemon: DaemonConfig,
    web: WebConfig,
    log: LogConfig,
}

impl Default for Plain {
    fn default() -> Self {
        Plain {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            host_id: None,
            guard: GuardConfig::default(),
            reconcile: ReconcileConfig::default(),
            daemon: DaemonConfig::default(),
            web: WebConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the SQLite state, token caches and the daemon socket live.
    pub state_dir: PathBuf,
    /// This host's id on the cluster, in `{host}` and in the ownership mark; default: the
    /// host name (warned about: clones share it).
    pub host_id: Option<String>,
    pub guard: GuardConfig,
    pub reconcile: ReconcileConfig,
    pub daemon: DaemonConfig,
    pub web: WebConfig,
    pub log: LogConfig,
    /// The enforcement points, as core read them; the binary hands each to its driver.
    pub sinks: Vec<SinkSection>,
    /// `[stats]`, read by netban-stats.
    pub stats: Option<Section>,
    /// `[cluster]`, read by netban-cluster.
    pub cluster: Option<Section>,
    /// The file it came from.
    pub path: PathBuf,
}

impl Config {
    /// Reads, parses and validates the config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (plain, parts): (Plain, _) = section::split(
            text,
            path,
            &[("sink", true), ("stats", false), ("cluster", false)],
        )?;
        let mut config = Config {
            state_dir: plain.state_dir,
            host_id: plain.host_id,
            guard: plain.guard,
            reconcile: plain.reconcile,
            daemon: plain.daemon,
            web: plain.web,
            log: plain.log,
            sinks: Vec::new(),
            stats: None,
            cluster: None,
            path: path.to_path_buf(),
        };
        for (key, s) in parts {
            match key {
                "sink" => config.sinks.push(SinkSection::read(s)?),
                "stats" => config.stats = Some(s),
                _ => config.cluster = Some(s),
            }
        }
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Checks values that serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.state_dir.is_absolute() {
            return Err(format!(
                "state_dir = {:?} must be an absolute path",
                self.state_dir
            ));
        }
        if let Some(h) = &self.host_id
            && !valid_name(h)
        {
            return Err(format!(
                "host_id = {h:?} may contain only letters, digits and - _ . (1 to 64)"
            ));
        }
        let g = &self.guard;
        if !(1..=32).contains(&g.max_prefix_v4) {
            return Err(format!(
                "guard.max_prefix_v4 = {} must be 1 to 32",
                g.max_prefix_v4
            ));
        }
        if !(1..=128).contains(&g.max_prefix_v6) {
            return Err(format!(
                "guard.max_prefix_v6 = {} must be 1 to 128",
                g.max_prefix_v6
            ));
        }
        for a in &g.allow {
            Target::parse(a).map_err(|e| format!("guard.allow: {e}"))?;
        }
        let r = &self.reconcile;
        seconds("reconcile.inline_deadline", r.inline_deadline, 0.01, 3600.0)?;
        seconds("reconcile.retry_initial", r.retry_initial, 0.01, 86_400.0)?;
        seconds("reconcile.retry_max", r.retry_max, 0.01, 86_400.0)?;
        seconds("reconcile.retry_refused", r.retry_refused, 0.01, 86_400.0)?;
        seconds(
            "daemon.resync_interval",
            self.daemon.resync_interval,
            1.0,
            7.0 * 86_400.0,
        )?;
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            return Err(format!(
                "log.level = {:?} must be one of error, warn, info, debug, trace",
                self.log.level
            ));
        }
        let w = &self.web;
        if w.token.is_some() && w.token_file.is_some() {
            return Err("web: set token or token_file, not both".to_string());
        }
        if let Some(t) = &w.token
            && t.expose().trim().is_empty()
        {
            return Err(
                "web.token is empty, which would turn authentication off; set a long random token or remove the key"
                    .to_string(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.sinks {
            if !names.insert(s.common.name.as_str()) {
                return Err(format!(
                    "two sinks are named {:?}; sink names must be unique",
                    s.common.name
                ));
            }
        }
        Ok(())
    }

    /// The socket path of the daemon.
    pub fn socket_path(&self) -> PathBuf {
        self.daemon
            .socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("netban.sock"))
    }

    /// The configured host id, or the host name.
    pub fn host_id(&self) -> String {
        if let Some(h) = &self.host_id {
            return h.clone();
        }
        hostname()
            .filter(|h| valid_name(h))
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// True when the file holds a secret inline (so it must not be readable by others):
    /// the web token, or what a sink's driver says (an API key, a URL with a password).
    pub fn has_inline_secret(&self, sinks: &[SinkDef]) -> bool {
        self.web.token.is_some()
            || sinks.iter().any(|s| s.spec.has_inline_secret())
            || [&self.stats, &self.cluster]
                .into_iter()
                .flatten()
                .any(|s| url_has_userinfo(s.text()))
    }
}

/// Checks a number of seconds: finite and within `[min, max]` (a huge value would overflow a
/// `Duration` and abort the process: issue 6).
pub fn seconds(key: &str, v: f64, min: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && v >= min && v <= max {
        Ok(())
    } else {
        Err(format!(
            "{key} = {v} must be a number of seconds from {min} to {max}"
        ))
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (and we bound the search to the buffer anyway).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests;
