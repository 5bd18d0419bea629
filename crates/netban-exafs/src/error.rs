//! Errors: [`ExafsError`] when a sink cannot be built, and [`ApiError`] when one ExaFS call
//! fails, with the mapping from ExaFS's status and message to a line that tells the operator
//! what to do, and to how soon trying again makes sense ([`Retry`]).
//!
//! ExaFS's messages are few and stable (flowapp/views/api_common.py); the ones that matter are
//! recognised by their text, because ExaFS uses the same status for different problems (403 is
//! an unknown key, a key bound to another machine, a read-only key, or a rule limit). Neither
//! the API key nor a token ever appears in these messages.

use std::path::PathBuf;

use netban_core::sink::{Retry, SinkError};

/// Why an ExaFS sink cannot be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum ExafsError {
    /// `api_key_file` cannot be read.
    #[error(
        "cannot read api_key_file {path}: {source}; check the path and that netban may read it"
    )]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `api_key_file` holds no key.
    #[error(
        "api_key_file {path} is empty; put the ExaFS API key (ExaFS > API keys) on its first line"
    )]
    KeyFileEmpty { path: PathBuf },
    /// Neither `api_key` nor `api_key_file` is set (config validation normally catches it).
    #[error("no API key: set api_key or api_key_file to a key from ExaFS > API keys")]
    NoKey,
    /// `ca_file` cannot be read.
    #[error("cannot read ca_file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `ca_file` holds no usable PEM certificate.
    #[error(
        "ca_file {path} holds no usable PEM certificate ({reason}); it must contain '-----BEGIN CERTIFICATE-----' blocks"
    )]
    CaPem { path: PathBuf, reason: String },
    /// `url` is not an http(s) URL.
    #[error(
        "url {url:?} is not usable: {reason}; write the ExaFS base address, e.g. https://exafs.example.net"
    )]
    Url { url: String, reason: String },
    /// The `comment` template does not parse (config validation normally catches it).
    #[error("comment: {0}")]
    Comment(String),
    /// The API key cannot be sent in an HTTP header (control characters, non-ASCII).
    #[error(
        "the API key contains characters that cannot be sent in an HTTP header; copy it again from ExaFS > API keys"
    )]
    KeyChars,
}

/// Why no HTTP answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Connection refused, reset, no route, name not resolved.
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Anything else on the wire (a reset in mid-answer, a malformed answer).
    Other,
}

/// What went wrong with one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// No HTTP answer.
    Transport { cause: Transport, detail: String },
    /// ExaFS, or something in front of it, answered with an error status. `message` is
    /// ExaFS's `message` field (or a summary when the answer is not ExaFS JSON), `validation`
    /// its `validation_errors` flattened, `location` the target of a redirect.
    Status {
        status: u16,
        message: String,
        validation: Option<String>,
        location: Option<String>,
    },
    /// A success status with a body that is not what ExaFS sends.
    Unexpected(String),
    /// The deadline came before the call could be made or finished.
    Deadline,
}

/// One failed ExaFS call: which call, against which API, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `POST /rules/rtbh`, `GET /auth`, ...
    pub call: String,
    /// `https://exafs.example.net/api/v3`
    pub api: String,
    pub kind: ApiErrorKind,
    /// How many times the call was sent.
    pub attempts: u32,
}

impl ApiError {
    pub fn new(call: impl Into<String>, api: impl Into<String>, kind: ApiErrorKind) -> ApiError {
        ApiError {
            call: call.into(),
            // Credentials in the URL never reach a message (issue 6).
            api: netban_core::config::redact_userinfo(&api.into()),
            kind,
            attempts: 1,
        }
    }

    /// How soon the same call is worth trying again.
    pub fn retry(&self) -> Retry {
        match &self.kind {
            ApiErrorKind::Transport {
                cause: Transport::Tls,
                ..
            } => Retry::Later,
            ApiErrorKind::Transport { .. } | ApiErrorKind::Deadline => Retry::Soon,
            ApiErrorKind::Status { status, .. }
                if *status == 408 || *status == 429 || *status >= 500 =>
            {
                Retry::Soon
            }
            // A garbled success answer is most likely a proxy or a passing fault: soon.
            ApiErrorKind::Unexpected(_) => Retry::Soon,
            ApiErrorKind::Status { .. } => Retry::Later,
        }
    }

    /// The message for the operator: what failed, on what, and what to do.
    pub fn describe(&self) -> String {
        let call = &self.call;
        let tries = if self.attempts > 1 {
            format!(" (after {} attempts)", self.attempts)
        } else {
            String::new()
        };
        match &self.kind {
            ApiErrorKind::Deadline => format!(
                "{call}: deadline reached before ExaFS answered{tries}; it stays pending and is retried"
            ),
            ApiErrorKind::Unexpected(what) => format!(
                "{call}: unexpected answer from {}: {what}; is url the ExaFS base address?",
                self.api
            ),
            ApiErrorKind::Transport { cause, detail } => {
                let base = self.api.trim_end_matches("/api/v3");
                match cause {
                    Transport::Connect if detail.contains("dns error") => {
                        format!(
                            "{call}: cannot connect to {base}{tries}: {detail}; check the host name in url"
                        )
                    }
                    Transport::Connect => format!(
                        "{call}: cannot connect to {base}{tries}: {detail}; is ExaFS running and reachable from this host?"
                    ),
                    Transport::Timeout => format!(
                        "{call}: no answer from {base}{tries}: {detail}; ExaFS is slow or unreachable"
                    ),
                    Transport::Tls => {
                        let hint = if detail.contains("InvalidContentType")
                            || detail.contains("corrupt message")
                            || detail.contains("record overflow")
                        {
                            "; the server does not speak TLS: should url start with http:// ?"
                        } else {
                            "; if ExaFS uses a private CA, set ca_file to its PEM certificate; check that url names the host in the certificate"
                        };
                        format!("{call}: TLS with {base} failed: {detail}{hint}")
                    }
                    Transport::Other => format!("{call}: talking to {base}{tries}: {detail}"),
                }
            }
            ApiErrorKind::Status {
                status,
                message,
                validation,
                location,
            } => {
                let text = explain(
                    call,
                    &self.api,
                    *status,
                    message,
                    validation.as_deref(),
                    location.as_deref(),
                );
                format!("{status} from {call}{tries}: {text}")
            }
        }
    }

    /// The [`SinkError`] for the engine, prefixed with the sink name.
    pub fn to_sink_error(&self, sink: &str) -> SinkError {
        SinkError {
            retry: self.retry(),
            message: format!("{sink}: {}", self.describe()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for ApiError {}

/// The operator's reading of an error status from ExaFS.
fn explain(
    call: &str,
    api: &str,
    status: u16,
    message: &str,
    validation: Option<&str>,
    location: Option<&str>,
) -> String {
    let auth = call.ends_with(" /auth");
    let lower = message.to_ascii_lowercase();
    match status {
        300..=399 => match location {
            Some(to) => format!("ExaFS redirects to {to}; set url to the address it redirects to"),
            None => "ExaFS answers with a redirect; set url to the address ExaFS is served at".to_string(),
        },
        400 if validation.is_some() => {
            let v = validation.unwrap_or_default();
            let hint = if v.contains("organization range") {
                "; the target lies outside the ranges of the key's organisation: add the range in ExaFS > Organizations, or keep such targets away from this sink (jails, guard)"
            } else if v.contains("ommunity") {
                "; the community is not available to this key: pick one listed in ExaFS > Communities for the key's role"
            } else {
                ""
            };
            format!("ExaFS refused the rule: {v}{hint}")
        }
        403 if lower.contains("read only") => {
            "API key is read-only; create a read-write key in ExaFS > API keys".to_string()
        }
        403 if lower.contains("not valid from machine") => {
            let seen = message.rsplit(' ').next().unwrap_or("");
            format!(
                "the key is bound to another machine: set its Machine to this host's address as ExaFS sees it ({seen}) in ExaFS > API keys, or use a key made for this host"
            )
        }
        403 if lower.starts_with("rule limit") => format!(
            "{message} Raise the organisation's RTBH limit in ExaFS > Organizations, or ban for shorter times; the ban stays pending until then"
        ),
        403 if lower.starts_with("system limit") => format!(
            "{message} Raise RTBH_MAX_RULES in the ExaFS config; the ban stays pending until then"
        ),
        403 if auth && lower.contains("token is invalid") => {
            "ExaFS does not know this API key; copy the key from ExaFS > API keys into api_key or api_key_file".to_string()
        }
        401 if auth && lower.contains("expired") => {
            "the API key has expired; create a new key in ExaFS > API keys (or extend its expiry) and update api_key or api_key_file".to_string()
        }
        403 if lower.contains("token is invalid") => {
            "ExaFS rejected a token it had just issued (auth token is invalid); is a second ExaFS with another JWT_SECRET behind this url?".to_string()
        }
        401 if lower.contains("token expired") => {
            "ExaFS rejected a token it had just issued as expired: ExaFS reads its local time as UTC, so its clock or time zone is off; run ExaFS with TZ=UTC and check NTP on both hosts".to_string()
        }
        401 if lower.contains("token is missing") => {
            "ExaFS did not receive the x-access-token header; a proxy in front of ExaFS drops it".to_string()
        }
        401 if lower.contains("not allowed to delete") => {
            "not allowed to delete this rule: it belongs to another ExaFS user; delete it in ExaFS or give netban that user's key".to_string()
        }
        401 if lower.contains("not allowed") => {
            format!("{message}; the rule belongs to another ExaFS user")
        }
        404 | 405 => format!("no ExaFS API v3 at {api} ({message}); set url to the ExaFS base address, without /api/v3"),
        415 => format!("ExaFS refused the request body ({message}); this is a bug in netban, please report it"),
        429 => format!("ExaFS (or a proxy in front of it) limits the request rate ({message}); retrying with backoff"),
        500..=599 => format!("ExaFS failed ({message}); see the ExaFS log for why"),
        _ => message.to_string(),
    }
}

/// A message from the remote side, made safe for a log line: printable, one line, bounded.
pub fn sanitize(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() > 300 {
        let mut s: String = trimmed.chars().take(300).collect();
        s.push('…');
        s
    } else {
        trimmed.to_string()
    }
}

/// ExaFS's `validation_errors` (`{field: [message, ...]}`) as one line; fields with the same
/// message are named together (`ipv4, ipv6: ... must be in organization range ...`).
pub fn flatten_validation(errors: &serde_json::Value) -> Option<String> {
    let map = errors.as_object()?;
    let mut groups: Vec<(Vec<&str>, String)> = Vec::new();
    for (field, messages) in map {
        let list: Vec<String> = match messages {
            serde_json::Value::Array(items) => items.iter().map(value_text).collect(),
            other => vec![value_text(other)],
        };
        for m in list {
            match groups.iter_mut().find(|(_, text)| *text == m) {
                Some((fields, _)) => fields.push(field),
                None => groups.push((vec![field], m)),
            }
        }
    }
    if groups.is_empty() {
        return None;
    }
    let text = groups
        .iter()
        .map(|(fields, m)| format!("{}: {m}", fields.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Some(sanitize(&text))
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "https://exafs.example.net/api/v3";

    fn status(call: &str, status: u16, message: &str) -> ApiError {
        ApiError::new(
            call,
            API,
            ApiErrorKind::Status {
                status,
                message: message.into(),
                validation: None,
                location: None,
            },
        )
    }

    #[test]
    fn read_only_key() {
        let e = status(
            "POST /rules/rtbh",
            403,
            "read only token can't perform this action",
        );
        assert_eq!(
            e.to_sink_error("exafs").message,
            "exafs: 403 from POST /rules/rtbh: API key is read-only; create a read-write key in ExaFS > API keys"
        );
        assert_eq!(e.retry(), Retry::Later);
    }

    #[test]
    fn key_bound_to_another_machine_names_the_address_exafs_sees() {
        let e = status(
            "GET /auth",
            403,
            "auth token is not valid from machine 203.0.113.7",
        );
        let m = e.describe();
        assert!(
            m.contains("set its Machine to this host's address as ExaFS sees it (203.0.113.7)"),
            "{m}"
        );
        assert_eq!(e.retry(), Retry::Later);
    }

    #[test]
    fn unknown_and_expired_keys() {
        let m = status("GET /auth", 403, "auth token is invalid").describe();
        assert!(m.contains("does not know this API key"), "{m}");
        let m = status("GET /auth", 401, "auth token is expired").describe();
        assert!(m.contains("API key has expired"), "{m}");
        // The same message on another route is about the token, not the key.
        let m = status("GET /rules", 403, "auth token is invalid").describe();
        assert!(m.contains("rejected a token"), "{m}");
        let m = status("GET /rules", 401, "auth token expired").describe();
        assert!(m.contains("TZ=UTC"), "{m}");
    }

    #[test]
    fn limits() {
        let e = status(
            "POST /rules/rtbh",
            403,
            "Rule limit 2 reached for rtbh, currently you have 2 active rules.",
        );
        let m = e.describe();
        assert!(
            m.starts_with("403 from POST /rules/rtbh: Rule limit 2 reached"),
            "{m}"
        );
        assert!(m.contains("ExaFS > Organizations"), "{m}");
        assert_eq!(e.retry(), Retry::Later);
        let m = status(
            "POST /rules/rtbh",
            403,
            "System limit 5 reached for rtbh. Currently there are 5 active rules.",
        )
        .describe();
        assert!(m.contains("RTBH_MAX_RULES"), "{m}");
    }

    #[test]
    fn not_the_owner() {
        let e = status(
            "DELETE /rules/rtbh/7",
            401,
            "not allowed to delete this rule",
        );
        let m = e.describe();
        assert!(m.contains("belongs to another ExaFS user"), "{m}");
        assert_eq!(e.retry(), Retry::Later);
    }

    #[test]
    fn validation_text_is_kept_and_explained() {
        let v = serde_json::json!({
            "ipv4": ["IPv4 or IPv6 address must be in organization range : ['198.51.100.0/24']."],
            "ipv6": ["IPv4 or IPv6 address must be in organization range : ['198.51.100.0/24']."],
        });
        let flat = flatten_validation(&v).unwrap();
        assert_eq!(
            flat,
            "ipv4, ipv6: IPv4 or IPv6 address must be in organization range : ['198.51.100.0/24']."
        );
        let e = ApiError::new(
            "POST /rules/rtbh",
            API,
            ApiErrorKind::Status {
                status: 400,
                message: "error - invalid request data".into(),
                validation: Some(flat),
                location: None,
            },
        );
        let m = e.describe();
        assert!(m.starts_with("400 from POST /rules/rtbh: ExaFS refused the rule: ipv4, ipv6: IPv4 or IPv6 address must be in organization range"), "{m}");
        assert!(m.contains("ExaFS > Organizations"), "{m}");
        assert_eq!(e.retry(), Retry::Later);
        let flat =
            flatten_validation(&serde_json::json!({"community": ["Not a valid choice."]})).unwrap();
        assert_eq!(flat, "community: Not a valid choice.");
    }

    #[test]
    fn transient_failures_retry_soon() {
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(
                status("POST /rules/rtbh", s, "x").retry(),
                Retry::Soon,
                "{s}"
            );
        }
        let e = ApiError {
            attempts: 3,
            ..ApiError::new(
                "POST /rules/rtbh",
                API,
                ApiErrorKind::Transport {
                    cause: Transport::Connect,
                    detail: "connection refused".into(),
                },
            )
        };
        assert_eq!(e.retry(), Retry::Soon);
        assert_eq!(
            e.describe(),
            "POST /rules/rtbh: cannot connect to https://exafs.example.net (after 3 attempts): connection refused; is ExaFS running and reachable from this host?"
        );
        assert_eq!(
            ApiError::new("GET /auth", API, ApiErrorKind::Deadline).retry(),
            Retry::Soon
        );
    }

    #[test]
    fn tls_failures_say_what_to_do() {
        let e = ApiError::new(
            "GET /auth",
            API,
            ApiErrorKind::Transport {
                cause: Transport::Tls,
                detail: "invalid peer certificate: UnknownIssuer".into(),
            },
        );
        assert!(e.describe().contains("set ca_file"), "{}", e.describe());
        assert_eq!(e.retry(), Retry::Later);
        let e = ApiError::new(
            "GET /auth",
            API,
            ApiErrorKind::Transport {
                cause: Transport::Tls,
                detail: "received corrupt message of type InvalidContentType".into(),
            },
        );
        assert!(e.describe().contains("http://"), "{}", e.describe());
    }

    #[test]
    fn wrong_url() {
        let m = status("GET /auth", 404, "an HTML page").describe();
        assert!(m.contains("without /api/v3"), "{m}");
        let e = ApiError::new(
            "GET /auth",
            API,
            ApiErrorKind::Status {
                status: 301,
                message: String::new(),
                validation: None,
                location: Some("https://exafs.example.net/".into()),
            },
        );
        assert!(
            e.describe()
                .contains("redirects to https://exafs.example.net/"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn remote_text_is_one_bounded_line() {
        assert_eq!(sanitize("a\nb\r\tc"), "a b  c");
        assert_eq!(sanitize(&"x".repeat(1000)).chars().count(), 301);
    }
}
