//! Element comments: netban's ownership mark, and the lease end it was added for.
//!
//! Every element netban adds carries a comment such as
//! `netban:web-01:3f9a2c1d7e4b until=1767225600 jail=sshd origin=local` (nft 1.0.6 keeps element
//! comments and prints them in `nft -j list`; it refuses comments of 256 bytes or more with
//! "Memory allocation failure", so netban keeps them under [`MAX_COMMENT`]). The first word is
//! the mark of the netban instance that added it: in an operator's set it tells netban's
//! elements from the operator's own (`Owner::This`), another netban host's
//! (`Owner::Host(id)`, for a `netban:<id>:...` mark) and anybody else's (`Owner::Foreign`).
//! `until=` gives back the exact expiry netban asked for; the kernel only tells the whole
//! seconds left.

use netban_core::sink::LeaseInfo;

use netban_core::sink::Owner;

/// Longest comment netban writes, in bytes.
pub const MAX_COMMENT: usize = 128;

/// The comment for an element added for `lease`, expiring at `expires` (None: permanent).
pub fn comment(mark: &str, lease: &LeaseInfo, expires: Option<i64>) -> String {
    let until = match expires {
        Some(t) => format!("until={t}"),
        None => "permanent".to_string(),
    };
    let text = format!(
        "{} {until} jail={} origin={}",
        clean(mark),
        clean(&lease.jail),
        clean(&lease.origin)
    );
    let mut end = text.len().min(MAX_COMMENT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Who added an element with this comment, seen by the instance whose mark is `mark`.
pub fn owner(comment: Option<&str>, mark: &str) -> Owner {
    let Some(first) = comment.and_then(|c| c.split(' ').next()) else {
        return Owner::Foreign;
    };
    if !mark.is_empty() && first == clean(mark) {
        return Owner::This;
    }
    match first
        .strip_prefix("netban:")
        .and_then(|r| r.split_once(':'))
    {
        Some((host, _)) if !host.is_empty() => Owner::Host(host.to_string()),
        _ => Owner::Foreign,
    }
}

/// The `until=` of a comment netban wrote.
pub fn until(comment: Option<&str>) -> Option<i64> {
    comment?
        .split(' ')
        .find_map(|w| w.strip_prefix("until="))
        .and_then(|v| v.parse().ok())
}

/// Keeps comments one plain word per field: nft prints them in double quotes.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:@/+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: &str = "netban:web-01:3f9a2c1d7e4b";

    fn lease(jail: &str) -> LeaseInfo {
        LeaseInfo {
            jail: jail.into(),
            origin: "local".into(),
            bantime: 600,
            until: Some(1_767_225_600),
        }
    }

    #[test]
    fn comment_carries_mark_and_expiry() {
        let c = comment(MARK, &lease("sshd"), Some(1_767_225_600));
        assert_eq!(
            c,
            "netban:web-01:3f9a2c1d7e4b until=1767225600 jail=sshd origin=local"
        );
        assert_eq!(until(Some(&c)), Some(1_767_225_600));
        assert_eq!(owner(Some(&c), MARK), Owner::This);
        let p = comment(MARK, &lease("a \"b\"\n"), None);
        assert_eq!(
            p,
            "netban:web-01:3f9a2c1d7e4b permanent jail=a__b__ origin=local"
        );
        assert_eq!(until(Some(&p)), None);
        let long = comment(MARK, &lease(&"j".repeat(300)), None);
        assert_eq!(long.len(), MAX_COMMENT);
    }

    #[test]
    fn owners() {
        assert_eq!(owner(None, MARK), Owner::Foreign);
        assert_eq!(owner(Some("manual block"), MARK), Owner::Foreign);
        assert_eq!(
            owner(Some("netban:web-02:99 until=1 jail=sshd"), MARK),
            Owner::Host("web-02".into())
        );
        assert_eq!(
            owner(Some("netban:web-01:other until=1"), MARK),
            Owner::Host("web-01".into())
        );
        assert_eq!(owner(Some("netban::x"), MARK), Owner::Foreign);
        assert_eq!(owner(Some(MARK), ""), Owner::Host("web-01".into()));
    }
}
