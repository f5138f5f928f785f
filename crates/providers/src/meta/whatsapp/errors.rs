//! WhatsApp Cloud API error codes into the error taxonomy.
//!
//! | Graph `code` | Class | Meaning |
//! |---|---|---|
//! | 131047 | window closed | re-engagement: more than 24 h since the customer last wrote |
//! | 130429, 131056, 4, 80007, 131048, 133016 | throttled | throughput, pair rate, app and WABA rate limits, spam rate limit, registration limit |
//! | 131026, 131021, 131030, 131062 | invalid recipient | undeliverable, recipient is the sender, not in the test allow-list, recipient kind not supported |
//! | 131050 | opted out | the customer stopped marketing messages |
//! | 190, 0, 3, 10, 200–299, 131005 | auth | token expired or invalid, permissions |
//! | 132000–132999 | template invalid | parameter count, missing, paused, disabled, … (132000, 132001, 132012, …) |
//! | 100, 131008, 131009 | permanent | invalid request or parameter |
//! | 131000, 131016, 131053, 131057, 1, 2 | retryable | unknown, service unavailable, media fetch, maintenance |
//! | 131051 | unsupported | message type not supported |
//! | 368, 130472, 130497, 131031, 131042, 131049, 135000 | permanent | integrity, experiment, country, locked, payment, ecosystem engagement, generic |
//!
//! Codes not listed fall back on the HTTP status (see [`crate::meta`]). Sources: Meta's error
//! code page, pywa `errors.py`, courier `WACThrottlingErrorCodes` / `WACRetryableErrorCodes`.

use switchboard_core::ErrorClass;

/// The class of a WhatsApp Graph error code; `None` for codes not in the table.
pub(crate) fn classify(code: i64, _subcode: Option<i64>) -> Option<ErrorClass> {
    Some(match code {
        131_047 => ErrorClass::WindowClosed,
        130_429 | 131_056 | 4 | 80_007 | 131_048 | 133_016 => ErrorClass::Throttled,
        131_026 | 131_021 | 131_030 | 131_062 => ErrorClass::InvalidRecipient,
        131_050 => ErrorClass::OptedOut,
        190 | 0 | 3 | 10 | 200..=299 | 131_005 => ErrorClass::Auth,
        132_000..=132_999 => ErrorClass::TemplateInvalid,
        100 | 131_008 | 131_009 => ErrorClass::Permanent,
        131_000 | 131_016 | 131_053 | 131_057 | 1 | 2 => ErrorClass::Retryable,
        131_051 => ErrorClass::Unsupported,
        368 | 130_472 | 130_497 | 131_031 | 131_042 | 131_049 | 135_000 => ErrorClass::Permanent,
        _ => return None,
    })
}
