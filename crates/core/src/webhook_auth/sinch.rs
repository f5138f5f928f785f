//! [`WebhookAuth::Sinch`](super::WebhookAuth::Sinch): Sinch Conversation API callbacks,
//! `Base64(HMAC-SHA256(secret, body + "." + nonce + "." + timestamp))`, with a replay window.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::common::{self, malformed};
use super::{AuthError, Verified};
use crate::{SecretName, SecretStore, Timestamp, WebhookRequest};

const SIGNATURE: &str = "x-sinch-webhook-signature";
const NONCE: &str = "x-sinch-webhook-signature-nonce";
const TIMESTAMP: &str = "x-sinch-webhook-signature-timestamp";
const ALGORITHM: &str = "x-sinch-webhook-signature-algorithm";

pub(super) fn verify(
    secret: &SecretName,
    tolerance: Duration,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    let key = common::secret(secrets, secret)?;
    let signature = common::required_header(req, SIGNATURE)?;
    let nonce = common::required_header(req, NONCE)?;
    let timestamp = common::required_header(req, TIMESTAMP)?;
    if let Some(algorithm) = common::header(req, ALGORITHM)?
        && !algorithm.eq_ignore_ascii_case("HmacSHA256")
    {
        return Err(malformed(ALGORITHM, "only HmacSHA256 is supported"));
    }
    // The body comes first in the signed string and may contain dots, so a nonce with a dot
    // would let bytes move between body and nonce under one signature.
    if nonce.contains('.') {
        return Err(malformed(NONCE, "the nonce must not contain `.`"));
    }
    let unix_seconds = common::parse_unix_seconds(TIMESTAMP, timestamp)?;
    let expected = common::decode_base64_exact::<32>(SIGNATURE, signature)?;
    common::check_fresh(unix_seconds, now, tolerance)?;

    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| common::invalid_secret(secret, "unusable as an HMAC key"))?;
    mac.update(&req.body);
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.verify_slice(&expected)
        .map_err(|_| AuthError::Mismatch)?;
    Ok(Verified::Authentic)
}
