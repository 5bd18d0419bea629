//! The token: as `Authorization: Bearer TOKEN` (scripts, Prometheus) or as a session cookie
//! that the login form sets (browsers cannot send a bearer header with a page load).
//!
//! - The token is compared in constant time, the scheme accepted in any case (`Bearer`,
//!   `bearer`), and it is never empty (an empty token used to turn authentication off).
//! - `POST /login` (the only non-GET route) takes `token=...` from the form. A wrong token
//!   waits a second before its 401, so guessing is slow; a right one sets
//!   `netban_session=v1.<expiry>.<HMAC-SHA256(token, expiry)>` with `HttpOnly;
//!   SameSite=Strict; Path=/` for 30 days, and redirects to `/`. The cookie is not the token:
//!   it opens the dashboard and the API, cannot be turned back into the token, and every
//!   cookie dies when the token changes.
//! - No `Secure` flag: the listener speaks plain HTTP, and a TLS-terminating proxy's
//!   `X-Forwarded-Proto` is not trusted (anybody can send it). Behind an HTTPS proxy, have the
//!   proxy add it (docs/stats.md, "The dashboard behind a proxy").
//! - `GET /logout` clears the cookie.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use netban_core::config::Secret;
use ring::hmac;

use crate::App;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "netban_session";

/// How long a login lasts.
const SESSION_SECONDS: i64 = 30 * 86_400;

/// A wrong token's answer waits this long.
const WRONG_TOKEN_DELAY: Duration = Duration::from_secs(1);

/// A non-empty token.
#[derive(Clone)]
pub struct Token(Secret);

impl Token {
    /// `None` for an empty (or all-blank) token: an empty token is refused at load time.
    pub fn new(secret: Secret) -> Option<Token> {
        (!secret.expose().trim().is_empty()).then_some(Token(secret))
    }

    fn matches(&self, got: &str) -> bool {
        let want = self.0.expose().as_bytes();
        let got = got.as_bytes();
        got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token of an `Authorization` header value: `Bearer TOKEN`, scheme in any case.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The token, and the key its session cookies are signed with.
pub(crate) struct Auth {
    token: Option<Token>,
    key: Option<hmac::Key>,
    wrong_logged: AtomicI64,
}

impl Auth {
    pub fn new(token: Option<Token>) -> Auth {
        let key = token
            .as_ref()
            .map(|t| hmac::Key::new(hmac::HMAC_SHA256, t.0.expose().as_bytes()));
        Auth {
            token,
            key,
            wrong_logged: AtomicI64::new(0),
        }
    }

    /// Whether a token is configured (the page shows a logout link).
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Whether the request may see what the token protects.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let bearer_ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .is_some_and(|got| want.matches(got));
        bearer_ok || cookie(headers, COOKIE).is_some_and(|c| self.session_ok(c, now()))
    }

    fn sign(&self, expiry: i64) -> Option<String> {
        let key = self.key.as_ref()?;
        let tag = hmac::sign(key, format!("netban-web session v1 {expiry}").as_bytes());
        Some(format!("v1.{expiry}.{}", hex(tag.as_ref())))
    }

    fn session_ok(&self, value: &str, now: i64) -> bool {
        let Some(key) = &self.key else { return false };
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expiry), Some(tag)) = (expiry.parse::<i64>(), unhex(tag)) else {
            return false;
        };
        expiry > now
            && hmac::verify(
                key,
                format!("netban-web session v1 {expiry}").as_bytes(),
                &tag,
            )
            .is_ok()
    }
}

fn now() -> i64 {
    netban_core::clock::now()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The middleware in front of `/metrics` and `/api/v1/`.
pub(crate) async fn require(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if app.auth.allows(req.headers()) {
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    let mut resp = if api {
        crate::api::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token required: send Authorization: Bearer TOKEN, or log in on the dashboard",
        )
        .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "token required\n").into_response()
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// `/login` and `/logout`.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .layer(DefaultBodyLimit::max(4096))
}

async fn login_form(State(app): State<Arc<App>>) -> Response {
    if app.auth.enabled() {
        crate::assets::login_page(StatusCode::OK, None)
    } else {
        Redirect::to("/").into_response()
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(
    State(app): State<Arc<App>>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(want) = &app.auth.token else {
        return Redirect::to("/").into_response();
    };
    let got = form.map(|f| f.0.token).unwrap_or_default();
    if !want.matches(got.trim()) {
        let now = now();
        if app.auth.wrong_logged.swap(now, Ordering::Relaxed) + 60 <= now {
            tracing::warn!("web: a login with a wrong token was refused");
        }
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        return crate::assets::login_page(
            StatusCode::UNAUTHORIZED,
            Some("That token is not the one in [web] token or token_file."),
        );
    }
    let expiry = now() + SESSION_SECONDS;
    let Some(value) = app.auth.sign(expiry) else {
        return Redirect::to("/").into_response();
    };
    let set =
        format!("{COOKIE}={value}; Max-Age={SESSION_SECONDS}; Path=/; HttpOnly; SameSite=Strict");
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, set),
        ],
    )
        .into_response()
}

async fn logout() -> Response {
    let set = format!("{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict");
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, set),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_in_any_case_and_no_empty_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert!(Token::new(Secret::new("")).is_none());
        assert!(Token::new(Secret::new("  ")).is_none());
        let t = Token::new(Secret::new("s3cret")).unwrap();
        assert!(t.matches("s3cret") && !t.matches("s3cre") && !t.matches(""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn sessions_are_signed_expire_and_die_with_the_token() {
        let a = Auth::new(Token::new(Secret::new("s3cret")));
        let v = a.sign(2_000).unwrap();
        assert!(!v.contains("s3cret"));
        assert!(a.session_ok(&v, 1_999));
        assert!(!a.session_ok(&v, 2_000), "expired");
        let forged = v.replace("v1.2000.", "v1.9999.");
        assert!(!a.session_ok(&forged, 1_000), "expiry is signed");
        let other = Auth::new(Token::new(Secret::new("another")));
        assert!(
            !other.session_ok(&v, 1_000),
            "a new token ends old sessions"
        );
        for junk in ["", "v1", "v1.x.y", "v2.2000.00", "v1.2000.zz"] {
            assert!(!a.session_ok(junk, 1_000), "{junk:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("a=b; {COOKIE}={}", a.sign(now() + 60).unwrap())
                .parse()
                .unwrap(),
        );
        assert!(a.allows(&h));
        assert!(!other.allows(&h));
    }
}
