//! What every link (publisher, receiver, fanout bridge) does between two sessions: say why the
//! last one ended (the first time, then at each power of two, so a long outage does not flood
//! the log), record the link as down, and wait with backoff, reset once a session got
//! connected.

use std::time::Duration;

use netban_core::retry::Backoff;

use crate::status::{Link, Live};

/// Backoff between sessions of every link.
pub(crate) const RECONNECT: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_secs(30), 0.25);

/// The reconnect state of one link.
pub(crate) struct Reconnect {
    link: Link,
    attempt: u32,
}

impl Reconnect {
    pub(crate) fn new(link: Link) -> Reconnect {
        Reconnect { link, attempt: 0 }
    }

    /// A session ended: `connected` if it got as far as being up, `error` why it ended
    /// (`None` for a clean end). Logs with `said(error)`, marks the link down, and returns how
    /// long to wait before the next session.
    pub(crate) fn ended(
        &mut self,
        live: &Live,
        connected: bool,
        error: Option<String>,
        said: impl Fn(&str) -> String,
    ) -> Duration {
        if connected {
            self.attempt = 0;
        }
        self.attempt += 1;
        if let Some(e) = error {
            if self.attempt == 1 || self.attempt.is_power_of_two() {
                tracing::warn!("{}", said(&e));
            }
            live.down(self.link, e);
        }
        RECONNECT.delay(self.attempt)
    }
}
