//! Running one command: no shell, a clean environment, its own process group, bounded output,
//! judged by its exit status, killed (with its whole group) at its timeout.
//!
//! Issue 6 found the two ways the first version went wrong: waiting for the output pipes to
//! close instead of for the process (a command that exits 0 but leaves a background child
//! holding stdout was reported killed and retried forever, and the child lived on), and
//! keeping all of a command's output in memory (2 GB of stdout was 2 GB resident). Output is
//! now read concurrently, kept up to [`MAX_KEPT`] bytes per stream and discarded beyond, and
//! the verdict comes from `wait()`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of stdout/stderr kept per command (the first line of stderr goes into the error).
pub const MAX_KEPT: usize = 4096;
/// After the command exits, how long its output is still read (a background child may hold
/// the pipes open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(100);

const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a command ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited; the status and the first bytes of its stderr.
    Exited {
        status: std::process::ExitStatus,
        stderr: Vec<u8>,
    },
    /// It ran past its time limit; its process group was killed.
    TimedOut,
}

/// Runs `argv` with `env` (plus `PATH`) for at most `limit`.
pub async fn run(
    argv: &[String],
    env: impl Iterator<Item = (String, String)>,
    limit: Duration,
) -> std::io::Result<Ended> {
    let Some((program, rest)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pgid = child.id();
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(keep(s, std::sync::Arc::default())));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(keep(s, kept.clone())));
    let ended = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            kill_group(pgid);
            let _ = child.kill().await;
            if let Some(h) = out {
                h.abort();
            }
            if let Some(h) = err {
                h.abort();
            }
            return Ok(Ended::TimedOut);
        }
    };
    // A background child may hold the pipes open: read what comes within the grace, then
    // let go (dropping the handles stops the readers).
    for mut h in [err, out].into_iter().flatten() {
        if tokio::time::timeout(DRAIN_GRACE, &mut h).await.is_err() {
            h.abort();
        }
    }
    let stderr = std::mem::take(&mut *kept.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Ended::Exited {
        status: ended,
        stderr,
    })
}

/// Reads a stream to its end, keeping the first [`MAX_KEPT`] bytes in `kept` and
/// discarding the rest (the command must never block on a full pipe).
async fn keep(mut stream: impl AsyncRead + Unpin, kept: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
                let room = MAX_KEPT.saturating_sub(k.len());
                k.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Kills the process group a child was started in with `process_group(0)` (its pid is the
/// group's id): the child and whatever it left running.
pub fn kill_group(pgid: Option<u32>) {
    if let Some(pg) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg has no memory-safety preconditions; the group is the child's own
        // (process_group(0) made its pid the group id).
        unsafe {
            libc::killpg(pg, libc::SIGKILL);
        }
    }
}

/// The program as found: an absolute path, or looked up in the safe PATH.
pub fn find_program(program: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program)).then(|| program.to_string());
    }
    SAFE_PATH
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| executable(p))
        .map(|p| p.display().to_string())
}
