//! The JSON that `nft -j -f -` reads, as serde types: netban never writes nft syntax.
//!
//! A transaction is `{"nftables": [command, ...]}`; each command is `{"add": {"element":
//! {...}}}` and the like. nft sends the whole file to the kernel as one netlink batch, so the
//! commands of one [`Transaction`] are applied all together or not at all
//! (`reference/nftables.md`). The shapes below are the ones nft 1.0.6 (Debian 12) accepts and
//! prints; values (addresses, prefixes) come only from [`netban_core::Target`].

use netban_core::Target;
use serde::Serialize;

use crate::config::Hook;

/// The only family netban uses: one table for IPv4 and IPv6.
pub const FAMILY: &str = "inet";

/// One `nft -j -f -` input.
#[derive(Debug, Default, Serialize)]
pub struct Transaction {
    nftables: Vec<Command>,
}

impl Transaction {
    pub fn push(&mut self, command: Command) {
        self.nftables.push(command);
    }

    pub fn is_empty(&self) -> bool {
        self.nftables.is_empty()
    }

    pub fn len(&self) -> usize {
        self.nftables.len()
    }

    pub fn extend(&mut self, other: Transaction) {
        self.nftables.extend(other.nftables);
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these types cannot fail: only strings, integers and sequences.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Add(Object),
    Delete(Object),
    Flush(Object),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    Table(TableRef),
    Set(SetSpec),
    Chain(ChainSpec),
    Rule(RuleSpec),
    Element(ElementSpec),
}

#[derive(Debug, Serialize)]
pub struct TableRef {
    pub family: &'static str,
    pub name: String,
}

/// `set NAME { type ipv4_addr; flags interval,timeout; }`
#[derive(Debug, Serialize)]
pub struct SetSpec {
    pub family: &'static str,
    pub table: String,
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
}

/// A base chain (`type filter hook input priority P; policy accept;`) or, without hook, a
/// reference to a chain for `flush` / `delete`.
#[derive(Debug, Serialize)]
pub struct ChainSpec {
    pub family: &'static str,
    pub table: String,
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prio: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct RuleSpec {
    pub family: &'static str,
    pub table: String,
    pub chain: String,
    pub expr: Vec<Statement>,
    pub comment: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Statement {
    Match(Match),
    /// `{"counter": null}`: an anonymous counter, so `nft list` shows what was dropped.
    Counter(()),
    Drop(()),
}

#[derive(Debug, Serialize)]
pub struct Match {
    pub op: &'static str,
    pub left: Payload,
    pub right: String,
}

#[derive(Debug, Serialize)]
pub struct Payload {
    pub payload: PayloadField,
}

#[derive(Debug, Serialize)]
pub struct PayloadField {
    pub protocol: &'static str,
    pub field: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ElementSpec {
    pub family: &'static str,
    pub table: String,
    pub name: String,
    pub elem: Vec<Element>,
}

/// A set element: a bare value, or a value with a timeout and a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Element {
    Bare(Value),
    Full { elem: ElementBody },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElementBody {
    pub val: Value,
    /// Seconds; absent for a permanent ban.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// An address (`"192.0.2.1"`) or a prefix (`{"prefix": {"addr": ..., "len": ...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Addr(String),
    Prefix { prefix: Prefix },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prefix {
    pub addr: String,
    pub len: u8,
}

impl Value {
    /// A host as a bare address (what a non-interval set takes), a network as a prefix.
    pub fn of(target: &Target) -> Value {
        if target.is_host() {
            Value::Addr(target.addr().to_string())
        } else {
            Value::Prefix {
                prefix: Prefix {
                    addr: target.addr().to_string(),
                    len: target.prefix_len(),
                },
            }
        }
    }
}

pub fn table(name: &str) -> Object {
    Object::Table(TableRef {
        family: FAMILY,
        name: name.to_string(),
    })
}

/// A set for addresses of one family; `interval` for prefixes. Always `flags timeout`.
pub fn set(table: &str, name: &str, v6: bool, interval: bool) -> Object {
    let mut flags = Vec::new();
    if interval {
        flags.push("interval");
    }
    flags.push("timeout");
    Object::Set(SetSpec {
        family: FAMILY,
        table: table.to_string(),
        name: name.to_string(),
        kind: Some(if v6 { "ipv6_addr" } else { "ipv4_addr" }),
        flags,
    })
}

/// A set by name only (for `delete`).
pub fn set_ref(table: &str, name: &str) -> Object {
    Object::Set(SetSpec {
        family: FAMILY,
        table: table.to_string(),
        name: name.to_string(),
        kind: None,
        flags: Vec::new(),
    })
}

/// netban's base chain for `hook`, named after it.
pub fn base_chain(table: &str, hook: Hook, priority: i32) -> Object {
    Object::Chain(ChainSpec {
        family: FAMILY,
        table: table.to_string(),
        name: hook.as_str().to_string(),
        kind: Some("filter"),
        hook: Some(hook.as_str()),
        prio: Some(priority),
        policy: Some("accept"),
    })
}

/// A chain by name only (for `flush` / `delete`).
pub fn chain_ref(table: &str, name: &str) -> Object {
    Object::Chain(ChainSpec {
        family: FAMILY,
        table: table.to_string(),
        name: name.to_string(),
        kind: None,
        hook: None,
        prio: None,
        policy: None,
    })
}

/// `ip saddr @SET counter drop` (or `ip6`), with a comment saying who made it.
pub fn drop_rule(table: &str, chain: &str, set: &str, v6: bool) -> Object {
    Object::Rule(RuleSpec {
        family: FAMILY,
        table: table.to_string(),
        chain: chain.to_string(),
        expr: vec![
            Statement::Match(Match {
                op: "==",
                left: Payload {
                    payload: PayloadField {
                        protocol: if v6 { "ip6" } else { "ip" },
                        field: "saddr",
                    },
                },
                right: format!("@{set}"),
            }),
            Statement::Counter(()),
            Statement::Drop(()),
        ],
        comment: "netban".into(),
    })
}

pub fn elements(table: &str, set: &str, elem: Vec<Element>) -> Object {
    Object::Element(ElementSpec {
        family: FAMILY,
        table: table.to_string(),
        name: set.to_string(),
        elem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn transactions_have_the_shape_nft_reads() {
        let mut tx = Transaction::default();
        tx.push(Command::Add(table("netban")));
        tx.push(Command::Add(set("netban", "nets4_28", false, true)));
        tx.push(Command::Add(base_chain("netban", Hook::Input, -10)));
        tx.push(Command::Add(drop_rule("netban", "input", "hosts6", true)));
        tx.push(Command::Add(elements(
            "netban",
            "hosts4",
            vec![
                Element::Bare(Value::of(&t("192.0.2.1"))),
                Element::Full {
                    elem: ElementBody {
                        val: Value::of(&t("203.0.113.0/28")),
                        timeout: Some(3600),
                        comment: Some("netban:h:1 sshd".into()),
                    },
                },
            ],
        )));
        let json: serde_json::Value = serde_json::from_slice(&tx.to_json()).unwrap();
        let want = serde_json::json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "netban"}}},
            {"add": {"set": {"family": "inet", "table": "netban", "name": "nets4_28",
                "type": "ipv4_addr", "flags": ["interval", "timeout"]}}},
            {"add": {"chain": {"family": "inet", "table": "netban", "name": "input",
                "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}}},
            {"add": {"rule": {"family": "inet", "table": "netban", "chain": "input", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
                    "right": "@hosts6"}},
                {"counter": null}, {"drop": null}], "comment": "netban"}}},
            {"add": {"element": {"family": "inet", "table": "netban", "name": "hosts4", "elem": [
                "192.0.2.1",
                {"elem": {"val": {"prefix": {"addr": "203.0.113.0", "len": 28}},
                    "timeout": 3600, "comment": "netban:h:1 sshd"}}]}}}
        ]});
        assert_eq!(json, want);
    }

    #[test]
    fn ipv6_values_are_canonical() {
        assert_eq!(
            Value::of(&t("2001:DB8::5")),
            Value::Addr("2001:db8::5".into())
        );
        assert_eq!(
            Value::of(&t("2001:db8:1::/48")),
            Value::Prefix {
                prefix: Prefix {
                    addr: "2001:db8:1::".into(),
                    len: 48
                }
            }
        );
    }
}
