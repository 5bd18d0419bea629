//! Running `nft`: argv only, JSON on stdin, bounded output, a timeout, killed when late.
//!
//! Every call is `nft -j ...` started directly (no shell, no PATH lookup, a clean environment
//! with `LC_ALL=C` so that the kernel's error text, which [`Refusal`] reads, is not
//! translated). A transaction goes in on stdin (`nft -j -f -`); nft sends it to the kernel as
//! one netlink batch, so it is applied entirely or not at all. A listing comes back on stdout,
//! capped at [`MAX_OUTPUT`]; stderr is capped at [`MAX_ERROR`]. A call that outlives its
//! budget (the sink's `timeout`, or less when the caller's deadline is nearer) is killed; the
//! kernel then never sees the end of the batch and applies nothing of it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::json::Transaction;

/// The most stdout read from one call: a listing of 100,000 elements with comments is about
/// 10 MB.
pub const MAX_OUTPUT: usize = 64 << 20;
/// The most stderr kept from one call.
pub const MAX_ERROR: usize = 64 << 10;
/// The most of nft's error text put into a message.
const MESSAGE_CHARS: usize = 600;

/// What the kernel (or nft) said when it refused a call, as far as netban acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `No such file or directory`: a table, set or chain (or a listed element) is not there.
    Missing,
    /// `Operation not permitted` / `Permission denied`: not root, no `CAP_NET_ADMIN`.
    Permission,
    /// `File exists`.
    Exists,
    /// `interval overlaps with an existing one` / `conflicting intervals specified`.
    Overlap,
    Other,
}

impl Refusal {
    fn of(stderr: &str) -> Refusal {
        if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
            Refusal::Permission
        } else if stderr.contains("No such file or directory") {
            Refusal::Missing
        } else if stderr.contains("File exists") {
            Refusal::Exists
        } else if stderr.contains("overlaps") || stderr.contains("conflicting intervals") {
            Refusal::Overlap
        } else {
            Refusal::Other
        }
    }
}

/// Why an `nft` call failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error(
        "cannot run {path}: {source}; install nftables (apt-get install nftables) or set nft = to the binary's path"
    )]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} did not finish within {:.1} s and was killed; nothing of it was applied", .after.as_secs_f64())]
    Timeout { what: String, after: Duration },
    #[error("{what}: nft said {text:?}")]
    Refused {
        what: String,
        refusal: Refusal,
        text: String,
    },
    #[error("{what}: nft printed more than {limit} bytes; netban stopped reading")]
    TooLarge { what: String, limit: usize },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl NftError {
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            NftError::Refused { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }

    /// True when trying again in a moment may work (a timeout); false when something must
    /// change first (nft missing, a refusal, no privilege).
    pub fn is_transient(&self) -> bool {
        matches!(self, NftError::Timeout { .. } | NftError::Io { .. })
    }
}

/// The `nft` binary and how long one call may take.
#[derive(Debug, Clone)]
pub struct Nft {
    path: PathBuf,
    timeout: Duration,
}

impl Nft {
    pub fn new(path: &Path, timeout: Duration) -> Nft {
        Nft {
            path: path.to_path_buf(),
            timeout,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `tx` as one transaction (`nft -j -f -`); with `check_only`, the kernel only
    /// validates it (`nft -c`) and nothing changes.
    pub async fn apply(
        &self,
        tx: &Transaction,
        check_only: bool,
        what: &str,
        deadline: Instant,
    ) -> Result<(), NftError> {
        let args: &[&str] = if check_only {
            &["-c", "-j", "-f", "-"]
        } else {
            &["-j", "-f", "-"]
        };
        self.run(args, Some(tx.to_json()), what, deadline)
            .await
            .map(drop)
    }

    /// Runs `nft -j <args>` (a `list` command) and returns its stdout.
    pub async fn list(
        &self,
        args: &[&str],
        what: &str,
        deadline: Instant,
    ) -> Result<Vec<u8>, NftError> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        self.run(&all, None, what, deadline).await
    }

    async fn run(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
        what: &str,
        deadline: Instant,
    ) -> Result<Vec<u8>, NftError> {
        let budget = self
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if budget.is_zero() {
            return Err(NftError::Timeout {
                what: what.to_string(),
                after: Duration::ZERO,
            });
        }
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.args(args)
            .env_clear()
            .env("LC_ALL", "C")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| NftError::Spawn {
            path: self.path.clone(),
            source,
        })?;
        let pgid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let io = async {
            let write = async {
                if let (Some(mut pipe), Some(bytes)) = (stdin, input.as_deref()) {
                    // A broken pipe means nft stopped reading (it refused the input): its
                    // exit status and stderr say why.
                    let _ = pipe.write_all(bytes).await;
                    let _ = pipe.shutdown().await;
                }
            };
            let (_, out, err) = tokio::join!(
                write,
                read_capped(stdout, MAX_OUTPUT),
                read_capped(stderr, MAX_ERROR)
            );
            let status = child.wait().await;
            (out, err, status)
        };
        let (out, err, status) = match tokio::time::timeout(budget, io).await {
            Ok(done) => done,
            Err(_) => {
                // The whole group: a wrapper script's children go with it.
                netban_core::exec::kill_group(pgid);
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(NftError::Timeout {
                    what: what.to_string(),
                    after: budget,
                });
            }
        };
        let io_err = |source| NftError::Io {
            what: what.to_string(),
            source,
        };
        let status = status.map_err(io_err)?;
        let (out, out_truncated) = out.map_err(io_err)?;
        let (err, _) = err.map_err(io_err)?;
        if !status.success() {
            let text = String::from_utf8_lossy(&err);
            let text = one_line(&text);
            return Err(NftError::Refused {
                what: what.to_string(),
                refusal: Refusal::of(&text),
                text: if text.is_empty() {
                    format!("nothing, and exited with {status}")
                } else {
                    text
                },
            });
        }
        if out_truncated {
            return Err(NftError::TooLarge {
                what: what.to_string(),
                limit: MAX_OUTPUT,
            });
        }
        Ok(out)
    }
}

/// Reads all of `pipe`, keeping at most `cap` bytes (the rest is drained so the child does
/// not block on a full pipe); the flag says whether anything was dropped.
async fn read_capped<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(mut pipe) = pipe else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut dropped = false;
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, dropped));
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
        dropped |= n > room;
    }
}

/// nft's error output on one line, without its location prefix noise, bounded.
fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c == ' '))
        .map(|l| l.strip_prefix("internal:0:0-0: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" | ");
    joined.chars().take(MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_the_kernels_words() {
        assert_eq!(
            Refusal::of("Error: Could not process rule: No such file or directory"),
            Refusal::Missing
        );
        assert_eq!(
            Refusal::of("Operation not permitted (you must be root)"),
            Refusal::Permission
        );
        assert_eq!(
            Refusal::of("Error: Could not open file \"/dev/stdin\": Permission denied"),
            Refusal::Permission
        );
        assert_eq!(
            Refusal::of("Error: interval overlaps with an existing one"),
            Refusal::Overlap
        );
        assert_eq!(
            Refusal::of("netlink.c:186: Memory allocation failure"),
            Refusal::Other
        );
    }

    #[test]
    fn error_text_is_one_bounded_line() {
        let text = "internal:0:0-0: Error: Could not process rule: No such file or directory\n\n";
        assert_eq!(
            one_line(text),
            "Error: Could not process rule: No such file or directory"
        );
        let listed = "Error: No such file or directory\nlist set inet netban nosuch\n                     ^^^^^^\n";
        assert_eq!(
            one_line(listed),
            "Error: No such file or directory | list set inet netban nosuch"
        );
        assert_eq!(one_line(&"x".repeat(5000)).len(), MESSAGE_CHARS);
    }
}
