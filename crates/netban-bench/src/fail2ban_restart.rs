//! The fail2ban side of the `restore` case: fail2ban's database seeded with the burst's bans
//! (rows in `bans`/`bips`, written with Python's sqlite3 while the server is stopped), and one
//! timed server start until the harness's probe action has seen every restored ban.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netban_testsupport::fail2ban::{ActionFile, Fail2ban, Jail, Options, dist_dir};
use netban_testsupport::proxy::{FaultProxy, Seen};

use crate::cases::{BANTIME, JAIL};
use crate::measure::wait_exit;

pub fn f2b_options(action: &str) -> Result<Options> {
    Ok(Options::new()
        .bantime(BANTIME)
        .action_file(ActionFile::netban_dist()?)
        .action_file(ActionFile::from_path(
            dist_dir().join("fail2ban/action.d/netban-socket.py"),
        )?)
        .jail(Jail::new(JAIL, action)))
}

/// The database file fail2ban reports (`get dbfile`), else the harness's default place.
pub fn f2b_dbfile(f2b: &Fail2ban) -> PathBuf {
    let out = f2b.client(&["get", "dbfile"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("`- ")
                .map(|p| PathBuf::from(p.trim()))
        })
        .filter(|p| p.is_file())
        .unwrap_or_else(|| f2b.dir().join("run/fail2ban.sqlite3"))
}

pub const SEED_PY: &str = r#"
import json, sqlite3, sys
db, jail, t, bantime = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ips = [l.strip() for l in sys.stdin if l.strip()]
data = json.dumps({"matches": [], "failures": 3})
con = sqlite3.connect(db, timeout=30)
con.executemany("INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES(?,?,?,?,1,?)",
                [(jail, ip, t, bantime, data) for ip in ips])
con.executemany("INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES(?,?,?,?,1,?)",
                [(ip, jail, t, bantime, data) for ip in ips])
con.commit()
"#;

/// Adds active bans to fail2ban's database (server stopped), as fail2ban's `addBan` does.
pub fn seed_f2b_db(db: &Path, ips: &[String], t0: i64) -> Result<()> {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SEED_PY)
        .arg(db)
        .args([JAIL, &t0.to_string(), &BANTIME.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running python3 to seed fail2ban's database")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ips.join("\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "seeding fail2ban's database {}: {}",
            db.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// New complete lines of a growing file.
pub struct Tail {
    pub path: PathBuf,
    pub offset: u64,
    pub partial: String,
}

impl Tail {
    pub fn at_end(path: PathBuf) -> Tail {
        let offset = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Tail {
            path,
            offset,
            partial: String::new(),
        }
    }

    pub fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = String::new();
        let Ok(n) = f.read_to_string(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(str::to_string).collect()
    }
}

pub struct RestoreRun {
    pub total: Duration,
    pub first: Option<Duration>,
    pub seen: Vec<Seen>,
    pub errors: usize,
    pub stop: Duration,
}

/// One fail2ban start with `n` bans in its database: from server spawn until the probe (the
/// last action of the jail) has seen `n` restored bans; then fail2ban is stopped again.
pub fn restore_once(
    f2b: &mut Fail2ban,
    action: &str,
    n: usize,
    proxy: &FaultProxy,
    timeout: Duration,
) -> Result<RestoreRun> {
    f2b.reconfigure(f2b_options(action)?)?;
    let mut probe = Tail::at_end(f2b.dir().join("probe.log"));
    let mut flog = Tail::at_end(f2b.log_path());
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(f2b.dir().join("run/server.out"))?;
    proxy.reset_counts();
    let start = Instant::now();
    let child = Command::new("fail2ban-server")
        .arg("-c")
        .arg(f2b.config_dir())
        .args(["-f", "-x"])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .env_remove("NOTIFY_SOCKET")
        .env("TZ", "UTC") // as the harness runs it
        .process_group(0)
        .spawn()
        .context("starting fail2ban-server")?;
    let mut server = Server(Some(child));
    let mut restored = 0;
    let mut first = None;
    let total = loop {
        for l in probe.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() >= 4 && f[0] == "ban" && f[1] == JAIL && f[3] == "1" {
                restored += 1;
                first.get_or_insert_with(|| start.elapsed());
            }
        }
        if restored >= n {
            break start.elapsed();
        }
        if let Some(c) = server.0.as_mut()
            && let Ok(Some(s)) = c.try_wait()
        {
            server.0 = None;
            bail!(
                "fail2ban-server exited ({s}) after {restored}/{n} restored\n{}",
                f2b.log_tail(20)
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "only {restored}/{n} bans restored within {} s\n{}",
                timeout.as_secs(),
                f2b.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Requests caused by the restart but sent a little later (the daemon's pass after pokes).
    std::thread::sleep(Duration::from_secs(2));
    let seen = proxy.seen();
    let errors = flog
        .lines()
        .iter()
        .filter(|l| l.contains(" ERROR ") || l.contains("Failed to execute"))
        .count();
    let stopping = Instant::now();
    let out = f2b.client(&["stop"]);
    let stopped = server
        .0
        .as_mut()
        .and_then(|c| wait_exit(c, Duration::from_secs(120)));
    let stop = stopping.elapsed();
    if stopped.is_none() || !out.status.success() {
        bail!(
            "fail2ban did not stop cleanly: {}{}",
            String::from_utf8_lossy(&out.stderr),
            f2b.log_tail(20)
        );
    }
    server.0 = None;
    Ok(RestoreRun {
        total,
        first,
        seen,
        errors,
        stop,
    })
}

/// Our own fail2ban-server; its process group is killed if still there when dropped.
pub struct Server(pub Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on the process group we created with process_group(0).
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
