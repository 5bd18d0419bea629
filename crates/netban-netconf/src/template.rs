//! XML payload templates: `<entry><prefix>{prefix}</prefix><comment>{mark} {jail}</comment></entry>`.
//!
//! The placeholders are netban's ([`netban_core::template::PLACEHOLDERS`]) plus `{mark}`, this
//! netban instance's ownership mark. Every value is XML-escaped when it is put in, so a jail
//! name like `a<b&c` cannot change the structure of the payload. The template text itself is
//! the operator's XML and is checked for well-formedness (rendered with sample values) when
//! the config is loaded. `{{` and `}}` are literal braces.
//!
//! The wrapper (`config = "<blocklist ...>{entries}</blocklist>"`) is not a per-target
//! template: its only placeholder is `{entries}`, where the rendered entries go.

use netban_core::Target;
use netban_core::sink::LeaseInfo;
use netban_core::template::{PLACEHOLDERS, Vars};

use crate::xml::{check_fragment, escape};

/// A checked per-entry template (`add`, `remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl XmlTemplate {
    pub fn parse(text: &str) -> Result<XmlTemplate, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut markup = Markup::default();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                    markup.step('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                    markup.step('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed '{{' in {text:?}")),
                        }
                    }
                    if name != "mark" && !PLACEHOLDERS.contains(&name.as_str()) {
                        return Err(format!(
                            "unknown placeholder {{{name}}} in {text:?}; known: {} {{mark}}",
                            PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                    }
                    if markup.in_tag && markup.quote.is_none() {
                        return Err(format!(
                            "{{{name}}} inside a tag in {text:?}: placeholders go into element text or quoted attribute values"
                        ));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => {
                    return Err(format!(
                        "stray '}}' in {text:?}; write '}}}}' for a literal brace"
                    ));
                }
                c => {
                    lit.push(c);
                    markup.step(c);
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        let t = XmlTemplate { parts };
        // Whole elements only, whatever the values.
        check_fragment(&t.render_sample()).map_err(|e| format!("not well-formed XML: {e}"))?;
        Ok(t)
    }

    pub fn uses(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if v == name))
    }

    /// The entry for `target`; every value XML-escaped.
    pub fn render(&self, target: &Target, lease: &LeaseInfo, host: &str, mark: &str) -> String {
        let vars = Vars::new(target, lease, host);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) if v == "mark" => out.push_str(&escape(mark)),
                Part::Var(v) => out.push_str(&escape(vars.get(v))),
            }
        }
        out
    }

    fn render_sample(&self) -> String {
        let target = sample_target();
        let lease = LeaseInfo {
            jail: "a<b&c".into(),
            origin: "local".into(),
            bantime: 600,
            until: Some(1),
        };
        self.render(&target, &lease, "h\"ost'", "netban:h:0")
    }
}

/// Where a template's text is: inside `<...>`, and inside a quoted attribute value there.
#[derive(Default)]
struct Markup {
    in_tag: bool,
    quote: Option<char>,
}

impl Markup {
    fn step(&mut self, c: char) {
        match (self.in_tag, self.quote, c) {
            (false, _, '<') => self.in_tag = true,
            (true, None, '>') => self.in_tag = false,
            (true, None, '"' | '\'') => self.quote = Some(c),
            (true, Some(q), c) if c == q => self.quote = None,
            _ => {}
        }
    }
}

fn sample_target() -> Target {
    Target::from_net(ipnet::IpNet::V4(ipnet::Ipv4Net::default()))
}

/// The `config` wrapper: text before and after `{entries}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapper {
    before: String,
    after: String,
}

impl Wrapper {
    pub fn parse(text: &str) -> Result<Wrapper, String> {
        let mut pieces = text.split("{entries}");
        let (Some(before), Some(after), None) = (pieces.next(), pieces.next(), pieces.next())
        else {
            return Err(format!("must contain {{entries}} exactly once: {text:?}"));
        };
        if before.contains('{') || after.contains('{') {
            return Err(format!(
                "may use only the placeholder {{entries}} (write literal values into it): {text:?}"
            ));
        }
        let w = Wrapper {
            before: before.to_string(),
            after: after.to_string(),
        };
        check_fragment(&w.wrap("")).map_err(|e| format!("not well-formed XML: {e}"))?;
        Ok(w)
    }

    pub fn wrap(&self, entries: &str) -> String {
        let mut out = String::with_capacity(self.before.len() + entries.len() + self.after.len());
        out.push_str(&self.before);
        out.push_str(entries);
        out.push_str(&self.after);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(jail: &str) -> LeaseInfo {
        LeaseInfo {
            jail: jail.into(),
            origin: "local".into(),
            bantime: 600,
            until: Some(1000),
        }
    }

    #[test]
    fn values_are_escaped() {
        let t = XmlTemplate::parse(
            "<entry><prefix>{prefix}</prefix><comment>{mark} {jail}</comment></entry>",
        )
        .unwrap();
        let target = Target::parse("2001:DB8::1").unwrap();
        assert_eq!(
            t.render(
                &target,
                &lease("x</comment><evil/>&"),
                "web-01",
                "netban:web-01:ab"
            ),
            "<entry><prefix>2001:db8::1/128</prefix><comment>netban:web-01:ab x&lt;/comment&gt;&lt;evil/&gt;&amp;</comment></entry>"
        );
        assert!(t.uses("mark"));
        assert!(!t.uses("ip"));
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(
            XmlTemplate::parse("<e>{jial}</e>")
                .unwrap_err()
                .contains("unknown placeholder {jial}")
        );
        assert!(
            XmlTemplate::parse("<e>{prefix}</f>")
                .unwrap_err()
                .contains("not well-formed")
        );
        assert!(XmlTemplate::parse("<e>{prefix</e>").is_err());
        // Placeholders only in text and quoted attribute values.
        assert!(
            XmlTemplate::parse("<{jail}/>")
                .unwrap_err()
                .contains("inside a tag")
        );
        assert!(XmlTemplate::parse("<e {jail}='x'/>").is_err());
        assert!(XmlTemplate::parse("<e a='{jail}' b=\"{prefix}\">{ip}</e>").is_ok());
    }

    #[test]
    fn wrapper() {
        let w = Wrapper::parse(r#"<blocklist xmlns="urn:example:blocklist">{entries}</blocklist>"#)
            .unwrap();
        assert_eq!(
            w.wrap("<entry/>"),
            r#"<blocklist xmlns="urn:example:blocklist"><entry/></blocklist>"#
        );
        assert!(
            Wrapper::parse("<a></a>")
                .unwrap_err()
                .contains("exactly once")
        );
        assert!(Wrapper::parse("<a>{entries}{entries}</a>").is_err());
        assert!(Wrapper::parse("<a>{entries}</b>").is_err());
        assert!(Wrapper::parse("<a name='{jail}'>{entries}</a>").is_err());
    }
}
