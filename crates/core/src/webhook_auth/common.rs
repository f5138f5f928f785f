//! Building blocks shared by the schemes: strict header reads, secret lookup, constant-time
//! comparison, timestamps and replay windows.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::AuthError;
use crate::{SecretName, SecretStore, Timestamp, WebhookRequest};

/// The longest header value a scheme reads; longer values are refused before any work is done.
pub(super) const MAX_HEADER_LEN: usize = 8 * 1024;

/// A [`AuthError::Malformed`] about `what`.
pub(super) fn malformed(what: &str, reason: &str) -> AuthError {
    AuthError::Malformed {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The value of header `name` (case-insensitive), trimmed of surrounding spaces and tabs.
///
/// `Ok(None)` when absent. Fails closed when the header is repeated (which of two signatures or
/// timestamps counts is ambiguous), empty, or longer than [`MAX_HEADER_LEN`].
pub(super) fn header<'a>(
    req: &'a WebhookRequest,
    name: &str,
) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for (header_name, value) in &req.headers {
        if !header_name.eq_ignore_ascii_case(name) {
            continue;
        }
        if found.is_some() {
            return Err(malformed(name, "header is repeated"));
        }
        if value.len() > MAX_HEADER_LEN {
            return Err(malformed(name, "header value is longer than 8 KiB"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.is_empty() {
            return Err(malformed(name, "header value is empty"));
        }
        found = Some(value);
    }
    Ok(found)
}

/// Like [`header`], with absence an [`AuthError::MissingHeader`].
pub(super) fn required_header<'a>(
    req: &'a WebhookRequest,
    name: &str,
) -> Result<&'a str, AuthError> {
    header(req, name)?.ok_or_else(|| AuthError::MissingHeader(name.to_owned()))
}

/// The bytes of secret `name`; a missing or empty secret fails closed.
pub(super) fn secret<'a>(
    secrets: &'a dyn SecretStore,
    name: &SecretName,
) -> Result<&'a [u8], AuthError> {
    let value = secrets
        .secret(name)
        .ok_or_else(|| AuthError::MissingSecret(name.clone()))?
        .expose()
        .as_bytes();
    if value.is_empty() {
        return Err(invalid_secret(name, "the secret is empty"));
    }
    Ok(value)
}

/// A [`AuthError::InvalidSecret`] for `name`. `reason` must never quote the value.
pub(super) fn invalid_secret(name: &SecretName, reason: &str) -> AuthError {
    AuthError::InvalidSecret {
        name: name.clone(),
        reason: reason.to_owned(),
    }
}

/// Constant-time equality that hides the lengths too: compares SHA-256 digests of both sides
/// (and the lengths, in constant time). For tokens and passwords, whose length is secret.
pub(super) fn ct_eq_secret(given: &[u8], expected: &[u8]) -> Choice {
    let given_digest = Sha256::digest(given);
    let expected_digest = Sha256::digest(expected);
    let given_len = given.len() as u64;
    let expected_len = expected.len() as u64;
    given_digest.as_slice().ct_eq(expected_digest.as_slice()) & given_len.ct_eq(&expected_len)
}

/// Decodes padded standard base64 that must hold exactly `N` bytes (a MAC).
pub(super) fn decode_base64_exact<const N: usize>(
    what: &str,
    text: &str,
) -> Result<[u8; N], AuthError> {
    // N bytes encode to 4 * ceil(N / 3) characters; anything else is not our MAC.
    if text.len() != N.div_ceil(3) * 4 {
        return Err(malformed(what, "not a base64 MAC of the expected length"));
    }
    let mut out = [0u8; N];
    match STANDARD.decode_slice(text, &mut out) {
        Ok(len) if len == N => Ok(out),
        _ => Err(malformed(what, "not valid base64")),
    }
}

/// Parses a Unix timestamp in whole seconds: ASCII digits only (no sign, no fraction, no
/// spaces), at most 18 of them.
pub(super) fn parse_unix_seconds(what: &str, text: &str) -> Result<i64, AuthError> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(what, "expected Unix seconds, digits only"));
    }
    text.parse::<i64>()
        .map_err(|_| malformed(what, "expected Unix seconds, digits only"))
}

/// Fails with [`AuthError::Stale`] when `unix_seconds` is more than `tolerance` away from
/// `now`, in either direction. Exact to the millisecond: `tolerance` itself is still accepted.
pub(super) fn check_fresh(
    unix_seconds: i64,
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), AuthError> {
    let delta = i128::from(now.unix_millis()) - i128::from(unix_seconds) * 1000;
    let tolerance_millis = i128::try_from(tolerance.as_millis()).unwrap_or(i128::MAX);
    if delta.abs() > tolerance_millis {
        return Err(AuthError::Stale {
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use crate::{Method, Secrets};

    #[test]
    fn repeated_and_empty_headers_fail_closed() {
        let req = WebhookRequest::new(Method::Post, "https://h/")
            .with_header("X-Sig", "a")
            .with_header("x-sig", "b")
            .with_header("X-Empty", " \t ");
        assert!(matches!(
            header(&req, "x-sig"),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            header(&req, "x-empty"),
            Err(AuthError::Malformed { .. })
        ));
        assert_eq!(header(&req, "x-absent"), Ok(None));
        assert_eq!(
            required_header(&req, "X-Absent"),
            Err(AuthError::MissingHeader("X-Absent".into()))
        );
    }

    #[test]
    fn secrets_missing_or_empty_fail_closed() {
        let secrets = Secrets::default().with("empty", "");
        assert!(matches!(
            secret(&secrets, &SecretName::new("empty")),
            Err(AuthError::InvalidSecret { .. })
        ));
        assert_eq!(
            secret(&secrets, &SecretName::new("absent")),
            Err(AuthError::MissingSecret(SecretName::new("absent")))
        );
    }

    #[test]
    fn secret_comparison_checks_length_and_content() {
        assert!(bool::from(ct_eq_secret(b"token", b"token")));
        assert!(!bool::from(ct_eq_secret(b"token", b"tokem")));
        assert!(!bool::from(ct_eq_secret(b"token", b"token ")));
        assert!(!bool::from(ct_eq_secret(b"", b"token")));
    }

    #[test]
    fn timestamps_are_digits_only() {
        assert_eq!(parse_unix_seconds("t", "1634579353"), Ok(1_634_579_353));
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "0x10",
            "1e9",
            "hello",
            "9999999999999999999",
        ] {
            assert!(parse_unix_seconds("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn freshness_is_symmetric_and_inclusive() {
        let tol = Duration::from_secs(300);
        let now = Timestamp::from_unix_seconds(1_000_000);
        assert!(check_fresh(1_000_000 - 300, now, tol).is_ok());
        assert!(check_fresh(1_000_000 + 300, now, tol).is_ok());
        assert!(check_fresh(1_000_000 - 301, now, tol).is_err());
        assert!(check_fresh(1_000_000 + 301, now, tol).is_err());
        assert!(check_fresh(i64::MAX / 1000, now, tol).is_err());
        assert!(check_fresh(0, now, Duration::MAX).is_ok());
    }
}
