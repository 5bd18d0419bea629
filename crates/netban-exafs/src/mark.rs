//! Which RTBH rules are netban's: the mark in the rule comment.
//!
//! A rule is marked as this host's netban rule when its comment starts with the comment
//! template's text up to its first placeholder other than `{host}`, with `{host}` filled in:
//! `netban {host} {jail}` gives the mark `netban web-01 `. `{host}` is part of the mark so that
//! hosts sharing one ExaFS never take each other's rules for their own (each host's reconcile
//! removes marked rules it does not want). A template made only of text and `{host}` must match
//! the whole comment. A template that starts with another placeholder (`{jail} by netban`) gives
//! no mark: nothing is adopted or cleaned up by listing, rules still expire on their own.
//! ExaFS stores `"` as `&quot;`, and the mark is compared in that form.
//!
//! The template text is scanned here rather than through [`netban_core::template::Template`]
//! because only its leading part matters; the config has already checked the whole template.

/// How ExaFS stores a comment: `"` becomes `&quot;`.
pub fn exafs_text(s: &str) -> String {
    s.replace('"', "&quot;")
}

/// The mark of this host's rules; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    prefix: String,
    /// The template is only text and `{host}`: the comment must equal the prefix.
    whole: bool,
}

impl Mark {
    pub fn from_template(template: &str, host: &str) -> Mark {
        let mut prefix = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    prefix.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    prefix.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if name != "host" {
                        return Mark {
                            prefix: exafs_text(&prefix),
                            whole: false,
                        };
                    }
                    prefix.push_str(host);
                }
                c => prefix.push(c),
            }
        }
        Mark {
            prefix: exafs_text(&prefix),
            whole: true,
        }
    }

    pub fn matches(&self, comment: &str) -> bool {
        if self.prefix.is_empty() {
            false
        } else if self.whole {
            comment == self.prefix
        } else {
            comment.starts_with(&self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_is_the_text_before_the_first_placeholder_with_the_host() {
        let m = Mark::from_template("netban {host} {jail}", "web-01");
        assert_eq!(
            m,
            Mark {
                prefix: "netban web-01 ".into(),
                whole: false
            }
        );
        assert!(m.matches("netban web-01 sshd"));
        assert!(!m.matches("netban web-010 sshd"), "another host's rule");
        assert!(!m.matches("netban web-02 sshd"));
        assert!(!m.matches("manual block"));
        // Quotes as ExaFS stores them.
        let m = Mark::from_template("\"nb\" {host}: {jail}", "h");
        assert!(m.matches("&quot;nb&quot; h: sshd"));
        // Only text and {host}: the whole comment.
        let m = Mark::from_template("netban {host}", "web-01");
        assert!(m.matches("netban web-01"));
        assert!(!m.matches("netban web-010"));
        // Escaped braces are text.
        assert_eq!(Mark::from_template("{{nb}} {jail}", "h").prefix, "{nb} ");
        // No text before the first placeholder: no mark at all.
        let m = Mark::from_template("{jail} by netban", "h");
        assert!(!m.matches("sshd by netban"));
        assert!(!m.matches(""));
    }
}
