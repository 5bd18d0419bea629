//! A real ExaFS 1.4.1 (from PyPI) on a free loopback port, for netban's integration tests.
//!
//! [`ExaFs::start`] copies the helper scripts of `crates/netban-testsupport/exafs/` into a fresh
//! temporary directory, creates the SQLite database, the users, organisations and API keys in
//! one Python process, and serves the app with werkzeug (threaded) on `127.0.0.1`. The process
//! group is killed on drop (and the server exits on its own if the test process dies).
//! `TESTING = True`: nothing is sent to ExaBGP. All calls are blocking and need no runtime, so
//! they work from `#[test]` and `#[tokio::test]` alike.
//!
//! # Facts observed against this ExaFS 1.4.1 (checked by `tests/harness.rs`)
//!
//! - **Start-up**: 0.8–2 s from spawn to the first answer (migrations + users + keys + serve,
//!   one Python process, 2-core machine, more under parallel load); `restart()` about 0.7 s.
//! - **JWT**: `GET /api/v3/auth` with `x-api-key` → 200 `{"token": JWT}`. The `exp` claim is
//!   `now + 1800` s with the server in UTC; with the server in `Europe/Prague` in winter it is
//!   `now + 5400` (naive local time read as UTC); in `America/New_York` the token is born
//!   expired (every call → 401 `"auth token expired"`). [`ExaFsOptions::tz`] reproduces this.
//! - **Key errors** (all on `GET /auth`): unknown key → 403 `{"message": "auth token is
//!   invalid"}`; expired key → 401 `"auth token is expired"`; key bound to another machine →
//!   403 `"auth token is not valid from machine 127.0.0.1"`.
//! - **Token errors**: no `x-access-token` → 401 `"auth token is missing"`; bad signature /
//!   garbage → 403 `"auth token is invalid"`; expired → 401 `"auth token expired"`.
//! - **POST /api/v3/rules/rtbh** → **201** `{"message": ["RTBH Rule saved"], "rule": {...}}`.
//!   The same address+mask+community again → **201, same id**, message
//!   `["Existing RTBH Rule found. Expiration time was updated to new value."]`, expiry
//!   overwritten (also when shorter). `rule` keys: `id, ipv4, ipv4_mask, ipv6, ipv6_mask`
//!   (the other family is `null`), `community` (the *name*, e.g. `"65535:65283"`), `comment`
//!   (`"` stored as `&quot;`), `expires`, `created`, `user` (uuid), `rstate`. When `expires`
//!   was sent as epoch seconds the response's `expires`/`created` are epoch integers, rounded
//!   to 10 minutes. The match ignores state, owner and comment: POSTing a rule an operator
//!   made returns *their* id, keeps their comment and owner; POSTing a withdrawn rule with a
//!   future expiry re-activates it (same id). An expiry in the past → 201, `"withdrawed rule"`.
//! - **Read-only key** → 403 `{"message": "read only token can't perform this action"}`.
//! - **Out of the org's ranges** → 400 `{"message": "error - invalid request data",
//!   "validation_errors": {"ipv4": ["IPv4 or IPv6 address must be in organization range :
//!   ['198.51.100.0/24', '2001:db8:100::/48']."], "ipv6": [same]}}`.
//! - **DELETE /api/v3/rules/rtbh/ID** → **201** `{"message": "rule deleted"}`; again → **404**
//!   `{"message": "rule ID not found "}` (trailing space). The row is really deleted. A
//!   non-admin deleting somebody else's rule → **401** `"not allowed to delete this rule"`.
//! - **GET /api/v3/rules?time_format=timestamp** (admin) → 200 `{"flowspec_ipv4_rw": [],
//!   "flowspec_ipv6_rw": [], "rtbh_any_rw": [rule, ...]}`; a non-admin also gets
//!   `flowspec_ipv4_ro`, `flowspec_ipv6_ro`, `rtbh_any_ro`. Rules of every state are listed,
//!   ordered by expiry, newest first. In timestamp mode `expires` and `created` are integers
//!   (unix seconds); without it they are strings `"MM/DD/YYYY HH:MM"` in server local time.
//!   `rstate` is always a **string**: `"active rule"`, `"withdrawed rule"`, `"deleted rule"`,
//!   `"whitelisted rule"`.
//! - **Connections**: werkzeug answers `HTTP/1.1` but sends `Connection: close` on every
//!   response: no keep-alive to ExaFS itself (put a [`crate::proxy::FaultProxy`] in front to
//!   test a keep-alive client).
//!
//! # Users and keys set up in every instance
//!
//! | key | user (role) | org (ranges) | machine |
//! |---|---|---|---|
//! | [`ExaFs::api_key`] | `admin@example.com` (admin) | 1 `Uncategorized` (`0.0.0.0/0 ::/0`) | 127.0.0.1 |
//! | [`ExaFs::readonly_key`] | same, read-only | 1 | 127.0.0.1 |
//! | [`ExaFs::wrong_machine_key`] | same | 1 | 10.9.9.9 |
//! | [`ExaFs::expired_key`] | same, expired yesterday | 1 | 127.0.0.1 |
//! | [`ExaFs::limited_key`] | `limited@example.com` (user) | `Limited` (`198.51.100.0/24 2001:db8:100::/48`) | 127.0.0.1 |
//! | [`ExaFs::operator_key`] | `operator@example.com` (admin) | 1 | 127.0.0.1 |
//!
//! The operator key stands for a human using ExaFS behind netban's back: the drift helpers
//! ([`ExaFs::delete_rule`], [`ExaFs::create_foreign_rule`]) use it. Communities 1–3 are
//! `65535:65283`, `64496:64511`, `64497:64510`.
//!
//! The pieces: `rules` (the API and database helpers a test reads and edits rules with),
//! `process` (the virtualenv, spawning and waiting for the server, its process group).

mod process;
mod rules;

pub use process::{now_unix, venv_dir};
pub use rules::RtbhRule;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::process::kill_group;
use process::{has_flowapp, log_tail, random_hex, spawn, wait_ready};

const CONFIG_PY: &str = include_str!("../../exafs/config.py");
const RUN_PY: &str = include_str!("../../exafs/run.py");
const SETUP_PY: &str = include_str!("../../exafs/setup_exafs.py");
const DUMP_PY: &str = include_str!("../../exafs/dump_rtbh.py");

/// How long [`ExaFs::start`] / [`ExaFs::restart`] wait for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Options for [`ExaFs::start_with`].
#[derive(Debug, Clone)]
pub struct ExaFsOptions {
    /// `TZ` of the ExaFS process (default `UTC`). ExaFS stores naive local times and builds
    /// the JWT `exp` from local time, so e.g. `Europe/Prague` shows the token-lifetime bug.
    pub tz: String,
}

impl Default for ExaFsOptions {
    fn default() -> Self {
        ExaFsOptions { tz: "UTC".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Keys {
    api_key: String,
    readonly_key: String,
    wrong_machine_key: String,
    expired_key: String,
    limited_key: String,
    operator_key: String,
}

/// A running ExaFS. Dropping it kills the server and removes its directory.
#[derive(Debug)]
pub struct ExaFs {
    child: Mutex<Option<Child>>,
    port: u16,
    keys: Keys,
    python: PathBuf,
    tz: String,
    startup: Duration,
    // Last, so the directory goes after the process is dead.
    dir: tempfile::TempDir,
}

impl ExaFs {
    /// Starts a fresh ExaFS in UTC. Fails with a hint when ExaFS is not installed.
    pub fn start() -> Result<ExaFs> {
        Self::start_with(ExaFsOptions::default())
    }

    /// Starts a fresh ExaFS with options.
    pub fn start_with(options: ExaFsOptions) -> Result<ExaFs> {
        let venv = venv_dir();
        let python = venv.join("bin/python");
        if !python.exists() || !has_flowapp(&venv) {
            bail!(
                "ExaFS is not installed in {} (NETBAN_EXAFS_VENV): run scripts/test (it installs \
                 ExaFS into NETBAN_EXAFS_VENV)",
                venv.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("netban-exafs-")
            .tempdir()
            .context("creating a temporary directory for ExaFS")?;
        let d = dir.path();
        for (name, text) in [
            ("config.py", CONFIG_PY),
            ("run.py", RUN_PY),
            ("setup_exafs.py", SETUP_PY),
            ("dump_rtbh.py", DUMP_PY),
        ] {
            fs::write(d.join(name), text).with_context(|| format!("writing {name}"))?;
        }
        fs::write(d.join("jwt_secret"), random_hex(32)?).context("writing jwt_secret")?;
        fs::write(d.join("secret_key"), random_hex(32)?).context("writing secret_key")?;

        let began = Instant::now();
        let child = spawn(&python, d, &options.tz, 0, true)?;
        let mut child = Some(child);
        let port = match wait_ready(&mut child, d) {
            Ok(port) => port,
            Err(e) => {
                kill_group(&mut child);
                return Err(e);
            }
        };
        let keys: Keys = fs::read(d.join("keys.json"))
            .context("reading keys.json")
            .and_then(|b| serde_json::from_slice(&b).context("parsing keys.json"))
            .inspect_err(|_| kill_group(&mut child))?;
        Ok(ExaFs {
            child: Mutex::new(child),
            port,
            keys,
            python,
            tz: options.tz,
            startup: began.elapsed(),
            dir,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash; the API is under `/api/v3`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/api/v3`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.url())
    }

    /// `127.0.0.1:PORT`, e.g. as the upstream of a [`crate::proxy::FaultProxy`].
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Admin, read-write, machine 127.0.0.1, org 0.0.0.0/0 ::/0.
    pub fn api_key(&self) -> &str {
        &self.keys.api_key
    }

    /// Admin, read-only: token works, POST/DELETE answer 403.
    pub fn readonly_key(&self) -> &str {
        &self.keys.readonly_key
    }

    /// Bound to machine 10.9.9.9: `GET /auth` from here answers 403.
    pub fn wrong_machine_key(&self) -> &str {
        &self.keys.wrong_machine_key
    }

    /// Expired yesterday: `GET /auth` answers 401 "auth token is expired".
    pub fn expired_key(&self) -> &str {
        &self.keys.expired_key
    }

    /// Non-admin user whose org covers only 198.51.100.0/24 and 2001:db8:100::/48.
    pub fn limited_key(&self) -> &str {
        &self.keys.limited_key
    }

    /// A second admin ("a human operator"); used by the drift helpers.
    pub fn operator_key(&self) -> &str {
        &self.keys.operator_key
    }

    /// The instance directory (config.py, exafs.db, server.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir().join("exafs.db")
    }

    /// stdout+stderr of the server (all runs, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("server.log")
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.dir(), lines)
    }

    /// How long the last start or restart took until the server answered.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Whether the server process is running (it may still be starting).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock();
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                *child = None;
                false
            }
            None => false,
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL, to its process group). The port then refuses
    /// connections; the database is kept. Stopping a stopped server is fine.
    pub fn stop(&self) -> Result<()> {
        kill_group(&mut self.lock());
        Ok(())
    }

    /// Starts the server again on the same port with the same database and keys (stops it
    /// first if running). Fails if the port was taken meanwhile.
    pub fn restart(&self) -> Result<()> {
        let mut child = self.lock();
        kill_group(&mut child);
        let _ = fs::remove_file(self.dir().join("port"));
        *child = Some(spawn(&self.python, self.dir(), &self.tz, self.port, false)?);
        match wait_ready(&mut child, self.dir()) {
            Ok(_) => Ok(()),
            Err(e) => {
                kill_group(&mut child);
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ExaFs {
    fn drop(&mut self) {
        kill_group(&mut self.lock());
    }
}
