//! Argv templates: `["/usr/local/bin/notify", "{jail}", "{ip}"]`.
//!
//! A template fills whole argv elements (or a comment string) with values; the result is
//! never given to a shell. Placeholders are checked when the config is loaded, so a typo is a
//! config error and not a ban that silently passes `{jial}` to a script.

use std::collections::BTreeMap;

use crate::sink::LeaseInfo;
use crate::target::Target;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "ip", "prefix", "address", "mask", "family", "jail", "bantime", "until", "origin", "host",
    "mark",
];

/// A checked template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(&'static str),
}

impl Template {
    /// Parses `text`; `{name}` is a placeholder, `{{` and `}}` are literal braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed '{{' in template {text:?}")),
                        }
                    }
                    let Some(var) = PLACEHOLDERS.iter().find(|p| **p == name) else {
                        return Err(format!(
                            "unknown placeholder {{{name}}} in template {text:?}; known: {}",
                            PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(var));
                }
                '}' => {
                    return Err(format!(
                        "stray '}}' in template {text:?}; write '}}}}' for a literal brace"
                    ));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template { parts })
    }

    /// The placeholders this template uses.
    pub fn placeholders(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Text(_) => None,
        })
    }

    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(vars.get(v)),
            }
        }
        out
    }
}

/// The values of the placeholders for one target and lease.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    pub fn new(target: &Target, lease: &LeaseInfo, host: &str) -> Vars {
        let mut m = BTreeMap::new();
        m.insert("ip", target.ip_display());
        m.insert("prefix", target.to_string());
        m.insert("address", target.addr().to_string());
        m.insert("mask", target.mask().to_string());
        m.insert("family", target.family().as_str().to_string());
        m.insert("jail", lease.jail.clone());
        m.insert("bantime", lease.bantime.to_string());
        m.insert(
            "until",
            lease
                .until
                .map_or_else(|| "-1".to_string(), |u| u.to_string()),
        );
        m.insert("origin", lease.origin.clone());
        m.insert("host", host.to_string());
        Vars(m)
    }

    /// Adds `{mark}`: this instance's ownership mark (`netban:<host>:<instance>`).
    pub fn with_mark(mut self, mark: &crate::owner::Mark) -> Vars {
        self.0.insert("mark", mark.to_string());
        self
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// `NETBAN_IP`, `NETBAN_JAIL`, ... for the environment of a command.
    pub fn env(&self) -> impl Iterator<Item = (String, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (format!("NETBAN_{}", k.to_ascii_uppercase()), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> LeaseInfo {
        LeaseInfo {
            jail: "sshd".into(),
            origin: "local".into(),
            bantime: 600,
            until: Some(1000),
        }
    }

    #[test]
    fn renders_placeholders() {
        let t = Target::parse("192.0.2.1").unwrap();
        let v = Vars::new(&t, &lease(), "web-01");
        let tpl = Template::parse("netban {host} {jail} {ip} {prefix} {{x}}").unwrap();
        assert_eq!(
            tpl.render(&v),
            "netban web-01 sshd 192.0.2.1 192.0.2.1/32 {x}"
        );
        assert_eq!(
            Template::parse("{mask}/{family}/{until}")
                .unwrap()
                .render(&v),
            "255.255.255.255/inet4/1000"
        );
    }

    #[test]
    fn rejects_unknown_placeholders() {
        assert!(
            Template::parse("{jial}")
                .unwrap_err()
                .contains("unknown placeholder {jial}")
        );
        assert!(Template::parse("{ip").is_err());
        assert!(Template::parse("a}b").is_err());
    }

    #[test]
    fn a_hostile_value_stays_one_argument() {
        let t = Target::parse("192.0.2.1").unwrap();
        let mut l = lease();
        l.jail = "a; rm -rf / #".into();
        let v = Vars::new(&t, &l, "h");
        assert_eq!(
            Template::parse("{jail}").unwrap().render(&v),
            "a; rm -rf / #"
        );
    }
}
