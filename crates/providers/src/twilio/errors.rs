//! Twilio error codes and HTTP statuses, classified into the core [`ErrorClass`] taxonomy.

use switchboard_core::ErrorClass;

/// Twilio error codes with their class and a short description, for both the REST API's
/// answers and the `ErrorCode` of status callbacks.
///
/// Sources: the issue's mapping, `shared/reference/providers.md` §1.7 (Twilio error pages and
/// courier's `handlers/twiml/errors.json`), and twilio.com/docs/api/errors/{code}. Codes not
/// listed fall back on the HTTP status (see [`error_class`]).
pub const ERROR_CODES: &[(&str, ErrorClass, &str)] = &[
    // Authentication and account.
    ("20003", ErrorClass::Auth, "authentication failed"),
    ("20005", ErrorClass::Auth, "account not active"),
    ("30002", ErrorClass::Auth, "account suspended"),
    // Rate limits.
    ("20429", ErrorClass::Throttled, "too many requests"),
    (
        "14107",
        ErrorClass::Throttled,
        "SMS send rate limit exceeded",
    ),
    (
        "63017",
        ErrorClass::Throttled,
        "account sending rate limit exceeded",
    ),
    (
        "63018",
        ErrorClass::Throttled,
        "rate limit exceeded for the channel",
    ),
    ("30001", ErrorClass::Throttled, "queue overflow"),
    // Consent and the WhatsApp window.
    (
        "21610",
        ErrorClass::OptedOut,
        "attempt to send to an unsubscribed recipient",
    ),
    (
        "63016",
        ErrorClass::WindowClosed,
        "outside the allowed window: send a template",
    ),
    // Recipients.
    (
        "21211",
        ErrorClass::InvalidRecipient,
        "invalid 'To' phone number",
    ),
    (
        "21612",
        ErrorClass::InvalidRecipient,
        "'To' number not reachable on this channel",
    ),
    (
        "21614",
        ErrorClass::InvalidRecipient,
        "'To' number is not a valid mobile number",
    ),
    (
        "63024",
        ErrorClass::InvalidRecipient,
        "invalid message recipient",
    ),
    // Templates (Content API).
    (
        "21655",
        ErrorClass::TemplateInvalid,
        "the ContentSid is invalid",
    ),
    (
        "21656",
        ErrorClass::TemplateInvalid,
        "the ContentVariables parameter is invalid",
    ),
    (
        "63028",
        ErrorClass::TemplateInvalid,
        "number of template parameters does not match",
    ),
    // Permanent refusals.
    ("20404", ErrorClass::Permanent, "resource not found"),
    (
        "21408",
        ErrorClass::Permanent,
        "permission to send to this region is not enabled",
    ),
    (
        "21617",
        ErrorClass::Permanent,
        "message body exceeds the 1600 character limit",
    ),
    (
        "63032",
        ErrorClass::Permanent,
        "WhatsApp limitation: cannot send to this user",
    ),
    // Delivery errors reported on status callbacks (kept with their code).
    (
        "30003",
        ErrorClass::Retryable,
        "unreachable destination handset",
    ),
    ("30004", ErrorClass::Permanent, "message blocked"),
    (
        "30005",
        ErrorClass::InvalidRecipient,
        "unknown destination handset",
    ),
    (
        "30006",
        ErrorClass::InvalidRecipient,
        "landline or unreachable carrier",
    ),
    (
        "30007",
        ErrorClass::Permanent,
        "message filtered by the carrier",
    ),
    ("30008", ErrorClass::Retryable, "unknown delivery error"),
];

/// The class and description of a known Twilio error code.
pub(super) fn known(code: &str) -> Option<(ErrorClass, &'static str)> {
    ERROR_CODES
        .iter()
        .find(|(known, _, _)| *known == code)
        .map(|(_, class, text)| (*class, *text))
}

/// Classifies a Twilio error from its code and, for REST answers, the HTTP status.
///
/// HTTP 5xx is always [`ErrorClass::Retryable`] and HTTP 429 always [`ErrorClass::Throttled`],
/// whatever the body says (a gateway in front of Twilio can answer with a stale body). Otherwise
/// a known code decides; then the HTTP status (401/403 auth, 408 retryable, other 4xx
/// permanent); a status callback's unknown code is permanent.
///
/// ```
/// use switchboard_core::ErrorClass;
/// use switchboard_providers::twilio::error_class;
/// assert_eq!(error_class(Some("21610"), Some(400)), ErrorClass::OptedOut);
/// assert_eq!(error_class(Some("21610"), Some(503)), ErrorClass::Retryable);
/// assert_eq!(error_class(None, Some(429)), ErrorClass::Throttled);
/// assert_eq!(error_class(Some("30007"), None), ErrorClass::Permanent);
/// ```
pub fn error_class(code: Option<&str>, http_status: Option<u16>) -> ErrorClass {
    match http_status {
        Some(500..=599) => return ErrorClass::Retryable,
        Some(429) => return ErrorClass::Throttled,
        _ => {}
    }
    if let Some((class, _)) = code.and_then(known) {
        return class;
    }
    match http_status {
        Some(401 | 403) => ErrorClass::Auth,
        Some(408) => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    /// Every code of the issue's mapping, with the class it must get.
    #[test]
    fn mapping_table_of_the_issue() {
        let table = [
            ("21610", ErrorClass::OptedOut),
            ("63016", ErrorClass::WindowClosed),
            ("20429", ErrorClass::Throttled),
            ("14107", ErrorClass::Throttled),
            ("63018", ErrorClass::Throttled),
            ("21211", ErrorClass::InvalidRecipient),
            ("21614", ErrorClass::InvalidRecipient),
            ("63024", ErrorClass::InvalidRecipient),
            ("20003", ErrorClass::Auth),
        ];
        for (code, class) in table {
            assert_eq!(error_class(Some(code), Some(400)), class, "code {code}");
            assert_eq!(
                error_class(Some(code), None),
                class,
                "code {code} on a status"
            );
        }
        // Delivery errors keep a class and, at the call sites, their code.
        for code in ["30003", "30004", "30005", "30006", "30007", "30008"] {
            assert!(known(code).is_some(), "delivery error {code} is listed");
        }
        assert_eq!(error_class(Some("30007"), None), ErrorClass::Permanent);
        assert_eq!(error_class(Some("30003"), None), ErrorClass::Retryable);
        assert_eq!(
            error_class(Some("30005"), None),
            ErrorClass::InvalidRecipient
        );
    }

    #[test]
    fn http_status_decides_when_the_code_does_not() {
        assert_eq!(error_class(None, Some(429)), ErrorClass::Throttled);
        assert_eq!(error_class(Some("21211"), Some(429)), ErrorClass::Throttled);
        for status in [500, 502, 503, 504] {
            assert_eq!(
                error_class(Some("21610"), Some(status)),
                ErrorClass::Retryable
            );
            assert_eq!(error_class(None, Some(status)), ErrorClass::Retryable);
        }
        assert_eq!(error_class(None, Some(401)), ErrorClass::Auth);
        assert_eq!(error_class(Some("99999"), Some(403)), ErrorClass::Auth);
        assert_eq!(error_class(None, Some(408)), ErrorClass::Retryable);
        assert_eq!(error_class(Some("21602"), Some(400)), ErrorClass::Permanent);
        assert_eq!(error_class(Some("99999"), None), ErrorClass::Permanent);
    }

    #[test]
    fn table_has_no_duplicate_codes() {
        let mut codes: Vec<_> = ERROR_CODES.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        let len = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), len);
    }
}
