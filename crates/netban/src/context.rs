//! Everything a command needs, built in the order that keeps `netban ban` cheap: the config
//! and its sinks (exit 3 when wrong), logging, then the store, the guard and the engine only
//! when asked for.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netban_core::config::{Config, DEFAULT_CONFIG_PATH, SinkDef, SinkEnv};
use netban_core::guard::Guard;
use netban_core::owner::Mark;
use netban_core::reconcile::Engine;
use netban_core::store::Store;

use crate::cli::Cli;
use crate::exit::{CliError, CliResult};
use crate::logging;

/// The embedded default: no sinks, state under /var/lib/netban (root) or the user's state dir.
const EMBEDDED_DEFAULT: &str = include_str!("../../../dist/netban.default.toml");

/// Where the config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config` or `$NETBAN_CONFIG`.
    Given(PathBuf),
    /// `/etc/netban/netban.toml`, found without being asked for.
    Default(PathBuf),
    /// No file: the embedded default.
    Embedded,
}

impl ConfigSource {
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::Given(p) => p.display().to_string(),
            ConfigSource::Default(p) => format!("{} (the default path)", p.display()),
            ConfigSource::Embedded => {
                "none found: the embedded default (no sinks; pass --config or create /etc/netban/netban.toml)"
                    .to_string()
            }
        }
    }
}

pub struct Context {
    pub config: Config,
    pub sinks: Vec<SinkDef>,
    pub source: ConfigSource,
    pub dry_run: bool,
    pub json: bool,
    store: Option<Arc<Store>>,
    guard: Option<Guard>,
}

impl Context {
    /// Loads the config and its sinks, and sets up logging.
    pub fn load(cli: &Cli) -> CliResult<Context> {
        Context::load_file(cli, cli.config.as_deref())
    }

    /// Like [`Context::load`], with the config file given apart from the command line
    /// (`migrate` writes it first).
    pub fn load_file(cli: &Cli, file: Option<&Path>) -> CliResult<Context> {
        let (config, source) = load_config(file)?;
        let sinks = crate::sinks::define(&config).map_err(|e| CliError::Config(e.to_string()))?;
        crate::cluster::check_exclusive(crate::cluster::config(&config)?.as_ref(), &sinks)?;
        logging::init(&config.log, cli.verbose);
        if config.has_inline_secret(&sinks)
            && let ConfigSource::Given(p) | ConfigSource::Default(p) = &source
        {
            warn_if_readable(p);
        }
        Ok(Context {
            config,
            sinks,
            source,
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
    /// addresses: once per process). A broken allowlist never fails a command: its last good
    /// version stays in force and the problem is reported once.
    pub fn guard(&mut self) -> CliResult<Guard> {
        if let Some(g) = &self.guard {
            return Ok(g.clone());
        }
        let state_dir = self.store()?.dir().to_path_buf();
        // (Reading a broken file warns, once.)
        let g = Guard::new(&self.config.guard, Some(&state_dir));
        self.guard = Some(g.clone());
        Ok(g)
    }

    /// What drivers get: the state dir, the host id, this instance's mark.
    pub fn env(&mut self) -> CliResult<SinkEnv> {
        let store = self.store()?;
        let host_id = self.config.host_id();
        Ok(SinkEnv {
            state_dir: self.config.state_dir.clone(),
            mark: Mark::new(&host_id, store.instance()),
            host_id,
        })
    }

    /// The reconcile engine over every configured sink.
    pub fn engine(&mut self) -> CliResult<Engine> {
        let store = self.store()?;
        let guard = self.guard()?;
        let env = self.env()?;
        let engine = Engine::new(
            store,
            guard,
            self.sinks.clone(),
            env,
            self.config.reconcile.clone(),
        );
        // Only the daemon holding the fleet's lock writes an exclusive sink: its runner
        // opens the gate; every other pass leaves the work pending for it.
        for slot in engine.slots().iter().filter(|s| s.def.common.exclusive) {
            slot.set_gate(std::sync::Arc::new(|| false));
        }
        Ok(engine)
    }

    /// The config file's path, when there is one.
    pub fn config_path(&self) -> Option<&Path> {
        match &self.source {
            ConfigSource::Given(p) | ConfigSource::Default(p) => Some(p),
            ConfigSource::Embedded => None,
        }
    }
}

/// A single-threaded runtime for a command's network work (`ban` inline, `sync`, `check`).
pub fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Loads the config the CLI names, or the default file, or the embedded default.
pub fn load_config(explicit: Option<&Path>) -> CliResult<(Config, ConfigSource)> {
    let to_cli = |e: netban_core::config::ConfigError| CliError::Config(e.to_string());
    if let Some(path) = explicit {
        return Ok((
            Config::load(path).map_err(to_cli)?,
            ConfigSource::Given(path.to_path_buf()),
        ));
    }
    let default = Path::new(DEFAULT_CONFIG_PATH);
    if default.exists() {
        return Ok((
            Config::load(default).map_err(to_cli)?,
            ConfigSource::Default(default.to_path_buf()),
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
    Ok((config, ConfigSource::Embedded))
}

/// The config names a secret inline: it must not be readable by others.
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
