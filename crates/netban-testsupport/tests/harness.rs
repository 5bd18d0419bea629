//! Tests of the harness itself, against a real ExaFS: the facts the ExaFS sink relies on
//! (written down in `src/exafs.rs`), and the fault proxy in front of it.

use std::time::{Duration, Instant};

use netban_testsupport::exafs::{ExaFs, ExaFsOptions, now_unix};
use netban_testsupport::http;
use netban_testsupport::jwt;
use netban_testsupport::proxy::{FaultProxy, Mode};
use serde_json::{Value, json};

/// Epoch seconds on a 10-minute mark, at least `min_ahead` seconds from now.
fn expiry(min_ahead: i64) -> i64 {
    (now_unix() + min_ahead).div_euclid(600) * 600 + 600
}

fn jwt_exp(token: &str) -> i64 {
    jwt::exp(token).expect("a JWT with an exp claim")
}

fn message(r: &http::Response) -> Value {
    r.json().expect("JSON body")["message"].clone()
}

fn post_rtbh(exafs: &ExaFs, key: &str, body: Value) -> http::Response {
    exafs
        .api(key, "POST", "/rules/rtbh", Some(&body))
        .expect("POST /rules/rtbh")
}

#[test]
fn exafs_behaves_as_documented() {
    let exafs = ExaFs::start().expect("ExaFS starts");
    eprintln!("ExaFS started in {:?}", exafs.startup_time());
    assert!(exafs.url().starts_with("http://127.0.0.1:"));
    let admin = exafs.api_key();

    // Tokens: a 30-minute exp on a UTC server.
    let token = exafs.token(admin).expect("token");
    let lifetime = jwt_exp(&token) - now_unix();
    assert!((1790..=1800).contains(&lifetime), "JWT lifetime {lifetime}");

    // Key errors on GET /auth.
    let auth = |key: &str| {
        exafs
            .request("GET", "/api/v3/auth", &[("x-api-key", key)], None)
            .expect("GET /auth")
    };
    let r = auth("no-such-key");
    assert_eq!(
        (r.status, message(&r)),
        (403, json!("auth token is invalid"))
    );
    let r = auth(exafs.expired_key());
    assert_eq!(
        (r.status, message(&r)),
        (401, json!("auth token is expired"))
    );
    let r = auth(exafs.wrong_machine_key());
    assert_eq!(
        (r.status, message(&r)),
        (403, json!("auth token is not valid from machine 127.0.0.1"))
    );

    // Token errors.
    let r = exafs
        .request("GET", "/api/v3/rules", &[], None)
        .expect("GET /rules");
    assert_eq!(
        (r.status, message(&r)),
        (401, json!("auth token is missing"))
    );
    let r = exafs
        .request(
            "GET",
            "/api/v3/rules",
            &[("x-access-token", "garbage")],
            None,
        )
        .expect("GET /rules");
    assert_eq!(
        (r.status, message(&r)),
        (403, json!("auth token is invalid"))
    );

    // Create, then the same again: 201 with the same id, expiry overwritten even if shorter.
    let long = expiry(7200);
    let short = expiry(1200);
    let body = |expires: i64| {
        json!({"ipv4": "192.0.2.1", "ipv4_mask": 32, "community": 1,
               "expires": expires, "comment": "netban \"sshd\""})
    };
    let r = post_rtbh(&exafs, admin, body(long));
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json().unwrap();
    assert_eq!(created["message"], json!(["RTBH Rule saved"]));
    let rule = &created["rule"];
    let id = rule["id"].as_u64().expect("id");
    assert_eq!(rule["expires"], json!(long));
    assert_eq!(rule["community"], json!("65535:65283"));
    assert_eq!(rule["comment"], json!("netban &quot;sshd&quot;"));
    assert_eq!(rule["rstate"], json!("active rule"));
    assert_eq!(rule["ipv6"], Value::Null);
    let r = post_rtbh(&exafs, admin, body(short));
    assert_eq!(r.status, 201, "{}", r.text());
    let again = r.json().unwrap();
    assert_eq!(again["rule"]["id"].as_u64(), Some(id));
    assert_eq!(
        again["message"],
        json!(["Existing RTBH Rule found. Expiration time was updated to new value."])
    );
    assert_eq!(again["rule"]["expires"], json!(short));

    // What ExaFS stores.
    let rules = exafs.rtbh_rules();
    assert_eq!(rules.len(), 1);
    let stored = &rules[0];
    assert_eq!(stored.id, id);
    assert_eq!(stored.prefix(), "192.0.2.1/32");
    assert_eq!(
        (stored.community_id, stored.community.as_str()),
        (1, "65535:65283")
    );
    assert_eq!(stored.expires, Some(short));
    assert_eq!(stored.comment.as_deref(), Some("netban &quot;sshd&quot;"));
    assert!(stored.is_active());
    assert_eq!(stored.user, "admin@example.com");
    assert_eq!(exafs.count_rules_for("192.0.2.1", 32), 1);

    // IPv6, and an expiry in the past: 201 but stored withdrawn.
    let r = post_rtbh(
        &exafs,
        admin,
        json!({"ipv6": "2001:db8::5", "ipv6_mask": 128, "community": 2, "expires": expiry(1200)}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json().unwrap()["rule"]["ipv4"], Value::Null);
    let r = post_rtbh(
        &exafs,
        admin,
        json!({"ipv4": "192.0.2.9", "ipv4_mask": 32, "community": 1, "expires": now_unix() - 3600}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json().unwrap()["rule"]["rstate"],
        json!("withdrawed rule")
    );

    // GET /rules: the shape, timestamps, rstate strings; every state is listed.
    let r = exafs
        .api(admin, "GET", "/rules?time_format=timestamp", None)
        .expect("GET /rules");
    assert_eq!(r.status, 200);
    let all = r.json().unwrap();
    let mut keys: Vec<&String> = all.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["flowspec_ipv4_rw", "flowspec_ipv6_rw", "rtbh_any_rw"]
    );
    let listed = all["rtbh_any_rw"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    let mine = listed.iter().find(|r| r["id"] == json!(id)).unwrap();
    assert_eq!(mine["expires"], json!(short));
    assert!(mine["created"].is_i64());
    let states: Vec<&str> = listed
        .iter()
        .map(|r| r["rstate"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"withdrawed rule"), "{states:?}");
    let r = exafs.api(admin, "GET", "/rules", None).unwrap();
    let text_expiry = r.json().unwrap()["rtbh_any_rw"][0]["expires"].clone();
    assert!(
        text_expiry
            .as_str()
            .is_some_and(|s| s.len() == 16 && &s[2..3] == "/"),
        "{text_expiry}"
    );

    // POSTing a withdrawn rule again with a future expiry re-activates it, same id.
    let withdrawn = exafs.rules_for("192.0.2.9", 32);
    assert_eq!(withdrawn.len(), 1);
    assert!(!withdrawn[0].is_active());
    let r = post_rtbh(
        &exafs,
        admin,
        json!({"ipv4": "192.0.2.9", "ipv4_mask": 32, "community": 1, "expires": long}),
    );
    assert_eq!(
        r.json().unwrap()["rule"]["id"].as_u64(),
        Some(withdrawn[0].id)
    );
    assert_eq!(r.json().unwrap()["rule"]["rstate"], json!("active rule"));

    // Read-only key.
    let r = post_rtbh(&exafs, exafs.readonly_key(), body(long));
    assert_eq!(
        (r.status, message(&r)),
        (403, json!("read only token can't perform this action"))
    );

    // Limited org: outside its ranges 400, inside 201; not allowed to delete admin's rule.
    let limited = exafs.limited_key();
    let r = exafs.api(limited, "GET", "/rules", None).unwrap();
    let mut keys: Vec<String> = r
        .json()
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "flowspec_ipv4_ro",
            "flowspec_ipv4_rw",
            "flowspec_ipv6_ro",
            "flowspec_ipv6_rw",
            "rtbh_any_ro",
            "rtbh_any_rw"
        ]
    );
    let r = post_rtbh(&exafs, limited, body(long));
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["message"], json!("error - invalid request data"));
    let expected = "IPv4 or IPv6 address must be in organization range : ['198.51.100.0/24', '2001:db8:100::/48'].";
    assert_eq!(v["validation_errors"]["ipv4"], json!([expected]));
    assert_eq!(v["validation_errors"]["ipv6"], json!([expected]));
    let r = post_rtbh(
        &exafs,
        limited,
        json!({"ipv4": "198.51.100.7", "ipv4_mask": 32, "community": 1, "expires": long}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = exafs
        .api(limited, "DELETE", &format!("/rules/rtbh/{id}"), None)
        .unwrap();
    assert_eq!(
        (r.status, message(&r)),
        (401, json!("not allowed to delete this rule"))
    );

    // Delete: 201, then 404.
    let r = exafs
        .api(admin, "DELETE", &format!("/rules/rtbh/{id}"), None)
        .unwrap();
    assert_eq!((r.status, message(&r)), (201, json!("rule deleted")));
    let r = exafs
        .api(admin, "DELETE", &format!("/rules/rtbh/{id}"), None)
        .unwrap();
    assert_eq!(
        (r.status, message(&r)),
        (404, json!(format!("rule {id} not found ")))
    );
    assert_eq!(exafs.count_rules_for("192.0.2.1", 32), 0);

    // Drift helpers.
    let foreign = exafs.create_foreign_rule("203.0.113.0/24", long, "added by hand");
    let f = exafs.rule(foreign).expect("foreign rule stored");
    assert_eq!(
        (f.prefix().as_str(), f.user.as_str()),
        ("203.0.113.0/24", "operator@example.com")
    );
    // netban POSTing the same rule gets the operator's id; owner and comment stay.
    let r = post_rtbh(
        &exafs,
        admin,
        json!({"ipv4": "203.0.113.0", "ipv4_mask": 24, "community": 1,
               "expires": short, "comment": "netban"}),
    );
    let rule = &r.json().unwrap()["rule"];
    assert_eq!(rule["id"].as_u64(), Some(foreign));
    assert_eq!(
        (&rule["comment"], &rule["user"]),
        (&json!("added by hand"), &json!("operator@example.com"))
    );
    exafs.delete_rule(foreign);
    assert!(exafs.rule(foreign).is_none());

    // Whitelist: a rule inside it is stored as "whitelisted rule".
    exafs.add_whitelist("192.0.2.128/25", long, "ours");
    let r = post_rtbh(
        &exafs,
        admin,
        json!({"ipv4": "192.0.2.130", "ipv4_mask": 32, "community": 1, "expires": long}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json().unwrap()["rule"]["rstate"],
        json!("whitelisted rule")
    );

    exafs.withdraw_expired();

    // Stop: the port refuses. Restart: same port, same data, old tokens still valid.
    let before = exafs.rtbh_rules();
    exafs.stop().unwrap();
    assert!(!exafs.is_running());
    let err = exafs.request("GET", "/api/v3/auth", &[], None).unwrap_err();
    assert!(format!("{err:#}").contains("refused"), "{err:#}");
    assert_eq!(exafs.rtbh_rules(), before, "readable while stopped");
    let t = Instant::now();
    exafs.restart().expect("restart");
    eprintln!("ExaFS restarted in {:?}", t.elapsed());
    let r = exafs
        .request(
            "GET",
            "/api/v3/test_token",
            &[("x-access-token", &token)],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(exafs.rtbh_rules(), before);
}

#[test]
fn jwt_lifetime_depends_on_the_server_time_zone() {
    let exafs = ExaFs::start_with(ExaFsOptions {
        tz: "Europe/Prague".into(),
    })
    .expect("ExaFS starts");
    let lifetime = jwt_exp(&exafs.token(exafs.api_key()).unwrap()) - now_unix();
    // CET (UTC+1): 90 minutes, CEST (UTC+2): 150 minutes.
    assert!(
        (5390..=5400).contains(&lifetime) || (8990..=9000).contains(&lifetime),
        "JWT lifetime {lifetime}"
    );
    // West of UTC the token is born expired.
    let west = ExaFs::start_with(ExaFsOptions {
        tz: "America/New_York".into(),
    })
    .expect("ExaFS starts");
    let token = west.token(west.api_key()).unwrap();
    assert!(jwt_exp(&token) < now_unix());
    let r = west
        .request("GET", "/api/v3/rules", &[("x-access-token", &token)], None)
        .unwrap();
    assert_eq!((r.status, message(&r)), (401, json!("auth token expired")));
    drop(west);

    // Epoch expiries survive the local-time storage.
    let expires = expiry(3600);
    let id = exafs.create_foreign_rule("192.0.2.77/32", expires, "tz");
    assert_eq!(exafs.rule(id).unwrap().expires, Some(expires));
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}

#[tokio::test]
async fn fault_proxy_in_front_of_exafs() {
    let exafs = ExaFs::start().expect("ExaFS starts");
    let proxy = FaultProxy::start(exafs.authority()).expect("proxy starts");
    let web = client();
    let base = format!("{}/api/v3", proxy.url());

    // Pass: token and a rule through the proxy, on one kept-alive connection.
    let token = |web: reqwest::Client| {
        let url = format!("{base}/auth");
        let key = exafs.api_key().to_string();
        async move { web.get(url).header("x-api-key", key).send().await }
    };
    let r = token(web.clone()).await.expect("auth via proxy");
    assert_eq!(r.status(), 200);
    let jwt = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = web
        .post(format!("{base}/rules/rtbh"))
        .header("x-access-token", &jwt)
        .json(&json!({"ipv4": "192.0.2.50", "ipv4_mask": 32, "community": 1, "expires": expiry(1200)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(exafs.count_rules_for("192.0.2.50", 32), 1);
    assert_eq!(proxy.count("GET", "/api/v3/auth"), 1);
    assert_eq!(proxy.count("post", "/api/v3/rules/rtbh"), 1);
    assert_eq!(proxy.forwarded_count(), 2);
    assert_eq!(proxy.connection_count(), 1, "client keep-alive");

    // 503 for the next two requests, then pass.
    proxy.reset_counts();
    proxy.set_mode(Mode::Status503 { count: Some(2) });
    for _ in 0..2 {
        assert_eq!(token(web.clone()).await.unwrap().status(), 503);
    }
    assert_eq!(proxy.mode(), Mode::Pass);
    assert_eq!(token(web.clone()).await.unwrap().status(), 200);
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.2).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(proxy.forwarded_count(), 1);

    // Down: open connections dropped, new ones refused; then back on the same port.
    proxy.set_mode(Mode::Down);
    // The pooled connection may die under the request (IncompleteMessage); the next one is
    // refused.
    token(web.clone()).await.unwrap_err();
    let err = token(web.clone()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let err = http::request(&proxy.authority(), "GET", "/", &[], None).unwrap_err();
    assert!(format!("{err:#}").contains("refused"), "{err:#}");
    proxy.set_mode(Mode::Pass);
    assert_eq!(token(web.clone()).await.unwrap().status(), 200);

    // Delay and blackhole.
    proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(token(web.clone()).await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    proxy.set_mode(Mode::Blackhole);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = token(quick).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(proxy.requests().last().map(|r| r.2), Some(0));

    // Upstream gone: 502 from the proxy.
    proxy.set_mode(Mode::Pass);
    exafs.stop().unwrap();
    assert_eq!(token(web.clone()).await.unwrap().status(), 502);
}
