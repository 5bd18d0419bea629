//! `[cluster]` as DESIGN.md and docs/cluster.md show it, defaults, and errors that name the key.

use super::*;

fn parse(text: &str) -> Result<ClusterConfig, toml::de::Error> {
    toml::from_str(text)
}

const KEY: &str = "ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=";

/// DESIGN.md's `[cluster]` example, as written there (its `BASE64...` key made real).
const DESIGN_EXAMPLE: &str = r#"
[cluster]
redis = "rediss://netban:secret@redis.example.net:6379/0"   # or redis_file = "/etc/netban/redis.url"
prefix = "netban"                        # Redis key prefix
key_file = "/etc/netban/cluster.key"     # this host's Ed25519 secret key (0600)
retention = 604800                       # stream retention, seconds; older: snapshot
revoke_from = ["ops-01"]                 # optional; default: every trusted peer
[cluster.peers]                          # trusted peers: host id -> public key
web-02 = "ed25519:BASE64..."
[cluster.limits]
bans_per_minute = 120                    # per origin
active_per_origin = 20000
[cluster.fanout]                         # optional, unsigned, off unless present
server = "127.0.0.1:1986"
channel = "Fail2ban"
publish = true
receive = true
jails = ["sshd"]                         # receive filter; clusterd messages carry no bantime:
bantime = 3600                           # the bantime given to received bans
"#;

#[test]
fn design_example_parses() {
    let text = DESIGN_EXAMPLE.replace("ed25519:BASE64...", KEY);
    let cfg =
        netban_core::config::Config::parse(&text, Path::new("/etc/netban/netban.toml")).unwrap();
    let c = ClusterConfig::from_section(cfg.cluster.as_ref().unwrap()).unwrap();
    // ops-01 is not a trusted peer: accepted, with a warning, and its revokes never verify.
    assert_eq!(
        c.warnings("web-01"),
        [
            "revoke_from names ops-01, which is not under [cluster.peers]: no revoke from it can be verified, so none will be accepted"
        ]
    );
    assert!(c.warnings("ops-01").is_empty(), "this host itself is fine");
    assert!(c.may_revoke("ops-01"));
    assert!(!c.may_revoke("web-02"));
    let f = c.fanout.as_ref().unwrap();
    assert!(f.wants("sshd", "banip") && !f.wants("postfix", "banip"));
    assert!(
        !format!("{c:?}").contains("secret"),
        "the password never shows"
    );
}

/// docs/cluster.md's example, the one operators copy, is accepted with the same warning.
#[test]
fn docs_example_parses() {
    let doc = include_str!("../../../../docs/cluster.md");
    let start = doc
        .find("```toml\n[cluster]")
        .expect("docs/cluster.md has the example")
        + 8;
    let len = doc[start..].find("```").expect("the example ends");
    let text = doc[start..start + len].replace("ed25519:BASE64...", KEY);
    let cfg = netban_core::config::Config::parse(&text, Path::new("/x.toml")).unwrap();
    let c = ClusterConfig::from_section(cfg.cluster.as_ref().unwrap()).unwrap();
    assert_eq!(c.warnings("web-01").len(), 1, "{:?}", c.warnings("web-01"));
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
        (&format!("{redis}revoke_from = [\"ops 01\"]"), "revoke_from"),
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
