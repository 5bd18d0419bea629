//! Who made an entry on a sink: the ownership mark.
//!
//! netban decides what it may remove from a sink by who made each entry, never by a user
//! template (issue 6: a comment template `netban {jail} by {host}` once turned the mark into
//! `netban ` and one host's `sync` deleted every other host's rules). A driver that can store
//! text with an entry (an ExaFS comment, a NETCONF leaf, an nft element comment) puts this
//! process's [`Mark`] there, reads it back with [`Mark::owner`], and reports an [`Owner`]; the
//! engine decides by policy what to do with each.
//!
//! The mark is `netban:<host_id>:<instance>`. `instance` is a random id created with the state
//! database, so two hosts that share a `host_id` (cloned VMs, containers named alike) or a
//! state that was wiped and created again never take each other's entries for their own. The
//! mark of netban 0.1 (`netban <host> ` at the start of the comment) is still recognised, as
//! `Owner::Host`, so rules made before the upgrade are adopted rather than removed.

use std::fmt;

/// Who made an entry a sink lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This state database (this netban instance) made it.
    This,
    /// Another netban instance made it; the host id it was made under. This host's own id
    /// here means a previous state of this host (lost, restored, or a clone).
    Host(String),
    /// Not netban's (an operator, another tool).
    Foreign,
}

impl Owner {
    pub fn describe(&self) -> String {
        match self {
            Owner::This => "made by this netban".to_string(),
            Owner::Host(h) => format!("made by netban on host {h} (another state database)"),
            Owner::Foreign => "not made by netban".to_string(),
        }
    }
}

/// This instance's mark: `netban:<host_id>:<instance>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    host: String,
    instance: String,
}

/// The start of every mark.
pub const MARK_PREFIX: &str = "netban:";

impl Mark {
    /// `host` and `instance` are validated upstream (host ids are letters, digits, `-_.`;
    /// instances hex), so the mark never contains a separator of its own.
    pub fn new(host: &str, instance: &str) -> Mark {
        Mark {
            host: host.to_string(),
            instance: instance.to_string(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Who made an entry whose stored text (comment) is `text`: the first word that looks
    /// like a mark decides; the 0.1 form `netban <host> ...` at the start is another host
    /// state's mark.
    pub fn owner(&self, text: Option<&str>) -> Owner {
        let Some(text) = text else {
            return Owner::Foreign;
        };
        for word in text.split_whitespace() {
            if let Some(rest) = word.strip_prefix(MARK_PREFIX) {
                let Some((host, instance)) = rest.split_once(':') else {
                    continue;
                };
                if !valid_host(host) || instance.is_empty() {
                    continue;
                }
                return if host == self.host && instance == self.instance {
                    Owner::This
                } else {
                    Owner::Host(host.to_string())
                };
            }
        }
        // netban 0.1 wrote the comment template, `netban {host} {jail}` by default.
        let mut words = text.split_whitespace();
        if words.next() == Some("netban")
            && let Some(host) = words.next()
            && valid_host(host)
            && words.next().is_some()
        {
            return Owner::Host(host.to_string());
        }
        Owner::Foreign
    }
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MARK_PREFIX}{}:{}", self.host, self.instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_decides_not_the_template() {
        let m = Mark::new("web-01", "3f9a2c1d7e4b");
        assert_eq!(m.to_string(), "netban:web-01:3f9a2c1d7e4b");
        assert_eq!(
            m.owner(Some("netban:web-01:3f9a2c1d7e4b sshd")),
            Owner::This
        );
        assert_eq!(
            m.owner(Some("sshd netban:web-01:3f9a2c1d7e4b")),
            Owner::This
        );
        // Same host id, another state database: a clone or a lost state.
        assert_eq!(
            m.owner(Some("netban:web-01:000000000000 sshd")),
            Owner::Host("web-01".into())
        );
        assert_eq!(
            m.owner(Some("netban:web-02:3f9a2c1d7e4b sshd")),
            Owner::Host("web-02".into())
        );
        // A user template that says "netban" is not a mark.
        assert_eq!(m.owner(Some("netban sshd")), Owner::Foreign);
        assert_eq!(m.owner(Some("blocked by netban")), Owner::Foreign);
        assert_eq!(m.owner(Some("manual")), Owner::Foreign);
        assert_eq!(m.owner(None), Owner::Foreign);
        assert_eq!(m.owner(Some("netban: x")), Owner::Foreign);
    }

    #[test]
    fn the_old_mark_is_another_state_of_the_host() {
        let m = Mark::new("web-01", "3f9a2c1d7e4b");
        assert_eq!(
            m.owner(Some("netban web-01 sshd")),
            Owner::Host("web-01".into())
        );
        assert_eq!(
            m.owner(Some("netban web-02 sshd")),
            Owner::Host("web-02".into())
        );
        assert_eq!(m.owner(Some("netban web-01")), Owner::Foreign);
    }
}
