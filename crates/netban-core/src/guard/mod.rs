//! The guard: the policy every lease passes before it can become a ban, local or remote.
//!
//! A target is refused when it overlaps a range that must never be banned (loopback,
//! unspecified, link-local, multicast, broadcast, this host's own addresses, the allowlists),
//! or when it is wider than `max_prefix_v4` / `max_prefix_v6`. A refusal is not an error:
//! the caller logs one line saying why and moves on (fail2ban would otherwise retry).
//!
//! Allowlist files are re-read when they change ([`allowlist`]); a broken one never stops a
//! ban: its last good version stays in force and the problem is reported.

mod allowlist;

use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::config::GuardConfig;
use crate::target::Target;
use allowlist::{AllowFile, Protected};

/// Ranges that are never banned, whatever the config says.
const NEVER_BAN: &[(&str, &str)] = &[
    ("0.0.0.0/8", "the unspecified/\"this network\" range"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "the unspecified address"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// Why the guard refused a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The guard, built from `[guard]`.
#[derive(Debug, Clone)]
pub struct Guard {
    max_v4: u8,
    max_v6: u8,
    fixed: Vec<Protected>,
    files: Vec<AllowFile>,
    /// Where the last good copy of each allowlist is kept (`state_dir/allowlists`).
    cache: Option<PathBuf>,
}

impl Guard {
    /// Builds the guard, reading allowlist files and (when configured) this host's addresses.
    /// `state_dir` keeps the last good copy of each allowlist; a broken file never fails
    /// this (see [`Guard::problems`]).
    pub fn new(cfg: &GuardConfig, state_dir: Option<&Path>) -> Guard {
        let mut fixed: Vec<Protected> = NEVER_BAN
            .iter()
            .filter_map(|(net, why)| {
                net.parse().ok().map(|net| Protected {
                    net,
                    why: (*why).to_string(),
                })
            })
            .collect();
        for a in &cfg.allow {
            // Config validation already parsed these; skip (never panic) if one slipped by.
            if let Ok(t) = Target::parse(a) {
                fixed.push(Protected {
                    net: t.net(),
                    why: format!("guard.allow {t}"),
                });
            }
        }
        if cfg.protect_own_addresses {
            for addr in own_addresses() {
                let t = Target::from_net(IpNet::from(addr));
                fixed.push(Protected {
                    net: t.net(),
                    why: format!("this host's address {addr}"),
                });
            }
        }
        let mut guard = Guard {
            max_v4: cfg.max_prefix_v4,
            max_v6: cfg.max_prefix_v6,
            fixed,
            files: cfg.allowlist.iter().cloned().map(AllowFile::new).collect(),
            cache: state_dir.map(|d| d.join("allowlists")),
        };
        guard.refresh();
        guard
    }

    /// Re-reads allowlist files whose modification time or size changed. Returns true when
    /// any was re-read. A file that cannot be read or has a bad line keeps its last good
    /// version in force; [`Guard::problems`] says what is wrong.
    pub fn refresh(&mut self) -> bool {
        let cache = self.cache.clone();
        let mut changed = false;
        for file in &mut self.files {
            if file.refresh(cache.as_deref()) {
                changed = true;
                if let Some(p) = &file.problem {
                    tracing::warn!("guard: {p}; fix the file");
                }
            }
        }
        changed
    }

    /// What is wrong with the allowlist files now (empty when nothing).
    pub fn problems(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|f| f.problem.clone())
            .collect()
    }

    /// Checks one target; `Err` says why it must not be banned.
    pub fn check(&self, target: &Target) -> Result<(), Refusal> {
        let (len, max, key) = match target.net() {
            IpNet::V4(n) => (n.prefix_len(), self.max_v4, "guard.max_prefix_v4"),
            IpNet::V6(n) => (n.prefix_len(), self.max_v6, "guard.max_prefix_v6"),
        };
        if len < max {
            return Err(Refusal(format!("{target} is wider than /{max} ({key})")));
        }
        let all = self
            .fixed
            .iter()
            .chain(self.files.iter().flat_map(|f| f.nets.iter()));
        for p in all {
            if target.overlaps(&p.net) {
                return Err(Refusal(format!("{target} overlaps {} ({})", p.net, p.why)));
            }
        }
        Ok(())
    }

    /// How many allowlist entries are loaded from files (for `netban check`).
    pub fn allowlist_len(&self) -> usize {
        self.files.iter().map(|f| f.nets.len()).sum()
    }
}

fn own_addresses() -> Vec<std::net::IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(ifs) => ifs.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!(
                "guard: cannot list this host's addresses ({e}); they are not protected"
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn guard_with(allow_file: Option<&Path>, own: bool) -> Guard {
        let cfg = GuardConfig {
            allowlist: allow_file
                .map(|p| vec![p.to_path_buf()])
                .unwrap_or_default(),
            allow: vec!["198.51.100.0/28".into()],
            max_prefix_v4: 24,
            max_prefix_v6: 64,
            protect_own_addresses: own,
        };
        Guard::new(&cfg, None)
    }

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn refuses_never_ban_ranges_and_wide_prefixes() {
        let g = guard_with(None, false);
        assert!(g.check(&t("192.0.2.1")).is_ok());
        assert!(g.check(&t("2001:db8::1")).is_ok());
        assert!(g.check(&t("203.0.113.0/24")).is_ok());
        for bad in [
            "127.0.0.1",
            "0.0.0.0/0",
            "::/0",
            "::1",
            "fe80::1",
            "224.0.0.1",
            "169.254.1.1",
            "10.0.0.0/8",
            "2001:db8::/32",
            "0.0.0.0",
        ] {
            assert!(g.check(&t(bad)).is_err(), "{bad} must be refused");
        }
        let why = g.check(&t("10.0.0.0/8")).unwrap_err().to_string();
        assert!(why.contains("guard.max_prefix_v4"), "{why}");
        // Inline allow, both directions of overlap.
        assert!(g.check(&t("198.51.100.5")).is_err());
        assert!(g.check(&t("198.51.100.0/24")).is_err());
        assert!(g.check(&t("198.51.100.17")).is_ok());
    }

    #[test]
    fn own_addresses_are_protected() {
        let g = guard_with(None, true);
        let why = g.check(&t("127.0.0.1")).unwrap_err().to_string();
        assert!(why.contains("loopback"), "{why}");
    }

    #[test]
    fn allowlist_file_is_read_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.conf");
        std::fs::write(
            &path,
            "# office\n203.0.113.0/25  # vpn\n\n2001:db8:1::/48\n",
        )
        .unwrap();
        let mut g = guard_with(Some(&path), false);
        assert_eq!(g.allowlist_len(), 2);
        let why = g.check(&t("203.0.113.9")).unwrap_err().to_string();
        assert!(why.contains("allow.conf:2"), "{why}");
        assert!(g.check(&t("2001:db8:1::7")).is_err());
        assert!(g.check(&t("192.0.2.1")).is_ok());
        // Change the file: the next refresh picks it up, without a restart.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "192.0.2.0/24").unwrap();
        drop(f);
        assert!(g.refresh());
        assert!(g.check(&t("192.0.2.1")).is_err());
        assert!(!g.refresh());
    }

    #[test]
    fn a_bad_line_keeps_the_last_good_version_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.conf");
        let state = dir.path().join("state");
        std::fs::write(&path, "192.0.2.0/24\n").unwrap();
        let cfg = GuardConfig {
            allowlist: vec![path.clone()],
            protect_own_addresses: false,
            ..GuardConfig::default()
        };
        let g = Guard::new(&cfg, Some(&state));
        assert!(g.problems().is_empty());
        // A typo, as a new process would read it: the good copy stays in force.
        std::fs::write(&path, "198.51.100.0/24\nnot-an-ip\n").unwrap();
        let g = Guard::new(&cfg, Some(&state));
        let problems = g.problems().join("; ");
        assert!(problems.contains("line 2"), "{problems}");
        assert!(problems.contains("last good version"), "{problems}");
        assert!(g.check(&t("192.0.2.5")).is_err());
        assert!(g.check(&t("198.51.100.5")).is_ok());
        // Without a good copy, the lines that parse apply.
        let g = Guard::new(&cfg, None);
        assert!(g.check(&t("198.51.100.5")).is_err());
        assert!(g.problems()[0].contains("lines that parse"));
        // A missing file is a problem, not an error.
        std::fs::remove_file(&path).unwrap();
        let g = Guard::new(&cfg, Some(&state));
        assert!(
            g.problems()[0].contains("cannot read"),
            "{:?}",
            g.problems()
        );
        assert!(g.check(&t("192.0.2.5")).is_err());
    }
}
