//! The checks an event passes before any state is consulted: it decodes canonically, it is
//! not this host's own, its origin is a trusted peer, and the signature is that peer's key's
//! (steps 1–3 of [`super`]).
//!
//! They need neither the store nor the marks, so a page of stream entries is checked before
//! the write transaction opens (the lock is held only for the writes), and a large page on
//! several threads at once: verifying a signature (~50 µs) costs more than storing the lease.
//! What the checks say is counted later, in stream order, by [`super::Admission::take`].

use crate::counts::{UNTRUSTED, Verdict};
use crate::event::{self, PeerEvent, Unverified};
use crate::sign::Trust;

/// Below this many events a page is checked on the calling thread alone.
const PARALLEL_FROM: usize = 64;
/// The most threads a page is checked on.
const MAX_THREADS: usize = 4;

/// What the stateless checks say about one stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Authentic: signed by its origin's trusted key.
    Event(PeerEvent),
    /// This host's own event coming back (not counted).
    Own,
    /// Refused, to be counted under `origin` ([`UNTRUSTED`] unless the origin is trusted).
    Refused {
        origin: String,
        verdict: Verdict,
        detail: String,
    },
}

/// Checks one entry's event (`None`: the entry has no field `e`).
pub fn check(me: &str, trust: &Trust, wire: Option<&[u8]>) -> Checked {
    let refused = |origin: &str, verdict, detail: String| Checked::Refused {
        origin: origin.to_string(),
        verdict,
        detail,
    };
    let Some(wire) = wire else {
        return refused(
            UNTRUSTED,
            Verdict::Malformed,
            "a stream entry without field e".into(),
        );
    };
    let d = match event::decode(wire) {
        Ok(d) => d,
        Err(e) => return refused(UNTRUSTED, Verdict::Malformed, e.to_string()),
    };
    if d.event.origin == me {
        return Checked::Own;
    }
    match event::verify(&d, trust) {
        Ok(()) => Checked::Event(d.event),
        Err(Unverified::UnknownKey) => refused(
            UNTRUSTED,
            Verdict::UnknownKey,
            format!("{} is not in [cluster.peers]", d.event.origin),
        ),
        Err(Unverified::BadSignature) => {
            let what = if d.signature.is_none() {
                "unsigned"
            } else {
                "the signature is not the peer's key's (forged or tampered)"
            };
            refused(&d.event.origin, Verdict::BadSignature, what.into())
        }
    }
}

/// Checks a page of entries, in order; a large page on several threads.
pub fn check_all(me: &str, trust: &Trust, wires: &[Option<&[u8]>]) -> Vec<Checked> {
    parallel(wires, |w| check(me, trust, *w))
}

/// `f` of every item, in order; a long slice split over several threads.
pub(crate) fn parallel<I: Sync, O: Send>(items: &[I], f: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads < 2 || items.len() < PARALLEL_FROM {
        return items.iter().map(&f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|part| {
                let h = std::thread::Builder::new()
                    .name("netban-check".into())
                    .spawn_scoped(s, move || part.iter().map(f).collect::<Vec<O>>());
                (part, h)
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (part, h) in parts {
            match h {
                // The decoder never panics (property-tested); if it did, so would this.
                Ok(h) => out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                // No thread to be had: do that part here.
                Err(_) => out.extend(part.iter().map(f)),
            }
        }
        out
    })
}
