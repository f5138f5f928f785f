//! How the transport authenticates a connector's requests. Connectors name secrets; the
//! transport reads the values and adds the credentials.

use serde::{Deserialize, Serialize};

use crate::SecretName;

/// An outbound authentication scheme.
///
/// ```
/// use switchboard_core::outbound_auth::OutboundAuth;
/// let auth: OutboundAuth = serde_json::from_str(
///     r#"{"scheme": "basic", "username": "AC123", "password": "auth_token"}"#,
/// ).unwrap();
/// assert!(matches!(auth, OutboundAuth::Basic { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutboundAuth {
    /// No credentials.
    None,
    /// HTTP Basic with a non-secret user name and a secret password.
    Basic {
        /// The user name (e.g. a Twilio account or API key SID).
        username: String,
        /// The secret holding the password.
        password: SecretName,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The secret holding the token.
        token: SecretName,
    },
    /// A custom header carrying a secret, e.g. Kaleyra's `api-key`.
    Header {
        /// The header name.
        name: String,
        /// The secret holding the value.
        value: SecretName,
    },
    /// OAuth 2 client credentials: a bearer token fetched from `token_url`, cached and
    /// refreshed before it expires.
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The client id.
        client_id: String,
        /// The secret holding the client secret.
        client_secret: SecretName,
        /// The scope to ask for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
}
