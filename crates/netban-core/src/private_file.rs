//! The small files netban keeps in its state directory besides the database (token caches,
//! listing caches, last good allowlist copies): read and written without following a symlink,
//! read with a size cap, written 0600 through a temporary file renamed into place, so a
//! concurrent reader sees the old contents or the new, never half.
//!
//! The state directory is root's (0700, checked at open), so a symlink there is either an
//! operator's mistake or someone else's foothold; either way netban does not read through it,
//! write through it, or let a planted file grow its memory.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads `path` whole, without following a symlink. `Ok(None)` when it does not exist; an
/// error when it is a symlink, unreadable, or longer than `max` bytes.
pub fn read(path: &Path, max: u64) -> io::Result<Option<String>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::other(
                "is a symbolic link; netban does not follow it",
            ));
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("is not a regular file"));
    }
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::other(format!("is longer than {max} bytes")));
    }
    Ok(Some(text))
}

/// Replaces `path` with `contents`, mode 0600: written to a temporary file in the same
/// directory (never through a symlink) and renamed over the old one.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{base}.{}.{:08x}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.flush()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(read(&p, 10).unwrap().is_none());
        write(&p, b"hello").unwrap();
        assert_eq!(read(&p, 10).unwrap().as_deref(), Some("hello"));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_symlink_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "do not read").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = read(&link, 100).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        write(&link, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "do not read");
        assert!(
            !std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_long_file_is_refused_and_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'x'; 11]).unwrap();
        assert!(read(&p, 10).unwrap_err().to_string().contains("longer"));
        std::fs::write(&p, vec![b'x'; 10]).unwrap();
        assert!(read(&p, 10).is_ok());
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read(&fifo, 10).unwrap_err().to_string().contains("regular"));
    }
}
