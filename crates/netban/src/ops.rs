//! The lease operations shared by the CLI and the daemon's control socket (used by the Python
//! fail2ban action): validate a request, pass the guard, write the lease. One code path, so a
//! ban that arrives over the socket is checked exactly like one from the command line.

use netban_core::guard::Guard;
use netban_core::store::Store;
use netban_core::{Lease, Origin, Target, Until, clock};

use crate::exit::{CliError, CliResult};

/// The default ban time when the request gives none.
pub const DEFAULT_BANTIME: i64 = 3600;

/// The meta key counting guard refusals (exported by the daemon's /metrics).
pub const GUARD_REFUSALS: &str = "guard_refusals";

/// A validated ban request.
#[derive(Debug, Clone)]
pub struct BanRequest {
    pub target: Target,
    pub jail: String,
    /// Seconds, -1 permanent.
    pub bantime: i64,
    /// Ban start (fail2ban's `<time>`), unix seconds.
    pub since: Option<i64>,
    pub restored: bool,
}

/// The raw strings of a ban, as fail2ban passes them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct BanInput {
    pub ip: String,
    #[serde(default)]
    pub jail: Option<String>,
    #[serde(default)]
    pub bantime: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub restored: Option<String>,
}

impl BanRequest {
    /// Validates every field; a bad one is a usage error (exit 2).
    pub fn parse(input: &BanInput) -> CliResult<BanRequest> {
        let target = parse_target(&input.ip)?;
        let jail = input.jail.clone().unwrap_or_else(|| "default".to_string());
        parse_jail(&jail)?;
        let bantime = match input.bantime.as_deref() {
            None | Some("") => DEFAULT_BANTIME,
            Some(s) => parse_bantime(s)?,
        };
        let since = match input.time.as_deref() {
            None | Some("") => None,
            Some(s) => Some(parse_time(s)?),
        };
        let restored = match input.restored.as_deref().unwrap_or("0") {
            "" | "0" | "false" => false,
            "1" | "true" => true,
            other => {
                return Err(CliError::Usage(format!(
                    "restored {other:?}: expected 0 or 1"
                )));
            }
        };
        Ok(BanRequest {
            target,
            jail,
            bantime,
            since,
            restored,
        })
    }

    pub fn until(&self, now: i64) -> Until {
        if self.bantime == -1 {
            Until::Never
        } else {
            Until::At(self.since.unwrap_or(now) + self.bantime)
        }
    }
}

/// What became of a ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanOutcome {
    /// The guard refused it; the reason was logged.
    Refused(String),
    /// It had already ended (a restored ban whose time ran out).
    Ended,
    /// Recorded; deliver it.
    Recorded,
}

/// Checks `req` against the guard and records the lease. Logs one line with the decision.
pub fn ban(store: &Store, guard: &Guard, req: &BanRequest) -> CliResult<BanOutcome> {
    let now = clock::now();
    let until = req.until(now);
    let (target, jail) = (req.target, &req.jail);
    if let Err(why) = guard.check(&target) {
        tracing::warn!("ban {target} (jail {jail}) skipped: {why}");
        count_refusal(store);
        return Ok(BanOutcome::Refused(why.to_string()));
    }
    if !until.is_live(now) {
        tracing::info!("ban {target} (jail {jail}) skipped: it already ended at {until}");
        return Ok(BanOutcome::Ended);
    }
    let lease = Lease {
        target,
        jail: jail.clone(),
        origin: Origin::Local,
        until,
        bantime: req.bantime,
        since: req.since.unwrap_or(now),
    };
    let prev = store.upsert_lease(&lease, now)?;
    let what = match (prev, req.restored) {
        (Some(p), _) if p == until => "kept",
        (Some(_), _) => "updated",
        (None, true) => "restored",
        (None, false) => "banned",
    };
    tracing::info!("{what} {target} (jail {jail}) until {until}");
    Ok(BanOutcome::Recorded)
}

/// Ends the local lease of `jail` on `target`; logs what is left.
pub fn unban(store: &Store, target: &Target, jail: &str) -> CliResult<bool> {
    if !store.remove_lease(target, jail, &Origin::Local)? {
        tracing::info!("unban {target} (jail {jail}): no such ban");
        return Ok(false);
    }
    let left = store.live_leases_of(clock::now(), std::slice::from_ref(target))?;
    if left.is_empty() {
        tracing::info!("unbanned {target} (jail {jail}); no ban left, removing it from the sinks");
    } else {
        let jails: Vec<&str> = left.iter().map(|l| l.jail.as_str()).collect();
        tracing::info!(
            "unbanned {target} (jail {jail}); still banned by {}",
            jails.join(", ")
        );
    }
    Ok(true)
}

/// fail2ban's actionflush: keeps network bans; logs how many.
pub fn flush(store: &Store, jail: Option<&str>) -> CliResult<usize> {
    let n = store.live_leases(clock::now(), jail)?.len();
    let scope = jail
        .map(|j| format!("jail {j}"))
        .unwrap_or_else(|| "all jails".into());
    tracing::info!("flush ({scope}): keeping {n} network bans; they end when their ban time does");
    Ok(n)
}

fn count_refusal(store: &Store) {
    if let Err(e) = store.bump_counter(GUARD_REFUSALS) {
        tracing::debug!("cannot count the refusal: {e}");
    }
}

/// Parses an address or network; a bad one is exit 2.
pub fn parse_target(ip: &str) -> CliResult<Target> {
    Target::parse(ip).map_err(|e| CliError::Usage(e.to_string()))
}

/// Checks a jail name; a bad one is exit 2.
pub fn parse_jail(jail: &str) -> CliResult<()> {
    netban_core::lease::validate_jail(jail).map_err(CliError::Usage)
}

/// Seconds, `-1` for permanent; fail2ban may print a float.
fn parse_bantime(s: &str) -> CliResult<i64> {
    let bad = || {
        CliError::Usage(format!(
            "bantime {s:?}: expected seconds (e.g. 3600) or -1 for permanent"
        ))
    };
    let v: f64 = s.parse().map_err(|_| bad())?;
    if !v.is_finite() {
        return Err(bad());
    }
    let v = v.round() as i64;
    if v == -1 || (1..=100 * 365 * 86_400).contains(&v) {
        Ok(v)
    } else {
        Err(bad())
    }
}

/// fail2ban's `<time>`: unix seconds, often a float.
fn parse_time(s: &str) -> CliResult<i64> {
    let bad = || {
        CliError::Usage(format!(
            "time {s:?}: expected unix seconds (e.g. 1795303972.0)"
        ))
    };
    let v: f64 = s.parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 || v > 1e11 {
        return Err(bad());
    }
    Ok(v.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bantime_forms() {
        assert_eq!(parse_bantime("600").ok(), Some(600));
        assert_eq!(parse_bantime("-1").ok(), Some(-1));
        assert_eq!(parse_bantime("600.0").ok(), Some(600));
        for bad in ["0", "-2", "abc", "1e30", "NaN", "inf", "600;reboot"] {
            assert!(parse_bantime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_forms() {
        assert_eq!(parse_time("1795303972.0").ok(), Some(1_795_303_972));
        assert_eq!(parse_time("1795303972").ok(), Some(1_795_303_972));
        assert!(parse_time("-5").is_err());
        assert!(parse_time("now").is_err());
    }

    #[test]
    fn requests_validate_every_field() {
        let ok = BanInput {
            ip: "2001:DB8::1".into(),
            jail: Some("sshd".into()),
            bantime: Some("-1".into()),
            time: None,
            restored: Some("1".into()),
        };
        let r = BanRequest::parse(&ok).unwrap();
        assert_eq!(r.target.to_string(), "2001:db8::1/128");
        assert_eq!(r.until(5), Until::Never);
        assert!(r.restored);
        let bad_jail = BanInput {
            jail: Some("a b".into()),
            ..ok.clone()
        };
        assert!(matches!(
            BanRequest::parse(&bad_jail),
            Err(CliError::Usage(_))
        ));
        let bad_restored = BanInput {
            restored: Some("yes".into()),
            ..ok
        };
        assert!(matches!(
            BanRequest::parse(&bad_restored),
            Err(CliError::Usage(_))
        ));
    }
}
