//! netban's web listener: `/healthz`, `/metrics`, the JSON API under `/api/v1/` and the
//! dashboard at `/`.
//!
//! Everything it serves comes from a [`Backend`] the daemon provides; this crate owns how it
//! is served, which is where issue 6 found the daemon could be starved: any local user
//! holding ~1,100 idle connections ran it out of file descriptors. Here every connection
//! counts against a cap ([`Limits::max_connections`]; beyond it a connection is closed at
//! once), must send its request headers within [`Limits::header_timeout`], and lives at most
//! [`Limits::max_lifetime`].
//!
//! - Read-only: GET and HEAD only, but for `POST /login` ([`server`]).
//! - With a token, every route but `/healthz`, `/assets/` and the login form wants
//!   `Authorization: Bearer TOKEN` or the session cookie the login form sets ([`auth`]).
//! - [`api`]: the JSON API (statistics, what is blocked now, status, cluster).
//! - [`assets`]: the dashboard's files, embedded in the binary, with a strict
//!   Content-Security-Policy: the page loads nothing from outside its own origin.

mod api;
mod assets;
mod auth;
mod server;

pub use auth::Token;
pub use server::{Limits, serve};

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the listener serves, provided by the daemon. Methods may block (they read the
/// state database): they run on a blocking thread.
pub trait Backend: Send + Sync + 'static {
    /// `Ok` while the daemon works; `Err` says what is stalled.
    fn health(&self) -> Result<String, String>;
    /// The OpenMetrics text.
    fn metrics(&self) -> String;
    /// The state database (active leases, records, kept entries, refusals).
    fn store(&self) -> Arc<netban_core::store::Store>;
    /// The reconcile engine (sinks, their plans: what is in place, pending, failing).
    fn engine(&self) -> Arc<netban_core::reconcile::Engine>;
    /// The statistics, when `[stats]` is on.
    fn stats(&self) -> Option<Arc<netban_stats::Stats>>;
    /// The cluster's status (`netban cluster status --json`), when clustering is on.
    fn cluster(&self) -> Option<serde_json::Value> {
        None
    }
    /// Unix seconds when the daemon started; by default, when the router was built.
    fn started(&self) -> Option<i64> {
        None
    }
}

/// What every handler shares.
pub(crate) struct App {
    pub backend: Arc<dyn Backend>,
    pub auth: auth::Auth,
    /// Unix seconds the daemon started (for `uptime`).
    pub started: i64,
    pub cache: api::cache::Cache,
}

/// The routes, over `backend`, behind `token`.
pub fn router(backend: Arc<dyn Backend>, token: Option<Token>) -> Router {
    let started = backend.started().unwrap_or_else(netban_core::clock::now);
    let app = Arc::new(App {
        backend,
        auth: auth::Auth::new(token),
        started,
        cache: api::cache::Cache::default(),
    });
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .nest("/api/v1", api::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(assets::routes())
        .merge(auth::routes())
        .merge(protected)
        .layer(axum::middleware::from_fn(assets::security_headers))
        .with_state(app)
}

/// Runs `f` over the backend on a blocking thread (store reads may wait for a lock).
pub(crate) async fn blocking<T: Send + 'static>(
    backend: Arc<dyn Backend>,
    f: impl FnOnce(&dyn Backend) -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(move || f(backend.as_ref()))
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response())
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match blocking(app.backend.clone(), |b| b.health()).await {
        Ok(Ok(text)) => (StatusCode::OK, format!("{text}\n")).into_response(),
        Ok(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
        Err(r) => r,
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match blocking(app.backend.clone(), |b| b.metrics()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(r) => r,
    }
}
