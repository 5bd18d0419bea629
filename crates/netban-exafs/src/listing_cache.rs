//! What a listing of ExaFS rules tells a new ban, kept in `state_dir` between processes.
//!
//! Before the first add of a target netban needs the community's name and the expiry of any
//! rule on that community it did not make (so its POST never shortens one). Without a daemon
//! every `netban ban` is a new process; listing every rule each time would make a ban cost
//! grow with the size of ExaFS. So one process lists, and the others within a minute read
//! the answer from `exafs-<sink>.rules` (mode 0600, written atomically).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use netban_core::{Target, private_file};
use serde::{Deserialize, Serialize};

/// The largest cache file read back (a million foreign rules fit in about 40 MB).
const MAX_FILE: u64 = 64 << 20;

/// How long the community's name is trusted (it changes only when an admin renames it).
pub const NAME_TTL: i64 = 86_400;

#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    listed_at: i64,
    community: u32,
    community_name: String,
    /// `(target, expires)` of the rules on the community that netban did not make.
    foreign: Vec<(String, i64)>,
}

/// The cache file of one ExaFS sink.
pub struct ListingCache {
    path: PathBuf,
    community: u32,
}

/// A listing read back from the cache.
pub struct Listed {
    pub listed_at: i64,
    pub community_name: String,
    pub foreign: HashMap<Target, i64>,
}

impl ListingCache {
    pub fn new(state_dir: &Path, sink: &str, community: u32) -> ListingCache {
        ListingCache {
            path: state_dir.join(format!("exafs-{sink}.rules")),
            community,
        }
    }

    /// The cached listing, if it is for our community; a missing or broken file is `None`.
    pub fn load(&self) -> Option<Listed> {
        let text = match private_file::read(&self.path, MAX_FILE) {
            Ok(text) => text?,
            Err(e) => {
                tracing::warn!(
                    "exafs: listing cache {} {e}; listing ExaFS again",
                    self.path.display()
                );
                return None;
            }
        };
        let cached: Cached = serde_json::from_str(&text).ok()?;
        if cached.community != self.community {
            return None;
        }
        let foreign = cached
            .foreign
            .iter()
            .filter_map(|(t, e)| Some((Target::parse(t).ok()?, *e)))
            .collect();
        Some(Listed {
            listed_at: cached.listed_at,
            community_name: cached.community_name,
            foreign,
        })
    }

    /// Replaces the cache; a failure only costs the next process a listing.
    pub fn store(&self, listed_at: i64, community_name: &str, foreign: &HashMap<Target, i64>) {
        let cached = Cached {
            listed_at,
            community: self.community,
            community_name: community_name.to_string(),
            foreign: foreign.iter().map(|(t, e)| (t.to_string(), *e)).collect(),
        };
        let written = serde_json::to_vec(&cached)
            .map_err(std::io::Error::other)
            .and_then(|bytes| private_file::write(&self.path, &bytes));
        if let Err(e) = written {
            tracing::debug!("cannot write {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_private_and_per_community() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ListingCache::new(dir.path(), "exafs", 1);
        assert!(cache.load().is_none());
        let mut foreign = HashMap::new();
        foreign.insert(Target::parse("192.0.2.9").unwrap(), 5000);
        cache.store(100, "65535:65283", &foreign);
        let got = cache.load().unwrap();
        assert_eq!(
            (got.listed_at, got.community_name.as_str()),
            (100, "65535:65283")
        );
        assert_eq!(got.foreign, foreign);
        let mode = std::fs::metadata(dir.path().join("exafs-exafs.rules"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another community's sink does not trust it.
        assert!(ListingCache::new(dir.path(), "exafs", 2).load().is_none());
        std::fs::write(dir.path().join("exafs-exafs.rules"), "garbage").unwrap();
        assert!(cache.load().is_none());
    }
}
