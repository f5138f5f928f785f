//! [`WebhookAuth::HmacSha256Header`](super::WebhookAuth::HmacSha256Header): a hex HMAC-SHA256 of
//! the raw body in a header (Meta's `X-Hub-Signature-256: sha256=<hex>`), and Meta's GET
//! subscription handshake.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::common::{self, malformed};
use super::{AuthError, Verified};
use crate::{Method, SecretName, SecretStore, WebhookReply, WebhookRequest};

/// The longest `hub.challenge` echoed back.
const MAX_CHALLENGE_LEN: usize = 512;

/// The scheme's settings, borrowed from the [`WebhookAuth`](super::WebhookAuth) variant.
pub(super) struct Settings<'a> {
    pub(super) header: &'a str,
    pub(super) prefix: &'a str,
    pub(super) secret: &'a SecretName,
    pub(super) verify_token: Option<&'a SecretName>,
}

pub(super) fn verify(
    settings: &Settings<'_>,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
) -> Result<Verified, AuthError> {
    if req.method == Method::Get
        && let Some(token) = settings.verify_token
    {
        let query = req.query_pairs();
        if query.iter().any(|(name, _)| name.starts_with("hub.")) {
            return handshake(token, secrets, &query);
        }
    }

    let key = common::secret(secrets, settings.secret)?;
    let value = common::required_header(req, settings.header)?;
    let digits = strip_prefix_ignore_ascii_case(value, settings.prefix)
        .ok_or_else(|| malformed(settings.header, "the signature prefix is missing"))?;
    if digits.len() != 64 {
        return Err(malformed(settings.header, "expected 64 hex digits"));
    }
    let mut expected = [0u8; 32];
    hex::decode_to_slice(digits, &mut expected)
        .map_err(|_| malformed(settings.header, "expected 64 hex digits"))?;

    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| common::invalid_secret(settings.secret, "unusable as an HMAC key"))?;
    mac.update(&req.body);
    mac.verify_slice(&expected)
        .map_err(|_| AuthError::Mismatch)?;
    Ok(Verified::Authentic)
}

/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: echo the challenge when the
/// token matches.
fn handshake(
    token_name: &SecretName,
    secrets: &dyn SecretStore,
    query: &[(String, String)],
) -> Result<Verified, AuthError> {
    let token = common::secret(secrets, token_name)?;
    let mode = single_param(query, "hub.mode")?;
    let given_token = single_param(query, "hub.verify_token")?;
    let challenge = single_param(query, "hub.challenge")?;
    if mode != "subscribe" {
        return Err(malformed("hub.mode", "expected `subscribe`"));
    }
    if challenge.len() > MAX_CHALLENGE_LEN || !challenge.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(
            "hub.challenge",
            "expected at most 512 printable ASCII characters",
        ));
    }
    if !bool::from(common::ct_eq_secret(given_token.as_bytes(), token)) {
        return Err(AuthError::Mismatch);
    }
    Ok(Verified::Handshake(WebhookReply::with_body(
        "text/plain",
        challenge,
    )))
}

/// The one value of query parameter `name`; absent, empty or repeated fails closed.
fn single_param<'a>(query: &'a [(String, String)], name: &str) -> Result<&'a str, AuthError> {
    let mut values = query.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
    match (values.next(), values.next()) {
        (Some(value), None) if !value.is_empty() => Ok(value),
        (Some(_), None) => Err(malformed(name, "the parameter is empty")),
        (None, _) => Err(malformed(name, "the parameter is missing")),
        (Some(_), Some(_)) => Err(malformed(name, "the parameter is repeated")),
    }
}

fn strip_prefix_ignore_ascii_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        value.get(prefix.len()..)
    } else {
        None
    }
}
