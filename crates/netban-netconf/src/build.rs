//! From a checked [`NetconfConfig`] of one device to what the driver runs with: the endpoint
//! and host key policy, the login (the password or key read from its file), session options.
//!
//! Secrets are read here, once, from files only; the file names appear in errors, their
//! contents never do. A secret file readable by other users is worth a warning.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use netban_core::config::Secret;

use crate::config::NetconfConfig;
use crate::hostkey::HostKeyPolicy;
use crate::session::SessionOptions;
use crate::transport::{Endpoint, Login};

/// The biggest secret file read (a 16384-bit RSA key is about 12 KiB).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Why a sink cannot be built; the message names the key and the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

pub fn endpoint(config: &NetconfConfig) -> Result<Endpoint, BuildError> {
    let host = config.host.clone().ok_or_else(|| {
        BuildError("host is required (a sink with devices = [...] is built per device)".into())
    })?;
    let host_key = match (&config.host_key, &config.known_hosts) {
        (Some(fp), _) => HostKeyPolicy::Pinned(fp.clone()),
        (None, Some(path)) => HostKeyPolicy::KnownHosts(path.clone()),
        (None, None) => {
            return Err(BuildError(
                "known_hosts or host_key is required: netban never trusts an unknown host key"
                    .into(),
            ));
        }
    };
    Ok(Endpoint {
        host,
        port: config.port,
        host_key,
    })
}

pub fn login(config: &NetconfConfig) -> Result<Login, BuildError> {
    let user = config.user.clone();
    match (&config.password_file, &config.key_file) {
        (Some(path), None) => {
            let text = read_secret("password_file", path)?;
            let password = text.lines().next().unwrap_or("").to_string();
            if password.is_empty() {
                return Err(BuildError(format!(
                    "password_file {}: the first line is empty",
                    path.display()
                )));
            }
            Ok(Login::Password {
                user,
                password: Secret::new(password),
            })
        }
        (None, Some(path)) => {
            let text = read_secret("key_file", path)?;
            let key = russh::keys::decode_secret_key(&text, None).map_err(|e| {
                let hint = if matches!(e, russh::keys::Error::KeyIsEncrypted) {
                    "the key is encrypted; netban needs an unencrypted key (ssh-keygen -p -N '' -f KEY), readable only by netban"
                } else {
                    "expected an OpenSSH private key (ssh-keygen -t ed25519 -N '' -f KEY)"
                };
                BuildError(format!("key_file {}: cannot load it: {e}; {hint}", path.display()))
            })?;
            Ok(Login::Key {
                user,
                key: Arc::new(key),
            })
        }
        _ => Err(BuildError(
            "set exactly one of password_file and key_file".into(),
        )),
    }
}

pub fn session_options(config: &NetconfConfig) -> SessionOptions {
    let secs = |v: f64, fallback: u64| {
        Duration::try_from_secs_f64(v).unwrap_or(Duration::from_secs(fallback))
    };
    SessionOptions {
        connect_timeout: secs(config.connect_timeout, 10),
        rpc_timeout: secs(config.rpc_timeout, 60),
        keepalive: (config.keepalive > 0.0).then(|| secs(config.keepalive, 30)),
        max_message: usize::try_from(config.max_reply_mb.saturating_mul(1024 * 1024))
            .unwrap_or(64 * 1024 * 1024),
        offer_base11: config.base11,
        ..SessionOptions::default()
    }
}

fn read_secret(key: &str, path: &Path) -> Result<String, BuildError> {
    let fail = |what: String| BuildError(format!("{key} {}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    if meta.len() > MAX_SECRET_FILE {
        return Err(fail(format!("larger than {MAX_SECRET_FILE} bytes")));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "netconf: {key} {} is readable by other users; chmod 600 it",
            path.display()
        );
    }
    let mut text = String::new();
    file.take(MAX_SECRET_FILE)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    Ok(text)
}
