//! Sink locks: one process delivers to a sink at a time.
//!
//! Leases are written by many processes at once (SQLite serialises that), but delivery to one
//! sink must not race: two processes reconciling the same target could each see a stale
//! record and leave an orphan. Whoever holds `state_dir/locks/<sink>.lock` (an advisory
//! `flock`) reconciles that sink; the daemon takes it for each pass of the sink's runner, the
//! CLI waits for it no longer than its deadline and otherwise leaves the work pending. One
//! lock per sink, so a slow NETCONF commit never holds up ExaFS. The kernel drops the lock
//! when a process dies, so a `kill -9` never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while this process reconciles a sink; dropping it releases the lock.
#[derive(Debug)]
pub struct SinkLock {
    _file: File,
}

/// The lock file of `sink` (names are letters, digits and `-_.`: safe as a file name).
pub fn lock_path(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{sink}.lock"))
}

impl SinkLock {
    /// Waits for the lock of `sink` until `deadline`. `Ok(None)`: another process kept it.
    pub async fn acquire(
        state_dir: &Path,
        sink: &str,
        deadline: Instant,
    ) -> std::io::Result<Option<SinkLock>> {
        let path = lock_path(state_dir, sink);
        let file = open(&path)?;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(SinkLock { _file: file })),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Opens (creating) a lock file 0600, never through a symlink.
fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.is_dir()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("lock {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_until_first_releases_and_sinks_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        let a = SinkLock::acquire(dir.path(), "exafs", soon).await.unwrap();
        assert!(a.is_some());
        let short = Instant::now() + Duration::from_millis(30);
        assert!(
            SinkLock::acquire(dir.path(), "exafs", short)
                .await
                .unwrap()
                .is_none()
        );
        // Another sink's lock is free.
        assert!(
            SinkLock::acquire(dir.path(), "nft", Instant::now())
                .await
                .unwrap()
                .is_some()
        );
        drop(a);
        assert!(
            SinkLock::acquire(dir.path(), "exafs", Instant::now())
                .await
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("locks")).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(dir.path(), "x")).unwrap();
        assert!(open(&lock_path(dir.path(), "x")).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
