//! What a connector reports from a webhook or a session: messages, statuses, consent, reactions.

use serde::{Deserialize, Serialize};

use crate::{Address, Content, DeliveryStatus, Extensions, ProviderError, Timestamp};

/// One normalized event from a provider.
///
/// JSON: an object tagged by `"type"`: `message`, `status`, `opt_out`, `opt_in`, `reaction`.
/// Every event carries the provider's id, so ingest dedupes on [`InboundEvent::dedupe_key`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "messages are the common case; boxing them would allocate for every event"
)]
pub enum InboundEvent {
    /// A message from a customer.
    Message(InboundMessage),
    /// A delivery status of a message we sent.
    Status(StatusUpdate),
    /// The customer asked to receive no more messages.
    OptOut(Consent),
    /// The customer asked to receive messages again.
    OptIn(Consent),
    /// The customer reacted to a message (or removed a reaction).
    Reaction(Reaction),
    /// Every message sent to a recipient up to an instant reached a status (Messenger's
    /// delivery and read watermarks). It names no message: the host applies it to the messages
    /// it sent to `recipient` at or before `up_to`.
    Watermark(StatusWatermark),
}

/// The kind of an event, as used in dedupe keys and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// [`InboundEvent::Message`].
    Message,
    /// [`InboundEvent::Status`].
    Status,
    /// [`InboundEvent::OptOut`].
    OptOut,
    /// [`InboundEvent::OptIn`].
    OptIn,
    /// [`InboundEvent::Reaction`].
    Reaction,
    /// [`InboundEvent::Watermark`].
    Watermark,
}

impl EventKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Status => "status",
            EventKind::OptOut => "opt_out",
            EventKind::OptIn => "opt_in",
            EventKind::Reaction => "reaction",
            EventKind::Watermark => "watermark",
        }
    }
}

/// What ingest deduplicates on, within one channel: a redelivered webhook produces the same key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DedupeKey {
    /// The event kind.
    pub kind: EventKind,
    /// The provider's id of the event; for statuses, the message id and the status.
    pub provider_id: String,
}

impl InboundEvent {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            InboundEvent::Message(_) => EventKind::Message,
            InboundEvent::Status(_) => EventKind::Status,
            InboundEvent::OptOut(_) => EventKind::OptOut,
            InboundEvent::OptIn(_) => EventKind::OptIn,
            InboundEvent::Reaction(_) => EventKind::Reaction,
            InboundEvent::Watermark(_) => EventKind::Watermark,
        }
    }

    /// The key that identifies this event across redeliveries.
    ///
    /// ```
    /// use switchboard_core::{DeliveryStatus, InboundEvent, StatusUpdate};
    /// let e = InboundEvent::Status(StatusUpdate::new("wamid.1", DeliveryStatus::Read));
    /// assert_eq!(e.dedupe_key().provider_id, "wamid.1/read");
    /// ```
    pub fn dedupe_key(&self) -> DedupeKey {
        let provider_id = match self {
            InboundEvent::Message(m) => m.id.clone(),
            InboundEvent::Status(s) => format!("{}/{}", s.message_id, s.status),
            InboundEvent::OptOut(c) | InboundEvent::OptIn(c) => c.id.clone(),
            InboundEvent::Reaction(r) => r.id.clone(),
            InboundEvent::Watermark(w) => {
                format!("{}/{}/{}", w.recipient, w.status, w.up_to.unix_millis())
            }
        };
        DedupeKey {
            kind: self.kind(),
            provider_id,
        }
    }
}

/// A message from a customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's message id (`wamid.…`, `SM…`).
    pub id: String,
    /// The customer.
    pub from: Address,
    /// The business side: our number, page or account.
    pub to: Address,
    /// When the provider says the customer sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The body.
    pub content: Content,
    /// The customer's display name, when the channel shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    /// The provider id of the message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Provider extras: referral (click-to-chat ad) data, raw fields the model has no place for.
    #[serde(default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// A delivery status for a message we sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The provider id of the message the status is about.
    pub message_id: String,
    /// The status.
    pub status: DeliveryStatus,
    /// The recipient, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Address>,
    /// When the status happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The provider's error for failed or undelivered messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProviderError>,
    /// Provider extras: pricing, conversation ids.
    #[serde(default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

impl StatusUpdate {
    /// A status with no optional fields.
    pub fn new(message_id: impl Into<String>, status: DeliveryStatus) -> Self {
        Self {
            message_id: message_id.into(),
            status,
            recipient: None,
            timestamp: None,
            error: None,
            extensions: Extensions::new(),
        }
    }
}

/// An opt-out or opt-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    /// The provider id of the message or event that carried it.
    pub id: String,
    /// The customer.
    pub from: Address,
    /// The business side, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Address>,
    /// The keyword that triggered it (`STOP`, `START`), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// A reaction to a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    /// The provider id of the reaction event.
    pub id: String,
    /// The customer.
    pub from: Address,
    /// The business side.
    pub to: Address,
    /// The provider id of the message reacted to.
    pub message_id: String,
    /// The emoji; `None` when the reaction was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// A status reached by every message sent to `recipient` at or before `up_to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusWatermark {
    /// The customer the messages went to.
    pub recipient: Address,
    /// The business side that sent them.
    pub sender: Address,
    /// `delivered` or `read`.
    pub status: DeliveryStatus,
    /// Messages sent at or before this instant have reached `status`.
    pub up_to: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AddressKind, Channel};
    use serde_json::json;

    #[test]
    fn inbound_message_json_shape_is_stable() {
        let event = InboundEvent::Message(InboundMessage {
            id: "wamid.1".into(),
            from: Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, "16315551234"),
            to: Address::new(Channel::WhatsApp, AddressKind::ProviderAccount, "123456123"),
            timestamp: Some(Timestamp::from_unix_seconds(1_700_000_000)),
            content: Content::text("hi"),
            profile_name: Some("Kerry".into()),
            reply_to: None,
            extensions: Extensions::new(),
        });
        let expected = json!({
            "type": "message",
            "id": "wamid.1",
            "from": {"channel": "whatsapp", "kind": "whatsapp_id", "id": "16315551234"},
            "to": {"channel": "whatsapp", "kind": "provider_account", "id": "123456123"},
            "timestamp": "2023-11-14T22:13:20Z",
            "content": {"type": "text", "text": "hi"},
            "profile_name": "Kerry"
        });
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<InboundEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn dedupe_keys_separate_kinds_and_statuses() {
        let sent = InboundEvent::Status(StatusUpdate::new("m1", DeliveryStatus::Sent));
        let read = InboundEvent::Status(StatusUpdate::new("m1", DeliveryStatus::Read));
        assert_ne!(sent.dedupe_key(), read.dedupe_key());
        assert_eq!(sent.dedupe_key(), sent.clone().dedupe_key());
    }
}
