//! fail2ban-clusterd compatibility: the fanout line protocol, both ways, for migrations.
//!
//! - Receive: `subscribe CHANNEL`, then every `CHANNEL!jail=..., action=banip|unbanip, ip=...`
//!   line becomes a lease of origin `fanout` with the configured `bantime` (or its end),
//!   after the jail/action filters, the `fanout` origin's own caps and the guard.
//! - Publish: this host's bans and unbans (`Consumer::new("fanout")`, local origin only) go
//!   out as `announce CHANNEL jail=..., action=..., ip=...`; the cursor moves once the line
//!   is written. Our own announcements coming back are recognised and skipped.
//!
//! These messages are unsigned and anybody who can reach the server can send them: netban
//! says so loudly at start, never runs anything they contain (no shell, no command), and
//! validates every value ([`message`]). Lines are capped ([`line`]); the connection is kept
//! alive with `ping` (fanout answers with a timestamp line) and re-made with backoff.

pub mod line;
pub mod message;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netban_core::clock;
use netban_core::lease::Origin;
use netban_core::outbox::{Cause, Consumer, EventKind};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::config::FanoutConfig;
use crate::counts::Verdict;
use crate::node::Node;
use crate::receive::Admission;
use crate::reconnect::Reconnect;
use crate::sign::Trust;
use crate::status::{FANOUT_CONSUMER, Link};
use line::{Line, LineReader};
use message::{Action, Message};

/// The origin of leases received over fanout.
pub const ORIGIN: &str = "fanout";
/// How often a `ping` goes out.
const PING_EVERY: Duration = Duration::from_secs(30);
/// No line for this long: the connection is dead.
const SILENCE: Duration = Duration::from_secs(95);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an announcement of ours is recognised when it comes back.
const ECHO: Duration = Duration::from_secs(30);
/// Announcements remembered for that (bounded).
const ECHO_MAX: usize = 4096;
/// Outbox events per look.
const BATCH: usize = 200;
const POLL: Duration = Duration::from_secs(1);

/// The fanout bridge. Build it with [`crate::Cluster::fanout`].
pub struct Fanout {
    node: Arc<Node>,
    cfg: FanoutConfig,
}

impl Fanout {
    pub(crate) fn new(node: Arc<Node>, cfg: FanoutConfig) -> Fanout {
        Fanout { node, cfg }
    }

    /// Runs until `stop`; reconnects with backoff.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let cfg = self.cfg.clone();
        tracing::warn!(
            "cluster: fanout bridge to {} (channel {}) is on: its messages are UNSIGNED, anybody who can reach that server can send bans and unbans; received bans are capped, guarded and given origin fanout{}",
            cfg.server,
            cfg.channel,
            if cfg.receive {
                ""
            } else {
                " (receiving is off)"
            }
        );
        let node = self.node.clone();
        let adm = self
            .node
            .db(move |s| {
                Admission::new(&node.config, &node.host, Trust::default(), s, clock::now())
            })
            .await;
        let adm = match adm {
            Ok(a) => Arc::new(Mutex::new(a)),
            Err(e) => {
                tracing::error!("cluster: fanout bridge cannot read the state ({e}); it is off");
                return;
            }
        };
        let mut echoes = VecDeque::new();
        let mut retry = Reconnect::new(Link::Fanout);
        loop {
            let mut connected = false;
            let r = tokio::select! {
                _ = &mut stop => return,
                r = self.session(&cfg, &adm, &mut echoes, &mut connected) => r,
            };
            let e = r
                .err()
                .unwrap_or_else(|| "the server closed the connection".into());
            let wait = retry.ended(&self.node.live, connected, Some(e), |e| {
                format!(
                    "cluster: fanout server {}: {e}; connecting again (bans to announce wait in the outbox)",
                    cfg.server
                )
            });
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn session(
        &self,
        cfg: &FanoutConfig,
        adm: &Arc<Mutex<Admission>>,
        echoes: &mut VecDeque<(String, Instant)>,
        connected: &mut bool,
    ) -> Result<(), String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&cfg.server))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("cannot connect: {e}"))?;
        let (rd, mut wr) = stream.into_split();
        let mut lines = LineReader::new(tokio::io::BufReader::new(rd));
        if cfg.receive {
            write(&mut wr, &format!("subscribe {}\n", cfg.channel)).await?;
        }
        self.node.live.up(Link::Fanout);
        *connected = true;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                l = lines.next() => {
                    let Some(l) = l.map_err(|e| format!("read failed: {e}"))? else {
                        return Ok(());
                    };
                    heard = Instant::now();
                    self.received(cfg, adm, echoes, l).await;
                }
                _ = ping.tick() => {
                    if heard.elapsed() > SILENCE {
                        return Err(format!("no answer for {}s", SILENCE.as_secs()));
                    }
                    write(&mut wr, "ping\n").await?;
                }
                _ = self.node.wake_fanout.notified(), if cfg.publish => {
                    self.announce(cfg, &mut wr, echoes).await?;
                }
                _ = tokio::time::sleep(POLL), if cfg.publish => {
                    self.announce(cfg, &mut wr, echoes).await?;
                }
            }
        }
    }

    async fn received(
        &self,
        cfg: &FanoutConfig,
        adm: &Arc<Mutex<Admission>>,
        echoes: &mut VecDeque<(String, Instant)>,
        l: Line,
    ) {
        let text = match l {
            Line::TooLong(n) => {
                self.refuse(adm, Verdict::Malformed, format!("a line of {n} bytes"))
                    .await;
                return;
            }
            Line::Text(t) => t,
        };
        // `CHANNEL!MESSAGE`; a line without '!' is the answer to a ping.
        let Some(i) = text.iter().position(|&b| b == b'!') else {
            return;
        };
        if &text[..i] != cfg.channel.as_bytes() || !cfg.receive {
            return;
        }
        let msg = String::from_utf8_lossy(&text[i + 1..]).into_owned();
        prune(echoes);
        if let Some(p) = echoes.iter().position(|(m, _)| *m == msg) {
            echoes.remove(p);
            return;
        }
        let m: Message = match message::parse(&msg) {
            Ok(m) => m,
            Err(e) => {
                let shown: String = msg.chars().take(80).collect();
                self.refuse(adm, Verdict::Malformed, format!("{e}: {shown:?}"))
                    .await;
                return;
            }
        };
        if !cfg.wants(&m.jail, m.action.as_str()) {
            self.refuse(adm, Verdict::Filtered, String::new()).await;
            return;
        }
        let node = self.node.clone();
        let adm = adm.clone();
        let bantime = cfg.bantime;
        let r = self
            .node
            .db(move |store| {
                let guard = (node.guard)();
                let now = clock::now();
                let mut a = adm.lock().unwrap_or_else(|p| p.into_inner());
                // The lease and the counts in one transaction.
                let r = store.batch(|b| {
                    let t = a.take_fanout(b, &guard, &m, bantime, now)?;
                    let p = a.progress();
                    b.save_cluster_progress(None, &p, now)?;
                    Ok(t)
                });
                a.undo_on_error(store, now, r)
            })
            .await;
        match r {
            Ok(t) if t.changed => (self.node.on_change)(),
            Ok(_) => {}
            Err(e) => tracing::warn!("cluster: fanout message not applied: {e}"),
        }
    }

    /// Counts (and logs, once a minute) a message refused before the caps, and saves it.
    async fn refuse(&self, adm: &Arc<Mutex<Admission>>, v: Verdict, detail: String) {
        let adm = adm.clone();
        let r = self
            .node
            .db(move |store| {
                let mut a = adm.lock().unwrap_or_else(|p| p.into_inner());
                a.refuse_fanout(v, &|| detail.clone());
                let p = a.progress();
                store.save_cluster_progress(None, &p, clock::now())
            })
            .await;
        if let Err(e) = r {
            tracing::debug!("cluster: cannot save the fanout counts: {e}");
        }
    }

    /// Announces this host's bans and unbans since the cursor.
    async fn announce(
        &self,
        cfg: &FanoutConfig,
        wr: &mut tokio::net::tcp::OwnedWriteHalf,
        echoes: &mut VecDeque<(String, Instant)>,
    ) -> Result<(), String> {
        loop {
            let events = self
                .node
                .db(|s| Consumer::new(FANOUT_CONSUMER).next(s, BATCH))
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last().map(|e| e.id) else {
                return Ok(());
            };
            let now = clock::now();
            let mut out = String::new();
            for e in &events {
                if e.origin != Origin::Local.as_str() {
                    continue;
                }
                let action = match (e.kind, e.cause) {
                    (EventKind::Start, Cause::Ban | Cause::Restore)
                        if e.until.is_none_or(|u| u > now) =>
                    {
                        Action::Ban
                    }
                    (EventKind::End, Cause::Unban | Cause::Expired | Cause::Revoke) => {
                        Action::Unban
                    }
                    _ => continue,
                };
                let msg = Message {
                    jail: e.jail.clone(),
                    action,
                    target: e.target,
                }
                .format();
                out.push_str(&format!("announce {} {msg}\n", cfg.channel));
                echoes.push_back((msg, Instant::now()));
                if echoes.len() > ECHO_MAX {
                    echoes.pop_front();
                }
            }
            if !out.is_empty() {
                write(wr, &out).await?;
            }
            self.node
                .db(move |s| Consumer::new(FANOUT_CONSUMER).commit(s, last))
                .await
                .map_err(|e| e.to_string())?;
            if events.len() < BATCH {
                return Ok(());
            }
        }
    }
}

fn prune(echoes: &mut VecDeque<(String, Instant)>) {
    while echoes.front().is_some_and(|(_, t)| t.elapsed() > ECHO) {
        echoes.pop_front();
    }
}

async fn write(wr: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(text.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err("write timed out".into()),
    }
}
