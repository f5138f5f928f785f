//! The error taxonomy: what went wrong at the provider, and what a connector rejects.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of failure a provider reported. The gateway's behaviour follows from the class
/// alone: retry, slow down, give up, mark the recipient opted out, or fall back to a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// Transient: retry with backoff (HTTP 5xx, provider hiccups).
    Retryable,
    /// Rate limited: retry later, honouring `retry_after` when given.
    Throttled,
    /// Will never succeed as sent: do not retry.
    Permanent,
    /// Credentials rejected or expired: fix the channel, do not retry blindly.
    Auth,
    /// The recipient opted out: stop messaging them.
    OptedOut,
    /// The customer-service window is closed: only a template can be sent.
    WindowClosed,
    /// The template is missing, unapproved, paused or its parameters do not fit.
    TemplateInvalid,
    /// The recipient does not exist or cannot receive on this channel.
    InvalidRecipient,
    /// The channel does not support what was sent.
    Unsupported,
}

impl ErrorClass {
    /// Whether sending the same message again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retryable | ErrorClass::Throttled)
    }

    /// The stable snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Auth => "auth",
            ErrorClass::OptedOut => "opted_out",
            ErrorClass::WindowClosed => "window_closed",
            ErrorClass::TemplateInvalid => "template_invalid",
            ErrorClass::InvalidRecipient => "invalid_recipient",
            ErrorClass::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure reported by a provider, classified.
///
/// ```
/// use std::time::Duration;
/// use switchboard_core::{ErrorClass, ProviderError};
/// let e = ProviderError::new(ErrorClass::Throttled, "too many requests")
///     .with_code("130429")
///     .with_retry_after(Duration::from_secs(30));
/// assert!(e.class.is_retryable());
/// assert_eq!(e.to_string(), "throttled (provider code 130429): too many requests");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ProviderError {
    /// What kind of failure it is.
    pub class: ErrorClass,
    /// The provider's own error code, e.g. `"131047"` or `"21610"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    /// The provider's message, for humans. Never contains secrets.
    pub message: String,
    /// How long the provider asked us to wait, in whole seconds in JSON.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "retry_after_secs",
        with = "crate::serde_secs::option"
    )]
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of `class` with a message and nothing else.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            provider_code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Sets the provider's code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.provider_code = Some(code.into());
        self
    }

    /// Sets the wait the provider asked for.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class)?;
        if let Some(code) = &self.provider_code {
            write!(f, " (provider code {code})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a connector refused a webhook, a configuration or a message.
///
/// Messages name the reason and never carry secret values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The webhook's signature or credentials did not verify.
    #[error("invalid signature: {reason}")]
    InvalidSignature {
        /// Which check failed, e.g. "no X-Hub-Signature-256 header".
        reason: String,
    },
    /// The payload could not be parsed.
    #[error("malformed payload: {reason}")]
    Malformed {
        /// What was wrong, e.g. "`entry[0].changes` is not an array".
        reason: String,
    },
    /// The webhook or message is well-formed but of a kind this connector does not handle.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The channel settings are missing or invalid.
    #[error("invalid channel setting `{field}`: {reason}")]
    Config {
        /// The setting's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConnectorError {
    /// A [`ConnectorError::Malformed`] with `reason`.
    pub fn malformed(reason: impl Into<String>) -> Self {
        ConnectorError::Malformed {
            reason: reason.into(),
        }
    }

    /// A [`ConnectorError::Config`] for `field`.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConnectorError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`ConnectorError::Unsupported`] naming `what`.
    pub fn unsupported(what: impl Into<String>) -> Self {
        ConnectorError::Unsupported { what: what.into() }
    }

    /// A [`ConnectorError::InvalidSignature`] with `reason`.
    pub fn invalid_signature(reason: impl Into<String>) -> Self {
        ConnectorError::InvalidSignature {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_error_json_shape() {
        let e = ProviderError::new(ErrorClass::WindowClosed, "outside window")
            .with_code("131047")
            .with_retry_after(Duration::from_secs(5));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"class": "window_closed", "provider_code": "131047", "message": "outside window", "retry_after_secs": 5})
        );
        assert_eq!(serde_json::from_value::<ProviderError>(v).unwrap(), e);
    }

    #[test]
    fn only_retryable_and_throttled_retry() {
        let retry: Vec<_> = [
            ErrorClass::Retryable,
            ErrorClass::Throttled,
            ErrorClass::Permanent,
            ErrorClass::Auth,
            ErrorClass::OptedOut,
            ErrorClass::WindowClosed,
            ErrorClass::TemplateInvalid,
            ErrorClass::InvalidRecipient,
            ErrorClass::Unsupported,
        ]
        .into_iter()
        .filter(|c| c.is_retryable())
        .collect();
        assert_eq!(retry, [ErrorClass::Retryable, ErrorClass::Throttled]);
    }
}
