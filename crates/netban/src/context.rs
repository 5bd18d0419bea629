//! Everything a command needs, built in the order that keeps `netban ban` cheap: the config
//! (exit 3 when it is wrong), logging, then the store and the guard only when asked for.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netban_core::config::{Config, DEFAULT_CONFIG_PATH};
use netban_core::guard::Guard;
use netban_core::reconcile::Engine;
use netban_core::store::Store;

use crate::cli::Cli;
use crate::exit::{CliError, CliResult};
use crate::logging;

/// The embedded default: no sinks, state under /var/lib/netban (root) or the user's state dir.
const EMBEDDED_DEFAULT: &str = include_str!("../../../dist/netban.default.toml");

pub struct Context {
    pub config: Config,
    pub config_path: PathBuf,
    pub dry_run: bool,
    pub json: bool,
    store: Option<Arc<Store>>,
    guard: Option<Guard>,
}

impl Context {
    /// Loads the config and sets up logging.
    pub fn load(cli: &Cli) -> CliResult<Context> {
        let (config, path) = load_config(cli.config.as_deref())?;
        logging::init(&config.log, cli.verbose);
        if config.has_inline_secret() {
            warn_if_readable(&path);
        }
        Ok(Context {
            config,
            config_path: path,
            dry_run: cli.dry_run,
            json: cli.json,
            store: None,
            guard: None,
        })
    }

    /// The state store, opened on first use.
    pub fn store(&mut self) -> CliResult<Arc<Store>> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let s = Arc::new(Store::open(&self.config.state_dir)?);
        self.store = Some(s.clone());
        Ok(s)
    }

    /// The guard, built on first use (it reads the allowlists and lists this host's
    /// addresses: once per process, not once for the ban and again for its delivery). A
    /// broken allowlist is a configuration error.
    pub fn guard(&mut self) -> CliResult<Guard> {
        if let Some(g) = &self.guard {
            return Ok(g.clone());
        }
        let g = Guard::new(&self.config.guard).map_err(|e| CliError::Config(e.to_string()))?;
        self.guard = Some(g.clone());
        Ok(g)
    }

    /// The reconcile engine over every configured sink.
    pub fn engine(&mut self) -> CliResult<Engine> {
        let store = self.store()?;
        let guard = self.guard()?;
        Ok(Engine::new(
            store,
            guard,
            &self.config.sinks,
            Box::new(crate::sinks::Factory::new(&self.config)),
            self.config.reconcile.clone(),
        ))
    }
}

/// A single-threaded runtime for a command's network work (`ban` inline, `sync`, `check`).
pub fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}

fn load_config(explicit: Option<&Path>) -> CliResult<(Config, PathBuf)> {
    let to_cli = |e: netban_core::config::ConfigError| CliError::Config(e.to_string());
    if let Some(path) = explicit {
        return Ok((Config::load(path).map_err(to_cli)?, path.to_path_buf()));
    }
    let default = Path::new(DEFAULT_CONFIG_PATH);
    if default.exists() {
        return Ok((
            Config::load(default).map_err(to_cli)?,
            default.to_path_buf(),
        ));
    }
    // No config anywhere: run on the embedded default (no sinks: leases are recorded and
    // listed, nothing is delivered). Root keeps state in /var/lib/netban, others in their
    // own state directory.
    let mut config =
        Config::parse(EMBEDDED_DEFAULT, Path::new("<embedded default>")).map_err(to_cli)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0
        && let Some(home) = std::env::var_os("HOME")
    {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(home).join(".local/state"));
        config.state_dir = base.join("netban");
    }
    Ok((config, PathBuf::from("<embedded default>")))
}

/// The config names an API key or token inline: it must not be readable by others.
fn warn_if_readable(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o044 != 0 {
            tracing::warn!(
                "config {} holds a secret and is readable by group or others (mode {:o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
}
