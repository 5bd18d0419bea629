//! The ExaFS process: the virtualenv it runs from, spawning it in its own process group,
//! waiting for its first answer, killing the group.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};

use crate::http;

use super::START_TIMEOUT;

/// `$NETBAN_EXAFS_VENV`, else `$HOME/.cache/netban/venv`.
pub fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("NETBAN_EXAFS_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/netban/venv")
}

pub(super) fn has_flowapp(venv: &Path) -> bool {
    let Ok(entries) = fs::read_dir(venv.join("lib")) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| e.path().join("site-packages/flowapp/__init__.py").is_file())
}

pub(super) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn spawn(python: &Path, dir: &Path, tz: &str, port: u16, init: bool) -> Result<Child> {
    let log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .context("opening server.log")?;
    let log2 = log.try_clone().context("opening server.log")?;
    let mut cmd = Command::new(python);
    cmd.arg("run.py").arg(port.to_string()).arg("port");
    if init {
        cmd.args(["--init", "keys.json"]);
    }
    cmd.current_dir(dir)
        .env("TZ", tz)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("NETBAN_PARENT_PID", std::process::id().to_string())
        .env_remove("FLASK_APP")
        .env_remove("EXAFS_ENV")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    cmd.spawn()
        .with_context(|| format!("starting {} run.py", python.display()))
}

/// Waits for the port file, then for an HTTP answer. Returns the port.
pub(super) fn wait_ready(child: &mut Option<Child>, dir: &Path) -> Result<u16> {
    let deadline = Instant::now() + START_TIMEOUT;
    let fail = |what: String| {
        anyhow!(
            "ExaFS did not start: {what}\n--- {} (last lines) ---\n{}",
            dir.join("server.log").display(),
            log_tail(dir, 40)
        )
    };
    loop {
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            *child = None;
            return Err(fail(format!("the server exited with {status}")));
        }
        if Instant::now() > deadline {
            return Err(fail(format!("no answer within {START_TIMEOUT:?}")));
        }
        let port = fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok());
        if let Some(port) = port {
            let probe = http::request_with_timeout(
                &format!("127.0.0.1:{port}"),
                "GET",
                "/api/v3/auth",
                &[],
                None,
                Duration::from_secs(5),
            );
            // No key: ExaFS answers 403 "auth token is invalid".
            if probe.is_ok_and(|r| r.status == 403) {
                return Ok(port);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn log_tail(dir: &Path, lines: usize) -> String {
    let text = fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
