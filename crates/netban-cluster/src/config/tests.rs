//! `[cluster]` as DESIGN.md shows it, defaults, and errors that name the key.

use super::*;

fn parse(text: &str) -> Result<ClusterConfig, toml::de::Error> {
    toml::from_str(text)
}

const KEY: &str = "ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=";

#[test]
fn design_example_parses() {
    let c = parse(&format!(
        r#"
redis = "rediss://netban:secret@redis.example.net:6379/0"
prefix = "netban"
key_file = "/etc/netban/cluster.key"
retention = 604800
revoke_from = ["ops-01"]
[peers]
web-02 = "{KEY}"
ops-01 = "{KEY}"
[limits]
bans_per_minute = 120
active_per_origin = 20000
[fanout]
server = "127.0.0.1:1986"
channel = "Fail2ban"
publish = true
receive = true
jails = ["sshd"]
bantime = 3600
"#
    ))
    .unwrap();
    c.validate().unwrap();
    assert!(c.may_revoke("ops-01"));
    assert!(!c.may_revoke("web-02"));
    let f = c.fanout.as_ref().unwrap();
    assert!(f.wants("sshd", "banip") && !f.wants("postfix", "banip"));
    assert!(
        !format!("{c:?}").contains("secret"),
        "the password never shows"
    );
}

#[test]
fn defaults() {
    let c = parse("redis = \"redis://127.0.0.1/0\"").unwrap();
    c.validate().unwrap();
    assert_eq!(c.prefix, "netban");
    assert_eq!(c.retention, 604_800);
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.lock_ttl(), Duration::from_secs(15));
    assert!(c.fanout.is_none());
    let f = parse("[fanout]").unwrap().fanout.unwrap();
    assert_eq!(f, FanoutConfig::default());
    assert!(f.publish && f.receive && f.bantime == 3600);
}

#[test]
fn unknown_keys_are_errors() {
    for text in [
        "retension = 3",
        "[limits]\nbans = 1",
        "[fanout]\nhost = \"x\"",
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}

#[test]
fn errors_name_the_key() {
    let redis = "redis = \"redis://127.0.0.1/0\"\n";
    let cases = [
        ("", "redis"),
        ("redis = \"http://u:hunter2@x\"", "redis"),
        (&format!("{redis}prefix = \"a b\"") as &str, "prefix"),
        (&format!("{redis}key_file = \"cluster.key\""), "key_file"),
        (&format!("{redis}retention = 0"), "retention"),
        (&format!("{redis}lock_ttl = 0.1"), "lock_ttl"),
        (
            &format!("{redis}[peers]\nweb-02 = \"ssh-ed25519 AAAA\""),
            "peers.web-02",
        ),
        (&format!("{redis}[peers]\nlocal = \"{KEY}\""), "peers.local"),
        (&format!("{redis}revoke_from = [\"ops-01\"]"), "revoke_from"),
        (
            &format!("{redis}[limits]\nbans_per_minute = 0"),
            "limits.bans_per_minute",
        ),
        (
            &format!("{redis}[fanout]\nserver = \"nohost\""),
            "fanout.server",
        ),
        (
            &format!("{redis}[fanout]\nchannel = \"a!b\""),
            "fanout.channel",
        ),
        (
            &format!("{redis}[fanout]\njails = [\"$(id)\"]"),
            "fanout.jails",
        ),
        (
            &format!("{redis}[fanout]\nactions = [\"rm\"]"),
            "fanout.actions",
        ),
        (&format!("{redis}[fanout]\nbantime = 0"), "fanout.bantime"),
    ];
    for (text, key) in cases {
        let e = parse(text).unwrap().validate().unwrap_err();
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    // fanout alone is a bus.
    parse("[fanout]").unwrap().validate().unwrap();
}

#[test]
fn redis_url_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("redis.url");
    std::fs::write(&f, "\n rediss://u:p@h:6379/0 \n").unwrap();
    let c = ClusterConfig {
        redis_file: Some(f),
        ..ClusterConfig::default()
    };
    c.validate().unwrap();
    assert_eq!(c.redis_url().unwrap().expose(), "rediss://u:p@h:6379/0");
}

#[test]
fn from_section_names_the_line() {
    let text = "host_id = \"a\"\n[cluster]\nredis = \"redis://127.0.0.1/0\"\nretention = 0\n";
    let cfg =
        netban_core::config::Config::parse(text, Path::new("/etc/netban/netban.toml")).unwrap();
    let e = ClusterConfig::from_section(cfg.cluster.as_ref().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("retention"), "{e}");
    let text = "[cluster]\nredis = \"redis://127.0.0.1/0\"\nbogus = 1\n";
    let cfg = netban_core::config::Config::parse(text, Path::new("/x.toml")).unwrap();
    let e = ClusterConfig::from_section(cfg.cluster.as_ref().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
}
