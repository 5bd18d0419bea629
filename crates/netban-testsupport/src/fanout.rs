//! A minimal fanout pub/sub server, for the fail2ban-clusterd compatibility tests.
//!
//! The real `fanout` is not installable from the package registries reachable here, so this
//! speaks its line protocol as shared/reference/cluster.md describes it, nothing more: on
//! connect `debug!connected...` and a subscription to channel `all`; `subscribe CHANNEL`,
//! `unsubscribe CHANNEL`, `announce CHANNEL MESSAGE` (delivered to every subscriber, the
//! sender included, as `CHANNEL!MESSAGE`), `ping` (answered with a bare unix timestamp);
//! a channel containing `!` and an empty message are ignored. No auth, no persistence.
//!
//! [`FanoutClient`] is the other end for a test: subscribe, announce, read what arrives.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Client {
    id: u64,
    out: TcpStream,
    channels: HashSet<String>,
}

/// The server; stops (and drops every connection) when dropped.
pub struct FanoutServer {
    addr: SocketAddr,
    clients: Arc<Mutex<Vec<Client>>>,
    stop: Arc<AtomicBool>,
}

impl FanoutServer {
    pub fn start() -> anyhow::Result<FanoutServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let clients: Arc<Mutex<Vec<Client>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (clients.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = 0;
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        next += 1;
                        let _ = stream.set_nonblocking(false);
                        serve(stream, next, c.clone(), s.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(FanoutServer {
            addr,
            clients,
            stop,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// How many clients are subscribed to `channel`.
    pub fn subscribers(&self, channel: &str) -> usize {
        lock(&self.clients)
            .iter()
            .filter(|c| c.channels.contains(channel))
            .count()
    }

    /// Drops every connection (clients see the server go away) but keeps listening.
    pub fn disconnect_all(&self) {
        for c in lock(&self.clients).drain(..) {
            let _ = c.out.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for FanoutServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.disconnect_all();
    }
}

fn lock(m: &Mutex<Vec<Client>>) -> std::sync::MutexGuard<'_, Vec<Client>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve(stream: TcpStream, id: u64, clients: Arc<Mutex<Vec<Client>>>, stop: Arc<AtomicBool>) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let _ = out.write_all(b"debug!connected...\n");
    let mut channels = HashSet::new();
    channels.insert("all".to_string());
    if let Ok(o) = stream.try_clone() {
        lock(&clients).push(Client {
            id,
            out: o,
            channels,
        });
    }
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let l = line.trim_end_matches(['\n', '\r']);
            let (cmd, rest) = l.split_once(' ').unwrap_or((l, ""));
            match cmd {
                "subscribe" | "unsubscribe" if !rest.is_empty() && !rest.contains('!') => {
                    for c in lock(&clients).iter_mut().filter(|c| c.id == id) {
                        if cmd == "subscribe" {
                            c.channels.insert(rest.to_string());
                        } else {
                            c.channels.remove(rest);
                        }
                    }
                }
                "announce" => {
                    let Some((channel, msg)) = rest.split_once(' ') else {
                        continue;
                    };
                    if channel.contains('!') || msg.is_empty() {
                        continue;
                    }
                    let wire = format!("{channel}!{msg}\n");
                    for c in lock(&clients)
                        .iter_mut()
                        .filter(|c| c.channels.contains(channel))
                    {
                        let _ = c.out.write_all(wire.as_bytes());
                    }
                }
                "ping" => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let _ = out.write_all(format!("{now}\n").as_bytes());
                }
                _ => {}
            }
        }
        lock(&clients).retain(|c| c.id != id);
    });
}

/// A test's own connection to the server.
pub struct FanoutClient {
    out: TcpStream,
    lines: std::sync::mpsc::Receiver<String>,
}

impl FanoutClient {
    pub fn connect(addr: &str) -> anyhow::Result<FanoutClient> {
        let stream = TcpStream::connect(addr)?;
        let out = stream.try_clone()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
                if tx.send(line.trim_end().to_string()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        Ok(FanoutClient { out, lines: rx })
    }

    pub fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    pub fn subscribe(&mut self, channel: &str) -> anyhow::Result<()> {
        self.send(&format!("subscribe {channel}"))
    }

    pub fn announce(&mut self, channel: &str, msg: &str) -> anyhow::Result<()> {
        self.send(&format!("announce {channel} {msg}"))
    }

    /// Lines received on `channel` (the message part) within `wait`.
    pub fn messages(&self, channel: &str, wait: Duration) -> Vec<String> {
        let end = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(m) = l.strip_prefix(&format!("{channel}!")) {
                        out.push(m.to_string());
                    }
                }
                Err(_) => break,
            }
        }
        out
    }
}
