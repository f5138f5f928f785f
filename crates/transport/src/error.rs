//! What can go wrong executing a request, and whether the provider may have received it.

use std::error::Error as StdError;
use std::time::Duration;

use switchboard_core::outbound_auth::TokenError;
use switchboard_core::{ConnectorError, ProviderError, SecretName};

use crate::egress::EgressDenied;

/// A request that failed in the transport.
///
/// Every variant is either **not sent** ([`TransportError::not_sent`]: the provider cannot have
/// seen the request, so it is safe to send again) or **outcome unknown**
/// ([`TransportError::outcome_unknown`]: the request may have reached the provider and been
/// acted on, so the gateway must not blindly send it again), except the redirect failures of
/// media downloads, which only follow `GET`s and are neither.
///
/// Messages and `Debug` never contain secret values or credential headers, and URLs in them
/// are redacted ([`crate::redact_url`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request URL does not parse. Not sent.
    #[error("invalid request URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A header name or value is not valid HTTP. Not sent.
    #[error("invalid request header `{name}`")]
    InvalidHeader {
        /// The header's name (its value is not shown).
        name: String,
    },
    /// The request could not be built for another reason. Not sent.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: String,
    },
    /// The egress policy refused the destination. Not sent.
    #[error(transparent)]
    EgressDenied(#[from] EgressDenied),
    /// The auth scheme names a secret the channel does not have. Not sent.
    #[error("secret `{name}` is not configured")]
    MissingSecret {
        /// The secret's name.
        name: SecretName,
    },
    /// The auth scheme is not one this transport knows. Not sent.
    #[error("unsupported outbound auth scheme")]
    UnsupportedAuth,
    /// The OAuth 2 token could not be obtained, so the request was not sent.
    #[error("could not obtain an OAuth 2 token from `{token_url}`: {source}")]
    Token {
        /// The token endpoint, redacted.
        token_url: String,
        /// What went wrong.
        #[source]
        source: TokenFailure,
    },
    /// The host name did not resolve. Not sent.
    #[error("could not resolve `{host}`: {reason}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// No connection could be made (refused, unreachable, TLS handshake failed, connect
    /// timeout). Not sent.
    #[error("could not connect to `{host}`: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// No complete response within the total timeout. Outcome unknown: the provider may have
    /// received and processed the request.
    #[error("request to `{host}` timed out after {after:?}; the provider may have received it")]
    Timeout {
        /// The host.
        host: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection failed once the request was under way (reset, closed early, protocol
    /// error). Outcome unknown.
    #[error(
        "connection to `{host}` failed during the exchange; the provider may have received the request: {reason}"
    )]
    Interrupted {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The response body is larger than allowed; reading stopped at the limit. The provider
    /// answered, but its answer is lost: outcome unknown.
    #[error("response body from `{host}` exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The host.
        host: String,
        /// The limit.
        limit: usize,
    },
    /// A media download was redirected more often than allowed.
    #[error("more than {max_hops} redirects")]
    TooManyRedirects {
        /// The limit.
        max_hops: u8,
    },
    /// A redirect had no usable `Location`.
    #[error("redirect from `{host}` has no usable Location: {reason}")]
    BadRedirect {
        /// The host that redirected.
        host: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. no TLS root certificates on the system).
    #[error("could not build the HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

impl TransportError {
    /// Whether the request is known not to have been sent: sending it again cannot duplicate
    /// anything.
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            TransportError::InvalidUrl { .. }
                | TransportError::InvalidHeader { .. }
                | TransportError::InvalidRequest { .. }
                | TransportError::EgressDenied(_)
                | TransportError::MissingSecret { .. }
                | TransportError::UnsupportedAuth
                | TransportError::Token { .. }
                | TransportError::Dns { .. }
                | TransportError::Connect { .. }
                | TransportError::Client { .. }
        )
    }

    /// Whether the request may have reached the provider and been acted on, without us
    /// knowing the result: timeouts, connections lost mid-exchange, unreadable answers. The
    /// gateway must not resend such a message blindly (reconcile through status webhooks or
    /// the provider's idempotency instead).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. }
                | TransportError::Interrupted { .. }
                | TransportError::BodyTooLarge { .. }
        )
    }
}

/// Why an OAuth 2 token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFailure {
    /// The token endpoint answered, but not with a usable token (or the request could not be
    /// built).
    #[error(transparent)]
    Endpoint(#[from] TokenError),
    /// The token request itself failed.
    #[error(transparent)]
    Request(Box<TransportError>),
}

/// Why [`crate::Transport::send`] did not produce a receipt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connector could not build the request (or its auth scheme). Not sent.
    #[error("connector: {0}")]
    Connector(#[from] ConnectorError),
    /// The transport failed: see [`TransportError::not_sent`] and
    /// [`TransportError::outcome_unknown`].
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// The provider answered with an error (classified by the connector).
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
}

impl SendError {
    /// Whether the message is known not to have been sent.
    pub fn not_sent(&self) -> bool {
        match self {
            SendError::Connector(_) => true,
            SendError::Transport(e) => e.not_sent(),
            SendError::Provider(_) => false,
        }
    }

    /// Whether the provider may have accepted the message without us knowing: do not resend
    /// blindly.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            SendError::Transport(e) => e.outcome_unknown(),
            SendError::Connector(_) | SendError::Provider(_) => false,
        }
    }
}

/// Why [`crate::Transport::download_media`] did not produce the media.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The connector refused a step (or its auth scheme).
    #[error("connector: {0}")]
    Connector(#[from] ConnectorError),
    /// A request of the download failed.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A step was answered with an error status (4xx/5xx), or the last one with a non-2xx.
    #[error("media download answered with HTTP {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// The connector asked for more steps than allowed.
    #[error("media download did not finish within {max} steps")]
    TooManySteps {
        /// The limit.
        max: usize,
    },
}

/// The first error of type `T` in `err`'s source chain, `err` included.
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The messages of `err`'s sources (not `err` itself, whose text may carry a URL), joined.
pub(crate) fn source_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        current = e.source();
    }
    if parts.is_empty() {
        "unknown error".to_owned()
    } else {
        crate::trace::mask_phone_numbers(&parts.join(": "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use crate::egress::DenyRule;

    #[test]
    fn every_variant_is_not_sent_or_outcome_unknown_except_redirects() {
        let host = || "h.example".to_owned();
        let errors = vec![
            TransportError::InvalidUrl {
                url: "x".into(),
                reason: "r".into(),
            },
            TransportError::InvalidHeader { name: "n".into() },
            TransportError::InvalidRequest { reason: "r".into() },
            TransportError::EgressDenied(EgressDenied {
                host: host(),
                rule: DenyRule::HostNotAllowed,
            }),
            TransportError::MissingSecret {
                name: SecretName::new("s"),
            },
            TransportError::UnsupportedAuth,
            TransportError::Token {
                token_url: "u".into(),
                source: TokenFailure::Endpoint(TokenError::Malformed { reason: "r".into() }),
            },
            TransportError::Dns {
                host: host(),
                reason: "r".into(),
            },
            TransportError::Connect {
                host: host(),
                reason: "r".into(),
            },
            TransportError::Timeout {
                host: host(),
                after: Duration::from_secs(1),
            },
            TransportError::Interrupted {
                host: host(),
                reason: "r".into(),
            },
            TransportError::BodyTooLarge {
                host: host(),
                limit: 1,
            },
            TransportError::TooManyRedirects { max_hops: 1 },
            TransportError::BadRedirect {
                host: host(),
                reason: "r".into(),
            },
            TransportError::Client { reason: "r".into() },
        ];
        for e in &errors {
            assert!(!(e.not_sent() && e.outcome_unknown()), "{e:?}");
            let redirect = matches!(
                e,
                TransportError::TooManyRedirects { .. } | TransportError::BadRedirect { .. }
            );
            assert_eq!(e.not_sent() || e.outcome_unknown(), !redirect, "{e:?}");
        }
        let send = SendError::from(TransportError::Timeout {
            host: host(),
            after: Duration::ZERO,
        });
        assert!(send.outcome_unknown() && !send.not_sent());
        let send = SendError::from(ConnectorError::malformed("x"));
        assert!(send.not_sent() && !send.outcome_unknown());
    }
}
