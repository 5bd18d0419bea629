//! `[stats]`: where statistics go, which mmdb files enrich them, how long they are kept, and
//! in which time zone a day starts.
//!
//! Parsed like every other section (serde, unknown keys refused, one `impl Default` with
//! container-level `#[serde(default)]`), then [`StatsConfig::validate`] checks the values and
//! names the key that is wrong. The time zone is resolved with jiff from the system tz database
//! (`/usr/share/zoneinfo`, Debian package `tzdata`), so zone rules follow the OS updates.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use netban_core::config::Secret;
use serde::Deserialize;

pub const DEFAULT_RETENTION_DAYS: u32 = 400;
pub const DEFAULT_TIMEZONE: &str = "UTC";
pub const DEFAULT_PREFIX: &str = "netban";
/// The SQLite statistics file, in `state_dir`.
pub const SQLITE_FILE: &str = "stats.db";
/// Longest retention accepted (ten years of days).
pub const MAX_RETENTION_DAYS: u32 = 3660;

/// Which store keeps the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `stats.db` in the state directory: one host.
    #[default]
    Sqlite,
    /// A Redis shared by the fleet: every host writes its own bans, any host reads them all.
    Redis,
}

/// `[stats]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// `sqlite` (default) or `redis`.
    pub backend: BackendKind,
    /// A country mmdb file (MaxMind GeoLite2-Country, DB-IP country lite); optional. Re-read
    /// when the file is replaced.
    pub country_db: Option<PathBuf>,
    /// An ASN mmdb file (GeoLite2-ASN, DB-IP ASN lite); optional. Re-read when replaced.
    pub asn_db: Option<PathBuf>,
    /// Days of statistics to keep; older days are pruned.
    pub retention_days: u32,
    /// IANA time zone in which days start (e.g. `Europe/Prague`); default UTC. Every host of a
    /// fleet sharing a Redis should use the same zone.
    pub timezone: String,
    /// `redis://` or `rediss://` URL for `backend = "redis"`; default: the `[cluster]` Redis.
    pub redis: Option<Secret>,
    /// A file holding the Redis URL (one line), instead of `redis`.
    pub redis_file: Option<PathBuf>,
    /// Redis key prefix; default the `[cluster]` prefix, else `netban`. Keys are
    /// `PREFIX:stats:...`.
    pub prefix: Option<String>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            backend: BackendKind::Sqlite,
            country_db: None,
            asn_db: None,
            retention_days: DEFAULT_RETENTION_DAYS,
            timezone: DEFAULT_TIMEZONE.to_string(),
            redis: None,
            redis_file: None,
            prefix: None,
        }
    }
}

/// What is wrong with `[stats]`, naming the key and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[stats] {key}: {message}")]
pub struct StatsConfigError {
    pub key: &'static str,
    pub message: String,
}

fn invalid(key: &'static str, message: impl Into<String>) -> StatsConfigError {
    StatsConfigError {
        key,
        message: message.into(),
    }
}

impl StatsConfig {
    /// Checks the values without I/O (beyond the tz database for `timezone`).
    ///
    /// `cluster_redis` says whether `[cluster]` has a Redis URL the Redis backend may fall back
    /// to.
    pub fn validate(&self, cluster_redis: bool) -> Result<(), StatsConfigError> {
        if self.retention_days == 0 || self.retention_days > MAX_RETENTION_DAYS {
            return Err(invalid(
                "retention_days",
                format!(
                    "{} is out of range; use 1 to {MAX_RETENTION_DAYS} (default {DEFAULT_RETENTION_DAYS})",
                    self.retention_days
                ),
            ));
        }
        self.time_zone()?;
        if self.redis.is_some() && self.redis_file.is_some() {
            return Err(invalid("redis", "set either redis or redis_file, not both"));
        }
        if let Some(url) = &self.redis {
            check_url("redis", url.expose())?;
        }
        if let Some(prefix) = &self.prefix
            && (prefix.is_empty()
                || prefix.len() > 64
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)))
        {
            return Err(invalid(
                "prefix",
                format!(
                    "{prefix:?} is not a usable key prefix; use 1 to 64 letters, digits, '-', '_', '.', ':'"
                ),
            ));
        }
        if self.backend == BackendKind::Redis
            && self.redis.is_none()
            && self.redis_file.is_none()
            && !cluster_redis
        {
            return Err(invalid(
                "backend",
                "\"redis\" needs a Redis: set [stats] redis = \"redis://HOST:6379/0\" (or redis_file), \
                 or [cluster] redis",
            ));
        }
        for (key, path) in [("country_db", &self.country_db), ("asn_db", &self.asn_db)] {
            if let Some(p) = path
                && !p.is_absolute()
            {
                return Err(invalid(
                    key,
                    format!("{} is not an absolute path", p.display()),
                ));
            }
        }
        Ok(())
    }

    /// The configured zone, from the system tz database.
    pub fn time_zone(&self) -> Result<TimeZone, StatsConfigError> {
        if self.timezone == "UTC" {
            return Ok(TimeZone::UTC);
        }
        TimeZone::get(&self.timezone).map_err(|e| {
            invalid(
                "timezone",
                format!(
                    "{:?} is not a time zone of the system tz database ({e}); use an IANA name \
                     such as \"Europe/Prague\", or install tzdata",
                    self.timezone
                ),
            )
        })
    }

    /// The Redis URL: `redis`, else the first line of `redis_file`, else `cluster_redis`.
    pub fn redis_url(&self, cluster_redis: Option<&Secret>) -> Result<Secret, StatsConfigError> {
        if let Some(url) = &self.redis {
            return Ok(url.clone());
        }
        if let Some(path) = &self.redis_file {
            let url = read_url_file(path)?;
            check_url("redis_file", url.expose())?;
            return Ok(url);
        }
        cluster_redis.cloned().ok_or_else(|| {
            invalid(
                "redis",
                "no Redis URL: set [stats] redis or redis_file, or [cluster] redis",
            )
        })
    }

    /// The Redis key prefix: `prefix`, else the cluster's, else `netban`.
    pub fn redis_prefix(&self, cluster_prefix: Option<&str>) -> String {
        self.prefix
            .as_deref()
            .or(cluster_prefix)
            .unwrap_or(DEFAULT_PREFIX)
            .to_string()
    }

    /// `stats.db` in the state directory.
    pub fn sqlite_path(state_dir: &Path) -> PathBuf {
        state_dir.join(SQLITE_FILE)
    }
}

fn check_url(key: &'static str, url: &str) -> Result<(), StatsConfigError> {
    match netban_core::config::redis_url_problem(url) {
        Some(why) => Err(invalid(key, why)),
        None => Ok(()),
    }
}

fn read_url_file(path: &Path) -> Result<Secret, StatsConfigError> {
    netban_core::config::read_redis_url_file(path).map_err(|e| invalid("redis_file", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StatsConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_are_sqlite_utc_400_days() {
        let c = parse("").unwrap();
        assert_eq!(c.backend, BackendKind::Sqlite);
        assert_eq!(c.retention_days, 400);
        assert_eq!(c.timezone, "UTC");
        assert!(c.validate(false).is_ok());
    }

    #[test]
    fn design_example_parses() {
        let c = parse(
            r#"
backend = "sqlite"
country_db = "/var/lib/GeoIP/GeoLite2-Country.mmdb"
asn_db = "/var/lib/GeoIP/GeoLite2-ASN.mmdb"
retention_days = 400
timezone = "Europe/Prague"
"#,
        )
        .unwrap();
        c.validate(false).unwrap();
        assert_eq!(c.time_zone().unwrap().iana_name(), Some("Europe/Prague"));
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = parse("retention = 3").unwrap_err().to_string();
        assert!(e.contains("unknown field `retention`"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let c = parse("timezone = \"Mars/Olympus\"").unwrap();
        let e = c.validate(false).unwrap_err();
        assert_eq!(e.key, "timezone");
        assert!(
            e.to_string()
                .starts_with("[stats] timezone: \"Mars/Olympus\""),
            "{e}"
        );

        let c = parse("retention_days = 0").unwrap();
        assert_eq!(c.validate(false).unwrap_err().key, "retention_days");

        let c = parse("backend = \"redis\"").unwrap();
        assert_eq!(c.validate(false).unwrap_err().key, "backend");
        assert!(
            c.validate(true).is_ok(),
            "falls back to the [cluster] Redis"
        );

        let c = parse("backend = \"redis\"\nredis = \"http://x\"").unwrap();
        assert_eq!(c.validate(false).unwrap_err().key, "redis");

        let c = parse("prefix = \"a b\"").unwrap();
        assert_eq!(c.validate(false).unwrap_err().key, "prefix");

        let c = parse("country_db = \"GeoLite2.mmdb\"").unwrap();
        assert_eq!(c.validate(false).unwrap_err().key, "country_db");
    }

    #[test]
    fn redis_url_never_shows_the_password() {
        let c = parse("backend = \"redis\"\nredis = \"redis://:hunter2@127.0.0.1:1/0\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let bad = parse("redis = \"http://:hunter2@x\"").unwrap();
        assert!(
            !bad.validate(false)
                .unwrap_err()
                .to_string()
                .contains("hunter2")
        );
    }

    #[test]
    fn redis_url_from_file_or_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("redis.url");
        std::fs::write(&f, "\n  redis://127.0.0.1:6379/2 \n").unwrap();
        let c = StatsConfig {
            redis_file: Some(f),
            ..StatsConfig::default()
        };
        assert_eq!(
            c.redis_url(None).unwrap().expose(),
            "redis://127.0.0.1:6379/2"
        );
        let c = StatsConfig::default();
        let cluster = Secret::new("redis://10.0.0.1/0");
        assert_eq!(
            c.redis_url(Some(&cluster)).unwrap().expose(),
            "redis://10.0.0.1/0"
        );
        assert_eq!(c.redis_url(None).unwrap_err().key, "redis");
        assert_eq!(c.redis_prefix(Some("fleet")), "fleet");
        assert_eq!(c.redis_prefix(None), "netban");
    }
}
