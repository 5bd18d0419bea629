//! fail2ban-clusterd's messages: `jail=sshd, action=banip, ip=192.0.2.1`.
//!
//! Comma-separated `key=value` pairs (spaces after the commas). clusterd pastes the values
//! into a shell command unescaped; here every value is validated before it means anything:
//! the jail is a jail name ([`validate_jail`]), the action `banip` or `unbanip`, the ip a
//! [`Target`] (so `ip=1.2.3.4;id` is malformed, and `ip=0.0.0.0/0` parses but the guard
//! refuses it). Other keys are allowed (clusterd filters may use them) but bounded.

use netban_core::Target;
use netban_core::lease::validate_jail;

/// The most `key=value` pairs in one message.
const MAX_PAIRS: usize = 16;

/// A ban or an unban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ban,
    Unban,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Ban => "banip",
            Action::Unban => "unbanip",
        }
    }
}

/// A clusterd message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub jail: String,
    pub action: Action,
    pub target: Target,
}

impl Message {
    /// clusterd's format. A host is written as its bare address, as fail2ban passes it.
    pub fn format(&self) -> String {
        format!(
            "jail={}, action={}, ip={}",
            self.jail,
            self.action.as_str(),
            self.target.ip_display()
        )
    }
}

/// Parses a message; `Err` says what is wrong (short, printable: it is logged).
pub fn parse(text: &str) -> Result<Message, String> {
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err("holds control or non-ASCII characters".into());
    }
    let (mut jail, mut action, mut ip) = (None, None, None);
    for (n, pair) in text.split(',').enumerate() {
        if n >= MAX_PAIRS {
            return Err(format!("more than {MAX_PAIRS} key=value pairs"));
        }
        let pair = pair.trim_start_matches(' ');
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| "a part is not key=value".to_string())?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("a key is not a word".into());
        }
        let slot = match k {
            "jail" => &mut jail,
            "action" => &mut action,
            "ip" => &mut ip,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(format!("{k} is given twice"));
        }
    }
    let jail = jail.ok_or("no jail=")?;
    validate_jail(jail).map_err(|_| "jail is not a jail name".to_string())?;
    let action = match action.ok_or("no action=")? {
        "banip" => Action::Ban,
        "unbanip" => Action::Unban,
        _ => return Err("action is not banip or unbanip".into()),
    };
    let ip = ip.ok_or("no ip=")?;
    let target = Target::parse(ip).map_err(|_| "ip is not an IP address or network".to_string())?;
    Ok(Message {
        jail: jail.to_string(),
        action,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clusterd_messages() {
        let m = parse("jail=sshd, action=banip, ip=192.0.2.1").unwrap();
        assert_eq!(m.jail, "sshd");
        assert_eq!(m.action, Action::Ban);
        assert_eq!(m.target.to_string(), "192.0.2.1/32");
        assert_eq!(m.format(), "jail=sshd, action=banip, ip=192.0.2.1");
        let m = parse("action=unbanip,ip=2001:db8::1,jail=postfix,time=17").unwrap();
        assert_eq!(m.action, Action::Unban);
        assert_eq!(parse(&m.format()).unwrap(), m);
    }

    #[test]
    fn refuses_hostile_values() {
        for bad in [
            "jail=sshd, action=banip, ip=1.2.3.4;id",
            "jail=sshd, action=banip, ip=1.2.3.4 ; id",
            "jail=sshd, action=banip, ip=$(id)",
            "jail=$(id), action=banip, ip=1.2.3.4",
            "jail=sshd, action=rm, ip=1.2.3.4",
            "jail=sshd, action=banip",
            "jail=sshd, action=banip, ip=1.2.3.4, ip=5.6.7.8",
            "jail=sshd, action=banip, ip=1.2.3.4\n",
            "jail=sshd, action=banip, ip=`id`",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // Parses: the guard refuses it.
        assert!(parse("jail=sshd, action=banip, ip=0.0.0.0/0").is_ok());
    }
}
