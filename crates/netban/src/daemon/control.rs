//! The control socket: one JSON object per line, one answer per line.
//!
//! The CLI pokes the daemon here after it wrote a lease (`{"op":"poke"}`, no answer read).
//! The Python fail2ban action hands its bans here (`ban`, `unban`, `flush`), so fail2ban
//! spawns no process per ban; they go through the same validation and guard as the CLI
//! ([`crate::ops`]). `sync` runs a full pass with repair and answers when it is done.
//!
//! The socket is created 0600 (root, like fail2ban's own). Lines are capped at 4 KiB and a
//! connection that says nothing for 30 s is closed.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, oneshot, watch};

use super::{Shared, SyncRequest};
use crate::exit::CliError;
use crate::ops::{self, BanInput, BanOutcome, BanRequest};

const MAX_LINE: usize = 4096;
const MAX_CONNECTIONS: usize = 64;
const IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    Poke,
    Ping,
    Ban(BanInput),
    Unban {
        ip: String,
        #[serde(default)]
        jail: Option<String>,
    },
    Flush {
        #[serde(default)]
        jail: Option<String>,
    },
    Sync {
        #[serde(default)]
        timeout: Option<f64>,
    },
}

pub async fn serve(
    listener: UnixListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        tracing::warn!("control socket: too many connections, dropping one");
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        connection(stream, shared).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn connection(stream: UnixStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match tokio::time::timeout(
            IDLE,
            (&mut lines)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf),
        )
        .await
        {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return,
        };
        if n == 0 {
            return;
        }
        if buf.len() > MAX_LINE {
            let _ = write
                .write_all(b"{\"ok\":false,\"code\":2,\"error\":\"request line too long\"}\n")
                .await;
            return;
        }
        let answer = match serde_json::from_slice::<Request>(&buf) {
            Ok(Request::Poke) => {
                shared.wake.notify_one();
                continue;
            }
            Ok(req) => handle(req, &shared).await,
            Err(e) => json!({"ok": false, "code": 2, "error": format!("bad request: {e}")}),
        };
        let mut line = answer.to_string();
        line.push('\n');
        if write.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

use tokio::io::AsyncReadExt;

async fn handle(req: Request, shared: &Arc<Shared>) -> Value {
    let result = match req {
        Request::Poke | Request::Ping => Ok(json!({"ok": true})),
        Request::Ban(input) => ban(input, shared),
        Request::Unban { ip, jail } => unban(&ip, jail.as_deref().unwrap_or("default"), shared),
        Request::Flush { jail } => flush(jail.as_deref(), shared),
        Request::Sync { timeout } => return sync(timeout.unwrap_or(60.0), shared).await,
    };
    match result {
        Ok(v) => v,
        Err(e) => json!({"ok": false, "code": e.code(), "error": e.to_string()}),
    }
}

fn ban(input: BanInput, shared: &Shared) -> Result<Value, CliError> {
    let req = BanRequest::parse(&input)?;
    let engine = shared.engine();
    let guard = engine.guard_snapshot();
    let outcome = ops::ban(&shared.store, &guard, &req)?;
    if outcome == BanOutcome::Recorded {
        shared.wake.notify_one();
    }
    Ok(match outcome {
        BanOutcome::Recorded => json!({"ok": true, "result": "recorded"}),
        BanOutcome::Ended => json!({"ok": true, "result": "ended"}),
        BanOutcome::Refused(why) => json!({"ok": true, "result": "refused", "reason": why}),
    })
}

fn unban(ip: &str, jail: &str, shared: &Shared) -> Result<Value, CliError> {
    ops::parse_jail(jail)?;
    let target = ops::parse_target(ip)?;
    let existed = ops::unban(&shared.store, &target, jail)?;
    shared.wake.notify_one();
    Ok(json!({"ok": true, "result": if existed { "removed" } else { "absent" }}))
}

fn flush(jail: Option<&str>, shared: &Shared) -> Result<Value, CliError> {
    if let Some(j) = jail {
        ops::parse_jail(j)?;
    }
    let kept = ops::flush(&shared.store, jail)?;
    Ok(json!({"ok": true, "kept": kept}))
}

async fn sync(timeout: f64, shared: &Shared) -> Value {
    let (tx, rx) = oneshot::channel();
    let timeout = if timeout.is_finite() && timeout > 0.0 {
        timeout.min(3600.0)
    } else {
        60.0
    };
    if shared
        .sync_tx
        .send(SyncRequest { reply: tx })
        .await
        .is_err()
    {
        return json!({"ok": false, "code": 1, "error": "the daemon is shutting down"});
    }
    shared.wake.notify_one();
    match tokio::time::timeout(Duration::from_secs_f64(timeout), rx).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => json!({"ok": false, "code": 1, "error": "the reconcile loop stopped"}),
        Err(_) => json!({"ok": false, "code": 1, "error": format!("not done within {timeout}s")}),
    }
}
