//! A fault-injecting HTTP/1.1 reverse proxy, to put in front of a real server in tests.
//!
//! [`FaultProxy::start`] listens on a free `127.0.0.1` port and forwards every request to an
//! upstream `host:port` (method, path and query, headers except hop-by-hop ones, body), one
//! fresh upstream connection per request. Clients may keep their connection alive (reqwest's
//! pool does); the upstream's `Connection: close` is not passed on. Its own tokio runtime runs
//! on its own thread, so it is usable from sync and async tests; every method is blocking
//! but short, and `set_mode` returns only once the mode is in effect.
//!
//! Faults, switched at any time with [`FaultProxy::set_mode`]:
//!
//! - [`Mode::Pass`] — forward.
//! - [`Mode::Down`] — the listener is closed (new connections are refused: `ECONNREFUSED`) and
//!   open client connections are dropped, with requests in flight. Leaving `Down` binds the
//!   same port again.
//! - [`Mode::Delay`] — wait, then forward.
//! - [`Mode::Status503`] — answer `503 Service Unavailable` without forwarding, for the next
//!   `count` requests (then back to `Pass`), or for all with `count: None`.
//! - [`Mode::Blackhole`] — accept the request and never answer (until `Down` or drop).
//!
//! If the upstream cannot be reached the proxy answers `502 Bad Gateway`, as a real reverse
//! proxy would. It logs nothing. Every request it sees is recorded as (method, path without
//! query, status); status 0 means no answer was sent (`Blackhole`, `Down`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::Service;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Timeout for connecting to the upstream (then 502).
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the proxy does with requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Refuse connections and drop open ones.
    Down,
    /// Wait this long before forwarding each request.
    Delay(Duration),
    /// Answer 503 to the next `count` requests (all while `None`), then `Pass`.
    Status503 { count: Option<usize> },
    /// Accept requests and never answer.
    Blackhole,
    /// Answer every request with this status and body instead of forwarding it (a garbled
    /// success, an answer about another rule, a huge body).
    Answer { status: u16, body: Arc<Vec<u8>> },
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Status answered to the client; 0 when none was (blackhole, down).
    pub status: u16,
}

struct Shared {
    upstream: String,
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Seen>>,
    forwarded: AtomicUsize,
    accepted: AtomicUsize,
}

impl Shared {
    fn mode(&self) -> MutexGuard<'_, Mode> {
        self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seen(&self) -> MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, method: &str, path: &str, status: u16) {
        self.seen().push(Seen {
            method: method.to_string(),
            path: path.to_string(),
            status,
        });
    }
}

enum Control {
    SetMode(Mode, std_mpsc::Sender<Result<(), String>>),
    Shutdown,
}

/// A running proxy; dropping it stops it and closes all its connections.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("upstream", &self.shared.upstream)
            .field("mode", &*self.shared.mode())
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy in [`Mode::Pass`] forwarding to `upstream` (`host:port`, e.g.
    /// `exafs.authority()`).
    pub fn start(upstream: impl Into<String>) -> Result<FaultProxy> {
        let upstream = upstream.into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("FaultProxy: binding 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("FaultProxy: building its runtime")?;
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Pass),
            seen: Mutex::new(Vec::new()),
            forwarded: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let (control, control_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let shared2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            run(shared2, l, port, control_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .context("FaultProxy: spawning its thread")?;
        ready_rx
            .recv()
            .context("FaultProxy: thread died while starting")?
            .context("FaultProxy: registering the listener")?;
        Ok(FaultProxy {
            port,
            shared,
            control,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `host:port` requests go to.
    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    /// Switches the mode; in effect when this returns (e.g. after `Down` the port refuses).
    /// Panics if the port cannot be bound again when leaving `Down`.
    pub fn set_mode(&self, mode: Mode) {
        let (tx, rx) = std_mpsc::channel();
        let sent = self.control.send(Control::SetMode(mode, tx)).is_ok();
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("FaultProxy on port {}: {e}", self.port),
            Err(_) => panic!(
                "FaultProxy on port {}: its thread is gone (sent: {sent})",
                self.port
            ),
        }
    }

    /// The current mode (`Status503 { count }` counts down).
    pub fn mode(&self) -> Mode {
        self.shared.mode().clone()
    }

    /// Every request seen since start or [`FaultProxy::reset_counts`]: (method, path without
    /// query, status answered; 0 = none).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.shared
            .seen()
            .iter()
            .map(|s| (s.method.clone(), s.path.clone(), s.status))
            .collect()
    }

    /// The same as [`FaultProxy::requests`], as structs.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen().clone()
    }

    /// Requests seen with this method (case-insensitive) whose path starts with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .seen()
            .iter()
            .filter(|s| s.method.eq_ignore_ascii_case(method) && s.path.starts_with(path_prefix))
            .count()
    }

    /// Requests that reached the upstream and got its answer.
    pub fn forwarded_count(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Client connections accepted: with keep-alive, fewer than requests.
    pub fn connection_count(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Forgets the recorded requests, the forwarded count and the connection count.
    pub fn reset_counts(&self) {
        self.shared.seen().clear();
        self.shared.forwarded.store(0, Ordering::SeqCst);
        self.shared.accepted.store(0, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    port: u16,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut listener = Some(listener);
    let mut connections: Vec<AbortHandle> = Vec::new();
    loop {
        tokio::select! {
            msg = control.recv() => match msg {
                None | Some(Control::Shutdown) => break,
                Some(Control::SetMode(mode, ack)) => {
                    let down = mode == Mode::Down;
                    *shared.mode() = mode;
                    let result = if down {
                        listener = None;
                        for c in connections.drain(..) {
                            c.abort();
                        }
                        Ok(())
                    } else if listener.is_none() {
                        bind(port).map(|l| listener = Some(l))
                    } else {
                        Ok(())
                    };
                    let _ = ack.send(result);
                }
            },
            accepted = accept(listener.as_ref()) => match accepted {
                Ok(stream) => {
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    connections.retain(|c| !c.is_finished());
                    let task = tokio::spawn(serve_connection(stream, shared.clone()));
                    connections.push(task.abort_handle());
                }
                // Out of file descriptors or similar: do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    for c in connections {
        c.abort();
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

fn bind(port: u16) -> Result<TcpListener, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    socket
        .bind(addr)
        .map_err(|e| format!("binding {addr} again after Mode::Down: {e}"))?;
    socket
        .listen(1024)
        .map_err(|e| format!("listening on {addr}: {e}"))
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), ProxyService { shared })
        .await;
}

struct ProxyService {
    shared: Arc<Shared>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyResult = Result<Response<Full<Bytes>>, BoxError>;

impl Service<Request<Incoming>> for ProxyService {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = ProxyResult> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        Box::pin(handle(self.shared.clone(), req))
    }
}

enum Action {
    Forward(Option<Duration>),
    Refuse503,
    Hang,
    Drop,
    Answer(u16, Arc<Vec<u8>>),
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> ProxyResult {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let action = {
        let mut mode = shared.mode();
        match &mut *mode {
            Mode::Pass => Action::Forward(None),
            Mode::Delay(d) => Action::Forward(Some(*d)),
            Mode::Status503 { count: None } => Action::Refuse503,
            Mode::Status503 { count: Some(n) } => {
                if *n == 0 {
                    *mode = Mode::Pass;
                    Action::Forward(None)
                } else {
                    *n -= 1;
                    if *n == 0 {
                        *mode = Mode::Pass;
                    }
                    Action::Refuse503
                }
            }
            Mode::Blackhole => Action::Hang,
            Mode::Down => Action::Drop,
            Mode::Answer { status, body } => Action::Answer(*status, body.clone()),
        }
    };
    match action {
        Action::Drop => {
            shared.record(&method, &path, 0);
            Err("FaultProxy is down".into())
        }
        Action::Hang => {
            shared.record(&method, &path, 0);
            let never = std::future::pending::<Infallible>().await;
            match never {}
        }
        Action::Answer(status, body) => {
            shared.record(&method, &path, status);
            let mut resp = Response::new(Full::new(Bytes::from(body.as_ref().clone())));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        Action::Refuse503 => {
            shared.record(&method, &path, 503);
            Ok(text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable (netban FaultProxy)\n",
            ))
        }
        Action::Forward(delay) => {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            match forward(&shared.upstream, req).await {
                Ok(resp) => {
                    shared.forwarded.fetch_add(1, Ordering::SeqCst);
                    shared.record(&method, &path, resp.status().as_u16());
                    Ok(resp)
                }
                Err(e) => {
                    shared.record(&method, &path, 502);
                    Ok(text_response(
                        StatusCode::BAD_GATEWAY,
                        &format!(
                            "502 Bad Gateway (netban FaultProxy): upstream {}: {e}\n",
                            shared.upstream
                        ),
                    ))
                }
            }
        }
    }
}

fn text_response(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(text.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn forward(
    upstream: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();

    let stream = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| "connect timed out")??;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);

    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut out = Request::builder()
        .method(parts.method)
        .uri(target)
        .body(Full::new(body))?;
    *out.headers_mut() = strip_hop_by_hop(parts.headers);
    out.headers_mut()
        .insert(header::HOST, HeaderValue::from_str(upstream)?);

    let resp = sender.send_request(out).await?;
    let (mut parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    parts.headers = strip_hop_by_hop(parts.headers);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Removes the headers that belong to one connection (RFC 9110 7.6.1), those named in
/// `Connection`, and `Host`; the body is re-sent whole, so `Transfer-Encoding` goes too.
fn strip_hop_by_hop(mut headers: HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    ] {
        headers.remove(name);
    }
    headers
}
