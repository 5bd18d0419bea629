//! Where each target goes: which set of which shape.
//!
//! The kernel refuses an interval that overlaps one already in the set (a /24 while a /28 in
//! it is there), and `auto-merge` would merge them and lose their separate timeouts
//! (`reference/nftables.md`). So with `create = true`:
//!
//! - hosts (`/32`, `/128`) go to a plain hash set per family (`hosts4`, `hosts6`), which
//!   cannot hold prefixes and so never conflicts with networks;
//! - networks go to one interval set per family *and prefix length* (`nets4_24`,
//!   `nets6_64`): two prefixes of one length are equal or disjoint, so no element ever
//!   overlaps another, a host inside a banned network and a network containing banned hosts
//!   are all kept, and each keeps its own timeout. Such a set is made when the first network
//!   of its length is banned, with its drop rule in every hook chain, in the same transaction.
//!
//! With `create = false` each key names one set of the operator's; see `sink` for how
//! overlaps in an operator's interval set are handled.

use netban_core::Target;

use crate::config::{Hook, NftConfig, SetNames};

/// A set and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    pub set: String,
    pub v6: bool,
    /// The set holds networks (an interval set).
    pub network: bool,
}

/// The table, sets and hooks of one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub table: String,
    pub create: bool,
    pub sets: SetNames,
    pub hooks: Vec<Hook>,
    pub priority: i32,
}

impl Layout {
    pub fn new(config: &NftConfig) -> Layout {
        Layout {
            table: config.table.clone(),
            create: config.create,
            sets: config.sets(),
            hooks: config.hooks.clone(),
            priority: config.priority,
        }
    }

    /// The set `target` goes to, or why there is none (naming the key to set).
    pub fn place(&self, target: &Target) -> Result<Place, String> {
        let v6 = target.family() == netban_core::Family::Inet6;
        let (name, key) = match (target.is_host(), v6) {
            (true, false) => (&self.sets.v4, "set_v4"),
            (true, true) => (&self.sets.v6, "set_v6"),
            (false, false) => (&self.sets.net_v4, "net_set_v4"),
            (false, true) => (&self.sets.net_v6, "net_set_v6"),
        };
        let Some(name) = name else {
            let what = match (target.is_host(), v6) {
                (true, false) => "IPv4 addresses",
                (true, true) => "IPv6 addresses",
                (false, false) => "IPv4 networks",
                (false, true) => "IPv6 networks",
            };
            return Err(format!(
                "no set for {what} in table inet {}: set {key} to a set of your ruleset (or use create = true)",
                self.table
            ));
        };
        let set = if self.create && !target.is_host() {
            format!("{name}_{}", target.prefix_len())
        } else {
            name.clone()
        };
        Ok(Place {
            set,
            v6,
            network: !target.is_host(),
        })
    }

    /// The host sets `create = true` always makes.
    pub fn base_sets(&self) -> Vec<Place> {
        let mut out = Vec::new();
        for (name, v6) in [(&self.sets.v4, false), (&self.sets.v6, true)] {
            if let Some(set) = name {
                out.push(Place {
                    set: set.clone(),
                    v6,
                    network: false,
                });
            }
        }
        out
    }

    /// The sets `create = false` fills, deduplicated (one operator set may take hosts and
    /// networks), each with the key that named it.
    pub fn operator_sets(&self) -> Vec<(&'static str, Place)> {
        let mut out: Vec<(&'static str, Place)> = Vec::new();
        for (key, name, v6, network) in [
            ("set_v4", &self.sets.v4, false, false),
            ("set_v6", &self.sets.v6, true, false),
            ("net_set_v4", &self.sets.net_v4, false, true),
            ("net_set_v6", &self.sets.net_v6, true, true),
        ] {
            let Some(set) = name else { continue };
            match out.iter_mut().find(|(_, p)| &p.set == set) {
                Some((_, p)) => p.network |= network,
                None => out.push((
                    key,
                    Place {
                        set: set.clone(),
                        v6,
                        network,
                    },
                )),
            }
        }
        out
    }

    /// For a set listed in netban's own table: the place it is, when netban made it (a host
    /// set, or `<net stem>_<len>` with a length the family allows).
    pub fn own_set(&self, name: &str) -> Option<Place> {
        if let Some(p) = self.base_sets().into_iter().find(|p| p.set == name) {
            return Some(p);
        }
        for (stem, v6, max) in [
            (&self.sets.net_v4, false, 32),
            (&self.sets.net_v6, true, 128),
        ] {
            let Some(stem) = stem else { continue };
            let Some(len) = name
                .strip_prefix(stem.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
            else {
                continue;
            };
            if !len.is_empty()
                && len.len() <= 3
                && len.bytes().all(|b| b.is_ascii_digit())
                && len.parse::<u8>().is_ok_and(|l| l < max)
            {
                return Some(Place {
                    set: name.to_string(),
                    v6,
                    network: true,
                });
            }
        }
        None
    }

    /// `table inet NAME` for messages.
    pub fn table_name(&self) -> String {
        format!("table inet {}", self.table)
    }
}

/// The nft type of a set holding `place`'s family.
pub fn kind_of(place: &Place) -> &'static str {
    if place.v6 { "ipv6_addr" } else { "ipv4_addr" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str) -> Layout {
        let c: NftConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        Layout::new(&c)
    }

    fn place(l: &Layout, t: &str) -> Result<Place, String> {
        l.place(&Target::parse(t).unwrap())
    }

    #[test]
    fn own_table_keeps_hosts_apart_and_one_set_per_prefix_length() {
        let l = layout("");
        assert_eq!(place(&l, "192.0.2.1").unwrap().set, "hosts4");
        assert_eq!(place(&l, "2001:db8::1").unwrap().set, "hosts6");
        let net = place(&l, "203.0.113.0/24").unwrap();
        assert_eq!(
            net,
            Place {
                set: "nets4_24".into(),
                v6: false,
                network: true
            }
        );
        assert_eq!(place(&l, "2001:db8::/48").unwrap().set, "nets6_48");
        assert_eq!(l.own_set("nets4_24"), Some(net));
        assert_eq!(l.own_set("nets6_48").map(|p| p.v6), Some(true));
        assert_eq!(l.own_set("hosts6").map(|p| p.network), Some(false));
        for foreign in [
            "nets4_",
            "nets4_32",
            "nets4_x",
            "nets4_0024",
            "other",
            "nets6_128",
        ] {
            assert_eq!(l.own_set(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn operator_sets_are_used_as_named_and_a_missing_one_names_its_key() {
        let l =
            layout("create = false\ntable = \"filter\"\nset_v4 = \"bl4\"\nnet_set_v4 = \"bl4\"\n");
        assert_eq!(place(&l, "192.0.2.1").unwrap().set, "bl4");
        assert_eq!(place(&l, "203.0.113.0/24").unwrap().set, "bl4");
        assert_eq!(
            l.operator_sets(),
            vec![(
                "set_v4",
                Place {
                    set: "bl4".into(),
                    v6: false,
                    network: true
                }
            )]
        );
        assert_eq!(
            place(&l, "2001:db8::1").unwrap_err(),
            "no set for IPv6 addresses in table inet filter: set set_v6 to a set of your ruleset (or use create = true)"
        );
    }
}
