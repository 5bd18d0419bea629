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
}

impl Comments {
    pub fn new(template: Template, host: &str, mark: Mark) -> Comments {
        let places_mark = template.placeholders().any(|p| p == "mark");
        Comments {
            template,
            places_mark,
            host: host.to_string(),
            mark,
        }
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
        self.mark.owner(comment)
    }

    pub fn mark(&self) -> &Mark {
        &self.mark
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
}
