//! `type = "netconf"`: the driver's own keys of a `[[sink]]` (core takes out the common ones:
//! `name`, `type`, `jails`, `origins`, `min_origins`, `exclusive`, `batch_window`).
//!
//! ```toml
//! [[sink]]
//! name = "edge"
//! type = "netconf"
//! user = "netban"
//! key_file = "/etc/netban/netconf_ed25519"
//! known_hosts = "/etc/netban/netconf_known_hosts"
//! preset = "blocklist"
//! devices = [
//!   { name = "r1", host = "192.0.2.10" },
//!   { name = "r2", host = "192.0.2.11", host_key = "SHA256:..." },
//! ]
//! ```
//!
//! `devices` expands into one sink per device ([`NetconfConfig::expand`]), named
//! `edge.r1`, `edge.r2`; without `devices`, `host` names the one device. Field doc comments
//! are the user documentation (`docs/netconf.md`). Secrets come only from files.

use std::path::PathBuf;

use serde::Deserialize;

use crate::hostkey::is_fingerprint;
use crate::presets::{Ownership, Preset};

pub const DEFAULT_PORT: u16 = 830;
pub const DEFAULT_CONNECT_TIMEOUT: f64 = 10.0;
pub const DEFAULT_RPC_TIMEOUT: f64 = 60.0;
pub const DEFAULT_KEEPALIVE: f64 = 30.0;
pub const DEFAULT_MAX_BATCH: usize = 2000;
pub const DEFAULT_MAX_REPLY_MB: u64 = 64;

/// `datastore = "candidate" | "running"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datastore {
    /// Edit the candidate, then `<commit/>`: the device changes once per batch.
    #[default]
    Candidate,
    /// Edit the running configuration directly (devices without a candidate).
    Running,
}

impl Datastore {
    pub fn as_str(self) -> &'static str {
        match self {
            Datastore::Candidate => "candidate",
            Datastore::Running => "running",
        }
    }
}

/// One device of `devices = [...]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Short name; the sink is called `<sink name>.<device name>`.
    pub name: String,
    /// Address or DNS name.
    pub host: String,
    /// Overrides the sink's `port`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Overrides the sink's host key check with this pinned fingerprint.
    #[serde(default)]
    pub host_key: Option<String>,
}

/// The NETCONF sink's keys. See the module documentation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetconfConfig {
    /// The device's address or DNS name (or use `devices`).
    pub host: Option<String>,
    /// NETCONF over SSH port (default 830).
    pub port: u16,
    /// SSH login.
    pub user: String,
    /// File whose first line is the SSH password.
    pub password_file: Option<PathBuf>,
    /// Unencrypted OpenSSH private key file (ed25519, ecdsa or rsa).
    pub key_file: Option<PathBuf>,
    /// OpenSSH known_hosts file with the devices' host keys (`ssh-keyscan -p 830 HOST`).
    pub known_hosts: Option<PathBuf>,
    /// The device's pinned host key fingerprint, `SHA256:...` as `ssh-keygen -l` prints it.
    pub host_key: Option<String>,
    /// `candidate` (edit, then commit; default) or `running`.
    pub datastore: Datastore,
    /// Lock the datastore around each batch (default true), so nobody else's edit is
    /// committed along with netban's and nobody edits in between.
    pub lock: bool,
    /// After a failed edit or commit, `<discard-changes/>` the candidate (default true).
    /// `discard-changes`, the operation's own name, is accepted too.
    #[serde(alias = "discard-changes")]
    pub discard_changes: bool,
    /// `blocklist`, `128t` or `junos`: a shipped layout; the keys below override parts of it.
    pub preset: Option<Preset>,
    /// 128T tenant name / Junos prefix-list name (presets `128t`, `junos`).
    pub list_name: Option<String>,
    /// 128T neighborhood of the tenant member (preset `128t`).
    pub neighborhood: Option<String>,
    /// Wrapper around the entries of one edit, with `{entries}`: the content of `<config>`.
    pub config: Option<String>,
    /// One entry to add; placeholders `{prefix}`, `{jail}`, `{mark}`, ... (XML-escaped).
    pub add: Option<String>,
    /// One entry to remove, e.g. with `nc:operation="delete"` (`nc` is declared).
    pub remove: Option<String>,
    /// Subtree filter for `<get-config>` that selects the blocklist (drift repair, check).
    pub list_filter: Option<String>,
    /// Local name of the element of one entry in the listing (e.g. `entry`).
    pub entry_element: Option<String>,
    /// Local name of the child of an entry holding its prefix (e.g. `prefix`).
    pub prefix_element: Option<String>,
    /// Local name of the child of an entry holding its comment (e.g. `comment`).
    pub comment_element: Option<String>,
    /// `mark` (netban's entries carry `{mark}` in their comment) or `list` (every entry of
    /// the list is netban's).
    pub ownership: Option<Ownership>,
    /// Seconds for TCP connect, SSH login and hello together (default 10).
    pub connect_timeout: f64,
    /// Seconds for one rpc, e.g. a commit (default 60; Junos commits may need more).
    pub rpc_timeout: f64,
    /// Seconds between SSH keep-alives of the open session; 0 turns them off (default 30).
    pub keepalive: f64,
    /// Offer NETCONF base:1.1 (chunked framing; default true). false: base:1.0 only.
    pub base11: bool,
    /// Most changes in one edit-config and commit (default 2000).
    pub max_batch: usize,
    /// Biggest reply accepted from the device, in MiB (default 64).
    pub max_reply_mb: u64,
    /// Several devices with the same settings: one sink each.
    pub devices: Vec<DeviceConfig>,
}

impl Default for NetconfConfig {
    fn default() -> Self {
        NetconfConfig {
            host: None,
            port: DEFAULT_PORT,
            user: String::new(),
            password_file: None,
            key_file: None,
            known_hosts: None,
            host_key: None,
            datastore: Datastore::Candidate,
            lock: true,
            discard_changes: true,
            preset: None,
            list_name: None,
            neighborhood: None,
            config: None,
            add: None,
            remove: None,
            list_filter: None,
            entry_element: None,
            prefix_element: None,
            comment_element: None,
            ownership: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            keepalive: DEFAULT_KEEPALIVE,
            base11: true,
            max_batch: DEFAULT_MAX_BATCH,
            max_reply_mb: DEFAULT_MAX_REPLY_MB,
            devices: Vec::new(),
        }
    }
}

impl netban_core::config::DriverConfig for NetconfConfig {
    fn validate(&self) -> Result<(), String> {
        NetconfConfig::validate(self)
    }

    fn expand(self, name: &str) -> Vec<(String, Self)> {
        NetconfConfig::expand(&self, name)
    }
}

impl netban_core::config::SinkSpec for NetconfConfig {
    fn files(&self) -> Vec<std::path::PathBuf> {
        [&self.password_file, &self.key_file, &self.known_hosts]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        NetconfConfig::warnings(self)
    }

    fn build(
        &self,
        name: &str,
        env: &netban_core::config::SinkEnv,
    ) -> Result<std::sync::Arc<dyn netban_core::sink::Sink>, String> {
        crate::NetconfSink::new(name, self, env)
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn netban_core::sink::Sink>)
            .map_err(|e| e.to_string())
    }
}

impl NetconfConfig {
    /// One `(sink name, config of one device)` per device; the sink itself when it has no
    /// `devices`.
    pub fn expand(&self, name: &str) -> Vec<(String, NetconfConfig)> {
        if self.devices.is_empty() {
            return vec![(name.to_string(), self.clone())];
        }
        self.devices
            .iter()
            .map(|d| {
                let mut c = self.clone();
                c.devices = Vec::new();
                c.host = Some(d.host.clone());
                c.port = d.port.unwrap_or(self.port);
                if let Some(k) = &d.host_key {
                    c.host_key = Some(k.clone());
                    c.known_hosts = None;
                }
                (format!("{name}.{}", d.name), c)
            })
            .collect()
    }

    /// Checks the values serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.host, self.devices.is_empty()) {
            (Some(_), false) => return Err("set host or devices, not both".into()),
            (None, true) => return Err("host (or devices = [...]) is required".into()),
            (Some(h), true) => check_host("host", h)?,
            (None, false) => {
                let mut names = std::collections::HashSet::new();
                for d in &self.devices {
                    if d.name.is_empty()
                        || !d
                            .name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                    {
                        return Err(format!(
                            "devices: name {:?} may contain only letters, digits, - and _",
                            d.name
                        ));
                    }
                    if !names.insert(d.name.as_str()) {
                        return Err(format!("devices: two devices are named {:?}", d.name));
                    }
                    check_host(&format!("devices {:?}: host", d.name), &d.host)?;
                    if d.port == Some(0) {
                        return Err(format!("devices {:?}: port must not be 0", d.name));
                    }
                    if let Some(k) = &d.host_key {
                        check_fingerprint(&format!("devices {:?}: host_key", d.name), k)?;
                    }
                }
            }
        }
        if self.port == 0 {
            return Err("port must not be 0".into());
        }
        if self.user.is_empty() {
            return Err("user is required (the SSH login on the device)".into());
        }
        match (&self.password_file, &self.key_file) {
            (Some(_), Some(_)) => return Err("set password_file or key_file, not both".into()),
            (None, None) => return Err("password_file or key_file is required".into()),
            _ => {}
        }
        let every_device_pinned =
            !self.devices.is_empty() && self.devices.iter().all(|d| d.host_key.is_some());
        match (&self.known_hosts, &self.host_key) {
            (Some(_), Some(_)) => return Err("set known_hosts or host_key, not both".into()),
            (None, None) if !every_device_pinned => {
                return Err(
                    "known_hosts or host_key is required: netban never trusts an unknown host key"
                        .into(),
                );
            }
            (None, Some(k)) => check_fingerprint("host_key", k)?,
            _ => {}
        }
        for (key, v, max) in [
            ("connect_timeout", self.connect_timeout, 600.0),
            ("rpc_timeout", self.rpc_timeout, 3600.0),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= max) {
                return Err(format!("{key} = {v} must be between 0 and {max} seconds"));
            }
        }
        if !(self.keepalive.is_finite() && (0.0..=3600.0).contains(&self.keepalive)) {
            return Err(format!(
                "keepalive = {} must be 0 (off) to 3600 seconds",
                self.keepalive
            ));
        }
        if !(1..=100_000).contains(&self.max_batch) {
            return Err(format!(
                "max_batch = {} must be 1 to 100000",
                self.max_batch
            ));
        }
        if !(1..=1024).contains(&self.max_reply_mb) {
            return Err(format!(
                "max_reply_mb = {} must be 1 to 1024",
                self.max_reply_mb
            ));
        }
        self.layout().map(|_| ())
    }

    /// Modes that work but deserve a warning in the log and in `netban check`.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.lock && self.datastore == Datastore::Candidate {
            w.push("lock = false with the candidate datastore: a commit also commits whatever other sessions left uncommitted in the shared candidate".to_string());
            if self.discard_changes {
                w.push("discard_changes = true without lock: discarding after a failed edit also throws away other sessions' uncommitted edits".to_string());
            }
        }
        if !self.lock && self.datastore == Datastore::Running {
            w.push("lock = false with the running datastore: netban's edits are not serialised with other users'".to_string());
        }
        if let Ok(l) = self.layout() {
            if l.list_filter.is_none() {
                w.push("no list_filter: netban cannot read the blocklist back, so drift repair and the entry count of check are off".to_string());
            }
            if l.ownership == Ownership::List {
                w.push("ownership = \"list\": every entry of the list counts as netban's; one added by hand is adopted when banned and otherwise kept and reported (`stays on the sink` in netban status) until removed by hand; give netban a list of its own".to_string());
            }
        }
        w
    }
}

fn check_host(key: &str, h: &str) -> Result<(), String> {
    if h.is_empty()
        || h.len() > 253
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(format!(
            "{key} = {h:?} must be an IP address or a DNS name (no brackets, no port: use port)"
        ));
    }
    Ok(())
}

fn check_fingerprint(key: &str, k: &str) -> Result<(), String> {
    if is_fingerprint(k) {
        Ok(())
    } else {
        Err(format!(
            "{key} = {k:?} must be a SHA256 fingerprint as `ssh-keygen -lf KEY.pub` prints it, e.g. \"SHA256:pUheMeOU8mLxbL9G6rDUXwDQA1Ymc4DmPPFzvU0kiHI\""
        ))
    }
}
