//! `netban cluster keygen|status`: this host's signing key; the bus, the peers, the locks.

use netban_core::config::DEFAULT_CONFIG_PATH;

use crate::cli::{ClusterArgs, ClusterWhat};
use crate::context::Context;
use crate::exit::{CliError, CliResult};
use crate::protocol::{self, Request};

pub fn run(ctx: &mut Context, a: ClusterArgs) -> CliResult {
    let cfg = crate::cluster::config(&ctx.config)?;
    match a.what {
        ClusterWhat::Keygen { out } => {
            let path = out
                .or_else(|| cfg.as_ref().map(|c| c.key_file.clone()))
                .unwrap_or_else(|| netban_cluster::ClusterConfig::default().key_file);
            if ctx.dry_run {
                say!("would write a new secret key to {} (0600)", path.display());
                return Ok(());
            }
            let host = ctx.config.host_id();
            let line = netban_cluster::keygen(&path, &host).map_err(|e| match e {
                netban_cluster::sign::KeyError::Exists { .. } => CliError::Runtime(format!(
                    "{e}; netban never writes over a key (peers trust its public half): use --out for another file"
                )),
                e => CliError::Runtime(e.to_string()),
            })?;
            eprintln!(
                "wrote {} (0600). Paste this line under [cluster.peers] in every peer's {}:",
                path.display(),
                ctx.config_path()
                    .map_or_else(|| DEFAULT_CONFIG_PATH.into(), |p| p.display().to_string())
            );
            say!("{line}");
            Ok(())
        }
        ClusterWhat::Status => {
            let cfg = cfg.ok_or_else(|| {
                CliError::Config("no [cluster] section in the config (docs/cluster.md)".into())
            })?;
            let socket = ctx.config.socket_path();
            let live = protocol::call(
                &socket,
                &Request::ClusterStatus,
                std::time::Duration::from_secs(5),
            )
            .filter(|r| r.ok)
            .and_then(|r| r.cluster)
            .and_then(|v| serde_json::from_value::<netban_cluster::ClusterStatus>(v).ok());
            let daemon = live.is_some();
            let status = match live {
                Some(s) => s,
                None => {
                    let store = ctx.store()?;
                    netban_cluster::from_store(&store, &cfg, &ctx.config.host_id())?
                }
            };
            if ctx.json {
                super::print_json(&serde_json::json!({ "daemon": daemon, "cluster": status }));
                return Ok(());
            }
            if !daemon {
                say!("daemon: not running (connections unknown; counts from the state database)");
            }
            for line in crate::cluster::lines(&status, daemon) {
                say!("{line}");
            }
            Ok(())
        }
    }
}
