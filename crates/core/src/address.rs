//! Who a message is from or to, on which channel.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The messaging channel an address lives on.
///
/// Serialized as a lowercase string; channels Switchboard has no name for (a plugin's) travel as
/// [`Channel::Other`] with their own name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum Channel {
    /// WhatsApp (Cloud API or through a BSP such as Twilio, Sinch, Kaleyra).
    WhatsApp,
    /// SMS and MMS.
    Sms,
    /// Facebook Messenger.
    Messenger,
    /// Instagram direct messages.
    Instagram,
    /// RCS business messaging.
    Rcs,
    /// Any other channel, by its lowercase name.
    Other(String),
}

impl Channel {
    /// The stable lowercase name used in JSON and configuration.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::WhatsApp => "whatsapp",
            Channel::Sms => "sms",
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::Rcs => "rcs",
            Channel::Other(name) => name,
        }
    }
}

impl From<String> for Channel {
    fn from(name: String) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "whatsapp" => Channel::WhatsApp,
            "sms" => Channel::Sms,
            "messenger" => Channel::Messenger,
            "instagram" => Channel::Instagram,
            "rcs" => Channel::Rcs,
            other => Channel::Other(other.to_owned()),
        }
    }
}

impl From<Channel> for String {
    fn from(channel: Channel) -> Self {
        channel.as_str().to_owned()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of identifier [`Address::id`] holds.
///
/// WhatsApp users may be known only by a business-scoped user id, with no phone number at all;
/// Messenger users only by a page-scoped id. Code must not parse `id` as a phone number unless
/// the kind says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressKind {
    /// An E.164 phone number such as `+14155550100`.
    Phone,
    /// A WhatsApp id (`wa_id`), usually but not always the digits of a phone number.
    #[serde(rename = "whatsapp_id")]
    WhatsAppId,
    /// A business-scoped user id (WhatsApp usernames, Twilio `whatsapp:US.…`).
    BusinessScopedUserId,
    /// A Messenger or Instagram page-scoped id.
    PageScopedId,
    /// An SMS short code.
    ShortCode,
    /// An alphanumeric SMS sender id.
    Alphanumeric,
    /// A provider account or number identifier (a Meta phone number id, a Twilio Messaging
    /// Service SID) used as the business side of a conversation.
    ProviderAccount,
    /// Anything else the provider uses.
    Other,
}

/// A participant on a channel: channel, identifier kind and the provider-native identifier.
///
/// ```
/// use switchboard_core::{Address, AddressKind, Channel};
/// let user = Address::new(Channel::WhatsApp, AddressKind::BusinessScopedUserId, "US.13491208655302741918");
/// assert_eq!(user.phone_number(), None);
/// let sms = Address::phone(Channel::Sms, "+14155550100");
/// assert_eq!(sms.phone_number(), Some("+14155550100"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    /// The channel this identifier belongs to.
    pub channel: Channel,
    /// What the identifier is.
    pub kind: AddressKind,
    /// The provider-native identifier, exactly as the provider spells it (without channel
    /// prefixes such as Twilio's `whatsapp:`).
    pub id: String,
}

impl Address {
    /// An address of any kind.
    pub fn new(channel: Channel, kind: AddressKind, id: impl Into<String>) -> Self {
        Self {
            channel,
            kind,
            id: id.into(),
        }
    }

    /// A phone-number address (E.164).
    pub fn phone(channel: Channel, e164: impl Into<String>) -> Self {
        Self::new(channel, AddressKind::Phone, e164)
    }

    /// The phone number, when this address is known to be one.
    pub fn phone_number(&self) -> Option<&str> {
        (self.kind == AddressKind::Phone).then_some(self.id.as_str())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_and_unknown_names_survive() {
        for channel in [
            Channel::WhatsApp,
            Channel::Sms,
            Channel::Messenger,
            Channel::Rcs,
        ] {
            let json = serde_json::to_string(&channel).unwrap();
            assert_eq!(serde_json::from_str::<Channel>(&json).unwrap(), channel);
        }
        let line: Channel = serde_json::from_str("\"LINE\"").unwrap();
        assert_eq!(line, Channel::Other("line".into()));
        assert_eq!(serde_json::to_string(&line).unwrap(), "\"line\"");
    }

    #[test]
    fn address_json_shape_is_stable() {
        let a = Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, "16315551234");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"channel": "whatsapp", "kind": "whatsapp_id", "id": "16315551234"})
        );
    }
}
