//! Allowlist files, and the last good copy of each that keeps a typo from losing bans.
//!
//! An allowlist is one address or CIDR per line, `#` starting a comment. It is re-read when
//! its modification time or size changes. When it cannot be read, or a line does not parse,
//! the last version that parsed (kept in `state_dir/allowlists/`) stays in force and the
//! problem is reported (status, check, metrics, a warning): issue 7 found that a typo used to
//! make every `netban ban` fail with exit 3 while the daemon kept the old list, and the CLI's
//! bans were lost. Without a good copy yet, the lines that do parse apply.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;

use crate::target::Target;

/// An allowlist file is refused beyond this size.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One protected range and where it comes from.
#[derive(Debug, Clone)]
pub(super) struct Protected {
    pub net: IpNet,
    pub why: String,
}

/// One allowlist file as loaded.
#[derive(Debug, Clone)]
pub(super) struct AllowFile {
    pub path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    pub nets: Vec<Protected>,
    /// What is wrong with the file now, if anything (the operator must fix it).
    pub problem: Option<String>,
}

impl AllowFile {
    pub fn new(path: PathBuf) -> AllowFile {
        AllowFile {
            path,
            stamp: None,
            nets: Vec::new(),
            problem: None,
        }
    }

    /// Re-reads the file when it changed; true when it was re-read.
    pub fn refresh(&mut self, cache: Option<&Path>) -> bool {
        let stamp = std::fs::metadata(&self.path)
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if let (Ok(s), Some(old)) = (&stamp, self.stamp)
            && *s == old
        {
            return false;
        }
        let good = cache.map(|c| good_copy(c, &self.path));
        let loaded = stamp
            .map_err(|e| format!("cannot read allowlist {}: {e}", self.path.display()))
            .and_then(|s| {
                if s.1 > MAX_FILE {
                    return Err(format!(
                        "allowlist {} is larger than {} MiB",
                        self.path.display(),
                        MAX_FILE >> 20
                    ));
                }
                let text = std::fs::read_to_string(&self.path)
                    .map_err(|e| format!("cannot read allowlist {}: {e}", self.path.display()))?;
                Ok((s, text))
            });
        match loaded {
            Ok((stamp, text)) => {
                let (nets, bad) = parse(&self.path, &text);
                self.stamp = Some(stamp);
                match bad {
                    None => {
                        if let Some(g) = &good
                            && read_good(g).as_deref() != Some(text.as_str())
                        {
                            store_good(g, &text);
                        }
                        self.nets = nets;
                        self.problem = None;
                    }
                    Some(bad) => {
                        self.problem = Some(bad);
                        self.use_good_copy(good.as_deref(), nets);
                    }
                }
            }
            Err(problem) => {
                self.stamp = None;
                self.problem = Some(problem);
                self.use_good_copy(good.as_deref(), Vec::new());
            }
        }
        true
    }

    /// The last good version when there is one, else `fallback`; says which in the problem.
    fn use_good_copy(&mut self, good: Option<&Path>, fallback: Vec<Protected>) {
        let copy = good.and_then(read_good);
        let note = match copy {
            Some(text) => {
                self.nets = parse(&self.path, &text).0;
                "; netban uses its last good version"
            }
            None if !fallback.is_empty() || self.nets.is_empty() => {
                self.nets = fallback;
                "; netban uses the lines that parse"
            }
            None => "; netban keeps the version it had",
        };
        if let Some(p) = &mut self.problem {
            p.push_str(note);
        }
    }
}

/// Parses an allowlist: the ranges, and the first bad line (if any).
fn parse(path: &Path, text: &str) -> (Vec<Protected>, Option<String>) {
    let mut nets = Vec::new();
    let mut bad = None;
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        match Target::parse(entry) {
            Ok(t) => nets.push(Protected {
                net: t.net(),
                why: format!("allowlist {}:{}", path.display(), i + 1),
            }),
            Err(e) => {
                bad.get_or_insert_with(|| {
                    format!("allowlist {} line {}: {e}", path.display(), i + 1)
                });
            }
        }
    }
    (nets, bad)
}

/// Where the last good copy of `path` is kept.
fn good_copy(cache: &Path, path: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let stem: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(40)
        .collect();
    cache.join(format!("{stem}-{:016x}.good", h.finish()))
}

/// The last good copy, if there is one netban can read (never through a symlink).
fn read_good(path: &Path) -> Option<String> {
    crate::private_file::read(path, MAX_FILE).ok().flatten()
}

/// Writes the good copy atomically (0600, never through a symlink); failures only cost the
/// fallback.
fn store_good(dest: &Path, text: &str) {
    let Some(dir) = dest.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let _ = crate::private_file::write(dest, text.as_bytes());
}
