//! Retry timing shared by the reconcile engine and every driver's in-call retries.
//!
//! Drivers only say which failures are worth retrying ([`crate::sink::Retry`]); how long to
//! wait is decided here, the same way everywhere: exponential backoff from `initial` up to
//! `max`, with ±`jitter` so a fleet never retries in lockstep. [`within_deadline`] runs an
//! operation again while the failure is transient and the deadline leaves room for one more
//! try, which is what a request inside one call needs (ExaFS, a NETCONF reconnect, Redis).

use std::future::Future;
use std::time::{Duration, Instant};

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Relative jitter: 0.25 means ±25 %.
    pub jitter: f64,
}

impl Backoff {
    pub const fn new(initial: Duration, max: Duration, jitter: f64) -> Backoff {
        Backoff {
            initial,
            max,
            jitter,
        }
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base(attempt).as_secs_f64();
        let factor = 1.0 - self.jitter + fastrand::f64() * 2.0 * self.jitter;
        Duration::from_secs_f64((base * factor).max(0.0))
    }

    /// The delay without jitter.
    pub fn base(&self, attempt: u32) -> Duration {
        let exp = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let secs = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }
}

/// What an attempt of [`within_deadline`] asks for next.
pub enum Attempt<T, E> {
    /// Done (success or a failure not worth retrying).
    Done(Result<T, E>),
    /// A transient failure: try again if time allows.
    Again(E),
}

/// Runs `op` (given the attempt number, from 1) up to `max_attempts` times while it reports
/// a transient failure and the deadline leaves `min_left` after the pause. Returns the last
/// result and the number of attempts made.
pub async fn within_deadline<T, E, F, Fut>(
    backoff: Backoff,
    max_attempts: u32,
    deadline: Instant,
    min_left: Duration,
    mut op: F,
) -> (Result<T, E>, u32)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op(attempt).await {
            Attempt::Done(r) => return (r, attempt),
            Attempt::Again(e) => {
                let pause = backoff.delay(attempt);
                if attempt >= max_attempts || Instant::now() + pause + min_left >= deadline {
                    return (Err(e), attempt);
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_with_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 0.5);
        assert_eq!(b.base(1), Duration::from_millis(100));
        assert_eq!(b.base(2), Duration::from_millis(200));
        assert_eq!(b.base(5), Duration::from_secs(1));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(1));
        for _ in 0..100 {
            let d = b.delay(2);
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(300),
                "{d:?}"
            );
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_within_the_deadline() {
        let b = Backoff::new(Duration::from_millis(1), Duration::from_millis(2), 0.0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (r, n) = within_deadline(b, 5, deadline, Duration::ZERO, |i| async move {
            if i < 3 {
                Attempt::Again("down")
            } else {
                Attempt::Done(Ok::<_, &str>(i))
            }
        })
        .await;
        assert_eq!((r, n), (Ok(3), 3));
        // Out of attempts: the last failure.
        let (r, n) = within_deadline(b, 2, deadline, Duration::ZERO, |_| async {
            Attempt::<(), _>::Again("down")
        })
        .await;
        assert_eq!((r, n), (Err("down"), 2));
        // No time for another try: one attempt only.
        let soon = Instant::now() + Duration::from_millis(1);
        let (_, n) = within_deadline(b, 5, soon, Duration::from_secs(1), |_| async {
            Attempt::<(), _>::Again("down")
        })
        .await;
        assert_eq!(n, 1);
    }
}
