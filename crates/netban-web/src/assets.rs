//! The dashboard's files (`assets/`), embedded in the binary with rust-embed (also in debug
//! builds), and the headers every answer carries.
//!
//! - Files are served under `/assets/<version>/<path>`, where `<version>` is a hash over
//!   every embedded file: the name changes whenever any file does, so they are cached for a
//!   year (`immutable`), and the modules' relative imports stay inside one version. Every
//!   file also has an `ETag` (its SHA-256) for `If-None-Match`.
//! - `/` is `index.html` (or the login form, when a token is set and the request carries
//!   neither the token nor a session cookie), never cached, with the version filled in.
//! - Every answer has a strict Content-Security-Policy (`default-src 'self'`, no inline
//!   script or style, no frames, forms only to this origin), `nosniff`, no referrer.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ring::digest;
use rust_embed::RustEmbed;

use crate::App;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Files;

/// The Content-Security-Policy of every answer.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// A hash over every embedded file: the `<version>` of asset URLs.
pub(crate) fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut names: Vec<_> = Files::iter().collect();
        names.sort();
        let mut ctx = digest::Context::new(&digest::SHA256);
        for n in names {
            if let Some(f) = Files::get(&n) {
                ctx.update(n.as_bytes());
                ctx.update(&f.metadata.sha256_hash());
            }
        }
        ctx.finish().as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{version}/{*path}", get(asset))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("md" | "txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn asset(Path((v, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    // Templates are only served filled in, at `/` and `/login`.
    let file = (v == version() && !path.ends_with(".html"))
        .then(|| Files::get(&path))
        .flatten();
    let Some(file) = file else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let etag = format!(
        "\"{}\"",
        file.metadata.sha256_hash()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let cache = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            "public, max-age=31536000, immutable".to_string(),
        ),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(header::CONTENT_TYPE, content_type(&path).to_string())],
        cache,
        file.data.into_owned(),
    )
        .into_response()
}

/// A template with `{{name}}` placeholders filled in (values are HTML-escaped).
fn page(name: &str, vars: &[(&str, &str)]) -> String {
    let text = Files::get(name)
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default();
    let base = format!("/assets/{}", version());
    let mut out = text.replace("{{assets}}", &base);
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), &escape(v));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The login form, with an optional message (a wrong token).
pub(crate) fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    let body = page(
        "login.html",
        &[
            ("message", message.unwrap_or("")),
            (
                "message_class",
                if message.is_some() { "error" } else { "hidden" },
            ),
        ],
    );
    html(status, body)
}

async fn index(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !app.auth.allows(&headers) {
        return login_page(StatusCode::OK, None);
    }
    let auth = if app.auth.enabled() { "token" } else { "open" };
    html(StatusCode::OK, page("index.html", &[("auth", auth)]))
}

/// Adds the security headers to every answer.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_embedded_and_templates_fill_in() {
        for f in [
            "index.html",
            "login.html",
            "app.js",
            "style.css",
            "vendor/chart.umd.js",
            "vendor/LICENSE.md",
        ] {
            assert!(Files::get(f).is_some(), "{f} is embedded");
        }
        let p = page("index.html", &[("auth", "<x>")]);
        assert!(p.contains(&format!("/assets/{}/app.js", version())));
        assert!(!p.contains("{{"), "every placeholder is filled");
        assert_eq!(version().len(), 12);
        assert_eq!(
            escape("<a href=\"x\">'"),
            "&lt;a href=&quot;x&quot;&gt;&#39;"
        );
    }
}
