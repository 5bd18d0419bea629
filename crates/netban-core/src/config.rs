//! The configuration file (TOML).
//!
//! Parsing happens in two stages, as in ripgrep: serde reads the file into plain structs
//! (unknown keys and wrong types are errors with the line), then [`Config::validate`] checks
//! the values without any I/O beyond reading key files. Defaults are constants next to the
//! field they belong to; the field doc comments are the user documentation (`docs/config.md`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::lease::validate_jail;
use crate::target::Target;
use crate::template::Template;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/netban/netban.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/netban";
pub const DEFAULT_MAX_PREFIX_V4: u8 = 24;
pub const DEFAULT_MAX_PREFIX_V6: u8 = 64;
pub const DEFAULT_INLINE_DEADLINE: f64 = 3.0;
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:9180";
pub const DEFAULT_EXAFS_COMMENT: &str = "netban {host} {jail}";
pub const DEFAULT_PERMANENT_EXPIRY: i64 = 7 * 86_400;
pub const DEFAULT_EXAFS_TIMEOUT: f64 = 5.0;
pub const DEFAULT_EXEC_TIMEOUT: f64 = 10.0;

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

/// A secret string (API key, token): never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite state, token caches and the daemon socket live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// This host's id on the cluster and in `{host}`; default: the host name.
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(default)]
    pub guard: GuardConfig,
    #[serde(default)]
    pub reconcile: ReconcileConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// The enforcement points.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<SinkConfig>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

/// `[guard]`: the policy every lease passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Files with one CIDR per line (`#` comments): never ban what they cover. Re-read when
    /// they change.
    #[serde(default)]
    pub allowlist: Vec<PathBuf>,
    /// CIDRs never to ban, inline.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Refuse IPv4 targets wider than this prefix length (e.g. a /16 when 24).
    #[serde(default = "default_v4")]
    pub max_prefix_v4: u8,
    /// Refuse IPv6 targets wider than this prefix length.
    #[serde(default = "default_v6")]
    pub max_prefix_v6: u8,
    /// Never ban the addresses of this host's interfaces.
    #[serde(default = "yes")]
    pub protect_own_addresses: bool,
}

fn default_v4() -> u8 {
    DEFAULT_MAX_PREFIX_V4
}
fn default_v6() -> u8 {
    DEFAULT_MAX_PREFIX_V6
}
fn yes() -> bool {
    true
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Without a daemon, how long `netban ban`/`unban` may spend delivering (seconds) before
    /// leaving the rest pending.
    #[serde(default = "default_inline_deadline")]
    pub inline_deadline: f64,
    /// First retry delay after a transient failure (seconds); doubles up to `retry_max`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: f64,
    /// Longest retry delay (seconds).
    #[serde(default = "default_retry_max")]
    pub retry_max: f64,
    /// Retry delay after the remote side refused a change (validation, limit, permission).
    #[serde(default = "default_retry_refused")]
    pub retry_refused: f64,
}

fn default_inline_deadline() -> f64 {
    DEFAULT_INLINE_DEADLINE
}
fn default_retry_initial() -> f64 {
    2.0
}
fn default_retry_max() -> f64 {
    300.0
}
fn default_retry_refused() -> f64 {
    900.0
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            inline_deadline: DEFAULT_INLINE_DEADLINE,
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            retry_refused: default_retry_refused(),
        }
    }
}

/// `[daemon]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// The unix socket the CLI pokes; default `netban.sock` in `state_dir`.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// How often the daemon checks the whole desired set against every sink, including
    /// listing what the remote side holds (seconds); default 300.
    #[serde(default)]
    pub resync_interval: Option<f64>,
}

/// `[web]`: dashboard, JSON API, /metrics, /healthz (daemon only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// `host:port`; 127.0.0.1 unless you mean to expose it. Empty string disables.
    #[serde(default = "default_web_listen")]
    pub listen: String,
    /// A bearer token required for every request but /healthz.
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_web_listen() -> String {
    DEFAULT_WEB_LISTEN.to_string()
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: default_web_listen(),
            token: None,
            token_file: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Level for the log file, syslog and journald: error, warn, info, debug, trace.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// Append log lines to this file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Send log lines to the local syslog (/dev/log, facility daemon) when it exists.
    #[serde(default = "yes")]
    pub syslog: bool,
    /// Send log lines to journald.
    #[serde(default)]
    pub journald: bool,
}

fn default_log_level() -> String {
    "info".to_string()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            file: None,
            syslog: true,
            journald: false,
        }
    }
}

/// Which leases a sink enforces, by origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginFilter {
    /// Bans from this host's fail2ban.
    Local,
    /// Bans received from peers.
    Peers,
}

/// One `[[sink]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    Exafs(ExafsConfig),
    Exec(ExecConfig),
}

/// The keys every sink has.
#[derive(Debug, Clone, Copy)]
pub struct SinkCommon<'a> {
    pub name: &'a str,
    pub jails: Option<&'a [String]>,
    pub origins: Option<&'a [OriginFilter]>,
}

impl SinkConfig {
    pub fn common(&self) -> SinkCommon<'_> {
        match self {
            SinkConfig::Exafs(c) => SinkCommon {
                name: &c.name,
                jails: c.jails.as_deref(),
                origins: c.origins.as_deref(),
            },
            SinkConfig::Exec(c) => SinkCommon {
                name: &c.name,
                jails: c.jails.as_deref(),
                origins: c.origins.as_deref(),
            },
        }
    }

    pub fn name(&self) -> &str {
        self.common().name
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Exafs(_) => "exafs",
            SinkConfig::Exec(_) => "exec",
        }
    }

    /// True when this sink enforces leases of `jail` from `origin` (`"local"` or a peer id).
    pub fn wants(&self, jail: &str, origin: &str) -> bool {
        let c = self.common();
        let jail_ok = c.jails.is_none_or(|js| js.iter().any(|j| j == jail));
        let origin_ok = c.origins.is_none_or(|os| {
            os.iter().any(|o| match o {
                OriginFilter::Local => origin == "local",
                OriginFilter::Peers => origin != "local",
            })
        });
        jail_ok && origin_ok
    }
}

/// `type = "exafs"`: RTBH rules through the ExaFS REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExafsConfig {
    pub name: String,
    #[serde(default)]
    pub jails: Option<Vec<String>>,
    #[serde(default)]
    pub origins: Option<Vec<OriginFilter>>,
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
    /// Comment template for rules; netban recognises its rules by this mark.
    #[serde(default = "default_exafs_comment")]
    pub comment: String,
    /// Remote expiry for permanent bans (seconds); renewed when half of it is left.
    #[serde(default = "default_permanent_expiry")]
    pub permanent_expiry: i64,
    /// Timeout of one HTTP request (seconds).
    #[serde(default = "default_exafs_timeout")]
    pub timeout: f64,
    /// Requests in flight at once.
    #[serde(default = "default_exafs_concurrency")]
    pub concurrency: usize,
    /// PEM file with extra CA certificates for a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_exafs_comment() -> String {
    DEFAULT_EXAFS_COMMENT.to_string()
}
fn default_permanent_expiry() -> i64 {
    DEFAULT_PERMANENT_EXPIRY
}
fn default_exafs_timeout() -> f64 {
    DEFAULT_EXAFS_TIMEOUT
}
fn default_exafs_concurrency() -> usize {
    8
}

/// `type = "exec"`: run a command per ban and unban, without a shell.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    pub name: String,
    #[serde(default)]
    pub jails: Option<Vec<String>>,
    #[serde(default)]
    pub origins: Option<Vec<OriginFilter>>,
    /// argv for a ban; the first element is the program (absolute path, or looked up in PATH).
    pub ban: Vec<String>,
    /// argv for an unban; omit when the command has nothing to undo.
    #[serde(default)]
    pub unban: Option<Vec<String>>,
    /// Seconds before the command is killed and counted as failed.
    #[serde(default = "default_exec_timeout")]
    pub timeout: f64,
}

fn default_exec_timeout() -> f64 {
    DEFAULT_EXEC_TIMEOUT
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

    /// Parses and validates config text; `path` is used in messages and to resolve nothing
    /// else.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(text, &e),
        })?;
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
            && (h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(format!(
                "host_id = {h:?} may contain only letters, digits and - _ ."
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
        for (key, v) in [
            ("reconcile.inline_deadline", r.inline_deadline),
            ("reconcile.retry_initial", r.retry_initial),
            ("reconcile.retry_max", r.retry_max),
            ("reconcile.retry_refused", r.retry_refused),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return Err(format!(
                    "{key} = {v} must be a number of seconds between 0 and 86400"
                ));
            }
        }
        if let Some(v) = self.daemon.resync_interval
            && !(v.is_finite() && v >= 1.0)
        {
            return Err(format!(
                "daemon.resync_interval = {v} must be at least 1 second"
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            return Err(format!(
                "log.level = {:?} must be one of error, warn, info, debug, trace",
                self.log.level
            ));
        }
        if self.web.token.is_some() && self.web.token_file.is_some() {
            return Err("web: set token or token_file, not both".to_string());
        }
        let mut names = std::collections::HashSet::new();
        for sink in &self.sinks {
            let c = sink.common();
            let name = c.name;
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "sink name {name:?} may contain only letters, digits and - _ ."
                ));
            }
            if !names.insert(name) {
                return Err(format!(
                    "two sinks are named {name:?}; sink names must be unique"
                ));
            }
            for j in c.jails.unwrap_or_default() {
                validate_jail(j).map_err(|e| format!("sink {name:?}: jails: {e}"))?;
            }
            match sink {
                SinkConfig::Exafs(x) => validate_exafs(x)?,
                SinkConfig::Exec(x) => validate_exec(x)?,
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
        hostname().unwrap_or_else(|| "localhost".to_string())
    }

    /// True when some sink holds a secret inline (so the file must not be world-readable).
    pub fn has_inline_secret(&self) -> bool {
        self.web.token.is_some()
            || self
                .sinks
                .iter()
                .any(|s| matches!(s, SinkConfig::Exafs(x) if x.api_key.is_some()))
    }
}

fn validate_exafs(x: &ExafsConfig) -> Result<(), String> {
    let name = &x.name;
    if !(x.url.starts_with("http://") || x.url.starts_with("https://")) {
        return Err(format!(
            "sink {name:?}: url = {:?} must start with https:// (or http://)",
            x.url
        ));
    }
    match (&x.api_key, &x.api_key_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "sink {name:?}: set api_key or api_key_file, not both"
            ));
        }
        (None, None) => {
            return Err(format!(
                "sink {name:?}: api_key or api_key_file is required"
            ));
        }
        (Some(k), None) if k.expose().trim().is_empty() => {
            return Err(format!("sink {name:?}: api_key is empty"));
        }
        _ => {}
    }
    Template::parse(&x.comment).map_err(|e| format!("sink {name:?}: comment: {e}"))?;
    if x.permanent_expiry < 3600 {
        return Err(format!(
            "sink {name:?}: permanent_expiry = {} must be at least 3600 seconds",
            x.permanent_expiry
        ));
    }
    if !(x.timeout.is_finite() && x.timeout > 0.0 && x.timeout <= 300.0) {
        return Err(format!(
            "sink {name:?}: timeout = {} must be between 0 and 300 seconds",
            x.timeout
        ));
    }
    if !(1..=256).contains(&x.concurrency) {
        return Err(format!(
            "sink {name:?}: concurrency = {} must be 1 to 256",
            x.concurrency
        ));
    }
    Ok(())
}

fn validate_exec(x: &ExecConfig) -> Result<(), String> {
    let name = &x.name;
    for (key, argv) in [("ban", Some(&x.ban)), ("unban", x.unban.as_ref())] {
        let Some(argv) = argv else { continue };
        let Some(program) = argv.first() else {
            return Err(format!(
                "sink {name:?}: {key} must name a program: [\"/path/to/program\", \"{{ip}}\"]"
            ));
        };
        if program.contains('{') {
            return Err(format!(
                "sink {name:?}: {key}: the program ({program:?}) cannot be a template"
            ));
        }
        for arg in argv {
            Template::parse(arg).map_err(|e| format!("sink {name:?}: {key}: {e}"))?;
        }
    }
    if !(x.timeout.is_finite() && x.timeout > 0.0 && x.timeout <= 3600.0) {
        return Err(format!(
            "sink {name:?}: timeout = {} must be between 0 and 3600 seconds",
            x.timeout
        ));
    }
    Ok(())
}

/// toml's message already says "line N, column M"; keep it, on one line per part.
fn describe_toml_error(_text: &str, e: &toml::de::Error) -> String {
    e.to_string().trim_end().to_string()
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/netban/netban.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_config_has_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/netban"));
        assert_eq!(c.guard.max_prefix_v4, 24);
        assert_eq!(c.web.listen, "127.0.0.1:9180");
        assert!(c.sinks.is_empty());
    }

    #[test]
    fn unknown_top_level_key_names_key_and_line() {
        let e = parse("state_dir = \"/tmp/x\"\n\nstate_dri = \"/x\"\n").unwrap_err();
        assert!(e.contains("state_dri"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn unknown_sink_key_names_key_and_line() {
        let text = "[[sink]]\nname = \"x\"\ntype = \"exafs\"\nurl = \"http://e\"\napi_key = \"k\"\ncommunity = 1\napi_kye = \"oops\"\n";
        let e = parse(text).unwrap_err();
        assert!(e.contains("api_kye"), "{e}");
        assert!(e.contains("line "), "{e}");
    }

    #[test]
    fn wrong_type_names_line() {
        let e = parse("[guard]\nmax_prefix_v4 = \"24\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let base = "[[sink]]\nname = \"x\"\ntype = \"exafs\"\ncommunity = 1\n";
        assert!(
            parse(&format!("{base}url = \"ftp://e\"\napi_key = \"k\"\n"))
                .unwrap_err()
                .contains("url")
        );
        assert!(
            parse(&format!("{base}url = \"http://e\"\n"))
                .unwrap_err()
                .contains("api_key")
        );
        let e = parse("[[sink]]\nname=\"n\"\ntype=\"exec\"\nban=[\"/bin/echo\",\"{jial}\"]\n")
            .unwrap_err();
        assert!(e.contains("{jial}"), "{e}");
        let e = parse("[[sink]]\nname=\"n\"\ntype=\"nope\"\n").unwrap_err();
        assert!(e.contains("nope"), "{e}");
        assert!(
            parse("[guard]\nallow = [\"10.0.0.0/33\"]\n")
                .unwrap_err()
                .contains("guard.allow")
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = parse("[[sink]]\nname=\"x\"\ntype=\"exafs\"\nurl=\"http://e\"\napi_key=\"sekrit-key\"\ncommunity=1\n").unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sekrit-key"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
        assert!(c.has_inline_secret());
    }

    #[test]
    fn sink_filters() {
        let c = parse("[[sink]]\nname=\"n\"\ntype=\"exec\"\nban=[\"/bin/true\"]\njails=[\"sshd\"]\norigins=[\"local\"]\n").unwrap();
        assert!(c.sinks[0].wants("sshd", "local"));
        assert!(!c.sinks[0].wants("postfix", "local"));
        assert!(!c.sinks[0].wants("sshd", "web-02"));
    }
}
