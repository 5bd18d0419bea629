//! Statistics: the outbox drained into netban-stats as events are appended (off fail2ban's
//! path), and old days pruned daily.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use netban_core::clock;
use tokio::sync::broadcast;

use crate::daemon::component::{Component, Shutdown};
use crate::daemon::handle::DaemonHandle;

/// The longest the ingester sleeps without news.
const IDLE: Duration = Duration::from_secs(30);
/// After a failure (Redis down), the first pause; doubles up to a minute.
const RETRY: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(86_400);

pub struct StatsIngest;

#[async_trait]
impl Component for StatsIngest {
    fn name(&self) -> &'static str {
        "stats"
    }

    async fn run(self: Box<Self>, h: DaemonHandle, mut stop: Shutdown) -> Result<(), String> {
        let Some(stats) = h.stats.clone() else {
            return Ok(());
        };
        let mut events = h.bus.subscribe();
        let mut pause = RETRY;
        let mut last_prune = Instant::now() - PRUNE_EVERY;
        loop {
            h.beat("stats");
            let wait = match crate::stats::drain(&h.store, &stats).await {
                Ok(_) => {
                    pause = RETRY;
                    IDLE
                }
                Err(e) => {
                    tracing::warn!(
                        "stats: cannot record events (retrying in {}s): {e}",
                        pause.as_secs()
                    );
                    let p = pause;
                    pause = (pause * 2).min(Duration::from_secs(60));
                    p
                }
            };
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(e) = stats.prune(clock::now()).await {
                    tracing::warn!("stats: cannot prune old days: {e}");
                }
            }
            tokio::select! {
                _ = stop.wait() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
                e = events.recv() => {
                    if matches!(e, Err(broadcast::error::RecvError::Closed)) {
                        return Ok(());
                    }
                    // A burst of bans: let it finish appending before reading.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
