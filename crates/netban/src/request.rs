//! Ban requests as fail2ban sends them (strings), validated into core's typed request.
//!
//! The CLI and the control socket (the Python action) both come through here, so a ban is
//! validated the same way whoever sends it. Every field is checked before anything is
//! written: bad input is exit 2 and touches nothing.

use netban_core::leases::BanRequest;
use netban_core::outbox::Cause;
use netban_core::store::LeaseFacts;
use netban_core::{Origin, Target, Until};

use crate::exit::{CliError, CliResult};

/// The default ban time when the request gives none.
pub const DEFAULT_BANTIME: i64 = 3600;
/// The longest ban time accepted (100 years).
const MAX_BANTIME: i64 = 100 * 365 * 86_400;
/// How far in the future a ban's start may be (clock skew); beyond, the time is wrong.
const MAX_FUTURE: i64 = 86_400;

/// The raw strings of a ban, as fail2ban passes them.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
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
    #[serde(default)]
    pub failures: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
}

/// Validates every field; a bad one is a usage error (exit 2).
pub fn parse(input: &BanInput, now: i64) -> CliResult<BanRequest> {
    let target = parse_target(&input.ip)?;
    let jail = input.jail.clone().unwrap_or_else(|| "default".to_string());
    parse_jail(&jail)?;
    let bantime = match input.bantime.as_deref() {
        None | Some("") => DEFAULT_BANTIME,
        Some(s) => parse_bantime(s)?,
    };
    let since = match input.time.as_deref() {
        None | Some("") => now,
        Some(s) => parse_time(s, now)?,
    };
    let restored = match input.restored.as_deref().unwrap_or("0") {
        "" | "0" | "false" => false,
        "1" | "true" => true,
        other => {
            return Err(CliError::Usage(format!(
                "restored {:?}: expected 0 or 1",
                short(other)
            )));
        }
    };
    let failures = match input.failures.as_deref() {
        None | Some("") => None,
        Some(f) => f.parse::<i64>().ok().filter(|n| *n >= 0),
    };
    let port = input
        .port
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(clean_port);
    let until = if bantime == -1 {
        Until::Never
    } else {
        Until::At(since.saturating_add(bantime))
    };
    Ok(BanRequest {
        target,
        jail,
        origin: Origin::Local,
        until,
        bantime,
        since,
        facts: LeaseFacts {
            cause: if restored { Cause::Restore } else { Cause::Ban },
            failures,
            port,
        },
    })
}

/// fail2ban's jail `port` setting (`ssh`, `22,2222`, `http,https`): kept as a fact for the
/// statistics, printable and short.
fn clean_port(p: &str) -> String {
    p.chars()
        .filter(|c| c.is_ascii_alphanumeric() || ",-:_ ".contains(*c))
        .take(64)
        .collect()
}

/// Parses an address or network; a bad one is exit 2.
pub fn parse_target(ip: &str) -> CliResult<Target> {
    Target::parse(ip).map_err(|e| CliError::Usage(e.to_string()))
}

/// Checks a jail name; a bad one is exit 2.
pub fn parse_jail(jail: &str) -> CliResult<()> {
    netban_core::lease::validate_jail(jail).map_err(CliError::Usage)
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Seconds, `-1` for permanent; fail2ban may print a float (`600.0`).
fn parse_bantime(s: &str) -> CliResult<i64> {
    let bad = || {
        CliError::Usage(format!(
            "bantime {:?}: expected seconds from 1 to {MAX_BANTIME} (e.g. 3600), or -1 for permanent",
            short(s)
        ))
    };
    let v: f64 = s.parse().map_err(|_| bad())?;
    // -1 exactly is permanent; any other negative (even -0.5, which rounds to -1) is wrong.
    if v == -1.0 {
        return Ok(-1);
    }
    if !v.is_finite() || v < 1.0 || v > MAX_BANTIME as f64 {
        return Err(bad());
    }
    Ok(v.round() as i64)
}

/// fail2ban's `<time>`: unix seconds, often a float; not far in the future.
fn parse_time(s: &str, now: i64) -> CliResult<i64> {
    let bad = |why: &str| {
        CliError::Usage(format!(
            "time {:?}: {why} (expected fail2ban's <time>, unix seconds such as 1795303972.0)",
            short(s)
        ))
    };
    let v: f64 = s.parse().map_err(|_| bad("not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad("not a time"));
    }
    if v > (now + MAX_FUTURE) as f64 {
        return Err(bad("more than a day in the future"));
    }
    Ok(v.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_303_972;

    #[test]
    fn bantime_forms() {
        assert_eq!(parse_bantime("600").ok(), Some(600));
        assert_eq!(parse_bantime("-1").ok(), Some(-1));
        assert_eq!(parse_bantime("-1.0").ok(), Some(-1));
        assert_eq!(parse_bantime("600.0").ok(), Some(600));
        for bad in [
            "0",
            "0.4",
            "-2",
            "-0.5",
            "-1.4",
            "abc",
            "1e30",
            "NaN",
            "inf",
            "600;reboot",
        ] {
            assert!(parse_bantime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_forms() {
        assert_eq!(parse_time("1795303972.0", NOW).ok(), Some(NOW));
        assert_eq!(parse_time("1795303972", NOW).ok(), Some(NOW));
        assert!(parse_time("-5", NOW).is_err());
        assert!(parse_time("now", NOW).is_err());
        // Issue 6: a start in the year 5138 made a 600 s ban a rule for millennia.
        assert!(parse_time("99999999999", NOW).is_err());
        assert!(parse_time(&(NOW + 3600).to_string(), NOW).is_ok());
    }

    #[test]
    fn requests_validate_every_field() {
        let ok = BanInput {
            ip: "2001:DB8::1".into(),
            jail: Some("sshd".into()),
            bantime: Some("-1".into()),
            restored: Some("1".into()),
            port: Some("ssh;rm".into()),
            ..BanInput::default()
        };
        let r = parse(&ok, NOW).unwrap();
        assert_eq!(r.target.to_string(), "2001:db8::1/128");
        assert_eq!(r.until, Until::Never);
        assert_eq!(r.facts.cause, Cause::Restore);
        assert_eq!(r.facts.port.as_deref(), Some("sshrm"));
        for bad in [
            BanInput {
                jail: Some("a b".into()),
                ..ok.clone()
            },
            BanInput {
                jail: Some("-x".into()),
                ..ok.clone()
            },
            BanInput {
                restored: Some("yes".into()),
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(parse(&bad, NOW), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_303_972;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Whatever fail2ban (or a local user on the control socket) sends: refused, or a ban
        /// with a canonical target, a safe jail and sane times.
        #[test]
        fn any_ban_input_is_refused_or_sane(
            ip in "\\PC{0,40}|[0-9a-fA-F:./]{1,40}",
            jail in proptest::option::of("\\PC{0,70}"),
            bantime in proptest::option::of("\\PC{0,20}|-?[0-9]{1,12}(\\.[0-9]{1,3})?|-1"),
            time in proptest::option::of("\\PC{0,20}|[0-9]{1,12}(\\.[0-9]{1,3})?"),
            restored in proptest::option::of("\\PC{0,3}"),
            port in proptest::option::of("\\PC{0,100}"),
        ) {
            let input = BanInput { ip, jail, bantime, time, restored, failures: None, port };
            if let Ok(r) = parse(&input, NOW) {
                prop_assert_eq!(Target::parse(&r.target.to_string()).ok(), Some(r.target));
                prop_assert!(netban_core::lease::validate_jail(&r.jail).is_ok());
                prop_assert!(r.bantime == -1 || (1..=MAX_BANTIME).contains(&r.bantime));
                prop_assert!(r.since <= NOW + MAX_FUTURE);
                if let Some(p) = &r.facts.port {
                    prop_assert!(p.len() <= 64 && !p.contains(';'));
                }
            }
        }

        /// Any line on the control socket: a request or an error, never a panic.
        #[test]
        fn any_control_line_parses_or_is_refused(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = serde_json::from_slice::<crate::protocol::Request>(&line);
        }

        #[test]
        fn json_ban_requests_with_hostile_values_are_validated(ip in "\\PC{0,30}", jail in "\\PC{0,30}") {
            let line = serde_json::json!({"op": "ban", "ip": ip, "jail": jail}).to_string();
            if let Ok(crate::protocol::Request::Ban(input)) = serde_json::from_str(&line)
                && let Ok(r) = parse(&input, NOW)
            {
                prop_assert!(netban_core::lease::validate_jail(&r.jail).is_ok());
            }
        }
    }
}
