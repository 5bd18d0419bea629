//! `netban stats` end to end: bans through the CLI, counted from the outbox with countries and
//! ASNs from the MaxMind test databases, exactly as DESIGN.md's counting rule says.

use netban_testsupport::config::Config;
use netban_testsupport::runner::Netban;

fn geoip(file: &str) -> String {
    format!(
        "{}/../netban-stats/testdata/geoip/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn netban() -> Netban {
    with(&format!(
        "host_id = \"web-01\"\n[guard]\nprotect_own_addresses = false\n[stats]\ncountry_db = {:?}\nasn_db = {:?}\n",
        geoip("GeoLite2-Country-Test.mmdb"),
        geoip("GeoLite2-ASN-Test.mmdb")
    ))
}

fn with(extra: &str) -> Netban {
    Netban::new(env!("CARGO_BIN_EXE_netban"), &Config::new().raw(extra))
}

fn stats(nb: &Netban, days: &str) -> serde_json::Value {
    let out = nb.expect(0, &["stats", "--days", days, "--json"]);
    serde_json::from_slice(&out.stdout).expect("stats --json is JSON")
}

#[test]
fn stats_count_each_ban_once_by_country_jail_and_asn() {
    let nb = netban();
    nb.expect(0, &["ban", "--jail", "sshd", "81.2.69.160"]);
    nb.expect(0, &["ban", "--jail", "sshd", "2001:218::1"]);
    nb.expect(0, &["ban", "--jail", "postfix", "89.160.20.128"]);
    nb.expect(0, &["ban", "--jail", "sshd", "1.2.3.4"]);
    // The same address banned again while banned: an extend, not a new ban.
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--bantime", "7200", "81.2.69.160"],
    );
    // A restored ban (fail2ban restart) never counts, even for an address netban did not have.
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--restored", "1", "81.2.69.161"],
    );
    // Unbans change no history; a ban after the unban is a new ban.
    nb.expect(0, &["unban", "--jail", "sshd", "1.2.3.4"]);
    nb.expect(0, &["ban", "--jail", "sshd", "1.2.3.4"]);
    let v = stats(&nb, "7");
    assert_eq!(v["days"], 7);
    assert_eq!(v["total"], 5, "{v}");
    assert_eq!(v["targets"], 4, "{v}");
    assert_eq!(v["by_country"]["GB"], 1, "{v}");
    assert_eq!(v["by_country"]["JP"], 1, "{v}");
    assert_eq!(v["by_country"]["SE"], 1, "{v}");
    assert_eq!(v["by_country"]["unknown"], 2, "1.2.3.4, twice: {v}");
    assert_eq!(v["by_jail"]["sshd"], 4, "{v}");
    assert_eq!(v["by_jail"]["postfix"], 1, "{v}");
    assert_eq!(v["by_asn"]["AS29518"], 1, "{v}");
    let per_day = v["per_day"].as_array().expect("per_day");
    assert_eq!(per_day.len(), 7, "oldest first, one entry per day");
    assert_eq!(per_day[6]["total"], 5, "today holds them all: {v}");
    // Counting again changes nothing (exactly once).
    assert_eq!(stats(&nb, "7")["total"], 5);
    // The table names the top entries.
    let out = nb.expect(0, &["stats", "--days", "7"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("GB") && text.contains("AS29518"), "{text}");
}

#[test]
fn stats_without_a_stats_section_say_how_to_turn_them_on() {
    let nb = with("");
    let out = nb.expect(3, &["stats"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("add a [stats] section"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_validates_the_stats_section_and_reaches_its_backend() {
    // A wrong [stats] is a config error at check, as at `netban stats` and daemon start.
    let nb = with("[stats]\ntimezone = \"Mars/Olympus\"\n");
    let out = nb.expect(3, &["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Mars/Olympus"), "{err}");
    // A good one: the backend answers; an mmdb file that cannot be read is a warning.
    let nb = with(&format!(
        "[stats]\ncountry_db = {:?}\nasn_db = \"/nonexistent/asn.mmdb\"\n",
        geoip("GeoLite2-Country-Test.mmdb")
    ));
    let out = nb.expect(0, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stats: ok: sqlite backend answers (0 bans today)"),
        "{text}"
    );
    assert!(
        text.contains("WARNING: asn_db /nonexistent/asn.mmdb cannot be read"),
        "{text}"
    );
    assert!(
        !text.contains("country_db"),
        "the country file loads: {text}"
    );
}

#[test]
fn a_recreated_state_database_goes_on_counting_into_the_kept_statistics() {
    // stats.db is kept, the state database is not (a new disk for /var/lib/netban/netban.db
    // only, a restore of an older backup): the new database numbers its events from 1 again,
    // ids the statistics have counted already. Its bans must still count.
    let nb = netban();
    nb.expect(0, &["ban", "--jail", "sshd", "81.2.69.160"]);
    nb.expect(0, &["ban", "--jail", "sshd", "89.160.20.128"]);
    assert_eq!(stats(&nb, "7")["total"], 2);
    for file in ["netban.db", "netban.db-wal", "netban.db-shm"] {
        let _ = std::fs::remove_file(nb.state_dir().join(file));
    }
    nb.expect(0, &["ban", "--jail", "postfix", "2001:218::1"]);
    let out = nb.expect(0, &["stats", "--days", "7", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], 3, "the new database's ban counts: {v}");
    assert_eq!(v["by_country"]["JP"], 1, "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("counted events up to id 2") && err.matches("WARN").count() == 1,
        "one warning that says what happened: {err}"
    );
    // From then on, as before: each ban once, no more warnings.
    nb.expect(0, &["ban", "--jail", "postfix", "1.2.3.4"]);
    let out = nb.expect(0, &["stats", "--days", "7", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], 4, "{v}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("WARN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
