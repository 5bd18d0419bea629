//! From the entries a device lists to netban's view of them: which target, and whose.
//!
//! - [`held_entries`]: one [`HeldEntry`] per target, with its [`Owner`]: by the comment mark
//!   (`ownership = "mark"`), or netban's for every entry of a list that is netban's
//!   (`ownership = "list"`). A prefix not in canonical form was not written by netban and is
//!   `Foreign` (removing the canonical target would not remove it anyway).
//! - [`OthersCache`]: the canonical entries that are *not* this instance's, listed at most
//!   once a minute before a batch. netban never adds over them (a merge would overwrite their
//!   comment with netban's mark, and netban's later unban would then delete the operator's
//!   entry) and never removes them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netban_core::Target;

use crate::edit::RawEntry;
use crate::layout::Layout;
use crate::presets::Ownership;
use netban_core::sink::{HeldEntry, Owner};

/// How long a listing of other owners' entries is trusted.
pub const OTHERS_TTL: Duration = Duration::from_secs(60);

/// The target and owner of one listed entry (`None` when it is not a prefix).
pub fn owner(raw: &RawEntry, layout: &Layout, mark: &str) -> (Option<Target>, Owner) {
    let Ok(target) = Target::parse(&raw.prefix) else {
        return (None, Owner::Foreign);
    };
    let canonical = raw.prefix == target.to_string() || raw.prefix == target.ip_display();
    let owner = if !canonical {
        Owner::Foreign
    } else {
        match layout.ownership {
            Ownership::List => Owner::This,
            Ownership::Mark => owner_of(raw.comment.as_deref().unwrap_or(""), mark),
        }
    };
    (Some(target), owner)
}

/// One entry per target, in the device's order; a canonical entry wins over a non-canonical
/// spelling of the same network. Entries that are not prefixes are left out.
pub fn held_entries(raw: Vec<RawEntry>, layout: &Layout, mark: &str) -> Vec<HeldEntry> {
    let mut index: HashMap<Target, usize> = HashMap::new();
    let mut out: Vec<HeldEntry> = Vec::new();
    for r in raw {
        let canonical = Target::parse(&r.prefix)
            .is_ok_and(|t| r.prefix == t.to_string() || r.prefix == t.ip_display());
        let (Some(target), owner) = owner(&r, layout, mark) else {
            tracing::debug!(
                "netconf: ignoring listed entry {:?}: not a prefix",
                r.prefix
            );
            continue;
        };
        let entry = HeldEntry {
            target,
            remote_id: None,
            expires: None,
            owner,
            not_enforced: None,
        };
        match index.get(&target) {
            Some(&i) if canonical => out[i] = entry,
            Some(_) => {}
            None => {
                index.insert(target, out.len());
                out.push(entry);
            }
        }
    }
    out
}

/// The canonical targets held by somebody other than this instance.
pub fn others(raw: &[RawEntry], layout: &Layout, mark: &str) -> HashSet<Target> {
    raw.iter()
        .filter_map(|r| {
            let target = Target::parse(&r.prefix).ok()?;
            let canonical = r.prefix == target.to_string() || r.prefix == target.ip_display();
            let (_, owner) = owner(r, layout, mark);
            (canonical && owner != Owner::This).then_some(target)
        })
        .collect()
}

/// [`others`], remembered for [`OTHERS_TTL`].
#[derive(Default)]
pub struct OthersCache {
    inner: Mutex<Option<(Instant, Arc<HashSet<Target>>)>>,
}

impl OthersCache {
    pub fn fresh(&self) -> Option<Arc<HashSet<Target>>> {
        let g = self.inner.lock().ok()?;
        g.as_ref()
            .filter(|(at, _)| at.elapsed() < OTHERS_TTL)
            .map(|(_, set)| set.clone())
    }

    pub fn put(&self, set: HashSet<Target>) -> Arc<HashSet<Target>> {
        let set = Arc::new(set);
        if let Ok(mut g) = self.inner.lock() {
            *g = Some((Instant::now(), set.clone()));
        }
        set
    }

    pub fn forget(&self) {
        if let Ok(mut g) = self.inner.lock() {
            *g = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetconfConfig;
    use crate::presets::Preset;

    fn raw(prefix: &str, comment: Option<&str>) -> RawEntry {
        RawEntry {
            prefix: prefix.into(),
            comment: comment.map(str::to_string),
        }
    }

    #[test]
    fn owners_of_listed_entries() {
        let layout = NetconfConfig {
            preset: Some(Preset::Blocklist),
            ..NetconfConfig::default()
        }
        .layout()
        .unwrap();
        let mark = "netban:web-01:aa";
        let listed = vec![
            raw("192.0.2.1/32", Some("netban:web-01:aa sshd")),
            raw("192.0.2.2/32", Some("netban:web-02:bb sshd")),
            raw("192.0.2.3/32", Some("by hand")),
            raw("192.0.2.5/24", Some("netban:web-01:aa sshd")),
            raw("not a prefix", None),
            raw("2001:DB8::1/128", Some("netban:web-01:aa sshd")),
        ];
        let held = held_entries(listed.clone(), &layout, mark);
        let owners: Vec<(String, Owner)> = held
            .iter()
            .map(|h| (h.target.to_string(), h.owner.clone()))
            .collect();
        assert_eq!(
            owners,
            vec![
                ("192.0.2.1/32".into(), Owner::This),
                ("192.0.2.2/32".into(), Owner::Host("web-02".into())),
                ("192.0.2.3/32".into(), Owner::Foreign),
                ("192.0.2.0/24".into(), Owner::Foreign),
                ("2001:db8::1/128".into(), Owner::Foreign),
            ]
        );
        let o = others(&listed, &layout, mark);
        assert_eq!(o.len(), 2, "{o:?}");
        assert!(o.contains(&Target::parse("192.0.2.3").unwrap()));
        assert!(!o.contains(&Target::parse("192.0.2.0/24").unwrap()));
    }
}

/// The owner of an entry whose comment is `comment`, for an instance with `mark`: the first
/// word of the form `netban:<id>:<rest>` decides.
pub fn owner_of(comment: &str, mark: &str) -> Owner {
    for word in comment.split_whitespace() {
        let mut parts = word.splitn(3, ':');
        if let (Some("netban"), Some(id), Some(rest)) = (parts.next(), parts.next(), parts.next())
            && !id.is_empty()
            && !rest.is_empty()
        {
            return if word == mark {
                Owner::This
            } else {
                Owner::Host(id.to_string())
            };
        }
    }
    Owner::Foreign
}

#[cfg(test)]
mod owner_tests {
    use super::*;

    #[test]
    fn owners_from_comments() {
        let mark = "netban:web-01:3f9a2c1d7e4b";
        assert_eq!(
            owner_of("netban:web-01:3f9a2c1d7e4b sshd", mark),
            Owner::This
        );
        assert_eq!(
            owner_of("netban:web-02:0011 sshd", mark),
            Owner::Host("web-02".into())
        );
        // Same host id, another instance (another state directory).
        assert_eq!(
            owner_of("netban:web-01:ffff", mark),
            Owner::Host("web-01".into())
        );
        assert_eq!(owner_of("blocked by hand", mark), Owner::Foreign);
        assert_eq!(owner_of("netban web-01 sshd", mark), Owner::Foreign);
        assert_eq!(owner_of("netban::x", mark), Owner::Foreign);
        assert_eq!(owner_of("", mark), Owner::Foreign);
    }
}
