//! `netban migrate exafs-action`, end to end: a switch-over from the old `exafs_action.py`
//! with active bans, against the real ExaFS and the real fail2ban.
//!
//! The old script is not on any registry this project can reach, so
//! `tests/migrate/old_exafs_action.py` stands in for it: the same job (one RTBH rule per
//! ban through the same API, deleted at the unban) and the same files (`exafs.cfg`, INI
//! `[exafs]`; `rules.json`, address -> rule id; a whitelist of one address or CIDR a line).
//!
//! What an operator would notice: the old config becomes netban's (the key in its own 0600
//! file, never printed); the rules the old script made become netban's, with no gap while
//! fail2ban restarts, no duplicate, and no orphan; every address is unblocked after its unban;
//! an operator's rule stays.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netban_testsupport::config::Config;
use netban_testsupport::exafs::{ExaFs, RtbhRule, now_unix};
use netban_testsupport::fail2ban::{ActionFile, Fail2ban, Jail, Options};
use netban_testsupport::runner::{Netban, read, stdout, tail};
use netban_testsupport::wait;

const NETBAN: &str = env!("CARGO_BIN_EXE_netban");
const WAIT: Duration = Duration::from_secs(20);

fn old_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrate/old_exafs_action.py")
}

/// The old script's files in `dir`: `exafs.cfg`, its whitelist, and where its rules.json goes.
struct OldFiles {
    cfg: PathBuf,
    rules: PathBuf,
    whitelist: PathBuf,
}

impl OldFiles {
    fn write(dir: &Path, exafs: &ExaFs) -> OldFiles {
        let whitelist = dir.join("exafs-whitelist.conf");
        std::fs::write(&whitelist, "# never block these\n203.0.113.7\n10.0.0.0/8\n")
            .expect("whitelist");
        let cfg = dir.join("exafs.cfg");
        std::fs::write(
            &cfg,
            format!(
                "[exafs]\nurl = {}\napi_key = {}\ncommunity = 1\nwhitelist_file = {}\n",
                exafs.url(),
                exafs.api_key(),
                whitelist.display()
            ),
        )
        .expect("exafs.cfg");
        OldFiles {
            cfg,
            rules: dir.join("rules.json"),
            whitelist,
        }
    }

    /// The old action, as operators installed it, with the empty `actionflush` that
    /// docs/fail2ban.md's step 3 adds (so a restart hands the bans over with no gap).
    fn action(&self) -> ActionFile {
        let call = |what: &str| {
            format!(
                "/usr/bin/python3 \"{}\" \"{}\" \"{}\" {what} \"<ip>\" sshd \"<bantime>\"",
                old_script().display(),
                self.cfg.display(),
                self.rules.display()
            )
        };
        ActionFile::new(
            "exafs.conf",
            format!(
                "[Definition]\nactionban = {}\nactionunban = {}\nactionflush = true\n",
                call("ban"),
                call("unban")
            ),
        )
    }

    /// Runs the old script by hand (a ban fail2ban has forgotten since: its rule is an orphan).
    fn ban_by_hand(&self, ip: &str) {
        let out = Command::new("/usr/bin/python3")
            .arg(old_script())
            .args([&self.cfg, &self.rules])
            .args(["ban", ip, "sshd", "600"])
            .output()
            .expect("running the old script");
        assert!(out.status.success(), "{out:?}");
    }

    fn rules_json(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&read(&self.rules))
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    }
}

fn active(exafs: &ExaFs, addr: &str, mask: u8) -> Vec<RtbhRule> {
    exafs
        .rules_for(addr, mask)
        .into_iter()
        .filter(RtbhRule::is_active)
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

const BANNED: [(&str, u8); 3] = [
    ("192.0.2.91", 32),
    ("198.51.100.92", 32),
    ("2001:db8::93", 128),
];
const ORPHAN: &str = "198.51.100.95";

#[test]
fn switching_from_exafs_action_adopts_its_rules_and_every_unban_unblocks() {
    let exafs = ExaFs::start().unwrap_or_else(|e| panic!("starting ExaFS: {e:#}"));
    let nb = Netban::new(NETBAN, &Config::new());
    let old = OldFiles::write(nb.dir(), &exafs);

    // Before: fail2ban bans through the old script.
    let mut f2b = Fail2ban::start(
        Options::new()
            .action_file(old.action())
            .jail(Jail::new("sshd", "exafs")),
    )
    .unwrap_or_else(|e| panic!("starting fail2ban: {e:#}"));
    for (ip, _) in BANNED {
        f2b.ban("sshd", ip);
        f2b.wait_action(0, "ban", "sshd", ip, WAIT);
    }
    old.ban_by_hand(ORPHAN);
    let operator = exafs.create_foreign_rule("203.0.113.200/32", now_unix() + 86_400, "by hand");
    let id_of = |ip: &str, mask: u8| {
        let rules = active(&exafs, ip, mask);
        assert_eq!(rules.len(), 1, "old rules for {ip}: {rules:?}");
        rules[0].id
    };
    let old_ids: Vec<u64> = BANNED.iter().map(|(ip, m)| id_of(ip, *m)).collect();
    let orphan_id = id_of(ORPHAN, 32);
    // rules.json lost one entry, and holds one whose id ExaFS now uses for another address.
    let mut listed = old.rules_json();
    assert_eq!(listed.len(), 4, "{listed:?}");
    listed.remove("2001:db8::93");
    listed.insert("203.0.113.96".into(), operator.into());
    std::fs::write(&old.rules, serde_json::Value::Object(listed).to_string()).expect("rules");

    // 1. The config: printed while it does not exist, with the key never shown.
    std::fs::remove_file(nb.config()).expect("no config yet");
    let from = old.cfg.to_str().expect("utf-8 path");
    let out = nb.expect(0, &["migrate", "exafs-action", "--from", from]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("url = \"{}\"", exafs.url())),
        "{text}"
    );
    assert!(text.contains("community = 1"), "{text}");
    assert!(
        text.contains(&old.whitelist.display().to_string()),
        "{text}"
    );
    assert!(
        !text.contains(exafs.api_key()),
        "the key was printed: {text}"
    );
    assert!(!nb.config().exists(), "written without --write");
    // 2. Written with --write, 0600, the key in its own 0600 file; never written over.
    nb.expect(0, &["migrate", "exafs-action", "--from", from, "--write"]);
    let key_file = nb.dir().join("exafs.key");
    assert_eq!(read(&key_file).trim(), exafs.api_key());
    assert_eq!((mode(nb.config()), mode(&key_file)), (0o600, 0o600));
    let written = nb.config_text();
    assert!(!written.contains(exafs.api_key()), "{written}");
    let again = nb.expect(0, &["migrate", "exafs-action", "--from", from, "--write"]);
    assert!(
        stdout(&again).contains("does not write over it"),
        "{again:?}"
    );
    assert_eq!(nb.config_text(), written);
    // On a host with a config already (the package ships one) it prints what to merge.
    let merge = stdout(&nb.expect(0, &["migrate", "exafs-action", "--from", from]));
    assert!(merge.contains("to merge by hand"), "{merge}");
    assert!(
        merge.contains(&format!("url = \"{}\"", exafs.url())),
        "{merge}"
    );
    assert!(
        !merge.contains(exafs.api_key()),
        "the key was printed: {merge}"
    );
    assert_eq!(nb.config_text(), written);

    // The operator's edits: a test state dir, a log, TEST-NET addresses on this machine.
    let edited = written
        .replace(
            "state_dir = \"/var/lib/netban\"",
            &format!("state_dir = \"{}\"", nb.state_dir().display()),
        )
        .replace("[guard]\n", "[guard]\nprotect_own_addresses = false\n");
    let log = nb.path("netban.log");
    let log_section = format!(
        "\n[log]\nsyslog = false\nlevel = \"debug\"\nfile = \"{}\"\n",
        log.display()
    );
    nb.write_config_text(&format!("{edited}{log_section}"));
    let f2b_log = f2b.log_path();
    let ctx = || {
        format!(
            "--- netban log ---\n{}\n--- fail2ban ---\n{}\n--- ExaFS ---\n{:#?}",
            tail(&log, 40),
            tail(&f2b_log, 20),
            exafs.rtbh_rules()
        )
    };
    nb.expect(0, &["check"]);
    // The old whitelist is netban's allowlist.
    let why = stdout(&nb.expect(0, &["explain", "203.0.113.7"]));
    assert!(why.contains("allowlist"), "{why}");

    // 3. Adopting before the switch-over is refused: every rule would count as unbanned.
    let rules = old.rules.to_str().expect("utf-8 path");
    let adopt = ["migrate", "exafs-action", "--from", from, "--rules", rules];
    let early = nb.expect(2, &adopt);
    assert!(
        format!("{early:?}").contains("restart fail2ban first"),
        "{early:?}"
    );

    // 4. The switch-over (docs/fail2ban.md): the jail's action becomes netban's, restart.
    f2b.reconfigure(
        Options::netban(NETBAN, nb.config(), &["sshd"])
            .expect("netban action")
            .action_file(old.action()),
    )
    .expect("switched config");
    f2b.restart().unwrap_or_else(|e| panic!("{e:#}\n{}", ctx()));
    assert_eq!(nb.targets().len(), 3, "{}", ctx());
    // No gap: the old rules are all still there, and no second rule was made.
    let ids: Vec<u64> = BANNED.iter().map(|(ip, m)| id_of(ip, *m)).collect();
    assert_eq!(ids, old_ids, "{}", ctx());

    // 5. A dry run says what adopting would do, and changes nothing.
    let mut dry = vec!["--dry-run"];
    dry.extend(adopt);
    let said = stdout(&nb.expect(0, &dry));
    assert!(said.contains("would adopt 192.0.2.91/32"), "{said}");
    assert!(said.contains(&format!("would adopt {ORPHAN}/32")), "{said}");
    assert!(said.contains("skip 203.0.113.96/32"), "{said}");
    let why = stdout(&nb.expect(0, &["explain", "192.0.2.91"]));
    assert!(!why.contains("adopted"), "the dry run adopted: {why}");

    // 6. Adopting: the listed rules of banned addresses, and the orphan.
    let said = stdout(&nb.expect(0, &adopt));
    assert!(said.contains("adopted 3 rule(s)"), "{said}");
    assert!(said.contains("1 of them not banned"), "{said}");
    let why = stdout(&nb.expect(0, &["explain", "192.0.2.91"]));
    assert!(why.contains("adopted"), "{why}\n{}", ctx());
    let listing = stdout(&nb.expect(0, &["list"]));
    assert!(listing.contains("in place (adopted)"), "{listing}");

    // The rule rules.json lost is still the old script's, so netban would leave it.
    let why = stdout(&nb.expect(0, &["explain", "2001:db8::93"]));
    assert!(why.contains("netban leaves it at the last unban"), "{why}");
    // 7. The operator names the old script's comment (`adopt_comments`); the next full check
    //    adopts that rule by it, and deletes the orphan. Still one rule per banned address,
    //    the old one.
    let edited = edited.replace("# adopt_comments = ", "adopt_comments = ");
    assert!(
        edited.contains("\nadopt_comments = [\"fail2ban *\"]"),
        "{edited}"
    );
    nb.write_config_text(&format!("{edited}{log_section}"));
    nb.expect(0, &["sync"]);
    assert!(active(&exafs, ORPHAN, 32).is_empty(), "{}", ctx());
    assert!(exafs.rule(orphan_id).is_none_or(|r| !r.is_active()));
    let ids: Vec<u64> = BANNED.iter().map(|(ip, m)| id_of(ip, *m)).collect();
    assert_eq!(ids, old_ids, "{}", ctx());
    let why = stdout(&nb.expect(0, &["explain", "2001:db8::93"]));
    assert!(why.contains("adopted"), "{why}\n{}", ctx());

    // 8. Every unban unblocks its address; the operator's rule stays.
    for (ip, _) in BANNED {
        let n = f2b.events().len();
        f2b.unban("sshd", ip);
        f2b.wait_action(n, "unban", "sshd", ip, WAIT);
    }
    nb.expect(0, &["sync"]);
    for (ip, mask) in BANNED {
        wait::wait_until(
            &format!("{ip} unblocked"),
            WAIT,
            Duration::from_millis(200),
            ctx,
            || active(&exafs, ip, mask).is_empty().then_some(()),
        );
    }
    assert_eq!(active(&exafs, "203.0.113.200", 32).len(), 1, "{}", ctx());
    let status = stdout(&nb.expect(0, &["status"]));
    assert!(!status.contains("stays on the sink"), "{status}");
    assert!(nb.targets().is_empty(), "{}", ctx());
}

/// A config that is not the old script's, or a broken one, is a usage error naming the line,
/// and writes nothing.
#[test]
fn a_wrong_old_config_is_refused_with_the_reason() {
    let nb = Netban::new(NETBAN, &Config::new());
    std::fs::remove_file(nb.config()).expect("no config yet");
    let cfg = nb.dir().join("exafs.cfg");
    let cases = [
        (
            "[exafs]\nurl = https://exafs.example.net\ncommunity = 1\n",
            "api_key is missing",
        ),
        (
            "[exafs]\nurl = https://exafs.example.net\napi_key = k\ncommunity = one\n",
            "line 4: community must be a number",
        ),
        (
            "[exafs]\nurl = exafs.example.net\napi_key = k\ncommunity = 1\n",
            "url must start with https://",
        ),
        ("[other]\nurl = x\n", "is it exafs_action.py's config?"),
    ];
    for (text, why) in cases {
        std::fs::write(&cfg, text).expect("cfg");
        let from = cfg.to_str().expect("utf-8");
        let out = nb.expect(2, &["migrate", "exafs-action", "--from", from, "--write"]);
        let err = netban_testsupport::runner::stderr(&out);
        assert!(err.contains(why), "{text:?}: {err}");
        assert!(!nb.config().exists(), "{text:?} wrote a config");
    }
}
