//! The webhook-authentication catalogue, evaluated by the host before a connector sees a body.
//!
//! A connector declares a [`WebhookAuth`] scheme (data, naming secrets); [`verify`] checks a
//! raw request against it, on the raw bytes, comparing in constant time, and fails closed: a
//! missing, repeated, empty or oversized header, a malformed value, a missing or empty secret
//! and an unknown signature version are all errors, never a pass.
//!
//! | Scheme | Checks |
//! |---|---|
//! | [`WebhookAuth::HmacSha256Header`] | hex HMAC-SHA256 of the body after a prefix (Meta); Meta's GET `hub.challenge` handshake |
//! | [`WebhookAuth::Twilio`] | base64 HMAC-SHA1 of URL + sorted form params, or URL with `bodySHA256`; port and query-encoding variants |
//! | [`WebhookAuth::Sinch`] | base64 HMAC-SHA256 of `body.nonce.timestamp`; replay window |
//! | [`WebhookAuth::StandardWebhooks`] | `v1,` base64 HMAC-SHA256 of `id.timestamp.body`; replay window |
//! | [`WebhookAuth::VonageJwt`] | `Authorization: Bearer` JWT, HS256 only, `iat` window, `payload_hash` = SHA-256 of the body |
//! | [`WebhookAuth::TelnyxEd25519`] | base64 Ed25519 signature of `timestamp\|body` with a public key; replay window |
//! | [`WebhookAuth::Basic`], [`WebhookAuth::HeaderToken`] | shared credentials |
//! | [`WebhookAuth::None`] | nothing: an explicit opt-out |
//!
//! Signatures that cover the URL (Twilio's) cover the *public* URL the provider called. Behind
//! a TLS-terminating proxy, rebuild it with [`rebase_url`] before verifying.
//!
//! ```
//! use switchboard_core::webhook_auth::{self, Verified, WebhookAuth};
//! use switchboard_core::{Method, SecretName, Secrets, Timestamp, WebhookRequest};
//!
//! let scheme = WebhookAuth::HmacSha256Header {
//!     header: "X-Hub-Signature-256".into(),
//!     prefix: "sha256=".into(),
//!     secret: SecretName::new("app_secret"),
//!     verify_token: None,
//! };
//! let secrets = Secrets::default().with("app_secret", "TEST_APP_SECRET");
//! let req = WebhookRequest::new(Method::Post, "https://example.com/hooks/meta")
//!     .with_header(
//!         "X-Hub-Signature-256",
//!         "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221",
//!     )
//!     .with_body(b"test".to_vec());
//! let now = Timestamp::from_unix_seconds(1_700_000_000);
//! assert_eq!(webhook_auth::verify(&scheme, &secrets, &req, now), Ok(Verified::Authentic));
//!
//! let tampered = req.with_body(b"tesT".to_vec());
//! assert!(webhook_auth::verify(&scheme, &secrets, &tampered, now).is_err());
//! ```

mod basic;
mod common;
mod meta;
mod public_url;
mod sinch;
mod standard;
mod telnyx;
mod twilio;
mod vonage;

pub use public_url::rebase_url;
pub use standard::sign as sign_standard_webhooks;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ConnectorError, SecretName, SecretStore, Timestamp, WebhookReply, WebhookRequest};

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
    ///
    /// The prefix matches in any case; the digest is 64 hex digits, upper or lower case. A GET
    /// whose query has `hub.*` parameters is the handshake: `hub.mode=subscribe`, the token
    /// compared in constant time, and the `hub.challenge` (printable ASCII, at most 512
    /// characters) echoed as `text/plain`. Any other request must carry the signature.
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
    ///
    /// The URL is the public one Twilio called ([`rebase_url`] rebuilds it behind a proxy),
    /// user info included. Like the official validators, a signature over the URL with its port
    /// stripped or with the scheme's default port added also passes, and so does one over the
    /// query re-encoded as a WHATWG URL serialiser or Node's `querystring` writes it (`'` as
    /// `%27`, `+` as `%20`). Form parameters must decode to UTF-8; a GET's body must be empty.
    Twilio {
        /// The account's auth token.
        auth_token: SecretName,
    },
    /// Sinch Conversation API: HMAC-SHA256 over `body.nonce.timestamp`, base64.
    ///
    /// Headers `x-sinch-webhook-signature`, `-nonce` (no `.`), `-timestamp` (Unix seconds,
    /// digits only) and, when present, `-algorithm` (`HmacSHA256`).
    Sinch {
        /// The webhook secret.
        secret: SecretName,
        /// How far the timestamp may be from now.
        #[serde(default = "default_tolerance", with = "crate::serde_secs")]
        tolerance: Duration,
    },
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    ///
    /// Passes when any `v1,` entry of the space-separated signature list matches; other
    /// versions are skipped. The id must not contain `.`; the timestamp is digits only. The
    /// secret is `whsec_` (optional) and base64, padded or not; an empty one is refused.
    StandardWebhooks {
        /// The `whsec_…` secret.
        secret: SecretName,
        /// How far the timestamp may be from now.
        #[serde(default = "default_tolerance", with = "crate::serde_secs")]
        tolerance: Duration,
    },
    /// Vonage signed webhooks (Messages and Dispatch APIs): `Authorization: Bearer <JWT>`,
    /// HS256-signed with the account's signature secret.
    ///
    /// Only `alg: HS256` is accepted (`none` and every other algorithm are refused before the
    /// key is used); the signature is compared in constant time; `iat` (required) must be
    /// within `tolerance` of now in either direction, and `exp`/`nbf` hold when present. The
    /// `payload_hash` claim (hex SHA-256 of the raw body) is **required whenever the body is
    /// not empty** and checked whenever present, so the signature covers the body: Vonage
    /// calls that check optional behind TLS, but without it a captured token would vouch for
    /// any body inside the window. When `api_key` is set, the token's `api_key` claim must
    /// equal it (an account with several signature secrets).
    VonageJwt {
        /// The account's signature secret (Dashboard → Settings), the HMAC key.
        secret: SecretName,
        /// How far `iat` may be from now.
        #[serde(default = "default_tolerance", with = "crate::serde_secs")]
        tolerance: Duration,
        /// The API key the token must name, when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
    },
    /// Telnyx API v2 webhooks: `telnyx-signature-ed25519` (base64 Ed25519 signature) over
    /// `telnyx-timestamp + "|" + body`, verified with the account's public key, timestamp
    /// within `tolerance` of now.
    ///
    /// The named secret holds the base64 public key from the Telnyx portal (32 bytes). The
    /// timestamp is digits only; verification is strict (non-canonical signatures and
    /// small-order keys fail).
    TelnyxEd25519 {
        /// The secret holding the base64 Ed25519 public key.
        public_key: SecretName,
        /// How far the timestamp may be from now.
        #[serde(default = "default_tolerance", with = "crate::serde_secs")]
        tolerance: Duration,
    },
    /// HTTP Basic credentials (`Authorization: Basic base64(user:password)`), both compared
    /// in constant time.
    Basic {
        /// The expected user name.
        username: String,
        /// The secret holding the expected password.
        password: SecretName,
    },
    /// A shared secret in a header, e.g. `X-Webhook-Token: <token>`, compared in constant
    /// time. The whole value is the token (surrounding spaces are HTTP whitespace).
    HeaderToken {
        /// The header name.
        header: String,
        /// The secret holding the expected value.
        token: SecretName,
    },
}

/// Five minutes, the Standard Webhooks tolerance.
impl WebhookAuth {
    /// Whether the scheme authenticates the body (a signature over it), not only the sender
    /// (a shared token or password), so a changed body fails verification.
    pub fn signs_body(&self) -> bool {
        matches!(
            self,
            WebhookAuth::HmacSha256Header { .. }
                | WebhookAuth::Twilio { .. }
                | WebhookAuth::Sinch { .. }
                | WebhookAuth::StandardWebhooks { .. }
                | WebhookAuth::VonageJwt { .. }
                | WebhookAuth::TelnyxEd25519 { .. }
        )
    }
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
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
    /// The channel's secret of that name is configured but unusable (empty, or not in the
    /// scheme's format). `reason` never quotes the value.
    #[error("secret `{name}` is unusable: {reason}")]
    InvalidSecret {
        /// The secret's name.
        name: SecretName,
        /// Why it is unusable.
        reason: String,
    },
}

impl From<AuthError> for ConnectorError {
    /// An [`ConnectorError::InvalidSignature`] naming the failed check.
    fn from(error: AuthError) -> Self {
        ConnectorError::InvalidSignature {
            reason: error.to_string(),
        }
    }
}

/// Verifies `req` against `scheme`, with secrets looked up in `secrets` and `now` for replay
/// windows.
///
/// `req.url` must be the public URL the provider called (see [`rebase_url`]) and `req.body`
/// the raw bytes received. Returns [`Verified::Handshake`] for a passing Meta subscription
/// GET, which the server answers without calling the connector.
///
/// # Errors
///
/// [`AuthError::MissingSecret`] / [`AuthError::InvalidSecret`] when the channel's
/// configuration cannot verify anything; [`AuthError::MissingHeader`] and
/// [`AuthError::Malformed`] when the request lacks or garbles what the scheme reads;
/// [`AuthError::Stale`] outside the replay window; [`AuthError::Mismatch`] when the signature
/// or credentials are wrong.
pub fn verify(
    scheme: &WebhookAuth,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    match scheme {
        WebhookAuth::None => Ok(Verified::Authentic),
        WebhookAuth::HmacSha256Header {
            header,
            prefix,
            secret,
            verify_token,
        } => meta::verify(
            &meta::Settings {
                header,
                prefix,
                secret,
                verify_token: verify_token.as_ref(),
            },
            secrets,
            req,
        ),
        WebhookAuth::Twilio { auth_token } => twilio::verify(auth_token, secrets, req),
        WebhookAuth::Sinch { secret, tolerance } => {
            sinch::verify(secret, *tolerance, secrets, req, now)
        }
        WebhookAuth::StandardWebhooks { secret, tolerance } => {
            standard::verify(secret, *tolerance, secrets, req, now)
        }
        WebhookAuth::VonageJwt {
            secret,
            tolerance,
            api_key,
        } => vonage::verify(
            &vonage::Settings {
                secret,
                tolerance: *tolerance,
                api_key: api_key.as_deref(),
            },
            secrets,
            req,
            now,
        ),
        WebhookAuth::TelnyxEd25519 {
            public_key,
            tolerance,
        } => telnyx::verify(public_key, *tolerance, secrets, req, now),
        WebhookAuth::Basic { username, password } => {
            basic::verify_basic(username, password, secrets, req)
        }
        WebhookAuth::HeaderToken { header, token } => {
            basic::verify_header_token(header, token, secrets, req)
        }
    }
}
