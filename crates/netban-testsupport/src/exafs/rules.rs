//! What a test does with ExaFS's rules: requests to its API with a key's token, the RTBH
//! rules read from its database, and the operator's edits behind netban's back.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::http::{self, truncate};

use super::ExaFs;

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

impl ExaFs {
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
