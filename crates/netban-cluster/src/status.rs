//! What `netban cluster status`, `netban status` and `/metrics` show about the cluster.
//!
//! Two sources: the state database (per peer: the newest event taken, its sequence, the
//! counts by cause; the stream cursor), which any process can read, and the running parts'
//! live state ([`Live`]: connected or not, the last error, the stream's head), which only the
//! daemon has. [`from_store`] gives the first alone (the CLI without a daemon).
//!
//! The lag is the stream's head against the cursor: entry ids are millisecond times, so
//! `(head_ms - cursor_ms) / 1000` seconds while behind, 0 once caught up ([`lag_seconds`]).
//! The receiver reads the head itself, cheaply: when a session starts, at most once a second
//! while it reads full pages (catching up), and from each short page or empty read, which
//! says it reached the head.

use std::collections::BTreeMap;
use std::sync::Mutex;

use netban_core::clock;
use netban_core::outbox::Consumer;
use netban_core::store::{PeerMark, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::counts::{Counts, Verdict};
use crate::node::Node;

/// The outbox consumer of the publisher.
pub const PUBLISHER_CONSUMER: &str = "cluster";
/// The outbox consumer of the fanout announcer.
pub const FANOUT_CONSUMER: &str = "fanout";
/// The stream reader's cursor name in `cluster_bus`.
pub const RECEIVER_CURSOR: &str = "receiver";

/// One connection's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub connected: bool,
    /// Unix seconds of the last connect or disconnect.
    pub since: Option<i64>,
    /// The last error (credentials redacted).
    pub last_error: Option<String>,
}

/// The running parts' state (the daemon's).
#[derive(Debug, Default)]
pub struct Live {
    inner: Mutex<LiveInner>,
}

#[derive(Debug, Default, Clone)]
struct LiveInner {
    publisher: LinkStatus,
    receiver: LinkStatus,
    fanout: LinkStatus,
    stream_head: Option<String>,
    published: u64,
}

/// Which connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Link {
    Publisher,
    Receiver,
    Fanout,
}

impl Live {
    fn with<T>(&self, f: impl FnOnce(&mut LiveInner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn up(&self, link: Link) {
        self.with(|l| {
            let s = l.slot(link);
            if !s.connected {
                s.connected = true;
                s.since = Some(clock::now());
            }
        });
    }

    pub(crate) fn down(&self, link: Link, error: String) {
        self.with(|l| {
            let s = l.slot(link);
            if s.connected {
                s.since = Some(clock::now());
            }
            s.connected = false;
            s.last_error = Some(error);
        });
    }

    /// The stream's newest entry, as the receiver last read it.
    pub(crate) fn stream_head(&self, id: &str) {
        self.with(|l| l.stream_head = Some(id.to_string()));
    }

    /// The stream reaches at least `id` (an entry just read, past a head read earlier).
    pub(crate) fn stream_head_at_least(&self, id: &str) {
        self.with(|l| {
            let known = l.stream_head.as_deref().and_then(crate::redis::parse_id);
            if crate::redis::parse_id(id).is_some_and(|new| known.is_none_or(|k| new > k)) {
                l.stream_head = Some(id.to_string());
            }
        });
    }

    pub(crate) fn published(&self, n: u64) {
        self.with(|l| l.published += n);
    }
}

impl LiveInner {
    fn slot(&mut self, link: Link) -> &mut LinkStatus {
        match link {
            Link::Publisher => &mut self.publisher,
            Link::Receiver => &mut self.receiver,
            Link::Fanout => &mut self.fanout,
        }
    }
}

/// The Redis bus.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BusStatus {
    /// The URL, credentials redacted.
    pub url: Option<String>,
    pub publisher: LinkStatus,
    pub receiver: LinkStatus,
    /// Local events waiting to be published (the outbox is the buffer while Redis is away).
    pub publish_lag: i64,
    /// Events published since the daemon started.
    pub published: u64,
    /// The last stream entry this host read.
    pub cursor: Option<String>,
    /// The stream's newest entry, as the receiver last read it (at most a second old while
    /// it catches up).
    pub stream_head: Option<String>,
    /// How far the cursor is behind the stream's head, in seconds (entry ids are times); 0
    /// when caught up.
    pub lag_seconds: Option<f64>,
}

/// One origin (a trusted peer, `fanout`, or `(untrusted)`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerStatus {
    pub host: String,
    pub trusted: bool,
    /// The origin's time of the newest event taken.
    pub last_event: Option<i64>,
    /// When it arrived.
    pub last_seen: Option<i64>,
    pub sequence: PeerMark,
    /// When its snapshot was last loaded.
    pub resynced: Option<i64>,
    pub counts: Counts,
    pub refused: u64,
    pub caps_hit: u64,
    /// Its live leases here.
    pub leases: i64,
}

/// Everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub host: String,
    /// `None` without a Redis bus.
    pub bus: Option<BusStatus>,
    /// `None` without `[cluster.fanout]`.
    pub fanout: Option<LinkStatus>,
    pub peers: Vec<PeerStatus>,
    /// Exclusive sinks: `(sink, this host holds the lock now)`.
    pub locks: Vec<(String, bool)>,
}

/// From the state database only (no daemon: nothing is known to be connected).
pub fn from_store(
    store: &Store,
    config: &ClusterConfig,
    host: &str,
) -> Result<ClusterStatus, StoreError> {
    let now = clock::now();
    let mut peers: BTreeMap<String, PeerStatus> = BTreeMap::new();
    for host in config.peers.keys() {
        peers.insert(
            host.clone(),
            PeerStatus {
                host: host.clone(),
                trusted: true,
                ..PeerStatus::default()
            },
        );
    }
    let entry = |peers: &mut BTreeMap<String, PeerStatus>, origin: &str| {
        peers
            .entry(origin.to_string())
            .or_insert_with(|| PeerStatus {
                host: origin.to_string(),
                trusted: false,
                ..PeerStatus::default()
            })
            .host
            .clone()
    };
    for s in store.peer_states()? {
        let k = entry(&mut peers, &s.origin);
        if let Some(p) = peers.get_mut(&k) {
            p.last_event = s.last_at;
            p.last_seen = s.last_seen;
            p.sequence = s.mark;
            p.resynced = s.resynced;
        }
    }
    for (origin, cause, n) in store.peer_counts()? {
        let k = entry(&mut peers, &origin);
        if let (Some(p), Some(v)) = (peers.get_mut(&k), Verdict::parse(&cause)) {
            p.counts.add(v, n.max(0) as u64);
        }
    }
    for (origin, n) in store.live_leases_by_origin(now)? {
        if let Some(p) = peers.get_mut(&origin) {
            p.leases = n;
        }
    }
    let mut peers: Vec<PeerStatus> = peers.into_values().collect();
    for p in &mut peers {
        p.refused = p.counts.refused();
        p.caps_hit = p.counts.caps_hit();
    }
    let bus = if config.has_redis() {
        Some(BusStatus {
            publish_lag: Consumer::new(PUBLISHER_CONSUMER).lag(store)?,
            cursor: store.bus_cursor(RECEIVER_CURSOR)?.map(|c| c.stream_id),
            ..BusStatus::default()
        })
    } else {
        None
    };
    Ok(ClusterStatus {
        host: host.to_string(),
        bus,
        fanout: config.fanout.as_ref().map(|_| LinkStatus::default()),
        peers,
        locks: Vec::new(),
    })
}

/// How far `cursor` is behind `head`, in seconds: `(head_ms - cursor_ms) / 1000` while
/// behind, 0 when caught up (the cursor at or past the head, which a page committed after the
/// head was read leaves). `None` while either is unknown.
pub fn lag_seconds(cursor: Option<&str>, head: Option<&str>) -> Option<f64> {
    let (c, h) = (
        crate::redis::parse_id(cursor?)?,
        crate::redis::parse_id(head?)?,
    );
    Some(if h > c {
        h.0.saturating_sub(c.0) as f64 / 1000.0
    } else {
        0.0
    })
}

/// The store's view plus the running parts'.
pub(crate) fn collect(node: &Node) -> Result<ClusterStatus, StoreError> {
    let mut st = from_store(&node.store, &node.config, &node.host)?;
    let live = node.live.with(|l| l.clone());
    if let Some(bus) = &mut st.bus {
        bus.url = node.url_shown.clone();
        bus.publisher = live.publisher.clone();
        bus.receiver = live.receiver.clone();
        bus.published = live.published;
        bus.stream_head = live.stream_head.clone();
        bus.lag_seconds = lag_seconds(bus.cursor.as_deref(), live.stream_head.as_deref());
    }
    if st.fanout.is_some() {
        st.fanout = Some(live.fanout.clone());
    }
    st.locks = node
        .locks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|g| (g.sink().to_string(), g.may_write()))
        .collect();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::lag_seconds;

    #[test]
    fn lag_is_the_head_against_the_cursor() {
        assert_eq!(lag_seconds(Some("1000-0"), Some("3500-2")), Some(2.5));
        // Caught up, or the cursor committed past a head read earlier.
        assert_eq!(lag_seconds(Some("3500-2"), Some("3500-2")), Some(0.0));
        assert_eq!(lag_seconds(Some("4000-0"), Some("3500-2")), Some(0.0));
        // Behind by entries of the same millisecond: behind, by less than a millisecond.
        assert_eq!(lag_seconds(Some("3500-0"), Some("3500-2")), Some(0.0));
        assert_eq!(lag_seconds(None, Some("3500-2")), None);
        assert_eq!(lag_seconds(Some("3500-2"), None), None);
        assert_eq!(lag_seconds(Some("0-0"), Some("garbage")), None);
    }
}
