//! The guard: the policy every lease passes before it can become a ban, local or remote.
//!
//! A target is refused when it overlaps a range that must never be banned (loopback,
//! unspecified, link-local, multicast, broadcast, this host's own addresses, the allowlists),
//! or when it is wider than `max_prefix_v4` / `max_prefix_v6`. A refusal is not an error:
//! the caller logs one line saying why and moves on (fail2ban would otherwise retry).
//!
//! Allowlist files are re-read when their modification time or size changes, so an operator
//! can add a range without restarting anything.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;

use crate::config::GuardConfig;
use crate::target::Target;

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

/// A problem with an allowlist file: the operator must fix it.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "cannot read allowlist {path}: {source}; create it (it may be empty) or remove it from guard.allowlist"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("allowlist {path} line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Protected {
    net: IpNet,
    why: String,
}

#[derive(Debug, Clone)]
struct AllowFile {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    nets: Vec<Protected>,
}

/// The guard, built from `[guard]`.
#[derive(Debug, Clone)]
pub struct Guard {
    max_v4: u8,
    max_v6: u8,
    fixed: Vec<Protected>,
    files: Vec<AllowFile>,
}

impl Guard {
    /// Builds the guard, reading allowlist files and (when configured) this host's addresses.
    pub fn new(cfg: &GuardConfig) -> Result<Guard, GuardError> {
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
            files: cfg
                .allowlist
                .iter()
                .map(|p| AllowFile {
                    path: p.clone(),
                    stamp: None,
                    nets: Vec::new(),
                })
                .collect(),
        };
        guard.refresh()?;
        Ok(guard)
    }

    /// Re-reads allowlist files whose modification time or size changed. Returns true when
    /// any was re-read. On error the previous contents stay in force.
    pub fn refresh(&mut self) -> Result<bool, GuardError> {
        let mut changed = false;
        for file in &mut self.files {
            let meta = std::fs::metadata(&file.path).map_err(|source| GuardError::Read {
                path: file.path.clone(),
                source,
            })?;
            let stamp = (
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            );
            if file.stamp == Some(stamp) {
                continue;
            }
            file.nets = read_allowlist(&file.path)?;
            file.stamp = Some(stamp);
            changed = true;
        }
        Ok(changed)
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

/// Reads one allowlist: one address or CIDR per line, `#` starts a comment.
fn read_allowlist(path: &Path) -> Result<Vec<Protected>, GuardError> {
    let text = std::fs::read_to_string(path).map_err(|source| GuardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let t = Target::parse(entry).map_err(|e| GuardError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        nets.push(Protected {
            net: t.net(),
            why: format!("allowlist {}:{}", path.display(), i + 1),
        });
    }
    Ok(nets)
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
        Guard::new(&cfg).unwrap()
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
        assert!(g.refresh().unwrap());
        assert!(g.check(&t("192.0.2.1")).is_err());
        assert!(!g.refresh().unwrap());
    }

    #[test]
    fn bad_allowlist_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.conf");
        std::fs::write(&path, "192.0.2.0/24\nnot-an-ip\n").unwrap();
        let cfg = GuardConfig {
            allowlist: vec![path],
            ..GuardConfig::default()
        };
        let e = Guard::new(&cfg).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
