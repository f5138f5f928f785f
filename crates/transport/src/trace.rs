//! Redacted records of HTTP exchanges, and the redaction helpers they are built with.
//!
//! A [`Trace`] never holds a credential, a secret-looking query value or a full phone number:
//! values are redacted when the trace is built, so it can be logged, returned and stored as is.

use std::fmt;
use std::time::Duration;

use switchboard_core::{Header, Method};

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Name fragments that make a header or query parameter sensitive (compared in lower case).
const SENSITIVE_FRAGMENTS: &[&str] = &[
    "auth",
    "cookie",
    "token",
    "key",
    "secret",
    "passw",
    "pwd",
    "sig",
    "session",
    "credential",
    "hash",
    "jwt",
];

/// Whether a header or query parameter called `name` may carry a credential: `Authorization`,
/// `Cookie`, and any name containing `token`, `key`, `secret`, `auth`, `sig`, `session`, … .
///
/// ```
/// use switchboard_transport::is_sensitive_name;
/// assert!(is_sensitive_name("Authorization"));
/// assert!(is_sensitive_name("X-Api-Key"));
/// assert!(is_sensitive_name("access_token"));
/// assert!(!is_sensitive_name("Content-Type"));
/// ```
pub fn is_sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_FRAGMENTS.iter().any(|f| name.contains(f))
}

/// Masks phone numbers: a `+` (or its URL encoding `%2B`) followed by at least 7 digits, which
/// may be grouped by spaces, dashes, dots or parentheses. The country code's first digits and
/// the last two digits stay; at least half of the digits become `*`.
///
/// Digit runs without a `+` are left alone: they are more often ids than phone numbers.
///
/// ```
/// use switchboard_transport::mask_phone_numbers;
/// assert_eq!(mask_phone_numbers("to +14155550112"), "to +1415*****12");
/// assert_eq!(mask_phone_numbers("To=whatsapp%3A%2B14155550112"), "To=whatsapp%3A%2B1415*****12");
/// assert_eq!(mask_phone_numbers("+1 415-555-0112"), "+1 415-***-**12");
/// assert_eq!(mask_phone_numbers("order 12345678, +02:00"), "order 12345678, +02:00");
/// ```
pub fn mask_phone_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let prefix_len = if bytes[i] == b'+' {
            1
        } else if bytes[i] == b'%'
            && bytes.get(i + 1) == Some(&b'2')
            && matches!(bytes.get(i + 2), Some(b'B' | b'b'))
        {
            3
        } else {
            i += 1;
            continue;
        };
        let start = i + prefix_len;
        let (end, digits) = phone_span(bytes, start);
        if digits < 7 {
            i += 1;
            continue;
        }
        // Everything here is ASCII, so these are char boundaries.
        out.push_str(&text[copied..start]);
        let masked = (digits - 6).max(digits / 2);
        let head = digits - 2 - masked;
        let mut seen = 0;
        for &b in &bytes[start..end] {
            if b.is_ascii_digit() {
                seen += 1;
                out.push(if seen > head && seen <= head + masked {
                    '*'
                } else {
                    char::from(b)
                });
            } else {
                out.push(char::from(b));
            }
        }
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The end of a phone number starting at `start` and its digit count: digits, and up to two
/// separators (` `, `-`, `.`, `(`, `)`) between digits, as in `+1 (415) 555-0112`.
fn phone_span(bytes: &[u8], start: usize) -> (usize, usize) {
    let is_separator = |b: &u8| matches!(b, b' ' | b'-' | b'.' | b'(' | b')');
    let mut end = start;
    let mut digits = 0;
    let mut j = start;
    loop {
        match bytes.get(j) {
            Some(b) if b.is_ascii_digit() => {
                digits += 1;
                j += 1;
                end = j;
            }
            Some(b) if is_separator(b) && (digits > 0 || *b == b'(') => {
                let run = bytes[j..]
                    .iter()
                    .take(3)
                    .take_while(|b| is_separator(b))
                    .count();
                if run <= 2 && bytes.get(j + run).is_some_and(u8::is_ascii_digit) {
                    j += run;
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    (end, digits)
}

/// A URL fit for logs: the password of the user-info and the values of secret-looking query
/// parameters ([`is_sensitive_name`]) are replaced by `[REDACTED]`, and phone numbers are
/// masked. Text that is not a URL keeps only what precedes its query.
///
/// ```
/// use switchboard_transport::redact_url;
/// assert_eq!(
///     redact_url("https://u:pw@h.example/m?access_token=abc&To=%2B14155550112&x=1"),
///     "https://u:[REDACTED]@h.example/m?access_token=[REDACTED]&To=%2B1415*****12&x=1"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let base = match url.split_once('?') {
            Some((base, _)) => format!("{base}?{REDACTED}"),
            None => url.to_owned(),
        };
        return mask_phone_numbers(&base);
    };
    if parsed.password().is_some() {
        // Cannot fail: the URL has a host, since it has a password.
        let _ = parsed.set_password(Some(REDACTED));
    }
    if let Some(query) = parsed.query() {
        let redacted = redact_query(query);
        parsed.set_query(Some(&redacted));
    }
    // `Url` percent-encodes the brackets of the marker; show it plainly.
    let shown = parsed.as_str().replace("%5BREDACTED%5D", REDACTED);
    mask_phone_numbers(&shown)
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (raw_name, has_value) = match pair.split_once('=') {
                Some((name, _)) => (name, true),
                None => (pair, false),
            };
            let name: String = form_name(raw_name);
            if has_value && is_sensitive_name(&name) {
                format!("{raw_name}={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn form_name(raw: &str) -> String {
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// Headers fit for logs: values of sensitive names ([`is_sensitive_name`]) and of the names in
/// `also_redact` (e.g. a connector's custom credential header) are `[REDACTED]`; other values
/// have phone numbers masked.
pub fn redact_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    also_redact: &[&str],
) -> Vec<Header> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let secret =
                is_sensitive_name(name) || also_redact.iter().any(|n| n.eq_ignore_ascii_case(name));
            let value = if secret {
                REDACTED.to_owned()
            } else {
                mask_phone_numbers(value)
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// A redacted record of one HTTP exchange (one hop of a redirect chain, or a token request).
///
/// Built redacted: the URL through [`redact_url`], headers through [`redact_headers`] (the
/// injected credential's header is always redacted), and bodies only by size.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trace {
    /// The method.
    pub method: Method,
    /// The URL, redacted.
    pub url: String,
    /// The response status, when a response came.
    pub status: Option<u16>,
    /// From sending the request to the end of the response body (or the failure).
    pub duration: Duration,
    /// The request headers as sent, redacted.
    pub request_headers: Vec<Header>,
    /// The response headers, redacted.
    pub response_headers: Vec<Header>,
    /// The request body's size in bytes.
    pub request_body_bytes: usize,
    /// The response body's size in bytes (as far as it was read).
    pub response_body_bytes: usize,
    /// Why the exchange failed, when it did (an error's redacted text).
    pub error: Option<String>,
}

impl Trace {
    /// Logs the trace with `tracing` at debug level.
    pub fn log(&self) {
        tracing::debug!(
            target: "switchboard_transport",
            method = %self.method,
            url = %self.url,
            status = ?self.status,
            duration_ms = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            request_headers = ?self.request_headers,
            response_headers = ?self.response_headers,
            request_body_bytes = self.request_body_bytes,
            response_body_bytes = self.response_body_bytes,
            error = self.error.as_deref(),
            "http exchange"
        );
    }
}

impl fmt::Display for Trace {
    /// `POST https://host/path -> 201 in 12 ms (req 120 B, resp 340 B)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> ", self.method, self.url)?;
        match (self.status, &self.error) {
            (Some(status), _) => write!(f, "{status}")?,
            (None, Some(error)) => write!(f, "failed ({error})")?,
            (None, None) => f.write_str("no response")?,
        }
        write!(
            f,
            " in {} ms (req {} B, resp {} B)",
            self.duration.as_millis(),
            self.request_body_bytes,
            self.response_body_bytes
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    #[test]
    fn masks_phone_numbers_in_their_usual_spellings() {
        let cases = [
            ("+14155550112", "+1415*****12"),
            ("+447700900123", "+4477******23"),
            ("+1234567", "+12***67"),
            ("+123456", "+123456"),
            ("whatsapp:+14155550112", "whatsapp:+1415*****12"),
            (
                "To=%2B14155550112&From=%2b14155550199",
                "To=%2B1415*****12&From=%2b1415*****99",
            ),
            ("+1 (415) 555-0112", "+1 (415) ***-**12"),
            ("+1.415.555.0112.", "+1.415.***.**12."),
            (
                "call +14155550112 or +14155550113!",
                "call +1415*****12 or +1415*****13!",
            ),
            ("+", "+"),
            ("%2B", "%2B"),
            ("%2", "%2"),
            ("a+b", "a+b"),
            ("2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00+02:00"),
            ("ünïcödé +14155550112 ✓", "ünïcödé +1415*****12 ✓"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_phone_numbers(input), expected, "{input}");
        }
    }

    #[test]
    fn redacts_secret_query_values_and_passwords() {
        assert_eq!(
            redact_url("https://graph.example.com/v1/x?access_token=EAAB&fields=a,b"),
            "https://graph.example.com/v1/x?access_token=[REDACTED]&fields=a,b"
        );
        assert_eq!(
            redact_url(
                "https://bucket.s3.example.com/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Expires=60"
            ),
            "https://bucket.s3.example.com/o?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-Expires=60"
        );
        assert_eq!(
            redact_url("https://AC1:hunter2@api.example.com/a?flag&api%5Fkey=k"),
            "https://AC1:[REDACTED]@api.example.com/a?flag&api%5Fkey=[REDACTED]"
        );
        assert_eq!(
            redact_url("https://h.example/Accounts/+14155550112/x"),
            "https://h.example/Accounts/+1415*****12/x"
        );
        assert_eq!(
            redact_url("not a url?token=abc&to=+14155550112"),
            "not a url?[REDACTED]"
        );
        assert_eq!(redact_url("https://h.example/p"), "https://h.example/p");
    }

    #[test]
    fn redacts_sensitive_and_named_headers() {
        let headers = redact_headers(
            [
                ("Authorization", "Bearer abc"),
                ("Cookie", "sid=1"),
                ("X-Api-Key", "k"),
                ("X-Custom-Cred", "v"),
                ("Content-Type", "application/json"),
                ("X-To", "+14155550112"),
            ],
            &["x-custom-cred"],
        );
        let shown = format!("{headers:?}");
        for secret in ["abc", "sid=1", "\"k\"", "\"v\"", "+14155550112"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("application/json"));
        assert!(shown.contains("+1415*****12"));
    }

    #[test]
    fn trace_display_is_one_line() {
        let trace = Trace {
            method: Method::Post,
            url: "https://h.example/m".into(),
            status: Some(201),
            duration: Duration::from_millis(12),
            request_headers: vec![],
            response_headers: vec![],
            request_body_bytes: 120,
            response_body_bytes: 340,
            error: None,
        };
        assert_eq!(
            trace.to_string(),
            "POST https://h.example/m -> 201 in 12 ms (req 120 B, resp 340 B)"
        );
    }
}
