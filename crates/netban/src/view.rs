//! What the sinks really hold, asked over the network (`list --remote`, `explain --remote`),
//! beside netban's own picture ([`netban_core::view`]).

use std::time::{Duration, Instant};

use netban_core::Owner;
use netban_core::reconcile::Engine;
use netban_core::sink::HeldEntry;

pub use netban_core::view::{Entry, sinks};

/// What one sink really lists, or why it could not be asked.
pub struct Remote {
    pub name: String,
    pub listed: Result<Option<Vec<HeldEntry>>, String>,
}

/// Asks every sink what it holds (`list --remote`, `explain --remote`).
pub fn remote(engine: &Engine, timeout: Duration) -> Vec<Remote> {
    let Ok(rt) = crate::context::runtime() else {
        return Vec::new();
    };
    let env = engine.env().clone();
    rt.block_on(async {
        let mut out = Vec::new();
        for slot in engine.slots() {
            let deadline = Instant::now() + timeout;
            let listed = match slot.sink(&env) {
                // A sink that keeps no list (exec) cannot show drift: say so, rather
                // than an empty listing that would read as "everything is missing".
                Ok(sink) => sink.held(deadline).await.map_err(|e| e.message).and_then(|l| {
                    l.map(Some).ok_or_else(|| {
                        "it runs commands and keeps no list; netban's records are all there is".to_string()
                    })
                }),
                Err(e) => Err(e),
            };
            out.push(Remote {
                name: slot.name().to_string(),
                listed,
            });
        }
        out
    })
}

/// How an entry on a sink compares with netban's belief, in words.
pub fn drift(believed: Option<&Entry>, listed: &[&HeldEntry]) -> Option<String> {
    match (believed, listed.first()) {
        (Some(e), None) if e.in_place() => Some(
            "MISSING on the sink (removed behind netban's back? the next sync re-adds it)".into(),
        ),
        (None, Some(h)) => Some(match &h.owner {
            Owner::Foreign => "on the sink, not netban's (left alone)".to_string(),
            o => format!("on the sink, not banned here ({})", o.describe()),
        }),
        (Some(Entry::Removing { .. }), Some(_)) => Some("on the sink, removal pending".into()),
        _ if listed.len() > 1 => Some(format!("{} copies on the sink", listed.len())),
        _ => None,
    }
}
