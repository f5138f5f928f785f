//! What the gateway asks a connector to send, and what the provider answers.

use serde::{Deserialize, Serialize};

use crate::{Address, Content, DeliveryStatus, Extensions};

/// The extension key of a caller's reference that the provider echoes on delivery statuses.
///
/// A connector whose provider can carry an opaque reference with a message (Meta's
/// `biz_opaque_callback_data`) sends the [`OutboundMessage`] extension `client_reference` as that
/// reference when no provider-specific one is given, and reports it back on the
/// [`crate::StatusUpdate`]s of the message under the same key. The gateway sets it to the
/// message's idempotency key, so a status can settle a send whose answer was lost. Connectors
/// that have no such field ignore it.
pub const CLIENT_REFERENCE: &str = "client_reference";

/// A message to send.
///
/// `idempotency_key` is chosen by the caller and stays the same across retries of the same
/// message, so a retried send never produces a second message where the provider supports
/// idempotency, and the gateway can dedupe its own outbox where it does not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The caller's key for this message, stable across retries.
    pub idempotency_key: String,
    /// The recipient.
    pub to: Address,
    /// The sender, when the channel has several (a number, a Messaging Service); the channel's
    /// default sender when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Address>,
    /// The body.
    pub content: Content,
    /// The provider id of the message this one replies to (WhatsApp context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// A message tag that extends the window where the channel has them (Messenger
    /// `HUMAN_AGENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Provider extras passed through to the request.
    #[serde(default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

impl OutboundMessage {
    /// A message with no optional fields.
    pub fn new(idempotency_key: impl Into<String>, to: Address, content: Content) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            to,
            from: None,
            content,
            reply_to: None,
            tag: None,
            extensions: Extensions::new(),
        }
    }
}

/// The provider's acceptance of a send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The provider's id of the new message; statuses refer to it.
    pub provider_message_id: String,
    /// The status the provider reported in its answer.
    pub status: DeliveryStatus,
    /// Provider extras (segments, price).
    #[serde(default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

impl SendReceipt {
    /// A receipt with no extras.
    pub fn new(provider_message_id: impl Into<String>, status: DeliveryStatus) -> Self {
        Self {
            provider_message_id: provider_message_id.into(),
            status,
            extensions: Extensions::new(),
        }
    }
}
