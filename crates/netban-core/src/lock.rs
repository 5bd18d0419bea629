//! The reconcile lock: one process delivers at a time.
//!
//! Leases are written by many processes at once (SQLite serialises that), but delivery must
//! not race: two processes reconciling the same target could each see a stale record and
//! leave an orphan. Whoever holds `state_dir/reconcile.lock` (an advisory `flock`) reconciles;
//! the daemon takes it for each pass, the CLI waits for it no longer than its deadline and
//! otherwise leaves the work pending. The kernel drops the lock when a process dies, so a
//! `kill -9` never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held while this process reconciles; dropping it releases the lock.
#[derive(Debug)]
pub struct ReconcileLock {
    _file: File,
}

impl ReconcileLock {
    /// Waits for the lock until `deadline`. `Ok(None)`: another process kept it.
    pub fn acquire(state_dir: &Path, deadline: Instant) -> std::io::Result<Option<ReconcileLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(state_dir.join("reconcile.lock"))?;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(ReconcileLock { _file: file })),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_until_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        let a = ReconcileLock::acquire(dir.path(), soon).unwrap();
        assert!(a.is_some());
        assert!(
            ReconcileLock::acquire(dir.path(), Instant::now() + Duration::from_millis(30))
                .unwrap()
                .is_none()
        );
        drop(a);
        assert!(
            ReconcileLock::acquire(dir.path(), Instant::now())
                .unwrap()
                .is_some()
        );
    }
}
