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
/// A consumer this far behind is warned about at each prune: past [`MAX_EVENTS`] it loses
/// the oldest events it has not read.
const WARN_BACKLOG: i64 = MAX_EVENTS * 4 / 5;

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
                let names = consumers.clone();
                let lags = h
                    .db(move |s| {
                        names
                            .iter()
                            .map(|c| Ok((*c, netban_core::outbox::Consumer::new(c).lag(s)?)))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .await;
                for w in lags
                    .iter()
                    .flatten()
                    .filter_map(|&(c, n)| backlog_warning(c, n))
                {
                    tracing::warn!("{w}");
                }
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

/// What to say of `consumer` with `waiting` events it has not read, before a prune.
fn backlog_warning(consumer: &str, waiting: i64) -> Option<String> {
    let who = match consumer {
        "cluster" => "the cluster publisher (is redis reachable?)",
        "fanout" => "the fanout announcer (is the fanout server reachable?)",
        "stats" => "the statistics ingester",
        _ => consumer,
    };
    if waiting > MAX_EVENTS {
        Some(format!(
            "outbox: {waiting} events wait for {who}, more than the {MAX_EVENTS} the outbox keeps: the oldest {} are dropped now, unread",
            waiting - MAX_EVENTS
        ))
    } else if waiting > WARN_BACKLOG {
        Some(format!(
            "outbox: {waiting} events wait for {who}; past {MAX_EVENTS} the oldest are dropped unread (netban_outbox_backlog{{consumer=\"{consumer}\"}})"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::backlog_warning;

    #[test]
    fn a_backlog_near_the_cap_is_warned_about_and_past_it_said_lost() {
        assert_eq!(backlog_warning("cluster", 1000), None);
        let near = backlog_warning("cluster", 450_000).unwrap_or_default();
        assert!(
            near.contains("450000 events wait for the cluster publisher"),
            "{near}"
        );
        assert!(near.contains("past 500000"), "{near}");
        let past = backlog_warning("cluster", 500_010).unwrap_or_default();
        assert!(
            past.contains("the oldest 10 are dropped now, unread"),
            "{past}"
        );
    }
}
