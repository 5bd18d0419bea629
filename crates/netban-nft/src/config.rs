//! `type = "nftables"`: the driver's own keys, their defaults and their validation.
//!
//! Only the driver's keys live here; the keys every `[[sink]]` has (`name`, `type`, `jails`,
//! `origins`, ...) are taken out by core before this struct is deserialized, so
//! `deny_unknown_fields` catches a misspelt driver key.
//!
//! With `create = true` (the default) netban owns one `inet` table: host sets (`set_v4`,
//! `set_v6`), one interval set per prefix length for networks (named `<net_set_v4>_<len>`,
//! made when a first network of that length is banned: prefixes of one length never overlap,
//! and the kernel refuses overlapping intervals, see `reference/nftables.md`), a chain per hook
//! with a drop rule per set. With `create = false` netban only fills sets the operator's
//! ruleset defines; each set key then names one existing set, and an absent key means targets
//! of that kind are refused with a message naming the key.

use std::path::PathBuf;

use serde::Deserialize;

/// The binary Debian's `nftables` package installs.
pub const DEFAULT_NFT: &str = "/usr/sbin/nft";
/// Seconds one `nft` call may take before it is killed.
pub const DEFAULT_TIMEOUT: f64 = 10.0;
/// Before most other filter chains (`filter` is 0), after conntrack (-200).
pub const DEFAULT_PRIORITY: i32 = -10;

/// A hook netban's chain attaches to, with its drop rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// Traffic to this host.
    Input,
    /// Traffic this host routes (a router, a host running containers or VMs).
    Forward,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Input => "input",
            Hook::Forward => "forward",
        }
    }
}

/// The driver keys of a `[[sink]]` with `type = "nftables"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NftConfig {
    /// The `inet` table holding the sets (and, with `create = true`, the chains).
    pub table: String,
    /// The set for IPv4 addresses (`type ipv4_addr; flags timeout`).
    pub set_v4: Option<String>,
    /// The set for IPv6 addresses (`type ipv6_addr; flags timeout`).
    pub set_v6: Option<String>,
    /// IPv4 networks: with `create = true` the stem of the per-prefix-length sets
    /// (`nets4_24`); with `create = false` one interval set of the operator's.
    pub net_set_v4: Option<String>,
    /// IPv6 networks, like `net_set_v4`.
    pub net_set_v6: Option<String>,
    /// The hooks that get a chain with drop rules (`create = true` only).
    pub hooks: Vec<Hook>,
    /// The priority of those chains.
    pub priority: i32,
    /// Create the table, sets, chains and rules when missing. `false`: only fill the sets the
    /// operator's ruleset defines; a missing set is an error naming it.
    pub create: bool,
    /// The `nft` binary (absolute path).
    pub nft: PathBuf,
    /// Seconds one `nft` call may take.
    pub timeout: f64,
}

impl Default for NftConfig {
    fn default() -> NftConfig {
        NftConfig {
            table: "netban".into(),
            set_v4: None,
            set_v6: None,
            net_set_v4: None,
            net_set_v6: None,
            hooks: vec![Hook::Input],
            priority: DEFAULT_PRIORITY,
            create: true,
            nft: PathBuf::from(DEFAULT_NFT),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The set names a sink uses, defaults filled in: see [`NftConfig::sets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNames {
    pub v4: Option<String>,
    pub v6: Option<String>,
    pub net_v4: Option<String>,
    pub net_v6: Option<String>,
}

/// The longest name accepted; per-length sets append up to four characters (`_128`), and the
/// kernel allows 255.
const MAX_NAME: usize = 64;

impl netban_core::config::DriverConfig for NftConfig {
    fn validate(&self) -> Result<(), String> {
        NftConfig::validate(self)
    }
}

impl netban_core::config::SinkSpec for NftConfig {
    fn build(
        &self,
        name: &str,
        env: &netban_core::config::SinkEnv,
    ) -> Result<std::sync::Arc<dyn netban_core::sink::Sink>, String> {
        Ok(std::sync::Arc::new(crate::NftSink::new(name, self, env)?))
    }
}

impl NftConfig {
    /// Checks the keys without touching the system; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        check_name("table", &self.table)?;
        for (key, value) in [
            ("set_v4", &self.set_v4),
            ("set_v6", &self.set_v6),
            ("net_set_v4", &self.net_set_v4),
            ("net_set_v6", &self.net_set_v6),
        ] {
            if let Some(v) = value {
                check_name(key, v)?;
            }
        }
        if self.create {
            let s = self.sets();
            let names = [&s.v4, &s.v6, &s.net_v4, &s.net_v6];
            for (i, a) in names.iter().enumerate() {
                if names[i + 1..].iter().any(|b| b == a) {
                    return Err(format!(
                        "set_v4, set_v6, net_set_v4 and net_set_v6 must differ with create = true (netban makes each set with its own type); {:?} is used twice",
                        a.as_deref().unwrap_or("")
                    ));
                }
            }
            if self.hooks.is_empty() {
                return Err(
                    "hooks is empty: with create = true netban needs at least one hook for its drop rules (\"input\" and/or \"forward\")"
                        .into(),
                );
            }
        } else if self.set_v4.is_none()
            && self.set_v6.is_none()
            && self.net_set_v4.is_none()
            && self.net_set_v6.is_none()
        {
            return Err(
                "create = false needs the sets to fill: set set_v4 and/or set_v6 (and net_set_v4 / net_set_v6 for networks) to sets of your ruleset's table"
                    .into(),
            );
        }
        let mut hooks = self.hooks.clone();
        hooks.sort();
        hooks.dedup();
        if hooks.len() != self.hooks.len() {
            return Err("hooks lists a hook twice".into());
        }
        if !(-1000..=1000).contains(&self.priority) {
            return Err(format!(
                "priority = {} is out of range (-1000 to 1000; the default -10 runs before the usual filter chains)",
                self.priority
            ));
        }
        if !self.nft.is_absolute() {
            return Err(format!(
                "nft = {:?} must be an absolute path (netban runs it without a shell or PATH lookup), e.g. {DEFAULT_NFT}",
                self.nft
            ));
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 600.0) {
            return Err(format!(
                "timeout = {} must be between 0 and 600 seconds",
                self.timeout
            ));
        }
        Ok(())
    }

    /// The set names, with the defaults of `create = true` filled in (`hosts4`, `hosts6`,
    /// `nets4`, `nets6`); with `create = false` an absent key stays absent.
    pub fn sets(&self) -> SetNames {
        let pick = |v: &Option<String>, default: &str| match v {
            Some(v) => Some(v.clone()),
            None if self.create => Some(default.to_string()),
            None => None,
        };
        SetNames {
            v4: pick(&self.set_v4, "hosts4"),
            v6: pick(&self.set_v6, "hosts6"),
            net_v4: pick(&self.net_set_v4, "nets4"),
            net_v6: pick(&self.net_set_v6, "nets6"),
        }
    }
}

/// Names nft accepts as identifiers, kept simple: a letter, then letters, digits, `_`, `-`.
fn check_name(key: &str, value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok
        || value.len() > MAX_NAME
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{key} = {value:?} is not a usable nftables name (a letter, then letters, digits, '_' or '-', at most {MAX_NAME} characters)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NftConfig, String> {
        let c: NftConfig = toml::from_str(text).map_err(|e| e.message().to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_make_a_table_of_netbans_own() {
        let c = parse("").unwrap();
        assert_eq!(c, NftConfig::default());
        assert_eq!(
            c.sets(),
            SetNames {
                v4: Some("hosts4".into()),
                v6: Some("hosts6".into()),
                net_v4: Some("nets4".into()),
                net_v6: Some("nets6".into()),
            }
        );
        assert_eq!(c.hooks, vec![Hook::Input]);
        assert_eq!(c.priority, -10);
    }

    #[test]
    fn operator_sets_keep_absent_keys_absent() {
        let c = parse("create = false\ntable = \"filter\"\nset_v4 = \"blocked4\"\n").unwrap();
        let s = c.sets();
        assert_eq!(s.v4.as_deref(), Some("blocked4"));
        assert_eq!(s.v6, None);
        assert_eq!(s.net_v4, None);
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("tabel = \"x\"", "unknown field `tabel`"),
            (
                "table = \"a b\"",
                "table = \"a b\" is not a usable nftables name",
            ),
            (
                "set_v4 = \"4x\"",
                "set_v4 = \"4x\" is not a usable nftables name",
            ),
            (
                "set_v4 = \"same\"\nset_v6 = \"same\"",
                "must differ with create = true",
            ),
            ("hooks = []", "hooks is empty"),
            ("hooks = [\"input\", \"input\"]", "hooks lists a hook twice"),
            ("hooks = [\"output\"]", "unknown variant `output`"),
            ("priority = 5000", "priority = 5000 is out of range"),
            ("nft = \"nft\"", "nft = \"nft\" must be an absolute path"),
            (
                "timeout = 0.0",
                "timeout = 0 must be between 0 and 600 seconds",
            ),
            ("create = false", "create = false needs the sets to fill"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            assert!(
                err.contains(want),
                "{text:?}: {err:?} should contain {want:?}"
            );
        }
    }
}
