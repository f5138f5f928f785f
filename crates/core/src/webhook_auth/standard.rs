//! [`WebhookAuth::StandardWebhooks`](super::WebhookAuth::StandardWebhooks): the Standard
//! Webhooks v1 scheme, `v1,Base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))` with a
//! `whsec_<base64>` key and a replay window in both directions.

use std::time::Duration;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use super::common::{self, malformed};
use super::{AuthError, Verified};
use crate::{SecretName, SecretStore, Timestamp, WebhookRequest};

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

/// Standard base64 with or without padding, ignoring non-zero trailing bits, as the reference
/// libraries decode secrets (`MfKQ…LaS` and `MfKQ…LaSwBr` are accepted unpadded).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

pub(super) fn verify(
    secret: &SecretName,
    tolerance: Duration,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    let key = signing_key(secret, secrets)?;
    let id = common::required_header(req, ID)?;
    let timestamp = common::required_header(req, TIMESTAMP)?;
    let signatures = common::required_header(req, SIGNATURE)?;
    // `id.timestamp.body` splits uniquely only if the id has no dot (the timestamp is digits).
    if id.contains('.') {
        return Err(malformed(ID, "the id must not contain `.`"));
    }
    let unix_seconds = common::parse_unix_seconds(TIMESTAMP, timestamp)?;
    common::check_fresh(unix_seconds, now, tolerance)?;

    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| common::invalid_secret(secret, "unusable as an HMAC key"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&req.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());

    // Every `v1,` entry is compared (rotation sends several); other versions are skipped.
    let mut any = Choice::from(0);
    for entry in signatures.split(' ') {
        if let Some(candidate) = entry.strip_prefix("v1,") {
            any |= candidate.as_bytes().ct_eq(expected.as_bytes());
        }
    }
    if bool::from(any) {
        Ok(Verified::Authentic)
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Signs a Standard Webhooks message: the `webhook-signature` header value, one `v1,<base64>`
/// entry per secret in `names` (in order, space-separated), each the HMAC-SHA256 of
/// `id.timestamp.body` under that `whsec_` secret. Several secrets let a receiver rotate keys
/// without downtime: it accepts the message while it trusts any one of them.
///
/// # Errors
///
/// [`AuthError::Malformed`] when `id` contains `.` or is empty (the signed content would not
/// split uniquely) or `names` is empty; [`AuthError::MissingSecret`] /
/// [`AuthError::InvalidSecret`] when a secret is absent, empty or not base64.
pub fn sign(
    names: &[SecretName],
    secrets: &dyn SecretStore,
    id: &str,
    timestamp: Timestamp,
    body: &[u8],
) -> Result<String, AuthError> {
    if id.is_empty() || id.contains('.') {
        return Err(malformed(ID, "the id must be non-empty and contain no `.`"));
    }
    if names.is_empty() {
        return Err(malformed(SIGNATURE, "no secret to sign with"));
    }
    let timestamp = timestamp.unix_seconds().to_string();
    let mut header = String::new();
    for name in names {
        let key = signing_key(name, secrets)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| common::invalid_secret(name, "unusable as an HMAC key"))?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        if !header.is_empty() {
            header.push(' ');
        }
        header.push_str("v1,");
        header.push_str(&STANDARD.encode(mac.finalize().into_bytes()));
    }
    Ok(header)
}

/// The HMAC key of a `whsec_<base64>` secret (the prefix is optional). Empty fails closed.
fn signing_key(name: &SecretName, secrets: &dyn SecretStore) -> Result<Vec<u8>, AuthError> {
    let value = common::secret(secrets, name)?;
    let encoded = value.strip_prefix(b"whsec_").unwrap_or(value);
    if encoded.is_empty() {
        return Err(common::invalid_secret(name, "the secret is empty"));
    }
    let key = LENIENT
        .decode(encoded)
        .map_err(|_| common::invalid_secret(name, "expected `whsec_` and base64"))?;
    if key.is_empty() {
        return Err(common::invalid_secret(name, "the secret is empty"));
    }
    Ok(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use crate::Secrets;

    fn key(secret: &str) -> Result<Vec<u8>, AuthError> {
        signing_key(&SecretName::new("s"), &Secrets::default().with("s", secret))
    }

    #[test]
    fn secrets_accept_prefix_and_unpadded_forms() {
        let padded = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(padded.len(), 24);
        assert_eq!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(), padded);
        assert_eq!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS").unwrap().len(), 23);
        assert_eq!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=").unwrap().len(), 23);
        assert_eq!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr").unwrap().len(), 25);
        assert_eq!(
            key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr==")
                .unwrap()
                .len(),
            25
        );
    }

    #[test]
    fn empty_or_garbage_secrets_fail_closed() {
        for bad in [
            "",
            "whsec_",
            "whsec_!!!!",
            "whsec_====",
            "not base64 at all",
        ] {
            assert!(
                matches!(key(bad), Err(AuthError::InvalidSecret { .. })),
                "{bad:?}"
            );
        }
    }
}
