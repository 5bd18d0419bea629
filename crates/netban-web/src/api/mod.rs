//! The JSON API under `/api/v1/` (docs/stats.md, "JSON API", is its contract).
//!
//! - [`stats`]: `stats/report|asns|networks|offenders|hosts|summary` over netban-stats;
//!   answers for windows over 30 days are cached a minute ([`cache`]).
//! - [`active`]: what is blocked now: every live target, its leases, and per sink whether
//!   it is in place, pending, failing or being removed; searched, sorted and paged here.
//! - [`status`]: `status` (sinks, kept entries, guard problems, refusals, uptime) and
//!   `cluster` (the cluster's own status, 404 when clustering is off).
//!
//! Every answer is JSON, `Cache-Control: no-store`, and carries no secret: error texts and
//! sinks' last errors pass through `redact_userinfo` (a URL's `user:password@` goes). Errors
//! are `{"error": "..."}` with 400 (a bad parameter), 401 (no token), 404 (the feature is
//! off), 503 (a backend that does not answer).

pub(crate) mod active;
pub(crate) mod cache;
pub(crate) mod stats;
pub(crate) mod status;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes_body::Json;

use crate::App;

/// The routes under `/api/v1`.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/stats/report", get(stats::report))
        .route("/stats/asns", get(stats::asns))
        .route("/stats/networks", get(stats::networks))
        .route("/stats/offenders", get(stats::offenders))
        .route("/stats/hosts", get(stats::hosts))
        .route("/stats/summary", get(stats::summary))
        .route("/active", get(active::active))
        .route("/status", get(status::status))
        .route("/cluster", get(status::cluster))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; the endpoints are listed in docs/stats.md (JSON API)",
    )
}

/// An error answer: `{"error": "..."}` with a status.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: netban_core::config::redact_userinfo(&message.into()),
        }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request's task failed; this is a bug, please report it",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, Json::value(&body)).into_response()
    }
}

/// JSON bodies, serialised once (the cache keeps them as bytes).
pub(crate) mod bytes_body {
    use axum::http::header;
    use axum::response::{IntoResponse, Response};

    /// A serialised JSON body.
    #[derive(Debug, Clone)]
    pub struct Json(pub std::sync::Arc<[u8]>);

    impl Json {
        pub fn value<T: serde::Serialize + ?Sized>(v: &T) -> Json {
            Json(
                serde_json::to_vec(v)
                    .unwrap_or_else(|_| b"null".to_vec())
                    .into(),
            )
        }
    }

    impl IntoResponse for Json {
        fn into_response(self) -> Response {
            (
                [(header::CONTENT_TYPE, "application/json")],
                self.0.to_vec(),
            )
                .into_response()
        }
    }
}

pub(crate) use bytes_body::Json as JsonBody;

/// The query string as a map (the last of repeated keys wins); a malformed one is a 400.
pub(crate) type RawQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

pub(crate) fn query(q: RawQuery) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::bad(format!("the query string cannot be read: {e}")))
}

/// An integer parameter within `min..=max`, `default` when absent.
pub(crate) fn int_param(
    q: &HashMap<String, String>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ApiError::bad(format!("{name} must be an integer from {min} to {max}"))),
    }
}

/// Adds `Cache-Control: no-store` (answers change every moment and may be private).
pub(crate) fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_with_the_documented_message() {
        let q: HashMap<String, String> = [("days".to_string(), "0".to_string())].into();
        assert_eq!(
            int_param(&q, "days", 30, 1, 3660).unwrap_err().message,
            "days must be an integer from 1 to 3660"
        );
        let q: HashMap<String, String> = [("days".to_string(), " 7".to_string())].into();
        assert_eq!(int_param(&q, "days", 30, 1, 3660).unwrap(), 7);
        assert_eq!(int_param(&HashMap::new(), "limit", 10, 1, 100).unwrap(), 10);
        let e = ApiError::unavailable("redis://netban:hunter2@db:6379 refused");
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
