//! The HTTP side of the driver: one keep-alive client, the access token (in memory, in the
//! cache file, or fresh from `GET /auth`), deadlines, and retries of transient failures.
//!
//! Every call is bounded by the caller's deadline: a request's timeout is the configured
//! `timeout` or the time left, whichever is shorter, and no retry starts that could not finish
//! in time. Connection errors, timeouts, 429 and 5xx are retried a few times within the call
//! (100 ms, 200 ms ± 50 %); everything slower is the reconcile engine's job. Posting an RTBH
//! rule twice is harmless (ExaFS updates the existing rule), and deleting twice answers 404, so
//! retrying after an answer was lost is safe.
//!
//! The API key and the token travel in headers marked sensitive and are never logged or put
//! in an error message.

use std::time::{Duration, Instant};

use netban_core::clock;
use netban_core::config::Secret;
use netban_core::retry::{Attempt, Backoff, within_deadline};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION};

use crate::error::{ApiError, ApiErrorKind, ExafsError, Transport, sanitize};
pub use crate::reply::Reply;
use crate::reply::{Capped, error_chain, read_capped, token_refused, transport_kind};
use crate::token::{Token, TokenCache};

/// How many times one call is sent when the failure is transient.
const MAX_ATTEMPTS: u32 = 3;
/// Pauses between attempts: 100 ms, 200 ms, ... each ± 50 % (netban_core::retry).
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 0.5);
/// A request is not started with less time than this left before the deadline.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(20);
/// The largest listing read (`GET /rules`: about 300 bytes per rule).
const MAX_LISTING: usize = 256 * 1024 * 1024;
/// The largest other answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Key,
    Token(&'a Token),
}

/// The ExaFS API client of one sink.
pub struct Client {
    name: String,
    /// Built on first use: setting up TLS costs milliseconds, and a sink is often built for
    /// nothing more than a look at its name.
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    roots: Vec<reqwest::Certificate>,
    concurrency: usize,
    /// `https://exafs.example.net/api/v3`
    api: String,
    key: HeaderValue,
    timeout: Duration,
    cache: TokenCache,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl Client {
    /// Sets up the client; no network I/O. `ca` (path, PEM) adds trusted roots to the system's.
    pub fn new(
        name: &str,
        url: &str,
        key: &Secret,
        ca: Option<(&std::path::Path, &[u8])>,
        timeout: Duration,
        concurrency: usize,
        cache: TokenCache,
    ) -> Result<Client, ExafsError> {
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix("/api/v3").unwrap_or(base);
        let parsed = reqwest::Url::parse(base).map_err(|e| ExafsError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ExafsError::Url {
                url: url.to_string(),
                reason: "it must be http:// or https:// with a host".into(),
            });
        }
        let mut key =
            HeaderValue::from_str(key.expose().trim()).map_err(|_| ExafsError::KeyChars)?;
        key.set_sensitive(true);
        let roots = match ca {
            Some((path, pem)) => {
                let certs =
                    reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ExafsError::CaPem {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?;
                if certs.is_empty() {
                    return Err(ExafsError::CaPem {
                        path: path.to_path_buf(),
                        reason: "no certificate found".into(),
                    });
                }
                certs
            }
            None => Vec::new(),
        };
        Ok(Client {
            name: name.to_string(),
            http: std::sync::OnceLock::new(),
            roots,
            concurrency: concurrency.max(1),
            api: format!("{base}/api/v3"),
            key,
            timeout,
            cache,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The keep-alive HTTP client, set up on first use.
    fn http(&self) -> Result<&reqwest::Client, String> {
        let built = self.http.get_or_init(|| {
            // reqwest is built without a crypto provider of its own; the first sink installs
            // ring for the whole process (a second install fails harmlessly).
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .user_agent(concat!("netban/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(self.timeout)
                .pool_idle_timeout(Duration::from_secs(50))
                .pool_max_idle_per_host(self.concurrency)
                // A redirect would turn a POST into a GET; report it instead (see error.rs).
                .redirect(reqwest::redirect::Policy::none())
                .tls_certs_merge(self.roots.iter().cloned())
                .build()
                .map_err(|e| error_chain(&e))
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// `https://exafs.example.net/api/v3`
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The most bytes read of an answer: a listing of every rule may be large, anything
    /// else is a few hundred bytes.
    fn max_body(&self, path: &str) -> usize {
        if path.starts_with("/rules?") {
            MAX_LISTING
        } else {
            MAX_ANSWER
        }
    }

    /// A token to use now: the one in memory, the cached one, or a new one from ExaFS.
    pub async fn token(&self, deadline: Instant) -> Result<Token, ApiError> {
        let mut slot = self.token.lock().await;
        let now = clock::now();
        if let Some(t) = slot.as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(t.clone());
        }
        if let Some(t) = self.cache.load().filter(|t| t.is_fresh(now)) {
            tracing::debug!(
                "{}: using the cached ExaFS token from {}",
                self.name,
                self.cache.path().display()
            );
            *slot = Some(t.clone());
            return Ok(t);
        }
        let t = self.fetch(deadline).await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// A new token from ExaFS, whatever is cached (`netban check`).
    pub async fn fresh_token(&self, deadline: Instant) -> Result<Token, ApiError> {
        let mut slot = self.token.lock().await;
        let t = self.fetch(deadline).await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// A replacement for `stale`, which ExaFS refused: fetched once, shared by every request
    /// of the batch that saw the same refusal.
    async fn refresh(&self, stale: &Token, deadline: Instant) -> Result<Token, ApiError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| *t != stale) {
            return Ok(t.clone());
        }
        let t = self.fetch(deadline).await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// `GET /auth` with the API key; stores the token in the cache file.
    async fn fetch(&self, deadline: Instant) -> Result<Token, ApiError> {
        let reply = self
            .send(Method::GET, "/auth", None, Auth::Key, deadline)
            .await?;
        if reply.status != 200 {
            return Err(reply.into_error());
        }
        // The body holds the token: it is never logged, and errors only say what is missing.
        let Some(jwt) = reply
            .body
            .as_ref()
            .and_then(|b| b.get("token"))
            .and_then(|t| t.as_str())
        else {
            return Err(reply.unexpected("no token in the answer"));
        };
        let token = Token::new(jwt.trim().to_string());
        if HeaderValue::from_str(token.expose()).is_err() {
            return Err(reply.unexpected("a token that cannot be sent back in a header"));
        }
        match token.expires() {
            Some(exp) => tracing::debug!(
                "{}: new ExaFS token, valid until {}",
                self.name,
                clock::format_utc(exp)
            ),
            None => tracing::debug!(
                "{}: new ExaFS token without an expiry claim; it will not be reused",
                self.name
            ),
        }
        if let Err(e) = self.cache.store(&token) {
            tracing::warn!(
                "{}: cannot write the token cache {}: {e}; each netban process will ask ExaFS for its own token",
                self.name,
                self.cache.path().display()
            );
        }
        Ok(token)
    }

    /// An authenticated call. When ExaFS says the token expired or is invalid, a new token is
    /// fetched once and the call repeated; other refusals are answers like any other.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<Reply, ApiError> {
        let token = self.token(deadline).await?;
        let reply = self
            .send(method.clone(), path, body, Auth::Token(&token), deadline)
            .await?;
        if !token_refused(&reply) {
            return Ok(reply);
        }
        tracing::debug!(
            "{}: ExaFS refused the token ({}); getting a new one",
            self.name,
            reply.message()
        );
        let token = self.refresh(&token, deadline).await?;
        self.send(method, path, body, Auth::Token(&token), deadline)
            .await
    }

    /// Sends a request, retrying transient failures while the deadline allows.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        auth: Auth<'_>,
        deadline: Instant,
    ) -> Result<Reply, ApiError> {
        let call = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let call = call.as_str();
        let (result, attempts) =
            within_deadline(BACKOFF, MAX_ATTEMPTS, deadline, MIN_REQUEST_TIME, |_| {
                let method = method.clone();
                async move {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left < MIN_REQUEST_TIME {
                        return Attempt::Done(Err(Err(ApiError {
                            attempts: 0,
                            ..ApiError::new(call, &self.api, ApiErrorKind::Deadline)
                        })));
                    }
                    let started = Instant::now();
                    let result = self
                        .send_once(&method, path, call, body, auth, self.timeout.min(left))
                        .await;
                    match &result {
                        Ok(r) => tracing::debug!(
                            "{}: {call} -> {} in {} ms",
                            self.name,
                            r.status,
                            started.elapsed().as_millis()
                        ),
                        Err(e) => tracing::debug!(
                            "{}: {call} failed after {} ms: {}",
                            self.name,
                            started.elapsed().as_millis(),
                            e.describe()
                        ),
                    }
                    let transient = match &result {
                        Ok(r) => r.status == 429 || r.status >= 500,
                        Err(e) => matches!(
                            e.kind,
                            ApiErrorKind::Transport {
                                cause: Transport::Connect | Transport::Timeout | Transport::Other,
                                ..
                            }
                        ),
                    };
                    match result {
                        // A 5xx answer is retried like a failure, and returned as an answer
                        // when the tries run out.
                        Ok(r) if transient => Attempt::Again(Ok(r)),
                        Err(e) if transient => Attempt::Again(Err(e)),
                        other => Attempt::Done(other.map_err(Err)),
                    }
                }
            })
            .await;
        let last = match result {
            Ok(r) => Ok(r),
            Err(Ok(r)) => Ok(r),
            Err(Err(e)) => Err(e),
        };
        match last {
            Ok(r) => Ok(Reply { attempts, ..r }),
            Err(e) => Err(ApiError {
                attempts: if e.kind == ApiErrorKind::Deadline {
                    attempts.saturating_sub(1)
                } else {
                    attempts
                },
                ..e
            }),
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        call: &str,
        body: Option<&serde_json::Value>,
        auth: Auth<'_>,
        timeout: Duration,
    ) -> Result<Reply, ApiError> {
        let http = self.http().map_err(|e| {
            ApiError::new(
                call,
                &self.api,
                ApiErrorKind::Transport {
                    cause: Transport::Tls,
                    detail: format!("cannot set up the HTTP client: {e}"),
                },
            )
        })?;
        let mut req = http
            .request(method.clone(), format!("{}{path}", self.api))
            .timeout(timeout);
        req = match auth {
            Auth::Key => req.header("x-api-key", self.key.clone()),
            Auth::Token(t) => {
                let mut v = HeaderValue::from_str(t.expose()).map_err(|_| {
                    ApiError::new(
                        call,
                        &self.api,
                        ApiErrorKind::Unexpected("a token that cannot be sent in a header".into()),
                    )
                })?;
                v.set_sensitive(true);
                req.header("x-access-token", v)
            }
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport =
            |e: reqwest::Error| ApiError::new(call, &self.api, transport_kind(&e, timeout));
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(sanitize);
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = read_capped(resp, self.max_body(path))
            .await
            .map_err(|e| match e {
                Capped::Transport(e) => transport(e),
                Capped::TooLarge(limit) => ApiError::new(
                    call,
                    &self.api,
                    ApiErrorKind::Unexpected(format!(
                        "{status} with an answer larger than {} MiB (cut off)",
                        limit >> 20
                    )),
                ),
            })?;
        let body = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        let summary = if bytes.is_empty() {
            "an empty answer"
        } else if content_type.contains("html") {
            "an HTML page"
        } else {
            "an answer that is not ExaFS JSON"
        };
        Ok(Reply {
            call: call.to_string(),
            status,
            body,
            api: self.api.clone(),
            location,
            summary,
            attempts: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            call: "GET /rules".into(),
            status,
            body: Some(body),
            api: "http://x/api/v3".into(),
            location: None,
            summary: "",
            attempts: 1,
        }
    }

    #[test]
    fn only_token_problems_trigger_a_refresh() {
        assert!(token_refused(&reply(
            401,
            serde_json::json!({"message": "auth token expired"})
        )));
        assert!(token_refused(&reply(
            403,
            serde_json::json!({"message": "auth token is invalid"})
        )));
        assert!(!token_refused(&reply(
            401,
            serde_json::json!({"message": "not allowed to delete this rule"})
        )));
        assert!(!token_refused(&reply(
            401,
            serde_json::json!({"message": "auth token is missing"})
        )));
        assert!(!token_refused(&reply(
            403,
            serde_json::json!({"message": "read only token can't perform this action"})
        )));
    }

    #[test]
    fn url_must_be_http() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "e", "x", "k");
        let key = Secret::new("k");
        let t = Duration::from_secs(1);
        assert!(Client::new("e", "ftp://x", &key, None, t, 1, cache.clone()).is_err());
        assert!(Client::new("e", "not a url", &key, None, t, 1, cache.clone()).is_err());
        let c = Client::new(
            "e",
            "https://exafs.example.net/api/v3/",
            &key,
            None,
            t,
            1,
            cache.clone(),
        )
        .unwrap();
        assert_eq!(c.api(), "https://exafs.example.net/api/v3");
        let c = Client::new("e", "http://127.0.0.1:8080/exafs", &key, None, t, 1, cache).unwrap();
        assert_eq!(c.api(), "http://127.0.0.1:8080/exafs/api/v3");
    }
}
