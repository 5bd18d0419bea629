//! JSON Web Tokens for the ExaFS token tests: a forged one, and the `exp` of a real one.
//!
//! netban caches ExaFS' token (a JWT) in `state_dir/exafs-<sink>.token` and trusts its `exp`
//! claim to know when to fetch a new one. The tests put a token there that is well-formed and
//! unexpired by its own claim but was not signed by ExaFS ([`forged`]): ExaFS refuses it
//! (403 "auth token is invalid") and netban must fetch a fresh token once and carry on, and
//! must never print it. [`exp`] reads the claim of a token ExaFS issued (its lifetime depends
//! on the server's time zone, see `exafs.rs`).

use anyhow::{Context, Result};
use base64::Engine as _;

/// The signature part of every [`forged`] token, encoded: a test can check it never shows.
pub const FORGED_SIGNATURE: &[u8] = b"not-signed-by-exafs";

/// base64url without padding (the JWT encoding).
pub fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A well-formed HS256 JWT for ExaFS' admin user that ExaFS did not sign, with this `exp`.
pub fn forged(exp: i64) -> String {
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(
            format!(r#"{{"user":{{"id":1,"uuid":"admin@example.com"}},"exp":{exp}}}"#).as_bytes()
        ),
        forged_signature()
    )
}

/// The encoded signature of a [`forged`] token.
pub fn forged_signature() -> String {
    b64url(FORGED_SIGNATURE)
}

/// The `exp` claim of a JWT (epoch seconds).
pub fn exp(token: &str) -> Result<i64> {
    let payload = token
        .split('.')
        .nth(1)
        .with_context(|| format!("{token:?} is not a JWT (no payload part)"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("the JWT payload is not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).context("the JWT payload is not JSON")?;
    claims["exp"]
        .as_i64()
        .with_context(|| format!("the JWT has no numeric exp claim: {claims}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_encoder_is_right() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foob"), "Zm9vYg");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn a_forged_token_carries_its_exp_and_the_known_signature() {
        let t = forged(1_900_000_000);
        assert_eq!(t.split('.').count(), 3, "{t}");
        assert_eq!(exp(&t).unwrap(), 1_900_000_000);
        assert!(t.ends_with(&forged_signature()), "{t}");
        assert!(exp("garbage").is_err());
    }
}
