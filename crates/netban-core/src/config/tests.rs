use super::*;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("/etc/netban/netban.toml")).map_err(|e| e.to_string())
}

#[test]
fn minimal_config_has_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/netban"));
    assert_eq!(c.guard.max_prefix_v4, 24);
    assert_eq!(c.web.listen, "127.0.0.1:9180");
    assert_eq!(c.daemon.resync_interval, 300.0);
    assert!(c.sinks.is_empty());
}

#[test]
fn unknown_top_level_key_names_key_and_line() {
    let e = parse("state_dir = \"/tmp/x\"\n\nstate_dri = \"/x\"\n").unwrap_err();
    assert!(e.contains("state_dri"), "{e}");
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn wrong_type_names_line() {
    let e = parse("[guard]\nmax_prefix_v4 = \"24\"\n").unwrap_err();
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn sink_common_keys_are_read_and_the_rest_left_to_the_driver() {
    let c = parse(
        "[[sink]]\nname=\"n\"\ntype=\"exec\"\nban=[\"/bin/true\"]\njails=[\"sshd\"]\norigins=[\"local\"]\nmin_origins=2\nbatch_window=0.5\n",
    )
    .unwrap();
    let s = &c.sinks[0].common;
    assert_eq!(
        (s.name.as_str(), s.kind.as_str(), s.min_origins),
        ("n", "exec", 2)
    );
    assert!(s.wants("sshd", "local"));
    assert!(!s.wants("postfix", "local"));
    assert!(!s.wants("sshd", "web-02"));
    assert_eq!(s.window(), Some(std::time::Duration::from_millis(500)));
    let exec: crate::exec::ExecConfig = c.sinks[0]
        .section
        .without(sink::COMMON_KEYS)
        .deserialize()
        .unwrap();
    assert_eq!(exec.ban.as_deref(), Some(&["/bin/true".to_string()][..]));
}

#[test]
fn an_unknown_key_inside_a_sink_points_at_its_own_line() {
    // Issue 6: errors inside [[sink]] used to point at the header.
    let text =
        "[[sink]]\nname = \"x\"\ntype = \"exec\"\nban = [\"/bin/true\"]\n\nbann = [\"oops\"]\n";
    let c = parse(text).unwrap();
    let e = c.sinks[0]
        .define::<crate::exec::ExecConfig>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("bann") && e.contains("line 6"), "{e}");
    let text = "[[sink]]\nname = \"x\"\ntype = \"exec\"\nban = [\"/bin/true\"]\ntimeout = \"10\"\n";
    let e = parse(text).unwrap().sinks[0]
        .define::<crate::exec::ExecConfig>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 5"), "{e}");
}

#[test]
fn bad_values_are_named() {
    let e = parse("[[sink]]\nname=\"n\"\ntype=\"exec\"\nban=[\"/bin/echo\",\"{jial}\"]\n").unwrap();
    let e = e.sinks[0]
        .define::<crate::exec::ExecConfig>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("{jial}"), "{e}");
    assert!(
        parse("[guard]\nallow = [\"10.0.0.0/33\"]\n")
            .unwrap_err()
            .contains("guard.allow")
    );
    assert!(
        parse("[[sink]]\nname=\"a b\"\ntype=\"exec\"\n")
            .unwrap_err()
            .contains("sink name")
    );
    assert!(
        parse("[[sink]]\nname=\"a\"\ntype=\"exec\"\n[[sink]]\nname=\"a\"\ntype=\"exec\"\n")
            .unwrap_err()
            .contains("unique")
    );
    assert!(parse("sink = 5\n").unwrap_err().contains("[[sink]]"));
}

#[test]
fn huge_numbers_are_refused_not_a_panic() {
    // Issue 6: 1e300 passed `check` and then overflowed a Duration.
    for text in [
        "[daemon]\nresync_interval = 1e300\n",
        "[daemon]\nresync_interval = 0.1\n",
        "[reconcile]\nretry_max = inf\n",
        "[reconcile]\ninline_deadline = -1\n",
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains("must be a number of seconds"), "{text}: {e}");
    }
    let c = parse("[[sink]]\nname=\"n\"\ntype=\"exec\"\nbatch_window=1e300\n");
    assert!(c.unwrap_err().contains("batch_window"));
}

#[test]
fn an_empty_web_token_is_refused() {
    // Issue 8 of the hardening list: an empty token turned authentication off.
    let e = parse("[web]\ntoken = \"\"\n").unwrap_err();
    assert!(e.contains("web.token is empty"), "{e}");
    assert!(parse("[web]\ntoken = \"t\"\ntoken_file = \"/x\"\n").is_err());
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = parse("[web]\ntoken = \"sekrit-token\"\n").unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("sekrit-token"), "{dbg}");
    assert!(dbg.contains("<redacted>"));
    assert!(c.has_inline_secret(&[]));
    // A section's Debug says where it is, not what it holds.
    let c = parse("[[sink]]\nname=\"x\"\ntype=\"exafs\"\napi_key=\"k3y\"\n").unwrap();
    assert!(!format!("{c:?}").contains("k3y"));
}

#[test]
fn other_crates_sections_are_kept_for_them() {
    let c =
        parse("[stats]\nbackend = \"sqlite\"\n[cluster]\nredis = \"redis://a:b@h/0\"\n").unwrap();
    assert!(c.stats.is_some());
    assert!(
        c.has_inline_secret(&[]),
        "a password in a URL is an inline secret"
    );
}

#[test]
fn host_id_is_checked() {
    assert!(
        parse("host_id = \"web 01\"\n")
            .unwrap_err()
            .contains("host_id")
    );
    assert_eq!(parse("host_id = \"web-01\"\n").unwrap().host_id(), "web-01");
}
