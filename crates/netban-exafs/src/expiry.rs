//! The expiry netban asks ExaFS for.
//!
//! ExaFS rounds expiry to the nearest 10 minutes and stores a time in the past as a withdrawn,
//! unannounced rule (reference/exafs.md), so netban asks for epoch seconds (the only
//! time-zone-safe form) rounded *up* to a 10-minute mark, at least one step ahead. Permanent
//! bans get `permanent_expiry` seconds and are renewed by the engine at half-life.

use netban_core::Until;

/// ExaFS rounds expiry to 10 minutes.
pub const EXPIRY_STEP: i64 = 600;

/// The remote expiry for leases ending at `until`.
pub fn remote_expiry(until: Until, now: i64, permanent: i64) -> i64 {
    let want = match until {
        Until::At(u) => u.max(now.saturating_add(EXPIRY_STEP)),
        Until::Never => now.saturating_add(permanent),
    };
    match want.rem_euclid(EXPIRY_STEP) {
        0 => want,
        r => want.saturating_add(EXPIRY_STEP - r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_rounded_up_to_ten_minutes() {
        let now = 1_795_309_602; // 01:06:42
        assert_eq!(
            remote_expiry(Until::At(now + 3600), now, 86_400),
            1_795_313_400
        ); // 02:06:42 -> 02:10
        // Already on a mark: unchanged.
        assert_eq!(
            remote_expiry(Until::At(1_795_313_400), now, 86_400),
            1_795_313_400
        );
        // Ending soon, or in the past: at least ten minutes ahead, then rounded up.
        assert_eq!(
            remote_expiry(Until::At(now + 5), now, 86_400),
            1_795_310_400
        ); // 01:16:42 -> 01:20
        assert_eq!(
            remote_expiry(Until::At(now - 100), now, 86_400),
            1_795_310_400
        );
        // Permanent: now + permanent_expiry, rounded up.
        assert_eq!(remote_expiry(Until::Never, now, 7 * 86_400), 1_795_914_600);
        for now in [0, 1, 599, 600, 601, 1_795_309_602] {
            for until in [Until::At(now), Until::At(now + 1234), Until::Never] {
                let e = remote_expiry(until, now, 3600);
                assert_eq!(e % 600, 0);
                assert!(e >= now + 600);
            }
        }
        // No overflow at the edge.
        assert_eq!(remote_expiry(Until::At(i64::MAX), 0, 3600), i64::MAX);
    }
}
