//! Twilio's address strings (`+14155550100`, `whatsapp:+14155550100`, `whatsapp:US.1234`,
//! `MyBrand`, `20202`) to and from core [`Address`]es.

use switchboard_core::{Address, AddressKind, Channel, ConnectorError};

/// The longest all-digit string read as a short code (short codes have 3 to 8 digits).
const MAX_SHORT_CODE_DIGITS: usize = 8;

/// Reads a Twilio `From`/`To` value.
///
/// - `whatsapp:+…` → WhatsApp phone; `whatsapp:US.…` → WhatsApp business-scoped user id;
///   `whatsapp:<digits>` → WhatsApp id; anything else after `whatsapp:` → WhatsApp, other.
/// - another `<channel>:` prefix (`messenger:`, `rcs:`) → that channel, phone when the rest is
///   E.164, other otherwise.
/// - no prefix (SMS/MMS): `+<digits>` → phone, up to 8 digits → short code, a value with a
///   letter → alphanumeric sender id, anything else → other.
pub(super) fn parse(raw: &str) -> Address {
    let raw = raw.trim();
    match split_prefix(raw) {
        Some(("whatsapp", id)) => {
            let kind = if is_e164(id) {
                AddressKind::Phone
            } else if is_business_scoped(id) {
                AddressKind::BusinessScopedUserId
            } else if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                AddressKind::WhatsAppId
            } else {
                AddressKind::Other
            };
            Address::new(Channel::WhatsApp, kind, id)
        }
        Some((prefix, id)) => {
            let channel = Channel::from(prefix.to_owned());
            let kind = match channel {
                Channel::Messenger if !is_e164(id) => AddressKind::PageScopedId,
                _ if is_e164(id) => AddressKind::Phone,
                _ => AddressKind::Other,
            };
            Address::new(channel, kind, id)
        }
        None => {
            let kind = if is_e164(raw) {
                AddressKind::Phone
            } else if !raw.is_empty()
                && raw.len() <= MAX_SHORT_CODE_DIGITS
                && raw.bytes().all(|b| b.is_ascii_digit())
            {
                AddressKind::ShortCode
            } else if raw.chars().any(char::is_alphabetic) {
                AddressKind::Alphanumeric
            } else {
                AddressKind::Other
            };
            Address::new(Channel::Sms, kind, raw)
        }
    }
}

/// `whatsapp:+1…` → `("whatsapp", "+1…")`: a lowercase ASCII word before the first colon.
fn split_prefix(raw: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = raw.split_once(':')?;
    let is_word = !prefix.is_empty()
        && prefix.len() <= 16
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    is_word.then_some((prefix, rest))
}

/// `+` followed by 1 to 15 digits.
fn is_e164(id: &str) -> bool {
    id.strip_prefix('+').is_some_and(|digits| {
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A WhatsApp business-scoped user id as Twilio spells it: a two-letter country code, a dot and
/// an alphanumeric id (`US.13491208655302741918`).
fn is_business_scoped(id: &str) -> bool {
    match id.split_once('.') {
        Some((cc, rest)) => {
            cc.len() == 2
                && cc.bytes().all(|b| b.is_ascii_uppercase())
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// The channel a send goes out on, from its recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SendChannel {
    /// WhatsApp: addresses carry the `whatsapp:` prefix.
    WhatsApp,
    /// SMS/MMS: plain addresses.
    Sms,
}

impl SendChannel {
    /// The channel of a recipient; other channels are not sent through this connector.
    pub(super) fn of(to: &Address) -> Result<Self, ConnectorError> {
        match to.channel {
            Channel::WhatsApp => Ok(SendChannel::WhatsApp),
            Channel::Sms => Ok(SendChannel::Sms),
            ref other => Err(ConnectorError::unsupported(format!(
                "sending on channel `{other}` through Twilio (WhatsApp and SMS only)"
            ))),
        }
    }
}

/// Writes a recipient as Twilio's `To`.
pub(super) fn recipient(to: &Address, channel: SendChannel) -> Result<String, ConnectorError> {
    let id = strip_channel_prefix(&to.id);
    if id.is_empty() {
        return Err(ConnectorError::unsupported("a recipient with an empty id"));
    }
    match (channel, to.kind) {
        (SendChannel::WhatsApp, AddressKind::WhatsAppId) if !id.starts_with('+') => {
            Ok(format!("whatsapp:+{id}"))
        }
        (
            SendChannel::WhatsApp,
            AddressKind::Phone
            | AddressKind::WhatsAppId
            | AddressKind::BusinessScopedUserId
            | AddressKind::Other,
        ) => Ok(format!("whatsapp:{id}")),
        (SendChannel::Sms, AddressKind::Phone | AddressKind::Other) => Ok(id.to_owned()),
        (_, kind) => Err(ConnectorError::unsupported(format!(
            "sending to a {kind:?} address on {}",
            to.channel
        ))),
    }
}

/// Writes a sender (a setting or the message's `from`) as Twilio's `From` for `channel`: the
/// `whatsapp:` prefix is added for WhatsApp and removed for SMS, so one configured number serves
/// both.
pub(super) fn sender(raw: &str, channel: SendChannel) -> String {
    let id = strip_channel_prefix(raw.trim());
    match channel {
        SendChannel::WhatsApp => format!("whatsapp:{id}"),
        SendChannel::Sms => id.to_owned(),
    }
}

fn strip_channel_prefix(id: &str) -> &str {
    id.strip_prefix("whatsapp:").unwrap_or(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    fn kind(raw: &str) -> (Channel, AddressKind, String) {
        let a = parse(raw);
        (a.channel, a.kind, a.id)
    }

    #[test]
    fn reads_every_twilio_address_shape() {
        use AddressKind::*;
        let cases = [
            (
                "whatsapp:+14155238886",
                Channel::WhatsApp,
                Phone,
                "+14155238886",
            ),
            (
                "whatsapp:US.13491208655302741918",
                Channel::WhatsApp,
                BusinessScopedUserId,
                "US.13491208655302741918",
            ),
            (
                "whatsapp:14155238886",
                Channel::WhatsApp,
                WhatsAppId,
                "14155238886",
            ),
            ("whatsapp:foo_bar", Channel::WhatsApp, Other, "foo_bar"),
            ("+14155238886", Channel::Sms, Phone, "+14155238886"),
            ("20202", Channel::Sms, ShortCode, "20202"),
            ("MyBrand", Channel::Sms, Alphanumeric, "MyBrand"),
            ("123456789012", Channel::Sms, Other, "123456789012"),
            (
                "messenger:1234567890",
                Channel::Messenger,
                PageScopedId,
                "1234567890",
            ),
            ("rcs:+14155238886", Channel::Rcs, Phone, "+14155238886"),
            ("", Channel::Sms, Other, ""),
        ];
        for (raw, channel, k, id) in cases {
            assert_eq!(kind(raw), (channel, k, id.to_owned()), "{raw}");
        }
    }

    #[test]
    fn writes_recipients_and_senders() {
        let wa = Address::phone(Channel::WhatsApp, "+14155550100");
        assert_eq!(
            recipient(&wa, SendChannel::WhatsApp).unwrap(),
            "whatsapp:+14155550100"
        );
        let waid = Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, "14155550100");
        assert_eq!(
            recipient(&waid, SendChannel::WhatsApp).unwrap(),
            "whatsapp:+14155550100"
        );
        let bsuid = Address::new(
            Channel::WhatsApp,
            AddressKind::BusinessScopedUserId,
            "US.1234",
        );
        assert_eq!(
            recipient(&bsuid, SendChannel::WhatsApp).unwrap(),
            "whatsapp:US.1234"
        );
        let sms = Address::phone(Channel::Sms, "+14155550100");
        assert_eq!(recipient(&sms, SendChannel::Sms).unwrap(), "+14155550100");
        let short = Address::new(Channel::Sms, AddressKind::ShortCode, "20202");
        assert!(recipient(&short, SendChannel::Sms).is_err());
        assert_eq!(sender("whatsapp:+1415", SendChannel::Sms), "+1415");
        assert_eq!(sender("+1415", SendChannel::WhatsApp), "whatsapp:+1415");
        assert_eq!(
            sender("whatsapp:+1415", SendChannel::WhatsApp),
            "whatsapp:+1415"
        );
    }
}
