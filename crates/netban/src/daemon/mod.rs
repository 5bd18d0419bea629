//! `netban daemon`: one process that owns delivery.
//!
//! Components on a typed bus ([`bus`]), each a task with one job ([`components`]): the control
//! socket, one delivery runner per sink, housekeeping (expiry, allowlists, outbox), the web
//! listener. They share a [`handle::DaemonHandle`]; the logic lives in the library crates.
//! Listeners are bound here or handed in ([`Daemon::control`], [`Daemon::web`]); the bound
//! addresses are written to `state_dir/daemon.json`, so a test can bind port 0 and read the
//! port back.
//!
//! SIGHUP reloads the config (a bad one is logged and the running one kept; sinks whose
//! config did not change keep their sessions); SIGTERM and SIGINT stop gracefully: no new
//! requests, the passes in flight finish, the socket is removed.

mod bus;
mod component;
mod components;
mod handle;
mod metrics;
mod systemd;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netban_core::config::Secret;
use netban_core::guard::Guard;
use netban_core::reconcile::Engine;
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::context::Context;
use crate::exit::{CliError, CliResult};
use bus::DaemonEvent;
use component::{Component, Shutdown};
use handle::DaemonHandle;

pub fn run(ctx: &mut Context) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        // The store first: it creates a missing state dir, where the socket goes.
        ctx.store()?;
        let control = bind_control(&ctx.config.socket_path())?;
        let web = bind_web(&ctx.config.web.listen).await?;
        Daemon::default().control(control).web(web).run(ctx).await
    })
}

/// The daemon, with its listeners.
#[derive(Default)]
pub struct Daemon {
    control: Option<UnixListener>,
    web: Option<TcpListener>,
}

impl Daemon {
    pub fn control(mut self, l: UnixListener) -> Daemon {
        self.control = Some(l);
        self
    }

    pub fn web(mut self, l: Option<TcpListener>) -> Daemon {
        self.web = l;
        self
    }

    pub async fn run(self, ctx: &mut Context) -> CliResult {
        let config = ctx.config.clone();
        let store = ctx.store()?;
        let metrics = Arc::new(metrics::Metrics::new());
        metrics.baseline(&store);
        let engine = Arc::new(ctx.engine()?.with_observer(metrics.clone()));
        let token = web_token(&config)?;
        let stats = crate::stats::open(ctx)?;
        let cluster_config = crate::cluster::config(&config)?;
        crate::cluster::check_exclusive(cluster_config.as_ref(), &ctx.sinks)?;
        let mut h = DaemonHandle::new(
            store.clone(),
            engine.clone(),
            metrics,
            Duration::from_secs_f64(config.daemon.resync_interval),
        );
        h.stats = stats;
        if let Some(cfg) = cluster_config.clone() {
            let engine = engine.clone();
            let bus = h.bus.clone();
            let setup = netban_cluster::Setup::new(
                cfg,
                &config.host_id(),
                store.clone(),
                Arc::new(move || engine.guard()),
                Arc::new(move || {
                    bus.send(DaemonEvent::LeasesChanged);
                    bus.send(DaemonEvent::EventsAppended);
                }),
            );
            h.cluster = Some(
                netban_cluster::Cluster::new(setup).map_err(|e| CliError::Config(e.to_string()))?,
            );
        }
        h.consumers = h
            .stats
            .is_some()
            .then_some(crate::stats::CONSUMER)
            .into_iter()
            .chain(crate::cluster::consumers(cluster_config.as_ref()))
            .collect();
        let socket = config.socket_path();
        let web_addr = self.web.as_ref().and_then(|l| l.local_addr().ok());
        if config.host_id.is_none() {
            tracing::warn!(
                "host_id is not set; using the host name {:?} (cloned machines share it: set host_id to a name unique in your fleet)",
                ctx.env()?.host_id
            );
        }
        let host_id = config.host_id();
        for w in cluster_config.iter().flat_map(|c| c.warnings(&host_id)) {
            tracing::warn!("cluster: {w}");
        }
        for def in &ctx.sinks {
            for w in def.spec.warnings() {
                tracing::warn!("{}: {w}", def.name());
            }
        }
        if let Some(addr) = web_addr
            && !addr.ip().is_loopback()
            && token.is_none()
        {
            tracing::warn!(
                "web: listening on {addr}, reachable from other hosts, without a token: set web.token_file"
            );
        }
        let mut components: Vec<Box<dyn Component>> = vec![
            Box::new(components::reconcile::Reconcile),
            Box::new(components::housekeeping::Housekeeping),
        ];
        if h.cluster.is_some() {
            components.push(Box::new(components::cluster::Cluster));
        }
        if h.stats.is_some() {
            components.push(Box::new(components::stats::StatsIngest));
        }
        if let Some(listener) = self.control {
            components.push(Box::new(components::control::Control { listener }));
        }
        if let Some(listener) = self.web {
            components.push(Box::new(components::web::Web {
                listener,
                token: token.and_then(netban_web::Token::new),
            }));
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for c in components {
            let (h, stop) = (h.clone(), Shutdown::new(stop_rx.clone()));
            let name = c.name();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = c.run(h, stop).await {
                    tracing::error!("{name}: {e}");
                }
            }));
        }
        write_info(&config.state_dir, &socket, web_addr);
        let line = format!(
            "netban daemon: {} sink(s){}; control socket {}; {}",
            ctx.sinks.len(),
            if ctx.sinks.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    ctx.sinks
                        .iter()
                        .map(|s| format!("{} {}", s.kind(), s.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            socket.display(),
            match web_addr {
                Some(a) => format!("web http://{a}/ (dashboard, /api/v1, /healthz, /metrics)"),
                None => "web off".into(),
            }
        );
        tracing::info!("{line}");
        eprintln!("{line}");
        systemd::notify("READY=1");
        h.bus.send(DaemonEvent::LeasesChanged);

        let sig =
            |k, n| signal(k).map_err(|e| CliError::Runtime(format!("cannot handle {n}: {e}")));
        let mut hup = sig(SignalKind::hangup(), "SIGHUP")?;
        let mut term = sig(SignalKind::terminate(), "SIGTERM")?;
        let mut int = sig(SignalKind::interrupt(), "SIGINT")?;
        loop {
            tokio::select! {
                _ = hup.recv() => reload(ctx, &config, &h).await,
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        tracing::info!("daemon stopping: finishing the passes in flight");
        systemd::notify("STOPPING=1");
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(70), t).await;
        }
        remove_socket(&socket);
        let _ = std::fs::remove_file(config.state_dir.join("daemon.json"));
        tracing::info!("daemon stopped");
        Ok(())
    }
}

/// Binds the control socket, refusing to start when another daemon answers on it. Only a
/// stale *socket* is removed: any other file at that path is refused (issue 6: pointed at the
/// state database, the old code deleted it as a "stale socket").
fn bind_control(socket: &Path) -> CliResult<UnixListener> {
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(CliError::Runtime(format!(
                    "a netban daemon is already running on {}",
                    socket.display()
                )));
            }
            std::fs::remove_file(socket).map_err(|e| {
                CliError::Runtime(format!(
                    "cannot remove stale socket {}: {e}",
                    socket.display()
                ))
            })?;
        }
        Ok(_) => {
            return Err(CliError::Config(format!(
                "daemon.socket = {} exists and is not a socket; netban never removes it: point daemon.socket at a free path (default: netban.sock in state_dir)",
                socket.display()
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket)
        .map_err(|e| CliError::Runtime(format!("cannot listen on {}: {e}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

fn remove_socket(socket: &Path) {
    if std::fs::symlink_metadata(socket).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(socket);
    }
}

async fn bind_web(listen: &str) -> CliResult<Option<TcpListener>> {
    if listen.is_empty() {
        return Ok(None);
    }
    TcpListener::bind(listen)
        .await
        .map(Some)
        .map_err(|e| CliError::Config(format!("web.listen = {listen:?}: cannot listen: {e}")))
}

fn web_token(config: &netban_core::config::Config) -> CliResult<Option<Secret>> {
    if let Some(t) = &config.web.token {
        return Ok(Some(t.clone()));
    }
    let Some(path) = &config.web.token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Config(format!("web.token_file {}: {e}", path.display())))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(CliError::Config(format!(
            "web.token_file {} is empty, which would turn authentication off; put a long random token on its first line",
            path.display()
        )));
    }
    Ok(Some(Secret::new(token)))
}

/// `state_dir/daemon.json`: the daemon's pid and where it listens (0600).
fn write_info(state_dir: &Path, socket: &Path, web: Option<std::net::SocketAddr>) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let info = serde_json::json!({
        "pid": std::process::id(),
        "socket": socket,
        "web": web.map(|a| a.to_string()),
    });
    let path: PathBuf = state_dir.join("daemon.json");
    let tmp = state_dir.join(format!("daemon.json.{}", std::process::id()));
    let ok = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(info.to_string().as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = ok {
        tracing::debug!("cannot write {}: {e}", path.display());
    }
}

/// SIGHUP: load the config again. Sinks whose definition did not change keep running as they
/// are; the guard and retry settings take effect at the next pass. Listeners keep their
/// addresses until a restart.
async fn reload(ctx: &Context, running: &netban_core::config::Config, h: &DaemonHandle) {
    let Some(path) = ctx.config_path().map(Path::to_path_buf) else {
        tracing::warn!("reload: running on the embedded default; nothing to reload");
        return;
    };
    let loaded = netban_core::config::Config::load(&path).and_then(|c| {
        let sinks = crate::sinks::define(&c)?;
        Ok((c, sinks))
    });
    let (config, sinks) = match loaded {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload: {e}; keeping the running config");
            return;
        }
    };
    if config.state_dir != running.state_dir
        || config.socket_path() != running.socket_path()
        || config.web.listen != running.web.listen
    {
        tracing::warn!("reload: state_dir, daemon.socket and web.listen change only at a restart");
    }
    if config.cluster.as_ref().map(|c| c.text()) != running.cluster.as_ref().map(|c| c.text())
        || config.stats.as_ref().map(|c| c.text()) != running.stats.as_ref().map(|c| c.text())
    {
        tracing::warn!(
            "reload: [cluster] and [stats] change only at a restart; they run as they started"
        );
    }
    let guard_config = config.guard.clone();
    let state_dir = h.store.dir().to_path_buf();
    let Ok(guard) =
        tokio::task::spawn_blocking(move || Guard::new(&guard_config, Some(&state_dir))).await
    else {
        return;
    };
    let count = sinks.len();
    let change = Engine::reconfigure(&h.engine, guard, sinks, config.reconcile.clone());
    tracing::info!(
        "reload: config {} loaded, {count} sinks; kept as they were: {}; started: {}; stopped: {}",
        path.display(),
        list(&change.kept),
        list(&change.started),
        list(&change.stopped)
    );
    h.bus.send(DaemonEvent::ConfigReloaded(Arc::new(change)));
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
