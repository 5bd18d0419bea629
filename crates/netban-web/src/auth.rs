//! The bearer token: compared in constant time, accepted with the scheme in any case
//! (`Bearer`, `bearer`), never empty (an empty token used to turn authentication off).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use netban_core::config::Secret;

/// A non-empty token.
#[derive(Clone)]
pub struct Token(Secret);

impl Token {
    /// `None` for an empty (or all-blank) token: an empty token is refused at load time.
    pub fn new(secret: Secret) -> Option<Token> {
        (!secret.expose().trim().is_empty()).then_some(Token(secret))
    }

    fn matches(&self, got: &str) -> bool {
        let want = self.0.expose().as_bytes();
        let got = got.as_bytes();
        got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token of an `Authorization` header value: `Bearer TOKEN`, scheme in any case.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

pub(crate) async fn require(
    State(token): State<Arc<Option<Token>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(want) = token.as_ref() else {
        return next.run(req).await;
    };
    let got = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .unwrap_or("");
    if want.matches(got) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "token required\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_in_any_case_and_no_empty_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert!(Token::new(Secret::new("")).is_none());
        assert!(Token::new(Secret::new("  ")).is_none());
        let t = Token::new(Secret::new("s3cret")).unwrap();
        assert!(t.matches("s3cret") && !t.matches("s3cre") && !t.matches(""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
