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

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::http::{self, truncate};

const CONFIG_PY: &str = include_str!("../exafs/config.py");
const RUN_PY: &str = include_str!("../exafs/run.py");
const SETUP_PY: &str = include_str!("../exafs/setup_exafs.py");
const DUMP_PY: &str = include_str!("../exafs/dump_rtbh.py");

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

/// One RTBH rule as ExaFS stores it (read from its database), in any state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RtbhRule {
    pub id: u64,
    pub ipv4: Option<String>,
    pub ipv4_mask: Option<u8>,
    pub ipv6: Option<String>,
    pub ipv6_mask: Option<u8>,
    /// Community id (1–3 in the test instance).
    pub community_id: i64,
    /// Community name, e.g. `65535:65283` (what the API calls `community`).
    pub community: String,
    pub comment: Option<String>,
    /// Unix seconds.
    pub expires: Option<i64>,
    /// Unix seconds.
    pub created: Option<i64>,
    /// Owner's uuid, e.g. `admin@example.com`.
    pub user: String,
    pub org_id: i64,
    /// 1 active, 2 withdrawn, 3 deleted, 4 whitelisted.
    pub rstate_id: i64,
    /// `active rule`, `withdrawed rule`, `deleted rule`, `whitelisted rule`.
    pub rstate: String,
}

impl RtbhRule {
    /// `address/mask` of whichever family the rule has, e.g. `192.0.2.1/32`.
    pub fn prefix(&self) -> String {
        match (&self.ipv4, &self.ipv6) {
            (Some(a), _) if !a.is_empty() => format!("{a}/{}", self.ipv4_mask.unwrap_or(32)),
            (_, Some(a)) => format!("{a}/{}", self.ipv6_mask.unwrap_or(128)),
            _ => String::new(),
        }
    }

    /// Whether ExaFS announces it (`rstate == "active rule"`).
    pub fn is_active(&self) -> bool {
        self.rstate_id == 1
    }

    fn matches(&self, addr: &str, mask: u8) -> bool {
        (self.ipv4.as_deref() == Some(addr) && self.ipv4_mask == Some(mask))
            || (self.ipv6.as_deref() == Some(addr) && self.ipv6_mask == Some(mask))
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

    /// Any request to this ExaFS (path from the root, e.g. `/api/v3/rules`), straight, not
    /// through a proxy.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<http::Response> {
        http::request(&self.authority(), method, path, headers, body)
    }

    /// A JWT for `key` (`GET /api/v3/auth`); errors with status and body otherwise.
    pub fn token(&self, key: &str) -> Result<String> {
        let r = self.request("GET", "/api/v3/auth", &[("x-api-key", key)], None)?;
        if r.status != 200 {
            bail!("GET /api/v3/auth: HTTP {}: {}", r.status, r.text());
        }
        r.json()?["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("GET /api/v3/auth: no token in {}", r.text()))
    }

    /// A call with a token for `key`, JSON body. Returns the raw response.
    pub fn api(
        &self,
        key: &str,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<http::Response> {
        let token = self.token(key)?;
        let body = json.map(|j| j.to_string());
        let mut headers = vec![("x-access-token", token.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.request(
            method,
            &format!("/api/v3{path}"),
            &headers,
            body.as_deref().map(str::as_bytes),
        )
    }

    /// Every RTBH rule ExaFS stores, any state, ordered by id, read from its database (works
    /// while the server is stopped). Panics with the reason if it cannot be read.
    pub fn rtbh_rules(&self) -> Vec<RtbhRule> {
        self.try_rtbh_rules()
            .unwrap_or_else(|e| panic!("reading ExaFS rules: {e:#}"))
    }

    /// [`ExaFs::rtbh_rules`] returning the error.
    pub fn try_rtbh_rules(&self) -> Result<Vec<RtbhRule>> {
        let out = Command::new(&self.python)
            .arg("dump_rtbh.py")
            .arg(self.db_path())
            .current_dir(self.dir())
            .env("TZ", &self.tz)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .output()
            .context("running dump_rtbh.py")?;
        if !out.status.success() {
            bail!(
                "dump_rtbh.py failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("parsing dump_rtbh.py output")
    }

    /// The rule with this id, if ExaFS still has it.
    pub fn rule(&self, id: u64) -> Option<RtbhRule> {
        self.rtbh_rules().into_iter().find(|r| r.id == id)
    }

    /// Rules (any state) whose address string and mask are exactly these, e.g.
    /// `("192.0.2.1", 32)` or `("2001:db8::1", 128)`. ExaFS matches by string, so
    /// `2001:DB8::1` would be a different rule.
    pub fn rules_for(&self, addr: &str, mask: u8) -> Vec<RtbhRule> {
        self.rtbh_rules()
            .into_iter()
            .filter(|r| r.matches(addr, mask))
            .collect()
    }

    /// Number of rules (any state) for exactly this address string and mask.
    pub fn count_rules_for(&self, addr: &str, mask: u8) -> usize {
        self.rules_for(addr, mask).len()
    }

    /// Deletes a rule through the API as the operator (a human removing netban's rule behind
    /// its back). Panics unless ExaFS answers 201.
    pub fn delete_rule(&self, id: u64) {
        let r = self
            .api(
                self.operator_key(),
                "DELETE",
                &format!("/rules/rtbh/{id}"),
                None,
            )
            .unwrap_or_else(|e| panic!("deleting ExaFS rule {id}: {e:#}"));
        assert_eq!(
            r.status,
            201,
            "deleting ExaFS rule {id}: HTTP {}: {}",
            r.status,
            r.text()
        );
    }

    /// Creates a rule through the API as the operator, with community 1 and this comment
    /// (e.g. not netban's). `prefix` is `addr/mask` as ExaFS should store it; `expires` is
    /// unix seconds. Returns the rule id; panics unless ExaFS answers 201.
    pub fn create_foreign_rule(&self, prefix: &str, expires: i64, comment: &str) -> u64 {
        let (addr, mask) = prefix
            .split_once('/')
            .unwrap_or_else(|| panic!("create_foreign_rule: {prefix:?} is not addr/mask"));
        let mask: u8 = mask
            .parse()
            .unwrap_or_else(|_| panic!("create_foreign_rule: bad mask in {prefix:?}"));
        let mut body = serde_json::json!({
            "community": 1,
            "expires": expires,
            "comment": comment,
        });
        let family = if addr.contains(':') { "ipv6" } else { "ipv4" };
        body[family] = addr.into();
        body[format!("{family}_mask")] = mask.into();
        let r = self
            .api(self.operator_key(), "POST", "/rules/rtbh", Some(&body))
            .unwrap_or_else(|e| panic!("creating ExaFS rule {prefix}: {e:#}"));
        assert_eq!(
            r.status,
            201,
            "creating ExaFS rule {prefix}: HTTP {}: {}",
            r.status,
            r.text()
        );
        r.json()
            .ok()
            .and_then(|j| j["rule"]["id"].as_u64())
            .unwrap_or_else(|| panic!("creating ExaFS rule {prefix}: no id in {}", r.text()))
    }

    /// What ExaFS' cron job does: `GET /rules/withdraw_expired` (withdraws expired rules,
    /// deletes old ones). Panics unless it answers 200.
    pub fn withdraw_expired(&self) {
        let r = self
            .request("GET", "/rules/withdraw_expired", &[], None)
            .unwrap_or_else(|e| panic!("ExaFS withdraw_expired: {e:#}"));
        assert_eq!(
            r.status,
            200,
            "ExaFS withdraw_expired: HTTP {}: {}",
            r.status,
            truncate(&r.text(), 500)
        );
    }

    /// Adds an ExaFS whitelist entry (`prefix` = `addr/mask`, `expires` unix seconds) as the
    /// web UI does: matching active RTBH rules become `whitelisted rule`, and later rules
    /// inside it are stored whitelisted. Returns ExaFS' message. Panics on failure.
    pub fn add_whitelist(&self, prefix: &str, expires: i64, comment: &str) -> String {
        let out = Command::new(&self.python)
            .args(["setup_exafs.py", "whitelist", prefix, &expires.to_string()])
            .arg(comment)
            .current_dir(self.dir())
            .env("TZ", &self.tz)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running setup_exafs.py whitelist: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ExaFS whitelist {prefix} failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|j| j["message"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for ExaFs {
    fn drop(&mut self) {
        kill_group(&mut self.lock());
    }
}

/// `$NETBAN_EXAFS_VENV`, else `$HOME/.cache/netban/venv`.
pub fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("NETBAN_EXAFS_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/netban/venv")
}

fn has_flowapp(venv: &Path) -> bool {
    let Ok(entries) = fs::read_dir(venv.join("lib")) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| e.path().join("site-packages/flowapp/__init__.py").is_file())
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn spawn(python: &Path, dir: &Path, tz: &str, port: u16, init: bool) -> Result<Child> {
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
fn wait_ready(child: &mut Option<Child>, dir: &Path) -> Result<u16> {
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

fn kill_group(child: &mut Option<Child>) {
    let Some(mut c) = child.take() else { return };
    let Ok(pid) = i32::try_from(c.id()) else {
        let _ = c.kill();
        let _ = c.wait();
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group we created with
    // process_group(0); no memory is involved.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break,
        }
    }
    // Still there after 5 s: SIGKILL the whole group before reaping the leader (so the group
    // id cannot have been reused meanwhile).
    // SAFETY: as above.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = c.kill();
    let _ = c.wait();
}

fn log_tail(dir: &Path, lines: usize) -> String {
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
