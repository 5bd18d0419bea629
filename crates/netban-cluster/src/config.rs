//! `[cluster]`: the Redis bus, this host's signing key, the trusted peers, the caps on what
//! peers may do, and the optional fail2ban-clusterd (fanout) bridge.
//!
//! Read like every other section: serde with unknown keys refused (the error names the line,
//! through [`Section::deserialize`]), one `impl Default` per struct with container-level
//! `#[serde(default)]`, then [`ClusterConfig::validate`] checks the values without I/O and
//! names the key that is wrong. The Redis URL may hold a password: it is a [`Secret`], never
//! echoed in an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netban_core::config::{ConfigError, Secret, Section, valid_name};
use netban_core::lease::validate_jail;
use serde::Deserialize;

use crate::sign::PublicKey;

pub const DEFAULT_PREFIX: &str = "netban";
pub const DEFAULT_KEY_FILE: &str = "/etc/netban/cluster.key";
/// A week of stream.
pub const DEFAULT_RETENTION: u64 = 604_800;
pub const DEFAULT_BANS_PER_MINUTE: u32 = 120;
pub const DEFAULT_ACTIVE_PER_ORIGIN: u32 = 20_000;
pub const DEFAULT_LOCK_TTL: f64 = 15.0;
pub const DEFAULT_FANOUT_CHANNEL: &str = "Fail2ban";
pub const DEFAULT_FANOUT_BANTIME: i64 = 3600;
/// The longest retention accepted: 90 days.
pub const MAX_RETENTION: u64 = 90 * 86_400;

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` URL of the bus (may hold `user:password@`).
    pub redis: Option<Secret>,
    /// A file holding the Redis URL on its first line, instead of `redis`.
    pub redis_file: Option<PathBuf>,
    /// Redis key prefix: keys are `PREFIX:bus:...` and `PREFIX:lock:...`.
    pub prefix: String,
    /// This host's Ed25519 secret key (`netban cluster keygen` writes it, 0600).
    pub key_file: PathBuf,
    /// Seconds the stream keeps events; a host that was away longer resyncs from the
    /// snapshot, and events older than this are refused.
    pub retention: u64,
    /// Peers whose fleet-wide unbans (`revoke`) are accepted; default every trusted peer.
    pub revoke_from: Option<Vec<String>>,
    /// Seconds an `exclusive` sink's hub lock lasts without renewal.
    pub lock_ttl: f64,
    /// Trusted peers: host id -> `ed25519:BASE64` public key.
    pub peers: BTreeMap<String, String>,
    pub limits: Limits,
    /// fail2ban-clusterd compatibility; off unless present.
    pub fanout: Option<FanoutConfig>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis: None,
            redis_file: None,
            prefix: DEFAULT_PREFIX.to_string(),
            key_file: PathBuf::from(DEFAULT_KEY_FILE),
            retention: DEFAULT_RETENTION,
            revoke_from: None,
            lock_ttl: DEFAULT_LOCK_TTL,
            peers: BTreeMap::new(),
            limits: Limits::default(),
            fanout: None,
        }
    }
}

/// `[cluster.limits]`: per origin (each peer, and `fanout`, on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// New bans accepted per origin per minute of the origin's clock; more are refused.
    pub bans_per_minute: u32,
    /// Live leases one origin may hold here; new bans beyond are refused.
    pub active_per_origin: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bans_per_minute: DEFAULT_BANS_PER_MINUTE,
            active_per_origin: DEFAULT_ACTIVE_PER_ORIGIN,
        }
    }
}

/// `[cluster.fanout]`: the fanout line protocol and fail2ban-clusterd's messages. Unsigned:
/// anybody who can reach the fanout server can send bans, so they are filtered, capped and
/// guarded like any origin (`fanout`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FanoutConfig {
    /// `HOST:PORT` of the fanout server (default port 1986).
    pub server: String,
    /// The channel clusterd uses.
    pub channel: String,
    /// Announce this host's bans and unbans in clusterd's format.
    pub publish: bool,
    /// Apply the bans and unbans received.
    pub receive: bool,
    /// Receive filter: only these jails (default all).
    pub jails: Option<Vec<String>>,
    /// Receive filter: only these actions (`banip`, `unbanip`; default both).
    pub actions: Option<Vec<String>>,
    /// The ban time given to received bans (clusterd's messages carry none); -1 permanent.
    pub bantime: i64,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            server: "127.0.0.1:1986".to_string(),
            channel: DEFAULT_FANOUT_CHANNEL.to_string(),
            publish: true,
            receive: true,
            jails: None,
            actions: None,
            bantime: DEFAULT_FANOUT_BANTIME,
        }
    }
}

/// What is wrong with `[cluster]`, naming the key and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[cluster] {key}: {message}")]
pub struct ClusterConfigError {
    pub key: String,
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ClusterConfigError {
    ClusterConfigError {
        key: key.into(),
        message: message.into(),
    }
}

impl ClusterConfig {
    /// Reads and validates `[cluster]` as the binary hands it over; errors name the line.
    pub fn from_section(section: &Section) -> Result<ClusterConfig, ConfigError> {
        let c: ClusterConfig = section.deserialize()?;
        c.validate().map_err(|e| section.invalid(e.to_string()))?;
        Ok(c)
    }

    /// Checks the values without I/O.
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        if self.redis.is_some() && self.redis_file.is_some() {
            return Err(invalid("redis", "set either redis or redis_file, not both"));
        }
        if let Some(url) = &self.redis {
            check_url("redis", url.expose())?;
        }
        if let Some(p) = &self.redis_file
            && !p.is_absolute()
        {
            return Err(invalid(
                "redis_file",
                format!("{} is not an absolute path", p.display()),
            ));
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(invalid(
                "prefix",
                format!(
                    "{:?} is not a usable key prefix; use 1 to 64 letters, digits, '-', '_', '.', ':'",
                    self.prefix
                ),
            ));
        }
        if !self.key_file.is_absolute() {
            return Err(invalid(
                "key_file",
                format!("{} is not an absolute path", self.key_file.display()),
            ));
        }
        if self.retention == 0 || self.retention > MAX_RETENTION {
            return Err(invalid(
                "retention",
                format!(
                    "{} is out of range; use 1 to {MAX_RETENTION} seconds (default {DEFAULT_RETENTION}, a week)",
                    self.retention
                ),
            ));
        }
        if !(self.lock_ttl.is_finite() && (1.0..=600.0).contains(&self.lock_ttl)) {
            return Err(invalid(
                "lock_ttl",
                format!("{} must be 1 to 600 seconds", self.lock_ttl),
            ));
        }
        for (host, key) in &self.peers {
            if !valid_name(host) || host == "local" || host == "fanout" {
                return Err(invalid(
                    format!("peers.{host}"),
                    "a peer's host id may contain only letters, digits and - _ . (1 to 64), and is not `local` or `fanout`",
                ));
            }
            PublicKey::parse(key).map_err(|e| invalid(format!("peers.{host}"), e))?;
        }
        // A name that is not a trusted peer is a warning ([`ClusterConfig::warnings`]); one that
        // cannot be a host id is a typo.
        for host in self.revoke_from.iter().flatten() {
            if !valid_name(host) {
                return Err(invalid(
                    "revoke_from",
                    format!("{host:?} is not a host id (letters, digits and - _ . , 1 to 64)"),
                ));
            }
        }
        let l = &self.limits;
        if l.bans_per_minute == 0 {
            return Err(invalid(
                "limits.bans_per_minute",
                "must be at least 1 (remove the peer from [cluster.peers] to refuse all of its bans)",
            ));
        }
        if l.active_per_origin == 0 {
            return Err(invalid("limits.active_per_origin", "must be at least 1"));
        }
        if let Some(f) = &self.fanout {
            f.validate()?;
        }
        if self.fanout.is_none() && self.redis.is_none() && self.redis_file.is_none() {
            return Err(invalid(
                "redis",
                "the cluster needs a bus: set redis = \"rediss://netban:PASSWORD@HOST:6379/0\" (or redis_file), or [cluster.fanout]",
            ));
        }
        Ok(())
    }

    /// Valid but doubtful settings, said by `netban check` and at the daemon's start, for the
    /// host `me`: a `revoke_from` name that is not a trusted peer (nor `me`, whose own
    /// revokes apply here when it asks for them) can never have a revoke verified.
    pub fn warnings(&self, me: &str) -> Vec<String> {
        self.revoke_from
            .iter()
            .flatten()
            .filter(|h| *h != me && !self.peers.contains_key(*h))
            .map(|h| {
                format!(
                    "revoke_from names {h}, which is not under [cluster.peers]: no revoke from it can be verified, so none will be accepted"
                )
            })
            .collect()
    }

    /// True when a Redis bus is configured.
    pub fn has_redis(&self) -> bool {
        self.redis.is_some() || self.redis_file.is_some()
    }

    /// The Redis URL: `redis`, else the first line of `redis_file`.
    pub fn redis_url(&self) -> Result<Secret, ClusterConfigError> {
        if let Some(url) = &self.redis {
            return Ok(url.clone());
        }
        let Some(path) = &self.redis_file else {
            return Err(invalid("redis", "no Redis URL: set redis or redis_file"));
        };
        let url = read_url_file(path)?;
        check_url("redis_file", url.expose())?;
        Ok(url)
    }

    /// The hub lock's time to live.
    pub fn lock_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.lock_ttl)
    }

    /// True when `peer`'s fleet-wide unbans are accepted.
    pub fn may_revoke(&self, peer: &str) -> bool {
        match &self.revoke_from {
            Some(list) => list.iter().any(|p| p == peer),
            None => self.peers.contains_key(peer),
        }
    }

    /// Files the cluster reads when it starts (a reload restarts it when one changed).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = vec![self.key_file.clone()];
        out.extend(self.redis_file.clone());
        out
    }
}

impl FanoutConfig {
    fn validate(&self) -> Result<(), ClusterConfigError> {
        let (host, port) = self
            .server
            .rsplit_once(':')
            .ok_or_else(|| invalid("fanout.server", "must be HOST:PORT, e.g. 127.0.0.1:1986"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(invalid(
                "fanout.server",
                format!("{:?} must be HOST:PORT, e.g. 127.0.0.1:1986", self.server),
            ));
        }
        // fanout ignores a channel with '!' (it separates channel and message on the wire).
        if self.channel.is_empty()
            || self.channel.len() > 64
            || !self
                .channel
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'!')
        {
            return Err(invalid(
                "fanout.channel",
                format!(
                    "{:?} must be 1 to 64 printable characters without spaces or '!'",
                    self.channel
                ),
            ));
        }
        for j in self.jails.iter().flatten() {
            validate_jail(j).map_err(|e| invalid("fanout.jails", e))?;
        }
        for a in self.actions.iter().flatten() {
            if a != "banip" && a != "unbanip" {
                return Err(invalid(
                    "fanout.actions",
                    format!("{a:?} is not banip or unbanip"),
                ));
            }
        }
        if self.bantime != -1 && !(1..=10 * 365 * 86_400).contains(&self.bantime) {
            return Err(invalid(
                "fanout.bantime",
                format!(
                    "{} must be -1 (permanent) or 1 to 315360000 seconds",
                    self.bantime
                ),
            ));
        }
        Ok(())
    }

    /// True when received messages of `jail` and `action` pass the filters.
    pub fn wants(&self, jail: &str, action: &str) -> bool {
        self.jails
            .as_ref()
            .is_none_or(|js| js.iter().any(|j| j == jail))
            && self
                .actions
                .as_ref()
                .is_none_or(|a| a.iter().any(|x| x == action))
    }
}

fn check_url(key: &str, url: &str) -> Result<(), ClusterConfigError> {
    match netban_core::config::redis_url_problem(url) {
        Some(why) => Err(invalid(key, why)),
        None => Ok(()),
    }
}

fn read_url_file(path: &Path) -> Result<Secret, ClusterConfigError> {
    netban_core::config::read_redis_url_file(path).map_err(|e| invalid("redis_file", e))
}

#[cfg(test)]
mod tests;
