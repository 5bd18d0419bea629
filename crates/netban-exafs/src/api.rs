//! The JSON ExaFS speaks for RTBH rules (API v3), and turning it into netban's terms.
//!
//! Rules are read leniently, field by field: one odd rule in a listing (a rule made in the web
//! UI with an address we cannot parse) is skipped, not a reason to fail the whole listing.
//! Shapes were checked against a running ExaFS 1.4.1 with `time_format=timestamp`:
//! `expires`/`created` are integer unix seconds, the unused family's fields are `null`,
//! `community` is the community's *name*, `comment` is `null` when none was given.

use std::net::IpAddr;

use netban_core::Target;
use serde::Serialize;

/// The body of `POST /rules/rtbh`. Exactly one family is set.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NewRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_mask: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_mask: Option<u8>,
    pub community: u32,
    /// Unix seconds: the only form ExaFS reads independently of its time zone.
    pub expires: i64,
    pub comment: String,
}

impl NewRule {
    pub fn new(target: &Target, community: u32, expires: i64, comment: String) -> NewRule {
        // The target is canonical, so the address string is the one ExaFS matches on.
        let address = target.addr().to_string();
        let len = target.prefix_len();
        let (ipv4, ipv4_mask, ipv6, ipv6_mask) = match target.addr() {
            IpAddr::V4(_) => (Some(address), Some(len), None, None),
            IpAddr::V6(_) => (None, None, Some(address), Some(len)),
        };
        NewRule {
            ipv4,
            ipv4_mask,
            ipv6,
            ipv6_mask,
            community,
            expires,
            comment,
        }
    }
}

/// An RTBH rule as ExaFS returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: i64,
    /// The address exactly as stored (ExaFS matches rules on this string).
    pub address: String,
    pub mask: u8,
    /// The canonical target, when the address and mask parse.
    pub target: Option<Target>,
    /// The community's name, e.g. `65535:65283`.
    pub community: String,
    pub comment: Option<String>,
    /// Unix seconds (only in `time_format=timestamp` answers).
    pub expires: Option<i64>,
    pub rstate: String,
}

/// The `rstate` of a rule that is announced.
pub const ACTIVE: &str = "active rule";

impl Rule {
    /// Reads one rule object; `None` when it lacks an id or an address.
    pub fn from_json(v: &serde_json::Value) -> Option<Rule> {
        let id = v.get("id")?.as_i64()?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
        let num = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_u64())
                .and_then(|n| u8::try_from(n).ok())
        };
        let (address, mask) = match (text("ipv4"), text("ipv6")) {
            (Some(a), _) => (a, num("ipv4_mask").unwrap_or(32)),
            (None, Some(a)) => (a, num("ipv6_mask").unwrap_or(128)),
            (None, None) => return None,
        };
        let target = address
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| Target::from_parts(ip, mask).ok());
        Some(Rule {
            id,
            address: address.to_string(),
            mask,
            target,
            community: text("community").unwrap_or("").to_string(),
            comment: text("comment").map(str::to_string),
            expires: v.get("expires").and_then(|x| x.as_i64()),
            rstate: text("rstate").unwrap_or("").to_string(),
        })
    }

    /// True when this is the very rule a `POST` for `target` matches: ExaFS compares address
    /// strings, and netban always sends the canonical one.
    pub fn is_exactly(&self, target: &Target, community: &str) -> bool {
        self.community == community
            && self.mask == target.prefix_len()
            && self.address == target.addr().to_string()
    }

    /// Why ExaFS holds the rule without announcing it, or `None` when it is active. The text
    /// depends on the state only, so a listing and an add describe the same rule alike.
    pub fn not_enforced(&self) -> Option<String> {
        not_enforced(&self.rstate)
    }
}

/// See [`Rule::not_enforced`].
pub fn not_enforced(rstate: &str) -> Option<String> {
    match rstate {
        ACTIVE => None,
        "whitelisted rule" => Some(
            "ExaFS whitelisted the rule (the target lies in an ExaFS whitelist), so it is not announced; remove the whitelist entry in ExaFS if it should be blocked".to_string(),
        ),
        "withdrawed rule" => Some(
            "ExaFS holds the rule as withdrawn (its expiry has passed by ExaFS's clock), so it is not announced; check the clocks of ExaFS and this host".to_string(),
        ),
        "deleted rule" => Some("ExaFS holds the rule as deleted, so it is not announced".to_string()),
        other => Some(format!("ExaFS reports the rule as {:?}, not \"{ACTIVE}\"", crate::error::sanitize(other))),
    }
}

/// The RTBH rules of a `GET /rules` answer: `rtbh_any_rw`, and for non-admin keys
/// `rtbh_any_ro` (rules outside the key's organisation ranges, visible but not editable).
pub fn rtbh_rules(listing: &serde_json::Value) -> Option<Vec<Rule>> {
    let obj = listing.as_object()?;
    let rw = obj.get("rtbh_any_rw")?.as_array()?;
    let ro = obj.get("rtbh_any_ro").and_then(|v| v.as_array());
    let all = rw.iter().chain(ro.into_iter().flatten());
    let mut rules = Vec::new();
    for v in all {
        match Rule::from_json(v) {
            Some(r) => rules.push(r),
            None => tracing::debug!(
                "exafs: skipping an RTBH rule netban cannot read: {}",
                crate::error::sanitize(&v.to_string())
            ),
        }
    }
    Some(rules)
}

/// `GET /communities`: `[[id, "name"], ...]`.
pub fn communities(v: &serde_json::Value) -> Vec<(i64, String)> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|pair| {
                    let pair = pair.as_array()?;
                    Some((pair.first()?.as_i64()?, pair.get(1)?.as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_rule_bodies() {
        let v4 = NewRule::new(
            &Target::parse("192.0.2.1").unwrap(),
            1,
            1_795_311_000,
            "netban h sshd".into(),
        );
        assert_eq!(
            serde_json::to_value(&v4).unwrap(),
            json!({"ipv4": "192.0.2.1", "ipv4_mask": 32, "community": 1, "expires": 1_795_311_000i64, "comment": "netban h sshd"})
        );
        let v6 = NewRule::new(
            &Target::parse("2001:DB8:0::/48").unwrap(),
            2,
            5,
            String::new(),
        );
        assert_eq!(
            serde_json::to_value(&v6).unwrap(),
            json!({"ipv6": "2001:db8::", "ipv6_mask": 48, "community": 2, "expires": 5, "comment": ""})
        );
    }

    #[test]
    fn reads_rules_as_exafs_lists_them() {
        let listing = json!({
            "flowspec_ipv4_rw": [],
            "rtbh_any_rw": [
                {"comment": "netban web-01 &quot;sshd&quot;", "community": "65535:65283", "created": 1795309602, "expires": 1795311600,
                 "id": 1, "ipv4": "192.0.2.1", "ipv4_mask": 32, "ipv6": null, "ipv6_mask": null, "rstate": "active rule", "user": "admin@example.com"},
                {"comment": null, "community": "65535:65283", "created": 1795309602, "expires": 1795311000,
                 "id": 2, "ipv4": null, "ipv4_mask": null, "ipv6": "2001:DB8::5", "ipv6_mask": 128, "rstate": "withdrawed rule", "user": "x"},
                {"id": 3, "ipv4": null, "ipv6": null},
            ],
            "rtbh_any_ro": [
                {"comment": "x", "community": "64496:64511", "expires": 7, "id": 4, "ipv4": "198.51.100.0", "ipv4_mask": 24, "ipv6": null, "ipv6_mask": null, "rstate": "active rule"},
            ],
        });
        let rules = rtbh_rules(&listing).unwrap();
        assert_eq!(rules.len(), 3, "the rule without an address is skipped");
        assert_eq!(rules[0].target, Target::parse("192.0.2.1").ok());
        assert_eq!(rules[0].expires, Some(1_795_311_600));
        assert!(rules[0].is_exactly(&Target::parse("192.0.2.1").unwrap(), "65535:65283"));
        assert!(!rules[0].is_exactly(&Target::parse("192.0.2.1").unwrap(), "64496:64511"));
        assert_eq!(rules[0].not_enforced(), None);
        // A non-canonical spelling is the same target but not the rule netban would post.
        assert_eq!(rules[1].target, Target::parse("2001:db8::5").ok());
        assert!(!rules[1].is_exactly(&Target::parse("2001:db8::5").unwrap(), "65535:65283"));
        assert!(rules[1].not_enforced().unwrap().contains("withdrawn"));
        assert_eq!(rules[2].id, 4);
        assert_eq!(rtbh_rules(&json!({"message": "x"})), None);
    }

    #[test]
    fn states() {
        assert!(
            not_enforced("whitelisted rule")
                .unwrap()
                .starts_with("ExaFS whitelisted the rule (")
        );
        assert!(not_enforced("deleted rule").is_some());
        assert!(
            not_enforced("something new")
                .unwrap()
                .contains("something new")
        );
    }

    #[test]
    fn reads_communities() {
        let v = json!([[1, "65535:65283"], [2, "64496:64511"], ["bad"], 5]);
        assert_eq!(
            communities(&v),
            vec![
                (1, "65535:65283".to_string()),
                (2, "64496:64511".to_string())
            ]
        );
    }
}
