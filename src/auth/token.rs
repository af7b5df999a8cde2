//! Bearer tokens of API users: making them, hashing them for the store, and
//! reading them out of an `Authorization` header.
//!
//! A token is `hl_` followed by 64 lower-case hex digits (32 random bytes).
//! The prefix lets a leaked token be recognised by secret scanners and by
//! people. Only [`hash_token`]'s output is stored (`store::users`); the token
//! itself is shown once, when the user is added. This room does no I/O: the
//! API parses the header here, then asks the store who the hash belongs to.

use sha2::{Digest, Sha256};
use std::fmt::Write;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "hl_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Length of a token: the prefix and two hex digits per byte.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 2 * TOKEN_BYTES;

/// Why a request's credentials were refused. The messages never repeat the
/// token: a mistyped header may still hold a real secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no Authorization header; send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not readable ASCII text")]
    Unreadable,
    #[error("the Authorization scheme is {0}; send `Authorization: Bearer <token>`")]
    WrongScheme(String),
    #[error("the Authorization header has no token after `Bearer`")]
    Empty,
    #[error(
        "the bearer token is not a hotline token (`hl_` and 64 lower-case hex digits, as `hotline users add` prints it)"
    )]
    Malformed,
    /// Well formed, but no enabled user has it (the API says this after
    /// the store lookup).
    #[error("unknown or disabled token")]
    Unknown,
}

impl TokenError {
    /// The `WWW-Authenticate` value for the 401 answer (RFC 6750 §3): no
    /// error code when no bearer credentials were sent at all.
    pub fn challenge(&self) -> &'static str {
        match self {
            TokenError::Missing | TokenError::WrongScheme(_) => "Bearer realm=\"hotline\"",
            TokenError::Unreadable | TokenError::Empty => {
                "Bearer realm=\"hotline\", error=\"invalid_request\""
            }
            TokenError::Malformed | TokenError::Unknown => {
                "Bearer realm=\"hotline\", error=\"invalid_token\""
            }
        }
    }
}

/// A new random token, `hl_` and 64 lower-case hex digits.
pub fn generate_token() -> String {
    // rand's thread RNG is a CSPRNG seeded from the OS (ChaCha12).
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(TOKEN_PREFIX);
    push_hex(&mut token, &bytes);
    token
}

/// The value kept in the store for a token: SHA-256, lower-case hex.
///
/// No salt and no slow hash: a token is 256 random bits, so there is no
/// dictionary to precompute and nothing to gain from stretching, and a plain
/// digest lets the store find the user with one indexed lookup. For the same
/// reason comparing digests in the database leaks nothing useful about a token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    push_hex(&mut hex, &digest);
    hex
}

/// Whether `text` looks like [`hash_token`]'s output.
pub fn is_token_hash(text: &str) -> bool {
    text.len() == 64 && is_lower_hex(text)
}

/// Whether `text` has a token's shape (not whether any user has it).
pub fn is_token(text: &str) -> bool {
    text.len() == TOKEN_LEN && text.strip_prefix(TOKEN_PREFIX).is_some_and(is_lower_hex)
}

/// The token of an `Authorization` header value, `Bearer <token>`. The scheme
/// is case-insensitive (RFC 7235); the token must have the shape
/// [`generate_token`] gives, so garbage never reaches the store.
pub fn parse_bearer(value: &str) -> Result<&str, TokenError> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(TokenError::Missing);
    }
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::WrongScheme(describe_scheme(scheme)));
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if !is_token(token) {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

/// [`parse_bearer`] on a raw header as the HTTP layer holds it
/// (`headers.get(AUTHORIZATION).map(|v| v.as_bytes())`); `None` is a
/// missing header.
pub fn parse_authorization(header: Option<&[u8]>) -> Result<&str, TokenError> {
    let bytes = header.ok_or(TokenError::Missing)?;
    let text = std::str::from_utf8(bytes).map_err(|_| TokenError::Unreadable)?;
    if !text.is_ascii() {
        return Err(TokenError::Unreadable);
    }
    parse_bearer(text)
}

/// The scheme as the error shows it: echoed only when short and plain, so
/// an error never reflects a long or odd header back.
fn describe_scheme(scheme: &str) -> String {
    if scheme.len() <= 20
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        format!("{scheme:?}")
    } else {
        "not Bearer".to_owned()
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_their_shape_and_differ() {
        let a = generate_token();
        let b = generate_token();
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(a.starts_with("hl_"), "{a}");
        assert!(is_token(&a) && is_token(&b));
        assert_ne!(a, b);
        assert_eq!(parse_bearer(&format!("Bearer {a}")), Ok(a.as_str()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = generate_token();
        assert_eq!(hash_token(&token), hash_token(&token));
        assert!(is_token_hash(&hash_token(&token)));
        assert_ne!(hash_token(&token), hash_token(&generate_token()));
        assert!(!is_token_hash(&token));
        assert!(!is_token_hash(&hash_token("abc").to_uppercase()));
    }

    #[test]
    fn bearer_headers_are_read_with_clear_errors() {
        let token = format!("hl_{}", "0123456789abcdef".repeat(4));
        for ok in [
            format!("Bearer {token}"),
            format!("bearer {token}"),
            format!("BEARER  {token}"),
            format!("  Bearer\t{token} "),
        ] {
            assert_eq!(parse_bearer(&ok), Ok(token.as_str()), "{ok:?}");
        }
        let cases = [
            ("", TokenError::Missing),
            ("   ", TokenError::Missing),
            ("Bearer", TokenError::Empty),
            ("Bearer   ", TokenError::Empty),
            (
                "Basic dXNlcjpwYXNz",
                TokenError::WrongScheme("\"Basic\"".into()),
            ),
            (&token, TokenError::WrongScheme("not Bearer".into())),
            ("Bearer hl_123", TokenError::Malformed),
            ("Bearer abc def", TokenError::Malformed),
        ];
        for (header, want) in cases {
            assert_eq!(parse_bearer(header), Err(want), "{header:?}");
        }
        let upper = format!("Bearer {}", token.to_uppercase());
        assert_eq!(parse_bearer(&upper), Err(TokenError::Malformed));
        let extra = format!("Bearer {token} {token}");
        assert_eq!(parse_bearer(&extra), Err(TokenError::Malformed));
        // The error never repeats the token.
        let err = parse_bearer(&format!("Token {token}")).unwrap_err();
        assert!(!err.to_string().contains(&token[3..]), "{err}");
        assert!(err.to_string().contains("\"Token\""), "{err}");
    }

    #[test]
    fn raw_headers() {
        let token = generate_token();
        let header = format!("Bearer {token}");
        assert_eq!(
            parse_authorization(Some(header.as_bytes())),
            Ok(token.as_str())
        );
        assert_eq!(parse_authorization(None), Err(TokenError::Missing));
        assert_eq!(
            parse_authorization(Some(b"Bearer \xff\xfe")),
            Err(TokenError::Unreadable)
        );
        assert_eq!(
            parse_authorization(Some("Bearer 令牌".as_bytes())),
            Err(TokenError::Unreadable)
        );
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(TokenError::Missing.challenge(), "Bearer realm=\"hotline\"");
        assert!(
            TokenError::Unknown
                .challenge()
                .ends_with("error=\"invalid_token\"")
        );
        assert!(
            TokenError::Empty
                .challenge()
                .ends_with("error=\"invalid_request\"")
        );
    }
}
