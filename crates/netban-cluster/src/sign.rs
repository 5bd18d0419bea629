//! Ed25519 keys: this host's secret key (made by `netban cluster keygen`, kept in a 0600
//! file), the peers' public keys (`ed25519:BASE64` under `[cluster.peers]`), and signing and
//! verifying the canonical bytes of an event ([`crate::event`]).
//!
//! The key file is written with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600: an existing
//! file (or a symlink planted where it goes) is never overwritten or followed. Loading it
//! warns when group or others may read it, and refuses a symlink. Verification is
//! `verify_strict` (no malleable or small-order signatures).

use std::collections::HashMap;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// The prefix of a key in the config and the key file.
const TAG: &str = "ed25519:";
/// A key file is one short line.
const MAX_KEY_FILE: u64 = 4096;

/// A key problem, for the operator.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cluster key {path}: {what}")]
    File { path: PathBuf, what: String },
    #[error(
        "cluster key {path} already exists; keep it (peers trust its public key) or remove it first"
    )]
    Exists { path: PathBuf },
}

fn file_error(path: &Path, what: impl Into<String>) -> KeyError {
    KeyError::File {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// A peer's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TAG}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

impl PublicKey {
    /// Parses `ed25519:BASE64` (32 bytes).
    pub fn parse(s: &str) -> Result<PublicKey, String> {
        let b64 = s.trim().strip_prefix(TAG).ok_or_else(|| {
            "must be \"ed25519:BASE64\" as `netban cluster keygen` prints it on that host"
                .to_string()
        })?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| "the key after ed25519: is not base64".to_string())?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
        VerifyingKey::from_bytes(&arr)
            .map(PublicKey)
            .map_err(|_| "not a valid Ed25519 public key".to_string())
    }

    /// True when `sig` is this key's signature of `msg`.
    pub fn verifies(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        self.0
            .verify_strict(msg, &Signature::from_bytes(sig))
            .is_ok()
    }
}

/// This host's secret key. `Debug` never shows it.
#[derive(Clone)]
pub struct HostKey(SigningKey);

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({})", self.public())
    }
}

impl HostKey {
    /// A new random key (the system's RNG through ring).
    pub fn generate() -> Result<HostKey, String> {
        use ring::rand::SecureRandom as _;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| "the system random number generator failed".to_string())?;
        Ok(HostKey(SigningKey::from_bytes(&seed)))
    }

    /// A key from its 32 secret bytes (tests, benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> HostKey {
        HostKey(SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }

    /// Reads the key file; warns when others may read it. Refuses a symlink.
    pub fn load(path: &Path) -> Result<HostKey, KeyError> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::ELOOP) {
                    " (a symlink: point key_file at the real file)".to_string()
                } else if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "; create it with: netban cluster keygen --out {}",
                        path.display()
                    )
                } else {
                    String::new()
                };
                file_error(path, format!("cannot open: {e}{hint}"))
            })?;
        let meta = f
            .metadata()
            .map_err(|e| file_error(path, format!("cannot stat: {e}")))?;
        if meta.mode() & 0o077 != 0 {
            tracing::warn!(
                "cluster: key file {} is readable by others (mode {:o}); whoever reads it can sign bans for the whole fleet: chmod 600 {}",
                path.display(),
                meta.mode() & 0o777,
                path.display()
            );
        }
        let mut text = String::new();
        std::io::Read::by_ref(&mut f)
            .take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        let bytes = line
            .strip_prefix(TAG)
            .and_then(|b| STANDARD.decode(b).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                file_error(
                    path,
                    "is not a netban cluster key (one line \"ed25519:BASE64\"); make one with netban cluster keygen",
                )
            })?;
        Ok(HostKey::from_seed(bytes))
    }
}

/// Writes a new key to `path` (0600, never over an existing file, never through a symlink)
/// and returns the line peers paste under `[cluster.peers]`: `HOST = "ed25519:BASE64"`.
pub fn keygen(path: &Path, host: &str) -> Result<String, KeyError> {
    let key = HostKey::generate().map_err(|e| file_error(path, e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                file_error(path, format!("cannot create: {e}"))
            }
        })?;
    let text = format!(
        "# netban cluster secret key of {host}; keep it 0600. Its public key: {}\n{TAG}{}\n",
        key.public(),
        STANDARD.encode(key.0.to_bytes())
    );
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
    Ok(peer_line(host, &key.public()))
}

/// `HOST = "ed25519:BASE64"`.
pub fn peer_line(host: &str, key: &PublicKey) -> String {
    format!("{host} = \"{key}\"")
}

/// The trusted peers' keys.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: HashMap<String, PublicKey>,
}

impl Trust {
    /// From `[cluster.peers]` (already validated: a key that does not parse is skipped).
    pub fn from_peers<'a>(peers: impl IntoIterator<Item = (&'a String, &'a String)>) -> Trust {
        let keys = peers
            .into_iter()
            .filter_map(|(h, k)| PublicKey::parse(k).ok().map(|k| (h.clone(), k)))
            .collect();
        Trust { keys }
    }

    pub fn insert(&mut self, host: &str, key: PublicKey) {
        self.keys.insert(host.to_string(), key);
    }

    pub fn key(&self, host: &str) -> Option<&PublicKey> {
        self.keys.get(host)
    }

    pub fn contains(&self, host: &str) -> bool {
        self.keys.contains_key(host)
    }

    /// The trusted host ids, sorted.
    pub fn hosts(&self) -> Vec<String> {
        let mut h: Vec<String> = self.keys.keys().cloned().collect();
        h.sort();
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn keygen_writes_0600_and_the_line_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let line = keygen(&path, "web-01").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (host, quoted) = line.split_once(" = ").unwrap();
        assert_eq!(host, "web-01");
        let public = PublicKey::parse(quoted.trim_matches('"')).unwrap();
        let key = HostKey::load(&path).unwrap();
        assert_eq!(key.public(), public);
        let sig = key.sign(b"hello");
        assert!(public.verifies(b"hello", &sig));
        assert!(!public.verifies(b"hellO", &sig));
        assert!(!format!("{key:?}").contains(&STANDARD.encode(key.0.to_bytes())));
    }

    #[test]
    fn keygen_never_overwrites_nor_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        keygen(&path, "a").unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = keygen(&path, "a").unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(keygen(&link, "a").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let e = HostKey::load(&link).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        assert!(
            PublicKey::parse("ssh-ed25519 AAAA")
                .unwrap_err()
                .contains("ed25519:BASE64")
        );
        assert!(
            PublicKey::parse("ed25519:!!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            PublicKey::parse("ed25519:AAAA")
                .unwrap_err()
                .contains("32 bytes")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "garbage\n").unwrap();
        let e = HostKey::load(&p).unwrap_err().to_string();
        assert!(e.contains("netban cluster keygen"), "{e}");
        let e = HostKey::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("keygen --out"), "{e}");
    }
}
