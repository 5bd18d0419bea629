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
