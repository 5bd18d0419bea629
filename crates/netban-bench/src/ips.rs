//! The benchmark's addresses: 198.18.0.0/15 (RFC 2544, set aside for benchmarks), .0 and
//! .255 skipped, then 2001:db8:be::/48; every ban is a distinct address.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Default)]
pub struct Ips {
    pub next: u64,
}

impl Ips {
    pub fn take(&mut self, n: usize) -> Vec<String> {
        let v = (self.next..self.next + n as u64).map(ip_at).collect();
        self.next += n as u64;
        v
    }
}

pub fn ip_at(i: u64) -> String {
    const V4: u64 = 512 * 254;
    if i < V4 {
        let (block, host) = (i / 254, i % 254 + 1);
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        Ipv4Addr::from(base + (block * 256 + host) as u32).to_string()
    } else {
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xbe, 0, 0, 0, 0, 0));
        Ipv6Addr::from(base + u128::from(i - V4 + 1)).to_string()
    }
}

/// `198.18.0.1` -> `198.18.0.1/32` (how ExaFS rules print with [`RtbhRule::prefix`]).
pub fn host_prefix(ip: &str) -> String {
    if ip.contains(':') {
        format!("{ip}/128")
    } else {
        format!("{ip}/32")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn addresses_are_distinct_and_reserved_for_benchmarks() {
        assert_eq!(ip_at(0), "198.18.0.1");
        assert_eq!(ip_at(253), "198.18.0.254");
        assert_eq!(ip_at(254), "198.18.1.1");
        assert_eq!(ip_at(512 * 254 - 1), "198.19.255.254");
        assert_eq!(ip_at(512 * 254), "2001:db8:be::1");
        let mut ips = Ips::default();
        let a = ips.take(300);
        let b = ips.take(300);
        let all: BTreeSet<&String> = a.iter().chain(&b).collect();
        assert_eq!(all.len(), 600);
    }
}
