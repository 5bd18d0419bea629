//! Leases: one reason to ban a target.
//!
//! A lease is `(target, jail, origin) -> until`. A target stays banned while at least one of
//! its leases is live; its expiry is the latest `until` of its leases.

use std::fmt;

use crate::target::Target;

/// When a lease (or a target's set of leases) ends.
///
/// The derived order puts every `At` before `Never`, so `max()` over leases gives a target's
/// expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Until {
    /// Unix seconds.
    At(i64),
    /// A permanent ban (fail2ban bantime -1).
    Never,
}

impl Until {
    pub fn is_live(self, now: i64) -> bool {
        match self {
            Until::At(t) => t > now,
            Until::Never => true,
        }
    }

    /// The database form: unix seconds, NULL for permanent.
    pub fn to_db(self) -> Option<i64> {
        match self {
            Until::At(t) => Some(t),
            Until::Never => None,
        }
    }

    pub fn from_db(v: Option<i64>) -> Until {
        v.map_or(Until::Never, Until::At)
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::At(t) => f.write_str(&crate::clock::format_utc(*t)),
            Until::Never => f.write_str("permanent"),
        }
    }
}

/// Where a lease comes from: this host's fail2ban, or a peer on the cluster bus.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Local,
    Peer(String),
}

impl Origin {
    pub fn as_str(&self) -> &str {
        match self {
            Origin::Local => "local",
            Origin::Peer(host) => host,
        }
    }

    pub fn from_db(s: &str) -> Origin {
        if s == "local" {
            Origin::Local
        } else {
            Origin::Peer(s.to_string())
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason to ban a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub target: Target,
    pub jail: String,
    pub origin: Origin,
    pub until: Until,
    /// The ban time fail2ban asked for, in seconds (-1 permanent); shown to templates.
    pub bantime: i64,
    /// Unix seconds when the ban started (fail2ban's `<time>`).
    pub since: i64,
}

/// Characters a jail name may contain: fail2ban's jail names are section names, and we pass
/// them to templates and logs, so keep them to a safe, printable set.
pub fn validate_jail(jail: &str) -> Result<(), String> {
    if jail.is_empty() || jail.len() > 64 {
        return Err(format!("jail name {jail:?} must have 1 to 64 characters"));
    }
    if jail.starts_with('-') {
        // It would reach commands as an option (issue 6).
        return Err(format!(
            "jail name {:?} must not start with '-'",
            jail.chars().take(64).collect::<String>()
        ));
    }
    if !jail
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'))
    {
        return Err(format!(
            "jail name {:?} may contain only letters, digits and - _ . @ :",
            jail.chars().take(64).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_outlasts_every_time() {
        assert!(Until::Never > Until::At(i64::MAX));
        assert_eq!(
            [Until::At(5), Until::Never, Until::At(9)].into_iter().max(),
            Some(Until::Never)
        );
        assert_eq!(
            [Until::At(5), Until::At(9)].into_iter().max(),
            Some(Until::At(9))
        );
    }

    #[test]
    fn jail_names() {
        assert!(validate_jail("sshd").is_ok());
        assert!(validate_jail("nginx-http-auth").is_ok());
        assert!(validate_jail("recidive_2.x").is_ok());
        assert!(validate_jail("").is_err());
        assert!(validate_jail("a b").is_err());
        assert!(validate_jail("x;rm").is_err());
        assert!(validate_jail("$(id)").is_err());
        assert!(validate_jail("-rf").is_err());
        assert!(validate_jail("--help").is_err());
    }
}
