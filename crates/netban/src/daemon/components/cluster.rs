//! The cluster: the publisher (this host's events to the bus), the receiver (peers' events
//! to leases here) and the fanout bridge, each reconnecting on its own; woken when the
//! outbox grows. The exclusive sinks' locks are taken by their runners
//! ([`super::reconcile`]).

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::daemon::bus::DaemonEvent;
use crate::daemon::component::{Component, Shutdown};
use crate::daemon::handle::DaemonHandle;

pub struct Cluster;

#[async_trait]
impl Component for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    async fn run(self: Box<Self>, h: DaemonHandle, mut stop: Shutdown) -> Result<(), String> {
        let Some(cluster) = h.cluster.clone() else {
            return Ok(());
        };
        let mut events = h.bus.subscribe();
        let mut tasks = Vec::new();
        if let Some(p) = cluster.publisher() {
            let mut s = stop.clone();
            tasks.push(tokio::spawn(async move {
                p.run(async move { s.wait().await }).await
            }));
        }
        if let Some(r) = cluster.receiver() {
            let mut s = stop.clone();
            tasks.push(tokio::spawn(async move {
                r.run(async move { s.wait().await }).await
            }));
        }
        if let Some(f) = cluster.fanout() {
            // (The bridge itself warns at start that its messages are unsigned.)
            let mut s = stop.clone();
            tasks.push(tokio::spawn(async move {
                f.run(async move { s.wait().await }).await
            }));
        }
        loop {
            h.beat("cluster");
            tokio::select! {
                _ = stop.wait() => break,
                e = events.recv() => match e {
                    Ok(DaemonEvent::EventsAppended | DaemonEvent::LeasesChanged)
                    | Err(broadcast::error::RecvError::Lagged(_)) => cluster.wake(),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                // Beat while idle (the publisher polls on its own too).
                _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            }
        }
        for t in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), t).await;
        }
        Ok(())
    }
}
