//! The comment netban stores with each RTBH rule, and who made a rule, read from its comment.
//!
//! The comment is the ownership mark (`netban:<host_id>:<instance>`, see
//! [`netban_core::owner`]) followed by the rendered `comment` template (`{jail}` by default):
//! `netban:web-01:3f9a2c1d7e4b sshd`. A template that places `{mark}` itself is rendered as
//! written. Which rules are netban's is decided by the mark alone (issue 6: a mark derived from
//! the template once became `netban ` and matched every host's rules). ExaFS stores `"` as
//! `&quot;`; the mark never contains one.

use netban_core::Target;
use netban_core::owner::{Mark, Owner};
use netban_core::sink::LeaseInfo;
use netban_core::template::{Template, Vars};

/// How ExaFS stores a comment: `"` becomes `&quot;`.
pub fn exafs_text(s: &str) -> String {
    s.replace('"', "&quot;")
}

/// Renders comments and reads marks for one sink.
#[derive(Debug, Clone)]
pub struct Comments {
    template: Template,
    places_mark: bool,
    host: String,
    mark: Mark,
    adopt: Vec<Pattern>,
}

impl Comments {
    pub fn new(template: Template, host: &str, mark: Mark) -> Comments {
        let places_mark = template.placeholders().any(|p| p == "mark");
        Comments {
            template,
            places_mark,
            host: host.to_string(),
            mark,
            adopt: Vec::new(),
        }
    }

    /// Rules without a mark whose comment matches one of `patterns` count as this host's
    /// (`adopt_comments`).
    pub fn adopting(mut self, patterns: Vec<Pattern>) -> Comments {
        self.adopt = patterns;
        self
    }

    /// The comment sent for a rule made for `target` and `lease`.
    pub fn render(&self, target: &Target, lease: &LeaseInfo) -> String {
        let vars = Vars::new(target, lease, &self.host).with_mark(&self.mark);
        let text = self.template.render(&vars);
        if self.places_mark {
            text
        } else if text.is_empty() {
            self.mark.to_string()
        } else {
            format!("{} {text}", self.mark)
        }
    }

    /// Who made a rule whose stored comment is `comment`.
    pub fn owner(&self, comment: Option<&str>) -> Owner {
        match (self.mark.owner(comment), comment) {
            (Owner::Foreign, Some(c)) if self.adopt.iter().any(|p| p.matches(c)) => {
                Owner::Host(self.mark.host().to_string())
            }
            (owner, _) => owner,
        }
    }

    pub fn mark(&self) -> &Mark {
        &self.mark
    }
}

/// An `adopt_comments` pattern: literal text with `*` for any run of characters, matched
/// against the whole comment as ExaFS stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    pub fn parse(p: &str) -> Result<Pattern, String> {
        if p.len() > 256 {
            return Err(format!("{:?}... is longer than 256 bytes", &p[..32]));
        }
        let parts: Vec<String> = p.split('*').map(exafs_text).collect();
        if parts.iter().all(String::is_empty) {
            return Err(format!(
                "{p:?} matches every comment, operators' rules too; give the old tool's text, e.g. \"fail2ban *\""
            ));
        }
        if p.starts_with(netban_core::owner::MARK_PREFIX) {
            return Err(format!(
                "{p:?} is netban's own mark; netban recognises it by itself"
            ));
        }
        Ok(Pattern { parts })
    }

    pub fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(x) => x,
            None => return text.is_empty(),
        };
        let Some(mut left) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return left.is_empty();
        };
        for part in middle {
            match left.find(part.as_str()) {
                Some(i) => left = &left[i + part.len()..],
                None => return false,
            }
        }
        left.ends_with(last.as_str())
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
    fn the_mark_comes_first_and_decides() {
        let mark = Mark::new("web-01", "3f9a2c1d7e4b");
        let t = Target::parse("192.0.2.1").unwrap();
        let c = Comments::new(Template::parse("{jail}").unwrap(), "web-01", mark.clone());
        assert_eq!(c.render(&t, &lease()), "netban:web-01:3f9a2c1d7e4b sshd");
        assert_eq!(
            c.owner(Some("netban:web-01:3f9a2c1d7e4b sshd")),
            Owner::This
        );
        // The template of issue 6 no longer decides anything.
        let c = Comments::new(
            Template::parse("netban {jail} by {host}").unwrap(),
            "web-01",
            mark.clone(),
        );
        assert_eq!(
            c.render(&t, &lease()),
            "netban:web-01:3f9a2c1d7e4b netban sshd by web-01"
        );
        // Another host's rule under that template: never taken for this host's.
        let other = c.owner(Some("netban sshd by web-02"));
        assert!(
            other != Owner::This && other != Owner::Host("web-01".into()),
            "{other:?}"
        );
        assert_eq!(
            c.owner(Some("netban:web-02:aaaaaaaaaaaa netban sshd by web-02")),
            Owner::Host("web-02".into())
        );
        // A template may place the mark itself.
        let c = Comments::new(Template::parse("f2b {jail} [{mark}]").unwrap(), "h", mark);
        assert_eq!(
            c.render(&t, &lease()),
            "f2b sshd [netban:web-01:3f9a2c1d7e4b]"
        );
    }

    #[test]
    fn adopt_patterns_match_whole_comments() {
        let p = Pattern::parse("fail2ban *").unwrap();
        assert!(p.matches("fail2ban sshd 192.0.2.1"));
        assert!(!p.matches("by hand: fail2ban sshd"));
        let p = Pattern::parse("f2b * from \"web\"").unwrap();
        assert!(p.matches("f2b sshd from &quot;web&quot;"));
        assert!(!p.matches("f2b sshd from &quot;web&quot; (kept)"));
        let p = Pattern::parse("exact").unwrap();
        assert!(p.matches("exact") && !p.matches("exactly"));
        let p = Pattern::parse("a*b*c").unwrap();
        assert!(p.matches("abc") && p.matches("a-b-b-c") && !p.matches("acb"));
        assert!(Pattern::parse("*").is_err() && Pattern::parse("**").is_err());
        assert!(Pattern::parse("netban:web-01:*").is_err());
    }

    #[test]
    fn adopted_comments_count_as_this_hosts_and_marks_still_win() {
        let mark = Mark::new("web-01", "3f9a2c1d7e4b");
        let c = Comments::new(Template::parse("{jail}").unwrap(), "web-01", mark)
            .adopting(vec![Pattern::parse("fail2ban *").unwrap()]);
        assert_eq!(c.owner(Some("fail2ban sshd")), Owner::Host("web-01".into()));
        assert_eq!(c.owner(Some("by hand")), Owner::Foreign);
        assert_eq!(c.owner(None), Owner::Foreign);
        assert_eq!(
            c.owner(Some("fail2ban netban:web-02:aaaaaaaaaaaa")),
            Owner::Host("web-02".into())
        );
    }
}
