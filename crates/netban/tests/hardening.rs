//! Issue 6's defects, one regression test each, named after the defect: nothing a local user,
//! a careless config or a misbehaving server does can stop enforcement or delete bans. Each
//! test drives the real binary (and the real ExaFS where a sink is involved) and asserts
//! what an operator would notice.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::exafs::{ExaFs, now_unix};
use netban_testsupport::proxy::{FaultProxy, Mode};
use netban_testsupport::runner::{Netban, read, stderr};

/// A netban whose config is `state_dir` followed by `extra` (no web listener unless `extra`
/// has a `[web]` table).
fn netban(extra: &str) -> Netban {
    Netban::new(
        env!("CARGO_BIN_EXE_netban"),
        &Config::new().no_web().raw(extra),
    )
}

/// An exec sink appending `ban JAIL BANTIME IP` / `unban IP` lines to `file`.
fn exec_sink(file: &Path) -> String {
    Sink::exec_to_file(file).render(Path::new("/"))
}

fn start_daemon(nb: &Netban) -> Daemon {
    Daemon::start(nb)
}

/// A GET on the daemon's web listener: (status, body); `None` when nothing answered.
fn get(web: &str, path: &str, auth: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(web).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    ))
}

fn ping(socket: &std::path::Path) -> Option<Duration> {
    let t0 = Instant::now();
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"{\"op\":\"ping\"}\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .contains("\"ok\":true")
        .then(|| t0.elapsed())
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn daemon_config(extra: &str) -> String {
    format!(
        "[guard]\nprotect_own_addresses = false\n[web]\nlisten = \"127.0.0.1:0\"\n[daemon]\nresync_interval = 2\n{extra}"
    )
}

/// Defect 1: ~1,100 idle connections to the web port ran the daemon out of descriptors.
#[test]
fn defect_1_idle_connections_to_the_web_port_cannot_starve_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("sink.log");
    let nb = netban(&daemon_config(&exec_sink(&log)));
    let d = start_daemon(&nb);
    let web = d.web().expect("web address").to_string();
    let before = open_fds(d.pid());
    let mut idle: Vec<TcpStream> = (0..1100)
        .filter_map(|_| TcpStream::connect(&web).ok())
        .collect();
    assert!(
        idle.len() > 1000,
        "the attacker's connections: {}",
        idle.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(d.pid());
    assert!(
        during < before + 200,
        "the daemon holds {during} descriptors (it had {before}): the connection cap must close the rest"
    );
    // The control socket and delivery do not depend on the web listener.
    assert!(
        ping(&nb.state_dir().join("netban.sock")).is_some(),
        "control socket answers"
    );
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.1"]);
    wait_for(
        "the ban reaches the exec sink",
        Duration::from_secs(20),
        || read(&log).contains("ban sshd 3600 192.0.2.1"),
    );
    // Idle connections are closed by the server (header timeout), and the port serves again.
    wait_for("/healthz answers again", Duration::from_secs(30), || {
        get(&web, "/healthz", None).is_some_and(|(s, _)| s == 200)
    });
    let mut closed = 0;
    for s in idle.iter_mut().take(64) {
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if matches!(s.read(&mut [0u8; 1]), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 64,
        "the served idle connections were closed by the server"
    );
}

/// Defect 4: `daemon.socket` at an existing regular file deleted it as a "stale socket".
#[test]
fn defect_4_a_socket_path_at_a_regular_file_is_refused_and_the_file_kept() {
    let nb = netban("");
    nb.expect(0, &["ban", "192.0.2.7"]);
    let db = nb.state_dir().join("netban.db");
    let text = format!(
        "state_dir = \"{}\"\n[daemon]\nsocket = \"{}\"\n[web]\nlisten = \"\"\n",
        nb.state_dir().display(),
        db.display()
    );
    nb.write_config_text(&text);
    let out = nb.run(&["daemon"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a socket"), "{}", stderr(&out));
    assert_eq!(
        nb.targets(),
        ["192.0.2.7/32"],
        "the state database is intact"
    );
}

fn exafs_netban(url: &str, key: &str, extra: &str) -> Netban {
    netban(&format!(
        "host_id = \"web-01\"\n[guard]\nprotect_own_addresses = false\n[reconcile]\ninline_deadline = 2\n[[sink]]\nname = \"exafs\"\ntype = \"exafs\"\nurl = \"{url}\"\napi_key = \"{key}\"\ncommunity = 1\ntimeout = 2\n{extra}"
    ))
}

/// Defect 5: a 1.5 GB ExaFS answer pushed memory to 3 GB and overran the 3 s deadline.
#[test]
fn defect_5_a_huge_exafs_answer_is_cut_off_within_the_deadline() {
    let exafs = ExaFs::start().expect("ExaFS");
    let proxy = FaultProxy::start(exafs.authority()).expect("proxy");
    let nb = exafs_netban(&proxy.url(), exafs.api_key(), "");
    proxy.set_mode(Mode::Answer {
        status: 200,
        body: Arc::new(vec![b' '; 8 << 20]),
    });
    let t0 = Instant::now();
    let out = nb.expect(0, &["-v", "ban", "--jail", "sshd", "192.0.2.30"]);
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "the ban returned after {:?}",
        t0.elapsed()
    );
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    // The ban is kept and delivered once ExaFS answers sanely.
    proxy.set_mode(Mode::Pass);
    nb.expect(0, &["sync"]);
    assert_eq!(exafs.count_rules_for("192.0.2.30", 32), 1);
}

/// Defect 7: `http://user:pass@host` showed up in stderr, the log file, status and check.
#[test]
fn defect_7_credentials_in_a_url_never_appear() {
    let nb = netban("");
    let log = nb.path("netban.log");
    let text = format!(
        "state_dir = \"{}\"\n[log]\nfile = \"{}\"\n[[sink]]\nname = \"exafs\"\ntype = \"exafs\"\nurl = \"http://netban:s3cretpass@127.0.0.1:9\"\napi_key_file = \"{}\"\ncommunity = 1\ntimeout = 1\n",
        nb.state_dir().display(),
        log.display(),
        nb.path("key").display()
    );
    std::fs::write(nb.path("key"), "k3y\n").unwrap();
    std::fs::set_permissions(nb.path("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    nb.write_config_text(&text);
    std::fs::set_permissions(nb.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut seen = String::new();
    for args in [
        &["-vv", "ban", "192.0.2.40"][..],
        &["status"],
        &["--json", "status"],
        &["check"],
        &["--dry-run", "sync"],
        &["explain", "192.0.2.40"],
    ] {
        let out = nb.run(args);
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&stderr(&out));
    }
    seen.push_str(&read(&log));
    assert!(!seen.contains("s3cretpass"), "the password leaked:\n{seen}");
    assert!(seen.contains("<redacted>@127.0.0.1:9"), "{seen}");
    // A password in a URL counts as an inline secret: the readable config is warned about.
    assert!(seen.contains("holds a secret and is readable"), "{seen}");
}

/// Defect 8: an empty `[web] token` turned authentication off.
#[test]
fn defect_8_an_empty_web_token_is_refused_and_bearer_is_accepted_in_any_case() {
    let nb = netban("[web]\ntoken = \"\"\n");
    let out = nb.expect(3, &["status"]);
    assert!(
        stderr(&out).contains("web.token is empty"),
        "{}",
        stderr(&out)
    );
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    let nb = netban(&format!(
        "[web]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        empty.display()
    ));
    let out = nb.expect(3, &["daemon"]);
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
    let nb = netban("[web]\nlisten = \"127.0.0.1:0\"\ntoken = \"t0ken\"\n");
    let d = start_daemon(&nb);
    let web = d.web().expect("web").to_string();
    assert_eq!(get(&web, "/metrics", None).map(|r| r.0), Some(401));
    assert_eq!(
        get(&web, "/metrics", Some("Bearer nope")).map(|r| r.0),
        Some(401)
    );
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = get(&web, "/metrics", Some(&format!("{scheme} t0ken")));
        assert_eq!(r.map(|r| r.0), Some(200), "{scheme}");
    }
    assert_eq!(get(&web, "/healthz", None).map(|r| r.0), Some(200));
}

/// Defect 9: values that passed and should not.
#[test]
fn defect_9_input_and_config_values_that_passed_and_should_not() {
    let nb = netban("");
    let far = (now_unix() + 10 * 86_400).to_string();
    for args in [
        &["ban", "--time", "99999999999", "192.0.2.1"][..],
        &["ban", "--time", far.as_str(), "192.0.2.1"],
        &["ban", "--bantime", "-0.5", "192.0.2.1"],
        &["ban", "192.0.2.1", "-0.4"],
        &["ban", "::ffff:127.0.0.1/95"],
        &["ban", "--jail", "-rf", "192.0.2.1"],
        &["unban", "--jail", "--x", "192.0.2.1"],
        &["sync", "--timeout", "1e20"],
        &["ban", "192.0.2.1", "120", "--bantime", "300"],
    ] {
        let out = nb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert!(nb.targets().is_empty(), "nothing was recorded");
    let nb = netban("[daemon]\nresync_interval = 1e300\n");
    let out = nb.expect(3, &["check"]);
    assert!(stderr(&out).contains("resync_interval"), "{}", stderr(&out));
}

/// Defect 10: a world-writable state dir was accepted and symlinks in it followed.
#[test]
fn defect_10_a_state_dir_others_can_write_is_refused_and_symlinks_not_followed() {
    let nb = netban("");
    nb.expect(0, &["ban", "192.0.2.1"]);
    std::fs::set_permissions(nb.state_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = nb.expect(1, &["ban", "192.0.2.2"]);
    assert!(
        stderr(&out).contains("writable by group or others"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(nb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // The database replaced by a symlink to a file elsewhere: refused, the file untouched.
    let victim = nb.path("victim");
    std::fs::write(&victim, "precious").unwrap();
    let db = nb.state_dir().join("netban.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    std::os::unix::fs::symlink(&victim, &db).unwrap();
    let out = nb.run(&["ban", "192.0.2.3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// Defect 11: while another process held the write lock, /healthz and the control socket
/// froze for ~10 s.
#[test]
fn defect_11_a_held_database_lock_does_not_freeze_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("sink.log");
    let nb = netban(&daemon_config(&exec_sink(&log)));
    let d = start_daemon(&nb);
    let web = d.web().unwrap().to_string();
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.50"]);
    wait_for("delivered", Duration::from_secs(20), || {
        read(&log).contains("192.0.2.50")
    });
    // Another process takes the write lock and keeps it.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(8)",
            nb.state_dir().join("netban.db").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut first = [0u8; 7];
    holder
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    // A ban from the socket waits for the lock, but health and pings do not.
    let control = nb.state_dir().join("netban.sock");
    let pinger = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&control).unwrap();
        s.write_all(b"{\"op\":\"ban\",\"ip\":\"192.0.2.51\",\"jail\":\"sshd\"}\n")
            .unwrap();
    });
    for _ in 0..5 {
        let t0 = Instant::now();
        assert_eq!(get(&web, "/healthz", None).map(|r| r.0), Some(200));
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "/healthz took {:?}",
            t0.elapsed()
        );
        let p = ping(&nb.state_dir().join("netban.sock")).expect("ping");
        assert!(p < Duration::from_secs(1), "ping took {p:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = holder.wait();
    pinger.join().unwrap();
    wait_for(
        "the ban that waited is delivered",
        Duration::from_secs(30),
        || read(&log).contains("192.0.2.51"),
    );
}

/// Holds `cap` connections the daemon accepted, so that every slot of the control socket is
/// ours: a connection the daemon has not closed yet (its start's ping) may take a slot while
/// ours arrive and give it back later, so ours told `busy` meanwhile are replaced until a
/// new connection is told `busy` while none of ours was.
fn fill_control_socket(socket: &Path, cap: usize) -> Vec<UnixStream> {
    let told_busy = |s: &mut UnixStream, wait: Duration| {
        s.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 256];
        // An accepted connection hears nothing until it asks; a refused one gets `busy`
        // and is closed.
        !matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut)
    };
    let mut held: Vec<UnixStream> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the control socket never filled");
        held.retain_mut(|s| !told_busy(s, Duration::from_millis(1)));
        while held.len() < cap {
            held.push(UnixStream::connect(socket).unwrap());
        }
        let mut probe = UnixStream::connect(socket).unwrap();
        if !told_busy(&mut probe, Duration::from_millis(500)) {
            held.push(probe); // it took a free slot: ours now
            continue;
        }
        // The probe came after ours, so the daemon has answered all of ours by now.
        if !held
            .iter_mut()
            .any(|s| told_busy(s, Duration::from_millis(1)))
        {
            return held;
        }
    }
}

/// Defect 12: pokes beyond the control socket's cap were dropped silently.
#[test]
fn defect_12_a_busy_daemon_makes_the_cli_deliver_inline() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("sink.log");
    let nb = netban(&daemon_config(&exec_sink(&log)));
    let _d = start_daemon(&nb);
    let socket = nb.state_dir().join("netban.sock");
    let held = fill_control_socket(&socket, 64);
    let out = nb.expect(0, &["-v", "ban", "--jail", "sshd", "192.0.2.60"]);
    // Delivered by this process (inline: its own log says so), not left to the daemon.
    assert!(
        stderr(&out).contains("192.0.2.60/32 added"),
        "{}",
        stderr(&out)
    );
    assert!(
        read(&log).contains("ban sshd 3600 192.0.2.60"),
        "{}",
        stderr(&out)
    );
    drop(held);
}

/// Defect 12: a 201 describing another address was recorded as in place, and a garbled
/// success waited ~15 minutes before it was tried again.
#[test]
fn defect_12_an_answer_about_another_rule_or_garbage_is_not_a_confirmation() {
    let exafs = ExaFs::start().expect("ExaFS");
    let proxy = FaultProxy::start(exafs.authority()).expect("proxy");
    let nb = exafs_netban(&proxy.url(), exafs.api_key(), "");
    // Get a token and the community's name through first.
    nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.70"]);
    let other = serde_json::json!({"message": "RTBH Rule saved", "rule": {
        "id": 999, "ipv4": "203.0.113.200", "ipv4_mask": 32, "community": "65535:65283",
        "comment": "x", "expires": now_unix() + 3600, "rstate": "active rule"}});
    for body in [other.to_string().into_bytes(), b"<html>ok</html>".to_vec()] {
        proxy.set_mode(Mode::Answer {
            status: 201,
            body: Arc::new(body),
        });
        nb.expect(0, &["ban", "--jail", "sshd", "192.0.2.71"]);
        let list = nb.list();
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"] == "192.0.2.71/32")
            .cloned()
            .unwrap();
        let sink = &entry["sinks"]["exafs"];
        assert_eq!(sink["state"], "pending", "{entry}");
        let next = sink["next_try"].as_i64().unwrap();
        assert!(
            next - now_unix() < 120,
            "retried soon, not in 15 minutes: {entry}"
        );
        proxy.set_mode(Mode::Pass);
        nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.71"]);
        nb.expect(0, &["sync"]);
    }
}

/// Defect 12: errors inside [[sink]] pointed at the header line; a corrupt database named no
/// path.
#[test]
fn defect_12_sink_errors_name_their_line_and_a_corrupt_database_its_path() {
    let nb =
        netban("[[sink]]\nname = \"n\"\ntype = \"exec\"\nban = [\"/bin/true\"]\n\ntimout = 3\n");
    let out = nb.expect(3, &["check"]);
    assert!(
        stderr(&out).contains("line 7") && stderr(&out).contains("timout"),
        "{}",
        stderr(&out)
    );
    let nb = netban("");
    nb.expect(0, &["ban", "192.0.2.1"]);
    let db = nb.state_dir().join("netban.db");
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let out = nb.expect(1, &["list"]);
    assert!(
        stderr(&out).contains(&db.display().to_string()) && stderr(&out).contains("damaged"),
        "{}",
        stderr(&out)
    );
}

/// Defect 2: with `comment = "netban {jail} by {host}"` the mark became `netban ` and one
/// host's `sync` deleted other hosts' rules, while `check` counted them as its own.
#[test]
fn defect_2_a_comment_template_cannot_make_one_host_delete_another_hosts_rules() {
    let exafs = ExaFs::start().expect("ExaFS");
    let tpl = "comment = \"netban {jail} by {host}\"\n";
    let a = exafs_netban(&exafs.url(), exafs.api_key(), tpl);
    let b = exafs_netban(&exafs.url(), exafs.api_key(), tpl);
    b.write_config_text(&b.config_text().replace("web-01", "web-02"));
    a.expect(0, &["ban", "--jail", "sshd", "192.0.2.80"]);
    b.expect(0, &["ban", "--jail", "sshd", "192.0.2.81"]);
    for _ in 0..2 {
        b.expect(0, &["sync"]);
    }
    assert_eq!(
        exafs.count_rules_for("192.0.2.80", 32),
        1,
        "web-02 left web-01's rule"
    );
    let check = b.expect(0, &["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("1 by this netban") && text.contains("1 by netban on other hosts"),
        "{text}"
    );
    // web-01's unban still removes its own rule.
    a.expect(0, &["unban", "--jail", "sshd", "192.0.2.80"]);
    assert_eq!(exafs.count_rules_for("192.0.2.80", 32), 0);
}

/// Defect 3: a lost state (wiped, restored, or a clone with the same host_id) deleted the
/// host's network bans at its first full check.
#[test]
fn defect_3_a_lost_state_keeps_the_hosts_rules_and_adopts_them_when_banned_again() {
    let exafs = ExaFs::start().expect("ExaFS");
    let nb = exafs_netban(&exafs.url(), exafs.api_key(), "");
    for ip in ["192.0.2.90", "192.0.2.91"] {
        nb.expect(0, &["ban", "--jail", "sshd", "--bantime", "86400", ip]);
    }
    // A clone with the same host_id and its own state: its sync touches nothing.
    let clone = exafs_netban(&exafs.url(), exafs.api_key(), "");
    clone.expect(0, &["sync"]);
    assert_eq!(exafs.rtbh_rules().len(), 2, "the clone deleted nothing");
    // The state is wiped (a new disk); sync creates it again and deletes nothing.
    std::fs::remove_dir_all(nb.state_dir()).unwrap();
    nb.expect(0, &["sync"]);
    assert_eq!(exafs.rtbh_rules().len(), 2, "a fresh state deleted nothing");
    let status = String::from_utf8_lossy(&nb.expect(0, &["status"]).stdout).into_owned();
    for ip in ["192.0.2.90/32", "192.0.2.91/32"] {
        assert!(
            status.contains(&format!("WARNING: exafs {ip} stays on the sink")),
            "{status}"
        );
    }
    // fail2ban bans one again (its restart): adopted, no duplicate; its unban removes it.
    nb.expect(
        0,
        &["ban", "--jail", "sshd", "--restored", "1", "192.0.2.90"],
    );
    nb.expect(0, &["sync"]);
    assert_eq!(exafs.count_rules_for("192.0.2.90", 32), 1);
    let list = nb.list();
    assert_eq!(list[0]["sinks"]["exafs"]["adopted"], true, "{list}");
    nb.expect(0, &["unban", "--jail", "sshd", "192.0.2.90"]);
    assert_eq!(
        exafs.count_rules_for("192.0.2.90", 32),
        0,
        "an adopted rule is removed at its unban"
    );
    assert_eq!(
        exafs.count_rules_for("192.0.2.91", 32),
        1,
        "the other stays until it expires"
    );
    // A state dir that cannot be created is named.
    let bad = netban("");
    std::fs::write(bad.path("file"), "").unwrap();
    bad.write_config_text(&format!(
        "state_dir = \"{}/file/state\"\n",
        bad.dir().display()
    ));
    let out = bad.expect(1, &["sync"]);
    assert!(stderr(&out).contains("file/state"), "{}", stderr(&out));
}
