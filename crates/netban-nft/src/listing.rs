//! Reading `nft -j list table|set ...` back: sets with their elements, chains, rules.
//!
//! nft 1.0.6 prints `{"nftables": [{"metainfo": ...}, {"table": ...}, {"set": ...},
//! {"chain": ...}, {"rule": ...}]}`. A set's `elem` holds bare values (`"192.0.2.1"`,
//! `{"prefix": ...}`) for elements without timeout or comment, and `{"elem": {"val": ...,
//! "timeout": 3600, "expires": 3599, "comment": "..."}}` otherwise; `expires` is the remaining
//! time in whole seconds. Values that are no [`Target`] (a `range` an operator added, a
//! concatenation) are kept as text so the caller can say what it skipped. With `-t` (terse)
//! nft leaves the elements out (see `read` for what that does and does not save).

use std::collections::BTreeSet;

use netban_core::Target;
use serde::Deserialize;
use serde_json::Value;

/// What one listing holds, in nft's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// `(family, name)` of each table listed.
    pub tables: Vec<(String, String)>,
    pub sets: Vec<ListedSet>,
    pub chains: Vec<ListedChain>,
    pub rules: Vec<ListedRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListedSet {
    pub table: String,
    pub name: String,
    /// `ipv4_addr`, `ipv6_addr`, or nft's JSON for anything else.
    pub kind: String,
    pub flags: BTreeSet<String>,
    pub elements: Vec<ListedElement>,
}

impl ListedSet {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedElement {
    /// The element as a target, or its JSON text when it is none.
    pub value: Result<Target, String>,
    /// Seconds the element was added for; `None`: no timeout.
    pub timeout: Option<u64>,
    /// Seconds left.
    pub expires: Option<u64>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedChain {
    pub table: String,
    pub name: String,
    pub kind: Option<String>,
    pub hook: Option<String>,
    pub prio: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    pub table: String,
    pub chain: String,
    /// Sets the rule matches against (`@name`).
    pub sets: Vec<String>,
    /// The rule ends in `drop`.
    pub drops: bool,
}

#[derive(Deserialize)]
struct Root {
    nftables: Vec<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawSet {
    #[serde(default)]
    table: String,
    name: String,
    #[serde(rename = "type")]
    kind: Value,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    elem: Vec<Value>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default)]
    table: String,
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    hook: Option<String>,
    prio: Option<i64>,
}

#[derive(Deserialize)]
struct RawRule {
    #[serde(default)]
    table: String,
    chain: String,
    #[serde(default)]
    expr: Vec<Value>,
}

/// Parses nft's JSON listing; the error says what did not fit.
pub fn parse(bytes: &[u8]) -> Result<Listing, String> {
    let root: Root = serde_json::from_slice(bytes)
        .map_err(|e| format!("nft printed a listing netban cannot read: {e}"))?;
    let mut listing = Listing::default();
    for object in root.nftables {
        if let Some(v) = object.get("table") {
            let family = v.get("family").and_then(Value::as_str).unwrap_or_default();
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            listing.tables.push((family.to_string(), name.to_string()));
        } else if let Some(v) = object.get("set") {
            let raw: RawSet = RawSet::deserialize(v)
                .map_err(|e| format!("nft listed a set netban cannot read: {e}"))?;
            listing.sets.push(ListedSet {
                table: raw.table,
                name: raw.name,
                kind: match raw.kind {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
                flags: raw.flags.into_iter().collect(),
                elements: raw.elem.iter().map(element).collect(),
            });
        } else if let Some(v) = object.get("chain") {
            let raw: RawChain = RawChain::deserialize(v)
                .map_err(|e| format!("nft listed a chain netban cannot read: {e}"))?;
            listing.chains.push(ListedChain {
                table: raw.table,
                name: raw.name,
                kind: raw.kind,
                hook: raw.hook,
                prio: raw.prio,
            });
        } else if let Some(v) = object.get("rule") {
            let raw: RawRule = RawRule::deserialize(v)
                .map_err(|e| format!("nft listed a rule netban cannot read: {e}"))?;
            listing.rules.push(rule(raw));
        }
    }
    Ok(listing)
}

fn element(v: &Value) -> ListedElement {
    let body = v.get("elem");
    let val = body.and_then(|b| b.get("val")).unwrap_or(v);
    let num = |key| body.and_then(|b| b.get(key)).and_then(Value::as_u64);
    ListedElement {
        value: value(val).ok_or_else(|| val.to_string()),
        timeout: num("timeout"),
        expires: num("expires"),
        comment: body
            .and_then(|b| b.get("comment"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn value(v: &Value) -> Option<Target> {
    match v {
        Value::String(addr) => Target::parse(addr).ok(),
        Value::Object(o) => {
            let p = o.get("prefix")?;
            let addr = p.get("addr")?.as_str()?.parse().ok()?;
            let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
            Target::from_parts(addr, len).ok()
        }
        _ => None,
    }
}

fn rule(raw: RawRule) -> ListedRule {
    let mut sets = Vec::new();
    let mut drops = false;
    for statement in &raw.expr {
        if let Some(right) = statement
            .get("match")
            .and_then(|m| m.get("right"))
            .and_then(Value::as_str)
            && let Some(set) = right.strip_prefix('@')
        {
            sets.push(set.to_string());
        }
        drops |= statement.get("drop").is_some();
    }
    ListedRule {
        table: raw.table,
        chain: raw.chain,
        sets,
        drops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by nft 1.0.6 for netban's table (one host with timeout and comment, one
    /// permanent, a prefix, a range an operator added by hand, a chain with its rules).
    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "netban", "handle": 1}}, {"set": {"family": "inet", "name": "hosts4", "table": "netban", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "elem": [{"elem": {"val": "198.51.100.3", "timeout": 3600, "expires": 3599, "comment": "netban:web-01:abc until=1 jail=sshd"}}, "198.51.100.4"]}}, {"set": {"family": "inet", "name": "nets4_28", "table": "netban", "type": "ipv4_addr", "handle": 2, "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "203.0.113.0", "len": 28}}, "timeout": 600, "expires": 599}}, {"range": ["10.0.0.1", "10.0.0.9"]}]}}, {"chain": {"family": "inet", "table": "netban", "name": "input", "handle": 3, "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}}, {"rule": {"family": "inet", "table": "netban", "chain": "input", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@hosts4"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}]}"#;

    #[test]
    fn reads_sets_elements_chains_and_rules() {
        let l = parse(LISTED.as_bytes()).unwrap();
        assert_eq!(l.tables, [("inet".to_string(), "netban".to_string())]);
        assert_eq!(l.sets.len(), 2);
        let hosts = &l.sets[0];
        assert_eq!(hosts.name, "hosts4");
        assert_eq!(hosts.kind, "ipv4_addr");
        assert!(hosts.has_flag("timeout") && !hosts.has_flag("interval"));
        assert_eq!(
            hosts.elements[0],
            ListedElement {
                value: Ok(Target::parse("198.51.100.3").unwrap()),
                timeout: Some(3600),
                expires: Some(3599),
                comment: Some("netban:web-01:abc until=1 jail=sshd".into()),
            }
        );
        assert_eq!(hosts.elements[1].timeout, None);
        assert_eq!(hosts.elements[1].comment, None);
        let nets = &l.sets[1];
        assert_eq!(
            nets.elements[0].value,
            Ok(Target::parse("203.0.113.0/28").unwrap())
        );
        assert!(nets.elements[1].value.is_err(), "a range is no target");
        assert_eq!(
            l.chains,
            vec![ListedChain {
                table: "netban".into(),
                name: "input".into(),
                kind: Some("filter".into()),
                hook: Some("input".into()),
                prio: Some(-10),
            }]
        );
        assert_eq!(
            l.rules,
            vec![ListedRule {
                table: "netban".into(),
                chain: "input".into(),
                sets: vec!["hosts4".into()],
                drops: true,
            }]
        );
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_set() {
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"nftables": [{"set": {"name": 5}}]}"#).is_err());
    }
}
