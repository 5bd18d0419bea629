//! A second NETCONF client for tests: OpenSSH's `ssh -s netconf`, speaking base:1.0
//! (end-of-message framing) to the harness's netconfd. It is how tests look at the device
//! (running, candidate) and change it behind netban's back, independently of netban's own
//! NETCONF code.
//!
//! Blocking, with a timeout on every read; a reader thread feeds the bytes of ssh's stdout
//! to the session. The hello quirk of netconfd (see `netconfd.rs`) is avoided with a pause
//! after the hello, and overcome with a newline when an answer is late.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::netconfd_user::TEST_USER;

const NC_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const EOM: &[u8] = b"]]>]]>";
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REPLY: usize = 256 * 1024 * 1024;

/// One blocklist entry as the device stores it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub prefix: String,
    pub comment: Option<String>,
}

/// How to reach the harness's netconfd as the test user.
#[derive(Debug, Clone)]
pub struct NcClient {
    port: u16,
    key: PathBuf,
    known_hosts: PathBuf,
    candidate: bool,
}

impl NcClient {
    pub fn new(port: u16, key: PathBuf, known_hosts: PathBuf, candidate: bool) -> NcClient {
        NcClient {
            port,
            key,
            known_hosts,
            candidate,
        }
    }

    /// Opens a session (it stays open until dropped: e.g. to hold a lock).
    pub fn open(&self) -> Result<NcSession> {
        NcSession::open(self)
    }

    /// The blocklist entries of `source` (`running` or `candidate`).
    pub fn entries(&self, source: &str) -> Result<Vec<Entry>> {
        let mut s = self.open()?;
        let reply = s.rpc(&format!(
            r#"<get-config><source><{source}/></source><filter type="subtree"><blocklist xmlns="urn:example:blocklist"/></filter></get-config>"#
        ))?;
        parse_entries(&reply)
    }

    /// Adds (merges) an entry and commits.
    pub fn add(&self, prefix: &str, comment: Option<&str>) -> Result<()> {
        let comment = comment
            .map(|c| format!("<comment>{}</comment>", escape(c)))
            .unwrap_or_default();
        self.edit(&format!(
            "<entry><prefix>{}</prefix>{comment}</entry>",
            escape(prefix)
        ))
    }

    /// Deletes an entry and commits.
    pub fn delete(&self, prefix: &str) -> Result<()> {
        self.edit(&format!(
            r#"<entry xmlns:nc="{NC_NS}" nc:operation="delete"><prefix>{}</prefix></entry>"#,
            escape(prefix)
        ))
    }

    fn edit(&self, entries: &str) -> Result<()> {
        let mut s = self.open()?;
        let target = if self.candidate {
            "candidate"
        } else {
            "running"
        };
        let reply = s.rpc(&format!(
            r#"<edit-config><target><{target}/></target><config><blocklist xmlns="urn:example:blocklist">{entries}</blocklist></config></edit-config>"#
        ))?;
        ensure_ok("edit-config", &reply)?;
        if self.candidate {
            ensure_ok("commit", &s.rpc("<commit/>")?)?;
        }
        Ok(())
    }
}

/// An open base:1.0 session through `ssh -s netconf`.
pub struct NcSession {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    next_id: u64,
}

impl NcSession {
    fn open(c: &NcClient) -> Result<NcSession> {
        let mut child = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", c.known_hosts.display()))
            .arg("-i")
            .arg(&c.key)
            .args(["-p", &c.port.to_string(), "-s"])
            .arg(format!("{TEST_USER}@127.0.0.1"))
            .arg("netconf")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ssh (package openssh-client)")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let mut stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut s = NcSession {
            child,
            stdin,
            rx,
            buf: Vec::new(),
            next_id: 1,
        };
        s.read_message().context("reading netconfd's hello")?;
        s.send(&format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{NC_NS}"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>"#
        ))?;
        std::thread::sleep(Duration::from_millis(100));
        Ok(s)
    }

    /// Sends one rpc and returns its reply, raw.
    pub fn rpc(&mut self, body: &str) -> Result<String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&format!(
            r#"<rpc message-id="{id}" xmlns="{NC_NS}">{body}</rpc>"#
        ))?;
        let reply = self.read_message()?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    fn send(&mut self, msg: &str) -> Result<()> {
        self.stdin.write_all(msg.as_bytes())?;
        self.stdin.write_all(EOM)?;
        self.stdin.flush()?;
        Ok(())
    }

    fn read_message(&mut self) -> Result<Vec<u8>> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut kicked = false;
        loop {
            if let Some(at) = self.buf.windows(EOM.len()).position(|w| w == EOM) {
                let msg = self.buf[..at].to_vec();
                self.buf.drain(..at + EOM.len());
                return Ok(msg);
            }
            if self.buf.len() > MAX_REPLY {
                bail!("reply larger than {MAX_REPLY} bytes");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_secs(2))) {
                Ok(bytes) => self.buf.extend_from_slice(&bytes),
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if !kicked {
                        // netconfd's quirk: more input makes it look at what it has.
                        let _ = self.stdin.write_all(b"\n");
                        let _ = self.stdin.flush();
                        kicked = true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!("no reply within {REPLY_TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    let mut err = String::new();
                    if let Some(e) = self.child.stderr.as_mut() {
                        let _ = e.take(4096).read_to_string(&mut err);
                    }
                    bail!("ssh ended the session: {}", err.trim());
                }
            }
        }
    }
}

impl Drop for NcSession {
    fn drop(&mut self) {
        let _ = self.send(r#"<rpc message-id="close" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><close-session/></rpc>"#);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails unless the reply has `<ok/>`.
pub fn ensure_ok(op: &str, reply: &str) -> Result<()> {
    if reply.contains("<ok/>") && !reply.contains("<rpc-error>") {
        Ok(())
    } else {
        bail!("{op} failed: {reply}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `<entry>` elements of a get-config reply.
pub fn parse_entries(reply: &str) -> Result<Vec<Entry>> {
    if reply.contains("<rpc-error>") {
        bail!("get-config failed: {reply}");
    }
    let mut reader = Reader::from_str(reply);
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut prefix = String::new();
    let mut comment: Option<String> = None;
    loop {
        match reader
            .read_event()
            .context("parsing the get-config reply")?
        {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if name == "entry" {
                    prefix.clear();
                    comment = None;
                }
                if name == "comment" {
                    comment = Some(String::new());
                }
                path.push(name);
            }
            Event::Empty(e)
                if e.local_name().as_ref() == "comment"
                    && path.last().map(String::as_str) == Some("entry") =>
            {
                comment = Some(String::new());
            }
            Event::End(_) => {
                let closed = path.pop();
                if closed.as_deref() == Some("entry") {
                    out.push(Entry {
                        prefix: prefix.trim().to_string(),
                        comment: comment.take(),
                    });
                }
            }
            Event::Text(t) => push_text(&path, &t.xml10_content(), &mut prefix, &mut comment),
            Event::GeneralRef(r) => {
                let c = match r.xml10_content().as_ref() {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    _ => r
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .map(String::from)
                        .unwrap_or_default(),
                };
                push_text(&path, &c, &mut prefix, &mut comment);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn push_text(path: &[String], text: &str, prefix: &mut String, comment: &mut Option<String>) {
    match path.last().map(String::as_str) {
        Some("prefix") => prefix.push_str(text),
        Some("comment") => {
            if let Some(c) = comment.as_mut() {
                c.push_str(text);
            }
        }
        _ => {}
    }
}
