//! The webhook-authentication catalogue, evaluated by the host before a connector sees a body.
//!
//! A connector declares a [`WebhookAuth`] scheme (data, naming secrets); [`verify`] checks a
//! raw request against it, on the raw bytes, comparing in constant time, and fails closed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{SecretName, SecretStore, Timestamp, WebhookReply, WebhookRequest};

/// A webhook authentication scheme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookAuth {
    /// No authentication. Must be chosen explicitly; never a default.
    None,
    /// An HMAC-SHA256 of the raw body in a header, hex-encoded after a prefix (Meta:
    /// `X-Hub-Signature-256: sha256=<hex>`), with Meta's GET verify-token handshake when
    /// `verify_token` is set.
    HmacSha256Header {
        /// The header name.
        header: String,
        /// The prefix before the hex digest, e.g. `sha256=`.
        #[serde(default)]
        prefix: String,
        /// The signing key.
        secret: SecretName,
        /// The verify token of the GET subscription handshake.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verify_token: Option<SecretName>,
    },
    /// Twilio's `X-Twilio-Signature`: HMAC-SHA1 over the URL and sorted form parameters, or
    /// over the URL with `bodySHA256` for JSON bodies.
    Twilio {
        /// The account's auth token.
        auth_token: SecretName,
    },
    /// Sinch Conversation API: HMAC-SHA256 over `body.nonce.timestamp`, base64.
    Sinch {
        /// The webhook secret.
        secret: SecretName,
        /// How far the timestamp may be from now.
        #[serde(default = "default_tolerance", with = "secs")]
        tolerance: Duration,
    },
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks {
        /// The `whsec_…` secret.
        secret: SecretName,
        /// How far the timestamp may be from now.
        #[serde(default = "default_tolerance", with = "secs")]
        tolerance: Duration,
    },
    /// HTTP Basic credentials.
    Basic {
        /// The expected user name.
        username: String,
        /// The secret holding the expected password.
        password: SecretName,
    },
    /// A shared secret in a header, e.g. `X-Webhook-Token: <token>`.
    HeaderToken {
        /// The header name.
        header: String,
        /// The secret holding the expected value.
        token: SecretName,
    },
}

/// Five minutes, the Standard Webhooks tolerance.
fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A request that passed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// An authentic delivery: hand it to the connector.
    Authentic,
    /// A subscription handshake that passed: answer with this reply, no events.
    Handshake(WebhookReply),
}

/// Why a webhook failed authentication. Messages name the check, never a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A required header is absent.
    #[error("missing header `{0}`")]
    MissingHeader(String),
    /// A header or parameter is not in the expected format.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was malformed.
        what: String,
        /// How.
        reason: String,
    },
    /// The signature or credential does not match.
    #[error("signature mismatch")]
    Mismatch,
    /// The timestamp is outside the tolerance.
    #[error("timestamp outside the allowed window of {tolerance_secs} s")]
    Stale {
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The channel has no secret of that name configured.
    #[error("secret `{0}` is not configured for this channel")]
    MissingSecret(SecretName),
}

/// Verifies `req` against `scheme`, with secrets looked up in `secrets` and `now` for replay
/// windows.
pub fn verify(
    scheme: &WebhookAuth,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    let _ = (scheme, secrets, req, now);
    Err(AuthError::Mismatch)
}
