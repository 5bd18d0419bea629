//! The redis-server harness: a private server that answers, stops (refusing connections),
//! comes back empty on the same port, freezes without closing its port, and flushes.

use std::net::TcpStream;
use std::time::Duration;

use netban_testsupport::redis::{RedisOptions, RedisServer};

#[test]
fn starts_stops_comes_back_empty_and_flushes() {
    let mut r = RedisServer::start().unwrap();
    assert!(r.url().starts_with("redis://127.0.0.1:"));
    assert_eq!(r.cli(&["SET", "k", "v"]).trim(), "OK");
    assert_eq!(r.cli(&["GET", "k"]).trim(), "v");
    assert_eq!(r.cli(&["CONFIG", "GET", "save"]).lines().nth(1), Some(""));
    assert_eq!(r.keys("*"), ["k"]);
    r.flush();
    assert!(r.keys("*").is_empty());

    r.cli(&["SET", "k", "v"]);
    let port = r.port();
    r.stop();
    assert!(!r.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open"
    );
    r.start_again().unwrap();
    assert_eq!(r.port(), port);
    assert_eq!(r.cli(&["EXISTS", "k"]).trim(), "0", "no persistence");
}

#[test]
fn a_frozen_server_accepts_but_does_not_answer() {
    let r = RedisServer::start().unwrap();
    r.freeze();
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &r.port().to_string(), "-t", "1", "PING"])
        .output()
        .unwrap();
    assert!(TcpStream::connect_timeout(&r.addr().parse().unwrap(), Duration::from_secs(1)).is_ok());
    r.thaw();
    assert_ne!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
    assert_eq!(r.cli(&["PING"]).trim(), "PONG");
}

#[test]
fn a_password_is_required_and_used() {
    let r = RedisServer::start_with(RedisOptions {
        password: Some("pw-123".into()),
        ..RedisOptions::default()
    })
    .unwrap();
    assert!(r.url().starts_with("redis://:pw-123@127.0.0.1:"));
    assert_eq!(r.cli(&["PING"]).trim(), "PONG");
    let anon = std::process::Command::new("redis-cli")
        .args(["-p", &r.port().to_string(), "PING"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&anon.stdout).contains("NOAUTH"));
}
