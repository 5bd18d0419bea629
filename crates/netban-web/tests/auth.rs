//! The token over real HTTP: bearer or session cookie for the API and `/metrics`, the
//! login form (the one POST), logout, `/healthz` open; the listener stays read-only; the
//! dashboard's files carry their cache and security headers.

mod common;

use common::{Fixture, Options, TOKEN, client};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, ETAG, LOCATION, SET_COOKIE};

async fn with_token() -> Fixture {
    Fixture::start(Options {
        token: true,
        ..Options::default()
    })
    .await
}

/// Logs in with `token`; the answer.
async fn login(f: &Fixture, token: &str) -> reqwest::Response {
    client()
        .post(f.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_token_the_api_and_metrics_are_401_and_healthz_stays_open() {
    let f = with_token().await;
    let c = client();
    let r = c.get(f.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("token required")
    );
    let r = c.get(f.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(f.url("/api/v1/status"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c.get(f.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for p in ["/api/v1/status", "/metrics"] {
        let r = c.get(f.url(p)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{p}");
    }
    // The dashboard itself shows the login form, not the page.
    let page = c
        .get(f.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<form method=\"post\" action=\"/login\">"),
        "{page}"
    );
    assert!(!page.contains("app.js"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_refused_and_the_right_one_opens_a_session() {
    let f = with_token().await;
    let t0 = std::time::Instant::now();
    let r = login(&f, "guess").await;
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(900),
        "slow to guess"
    );
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("That token is not the one in [web] token or token_file."));

    let r = login(&f, TOKEN).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set.starts_with("netban_session=v1."), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains(TOKEN), "the cookie is not the token");
    let cookie = set.split(';').next().unwrap().to_string();
    let c = client();
    let page = c
        .get(f.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("app.js") && page.contains("data-auth=\"token\""),
        "{page}"
    );
    for p in ["/api/v1/status", "/api/v1/active", "/metrics"] {
        let r = c
            .get(f.url(p))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{p} with the cookie");
    }
    let r = c
        .get(f.url("/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cleared = r.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("netban_session=;") && cleared.contains("Max-Age=0"));
    // A forged cookie opens nothing.
    let forged = cookie.replace("v1.", "v1.9");
    let r = c
        .get(f.url("/api/v1/status"))
        .header(COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listener_is_read_only_but_for_the_login_form() {
    let f = with_token().await;
    let c = client();
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/status"),
        (reqwest::Method::DELETE, "/"),
        (reqwest::Method::PUT, "/login"),
        (reqwest::Method::POST, "/logout"),
    ] {
        let r = c
            .request(method.clone(), f.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    // An oversized login body is refused before it is read.
    let r = c
        .post(f.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", "x".repeat(10_000)))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_everything_is_open_and_login_goes_home() {
    let f = Fixture::start(Options::default()).await;
    let c = client();
    let page = c
        .get(f.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-auth=\"open\""), "{page}");
    let r = c.get(f.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c.get(f.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_embedded_cached_by_version_and_served_under_a_strict_policy() {
    let f = Fixture::start(Options::default()).await;
    let c = client();
    let r = c.get(f.url("/")).send().await.unwrap();
    let csp = r.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "no inline code"
    );
    let start = page.find("/assets/").unwrap();
    let base = &page[start..start + "/assets/".len() + 12];
    let js = c
        .get(f.url(&format!("{base}/app.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        js.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = js.headers()[ETAG].clone();
    let again = c
        .get(f.url(&format!("{base}/app.js")))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let chart = c
        .get(f.url(&format!("{base}/vendor/chart.umd.js")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(chart.starts_with(b"/*!\n * Chart.js v4.6.1"));
    let old = c
        .get(f.url("/assets/000000000000/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
    let tpl = c
        .get(f.url(&format!("{base}/index.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(tpl.status(), StatusCode::NOT_FOUND);
    let up = c
        .get(f.url(&format!("{base}/../Cargo.toml")))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), StatusCode::NOT_FOUND);
}
