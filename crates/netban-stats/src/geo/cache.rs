//! A bounded cache of geo answers keyed by the network the databases answered for.
//!
//! An mmdb answer holds for a whole network (`89.160.20.128/25`), not just the address asked
//! about, and attackers come in clusters: the next ban is often in a network already seen.
//! Entries are keyed by that network, so a later lookup anywhere inside it is a hash probe per
//! distinct prefix length in the cache (a handful in practice), not a tree walk and a decode.
//! Networks answered by one database version never overlap, so any hit is the right answer.
//!
//! Bounded with two generations: when the current one is full it becomes the old one (the
//! previous old one is dropped) and hits in the old one are promoted. That keeps what is used
//! without the bookkeeping of an LRU list. Cleared when a database file is reloaded.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::GeoInfo;

/// Entries per generation by default (two generations: at most twice this many).
pub const DEFAULT_CAPACITY: usize = 32_768;

#[derive(Debug)]
pub struct NetCache {
    capacity: usize,
    current: HashMap<IpNet, GeoInfo>,
    old: HashMap<IpNet, GeoInfo>,
    /// How many entries (in either generation) have each prefix length, per family.
    lengths_v4: [u32; 33],
    lengths_v6: [u32; 129],
}

impl NetCache {
    pub fn new(capacity: usize) -> NetCache {
        NetCache {
            capacity: capacity.max(1),
            current: HashMap::new(),
            old: HashMap::new(),
            lengths_v4: [0; 33],
            lengths_v6: [0; 129],
        }
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.old.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.current.clear();
        self.old.clear();
        self.lengths_v4 = [0; 33];
        self.lengths_v6 = [0; 129];
    }

    /// The cached answer for a network containing `addr`.
    pub fn get(&mut self, addr: IpAddr) -> Option<GeoInfo> {
        let max = match addr {
            IpAddr::V4(_) => 32u8,
            IpAddr::V6(_) => 128u8,
        };
        for len in (0..=max).rev() {
            if self.count(addr, len) == 0 {
                continue;
            }
            let Ok(net) = IpNet::new(addr, len).map(|n| n.trunc()) else {
                continue;
            };
            if let Some(hit) = self.current.get(&net) {
                return Some(hit.clone());
            }
            if let Some(hit) = self.old.remove(&net) {
                // Promote; the length count stays (it moved generations, not away).
                self.adjust(net, -1);
                self.insert(net, hit.clone());
                return Some(hit);
            }
        }
        None
    }

    pub fn insert(&mut self, net: IpNet, info: GeoInfo) {
        if self.current.len() >= self.capacity {
            let dropped = std::mem::take(&mut self.old);
            for net in dropped.keys() {
                self.adjust(*net, -1);
            }
            self.old = std::mem::take(&mut self.current);
        }
        if self.current.insert(net, info).is_none() {
            self.adjust(net, 1);
        }
    }

    fn count(&self, addr: IpAddr, len: u8) -> u32 {
        match addr {
            IpAddr::V4(_) => self.lengths_v4[usize::from(len)],
            IpAddr::V6(_) => self.lengths_v6[usize::from(len)],
        }
    }

    fn adjust(&mut self, net: IpNet, by: i32) {
        let slot = match net {
            IpNet::V4(_) => &mut self.lengths_v4[usize::from(net.prefix_len())],
            IpNet::V6(_) => &mut self.lengths_v6[usize::from(net.prefix_len())],
        };
        *slot = slot.saturating_add_signed(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(c: &str) -> GeoInfo {
        GeoInfo {
            country: Some(c.into()),
            ..GeoInfo::default()
        }
    }

    #[test]
    fn a_network_answers_for_every_address_inside() {
        let mut c = NetCache::new(10);
        c.insert("89.160.20.128/25".parse().unwrap(), info("SE"));
        assert_eq!(c.get("89.160.20.200".parse().unwrap()), Some(info("SE")));
        assert_eq!(c.get("89.160.20.127".parse().unwrap()), None);
        assert_eq!(c.get("2001:db8::1".parse().unwrap()), None);
    }

    #[test]
    fn bounded_and_keeps_what_is_used() {
        let mut c = NetCache::new(2);
        c.insert("10.0.0.0/24".parse().unwrap(), info("A"));
        c.insert("10.0.1.0/24".parse().unwrap(), info("B"));
        c.insert("10.0.2.0/24".parse().unwrap(), info("C")); // A, B become old
        assert_eq!(c.get("10.0.0.1".parse().unwrap()), Some(info("A"))); // promoted
        c.insert("10.0.3.0/24".parse().unwrap(), info("D")); // current full: old (B) dropped
        assert!(c.len() <= 4);
        assert_eq!(c.get("10.0.1.1".parse().unwrap()), None);
        assert_eq!(c.get("10.0.0.1".parse().unwrap()), Some(info("A")));
        for i in 0..100u8 {
            c.insert(format!("10.1.{i}.0/24").parse().unwrap(), info("X"));
        }
        assert!(c.len() <= 4, "{}", c.len());
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.get("10.1.99.1".parse().unwrap()), None);
    }
}
