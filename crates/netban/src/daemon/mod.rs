//! `netban daemon`: one process that owns delivery.
//!
//! Components, each a task on one tokio runtime: the control socket ([`control`]), the
//! reconcile loop ([`worker`]), and the HTTP listener ([`http`]: `/healthz`, `/metrics`).
//! SIGHUP reloads the config (a bad one is logged and the running one kept); SIGTERM and
//! SIGINT stop gracefully: no new requests, the pass in flight finishes, sockets are removed.

mod control;
mod http;
mod metrics;
mod systemd;
mod worker;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use netban_core::config::{Config, Secret};
use netban_core::reconcile::{Engine, PassReport};
use netban_core::store::Store;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::context::Context;
use crate::exit::{CliError, CliResult};

/// How often the daemon lists every sink and repairs drift, unless configured.
const DEFAULT_RESYNC: f64 = 300.0;

/// A `sync` request waiting for the next pass.
pub struct SyncRequest {
    pub reply: oneshot::Sender<serde_json::Value>,
}

/// What the daemon's tasks share.
pub struct Shared {
    engine: RwLock<Arc<Engine>>,
    pub store: Arc<Store>,
    pub state_dir: PathBuf,
    pub wake: Notify,
    pub metrics: Arc<metrics::Metrics>,
    pub sync_tx: mpsc::Sender<SyncRequest>,
    pub resync_interval: Duration,
    pub web_token: Option<Secret>,
    pub last_report: Mutex<Option<PassReport>>,
    heartbeat: Mutex<Instant>,
}

impl Shared {
    pub fn engine(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_engine(&self, engine: Engine) {
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(engine);
    }

    fn beat(&self) {
        *self.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn heartbeat_age(&self) -> Duration {
        self.heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

pub fn run(ctx: &mut Context) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(main(ctx))
}

async fn main(ctx: &mut Context) -> CliResult {
    let config = ctx.config.clone();
    let store = ctx.store()?;
    let metrics = Arc::new(metrics::Metrics::new());
    metrics.baseline(&store);
    let engine = ctx.engine()?.with_observer(metrics.clone());
    let socket = config.socket_path();
    let listener = bind_control(&socket)?;
    let web_token = web_token(&config)?;
    let (sync_tx, sync_rx) = mpsc::channel(16);
    let shared = Arc::new(Shared {
        engine: RwLock::new(Arc::new(engine)),
        store,
        state_dir: config.state_dir.clone(),
        wake: Notify::new(),
        metrics,
        sync_tx,
        resync_interval: Duration::from_secs_f64(
            config.daemon.resync_interval.unwrap_or(DEFAULT_RESYNC),
        ),
        web_token,
        last_report: Mutex::new(None),
        heartbeat: Mutex::new(Instant::now()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut tasks = Vec::new();
    if !config.web.listen.is_empty() {
        let tcp = tokio::net::TcpListener::bind(&config.web.listen)
            .await
            .map_err(|e| {
                CliError::Config(format!(
                    "web.listen = {:?}: cannot listen: {e}",
                    config.web.listen
                ))
            })?;
        tracing::info!(
            "http: listening on {} (/healthz, /metrics)",
            config.web.listen
        );
        let app = http::router(shared.clone());
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            if let Err(e) = axum::serve(tcp, app).with_graceful_shutdown(shutdown).await {
                tracing::error!("http: {e}");
            }
        }));
    }
    tasks.push(tokio::spawn(control::serve(
        listener,
        shared.clone(),
        stop_rx.clone(),
    )));
    let worker = tokio::spawn(worker::run(shared.clone(), sync_rx, stop_rx.clone()));

    tracing::info!(
        "daemon started: socket {}, {} sinks",
        socket.display(),
        config.sinks.len()
    );
    systemd::notify("READY=1");

    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| CliError::Runtime(format!("cannot handle SIGHUP: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::Runtime(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| CliError::Runtime(format!("cannot handle SIGINT: {e}")))?;
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&ctx.config_path, &config, &shared),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("daemon stopping: finishing the pass in flight");
    systemd::notify("STOPPING=1");
    let _ = stop_tx.send(true);
    let _ = worker.await;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("daemon stopped");
    Ok(())
}

/// Binds the control socket, refusing to start when another daemon answers on it.
fn bind_control(socket: &Path) -> CliResult<UnixListener> {
    if socket.exists() {
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
    let listener = UnixListener::bind(socket)
        .map_err(|e| CliError::Runtime(format!("cannot listen on {}: {e}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

fn web_token(config: &Config) -> CliResult<Option<Secret>> {
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
            "web.token_file {} is empty",
            path.display()
        )));
    }
    Ok(Some(Secret::new(token)))
}

/// SIGHUP: load the config again; sinks, guard and retry settings take effect at the next
/// pass. Listeners keep their addresses until a restart.
fn reload(path: &Path, running: &Config, shared: &Shared) {
    let config = match Config::load(path) {
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
    let guard = match netban_core::guard::Guard::new(&config.guard) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("reload: {e}; keeping the running config");
            return;
        }
    };
    let engine = Engine::new(
        shared.store.clone(),
        guard,
        &config.sinks,
        Box::new(crate::sinks::Factory::new(&config)),
        config.reconcile.clone(),
    )
    .with_observer(shared.metrics.clone());
    shared.set_engine(engine);
    shared.wake.notify_one();
    tracing::info!(
        "reload: config {} loaded, {} sinks",
        path.display(),
        config.sinks.len()
    );
}
