//! What a pass did, per sink and in all: `sync` prints it, the daemon's metrics read it.

use serde::Serialize;

/// What a pass did on one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkReport {
    pub sink: String,
    pub added: usize,
    pub extended: usize,
    pub removed: usize,
    pub failed: usize,
    /// Steps waiting for their retry time.
    pub deferred: usize,
    /// Steps the deadline left for later.
    pub not_attempted: usize,
    /// Drift found and repaired from the sink's listing: records corrected, entries adopted,
    /// duplicates removed, vanished entries forgotten. (A vanished entry that is put back
    /// counts as added, once.)
    pub repaired: usize,
    /// Entries left on the sink on purpose, not netban's to remove (see `netban status`).
    pub kept: usize,
    /// Another process held the sink's lock until the deadline.
    pub busy: bool,
    /// An `exclusive` sink another netban writes now (it holds the fleet's lock): nothing
    /// was tried, and nothing is this host's to converge.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub standby: bool,
    /// With `--dry-run`: what the pass would send, one line per request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// The last error, if any.
    pub error: Option<String>,
}

impl SinkReport {
    pub fn new(sink: &str) -> SinkReport {
        SinkReport {
            sink: sink.to_string(),
            ..SinkReport::default()
        }
    }

    /// True when nothing is left to do on this sink (by this host: a standby's exclusive
    /// sink is the lock holder's to converge).
    pub fn converged(&self) -> bool {
        self.standby
            || self.failed == 0
                && self.deferred == 0
                && self.not_attempted == 0
                && self.error.is_none()
                && !self.busy
    }

    /// The changes made (or, in a dry run, that would be made).
    pub fn changes(&self) -> usize {
        self.added + self.extended + self.removed
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    pub sinks: Vec<SinkReport>,
}

impl PassReport {
    pub fn converged(&self) -> bool {
        self.sinks.iter().all(SinkReport::converged)
    }
    pub fn changes(&self) -> usize {
        self.sinks.iter().map(SinkReport::changes).sum()
    }
}
