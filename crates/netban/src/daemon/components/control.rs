//! The control socket: one JSON object per line, one answer per line ([`crate::protocol`]).
//!
//! The CLI pokes the daemon here after it wrote a lease. The Python fail2ban action hands its
//! bans here (`ban`, `unban`, `flush`), so fail2ban spawns no process per ban; they go through
//! the same validation ([`crate::request`]) and lease operations ([`netban_core::leases`]) as
//! the CLI. `sync` runs a full pass with repair and answers when it is done.
//!
//! The socket is 0600 (root, like fail2ban's own). Lines are capped at 4 KiB, a connection
//! that says nothing for 30 s is closed, and at most 64 are served at once: beyond, the
//! connection is told `busy` (a CLI then delivers inline) and the event is logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use netban_core::leases::{self, BanOutcome};
use netban_core::{Origin, clock};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::daemon::bus::{DaemonEvent, SyncRequest};
use crate::daemon::component::{Component, Shutdown};
use crate::daemon::handle::DaemonHandle;
use crate::exit::CliError;
use crate::protocol::{MAX_LINE, Request, Response};
use crate::request;

const MAX_CONNECTIONS: usize = 64;
const IDLE: Duration = Duration::from_secs(30);

pub struct Control {
    pub listener: UnixListener,
}

#[async_trait]
impl Component for Control {
    fn name(&self) -> &'static str {
        "control"
    }

    async fn run(self: Box<Self>, h: DaemonHandle, mut stop: Shutdown) -> Result<(), String> {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut busy_logged = Instant::now() - Duration::from_secs(60);
        loop {
            let accepted = tokio::select! {
                _ = stop.wait() => return Ok(()),
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((mut stream, _)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        if busy_logged.elapsed() >= Duration::from_secs(10) {
                            tracing::warn!(
                                "control socket: {MAX_CONNECTIONS} connections open; telling new ones the daemon is busy (a CLI then delivers inline)"
                            );
                            busy_logged = Instant::now();
                        }
                        let line = Response::error(1, "busy").line();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                stream.write_all(line.as_bytes()),
                            )
                            .await;
                        });
                        continue;
                    };
                    let h = h.clone();
                    tokio::spawn(async move {
                        connection(stream, h).await;
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

async fn connection(stream: UnixStream, h: DaemonHandle) {
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
                .write_all(
                    Response::error(2, "request line too long")
                        .line()
                        .as_bytes(),
                )
                .await;
            return;
        }
        let answer = match serde_json::from_slice::<Request>(&buf) {
            Ok(req) => handle(req, &h).await,
            Err(e) => Response::error(2, format!("bad request: {e}")),
        };
        if write.write_all(answer.line().as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn handle(req: Request, h: &DaemonHandle) -> Response {
    let result = match req {
        Request::Poke => {
            h.bus.send(DaemonEvent::LeasesChanged);
            Ok(Response::ok())
        }
        Request::Ping => Ok(Response::ok()),
        Request::Ban(input) => ban(input, h).await,
        Request::Unban { ip, jail } => unban(ip, jail, h).await,
        Request::Flush { jail } => flush(jail, h).await,
        Request::Sync { timeout } => return sync(timeout.unwrap_or(60.0), h).await,
        Request::ClusterStatus => cluster_status(h).await,
    };
    result.unwrap_or_else(|e| Response::error(e.code(), e.to_string()))
}

async fn cluster_status(h: &DaemonHandle) -> Result<Response, CliError> {
    let Some(cluster) = h.cluster.clone() else {
        return Err(CliError::Config(
            "this daemon runs without [cluster]".into(),
        ));
    };
    let status = tokio::task::spawn_blocking(move || cluster.status())
        .await
        .map_err(|e| CliError::Runtime(format!("cluster status task failed: {e}")))??;
    Ok(Response {
        cluster: serde_json::to_value(status).ok(),
        ..Response::ok()
    })
}

async fn ban(input: request::BanInput, h: &DaemonHandle) -> Result<Response, CliError> {
    let req = request::parse(&input, clock::now())?;
    let guard = h.engine.guard();
    let outcome = h
        .db(move |s| leases::ban(s, &guard, &req, clock::now()))
        .await?;
    Ok(match outcome {
        BanOutcome::Recorded(_) => {
            h.bus.send(DaemonEvent::LeasesChanged);
            h.bus.send(DaemonEvent::EventsAppended);
            Response::result("recorded")
        }
        BanOutcome::Ended => Response::result("ended"),
        BanOutcome::Refused(why) => Response {
            reason: Some(why.0),
            ..Response::result("refused")
        },
    })
}

async fn unban(ip: String, jail: Option<String>, h: &DaemonHandle) -> Result<Response, CliError> {
    if let Some(j) = &jail {
        request::parse_jail(j)?;
    }
    let target = request::parse_target(&ip)?;
    let ended = h
        .db(move |s| leases::unban(s, &target, jail.as_deref(), clock::now()))
        .await?;
    if ended.is_empty() {
        return Ok(Response::result("absent"));
    }
    h.bus.send(DaemonEvent::LeasesChanged);
    h.bus.send(DaemonEvent::EventsAppended);
    Ok(Response {
        ended: Some(
            ended
                .iter()
                .filter(|l| l.origin == Origin::Local)
                .map(|l| l.jail.clone())
                .collect(),
        ),
        ..Response::result("removed")
    })
}

async fn flush(jail: Option<String>, h: &DaemonHandle) -> Result<Response, CliError> {
    if let Some(j) = &jail {
        request::parse_jail(j)?;
    }
    let kept = h
        .db(move |s| leases::flush(s, jail.as_deref(), clock::now()))
        .await?;
    Ok(Response {
        kept: Some(kept),
        ..Response::ok()
    })
}

async fn sync(timeout: f64, h: &DaemonHandle) -> Response {
    let timeout = if timeout.is_finite() && timeout > 0.0 {
        timeout.min(3600.0)
    } else {
        60.0
    };
    let (req, rx) = SyncRequest::new();
    h.bus.send(DaemonEvent::SyncRequested(req));
    match tokio::time::timeout(Duration::from_secs_f64(timeout), rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Response::error(1, "the reconcile loop stopped"),
        Err(_) => Response::error(1, format!("not done within {timeout}s")),
    }
}
