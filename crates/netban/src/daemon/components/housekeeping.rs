//! Housekeeping: leases that run out end (and their events are appended) even if fail2ban
//! never sends the unban; allowlist files are re-read when they change (an address
//! allowlisted later leaves every sink); the outbox is pruned.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use netban_core::{clock, leases};

use crate::daemon::bus::DaemonEvent;
use crate::daemon::component::{Component, Shutdown};
use crate::daemon::handle::DaemonHandle;

/// How often allowlist files are looked at (a `stat` each).
const GUARD_EVERY: Duration = Duration::from_secs(2);
/// How often the outbox is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Events kept for `netban explain` once every consumer has read them.
const HISTORY: i64 = 30 * 86_400;
/// The most events kept, whatever the consumers' cursors.
const MAX_EVENTS: i64 = 500_000;

pub struct Housekeeping;

#[async_trait]
impl Component for Housekeeping {
    fn name(&self) -> &'static str {
        "housekeeping"
    }

    async fn run(self: Box<Self>, h: DaemonHandle, mut stop: Shutdown) -> Result<(), String> {
        let mut last_prune = Instant::now() - PRUNE_EVERY;
        loop {
            h.beat("housekeeping");
            let now = clock::now();
            match h.db(move |s| leases::expire(s, now)).await {
                Ok(gone) if !gone.is_empty() => {
                    h.bus.send(DaemonEvent::LeasesChanged);
                    h.bus.send(DaemonEvent::EventsAppended);
                }
                Ok(_) => {}
                Err(e) => tracing::error!("cannot end expired leases: {e}"),
            }
            let engine = h.engine.clone();
            if let Ok(true) = tokio::task::spawn_blocking(move || engine.refresh_guard()).await {
                tracing::info!("guard: allowlists changed; re-checking every sink");
                h.bus.send(DaemonEvent::LeasesChanged);
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                let consumers = h.consumers.clone();
                match h
                    .db(move |s| s.prune_events(&consumers, now - HISTORY, MAX_EVENTS))
                    .await
                {
                    Ok(n) if n > 0 => tracing::debug!("outbox: pruned {n} events"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("outbox: cannot prune: {e}"),
                }
            }
            // Sleep until the next lease ends, or the next allowlist look.
            let wait = match h.db(move |s| s.next_due(now)).await {
                Ok(Some(t)) => Duration::from_secs((t - now).max(0) as u64).min(GUARD_EVERY),
                _ => GUARD_EVERY,
            };
            tokio::select! {
                _ = stop.wait() => return Ok(()),
                _ = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
            }
        }
    }
}
