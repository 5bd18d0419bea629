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
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;

use super::GeoInfo;

/// Entries per generation by default (two generations: at most twice this many).
pub const DEFAULT_CAPACITY: usize = 32_768;

/// A network as one integer key: the address bits (IPv4 in the low 32 bits), the prefix
/// length, and the family. Masking and hashing it is a few instructions, unlike building and
/// SipHashing an `IpNet` for every candidate length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    bits: u128,
    len: u8,
    v6: bool,
}

impl Key {
    fn of(addr: IpAddr, len: u8) -> Key {
        let (bits, width, v6) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32, false),
            IpAddr::V6(a) => (u128::from(a), 128u32, true),
        };
        let len = len.min(width as u8);
        let keep = u32::from(len);
        let mask = if keep == 0 {
            0
        } else {
            (u128::MAX >> (128 - keep)) << (width - keep)
        };
        Key {
            bits: bits & mask,
            len,
            v6,
        }
    }

    fn net(net: IpNet) -> Key {
        Key::of(net.addr(), net.prefix_len())
    }
}

/// Multiply-and-rotate hashing (as rustc's FxHash): keys are not attacker-chosen in a way
/// that matters here (they are networks of a database the operator installed).
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

type Map = HashMap<Key, GeoInfo, BuildHasherDefault<FastHasher>>;

#[derive(Debug)]
pub struct NetCache {
    capacity: usize,
    current: Map,
    old: Map,
    /// How many entries (in either generation) have each prefix length, per family.
    lengths_v4: [u32; 33],
    lengths_v6: [u32; 129],
}

impl std::fmt::Debug for FastHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FastHasher")
    }
}

impl NetCache {
    pub fn new(capacity: usize) -> NetCache {
        NetCache {
            capacity: capacity.max(1),
            current: Map::default(),
            old: Map::default(),
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
            let key = Key::of(addr, len);
            if let Some(hit) = self.current.get(&key) {
                return Some(hit.clone());
            }
            if let Some(hit) = self.old.remove(&key) {
                // Promote; the length count moves generations, it does not go away.
                self.adjust(key, -1);
                self.put(key, hit.clone());
                return Some(hit);
            }
        }
        None
    }

    pub fn insert(&mut self, net: IpNet, info: GeoInfo) {
        self.put(Key::net(net), info);
    }

    fn put(&mut self, key: Key, info: GeoInfo) {
        if self.current.len() >= self.capacity {
            let dropped = std::mem::take(&mut self.old);
            for k in dropped.keys() {
                self.adjust(*k, -1);
            }
            self.old = std::mem::take(&mut self.current);
        }
        if self.current.insert(key, info).is_none() {
            self.adjust(key, 1);
        }
    }

    fn count(&self, addr: IpAddr, len: u8) -> u32 {
        match addr {
            IpAddr::V4(_) => self.lengths_v4[usize::from(len)],
            IpAddr::V6(_) => self.lengths_v6[usize::from(len)],
        }
    }

    fn adjust(&mut self, key: Key, by: i32) {
        let slot = if key.v6 {
            &mut self.lengths_v6[usize::from(key.len)]
        } else {
            &mut self.lengths_v4[usize::from(key.len)]
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
