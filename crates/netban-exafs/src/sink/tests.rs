use super::*;
use netban_core::config::DriverConfig;
use netban_core::owner::Mark;
use std::path::Path;

fn env(dir: &Path) -> SinkEnv {
    SinkEnv {
        state_dir: dir.to_path_buf(),
        host_id: "web-01".into(),
        mark: Mark::new("web-01", "3f9a2c1d7e4b"),
    }
}

fn config(text: &str) -> ExafsConfig {
    let c: ExafsConfig =
        toml::from_str(&format!("url=\"http://127.0.0.1:9\"\ncommunity=1\n{text}")).unwrap();
    c.validate().unwrap();
    c
}

fn sink(text: &str) -> ExafsSink {
    let dir = tempfile::tempdir().unwrap();
    ExafsSink::new("exafs", &config(text), &env(dir.path())).unwrap()
}

fn lease(jail: &str) -> netban_core::LeaseInfo {
    netban_core::LeaseInfo {
        jail: jail.into(),
        origin: "local".into(),
        bantime: 600,
        until: Some(1000),
    }
}

#[test]
fn expiry_and_batching_come_from_the_config() {
    let s = sink("api_key = \"k\"\npermanent_expiry = 86400\n");
    assert_eq!(s.expiry_for(Until::Never, 0), Some(86_400));
    assert_eq!(s.batching().max, 64);
    assert!(s.self_expiring());
    assert_eq!(s.name(), "exafs");
}

#[test]
fn comment_is_the_mark_then_the_template() {
    let s = sink("api_key = \"k\"\n");
    let t = Target::parse("192.0.2.1").unwrap();
    assert_eq!(
        s.comment_for(&t, &lease("sshd")),
        "netban:web-01:3f9a2c1d7e4b sshd"
    );
    let s = sink("api_key = \"k\"\ncomment = \"fail2ban {jail} {ip} via {host}\"\n");
    assert_eq!(
        s.comment_for(&Target::parse("2001:db8::/48").unwrap(), &lease("nginx")),
        "netban:web-01:3f9a2c1d7e4b fail2ban nginx 2001:db8::/48 via web-01"
    );
}

#[test]
fn api_key_file_first_non_empty_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, "\n  \n  the-key \nsecond\n").unwrap();
    let c = config(&format!(
        "api_key_file = {:?}\n",
        path.display().to_string()
    ));
    assert_eq!(read_key(&c).unwrap().expose(), "the-key");
    std::fs::write(&path, "\n \n").unwrap();
    let e = ExafsSink::new("exafs", &c, &env(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("empty"),
        "{e}"
    );
    let missing = PathBuf::from("/nonexistent/netban/exafs.key");
    let c = config(&format!(
        "api_key_file = {:?}\n",
        missing.display().to_string()
    ));
    let e = ExafsSink::new("exafs", &c, &env(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/netban/exafs.key"), "{e}");
}

#[test]
fn bad_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let c = config(&format!(
        "api_key = \"k\"\nca_file = {:?}\n",
        path.display().to_string()
    ));
    let e = ExafsSink::new("exafs", &c, &env(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ca.pem"), "{e}");
}

fn rule(id: i64, address: &str, mask: u8, community: &str, comment: Option<&str>) -> Rule {
    let v = if address.contains(':') {
        serde_json::json!({"id": id, "ipv6": address, "ipv6_mask": mask, "community": community, "comment": comment, "expires": 1200, "rstate": "active rule"})
    } else {
        serde_json::json!({"id": id, "ipv4": address, "ipv4_mask": mask, "community": community, "comment": comment, "expires": 1200, "rstate": "active rule"})
    };
    Rule::from_json(&v).unwrap()
}

#[test]
fn held_keeps_our_community_prefers_the_canonical_rule_and_reads_owners() {
    let s = sink("api_key = \"k\"\n");
    let mine = "netban:web-01:3f9a2c1d7e4b sshd";
    let rules = vec![
        rule(1, "192.0.2.1", 32, "65535:65283", Some(mine)),
        rule(2, "192.0.2.2", 32, "64496:64511", Some(mine)),
        rule(3, "2001:DB8::5", 128, "65535:65283", Some("manual")),
        rule(4, "2001:db8::5", 128, "65535:65283", Some(mine)),
        rule(5, "2001:Db8::5", 128, "65535:65283", Some("other")),
        rule(6, "198.51.100.0", 24, "65535:65283", None),
        rule(
            7,
            "198.51.100.9",
            32,
            "65535:65283",
            Some("netban web-01 sshd"),
        ),
        rule(8, "192.0.2.1", 32, "65535:65283", Some(mine)),
    ];
    let held = held_entries(&rules, "65535:65283", &s.comments);
    let ids: Vec<_> = held.iter().map(|h| h.remote_id.clone().unwrap()).collect();
    assert_eq!(ids, ["1", "8", "4", "6", "7"]);
    assert_eq!(held[0].owner, Owner::This);
    assert_eq!(held[1].owner, Owner::This, "an exact duplicate follows");
    assert_eq!(held[3].owner, Owner::Foreign);
    assert_eq!(held[4].owner, Owner::Host("web-01".into()), "the 0.1 mark");
    assert_eq!(held[3].target, Target::parse("198.51.100.0/24").unwrap());
    assert_eq!(held[0].expires, Some(1200));
}
