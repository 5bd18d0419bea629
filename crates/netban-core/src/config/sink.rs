//! `[[sink]]`: the keys every sink has, and the seam a driver crate plugs into.
//!
//! Core reads the common keys ([`SinkCommon`]: name, type, filters, batching); the rest of
//! the table belongs to the driver, whose config struct ([`DriverConfig`]) lives in its own
//! crate and is deserialized from the same [`Section`] minus the common keys, so an unknown
//! key is an error with its line. The binary keeps the one list of drivers (`type` to config
//! struct); adding a sink is a crate plus one line there.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::ConfigError;
use super::section::Section;
use crate::lease::validate_jail;
use crate::owner::Mark;
use crate::sink::Sink;

/// The keys of `[[sink]]` that core reads; a driver never sees them.
pub const COMMON_KEYS: &[&str] = &[
    "name",
    "type",
    "jails",
    "origins",
    "min_origins",
    "exclusive",
    "batch_window",
];

/// Which leases a sink enforces, by origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginFilter {
    /// Bans from this host's fail2ban.
    Local,
    /// Bans received from peers.
    Peers,
}

/// The keys every `[[sink]]` has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SinkCommon {
    /// The sink's name: in logs, metrics, `list` and the state (records are per name).
    pub name: String,
    /// The driver: `exafs`, `exec`, `nftables`, `netconf`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Only leases of these jails.
    #[serde(default)]
    pub jails: Option<Vec<String>>,
    /// Only leases of these origins (`local`, `peers`); default both.
    #[serde(default)]
    pub origins: Option<Vec<OriginFilter>>,
    /// Enforce a target only while leases from at least this many distinct origins hold it.
    #[serde(default = "one")]
    pub min_origins: usize,
    /// One writer in the fleet at a time (a Redis lock; see the cluster).
    #[serde(default)]
    pub exclusive: bool,
    /// Seconds to collect changes before a batch goes out (default: the driver's).
    #[serde(default)]
    pub batch_window: Option<f64>,
}

fn one() -> usize {
    1
}

impl SinkCommon {
    /// True when this sink enforces leases of `jail` from `origin` (`"local"` or a peer id).
    pub fn wants(&self, jail: &str, origin: &str) -> bool {
        let jail_ok = self
            .jails
            .as_ref()
            .is_none_or(|js| js.iter().any(|j| j == jail));
        let origin_ok = self.origins.as_ref().is_none_or(|os| {
            os.iter().any(|o| match o {
                OriginFilter::Local => origin == "local",
                OriginFilter::Peers => origin != "local",
            })
        });
        jail_ok && origin_ok
    }

    /// The configured batch window, when set.
    pub fn window(&self) -> Option<Duration> {
        self.batch_window.map(Duration::from_secs_f64)
    }

    fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if !valid_name(name) {
            return Err(format!(
                "sink name {name:?} may contain only letters, digits and - _ . (1 to 64)"
            ));
        }
        for j in self.jails.iter().flatten() {
            validate_jail(j).map_err(|e| format!("sink {name:?}: jails: {e}"))?;
        }
        if !(1..=1000).contains(&self.min_origins) {
            return Err(format!(
                "sink {name:?}: min_origins = {} must be 1 to 1000",
                self.min_origins
            ));
        }
        if let Some(w) = self.batch_window
            && !(w.is_finite() && (0.0..=600.0).contains(&w))
        {
            return Err(format!(
                "sink {name:?}: batch_window = {w} must be between 0 and 600 seconds"
            ));
        }
        Ok(())
    }
}

/// A sink name, or a host id: letters, digits and `- _ .`, 1 to 64.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// What a driver needs from its surroundings to build a sink.
#[derive(Debug, Clone)]
pub struct SinkEnv {
    /// Where caches (tokens, listings) go; 0700.
    pub state_dir: PathBuf,
    /// This host's id (`{host}`).
    pub host_id: String,
    /// This instance's ownership mark, to store with every entry that can carry text.
    pub mark: Mark,
}

/// A driver's configuration, once read: it builds the sink.
pub trait SinkSpec: Send + Sync + fmt::Debug {
    /// True when the config holds a secret inline (an API key, a URL with a password): the
    /// config file must then not be readable by others.
    fn has_inline_secret(&self) -> bool {
        false
    }
    /// Files the sink reads when it is built (key files): a reload rebuilds the sink when one
    /// of them changed, and keeps it (sessions, tokens) otherwise.
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Risky but valid settings, said by `netban check` and at the daemon's start.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Builds the sink (no network I/O: that happens at its first use).
    fn build(&self, name: &str, env: &SinkEnv) -> Result<Arc<dyn Sink>, String>;
}

/// A driver config struct: serde (deny unknown fields), checked values, a sink.
pub trait DriverConfig: DeserializeOwned + SinkSpec + Sized + 'static {
    /// Checks values serde cannot; the message names the key.
    fn validate(&self) -> Result<(), String>;
    /// One `[[sink]]` may define several sinks (a NETCONF `devices` list): `(name, config)`
    /// each. Default: the one.
    fn expand(self, name: &str) -> Vec<(String, Self)> {
        vec![(name.to_string(), self)]
    }
}

/// One `[[sink]]` as core read it: the common keys, and the rest for the driver.
#[derive(Debug, Clone)]
pub struct SinkSection {
    pub common: SinkCommon,
    pub section: Section,
}

impl SinkSection {
    pub(super) fn read(section: Section) -> Result<SinkSection, ConfigError> {
        let common: SinkCommon = section.deserialize()?;
        common.validate().map_err(|m| section.invalid(m))?;
        Ok(SinkSection { common, section })
    }

    /// Reads the driver's keys into `C` and defines the sink(s).
    pub fn define<C: DriverConfig>(&self) -> Result<Vec<SinkDef>, ConfigError> {
        let config: C = self.section.without(COMMON_KEYS).deserialize()?;
        let name = &self.common.name;
        config
            .validate()
            .map_err(|m| self.section.invalid(format!("sink {name:?}: {m}")))?;
        let defs = config
            .expand(name)
            .into_iter()
            .map(|(name, c)| {
                let files = c.files();
                let mut common = self.common.clone();
                common.name = name;
                SinkDef {
                    fingerprint: fingerprint(self.section.text(), &common.name, &files),
                    common,
                    spec: Arc::new(c),
                }
            })
            .collect::<Vec<_>>();
        for d in &defs {
            if !valid_name(&d.common.name) {
                return Err(self.section.invalid(format!(
                    "sink name {:?} (from {name:?}) may contain only letters, digits and - _ .",
                    d.common.name
                )));
            }
        }
        Ok(defs)
    }

    /// An error about this sink's section (e.g. an unknown type).
    pub fn invalid(&self, message: impl Into<String>) -> ConfigError {
        self.section.invalid(message)
    }
}

/// A sink ready to build: its common keys, its driver's config, and what identifies this
/// exact configuration (a reload keeps a sink whose fingerprint did not change).
#[derive(Debug, Clone)]
pub struct SinkDef {
    pub common: SinkCommon,
    pub spec: Arc<dyn SinkSpec>,
    pub fingerprint: u64,
}

impl SinkDef {
    pub fn name(&self) -> &str {
        &self.common.name
    }
    pub fn kind(&self) -> &str {
        &self.common.kind
    }
}

/// A hash of the section's text, the sink's name, and the size and modification time of
/// every file it reads: equal fingerprints mean the sink would be built the same. (A hash,
/// not the text: the text may hold a secret.)
fn fingerprint(text: &str, name: &str, files: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut out = format!("{name}\n{text}\n");
    for f in files {
        match std::fs::metadata(Path::new(f)) {
            Ok(m) => out.push_str(&format!(
                "{} {} {} {}\n",
                f.display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            )),
            Err(_) => out.push_str(&format!("{} missing\n", f.display())),
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    out.hash(&mut h);
    h.finish()
}
