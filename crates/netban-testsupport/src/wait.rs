//! Waiting for something a test can observe, instead of sleeping a fixed time.
//!
//! The machine that runs the tests is shared and often loaded, so every wait polls with a
//! generous timeout and, when it gives up, panics with what it waited for and everything the
//! test can say about the state it found (`ctx`: logs, rules, request counts).

use std::time::{Duration, Instant};

/// Polls `f` every `poll` until it returns `Some`, and returns that value; panics after
/// `timeout` with `what` and `ctx()`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    ctx: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}\n{}", ctx());
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_and_panics_with_the_context() {
        let mut n = 0;
        let v = wait_until(
            "three polls",
            Duration::from_secs(5),
            Duration::from_millis(1),
            String::new,
            || {
                n += 1;
                (n == 3).then_some(n)
            },
        );
        assert_eq!(v, 3);
        let e = std::panic::catch_unwind(|| {
            wait_until(
                "never",
                Duration::from_millis(20),
                Duration::from_millis(5),
                || "the context".to_string(),
                || None::<()>,
            )
        })
        .expect_err("it gives up");
        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("never: not within") && msg.contains("the context"),
            "{msg}"
        );
    }
}
