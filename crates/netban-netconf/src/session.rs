//! One NETCONF session (RFC 6241) on an SSH channel: hello, framing, message ids, replies.
//!
//! - Both sides send `<hello>`; netban offers base:1.0 and base:1.1 (unless told not to) and
//!   switches to chunked framing when the device offers base:1.1 too.
//! - Every `<rpc>` gets the next message id; a reply with another id (left over from a call
//!   that timed out) is skipped.
//! - Every step has a timeout, and nothing runs past the caller's deadline. A timeout or a
//!   framing error leaves the session unusable: the caller drops it (which closes the SSH
//!   connection, so the device releases any lock and discards what the session left).
//! - netconfd quirk (`reference/netconf.md`): when netban's hello and first rpc reach the
//!   server in one read, it answers the rpc only when more input arrives. netban waits a
//!   moment after its hello, and if the first rpc still gets no answer within a second it
//!   sends a harmless read-only rpc, whose reply is skipped, to wake the server up.

use std::time::{Duration, Instant};

use russh::ChannelStream;
use russh::client;
use tokio::io::{ReadHalf, WriteHalf};

use crate::error::NetconfError;
use crate::framing::{self, FrameReader, Framing};
use crate::reply::{Hello, Reply};
use crate::transport::{self, Checker, Endpoint, Login};
use crate::xml::NC_NS;

pub const BASE_10: &str = "urn:ietf:params:netconf:base:1.0";
pub const BASE_11: &str = "urn:ietf:params:netconf:base:1.1";
pub const CANDIDATE: &str = "urn:ietf:params:netconf:capability:candidate:1.0";
pub const ROLLBACK_ON_ERROR: &str = "urn:ietf:params:netconf:capability:rollback-on-error:1.0";

/// Timing and limits of a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// TCP connect, SSH handshake, login, subsystem and hello, together.
    pub connect_timeout: Duration,
    /// One rpc, from sending it to its whole reply.
    pub rpc_timeout: Duration,
    /// SSH keep-alive interval; `None` for none.
    pub keepalive: Option<Duration>,
    /// The biggest message accepted from the device.
    pub max_message: usize,
    /// Offer base:1.1 (chunked framing); false offers only base:1.0.
    pub offer_base11: bool,
    /// Pause between netban's hello and its first rpc (the netconfd quirk).
    pub settle: Duration,
    /// Wake-up rpc when the first rpc has no answer after this long (the netconfd quirk).
    pub kick_after: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            connect_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(60),
            keepalive: Some(Duration::from_secs(30)),
            max_message: 64 * 1024 * 1024,
            offer_base11: true,
            settle: Duration::from_millis(25),
            kick_after: Duration::from_secs(1),
        }
    }
}

type Stream = ChannelStream<client::Msg>;

/// An open NETCONF session. Dropping it closes the SSH connection.
pub struct Session {
    addr: String,
    reader: FrameReader<ReadHalf<Stream>>,
    writer: WriteHalf<Stream>,
    handle: client::Handle<Checker>,
    framing: Framing,
    hello: Hello,
    host_key: String,
    next_id: u64,
    /// Whether the device has answered an rpc yet (see the quirk in the module docs).
    answered: bool,
    options: SessionOptions,
}

impl Session {
    /// Connects and exchanges hellos, within `options.connect_timeout` and `deadline`.
    pub async fn open(
        endpoint: &Endpoint,
        login: &Login,
        options: &SessionOptions,
        deadline: Instant,
    ) -> Result<Session, NetconfError> {
        let addr = endpoint.addr();
        let (limit, step_deadline) = step_deadline(options.connect_timeout, deadline);
        let work = async {
            let channel = transport::connect(endpoint, login, options.keepalive).await?;
            Session::start(addr.clone(), channel, options).await
        };
        match tokio::time::timeout_at(step_deadline.into(), work).await {
            Ok(r) => r,
            Err(_) => Err(timeout_error(
                "connecting and logging in",
                &addr,
                limit,
                deadline,
            )),
        }
    }

    async fn start(
        addr: String,
        channel: transport::Channel,
        options: &SessionOptions,
    ) -> Result<Session, NetconfError> {
        let (read, mut writer) = tokio::io::split(channel.stream);
        let mut reader = FrameReader::new(read, options.max_message);
        let mut caps = format!("<capability>{BASE_10}</capability>");
        if options.offer_base11 {
            caps.push_str(&format!("<capability>{BASE_11}</capability>"));
        }
        let hello = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{NC_NS}"><capabilities>{caps}</capabilities></hello>"#
        );
        let io = |e: std::io::Error| NetconfError::Frame {
            addr: addr.clone(),
            source: e.into(),
        };
        framing::write(&mut writer, &hello, Framing::EndOfMessage)
            .await
            .map_err(io)?;
        let theirs =
            reader
                .read(Framing::EndOfMessage)
                .await
                .map_err(|source| NetconfError::Frame {
                    addr: addr.clone(),
                    source,
                })?;
        let theirs = Hello::parse(&theirs).map_err(|message| NetconfError::Garbled {
            addr: addr.clone(),
            message: format!("hello: {message}"),
        })?;
        let framing = if options.offer_base11 && theirs.has(BASE_11) {
            Framing::Chunked
        } else if theirs.has(BASE_10) {
            Framing::EndOfMessage
        } else {
            return Err(NetconfError::NoBase { addr });
        };
        tokio::time::sleep(options.settle).await;
        tracing::debug!(
            "netconf: session {} with {addr} open ({}, host key {})",
            theirs.session_id.as_deref().unwrap_or("?"),
            framing.as_str(),
            channel.host_key
        );
        Ok(Session {
            addr,
            reader,
            writer,
            handle: channel.handle,
            framing,
            hello: theirs,
            host_key: channel.host_key,
            next_id: 1,
            answered: false,
            options: options.clone(),
        })
    }

    /// Sends `<rpc>` with `body` (e.g. `<nc:commit/>`) and waits for its reply. An
    /// `<rpc-error>` of severity error is [`NetconfError::Rpc`]; warnings are logged.
    pub async fn rpc(
        &mut self,
        op: &'static str,
        body: &str,
        deadline: Instant,
    ) -> Result<Reply, NetconfError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = format!(r#"<nc:rpc xmlns:nc="{NC_NS}" message-id="{id}">{body}</nc:rpc>"#);
        let (limit, step_deadline) = step_deadline(self.options.rpc_timeout, deadline);
        let work = self.exchange(id, &msg);
        let reply = match tokio::time::timeout_at(step_deadline.into(), work).await {
            Ok(r) => r?,
            Err(_) => return Err(timeout_error(op, &self.addr, limit, deadline)),
        };
        for w in &reply.warnings {
            tracing::info!("netconf: {} answered {op} with a warning: {w}", self.addr);
        }
        if !reply.errors.is_empty() {
            return Err(NetconfError::Rpc {
                addr: self.addr.clone(),
                op,
                errors: reply.errors,
            });
        }
        if !reply.ok && reply.data.is_none() {
            return Err(NetconfError::NoOk {
                addr: self.addr.clone(),
                op,
            });
        }
        Ok(reply)
    }

    async fn exchange(&mut self, id: u64, msg: &str) -> Result<Reply, NetconfError> {
        let addr = self.addr.clone();
        let frame_err = |source| NetconfError::Frame {
            addr: addr.clone(),
            source,
        };
        framing::write(&mut self.writer, msg, self.framing)
            .await
            .map_err(|e| frame_err(e.into()))?;
        let want = id.to_string();
        let mut kick =
            (!self.answered).then(|| Box::pin(tokio::time::sleep(self.options.kick_after)));
        loop {
            let bytes = match kick.as_mut() {
                Some(sleep) => {
                    tokio::select! {
                        r = self.reader.read(self.framing) => r.map_err(frame_err)?,
                        () = sleep => {
                            tracing::debug!("netconf: {addr} has not answered the first rpc yet; sending a wake-up rpc");
                            let body = format!(
                                r#"<nc:rpc xmlns:nc="{NC_NS}" message-id="netban-wake-up"><nc:get-config><nc:source><nc:running/></nc:source><nc:filter type="subtree"><netban-wake-up xmlns="urn:netban:wake-up"/></nc:filter></nc:get-config></nc:rpc>"#
                            );
                            framing::write(&mut self.writer, &body, self.framing)
                                .await
                                .map_err(|e| frame_err(e.into()))?;
                            kick = None;
                            continue;
                        }
                    }
                }
                None => self.reader.read(self.framing).await.map_err(frame_err)?,
            };
            let reply = Reply::parse(&bytes).map_err(|message| NetconfError::Garbled {
                addr: addr.clone(),
                message,
            })?;
            if reply.message_id.as_deref() == Some(want.as_str()) {
                self.answered = true;
                return Ok(reply);
            }
            tracing::debug!(
                "netconf: {addr}: skipped a reply to message {:?} while waiting for {id}",
                reply.message_id
            );
        }
    }

    /// Sends `<close-session/>` (briefly waiting for its reply) and drops the connection.
    pub async fn close(mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let _ = self
            .rpc("close-session", "<nc:close-session/>", deadline)
            .await;
    }

    /// True when the SSH connection is gone (the device closed it, keep-alives failed).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// True when the device advertised this capability (compared without `?` parameters).
    pub fn has_capability(&self, uri: &str) -> bool {
        self.hello.has(uri)
    }

    pub fn session_id(&self) -> Option<&str> {
        self.hello.session_id.as_deref()
    }

    /// The device's host key as verified, e.g. `ssh-ed25519 SHA256:...`.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }
}

/// The step's own limit and the instant it ends (the earlier of limit and deadline).
fn step_deadline(limit: Duration, deadline: Instant) -> (Duration, Instant) {
    let by_limit = Instant::now() + limit;
    (limit, by_limit.min(deadline))
}

fn timeout_error(
    step: &'static str,
    addr: &str,
    limit: Duration,
    deadline: Instant,
) -> NetconfError {
    if Instant::now() >= deadline {
        NetconfError::Deadline {
            step,
            addr: addr.to_string(),
        }
    } else {
        NetconfError::Timeout {
            step,
            addr: addr.to_string(),
            after: limit,
        }
    }
}
