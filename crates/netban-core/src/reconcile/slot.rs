//! A configured sink as the engine keeps it: its definition, its driver (built on first use
//! and kept: connection pools, sessions, tokens), and the gate that says whether this process
//! may write it now (an `exclusive` sink is written by the lock holder only).

use std::sync::{Arc, Mutex, RwLock};

use crate::config::{SinkDef, SinkEnv};
use crate::sink::Sink;

/// Whether this process may write a sink now (an `exclusive` sink: this daemon holds the
/// fleet's lock for it).
pub type WriteGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// A configured sink; built on first use and kept (connection pools, sessions, tokens).
pub struct SinkSlot {
    pub def: SinkDef,
    built: Mutex<Option<Arc<dyn Sink>>>,
    gate: RwLock<Option<WriteGate>>,
}

impl SinkSlot {
    pub(super) fn new(def: SinkDef) -> SinkSlot {
        SinkSlot {
            def,
            built: Mutex::new(None),
            gate: RwLock::new(None),
        }
    }

    pub fn name(&self) -> &str {
        self.def.name()
    }

    /// Passes write this sink only while `gate` says so; otherwise they report it as
    /// written elsewhere (`standby`) and leave the work pending.
    pub fn set_gate(&self, gate: WriteGate) {
        *self.gate.write().unwrap_or_else(|p| p.into_inner()) = Some(gate);
    }

    /// False while a gate holds writes back (another host writes this sink).
    pub fn may_write(&self) -> bool {
        self.gate
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|g| g())
    }

    /// The driver, built on first use.
    pub fn sink(&self, env: &SinkEnv) -> Result<Arc<dyn Sink>, String> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = built.as_ref() {
            return Ok(s.clone());
        }
        let s = self.def.spec.build(self.def.name(), env)?;
        *built = Some(s.clone());
        Ok(s)
    }
}
