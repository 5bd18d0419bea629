//! The statistics, wired: `[stats]` read into netban-stats' config, the backend opened, and
//! the outbox drained into it (the daemon's component does it continuously; `netban stats`
//! does it itself when no daemon runs).

use std::sync::Arc;

use netban_core::outbox::Consumer;
use netban_core::store::Store;
use netban_stats::{SourceEvent, Stats, StatsConfig};

use crate::context::Context;
use crate::exit::{CliError, CliResult};

/// The outbox consumer of the statistics.
pub const CONSUMER: &str = "stats";
/// Events read per batch.
const BATCH: usize = 1000;

/// `[stats]`, when the config has it; exit 3 when it is wrong.
pub fn config(ctx: &Context) -> CliResult<Option<StatsConfig>> {
    let Some(section) = &ctx.config.stats else {
        return Ok(None);
    };
    let cfg: StatsConfig = section
        .deserialize()
        .map_err(|e| CliError::Config(e.to_string()))?;
    cfg.validate(ctx.config.cluster.is_some())
        .map_err(|e| CliError::Config(section.invalid(e.to_string()).to_string()))?;
    Ok(Some(cfg))
}

/// Opens the statistics when `[stats]` is on.
pub fn open(ctx: &mut Context) -> CliResult<Option<Arc<Stats>>> {
    let Some(cfg) = config(ctx)? else {
        return Ok(None);
    };
    let state_dir = ctx.store()?.dir().to_path_buf();
    let host_id = ctx.config.host_id();
    // The Redis backend's default server is the cluster's bus.
    let cluster = crate::cluster::config(&ctx.config)?;
    let cluster_redis = match cluster.as_ref().filter(|c| c.has_redis()) {
        Some(c) => Some(c.redis_url().map_err(|e| CliError::Config(e.to_string()))?),
        None => None,
    };
    let stats = Stats::open(
        &cfg,
        netban_stats::OpenEnv {
            state_dir: &state_dir,
            host_id: &host_id,
            cluster_redis: cluster_redis.as_ref(),
            cluster_prefix: cluster.as_ref().map(|c| c.prefix.as_str()),
        },
    )
    .map_err(|e| CliError::Config(e.to_string()))?;
    Ok(Some(Arc::new(stats)))
}

/// Feeds the outbox into the statistics until it is empty; returns the events read. The
/// cursor moves only after the backend took a batch (it counts each event once even when a
/// batch is handed in again).
pub async fn drain(store: &Arc<Store>, stats: &Stats) -> Result<usize, String> {
    let consumer = Consumer::new(CONSUMER);
    let base = id_base(store, stats).await?;
    let mut total = 0;
    loop {
        let (s, c) = (store.clone(), consumer.clone());
        let events = tokio::task::spawn_blocking(move || c.next(&s, BATCH))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(last) = events.iter().map(|e| e.id).max() else {
            return Ok(total);
        };
        let batch: Vec<SourceEvent> = events
            .iter()
            .map(|e| {
                let mut s = SourceEvent::from(e);
                s.id += base;
                s
            })
            .collect();
        stats.ingest(&batch).await.map_err(|e| e.to_string())?;
        total += events.len();
        let (s, c) = (store.clone(), consumer.clone());
        tokio::task::spawn_blocking(move || c.commit(&s, last))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
}

/// State-database meta key: what this database's event ids are shifted by in the statistics.
const ID_BASE: &str = "stats_id_base";

/// The shift of this state database's event ids in the statistics, which count each host's
/// events once by id (the host's *mark*). A state database that is new beside statistics
/// that are kept (recreated, restored from an older backup) numbers its events from ids the
/// statistics counted already, and its bans would be skipped as counted: when the mark is
/// past every id this database ever gave, its ids are shifted above the mark from now on.
async fn id_base(store: &Arc<Store>, stats: &Stats) -> Result<i64, String> {
    let s = store.clone();
    let (base, numbered) = tokio::task::spawn_blocking(move || {
        let base = s.get_meta(ID_BASE)?.and_then(|v| v.parse::<i64>().ok());
        Ok::<_, netban_core::store::StoreError>((base.unwrap_or(0), s.events_numbered()?))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let mark = stats
        .backend()
        .mark(stats.host())
        .await
        .map_err(|e| e.to_string())?;
    if mark <= base + numbered {
        return Ok(base);
    }
    tracing::warn!(
        "stats: the statistics have counted events up to id {mark} of host {}, past every id \
         this state database gave ({}): it is newer than the statistics (recreated, or \
         restored from an older backup); its events are counted from id {} on",
        stats.host(),
        base + numbered,
        mark + 1
    );
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.set_meta(ID_BASE, &mark.to_string()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(mark)
}
