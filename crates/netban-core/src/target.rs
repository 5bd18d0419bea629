//! Targets: the canonical IP networks netban bans.
//!
//! Every address that enters netban (from fail2ban, a peer, a file) is parsed here with the
//! standard library into a [`Target`] before anything else sees it. A `Target` is canonical by
//! construction, so two spellings of one network are always equal:
//!
//! - an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) becomes IPv4 (`192.0.2.1/32`);
//! - host bits are zero (`192.0.2.77/24` becomes `192.0.2.0/24`);
//! - a bare address is a `/32` or `/128`;
//! - IPv6 is printed compressed and lower-case (`2001:DB8:0::5` is `2001:db8::5/128`).
//!
//! ExaFS matches rules by string, so this canonical form is what keeps one address from
//! becoming two rules (see `reference/exafs.md`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The IP family of a target, named as fail2ban names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Inet4,
    Inet6,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet4 => "inet4",
            Family::Inet6 => "inet6",
        }
    }
}

/// A canonical IP network. See the module documentation for what canonical means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(IpNet);

/// Why a string is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "{input:?} is not an IP address or CIDR network (expected e.g. 192.0.2.1, 2001:db8::1 or 203.0.113.0/24)"
    )]
    Syntax { input: String },
    #[error("{input:?} has prefix length {len}, larger than the family allows ({max})")]
    PrefixLength { input: String, len: u8, max: u8 },
    #[error(
        "{input:?} is an IPv4-mapped address with a prefix shorter than /96, which is not an IPv4 network; write the IPv4 network instead (e.g. 192.0.2.0/24)"
    )]
    MappedWide { input: String },
}

impl Target {
    /// Parses an address (`192.0.2.1`) or a network (`203.0.113.0/24`) into a canonical target.
    ///
    /// Only the exact forms the standard library accepts are allowed: no surrounding white
    /// space, no zone ids, no shell syntax. Host bits are cleared.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let syntax = || TargetError::Syntax {
            // Keep error messages (which end up in logs) short and printable.
            input: input.chars().take(64).collect(),
        };
        let (addr, len) = match input.split_once('/') {
            None => {
                let addr = IpAddr::from_str(input).map_err(|_| syntax())?;
                let len = if addr.is_ipv4() { 32 } else { 128 };
                (addr, len)
            }
            Some((addr, len)) => {
                let addr = IpAddr::from_str(addr).map_err(|_| syntax())?;
                // u8::from_str accepts a leading '+'; only plain digits are a prefix length.
                if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax());
                }
                let len: u8 = len.parse().map_err(|_| syntax())?;
                (addr, len)
            }
        };
        Target::from_parts(addr, len).map_err(|e| match e {
            TargetError::PrefixLength { len, max, .. } => TargetError::PrefixLength {
                input: input.chars().take(64).collect(),
                len,
                max,
            },
            TargetError::MappedWide { .. } => TargetError::MappedWide {
                input: input.chars().take(64).collect(),
            },
            other => other,
        })
    }

    /// Builds the canonical target for `addr/len`.
    pub fn from_parts(addr: IpAddr, len: u8) -> Result<Target, TargetError> {
        let net = match addr {
            IpAddr::V4(v4) => IpNet::V4(v4_net(v4, len, 32)?),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // ::ffff:a.b.c.d/len with len >= 96 is the IPv4 network a.b.c.d/(len - 96).
                Some(v4) if len >= 96 => IpNet::V4(v4_net(v4, len - 96, 128 - 96)?),
                // Shorter, it would be an IPv6 network spanning all of IPv4 and more, while
                // the address alone is IPv4: refuse it rather than treat the two apart
                // (issue 6: `::ffff:127.0.0.1/95` became `::fffe:0:0/95`).
                Some(_) if len <= 128 => {
                    return Err(TargetError::MappedWide {
                        input: String::new(),
                    });
                }
                _ => IpNet::V6(v6_net(v6, len)?),
            },
        };
        Ok(Target(net))
    }

    /// Wraps an `ipnet` network, canonicalising it.
    pub fn from_net(net: IpNet) -> Target {
        match Target::from_parts(net.addr(), net.prefix_len()) {
            Ok(t) => t,
            // ipnet guarantees a valid prefix length for its family, and a mapped address
            // only ever shrinks the length; this arm is unreachable but costs nothing.
            Err(_) => Target(net.trunc()),
        }
    }

    pub fn net(&self) -> IpNet {
        self.0
    }

    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn family(&self) -> Family {
        match self.0 {
            IpNet::V4(_) => Family::Inet4,
            IpNet::V6(_) => Family::Inet6,
        }
    }

    /// True when the target is a single address (`/32` or `/128`).
    pub fn is_host(&self) -> bool {
        self.0.prefix_len() == self.0.max_prefix_len()
    }

    /// The netmask, e.g. `255.255.255.0` or `ffff:ffff::`.
    pub fn mask(&self) -> IpAddr {
        self.0.netmask()
    }

    /// The address alone for a host, the CIDR otherwise: what fail2ban's `<ip>` looks like.
    pub fn ip_display(&self) -> String {
        if self.is_host() {
            self.0.addr().to_string()
        } else {
            self.0.to_string()
        }
    }

    /// True when the two networks share at least one address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.0.contains(other) || other.contains(&self.0)
    }
}

fn v4_net(addr: Ipv4Addr, len: u8, max: u8) -> Result<Ipv4Net, TargetError> {
    let net = Ipv4Net::new(addr, len).map_err(|_| TargetError::PrefixLength {
        input: String::new(),
        len,
        max,
    })?;
    Ok(net.trunc())
}

fn v6_net(addr: Ipv6Addr, len: u8) -> Result<Ipv6Net, TargetError> {
    let net = Ipv6Net::new(addr, len).map_err(|_| TargetError::PrefixLength {
        input: String::new(),
        len,
        max: 128,
    })?;
    Ok(net.trunc())
}

/// Always the full `address/length` form: `192.0.2.1/32`, `2001:db8::/32`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Serialised as its display form (`192.0.2.1/32`), e.g. as a JSON map key.
impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        Target::parse(s)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn spellings_of_one_address_are_one_target() {
        assert_eq!(t("2001:DB8:0::5"), "2001:db8::5/128");
        assert_eq!(t("2001:db8::5"), "2001:db8::5/128");
        assert_eq!(
            t("2001:0db8:0000:0000:0000:0000:0000:0005/128"),
            "2001:db8::5/128"
        );
        assert_eq!(Target::parse("2001:DB8:0::5"), Target::parse("2001:db8::5"));
    }

    #[test]
    fn ipv4_mapped_becomes_ipv4() {
        assert_eq!(t("::ffff:198.51.100.9"), "198.51.100.9/32");
        assert_eq!(t("::FFFF:c633:6409"), "198.51.100.9/32");
        assert_eq!(t("::ffff:198.51.100.0/120"), "198.51.100.0/24");
        // A mapped prefix shorter than /96 is refused, like its address would be turned into
        // IPv4 (issue 6).
        assert!(t("::ffff:0:0/95").starts_with("error: "));
        assert!(t("::ffff:127.0.0.1/95").contains("IPv4-mapped"));
        assert_eq!(t("::ffff:127.0.0.1/128"), "127.0.0.1/32");
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(t("192.0.2.77/24"), "192.0.2.0/24");
        assert_eq!(t("2001:db8::1/32"), "2001:db8::/32");
        assert_eq!(t("10.1.2.3/0"), "0.0.0.0/0");
    }

    #[test]
    fn hostile_and_malformed_input_is_rejected() {
        for bad in [
            "",
            " 192.0.2.1",
            "192.0.2.1 ",
            "192.0.2.1;rm -rf /",
            "$(reboot)",
            "`id`",
            "192.0.2.1/33",
            "2001:db8::/129",
            "192.0.2.1/+24",
            "192.0.2.1/",
            "192.0.2.1/024x",
            "fe80::1%eth0",
            "192.0.2",
            "0x7f.1",
            "192.0.2.1\n",
            "localhost",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn display_forms() {
        let host = Target::parse("192.0.2.1").unwrap();
        assert_eq!(host.ip_display(), "192.0.2.1");
        assert_eq!(host.to_string(), "192.0.2.1/32");
        assert_eq!(host.mask().to_string(), "255.255.255.255");
        assert_eq!(host.family().as_str(), "inet4");
        let net = Target::parse("2001:db8::/48").unwrap();
        assert_eq!(net.ip_display(), "2001:db8::/48");
        assert_eq!(net.family().as_str(), "inet6");
        assert_eq!(net.mask().to_string(), "ffff:ffff:ffff::");
    }
}
