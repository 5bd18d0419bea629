//! The control socket's protocol: one JSON object per line each way, shared by the CLI (which
//! pokes the daemon after it wrote a lease) and the daemon; the Python fail2ban action speaks
//! it too (`dist/fail2ban/action.d/netban-socket.py`).
//!
//! Every request gets one answer line. A poke's answer is what tells the CLI the daemon took
//! the work: no answer (a daemon at its connection cap says `busy`) and the CLI delivers
//! inline instead (issue 6: pokes beyond the cap used to vanish).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::request::BanInput;

/// The longest request line the daemon reads.
pub const MAX_LINE: usize = 4096;

/// A request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Leases changed: deliver.
    Poke,
    Ping,
    Ban(BanInput),
    /// Ends a local ban (of `jail`, or every local ban of the address when absent).
    Unban {
        ip: String,
        #[serde(default)]
        jail: Option<String>,
    },
    Flush {
        #[serde(default)]
        jail: Option<String>,
    },
    /// A full pass with repair; answered when done.
    Sync {
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// The cluster's state, with the live connections only the daemon knows.
    #[serde(rename = "cluster_status")]
    ClusterStatus,
}

/// An answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub ok: bool,
    /// The exit code a CLI would use for this failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `recorded`, `refused`, `ended`, `removed`, `absent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Flush: the network bans kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<usize>,
    /// Unban: the jails whose leases ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Vec<String>>,
    /// Sync: converged, what is pending, the per-sink report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<serde_json::Value>,
    /// ClusterStatus: netban-cluster's `ClusterStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
}

impl Response {
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    pub fn result(result: &str) -> Response {
        Response {
            ok: true,
            result: Some(result.to_string()),
            ..Response::default()
        }
    }

    pub fn error(code: i32, error: impl Into<String>) -> Response {
        Response {
            ok: false,
            code: Some(code),
            error: Some(error.into()),
            ..Response::default()
        }
    }

    /// The line sent on the socket.
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{\"ok\":false}".into());
        s.push('\n');
        s
    }
}

/// Sends one request and reads its answer, within `timeout`. `None`: no daemon answered.
pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Option<Response> {
    let mut sock = UnixStream::connect(socket).ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    sock.set_write_timeout(Some(timeout)).ok()?;
    let mut line = serde_json::to_string(req).ok()?;
    line.push('\n');
    sock.write_all(line.as_bytes()).ok()?;
    let mut answer = String::new();
    // A cluster status with a thousand peers is a few hundred kilobytes.
    BufReader::new(std::io::Read::take(&sock, 4 << 20))
        .read_line(&mut answer)
        .ok()?;
    serde_json::from_str(&answer).ok()
}
