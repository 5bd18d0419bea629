//! The daemon's typed bus: small events between components (durable data stays in SQLite).

use std::sync::{Arc, Mutex};

use netban_core::reconcile::Reconfigured;
use tokio::sync::{broadcast, oneshot};

use crate::protocol::Response;

/// Something a component tells the others.
#[derive(Debug, Clone)]
pub enum DaemonEvent {
    /// Leases changed (a ban, an unban, an expiry, an allowlist edit): sinks may have work.
    LeasesChanged,
    /// New events are in the outbox (for its consumers).
    EventsAppended,
    /// `sync` over the control socket: a full pass with repair, answered when done.
    SyncRequested(Arc<SyncRequest>),
    /// SIGHUP loaded a new config; the engine already holds it.
    ConfigReloaded(Arc<Reconfigured>),
}

/// A waiting `sync`: whoever runs it answers once.
#[derive(Debug)]
pub struct SyncRequest {
    reply: Mutex<Option<oneshot::Sender<Response>>>,
}

impl SyncRequest {
    pub fn new() -> (Arc<SyncRequest>, oneshot::Receiver<Response>) {
        let (tx, rx) = oneshot::channel();
        (
            Arc::new(SyncRequest {
                reply: Mutex::new(Some(tx)),
            }),
            rx,
        )
    }

    pub fn answer(&self, r: Response) {
        if let Some(tx) = self.reply.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(r);
        }
    }
}

/// The bus: every component sends and subscribes.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<DaemonEvent>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus {
            tx: broadcast::channel(1024).0,
        }
    }

    pub fn send(&self, e: DaemonEvent) {
        // No subscriber yet (starting up) is fine: components read the state when they start.
        let _ = self.tx.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.tx.subscribe()
    }
}
