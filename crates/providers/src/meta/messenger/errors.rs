//! Messenger Send API error codes into the error taxonomy.
//!
//! | Graph `code` (`error_subcode`) | Class | Meaning |
//! |---|---|---|
//! | 10, any code with subcode 2018278 | window closed | sent outside the allowed window |
//! | 551 | invalid recipient | this person isn't available right now |
//! | 100 with subcode 2018001 | invalid recipient | no matching user found |
//! | 613, 4, 17, 32 | throttled | rate limits (API calls, app, user, page) |
//! | 190, 102, 200–299 | auth | invalid or expired token, permissions (230: `pages_messaging`) |
//! | 1, 2 | retryable | unknown error, temporary service issue |
//! | 100, 368, 10900, 10903, 10904, 2022 | permanent | invalid parameter, abuse, activity already replied, page messaging disabled |
//!
//! Codes not listed fall back on the HTTP status (see [`crate::meta`]). Source: Meta's
//! Messenger error-code page and Page Messages reference.

use switchboard_core::ErrorClass;

/// The subcode of "This message is sent outside of allowed window".
const OUTSIDE_WINDOW: i64 = 2_018_278;
/// The subcode of "No matching user found".
const NO_MATCHING_USER: i64 = 2_018_001;

/// The class of a Messenger Graph error; `None` for codes not in the table.
pub(crate) fn classify(code: i64, subcode: Option<i64>) -> Option<ErrorClass> {
    if subcode == Some(OUTSIDE_WINDOW) {
        return Some(ErrorClass::WindowClosed);
    }
    Some(match (code, subcode) {
        (10, _) => ErrorClass::WindowClosed,
        (551, _) | (100, Some(NO_MATCHING_USER)) => ErrorClass::InvalidRecipient,
        (613 | 4 | 17 | 32, _) => ErrorClass::Throttled,
        (190 | 102 | 200..=299, _) => ErrorClass::Auth,
        (1 | 2, _) => ErrorClass::Retryable,
        (100 | 368 | 10_900 | 10_903 | 10_904 | 2022, _) => ErrorClass::Permanent,
        _ => return None,
    })
}
