//! `/api/v1/stats/...`: the statistics behind the dashboard's charts, straight from
//! netban-stats (its report types are the JSON). `days` (1–3660, default 30) and `limit`
//! (1–100, default 10) are checked here; statistics that are off answer 404, a backend
//! that does not answer 503.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use netban_stats::report::MAX_WINDOW_DAYS;
use netban_stats::{Stats, StatsError};
use serde_json::json;

use super::{ApiError, JsonBody, RawQuery, int_param, no_store, query};
use crate::App;

/// The answer when `[stats]` is not configured.
pub(crate) const STATS_OFF: &str = "statistics are off: this daemon has no [stats] section; add one to the config (docs/stats.md) and reload netban";

/// Longest top list.
const MAX_LIMIT: u32 = 100;

/// The window and list length of a request.
struct Params {
    days: u32,
    limit: u32,
}

fn params(q: RawQuery) -> Result<Params, ApiError> {
    let q = query(q)?;
    Ok(Params {
        days: int_param(&q, "days", 30, 1, MAX_WINDOW_DAYS)?,
        limit: int_param(&q, "limit", 10, 1, MAX_LIMIT)?,
    })
}

fn stats_of(app: &App) -> Result<Arc<Stats>, ApiError> {
    app.backend
        .stats()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, STATS_OFF))
}

fn failed(e: StatsError) -> ApiError {
    ApiError::unavailable(e.to_string())
}

/// Checks the request, then answers `make(stats, params)` through the cache.
async fn answer<F, Fut>(app: Arc<App>, q: RawQuery, endpoint: &'static str, make: F) -> Response
where
    F: FnOnce(Arc<Stats>, u32, usize, i64) -> Fut,
    Fut: Future<Output = Result<serde_json::Value, StatsError>>,
{
    let result = async {
        let p = params(q)?;
        let stats = stats_of(&app)?;
        let now = netban_core::clock::now();
        app.cache
            .get((endpoint, p.days, p.limit), || async move {
                make(stats, p.days, p.limit as usize, now)
                    .await
                    .map(|v| JsonBody::value(&v))
                    .map_err(failed)
            })
            .await
    }
    .await;
    no_store(match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    })
}

fn to_json<T: serde::Serialize>(v: T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub(crate) async fn report(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    answer(app, q, "report", |s, days, _, now| async move {
        s.report(days, now).await.map(to_json)
    })
    .await
}

pub(crate) async fn asns(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    answer(app, q, "asns", |s, days, limit, now| async move {
        s.backend()
            .top_asns(s.window(days, now), limit)
            .await
            .map(to_json)
    })
    .await
}

pub(crate) async fn networks(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    answer(app, q, "networks", |s, days, limit, now| async move {
        s.backend()
            .top_networks(s.window(days, now), limit)
            .await
            .map(to_json)
    })
    .await
}

pub(crate) async fn offenders(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    answer(app, q, "offenders", |s, days, limit, now| async move {
        s.backend()
            .top_offenders(s.window(days, now), limit)
            .await
            .map(to_json)
    })
    .await
}

pub(crate) async fn hosts(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    answer(app, q, "hosts", |s, days, _, now| async move {
        s.backend().hosts(s.window(days, now)).await.map(to_json)
    })
    .await
}

/// Everything a dashboard refresh needs in one request.
pub(crate) async fn summary(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    answer(app, q, "summary", |s, days, limit, now| async move {
        let w = s.window(days, now);
        let b = s.backend();
        let sum = b.summary(w, limit).await?;
        Ok(json!({
            "report": sum.report,
            "top_asns": sum.top_asns,
            "top_networks": sum.top_networks,
            "top_offenders": sum.top_offenders,
            "hosts": sum.hosts,
            "first": w.first,
            "last": w.last,
            "zone": s.zone().iana_name(),
            "backend": b.name(),
            "generated": now,
        }))
    })
    .await
}
