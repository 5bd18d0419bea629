//! netban's web listener: `/healthz`, `/metrics` (and, from the statistics work, the JSON
//! API and the dashboard).
//!
//! Everything it serves comes from a [`Backend`] the daemon provides; this crate owns how it
//! is served, which is where issue 6 found the daemon could be starved: any local user
//! holding ~1,100 idle connections ran it out of file descriptors. Here every connection
//! counts against a cap ([`Limits::max_connections`]; beyond it a connection is closed at
//! once), must send its request headers within [`Limits::header_timeout`], and lives at most
//! [`Limits::max_lifetime`]. Read-only (GET and HEAD only); when a token is set, every route
//! but `/healthz` wants `Authorization: Bearer TOKEN` (the scheme in any case).

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
}

/// The routes, over `backend`, behind `token`.
pub fn router(backend: Arc<dyn Backend>, token: Option<Token>) -> Router {
    let protected = Router::new().route("/metrics", get(metrics)).route_layer(
        axum::middleware::from_fn_with_state(Arc::new(token), auth::require),
    );
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .with_state(backend)
}

async fn blocking<T: Send + 'static>(
    backend: Arc<dyn Backend>,
    f: impl FnOnce(&dyn Backend) -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(move || f(backend.as_ref()))
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response())
}

async fn healthz(State(backend): State<Arc<dyn Backend>>) -> Response {
    match blocking(backend, |b| b.health()).await {
        Ok(Ok(text)) => (StatusCode::OK, format!("{text}\n")).into_response(),
        Ok(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
        Err(r) => r,
    }
}

async fn metrics(State(backend): State<Arc<dyn Backend>>) -> Response {
    match blocking(backend, |b| b.metrics()).await {
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
