//! Typed errors of the NETCONF driver, and how each one is retried.
//!
//! The driver only classifies (as the Sink contract asks): [`Retry::Soon`] for what passes by
//! itself (the device is unreachable, a timeout, the session dropped, somebody else holds the
//! lock), [`Retry::Later`] for what needs the operator or a different batch (the device refused
//! the edit, the host key or the login is wrong). Messages say what failed, on what, and what
//! to do; they never contain a password or key material.

use std::time::Duration;

use netban_core::sink::{Retry, SinkError};

use crate::framing::FrameError;
use crate::hostkey::HostKeyError;
use crate::reply::RpcError;

#[derive(Debug, thiserror::Error)]
pub enum NetconfError {
    #[error(
        "cannot connect to {addr}: {message}; check host and port, and that NETCONF over SSH is enabled on the device"
    )]
    Connect { addr: String, message: String },
    #[error("{step} on {addr} took longer than {after:?}")]
    Timeout {
        step: &'static str,
        addr: String,
        after: Duration,
    },
    #[error("ssh to {addr} failed: {message}")]
    Ssh { addr: String, message: String },
    #[error("{0}")]
    HostKey(#[from] HostKeyError),
    #[error(
        "{addr} refused the login of user {user:?} with {method}; check user and {method} (the device may also allow other methods: {remaining})"
    )]
    Auth {
        addr: String,
        user: String,
        method: &'static str,
        remaining: String,
    },
    #[error(
        "{addr} refused the netconf SSH subsystem for user {user:?}; enable NETCONF over SSH on the device (e.g. Junos: set system services netconf ssh) and check the user's rights"
    )]
    Subsystem { addr: String, user: String },
    #[error("{addr}: {source}")]
    Frame {
        addr: String,
        #[source]
        source: FrameError,
    },
    #[error(
        "{addr} sent a message netban cannot read ({message}); the session is closed and opened again"
    )]
    Garbled { addr: String, message: String },
    #[error("{addr} does not speak NETCONF base:1.0 or base:1.1 (its hello lists neither)")]
    NoBase { addr: String },
    #[error("{addr} does not support the candidate datastore; set datastore = \"running\"")]
    NoCandidate { addr: String },
    #[error("{addr}: {op} failed: {}", join(.errors))]
    Rpc {
        addr: String,
        op: &'static str,
        errors: Vec<RpcError>,
    },
    #[error("{addr}: {op} got a reply with neither <ok/> nor <data>")]
    NoOk { addr: String, op: &'static str },
    #[error(
        "not connected to {addr}: the last attempt {ago:?} ago failed ({last}); next attempt in {wait:?}"
    )]
    Backoff {
        addr: String,
        last: String,
        ago: Duration,
        wait: Duration,
    },
    #[error("the deadline passed before {step} on {addr}")]
    Deadline { step: &'static str, addr: String },
}

fn join(errors: &[RpcError]) -> String {
    if errors.is_empty() {
        return "rpc-error without details".into();
    }
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Error tags that pass by themselves: another session holds a lock or is using the
/// datastore, or the device is short of resources.
const TRANSIENT_TAGS: &[&str] = &[
    "lock-denied",
    "in-use",
    "resource-denied",
    "rollback-failed",
];

impl NetconfError {
    pub fn retry(&self) -> Retry {
        match self {
            NetconfError::Connect { .. }
            | NetconfError::Timeout { .. }
            | NetconfError::Ssh { .. }
            | NetconfError::Frame { .. }
            | NetconfError::Garbled { .. }
            | NetconfError::Backoff { .. }
            | NetconfError::Deadline { .. } => Retry::Soon,
            NetconfError::Rpc { errors, .. }
                if !errors.is_empty()
                    && errors
                        .iter()
                        .all(|e| TRANSIENT_TAGS.contains(&e.tag.as_str())) =>
            {
                Retry::Soon
            }
            NetconfError::HostKey(_)
            | NetconfError::Auth { .. }
            | NetconfError::Subsystem { .. }
            | NetconfError::NoBase { .. }
            | NetconfError::NoCandidate { .. }
            | NetconfError::Rpc { .. }
            | NetconfError::NoOk { .. } => Retry::Later,
        }
    }

    /// True when the session cannot be used any more (it is dropped and opened again).
    pub fn breaks_session(&self) -> bool {
        !matches!(self, NetconfError::Rpc { .. } | NetconfError::NoOk { .. })
    }

    /// True for an `<rpc-error>` whose every error has this tag.
    pub fn is_rpc_tag(&self, tag: &str) -> bool {
        matches!(self, NetconfError::Rpc { errors, .. }
            if !errors.is_empty() && errors.iter().all(|e| e.tag == tag))
    }

    pub fn to_sink_error(&self, sink: &str) -> SinkError {
        SinkError {
            retry: self.retry(),
            message: format!("{sink}: {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(tags: &[&str]) -> NetconfError {
        NetconfError::Rpc {
            addr: "r1:830".into(),
            op: "lock",
            errors: tags
                .iter()
                .map(|t| RpcError {
                    error_type: "protocol".into(),
                    tag: t.to_string(),
                    severity: "error".into(),
                    ..RpcError::default()
                })
                .collect(),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(rpc(&["lock-denied"]).retry(), Retry::Soon);
        assert_eq!(rpc(&["invalid-value"]).retry(), Retry::Later);
        assert_eq!(rpc(&["lock-denied", "invalid-value"]).retry(), Retry::Later);
        assert!(rpc(&["data-missing"]).is_rpc_tag("data-missing"));
        assert!(!rpc(&[]).is_rpc_tag("data-missing"));
        assert!(!rpc(&["x"]).breaks_session());
        let e = NetconfError::Connect {
            addr: "r1:830".into(),
            message: "refused".into(),
        };
        assert_eq!(e.retry(), Retry::Soon);
        assert!(e.breaks_session());
        assert_eq!(
            rpc(&["lock-denied"]).to_sink_error("edge-1").message,
            "edge-1: r1:830: lock failed: protocol/lock-denied"
        );
    }
}
