//! How the transport authenticates a connector's requests. Connectors name secrets; the
//! transport reads the values and adds the credentials.
//!
//! The OAuth 2 client-credentials grant (RFC 6749 §4.4) is split the sans-IO way: this module
//! builds the token request ([`TokenRequest::client_credentials`]), reads the token endpoint's
//! answer ([`parse_token_response`]) and decides when a token must be refreshed
//! ([`AccessToken::needs_refresh`]); the transport sends the request, caches the token and
//! refreshes it. Nothing here reads a clock: the current time is an argument.
//!
//! ```
//! use switchboard_core::outbound_auth::{parse_token_response, TokenRequest};
//! use switchboard_core::{HttpResponse, Secret, Timestamp};
//!
//! let req = TokenRequest::client_credentials(
//!     "https://auth.example.com/oauth2/token",
//!     "client-1",
//!     &Secret::new("s3cr3t"),
//!     Some("messages:send"),
//! ).unwrap();
//! assert_eq!(req.body, b"grant_type=client_credentials&scope=messages%3Asend");
//! assert!(!format!("{req:?}").contains("s3cr3t"));
//!
//! let now = Timestamp::from_unix_seconds(1_700_000_000);
//! let resp = HttpResponse::new(
//!     200,
//!     r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
//! );
//! let token = parse_token_response(&resp, now).unwrap();
//! assert_eq!(token.value.expose(), "abc");
//! assert!(!token.needs_refresh(now));
//! // Refreshed 60 s before it expires.
//! assert!(token.needs_refresh(Timestamp::from_unix_seconds(1_700_003_540)));
//! ```

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::{Header, HttpResponse, Secret, SecretName, Timestamp};

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

/// The lifetime assumed for a token whose response has no `expires_in` (RFC 6749 makes it
/// optional). A token rejected earlier is still replaced when the API answers 401.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest a token is refreshed ahead of its expiry. Short-lived tokens are refreshed
/// when a tenth of their lifetime is left, whichever comes later.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The longest provider text kept in a [`TokenError`].
const MAX_ERROR_TEXT: usize = 200;

/// What an OAuth 2 token is cached under: one token per token endpoint, client and scope.
///
/// ```
/// use switchboard_core::outbound_auth::{OutboundAuth, TokenKey};
/// let auth = OutboundAuth::OAuth2ClientCredentials {
///     token_url: "https://auth.example.com/token".into(),
///     client_id: "c1".into(),
///     client_secret: "oauth_secret".into(),
///     scope: None,
/// };
/// let key = TokenKey::from_auth(&auth).unwrap();
/// assert_eq!(key, TokenKey::new("https://auth.example.com/token", "c1", None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The scope asked for.
    pub scope: Option<String>,
}

impl TokenKey {
    /// A key from its parts.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        scope: Option<&str>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            scope: scope.map(str::to_owned),
        }
    }

    /// The key of an [`OutboundAuth::OAuth2ClientCredentials`] scheme; `None` for other schemes.
    pub fn from_auth(auth: &OutboundAuth) -> Option<Self> {
        match auth {
            OutboundAuth::OAuth2ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            } => Some(Self::new(
                token_url.clone(),
                client_id.clone(),
                scope.as_deref(),
            )),
            _ => None,
        }
    }
}

/// A client-credentials token request, ready to send: `POST url` with `headers`, `body` and
/// an `Authorization` header whose value is [`TokenRequest::authorization`].
///
/// Unlike a connector's [`crate::HttpRequest`], this one carries a secret (the client's
/// credentials, in the `Authorization` value), so it is its own type: `Debug` shows neither the
/// credentials nor the body.
#[derive(Clone)]
pub struct TokenRequest {
    /// The token endpoint.
    pub url: String,
    /// The non-secret headers: content type and `Accept: application/json`.
    pub headers: Vec<Header>,
    /// The form body: `grant_type=client_credentials`, plus `scope` when asked for.
    pub body: Vec<u8>,
    authorization: Secret,
}

impl TokenRequest {
    /// Builds the request of the client-credentials grant (RFC 6749 §4.4.2), the client
    /// authenticating with HTTP Basic (§2.3.1: id and secret form-urlencoded, then joined by
    /// `:` and base64-encoded).
    ///
    /// Fails when `token_url` is not an absolute `http(s)` URL or `client_id` is empty; whether
    /// the URL may be reached is the transport's egress policy to decide.
    pub fn client_credentials(
        token_url: &str,
        client_id: &str,
        client_secret: &Secret,
        scope: Option<&str>,
    ) -> Result<Self, TokenError> {
        let url = url::Url::parse(token_url).map_err(|e| TokenError::InvalidTokenUrl {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(TokenError::InvalidTokenUrl {
                reason: format!("scheme `{}` is not http(s)", url.scheme()),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(TokenError::InvalidTokenUrl {
                reason: "no host".into(),
            });
        }
        if client_id.is_empty() {
            return Err(TokenError::InvalidClientId {
                reason: "is empty".into(),
            });
        }
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            form.append_pair("scope", scope);
        }
        let credentials = format!(
            "{}:{}",
            form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(client_secret.expose().as_bytes()).collect::<String>(),
        );
        Ok(Self {
            url: token_url.to_owned(),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("Accept".into(), "application/json".into()),
            ],
            body: form.finish().into_bytes(),
            authorization: Secret::new(format!("Basic {}", BASE64.encode(credentials))),
        })
    }

    /// The value of the `Authorization` header (`Basic …`): a secret.
    pub fn authorization(&self) -> &Secret {
        &self.authorization
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("authorization", &self.authorization)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A bearer token from a token endpoint, with the instants it was issued and expires.
///
/// `Debug` shows the instants, never the value.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The token.
    pub value: Secret,
    /// When it was received (the `now` given to [`parse_token_response`]).
    pub issued_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
    /// The scope granted, when the endpoint said.
    pub scope: Option<String>,
}

impl AccessToken {
    /// A token received at `issued_at` that is valid for `lifetime`.
    pub fn new(value: Secret, issued_at: Timestamp, lifetime: Duration) -> Self {
        Self {
            value,
            issued_at,
            expires_at: issued_at.saturating_add(lifetime),
            scope: None,
        }
    }

    /// How long the token is valid in all (zero if it expires before it was issued).
    pub fn lifetime(&self) -> Duration {
        self.expires_at
            .checked_duration_since(self.issued_at)
            .unwrap_or_default()
    }

    /// How long before expiry the token is refreshed: a tenth of its lifetime, at most
    /// [`MAX_REFRESH_MARGIN`].
    pub fn refresh_margin(&self) -> Duration {
        (self.lifetime() / 10).min(MAX_REFRESH_MARGIN)
    }

    /// Whether the token should be replaced at `now`: it is expired or within its refresh
    /// margin. Until [`AccessToken::is_expired`], it may still be used while a refresh runs.
    pub fn needs_refresh(&self, now: Timestamp) -> bool {
        now.saturating_add(self.refresh_margin()) >= self.expires_at
    }

    /// Whether the token is expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// Why a token could not be requested or read. Never contains secret values: not the client
/// secret, not the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token endpoint is not a usable URL.
    #[error("invalid token URL: {reason}")]
    InvalidTokenUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The client id cannot be used.
    #[error("invalid client id: {reason}")]
    InvalidClientId {
        /// What is wrong with it.
        reason: String,
    },
    /// The endpoint refused to issue a token (a non-2xx status or an RFC 6749 §5.2 error).
    #[error("token endpoint refused (HTTP {status}){}{}", fmt_opt(": ", .error), fmt_opt(" - ", .description))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The OAuth error code, e.g. `invalid_client`.
        error: Option<String>,
        /// The endpoint's `error_description`, shortened.
        description: Option<String>,
    },
    /// The answer is not a token response.
    #[error("malformed token response: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The endpoint issued a token of a type other than `Bearer`.
    #[error("unsupported token type `{token_type}` (only Bearer is supported)")]
    UnsupportedTokenType {
        /// The type it issued.
        token_type: String,
    },
}

fn fmt_opt(prefix: &str, value: &Option<String>) -> String {
    value
        .as_deref()
        .map(|v| format!("{prefix}{v}"))
        .unwrap_or_default()
}

fn short_text(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Reads a token endpoint's answer, received at `now`.
///
/// Accepts `expires_in` as a number or a numeric string ([`DEFAULT_TOKEN_LIFETIME`] when
/// absent) and a missing `token_type` as `Bearer`. A non-2xx status, or a body with an `error`
/// member, is [`TokenError::Rejected`]; the token must be usable as a header value.
pub fn parse_token_response(
    resp: &HttpResponse,
    now: Timestamp,
) -> Result<AccessToken, TokenError> {
    let json: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&resp.body).ok();
    let text_field =
        |name: &str| -> Option<String> { json.as_ref()?.get(name)?.as_str().map(short_text) };
    let has_error = json.as_ref().is_some_and(|j| j.contains_key("error"));
    if !resp.is_success() || has_error {
        return Err(TokenError::Rejected {
            status: resp.status,
            error: text_field("error"),
            description: text_field("error_description"),
        });
    }
    let json = json.ok_or_else(|| TokenError::Malformed {
        reason: "the body is not a JSON object".into(),
    })?;
    let value = match json.get("access_token") {
        Some(serde_json::Value::String(v)) if !v.is_empty() => v,
        Some(serde_json::Value::String(_)) => {
            return Err(TokenError::Malformed {
                reason: "`access_token` is empty".into(),
            });
        }
        Some(_) => {
            return Err(TokenError::Malformed {
                reason: "`access_token` is not a string".into(),
            });
        }
        None => {
            return Err(TokenError::Malformed {
                reason: "no `access_token`".into(),
            });
        }
    };
    // RFC 6750 b64token, loosely: visible ASCII, so it is a valid header value.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Malformed {
            reason: "`access_token` has characters not allowed in a header".into(),
        });
    }
    match json.get("token_type") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(serde_json::Value::String(t)) => {
            return Err(TokenError::UnsupportedTokenType {
                token_type: short_text(t),
            });
        }
        Some(_) => {
            return Err(TokenError::Malformed {
                reason: "`token_type` is not a string".into(),
            });
        }
    }
    let lifetime = match json.get("expires_in") {
        None | Some(serde_json::Value::Null) => DEFAULT_TOKEN_LIFETIME,
        Some(v) => parse_expires_in(v).ok_or_else(|| TokenError::Malformed {
            reason: "`expires_in` is not a non-negative number of seconds".into(),
        })?,
    };
    let mut token = AccessToken::new(Secret::new(value.as_str()), now, lifetime);
    token.scope = json
        .get("scope")
        .and_then(|s| s.as_str())
        .map(str::to_owned);
    Ok(token)
}

fn parse_expires_in(value: &serde_json::Value) -> Option<Duration> {
    let secs = match value {
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(secs) => secs as f64,
            None => n.as_f64()?,
        },
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Saturates for absurd values; a token's life is capped by `Timestamp`'s range anyway.
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use base64::Engine;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_700_000_000)
    }

    fn ok(body: &str) -> HttpResponse {
        HttpResponse::new(200, body)
    }

    #[test]
    fn token_request_is_a_form_post_with_basic_client_auth() {
        let req = TokenRequest::client_credentials(
            "https://auth.example.com/token",
            "my client",
            &Secret::new("p:a+ss"),
            Some("a b"),
        )
        .unwrap();
        assert_eq!(req.url, "https://auth.example.com/token");
        assert_eq!(req.body, b"grant_type=client_credentials&scope=a+b");
        assert!(
            req.headers
                .iter()
                .any(|(n, v)| n == "Content-Type" && v == "application/x-www-form-urlencoded")
        );
        let auth = req.authorization().expose();
        let b64 = auth.strip_prefix("Basic ").unwrap();
        let decoded = BASE64.decode(b64).unwrap();
        // RFC 6749 §2.3.1: both parts form-urlencoded before joining.
        assert_eq!(decoded, b"my+client:p%3Aa%2Bss");
        let shown = format!("{req:?}");
        assert!(!shown.contains(b64) && !shown.contains("p:a+ss"), "{shown}");
    }

    #[test]
    fn token_request_without_scope_and_bad_inputs() {
        let s = Secret::new("x");
        let req = TokenRequest::client_credentials("https://a/t", "c", &s, None).unwrap();
        assert_eq!(req.body, b"grant_type=client_credentials");
        let req = TokenRequest::client_credentials("https://a/t", "c", &s, Some("")).unwrap();
        assert_eq!(req.body, b"grant_type=client_credentials");
        for url in ["not a url", "/relative", "ftp://a/t", "mailto:x@y"] {
            assert!(
                matches!(
                    TokenRequest::client_credentials(url, "c", &s, None),
                    Err(TokenError::InvalidTokenUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            TokenRequest::client_credentials("https://a/t", "", &s, None),
            Err(TokenError::InvalidClientId { .. })
        ));
    }

    #[test]
    fn parses_a_bearer_token_with_its_expiry() {
        let t = parse_token_response(
            &ok(r#"{"access_token":"tok","token_type":"bearer","expires_in":120,"scope":"s"}"#),
            now(),
        )
        .unwrap();
        assert_eq!(t.value.expose(), "tok");
        assert_eq!(t.issued_at, now());
        assert_eq!(t.expires_at, Timestamp::from_unix_seconds(1_700_000_120));
        assert_eq!(t.scope.as_deref(), Some("s"));
        assert_eq!(t.lifetime(), Duration::from_secs(120));
        assert!(!format!("{t:?}").contains("tok\""));
        assert!(format!("{t:?}").contains("REDACTED"));
    }

    #[test]
    fn expires_in_forms() {
        let parse = |v: &str| {
            parse_token_response(
                &ok(&format!(r#"{{"access_token":"t","expires_in":{v}}}"#)),
                now(),
            )
            .map(|t| t.lifetime())
        };
        assert_eq!(parse("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse(r#""3600""#).unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("59.9").unwrap(), Duration::from_millis(59_900));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("null").unwrap(), DEFAULT_TOKEN_LIFETIME);
        assert!(parse("1e300").unwrap() > Duration::from_secs(3600 * 24 * 365 * 1000));
        for bad in ["-1", r#""soon""#, "true", "[]"] {
            assert!(
                matches!(parse(bad), Err(TokenError::Malformed { .. })),
                "{bad}"
            );
        }
        let t = parse_token_response(&ok(r#"{"access_token":"t"}"#), now()).unwrap();
        assert_eq!(t.lifetime(), DEFAULT_TOKEN_LIFETIME);
    }

    #[test]
    fn errors_are_typed_and_do_not_echo_tokens() {
        type Check = fn(&TokenError) -> bool;
        let cases: &[(HttpResponse, Check)] = &[
            (
                HttpResponse::new(
                    401,
                    r#"{"error":"invalid_client","error_description":"bad creds"}"#,
                ),
                |e| matches!(e, TokenError::Rejected { status: 401, error: Some(c), description: Some(d) } if c == "invalid_client" && d == "bad creds"),
            ),
            (HttpResponse::new(500, "<html>oops</html>"), |e| {
                matches!(
                    e,
                    TokenError::Rejected {
                        status: 500,
                        error: None,
                        description: None
                    }
                )
            }),
            (ok(r#"{"error":"invalid_scope"}"#), |e| {
                matches!(e, TokenError::Rejected { status: 200, .. })
            }),
            (ok("not json"), |e| {
                matches!(e, TokenError::Malformed { .. })
            }),
            (ok("[1,2]"), |e| matches!(e, TokenError::Malformed { .. })),
            (ok(r#"{"token_type":"bearer"}"#), |e| {
                matches!(e, TokenError::Malformed { .. })
            }),
            (ok(r#"{"access_token":""}"#), |e| {
                matches!(e, TokenError::Malformed { .. })
            }),
            (ok(r#"{"access_token":42}"#), |e| {
                matches!(e, TokenError::Malformed { .. })
            }),
            (
                ok(r#"{"access_token":"SECRET
X-Evil: 1"}"#),
                |e| matches!(e, TokenError::Malformed { .. }),
            ),
            (
                ok(r#"{"access_token":"SECRET","token_type":"mac"}"#),
                |e| matches!(e, TokenError::UnsupportedTokenType { token_type } if token_type == "mac"),
            ),
            (ok(r#"{"access_token":"SECRET","token_type":7}"#), |e| {
                matches!(e, TokenError::Malformed { .. })
            }),
        ];
        for (resp, check) in cases {
            let err = parse_token_response(resp, now()).unwrap_err();
            assert!(check(&err), "{err:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        let long = "x".repeat(1000);
        let err = parse_token_response(
            &HttpResponse::new(
                400,
                format!(r#"{{"error":"e","error_description":"{long}"}}"#),
            ),
            now(),
        )
        .unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
        assert_eq!(
            TokenError::Rejected {
                status: 400,
                error: Some("invalid_grant".into()),
                description: None
            }
            .to_string(),
            "token endpoint refused (HTTP 400): invalid_grant"
        );
    }

    #[test]
    fn refresh_margin_is_a_tenth_of_the_lifetime_capped_at_a_minute() {
        let t0 = now();
        let long = AccessToken::new(Secret::new("t"), t0, Duration::from_secs(3600));
        assert_eq!(long.refresh_margin(), MAX_REFRESH_MARGIN);
        assert!(!long.needs_refresh(t0.saturating_add(Duration::from_secs(3539))));
        assert!(long.needs_refresh(t0.saturating_add(Duration::from_secs(3540))));
        assert!(!long.is_expired(t0.saturating_add(Duration::from_secs(3599))));
        assert!(long.is_expired(t0.saturating_add(Duration::from_secs(3600))));

        let short = AccessToken::new(Secret::new("t"), t0, Duration::from_secs(30));
        assert_eq!(short.refresh_margin(), Duration::from_secs(3));
        assert!(!short.needs_refresh(t0.saturating_add(Duration::from_secs(26))));
        assert!(short.needs_refresh(t0.saturating_add(Duration::from_secs(27))));

        let zero = AccessToken::new(Secret::new("t"), t0, Duration::ZERO);
        assert!(zero.needs_refresh(t0) && zero.is_expired(t0));

        let mut backwards = AccessToken::new(Secret::new("t"), t0, Duration::from_secs(10));
        backwards.expires_at = Timestamp::from_unix_seconds(0);
        assert_eq!(backwards.lifetime(), Duration::ZERO);
        assert!(backwards.needs_refresh(t0));
    }
}
