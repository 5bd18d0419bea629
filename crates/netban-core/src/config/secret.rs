//! Secrets in the configuration: never shown by `Debug` or `Display`, and URLs with
//! credentials in them (`https://user:pass@host`) redacted wherever text leaves netban.

use std::fmt;

use serde::Deserialize;

/// A secret string (API key, token, password): never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// True when `url` carries credentials (`scheme://user[:password]@host`).
pub fn url_has_userinfo(url: &str) -> bool {
    redact_userinfo(url) != url
}

/// Replaces the credentials of every URL in `text` (`scheme://user:pass@host` becomes
/// `scheme://<redacted>@host`). Applied to log lines, errors, `status`, `check` and
/// everything the web listener answers, so a URL pasted with its password never leaks.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or white space.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("<redacted>");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A Redis URL file is one short line: anything bigger is refused.
const MAX_REDIS_URL_FILE: u64 = 4096;

/// Why `url` is not a Redis URL, if it is not one. The message never echoes the URL: it may
/// hold a password.
pub fn redis_url_problem(url: &str) -> Option<&'static str> {
    (!(url.starts_with("redis://") || url.starts_with("rediss://"))).then_some(
        "is not a redis:// or rediss:// URL (e.g. rediss://netban:PASSWORD@redis.example.net:6379/0)",
    )
}

/// What to do about a Redis client error whose text is `detail`, when it is a TLS problem
/// the operator can fix (shared by the cluster's bus and the statistics' Redis).
pub fn redis_tls_hint(detail: &str) -> Option<&'static str> {
    if detail.contains("UnknownIssuer") || detail.contains("BadSignature") {
        Some(
            "the Redis server's certificate is signed by a CA this host does not trust: add the CA to the system store (update-ca-certificates) or see docs/cluster.md, TLS to Redis",
        )
    } else if detail.contains("NotValidForName") {
        Some(
            "the Redis server's certificate does not name the host of the URL: use the name (or address) the certificate was made for",
        )
    } else if detail.contains("invalid peer certificate") {
        Some("the Redis server's certificate was refused: see docs/cluster.md, TLS to Redis")
    } else {
        None
    }
}

/// The Redis URL on the first non-empty line of `path` (`redis_file` of `[cluster]` and
/// `[stats]`); the error says what is wrong with the file.
pub fn read_redis_url_file(path: &std::path::Path) -> Result<Secret, String> {
    use std::io::Read as _;
    let fail = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(fail)?
        .take(MAX_REDIS_URL_FILE)
        .read_to_string(&mut text)
        .map_err(fail)?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    line.map(Secret::new).ok_or_else(|| {
        format!(
            "{} is empty; write the Redis URL on its first line",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_userinfo("cannot reach https://user:pa:ss@exafs.example.net/api/v3: refused"),
            "cannot reach https://<redacted>@exafs.example.net/api/v3: refused"
        );
        assert_eq!(
            redact_userinfo("rediss://netban:secret@redis:6379/0 and http://plain/x"),
            "rediss://<redacted>@redis:6379/0 and http://plain/x"
        );
        assert_eq!(redact_userinfo("no url here"), "no url here");
        assert!(url_has_userinfo("http://a@b"));
        assert!(!url_has_userinfo("http://b/a@c"));
        assert_eq!(format!("{:?}", Secret::new("k")), "<redacted>");
    }
}
