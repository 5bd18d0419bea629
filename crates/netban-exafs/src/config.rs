//! `type = "exafs"`: the keys of an ExaFS RTBH sink.

use std::path::PathBuf;
use std::sync::Arc;

use netban_core::config::{DriverConfig, Secret, SinkEnv, SinkSpec, seconds, url_has_userinfo};
use netban_core::sink::Sink;
use netban_core::template::Template;
use serde::Deserialize;

pub const DEFAULT_COMMENT: &str = "{jail}";
pub const DEFAULT_PERMANENT_EXPIRY: i64 = 7 * 86_400;
pub const DEFAULT_TIMEOUT: f64 = 5.0;
pub const DEFAULT_CONCURRENCY: usize = 8;

/// `type = "exafs"`: RTBH rules through the ExaFS REST API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExafsConfig {
    /// Base URL of ExaFS, e.g. `https://exafs.example.net` (the API is under `/api/v3`).
    pub url: String,
    /// The API key (ExaFS > API keys), read-write and bound to this host's address.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// A file holding the API key instead (first line).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// The community id for RTBH rules (ExaFS > Communities).
    pub community: u32,
    /// Comment template for rules. netban puts its ownership mark
    /// (`netban:<host_id>:<instance>`) in front, unless the template places `{mark}` itself;
    /// which rules are netban's is decided by that mark, never by this text.
    #[serde(default = "default_comment")]
    pub comment: String,
    /// Remote expiry for permanent bans (seconds); renewed when half of it is left.
    #[serde(default = "default_permanent_expiry")]
    pub permanent_expiry: i64,
    /// Timeout of one HTTP request (seconds).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// PEM file with extra CA certificates for a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Comments of rules another tool made on this host's behalf (the old `exafs_action.py`),
    /// `*` matching any text: such a rule is treated like one made by an earlier netban state
    /// of this host — adopted when fail2ban bans its address (then extended, and deleted at
    /// the last unban), kept and listed otherwise, never deleted unbanned.
    #[serde(default)]
    pub adopt_comments: Vec<String>,
}

fn default_comment() -> String {
    DEFAULT_COMMENT.to_string()
}
fn default_permanent_expiry() -> i64 {
    DEFAULT_PERMANENT_EXPIRY
}
fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT
}
fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}

impl DriverConfig for ExafsConfig {
    fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url = {:?} must start with https:// (or http://)",
                netban_core::config::redact_userinfo(&self.url)
            ));
        }
        match (&self.api_key, &self.api_key_file) {
            (Some(_), Some(_)) => return Err("set api_key or api_key_file, not both".into()),
            (None, None) => return Err("api_key or api_key_file is required".into()),
            (Some(k), None) if k.expose().trim().is_empty() => {
                return Err("api_key is empty".into());
            }
            _ => {}
        }
        Template::parse(&self.comment).map_err(|e| format!("comment: {e}"))?;
        if !(3600..=10 * 365 * 86_400).contains(&self.permanent_expiry) {
            return Err(format!(
                "permanent_expiry = {} must be from 3600 seconds to 10 years",
                self.permanent_expiry
            ));
        }
        seconds("timeout", self.timeout, 0.01, 300.0)?;
        for p in &self.adopt_comments {
            crate::comment::Pattern::parse(p).map_err(|e| format!("adopt_comments: {e}"))?;
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(format!(
                "concurrency = {} must be 1 to 256",
                self.concurrency
            ));
        }
        Ok(())
    }
}

impl SinkSpec for ExafsConfig {
    fn has_inline_secret(&self) -> bool {
        self.api_key.is_some() || url_has_userinfo(&self.url)
    }

    fn files(&self) -> Vec<PathBuf> {
        self.api_key_file
            .iter()
            .chain(&self.ca_file)
            .cloned()
            .collect()
    }

    fn build(&self, name: &str, env: &SinkEnv) -> Result<Arc<dyn Sink>, String> {
        crate::ExafsSink::new(name, self, env)
            .map(|s| Arc::new(s) as Arc<dyn Sink>)
            .map_err(|e| e.to_string())
    }
}
