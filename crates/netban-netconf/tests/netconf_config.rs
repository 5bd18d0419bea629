//! The NETCONF sink's configuration as an operator writes it: TOML, devices, validation
//! messages that name the key, warnings, and no secret in any output.

use netban_netconf::presets::{Ownership, Preset};
use netban_netconf::{Datastore, NetconfConfig, NetconfSink};

const FP: &str = "SHA256:pUheMeOU8mLxbL9G6rDUXwDQA1Ymc4DmPPFzvU0kiHI";

fn parse(text: &str) -> Result<NetconfConfig, String> {
    let c: NetconfConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    c.validate()?;
    Ok(c)
}

const BASE: &str = r#"
user = "netban"
key_file = "/etc/netban/netconf_ed25519"
known_hosts = "/etc/netban/netconf_known_hosts"
preset = "blocklist"
"#;

#[test]
fn devices_expand_into_one_sink_each() {
    let c = parse(&format!(
        r#"{BASE}
port = 2830
devices = [
  {{ name = "r1", host = "192.0.2.10" }},
  {{ name = "r2", host = "2001:db8::2", port = 830, host_key = "{FP}" }},
]"#
    ))
    .unwrap();
    let sinks = c.expand("edge");
    assert_eq!(sinks.len(), 2);
    let (n1, c1) = &sinks[0];
    assert_eq!(n1, "edge.r1");
    assert_eq!(c1.host.as_deref(), Some("192.0.2.10"));
    assert_eq!(c1.port, 2830);
    assert!(c1.devices.is_empty());
    c1.validate().unwrap();
    let (n2, c2) = &sinks[1];
    assert_eq!(n2, "edge.r2");
    assert_eq!(c2.port, 830);
    assert_eq!(c2.host_key.as_deref(), Some(FP));
    assert_eq!(c2.known_hosts, None, "a device's pin replaces known_hosts");
    c2.validate().unwrap();

    let single = parse(&format!("{BASE}host = \"r1.example.net\"\n")).unwrap();
    let one = single.expand("edge");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, "edge");
    assert_eq!(single.port, 830);
    assert_eq!(single.datastore, Datastore::Candidate);
    assert!(single.lock && single.discard_changes && single.base11);
}

#[test]
fn mistakes_are_named() {
    let cases = [
        (BASE.to_string(), "host (or devices"),
        (format!("{BASE}host = \"r1\"\ndevices = [{{ name = \"a\", host = \"b\" }}]\n"), "not both"),
        (format!("{BASE}host = \"[::1]:830\"\n"), "host = \"[::1]:830\""),
        (format!("{BASE}devices = [{{ name = \"a b\", host = \"x\" }}]\n"), "devices: name \"a b\""),
        (
            format!("{BASE}devices = [{{ name = \"a\", host = \"x\" }}, {{ name = \"a\", host = \"y\" }}]\n"),
            "two devices are named \"a\"",
        ),
        (
            "host = \"r1\"\nuser = \"u\"\nknown_hosts = \"/k\"\npreset = \"blocklist\"\n".into(),
            "password_file or key_file is required",
        ),
        (
            "host = \"r1\"\nuser = \"u\"\nkey_file = \"/k\"\npreset = \"blocklist\"\n".into(),
            "known_hosts or host_key is required",
        ),
        (
            format!("{BASE}host = \"r1\"\nhost_key = \"{FP}\"\n"),
            "known_hosts or host_key, not both",
        ),
        (
            "host = \"r1\"\nuser = \"u\"\nkey_file = \"/k\"\nhost_key = \"MD5:aa\"\npreset = \"blocklist\"\n".into(),
            "host_key = \"MD5:aa\" must be a SHA256 fingerprint",
        ),
        (format!("{BASE}host = \"r1\"\nrpc_timeout = 0\n"), "rpc_timeout = 0"),
        (format!("{BASE}host = \"r1\"\nmax_batch = 0\n"), "max_batch = 0"),
        (format!("{BASE}host = \"r1\"\nlist_name = \"x\"\n"), "list_name is used only by preset"),
        (
            format!("{BASE}host = \"r1\"\nadd = \"<entry><prefix>{{prefix}}</prefix></entry>\"\n"),
            "add must write {mark}",
        ),
        (
            format!("{BASE}host = \"r1\"\nadd = \"<entry><prefix>{{jial}}</prefix></entry>\"\n"),
            "add: unknown placeholder {jial}",
        ),
        (
            format!("{BASE}host = \"r1\"\nremove = \"<entry><prefix>{{prefix}}</entry>\"\n"),
            "remove: not well-formed XML",
        ),
        (
            format!("{BASE}host = \"r1\"\nremove = \"<entry/>\"\n"),
            "remove must contain the target",
        ),
        (
            "host = \"r1\"\nuser = \"u\"\nkey_file = \"/k\"\nknown_hosts = \"/k\"\n".into(),
            "config is required without a preset",
        ),
        (format!("{BASE}host = \"r1\"\nconfig = \"<a></a>\"\n"), "config: must contain {entries} exactly once"),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err();
        assert!(e.contains(want), "{text}\n=> {e}\n(wanted {want:?})");
    }
    // Unknown keys are errors (core adds the line number).
    let e = parse(&format!("{BASE}host = \"r1\"\nlokc = true\n")).unwrap_err();
    assert!(e.contains("lokc"), "{e}");
    let e = parse(&format!("{BASE}host = \"r1\"\npreset = \"cisco\"\n")).unwrap_err();
    assert!(e.contains("cisco") || e.contains("duplicate"), "{e}");
}

#[test]
fn explicit_templates_and_presets_with_names() {
    let c = parse(
        r#"host = "r1"
user = "u"
password_file = "/p"
known_hosts = "/k"
config = '<acl xmlns="urn:example:acl">{entries}</acl>'
add = '<rule><src>{prefix}</src><descr>{mark} {jail} until {until}</descr></rule>'
remove = '<rule nc:operation="delete"><src>{prefix}</src></rule>'
list_filter = '<acl xmlns="urn:example:acl"/>'
entry_element = "rule"
prefix_element = "src"
comment_element = "descr"
"#,
    )
    .unwrap();
    let l = c.layout().unwrap();
    assert_eq!(l.ownership, Ownership::Mark);
    assert_eq!(l.entry_element, "rule");

    let c = parse(&format!(
        "host = \"r1\"\nuser = \"u\"\nkey_file = \"/k\"\nhost_key = \"{FP}\"\npreset = \"128t\"\nlist_name = \"blocked-sources\"\nneighborhood = \"wan\"\n"
    ))
    .unwrap();
    assert_eq!(c.preset, Some(Preset::T128));
    let l = c.layout().unwrap();
    assert_eq!(l.ownership, Ownership::List);
    assert!(
        l.list_filter
            .as_deref()
            .unwrap()
            .contains("<authy:name>blocked-sources</authy:name>")
    );
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.contains("ownership = \"list\""))
    );
}

#[test]
fn warn_worthy_modes_are_reported() {
    let c = parse(&format!("{BASE}host = \"r1\"\nlock = false\n")).unwrap();
    let w = c.warnings().join("\n");
    assert!(
        w.contains("lock = false with the candidate datastore"),
        "{w}"
    );
    assert!(w.contains("discard_changes = true without lock"), "{w}");
    let c = parse(&format!("{BASE}host = \"r1\"\n")).unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // The issue's spelling, the operation's own name, means the same key.
    let c = parse(&format!(
        "{BASE}host = \"r1\"\nlock = false\ndiscard-changes = false\n"
    ))
    .unwrap();
    assert!(!c.discard_changes);
    assert!(!c.warnings().join("\n").contains("discard_changes"));
}

#[test]
fn secrets_come_from_files_and_stay_out_of_errors_and_debug() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret-Passw0rd\nignored second line\n").unwrap();
    let c = parse(&format!(
        "host = \"r1\"\nuser = \"u\"\npassword_file = {pw:?}\nhost_key = \"{FP}\"\npreset = \"blocklist\"\n"
    ))
    .unwrap();
    let login = netban_netconf::build::login(&c).unwrap();
    let dbg = format!("{login:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    let env = netban_core::config::SinkEnv {
        state_dir: dir.path().into(),
        host_id: "web-01".into(),
        mark: netban_core::owner::Mark::new("web-01", "00"),
    };
    assert!(NetconfSink::new("edge", &c, &env).is_ok());

    let key = dir.path().join("key");
    std::fs::write(&key, "not a key").unwrap();
    let mut c2 = c.clone();
    c2.password_file = None;
    c2.key_file = Some(key.clone());
    let e = NetconfSink::new("edge", &c2, &env)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("edge: key_file ") && e.contains("cannot load it"),
        "{e}"
    );
    c2.key_file = Some(dir.path().join("missing"));
    let e = NetconfSink::new("edge", &c2, &env)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("key_file") && e.contains("cannot open it"),
        "{e}"
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let mut c3 = c.clone();
    c3.password_file = Some(empty);
    let e = NetconfSink::new("edge", &c3, &env)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("the first line is empty"), "{e}");
}
