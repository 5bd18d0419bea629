//! Serving with limits: a connection cap, a header timeout, a lifetime cap, GET/HEAD only
//! (and `POST /login`, the login form of the dashboard).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What one listener allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; beyond, a new connection is closed at once.
    pub max_connections: usize,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Longest a connection lives, however busy.
    pub max_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(120),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let router = router.layer(axum::middleware::from_fn(read_only));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused_logged = std::time::Instant::now() - Duration::from_secs(60);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or a connection reset while queued: wait a little.
                tracing::warn!("web: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if refused_logged.elapsed() >= Duration::from_secs(60) {
                tracing::warn!(
                    "web: {} connections open, closing new ones (from {peer}) until some end",
                    limits.max_connections
                );
                refused_logged = std::time::Instant::now();
            }
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.max_lifetime, conn).await;
            drop(permit);
        });
    }
}

/// Only GET and HEAD: the listener is read-only. The one exception is the login form, which
/// changes nothing but the browser's cookie.
async fn read_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let m = req.method();
    if m == Method::GET || m == Method::HEAD || (m == Method::POST && req.uri().path() == "/login")
    {
        next.run(req).await
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, "read-only\n").into_response()
    }
}
