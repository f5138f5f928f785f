//! Status callbacks: Twilio's message statuses onto the core [`DeliveryStatus`] machine.

use switchboard_core::{
    ConnectorError, Consent, DeliveryStatus, InboundEvent, ProviderError, StatusUpdate,
};

use super::address;
use super::errors::{error_class, known};
use super::params::Params;

/// Twilio's status word → the core status, and whether the mapping keeps all of its meaning
/// (when it does not, the raw `MessageStatus` stays in the event's extensions).
///
/// | Twilio | core | |
/// |---|---|---|
/// | `accepted` | accepted | a Messaging Service took it |
/// | `scheduled` | accepted | lossy: waiting for `SendAt` |
/// | `queued` | queued | |
/// | `sending` | queued | lossy: being handed to the carrier |
/// | `sent` | sent | |
/// | `partially_delivered` | sent | lossy: delivery not proven for the whole message |
/// | `delivered` | delivered | |
/// | `read` | read | WhatsApp read receipt |
/// | `undelivered` | undelivered | |
/// | `failed` | failed | |
/// | `canceled` | failed | lossy: a scheduled message canceled before sending |
/// | anything else | unknown | never changes a merged state |
pub(super) fn map_status(word: &str) -> (DeliveryStatus, bool) {
    match word {
        "accepted" => (DeliveryStatus::Accepted, true),
        "scheduled" => (DeliveryStatus::Accepted, false),
        "queued" => (DeliveryStatus::Queued, true),
        "sending" => (DeliveryStatus::Queued, false),
        "sent" => (DeliveryStatus::Sent, true),
        "partially_delivered" => (DeliveryStatus::Sent, false),
        "delivered" => (DeliveryStatus::Delivered, true),
        "read" => (DeliveryStatus::Read, true),
        "undelivered" => (DeliveryStatus::Undelivered, true),
        "failed" => (DeliveryStatus::Failed, true),
        "canceled" => (DeliveryStatus::Failed, false),
        other => (DeliveryStatus::Unknown(other.to_owned()), false),
    }
}

/// The parameters a status event represents in its normalized fields.
const CONSUMED: &[&str] = &[
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "SmsStatus",
    "To",
    "ApiVersion",
];

/// The events of a status callback: the status, and an opt-out when Twilio reports 21610
/// (the recipient had unsubscribed), as courier does.
pub(super) fn events(params: &Params) -> Result<Vec<InboundEvent>, ConnectorError> {
    let sid = params
        .first_of(&["MessageSid", "SmsSid", "SmsMessageSid"])
        .ok_or_else(|| ConnectorError::malformed("status callback without MessageSid"))?;
    let word = params
        .first_of(&["MessageStatus", "SmsStatus"])
        .ok_or_else(|| ConnectorError::malformed("status callback without MessageStatus"))?;
    let (status, lossless) = map_status(word.trim());
    let recipient = params.non_empty("To").map(address::parse);

    let code = params
        .non_empty("ErrorCode")
        .map(str::trim)
        .filter(|code| *code != "0");
    let detail = params.first_of(&["ChannelStatusMessage", "ErrorMessage"]);
    let error = match code {
        Some(code) => {
            let message = match (detail, known(code)) {
                (Some(detail), _) => detail.to_owned(),
                (None, Some((_, text))) => text.to_owned(),
                (None, None) => format!("Twilio error {code}"),
            };
            Some(ProviderError::new(error_class(Some(code), None), message).with_code(code))
        }
        None if word == "canceled" => Some(ProviderError::new(
            switchboard_core::ErrorClass::Permanent,
            "the message was canceled before it was sent",
        )),
        None => None,
    };
    let extensions = params.extensions(|name| {
        CONSUMED.contains(&name)
            || (name == "MessageStatus" && lossless)
            || (code.is_some() && name == "ErrorCode")
    });

    let opted_out = code == Some("21610");
    let mut update = StatusUpdate::new(sid, status);
    update.recipient = recipient.clone();
    update.error = error;
    update.extensions = extensions;
    let mut events = vec![InboundEvent::Status(update)];
    if let (true, Some(customer)) = (opted_out, recipient) {
        events.push(InboundEvent::OptOut(Consent {
            id: sid.to_owned(),
            from: customer,
            to: params.non_empty("From").map(address::parse),
            keyword: None,
            timestamp: None,
        }));
    }
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use switchboard_core::{ErrorClass, Method, WebhookRequest};

    fn parse(body: &str) -> Vec<InboundEvent> {
        let req =
            WebhookRequest::new(Method::Post, "https://h/").with_body(body.as_bytes().to_vec());
        events(&Params::from_request(&req).unwrap()).unwrap()
    }

    #[test]
    fn every_status_of_the_issue_maps() {
        let cases = [
            ("queued", DeliveryStatus::Queued),
            ("sending", DeliveryStatus::Queued),
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("undelivered", DeliveryStatus::Undelivered),
            ("failed", DeliveryStatus::Failed),
            ("read", DeliveryStatus::Read),
            ("accepted", DeliveryStatus::Accepted),
            ("scheduled", DeliveryStatus::Accepted),
            ("canceled", DeliveryStatus::Failed),
            ("partially_delivered", DeliveryStatus::Sent),
            ("deleted", DeliveryStatus::Unknown("deleted".into())),
        ];
        for (word, expected) in cases {
            let events = parse(&format!("MessageSid=SM1&MessageStatus={word}"));
            let InboundEvent::Status(s) = &events[0] else {
                panic!("not a status")
            };
            assert_eq!(s.status, expected, "{word}");
            assert_eq!(
                s.extensions.contains_key("MessageStatus"),
                !map_status(word).1,
                "{word}: raw status kept only when lossy"
            );
        }
    }

    #[test]
    fn error_code_becomes_a_classified_error_with_its_code() {
        let events = parse("MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30007&To=%2B1555");
        let InboundEvent::Status(s) = &events[0] else {
            panic!()
        };
        let e = s.error.as_ref().unwrap();
        assert_eq!(
            (e.class, e.provider_code.as_deref()),
            (ErrorClass::Permanent, Some("30007"))
        );
        assert_eq!(events.len(), 1);

        let events =
            parse("MessageSid=SM1&MessageStatus=failed&ErrorCode=21610&To=%2B1555&From=%2B1666");
        assert!(matches!(&events[1], InboundEvent::OptOut(c) if c.from.id == "+1555"));
    }
}
