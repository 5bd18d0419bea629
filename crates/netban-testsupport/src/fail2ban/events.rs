//! The probe's lines: what fail2ban did, one event per line, in order.

/// What the probe action saw fail2ban do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEvent {
    /// `start`, `ban`, `prolong` (`bantime.increment`), `unban`, `flush` or `stop`.
    pub kind: String,
    pub jail: String,
    /// The `<ip>` tag (ban/prolong/unban only).
    pub ip: Option<String>,
    /// The `<restored>` tag: `0` or `1` (ban/prolong/unban only).
    pub restored: Option<String>,
    /// The `<time>` tag verbatim (e.g. `1795303972.0`, or an integer for restored bans).
    pub time: Option<String>,
    /// The `<bantime>` tag verbatim.
    pub bantime: Option<String>,
}

impl ActionEvent {
    pub(super) fn parse(line: &str) -> Option<ActionEvent> {
        let mut f = line.split(' ');
        let kind = f.next()?.to_string();
        let jail = f.next()?.to_string();
        let mut next = || f.next().map(str::to_string);
        Some(ActionEvent {
            kind,
            jail,
            ip: next(),
            restored: next(),
            time: next(),
            bantime: next(),
        })
    }

    /// True for a ban (`ban`) of `ip` by `jail`.
    pub fn is(&self, kind: &str, jail: &str, ip: &str) -> bool {
        self.kind == kind && self.jail == jail && self.ip.as_deref() == Some(ip)
    }

    pub fn is_restored(&self) -> bool {
        self.restored.as_deref() == Some("1")
    }

    /// When the ban ends by its own tags (`time + bantime`), `None` for permanent or unknown.
    pub fn ends_at(&self) -> Option<f64> {
        let t: f64 = self.time.as_deref()?.parse().ok()?;
        let b: f64 = self.bantime.as_deref()?.parse().ok()?;
        (b >= 0.0).then_some(t + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines() {
        let e = ActionEvent::parse("ban sshd 192.0.2.10 1 1795309592 600").unwrap();
        assert!(e.is("ban", "sshd", "192.0.2.10") && e.is_restored());
        assert_eq!(e.ends_at(), Some(1_795_310_192.0));
        let f = ActionEvent::parse("flush sshd").unwrap();
        assert_eq!((f.kind.as_str(), f.ip), ("flush", None));
    }
}
