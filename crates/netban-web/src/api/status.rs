//! `GET /api/v1/status` (what `netban status --json` shows, seen from the daemon: sinks,
//! kept entries, guard problems, refusals, uptime) and `GET /api/v1/cluster` (the cluster's
//! own status, 404 when clustering is off).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use netban_core::config::redact_userinfo;
use netban_core::view;
use serde_json::{Value, json};

use super::{ApiError, JsonBody, no_store};
use crate::{App, Backend};

/// The answer when `[cluster]` is not configured.
pub(crate) const CLUSTER_OFF: &str =
    "clustering is off: this daemon has no [cluster] section (DESIGN.md, Cluster)";

fn unreadable(e: netban_core::store::StoreError) -> ApiError {
    ApiError::unavailable(format!(
        "the state database cannot be read ({e}); check the daemon's log"
    ))
}

/// Everything but the uptime (blocking: the state database).
fn read(b: &dyn Backend, now: i64) -> Result<Value, ApiError> {
    let store = b.store();
    let engine = b.engine();
    let env = engine.env().clone();
    let guard = engine.guard();
    let leases = store.live_lease_count(now).map_err(unreadable)?;
    let sinks = view::sinks(&engine, now).map_err(unreadable)?;
    let kept = store.kept(None).map_err(unreadable)?;
    let refusals = store.refusals(None, 10_000).map_err(unreadable)?;
    let refusals_24h = refusals.iter().filter(|r| r.last >= now - 86_400).count();
    let refusals_total = store.counter("guard_refusals").map_err(unreadable)?;
    let mass = store.mass_unbans(now - 7 * 86_400).map_err(unreadable)?;
    let out: Vec<_> = sinks.iter().map(|s| s.summary(&kept, now)).collect();
    let kept: Vec<Value> = kept
        .iter()
        .map(|k| {
            json!({
                "sink": k.sink, "target": k.target.to_string(), "remote_id": k.remote_id,
                "owner": redact_userinfo(&k.owner), "reason": redact_userinfo(&k.reason),
                "expires": k.expires, "noticed": k.noticed,
            })
        })
        .collect();
    let stats = b.stats().map(
        |s| json!({"backend": s.backend().name(), "zone": s.zone().iana_name(), "host": s.host()}),
    );
    Ok(json!({
        "now": now,
        "host_id": env.host_id,
        "mark": env.mark.to_string(),
        "leases": leases,
        "sinks": out,
        "kept": kept,
        "guard_problems": guard.problems().iter().map(|p| redact_userinfo(p)).collect::<Vec<_>>(),
        "refusals_24h": refusals_24h,
        "refusals_total": refusals_total,
        "mass_unbans": mass.iter().map(|(j, at, n, r)| json!({"jail": j, "at": at, "unbanned": n, "restored": r})).collect::<Vec<_>>(),
        "stats": stats,
        "cluster": b.cluster().is_some(),
    }))
}

pub(crate) async fn status(State(app): State<Arc<App>>) -> Response {
    let now = netban_core::clock::now();
    let started = app.started;
    let result = crate::blocking(app.backend.clone(), move |b| read(b, now))
        .await
        .map_err(|_| ApiError::internal())
        .and_then(|r| r);
    no_store(match result {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("started".into(), json!(started));
                o.insert("uptime".into(), json!((now - started).max(0)));
            }
            JsonBody::value(&v).into_response()
        }
        Err(e) => e.into_response(),
    })
}

pub(crate) async fn cluster(State(app): State<Arc<App>>) -> Response {
    let result = crate::blocking(app.backend.clone(), |b| b.cluster())
        .await
        .map_err(|_| ApiError::internal());
    no_store(match result {
        Ok(Some(v)) => JsonBody::value(&redact(v)).into_response(),
        Ok(None) => ApiError::new(StatusCode::NOT_FOUND, CLUSTER_OFF).into_response(),
        Err(e) => e.into_response(),
    })
}

/// Redacts URL credentials in every string of the cluster's JSON (a Redis URL with its
/// password must not reach a browser, whatever the cluster puts in its status).
fn redact(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(redact_userinfo(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(redact).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| !is_secret_key(k))
                .map(|(k, v)| (k, redact(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Keys whose values are secrets by their name alone.
fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["password", "secret", "token", "private_key", "secret_key"]
        .iter()
        .any(|s| k.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_json_loses_credentials() {
        let v = redact(json!({
            "redis": "rediss://netban:hunter2@bus.example:6380/0",
            "secret_key": "abc",
            "peers": [{"host": "web-02", "lag": 3, "note": "via redis://u:p@h"}],
        }));
        let s = v.to_string();
        assert!(
            !s.contains("hunter2") && !s.contains("u:p@") && !s.contains("abc"),
            "{s}"
        );
        assert_eq!(v["peers"][0]["lag"], 3);
    }
}
