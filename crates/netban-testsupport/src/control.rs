//! A client of the daemon's control socket, speaking what `crates/netban/src/protocol.rs`
//! defines: one JSON object per line each way (`{"op":"ping"}` in, `{"ok":true}` out).
//!
//! [`Control`] behaves like the Python fail2ban action (`dist/fail2ban/action.d/netban-socket.py`):
//! it keeps one connection and, when a request fails on a reused connection (the daemon
//! restarted or closed it), sends it once more on a new one, counting the reconnects. It is
//! written apart from netban's own client on purpose: a test of the protocol should not
//! share the code it tests. Reads are bounded (one line of at most [`MAX_ANSWER`] bytes).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The longest answer line read.
pub const MAX_ANSWER: u64 = 1024 * 1024;

/// The default read timeout of one call (a `sync` may take a while).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

type Conn = (BufReader<UnixStream>, UnixStream);

/// A kept connection to a control socket.
pub struct Control {
    path: PathBuf,
    timeout: Duration,
    conn: Option<Conn>,
    reconnects: usize,
}

impl Control {
    pub fn new(socket: &Path) -> Control {
        Control {
            path: socket.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
            conn: None,
            reconnects: 0,
        }
    }

    /// The read and write timeout of each call.
    pub fn timeout(mut self, timeout: Duration) -> Control {
        self.timeout = timeout;
        self
    }

    /// How often a reused connection was found dead and replaced.
    pub fn reconnects(&self) -> usize {
        self.reconnects
    }

    /// Sends `request` and returns the answer.
    pub fn call(&mut self, request: &Value) -> Result<Value> {
        let mut line = request.to_string();
        line.push('\n');
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                self.conn = Some(self.connect()?);
            }
            let Some((reader, writer)) = self.conn.as_mut() else {
                bail!("no connection to {}", self.path.display());
            };
            let mut answer = String::new();
            let result = writer
                .write_all(line.as_bytes())
                .and_then(|()| read_line(reader, &mut answer));
            match result {
                Ok(n) if n > 0 => {
                    return serde_json::from_str(&answer)
                        .with_context(|| format!("daemon answer {answer:?}"));
                }
                other => {
                    self.conn = None;
                    if reused && attempt == 0 {
                        self.reconnects += 1;
                        continue;
                    }
                    match other {
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("control socket {}", self.path.display())
                            });
                        }
                        Ok(_) => bail!("the daemon closed the connection"),
                    }
                }
            }
        }
        bail!("no answer from the daemon on {}", self.path.display())
    }

    fn connect(&self) -> Result<Conn> {
        let s = UnixStream::connect(&self.path)
            .with_context(|| format!("connecting to {}", self.path.display()))?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok((BufReader::new(s.try_clone()?), s))
    }
}

fn read_line(reader: &mut BufReader<UnixStream>, into: &mut String) -> std::io::Result<usize> {
    let n = reader.by_ref().take(MAX_ANSWER).read_line(into)?;
    if n as u64 == MAX_ANSWER && !into.ends_with('\n') {
        return Err(std::io::Error::other("answer line too long"));
    }
    Ok(n)
}

/// One request on a new connection.
pub fn call(socket: &Path, request: &Value, timeout: Duration) -> Result<Value> {
    Control::new(socket).timeout(timeout).call(request)
}

/// True when a daemon answers `{"op":"ping"}` with `"ok": true` on `socket` within 2 s.
pub fn ping(socket: &Path) -> bool {
    call(
        socket,
        &serde_json::json!({"op": "ping"}),
        Duration::from_secs(2),
    )
    .is_ok_and(|v| v["ok"] == true)
}
