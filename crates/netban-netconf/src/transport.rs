//! SSH to the device with russh: TCP connect, host key check, login, `netconf` subsystem.
//!
//! What comes out is a byte stream to the device's NETCONF server; [`crate::session`] speaks
//! NETCONF over it. The host key is checked inside the handshake ([`Checker`]), before any
//! credential leaves this host. The caller bounds the whole of [`connect`] with its timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netban_core::config::Secret;
use russh::client::{self, AuthResult};
use russh::keys::ssh_key::Algorithm;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelStream};

use crate::error::NetconfError;
use crate::hostkey::{self, HostKeyError, HostKeyPolicy};

/// Where to connect and which host key to expect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub host_key: HostKeyPolicy,
}

impl Endpoint {
    /// `host:port`, `[v6]:port` for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How netban logs in.
#[derive(Clone)]
pub enum Login {
    Password { user: String, password: Secret },
    Key { user: String, key: Arc<PrivateKey> },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Password { user, .. } => write!(f, "Login::Password({user:?}, <redacted>)"),
            Login::Key { user, .. } => write!(f, "Login::Key({user:?}, <redacted>)"),
        }
    }
}

impl Login {
    fn user(&self) -> &str {
        match self {
            Login::Password { user, .. } | Login::Key { user, .. } => user,
        }
    }
}

/// An open `netconf` subsystem channel. Dropping it closes the SSH connection.
pub struct Channel {
    pub stream: ChannelStream<client::Msg>,
    /// The SSH connection; kept so it lives as long as the channel.
    pub handle: client::Handle<Checker>,
    /// The device's host key, e.g. `ssh-ed25519 SHA256:...`.
    pub host_key: String,
}

/// The russh handler: checks the host key and remembers what it saw.
pub struct Checker {
    endpoint: Endpoint,
    verdict: Arc<Mutex<Option<Result<String, HostKeyError>>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let result = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => hostkey::verify(
                &self.endpoint.host_key,
                &self.endpoint.host,
                self.endpoint.port,
                key,
            )
            .map(|()| format!("{} {}", key.algorithm(), hostkey::fingerprint(key))),
            PublicKeyOrCertificate::Certificate(_) => Err(HostKeyError::Certificate {
                host: self.endpoint.addr(),
            }),
        };
        let ok = result.is_ok();
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(result);
        }
        Ok(ok)
    }
}

/// Connects, checks the host key, logs in and starts the `netconf` subsystem.
pub async fn connect(
    endpoint: &Endpoint,
    login: &Login,
    keepalive: Option<Duration>,
) -> Result<Channel, NetconfError> {
    let addr = endpoint.addr();
    let mut config = client::Config {
        keepalive_interval: keepalive,
        keepalive_max: 3,
        nodelay: true,
        ..client::Config::default()
    };
    if let HostKeyPolicy::KnownHosts(path) = &endpoint.host_key {
        // Ask first for the key types known_hosts has for this device (as OpenSSH does), so a
        // device with several host keys offers the one the operator recorded.
        let known = hostkey::known_algorithms(path, &endpoint.host, endpoint.port);
        // known_hosts names every RSA key "ssh-rsa"; the handshake asks for rsa-sha2-*.
        let is_known = |a: &Algorithm| {
            known.contains(&a.to_string())
                || (matches!(a, Algorithm::Rsa { .. }) && known.iter().any(|k| k == "ssh-rsa"))
        };
        let (first, rest): (Vec<Algorithm>, Vec<Algorithm>) =
            config.preferred.key.iter().cloned().partition(is_known);
        if !first.is_empty() {
            config.preferred.key = first.into_iter().chain(rest).collect::<Vec<_>>().into();
        }
    }
    let verdict = Arc::new(Mutex::new(None));
    let checker = Checker {
        endpoint: endpoint.clone(),
        verdict: verdict.clone(),
    };
    let tcp = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| NetconfError::Connect {
            addr: addr.clone(),
            message: e.to_string(),
        })?;
    let handshake = client::connect_stream(Arc::new(config), tcp, checker).await;
    let seen = verdict.lock().ok().and_then(|v| v.clone());
    let (mut handle, host_key) = match (handshake, seen) {
        (Ok(h), Some(Ok(key))) => (h, key),
        (_, Some(Err(refused))) => return Err(refused.into()),
        (Err(e), _) => {
            return Err(NetconfError::Ssh {
                addr,
                message: e.to_string(),
            });
        }
        (Ok(_), None) => {
            return Err(NetconfError::Ssh {
                addr,
                message: "the handshake ended without a host key".into(),
            });
        }
    };
    authenticate(&mut handle, login, &addr).await?;
    let ssh = |e: russh::Error| NetconfError::Ssh {
        addr: addr.clone(),
        message: e.to_string(),
    };
    let mut channel = handle.channel_open_session().await.map_err(ssh)?;
    channel
        .request_subsystem(true, "netconf")
        .await
        .map_err(ssh)?;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) | Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => {
                return Err(NetconfError::Subsystem {
                    addr,
                    user: login.user().to_string(),
                });
            }
            // Window adjustments and the like before the answer.
            Some(_) => {}
        }
    }
    Ok(Channel {
        stream: channel.into_stream(),
        handle,
        host_key,
    })
}

async fn authenticate(
    handle: &mut client::Handle<Checker>,
    login: &Login,
    addr: &str,
) -> Result<(), NetconfError> {
    let ssh = |e: russh::Error| NetconfError::Ssh {
        addr: addr.to_string(),
        message: e.to_string(),
    };
    let (result, method) = match login {
        Login::Password { user, password } => (
            handle
                .authenticate_password(user.clone(), password.expose())
                .await
                .map_err(ssh)?,
            "password",
        ),
        Login::Key { user, key } => {
            // Only RSA keys need the server's preferred hash, and asking may wait up to 1 s
            // for the server's EXT_INFO.
            let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(ssh)?
                    .flatten()
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
            (
                handle
                    .authenticate_publickey(user.clone(), key)
                    .await
                    .map_err(ssh)?,
                "key",
            )
        }
    };
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure {
            remaining_methods, ..
        } => Err(NetconfError::Auth {
            addr: addr.to_string(),
            user: login.user().to_string(),
            method,
            remaining: format!("{remaining_methods:?}"),
        }),
    }
}
