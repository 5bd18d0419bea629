//! TEMPORARY: the sink-v2 types (`notes/sink-v2.md`) that netban-core does not have yet in
//! this branch. When core lands them, delete this module and import `Owner`, `HeldEntry`,
//! `Batching`, `Commit`, `SinkEnv` from `netban_core::sink` and the mark parser from
//! `netban_core::owner`; the driver uses nothing else from here.

use std::path::PathBuf;
use std::time::Duration;

use netban_core::Target;

/// Who made an entry the sink lists. The driver reports; the engine decides by policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This netban instance (the comment carries exactly its mark, or the list is netban's).
    This,
    /// Another netban instance, by host id (`netban:<id>:...`).
    Host(String),
    /// Somebody else: never touched.
    Foreign,
}

/// An entry the remote side holds, as listed for repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    pub target: Target,
    pub remote_id: Option<String>,
    pub expires: Option<i64>,
    pub owner: Owner,
    pub not_enforced: Option<String>,
}

/// Engine-owned timing: collect changes for `window` after the first, then apply at most
/// `max` in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub max: usize,
    pub window: Duration,
}

/// `Atomic`: a batch is all-or-nothing; the engine bisects a rejected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    PerChange,
    Atomic,
}

/// What a sink is built with besides its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkEnv {
    pub state_dir: PathBuf,
    pub host_id: String,
    /// This instance's ownership mark, e.g. `netban:web-01:3f9a2c1d7e4b`.
    pub mark: String,
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
mod tests {
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
