//! An answer from ExaFS: its status and JSON body as [`Reply`], read with a size cap, and
//! what a failed request means (connection, timeout, TLS) in the operator's terms.

use std::time::Duration;

use crate::error::{ApiError, ApiErrorKind, Transport, sanitize};

/// An HTTP answer from ExaFS (any status), after retries. `Debug` leaves the body out: the
/// answer to `GET /auth` holds the token.
#[derive(Clone)]
pub struct Reply {
    /// `POST /rules/rtbh`, for messages.
    pub call: String,
    pub status: u16,
    /// The body, when it is JSON.
    pub body: Option<serde_json::Value>,
    pub(crate) api: String,
    pub(crate) location: Option<String>,
    pub(crate) summary: &'static str,
    pub(crate) attempts: u32,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("call", &self.call)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Reply {
    /// ExaFS's `message` field, or what the answer looked like when it has none.
    pub fn message(&self) -> String {
        match self.body.as_ref().and_then(|b| b.get("message")) {
            Some(serde_json::Value::String(s)) => sanitize(s),
            Some(serde_json::Value::Array(items)) => sanitize(
                &items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Some(other) => sanitize(&other.to_string()),
            None => self.summary.to_string(),
        }
    }

    /// This answer as an error.
    pub fn into_error(self) -> ApiError {
        let validation = self
            .body
            .as_ref()
            .and_then(|b| b.get("validation_errors"))
            .and_then(crate::error::flatten_validation);
        let kind = ApiErrorKind::Status {
            status: self.status,
            message: self.message(),
            validation,
            location: self.location.clone(),
        };
        ApiError {
            call: self.call,
            api: self.api,
            kind,
            attempts: self.attempts,
        }
    }

    /// An error for a success status whose body is not what ExaFS sends.
    pub fn unexpected(&self, what: &str) -> ApiError {
        ApiError::new(
            &self.call,
            &self.api,
            ApiErrorKind::Unexpected(format!("{} with {what}", self.status)),
        )
    }
}

/// Why a body was not read.
pub(crate) enum Capped {
    Transport(reqwest::Error),
    TooLarge(usize),
}

/// Reads a body up to `limit` bytes, chunk by chunk: a huge answer (issue 6 saw 1.5 GB) is
/// cut off instead of filling memory, and the request's timeout bounds the time.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, Capped> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Capped::TooLarge(limit));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Transport)? {
        if buf.len() + chunk.len() > limit {
            return Err(Capped::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// True for the answers that mean "this token is no good" (not "you may not do this").
pub(crate) fn token_refused(reply: &Reply) -> bool {
    let message = reply.message();
    (reply.status == 401 && message == "auth token expired")
        || (reply.status == 403 && message == "auth token is invalid")
}

pub(crate) fn transport_kind(e: &reqwest::Error, timeout: Duration) -> ApiErrorKind {
    let detail = error_chain(e);
    let cause = if e.is_timeout() {
        return ApiErrorKind::Transport {
            cause: Transport::Timeout,
            detail: format!("timed out after {:.1}s", timeout.as_secs_f64()),
        };
    } else if is_tls(e) {
        Transport::Tls
    } else if e.is_connect() {
        Transport::Connect
    } else {
        Transport::Other
    };
    ApiErrorKind::Transport { cause, detail }
}

/// True when a rustls error is somewhere in the chain. io::Error hides its inner error from
/// `source()`, and the TLS connector nests io::Errors two deep, so look inside those too.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let mut inner = Some(err);
        while let Some(i) = inner {
            if i.is::<rustls::Error>() {
                return true;
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|r| r as &(dyn std::error::Error + 'static));
        }
        cur = err.source();
    }
    false
}

/// The causes of an error, innermost last, without reqwest's own "error sending request for
/// url (...)" wrapper; one line.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty()
            && !parts.iter().any(|p| p.contains(&text))
            && text != "client error (Connect)"
        {
            parts.push(text);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    sanitize(&parts.join(": "))
}
