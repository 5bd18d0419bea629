//! The web listener: netban-web serves; this says what (health from the loops' heartbeats,
//! metrics from the registry and the store).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use netban_web::{Backend, Limits, Token};
use tokio::net::TcpListener;

use crate::daemon::component::{Component, Shutdown};
use crate::daemon::handle::DaemonHandle;

/// A loop that has not turned for this long makes /healthz fail.
const STALL: Duration = Duration::from_secs(120);

pub struct Web {
    pub listener: TcpListener,
    pub token: Option<Token>,
}

struct Served(DaemonHandle);

impl Backend for Served {
    fn health(&self) -> Result<String, String> {
        let stalled = self.0.stalled(STALL);
        if stalled.is_empty() {
            Ok("ok".into())
        } else {
            Err(stalled
                .iter()
                .map(|(w, d)| format!("{w} stalled for {}s", d.as_secs()))
                .collect::<Vec<_>>()
                .join("; "))
        }
    }

    fn metrics(&self) -> String {
        let scrape = crate::daemon::metrics::Scrape {
            consumers: self.0.consumers.clone(),
            cluster: self.0.cluster.clone(),
        };
        self.0
            .metrics
            .encode(&self.0.store, &self.0.engine, &scrape)
    }

    fn store(&self) -> Arc<netban_core::store::Store> {
        self.0.store.clone()
    }

    fn engine(&self) -> Arc<netban_core::reconcile::Engine> {
        self.0.engine.clone()
    }

    fn stats(&self) -> Option<Arc<netban_stats::Stats>> {
        self.0.stats.clone()
    }

    fn cluster(&self) -> Option<serde_json::Value> {
        let status = self.0.cluster.as_ref()?.status().ok()?;
        serde_json::to_value(status).ok()
    }

    fn started(&self) -> Option<i64> {
        Some(self.0.started)
    }
}

#[async_trait]
impl Component for Web {
    fn name(&self) -> &'static str {
        "web"
    }

    async fn run(self: Box<Self>, h: DaemonHandle, mut stop: Shutdown) -> Result<(), String> {
        let router = netban_web::router(Arc::new(Served(h)), self.token);
        netban_web::serve(self.listener, router, Limits::default(), async move {
            stop.wait().await
        })
        .await;
        Ok(())
    }
}
