//! The ExaFS access token: its expiry, read from the token itself, and the cache file that lets
//! every netban process on the host reuse one token.
//!
//! ExaFS tokens are JWTs (HS256) signed with a secret only ExaFS knows, so the signature is not
//! checked here (ExaFS checks it). We read the `exp` claim because the lifetime cannot be
//! assumed: ExaFS sets `exp` from its *naive local* time + 30 minutes, read as UTC, so a token
//! lives 30 minutes on a UTC server, 90 in Central Europe in winter, and is born expired west of
//! UTC (reference/exafs.md).
//!
//! The cache file is `state_dir/exafs-<sink>.token`, mode 0600, two lines:
//!
//! ```text
//! netban-exafs-token 1 <fingerprint>
//! <token>
//! ```
//!
//! The fingerprint is a SHA-256 of the ExaFS URL and the API key (truncated), so a token issued
//! for an old key (say the read-only one the operator just replaced) is never reused for the new
//! one. The file is written to a temporary file in the same directory and renamed over the old
//! one, so a concurrent netban process reads the old token or the new one, never half a file.
//! Anything unreadable or foreign in the file is ignored: a token can always be fetched again.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use netban_core::private_file;

/// A cached token counts as usable until this many seconds before its `exp`: enough for a
/// request that starts just before to still be accepted.
pub const MARGIN: i64 = 60;

const HEADER: &str = "netban-exafs-token 1";
/// A real token is a few hundred bytes; anything much larger is not ours.
const MAX_FILE: u64 = 64 * 1024;

/// An ExaFS access token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    jwt: String,
    expires: Option<i64>,
}

impl Token {
    pub fn new(jwt: String) -> Token {
        let expires = jwt_expiry(&jwt);
        Token { jwt, expires }
    }

    /// The header value; for the `x-access-token` header only.
    pub fn expose(&self) -> &str {
        &self.jwt
    }

    /// The `exp` claim (unix seconds), when the token has one.
    pub fn expires(&self) -> Option<i64> {
        self.expires
    }

    /// True while the token may be reused: it has an `exp` more than [`MARGIN`] ahead.
    pub fn is_fresh(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e.saturating_sub(MARGIN) > now)
    }

    /// The claims ExaFS puts in `user` (who the key belongs to), when readable.
    pub fn user(&self) -> Option<TokenUser> {
        let claims = jwt_claims(&self.jwt)?;
        let user = claims.get("user")?;
        Some(TokenUser {
            uuid: user
                .get("uuid")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            org: user
                .get("org")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            readonly: user
                .get("readonly")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("jwt", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Who a token speaks for, from its `user` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub uuid: String,
    pub org: String,
    pub readonly: bool,
}

/// The payload of a JWT (`header.payload.signature`, base64url), as JSON; no signature check.
fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    let mut parts = jwt.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // base64url without padding is what JWTs use; tolerate padding anyway.
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `exp` claim of a JWT, in unix seconds.
pub fn jwt_expiry(jwt: &str) -> Option<i64> {
    let exp = jwt_claims(jwt)?.get("exp")?.clone();
    // RFC 7519 NumericDate: a JSON number, possibly with a fraction.
    exp.as_i64().or_else(|| {
        exp.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}

/// The token cache file of one sink.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
    fingerprint: String,
}

impl TokenCache {
    /// The cache for the sink `name` in `state_dir`, for tokens obtained from `url` with `key`.
    pub fn new(state_dir: &Path, name: &str, url: &str, key: &str) -> TokenCache {
        TokenCache {
            path: state_dir.join(format!("exafs-{name}.token")),
            fingerprint: fingerprint(url, key),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached token, if the file exists and holds a token for this URL and key.
    pub fn load(&self) -> Option<Token> {
        let text = match private_file::read(&self.path, MAX_FILE) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(
                    "exafs: token cache {} {e}; fetching a new token (remove the file to silence this)",
                    self.path.display()
                );
                return None;
            }
        };
        let mut lines = text.lines();
        let header = lines.next()?;
        if header.strip_prefix(HEADER)?.trim() != self.fingerprint {
            return None;
        }
        let jwt = lines.next()?.trim();
        if jwt.is_empty() || !jwt.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        Some(Token::new(jwt.to_string()))
    }

    /// Replaces the cached token, atomically (temporary file + rename), with mode 0600.
    pub fn store(&self, token: &Token) -> io::Result<()> {
        let text = format!("{HEADER} {}\n{}\n", self.fingerprint, token.expose());
        private_file::write(&self.path, text.as_bytes())
    }
}

/// Names the URL and key without revealing the key: the first 16 bytes of a SHA-256, in hex.
fn fingerprint(url: &str, key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{url}\n{key}").as_bytes());
    digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A JWT with the given payload and a signature nobody can check: enough for `exp`.
    pub(crate) fn jwt(payload: &str) -> String {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s.as_bytes());
        format!(
            "{}.{}.{}",
            enc(r#"{"alg":"HS256","typ":"JWT"}"#),
            enc(payload),
            enc("not-a-signature")
        )
    }

    #[test]
    fn reads_exp_from_the_payload() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"user":{"id":1},"exp":1795311397}"#)),
            Some(1_795_311_397)
        );
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1795311397.75}"#)),
            Some(1_795_311_397)
        );
        // Padding is not part of JWTs but is tolerated.
        let padded = format!(
            "{}.{}==.x",
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode(r#"{"exp":5}"#)
        );
        assert_eq!(jwt_expiry(&padded), Some(5));
    }

    #[test]
    fn tokens_without_a_readable_exp_have_no_expiry() {
        assert_eq!(jwt_expiry(&jwt(r#"{"user":{"id":1}}"#)), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(jwt_expiry("garbage"), None);
        assert_eq!(jwt_expiry("a.b"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        assert_eq!(jwt_expiry("a.b.c.d"), None);
        assert!(!Token::new("garbage".into()).is_fresh(0));
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let t = Token::new(jwt(r#"{"exp":1000}"#));
        assert!(t.is_fresh(1000 - MARGIN - 1));
        assert!(!t.is_fresh(1000 - MARGIN));
        assert!(!t.is_fresh(2000));
    }

    #[test]
    fn user_claims() {
        let t = Token::new(jwt(
            r#"{"user":{"uuid":"a@example.com","org":"Org","readonly":true},"exp":5}"#,
        ));
        assert_eq!(
            t.user(),
            Some(TokenUser {
                uuid: "a@example.com".into(),
                org: "Org".into(),
                readonly: true
            })
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let t = Token::new(jwt(r#"{"exp":5}"#));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(t.expose()), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn cache_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "exafs", "https://exafs.example.net", "key-1");
        assert_eq!(cache.load(), None);
        let token = Token::new(jwt(r#"{"exp":1795311397}"#));
        cache.store(&token).unwrap();
        let mode = std::fs::metadata(cache.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(cache.path(), dir.path().join("exafs-exafs.token"));
        // Another process (a new cache value) reads the same token back.
        let again = TokenCache::new(dir.path(), "exafs", "https://exafs.example.net", "key-1");
        assert_eq!(again.load(), Some(token.clone()));
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // Replacing keeps the mode.
        let newer = Token::new(jwt(r#"{"exp":1795312000}"#));
        cache.store(&newer).unwrap();
        assert_eq!(again.load(), Some(newer));
        assert_eq!(
            std::fs::metadata(cache.path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    #[test]
    fn cache_file_never_shows_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "e", "https://x", "sekrit-api-key");
        cache.store(&Token::new(jwt(r#"{"exp":5}"#))).unwrap();
        let text = std::fs::read_to_string(cache.path()).unwrap();
        assert!(!text.contains("sekrit-api-key"), "{text}");
    }

    #[test]
    fn a_token_for_another_key_or_url_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let token = Token::new(jwt(r#"{"exp":1795311397}"#));
        TokenCache::new(dir.path(), "exafs", "https://a", "old-key")
            .store(&token)
            .unwrap();
        assert_eq!(
            TokenCache::new(dir.path(), "exafs", "https://a", "new-key").load(),
            None
        );
        assert_eq!(
            TokenCache::new(dir.path(), "exafs", "https://b", "old-key").load(),
            None
        );
        assert_eq!(
            TokenCache::new(dir.path(), "exafs", "https://a", "old-key").load(),
            Some(token)
        );
    }

    #[test]
    fn garbage_in_the_cache_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "exafs", "https://a", "k");
        for text in ["", "garbage", "netban-exafs-token 1 0000\nabc\n", "\n\n"] {
            std::fs::write(cache.path(), text).unwrap();
            assert_eq!(cache.load(), None, "{text:?}");
        }
    }
}
