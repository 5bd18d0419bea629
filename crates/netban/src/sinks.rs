//! The one list of sink drivers: `type` to the driver's config struct. Adding a sink is a
//! crate and one line here.

use netban_core::config::{Config, ConfigError, SinkDef};

/// The driver types, for messages.
pub const TYPES: &[&str] = &["exafs", "exec", "nftables", "netconf"];

/// Every configured sink, read by its driver (a NETCONF `devices` list becomes one sink per
/// device); names are unique.
pub fn define(config: &Config) -> Result<Vec<SinkDef>, ConfigError> {
    let mut out: Vec<SinkDef> = Vec::new();
    for s in &config.sinks {
        let defs = match s.common.kind.as_str() {
            "exafs" => s.define::<netban_exafs::ExafsConfig>()?,
            "exec" => s.define::<netban_core::exec::ExecConfig>()?,
            "nftables" => s.define::<netban_nft::NftConfig>()?,
            "netconf" => s.define::<netban_netconf::NetconfConfig>()?,
            other => {
                return Err(s.invalid(format!(
                    "sink {:?}: unknown type {other:?}; known types: {}",
                    s.common.name,
                    TYPES.join(", ")
                )));
            }
        };
        for d in defs {
            if out.iter().any(|o| o.name() == d.name()) {
                return Err(s.invalid(format!(
                    "two sinks are named {:?}; sink names must be unique",
                    d.name()
                )));
            }
            out.push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example config ships with the package and the docs point at it: it parses, and
    /// every sink in it is read by its driver.
    #[test]
    fn the_example_config_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dist/netban.toml.example"
        );
        let text = std::fs::read_to_string(path).expect("the example config");
        let config = Config::parse(&text, std::path::Path::new(path)).expect("it parses");
        let sinks = define(&config).expect("its sinks are valid");
        let kinds: Vec<&str> = sinks.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["exafs", "exec"]);
        // And with every commented-out section turned on.
        let all: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| looks_like_toml(r))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = Config::parse(&all, std::path::Path::new(path))
            .unwrap_or_else(|e| panic!("the example with every section on: {e}"));
        let sinks = define(&config).expect("every sink is valid");
        let kinds: Vec<&str> = sinks.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["exafs", "exec", "nftables", "netconf"]);
        assert!(config.stats.is_some());
    }

    /// A commented-out line that is TOML (a key, a table header), not prose.
    fn looks_like_toml(l: &str) -> bool {
        l.starts_with('[') || l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' '))
    }

    #[test]
    fn the_embedded_default_parses() {
        let text = include_str!("../../../dist/netban.default.toml");
        let config = Config::parse(text, std::path::Path::new("default")).expect("it parses");
        assert!(define(&config).expect("no sinks").is_empty());
    }
}
