//! Text the harness reads and writes: syslog timestamps for failure lines, fail2ban-client's
//! Python lists.

use std::time::{SystemTime, UNIX_EPOCH};

/// `['192.0.2.1', '2001:db8::1']` -> the strings between quotes.
pub(super) fn parse_py_list(s: &str) -> Vec<String> {
    s.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

pub(super) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A syslog timestamp in UTC (`Nov 21 10:00:00`); the server runs with `TZ=UTC`.
pub(super) fn syslog_stamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (_, month, day) = civil_from_days(days as i64);
    format!(
        "{} {:02} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        // 2026-11-21 10:00:00 UTC
        assert_eq!(
            syslog_stamp(UNIX_EPOCH + Duration::from_secs(1_795_255_200)),
            "Nov 21 10:00:00"
        );
    }

    #[test]
    fn python_lists() {
        assert_eq!(
            parse_py_list("['192.0.2.1', '2001:db8::1']\n"),
            ["192.0.2.1", "2001:db8::1"]
        );
        assert!(parse_py_list("[]\n").is_empty());
    }
}
