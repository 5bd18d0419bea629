//! Is this the device's host key? Checked against a pinned SHA256 fingerprint or an OpenSSH
//! `known_hosts` file, before netban sends its password or signs with its key.
//!
//! An unknown or different key is refused, and the refusal names the key's fingerprint so the
//! operator can compare it with the device (`ssh-keygen -lf` on its host key) and pin it.
//!
//! `known_hosts` is read the way OpenSSH reads it, for what a device file needs: host
//! patterns (`host`, `[host]:port`, `*`/`?` wildcards, `!negation`), hashed names
//! (`|1|salt|hash`, HMAC-SHA1), `@revoked` keys (refused), `@cert-authority` lines (ignored:
//! host certificates are not supported). The file is read whole but capped in size.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russh::keys::PublicKey;
use russh::keys::ssh_key::HashAlg;

/// The biggest `known_hosts` file read.
const MAX_KNOWN_HOSTS: u64 = 4 * 1024 * 1024;

/// What the host key is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// `host_key = "SHA256:..."`
    Pinned(String),
    /// `known_hosts = "/etc/netban/known_hosts"`
    KnownHosts(PathBuf),
}

/// Why a host key was refused; the message ends with what the operator should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "host key of {host} is not the pinned one: the device offered {algorithm} key {fingerprint}, host_key pins {pinned}; if the device's key really changed (re-installed, replaced), set host_key = \"{fingerprint}\", otherwise someone may be intercepting the connection"
    )]
    PinMismatch {
        host: String,
        algorithm: String,
        fingerprint: String,
        pinned: String,
    },
    #[error(
        "host key of {host} is not in {path}: the device offered {algorithm} key {fingerprint}; compare it with the device (ssh-keygen -lf on its host key) and add it to {path} (ssh-keyscan -p PORT HOST) or set host_key = \"{fingerprint}\""
    )]
    Unknown {
        host: String,
        path: String,
        algorithm: String,
        fingerprint: String,
    },
    #[error(
        "host key of {host} has changed: the device offered {algorithm} key {fingerprint}, {path} line {line} has another {algorithm} key for it; if the device was re-installed or replaced, update that line, otherwise someone may be intercepting the connection"
    )]
    Changed {
        host: String,
        path: String,
        line: usize,
        algorithm: String,
        fingerprint: String,
    },
    #[error(
        "host key of {host} ({algorithm} {fingerprint}) is marked @revoked in {path} line {line}"
    )]
    Revoked {
        host: String,
        path: String,
        line: usize,
        algorithm: String,
        fingerprint: String,
    },
    #[error("cannot read known_hosts {path}: {message}; check the known_hosts key")]
    Unreadable { path: String, message: String },
    #[error(
        "the device at {host} presented an SSH host certificate; netban checks plain host keys only: pin the key's fingerprint with host_key"
    )]
    Certificate { host: String },
}

/// `SHA256:base64` of a key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// True when `s` looks like an OpenSSH SHA256 fingerprint.
pub fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

/// Checks `key` offered by `host:port`.
pub fn verify(
    policy: &HostKeyPolicy,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), HostKeyError> {
    let fp = fingerprint(key);
    let algorithm = key.algorithm().to_string();
    let host_label = format!("{host}:{port}");
    match policy {
        HostKeyPolicy::Pinned(pinned) => {
            if *pinned == fp {
                Ok(())
            } else {
                Err(HostKeyError::PinMismatch {
                    host: host_label,
                    algorithm,
                    fingerprint: fp,
                    pinned: pinned.clone(),
                })
            }
        }
        HostKeyPolicy::KnownHosts(path) => {
            let text = read_bounded(path)?;
            let blob = key_blob(key);
            let name = if port == 22 {
                host.to_string()
            } else {
                format!("[{host}]:{port}")
            };
            let path_s = path.display().to_string();
            let mut changed = None;
            let mut found = false;
            for (i, line) in text.lines().enumerate() {
                let Some(entry) = Entry::parse(line) else {
                    continue;
                };
                if !entry.matches(&name) {
                    continue;
                }
                let same = entry.blob == blob;
                match entry.marker {
                    Some("@revoked") if same => {
                        return Err(HostKeyError::Revoked {
                            host: host_label,
                            path: path_s,
                            line: i + 1,
                            algorithm,
                            fingerprint: fp,
                        });
                    }
                    Some(_) => {}
                    None if same => found = true,
                    None if entry.algorithm == algorithm && changed.is_none() => {
                        changed = Some(i + 1);
                    }
                    None => {}
                }
            }
            if found {
                return Ok(());
            }
            Err(match changed {
                Some(line) => HostKeyError::Changed {
                    host: host_label,
                    path: path_s,
                    line,
                    algorithm,
                    fingerprint: fp,
                },
                None => HostKeyError::Unknown {
                    host: host_label,
                    path: path_s,
                    algorithm,
                    fingerprint: fp,
                },
            })
        }
    }
}

/// The key algorithms `known_hosts` lists for this host, so that the SSH handshake asks for
/// one of them first (as OpenSSH does); empty when there are none or the file is unreadable.
pub fn known_algorithms(path: &Path, host: &str, port: u16) -> Vec<String> {
    let Ok(text) = read_bounded(path) else {
        return Vec::new();
    };
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut out: Vec<String> = Vec::new();
    for entry in text.lines().filter_map(Entry::parse) {
        if entry.marker.is_none() && entry.matches(&name) && !out.contains(&entry.algorithm) {
            out.push(entry.algorithm.clone());
        }
    }
    out
}

fn read_bounded(path: &Path) -> Result<String, HostKeyError> {
    let unreadable = |message: String| HostKeyError::Unreadable {
        path: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if meta.len() > MAX_KNOWN_HOSTS {
        return Err(unreadable(format!("larger than {MAX_KNOWN_HOSTS} bytes")));
    }
    std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))
}

/// The base64 key blob as it appears in `known_hosts`.
fn key_blob(key: &PublicKey) -> String {
    match key.to_bytes() {
        Ok(bytes) => STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// One line of `known_hosts`: `[@marker] patterns algorithm base64 [comment]`.
struct Entry<'a> {
    marker: Option<&'a str>,
    patterns: &'a str,
    algorithm: String,
    blob: &'a str,
}

impl<'a> Entry<'a> {
    fn parse(line: &'a str) -> Option<Entry<'a>> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut fields = line.split_ascii_whitespace();
        let mut first = fields.next()?;
        let marker = if first.starts_with('@') {
            let m = first;
            first = fields.next()?;
            Some(m)
        } else {
            None
        };
        let algorithm = fields.next()?.to_string();
        let blob = fields.next()?;
        Some(Entry {
            marker,
            patterns: first,
            algorithm,
            blob,
        })
    }

    /// OpenSSH semantics: any positive pattern matches and no negated one does.
    fn matches(&self, name: &str) -> bool {
        if let Some(hashed) = self.patterns.strip_prefix("|1|") {
            return hashed_matches(hashed, name);
        }
        let mut hit = false;
        for p in self.patterns.split(',') {
            if let Some(neg) = p.strip_prefix('!') {
                if wildcard(neg, name) {
                    return false;
                }
            } else if wildcard(p, name) {
                hit = true;
            }
        }
        hit
    }
}

fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// `*` and `?` wildcards, case-insensitive (host names are).
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_negation() {
        let e = Entry::parse("[10.0.0.*]:830,!10.0.0.9 ssh-ed25519 AAAA").unwrap();
        assert!(e.matches("[10.0.0.1]:830"));
        assert!(!e.matches("[10.0.0.1]:22"));
        let e = Entry::parse("*.example.net,!bad.example.net ssh-ed25519 AAAA").unwrap();
        assert!(e.matches("R1.Example.net"));
        assert!(!e.matches("bad.example.net"));
        let e = Entry::parse("@revoked r1 ssh-ed25519 AAAA").unwrap();
        assert_eq!(e.marker, Some("@revoked"));
        assert!(Entry::parse("# comment").is_none());
        assert!(Entry::parse("hostonly").is_none());
    }

    #[test]
    fn hashed_names() {
        // From `ssh-keygen -H` for "[127.0.0.1]:2222" with this salt.
        let salt = [7u8; 20];
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let tag = ring::hmac::sign(&key, b"[127.0.0.1]:2222");
        let pattern = format!(
            "{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(tag.as_ref())
        );
        assert!(hashed_matches(&pattern, "[127.0.0.1]:2222"));
        assert!(!hashed_matches(&pattern, "[127.0.0.1]:2223"));
        assert!(!hashed_matches("garbage", "x"));
    }

    #[test]
    fn fingerprint_syntax() {
        assert!(is_fingerprint(
            "SHA256:pUheMeOU8mLxbL9G6rDUXwDQA1Ymc4DmPPFzvU0kiHI"
        ));
        assert!(!is_fingerprint("SHA256:short"));
        assert!(!is_fingerprint(
            "MD5:pUheMeOU8mLxbL9G6rDUXwDQA1Ymc4DmPPFzvU0kiHI"
        ));
    }
}
