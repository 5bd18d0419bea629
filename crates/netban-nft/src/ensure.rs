//! Making sure the table, sets, chains and drop rules are there, without duplicating rules.
//!
//! With `create = true` netban owns its table. When a listing of it (sets without elements,
//! chains, rules: see `read`) shows it [`complete`], nothing is done. Otherwise
//! [`structure`] turns the listing into commands: add the table and every set
//! (an `add` of something that exists is a no-op), flush netban's hook chains and add one
//! drop rule per set back (so rules are never doubled, and in one transaction there is no
//! moment without them), and replace a chain whose hook or priority no longer matches the
//! config (the kernel refuses to change a chain's priority in place: "Operation not
//! supported"). Elements are untouched. The sink puts these commands at the head of a
//! batch's transaction; it checks before its first batch, after a batch failed because
//! something was missing (a table deleted by hand), when a network of a new prefix length
//! needs its set, and when `held` finds a chain or rule gone. Counters of the drop rules
//! restart at zero when the rules are made again.
//!
//! With `create = false` nothing is created: [`operator_sets`] checks that each configured
//! set exists in the operator's table with the right type and `flags timeout` (and
//! `interval` where it takes networks), or says which key names the missing set.

use std::collections::BTreeMap;

use crate::config::Hook;
use crate::json::{self, Command, Transaction};
use crate::layout::{Layout, Place, kind_of};
use crate::listing::{ListedSet, Listing};

/// A set netban has verified, and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub v6: bool,
    /// An interval set (takes prefixes; overlapping elements are refused).
    pub interval: bool,
}

/// The sets netban knows are there, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub sets: BTreeMap<String, Shape>,
}

impl Known {
    pub fn has(&self, place: &Place) -> bool {
        self.sets.contains_key(&place.set)
    }
}

/// True when a listed set of netban's own table has the shape `place` needs.
fn fits(set: &ListedSet, place: &Place) -> bool {
    set.kind == kind_of(place)
        && set.has_flag("timeout")
        && set.has_flag("interval") == place.network
}

/// The transaction that gives netban's table everything it needs (see the module
/// documentation), for a table listed as `listing` (`None`: it does not exist), plus the
/// sets in `extra`; and the sets that are there once it is applied.
pub fn structure(
    layout: &Layout,
    listing: Option<&Listing>,
    extra: &[Place],
) -> (Transaction, Known) {
    let table = layout.table.as_str();
    let empty = Listing::default();
    let listing = listing.unwrap_or(&empty);
    let mut tx = Transaction::default();
    tx.push(Command::Add(json::table(table)));

    // Flush netban's chains first: nothing may reference a set that is replaced below.
    let mut replace_chains = Vec::new();
    for chain in &listing.chains {
        let Some(hook) = [Hook::Input, Hook::Forward]
            .into_iter()
            .find(|h| h.as_str() == chain.name)
        else {
            continue;
        };
        tx.push(Command::Flush(json::chain_ref(table, &chain.name)));
        let matches = layout.hooks.contains(&hook)
            && chain.hook.as_deref() == Some(hook.as_str())
            && chain.prio == Some(i64::from(layout.priority))
            && chain.kind.as_deref() == Some("filter");
        if !matches {
            replace_chains.push(chain.name.clone());
        }
    }
    for name in &replace_chains {
        tx.push(Command::Delete(json::chain_ref(table, name)));
    }

    let mut wanted: BTreeMap<String, Place> = BTreeMap::new();
    for place in layout.base_sets() {
        wanted.insert(place.set.clone(), place);
    }
    for set in &listing.sets {
        if let Some(place) = layout.own_set(&set.name) {
            if !fits(set, &place) {
                // Made by hand, or by an older netban, with another shape: make it again
                // (its elements go; repair adds the banned ones back).
                tx.push(Command::Delete(json::set_ref(table, &set.name)));
            }
            wanted.insert(place.set.clone(), place);
        }
    }
    for place in extra {
        wanted.insert(place.set.clone(), place.clone());
    }

    let mut known = Known::default();
    for place in wanted.values() {
        tx.push(Command::Add(json::set(
            table,
            &place.set,
            place.v6,
            place.network,
        )));
        known.sets.insert(
            place.set.clone(),
            Shape {
                v6: place.v6,
                interval: place.network,
            },
        );
    }
    for hook in &layout.hooks {
        tx.push(Command::Add(json::base_chain(
            table,
            *hook,
            layout.priority,
        )));
        for place in wanted.values() {
            tx.push(Command::Add(json::drop_rule(
                table,
                hook.as_str(),
                &place.set,
                place.v6,
            )));
        }
    }
    (tx, known)
}

/// What a full listing of netban's table lacks (a hook chain, a drop rule for one of its
/// sets, a host set), one phrase each; empty when it is complete.
pub fn gaps(layout: &Layout, listing: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    let sets: Vec<&str> = listing
        .sets
        .iter()
        .filter(|s| layout.own_set(&s.name).is_some())
        .map(|s| s.name.as_str())
        .collect();
    for base in layout.base_sets() {
        if !sets.contains(&base.set.as_str()) {
            out.push(format!("set {} is missing", base.set));
        }
    }
    for set in &listing.sets {
        if let Some(place) = layout.own_set(&set.name)
            && !fits(set, &place)
        {
            out.push(format!("set {} has another type or other flags", set.name));
        }
    }
    for chain in &listing.chains {
        let ours = [Hook::Input, Hook::Forward]
            .into_iter()
            .find(|h| h.as_str() == chain.name);
        if ours.is_some_and(|h| !layout.hooks.contains(&h)) {
            out.push(format!("chain {} is not in hooks", chain.name));
        }
    }
    for hook in &layout.hooks {
        let chain = listing.chains.iter().find(|c| c.name == hook.as_str());
        match chain {
            None => out.push(format!("chain {} is missing", hook.as_str())),
            Some(c)
                if c.hook.as_deref() != Some(hook.as_str())
                    || c.prio != Some(i64::from(layout.priority)) =>
            {
                out.push(format!(
                    "chain {} is not hooked to {} at priority {}",
                    c.name,
                    hook.as_str(),
                    layout.priority
                ));
            }
            Some(c) => {
                for set in &sets {
                    let ruled = listing
                        .rules
                        .iter()
                        .any(|r| r.chain == c.name && r.drops && r.sets.iter().any(|s| s == set));
                    if !ruled {
                        out.push(format!("chain {} has no drop rule for set {set}", c.name));
                    }
                }
            }
        }
    }
    out
}

/// The sets of a listed table that needs nothing done (no [`gaps`], every set of `extra`
/// there with the right shape): then a batch needs no structure commands.
pub fn complete(layout: &Layout, listing: &Listing, extra: &[Place]) -> Option<Known> {
    if !gaps(layout, listing).is_empty() {
        return None;
    }
    let mut known = Known::default();
    for set in &listing.sets {
        if let Some(place) = layout.own_set(&set.name) {
            known.sets.insert(
                place.set.clone(),
                Shape {
                    v6: place.v6,
                    interval: place.network,
                },
            );
        }
    }
    extra.iter().all(|p| known.has(p)).then_some(known)
}

/// With `create = false`: checks the operator's sets as listed (`None`: not there) and
/// returns their shapes, or the first problem, naming the set and its key.
pub fn operator_sets(
    layout: &Layout,
    listed: &[(&'static str, Place, Option<ListedSet>)],
) -> Result<Known, String> {
    let mut known = Known::default();
    for (key, place, set) in listed {
        let name = format!("set {} in table inet {}", place.set, layout.table);
        let Some(set) = set else {
            return Err(format!(
                "{name} ({key}) does not exist: define it in your ruleset (type {}; flags {}timeout) or use create = true",
                kind_of(place),
                if place.network { "interval, " } else { "" }
            ));
        };
        if set.kind != kind_of(place) {
            return Err(format!(
                "{name} ({key}) has type {}, netban needs {}",
                set.kind,
                kind_of(place)
            ));
        }
        if !set.has_flag("timeout") {
            return Err(format!(
                "{name} ({key}) has no 'flags timeout': netban's elements could not expire on their own; add timeout to the set's flags"
            ));
        }
        if place.network && !set.has_flag("interval") {
            return Err(format!(
                "{name} ({key}) holds networks but has no 'flags interval'; add interval to the set's flags"
            ));
        }
        known.sets.insert(
            place.set.clone(),
            Shape {
                v6: place.v6,
                interval: set.has_flag("interval"),
            },
        );
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NftConfig;
    use crate::listing::{ListedChain, ListedRule};

    fn layout(text: &str) -> Layout {
        let c: NftConfig = toml::from_str(text).unwrap();
        Layout::new(&c)
    }

    /// Each command as `verb object name`, e.g. `add set hosts4`.
    fn commands(tx: &Transaction) -> Vec<String> {
        let json: serde_json::Value = serde_json::from_slice(&tx.to_json()).unwrap();
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let (verb, body) = c.as_object().unwrap().iter().next().unwrap();
                let (kind, spec) = body.as_object().unwrap().iter().next().unwrap();
                let name = spec
                    .get("set")
                    .or(spec.get("name"))
                    .and_then(|n| n.as_str());
                let name = match (kind.as_str(), spec["expr"][0]["match"]["right"].as_str()) {
                    ("rule", Some(set)) => format!("{} {set}", spec["chain"].as_str().unwrap()),
                    _ => name.unwrap_or("").to_string(),
                };
                format!("{verb} {kind} {name}")
            })
            .collect()
    }

    fn set(name: &str, kind: &str, flags: &[&str]) -> ListedSet {
        ListedSet {
            table: "netban".into(),
            name: name.into(),
            kind: kind.into(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            elements: Vec::new(),
        }
    }

    #[test]
    fn a_missing_table_is_made_whole() {
        let (tx, known) = structure(&layout(""), None, &[]);
        assert_eq!(
            commands(&tx),
            [
                "add table netban",
                "add set hosts4",
                "add set hosts6",
                "add chain input",
                "add rule input @hosts4",
                "add rule input @hosts6",
            ]
        );
        assert_eq!(known.sets.len(), 2);
    }

    #[test]
    fn an_existing_table_is_completed_without_doubling_rules() {
        let listing = Listing {
            tables: Vec::new(),
            sets: vec![
                set("hosts4", "ipv4_addr", &["timeout"]),
                set("nets4_24", "ipv4_addr", &["interval", "timeout"]),
                // Same name, wrong shape (made by hand): made again.
                set("nets6_64", "ipv6_addr", &["timeout"]),
                // Not netban's naming: left alone, no rule.
                set("mine", "ipv4_addr", &[]),
            ],
            chains: vec![ListedChain {
                table: "netban".into(),
                name: "input".into(),
                kind: Some("filter".into()),
                hook: Some("input".into()),
                prio: Some(0),
            }],
            rules: Vec::new(),
        };
        let (tx, known) = structure(&layout(""), Some(&listing), &[]);
        assert_eq!(
            commands(&tx),
            [
                "add table netban",
                "flush chain input",
                "delete chain input",
                "delete set nets6_64",
                "add set hosts4",
                "add set hosts6",
                "add set nets4_24",
                "add set nets6_64",
                "add chain input",
                "add rule input @hosts4",
                "add rule input @hosts6",
                "add rule input @nets4_24",
                "add rule input @nets6_64",
            ]
        );
        assert!(!known.sets.contains_key("mine"));
    }

    #[test]
    fn gaps_name_what_is_missing() {
        let l = layout("");
        let mut listing = Listing {
            tables: Vec::new(),
            sets: vec![set("hosts4", "ipv4_addr", &["timeout"])],
            chains: vec![ListedChain {
                table: "netban".into(),
                name: "input".into(),
                kind: Some("filter".into()),
                hook: Some("input".into()),
                prio: Some(-10),
            }],
            rules: vec![ListedRule {
                table: "netban".into(),
                chain: "input".into(),
                sets: vec!["hosts4".into()],
                drops: true,
            }],
        };
        assert_eq!(gaps(&l, &listing), ["set hosts6 is missing"]);
        listing.sets.push(set("hosts6", "ipv6_addr", &["timeout"]));
        assert_eq!(
            gaps(&l, &listing),
            ["chain input has no drop rule for set hosts6"]
        );
        listing.rules.push(ListedRule {
            table: "netban".into(),
            chain: "input".into(),
            sets: vec!["hosts6".into()],
            drops: true,
        });
        assert!(gaps(&l, &listing).is_empty());
        let extra = l
            .place(&netban_core::Target::parse("203.0.113.0/24").unwrap())
            .unwrap();
        let known = complete(&l, &listing, &[]).expect("complete");
        assert_eq!(known.sets.len(), 2);
        assert_eq!(
            complete(&l, &listing, &[extra]),
            None,
            "a new set is needed"
        );
        listing.chains.push(ListedChain {
            table: "netban".into(),
            name: "forward".into(),
            kind: Some("filter".into()),
            hook: Some("forward".into()),
            prio: Some(-10),
        });
        assert_eq!(gaps(&l, &listing), ["chain forward is not in hooks"]);
        listing.chains.retain(|c| c.name != "forward");
        listing
            .sets
            .push(set("nets6_64", "ipv6_addr", &["timeout"]));
        assert!(
            gaps(&l, &listing)
                .contains(&"set nets6_64 has another type or other flags".to_string())
        );
        listing.chains.clear();
        assert!(gaps(&l, &listing).contains(&"chain input is missing".to_string()));
    }
}
