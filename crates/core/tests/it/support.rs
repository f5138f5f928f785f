//! Test helpers: an independent signer for every scheme, secrets and clocks.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha1::Sha1;
use sha2::Sha256;
use switchboard_core::webhook_auth::{self, AuthError, Verified, WebhookAuth};
use switchboard_core::{SecretName, Secrets, Timestamp, WebhookRequest};

/// Property tests run this many cases per scheme.
pub(crate) const CASES: u32 = 10_000;

pub(crate) fn at(unix_seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(unix_seconds)
}

/// A fixed "now" for schemes without a replay window.
pub(crate) fn now() -> Timestamp {
    at(1_700_000_000)
}

pub(crate) fn secrets(pairs: &[(&str, &str)]) -> Secrets {
    pairs
        .iter()
        .fold(Secrets::default(), |s, (name, value)| s.with(*name, *value))
}

pub(crate) fn name(name: &str) -> SecretName {
    SecretName::new(name)
}

pub(crate) fn check(
    scheme: &WebhookAuth,
    secrets: &Secrets,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    webhook_auth::verify(scheme, secrets, req, now)
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Twilio's signature, computed from the algorithm's text: URL, then names sorted, each name's
/// values deduplicated and sorted, `name + value`, base64 HMAC-SHA1.
pub(crate) fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut grouped: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (n, v) in params {
        grouped.entry(n).or_default().insert(v);
    }
    let mut data = url.to_owned();
    for (n, values) in grouped {
        for v in values {
            data.push_str(n);
            data.push_str(v);
        }
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    b64(&mac.finalize().into_bytes())
}

/// `application/x-www-form-urlencoded` body of `params`, in order.
pub(crate) fn form(params: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}

/// Replaces the character at byte `index` of an ASCII string.
pub(crate) fn replace_ascii(text: &str, index: usize, with: char) -> String {
    let mut out = text.to_owned();
    out.replace_range(index..=index, with.encode_utf8(&mut [0; 4]));
    out
}

/// A different character from the same alphabet as `c` (so the value keeps its shape).
pub(crate) fn other_char(alphabet: &str, c: char, pick: usize) -> char {
    let others: Vec<char> = alphabet.chars().filter(|&a| a != c).collect();
    others[pick % others.len()]
}

pub(crate) const BASE64_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(crate) const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Replaces one base64 character (not padding) of `sig` with a different one.
pub(crate) fn mutate_base64(sig: &str, position: usize, pick: usize) -> String {
    let payload_len = sig.trim_end_matches('=').len();
    let index = position % payload_len;
    let current = char::from(sig.as_bytes()[index]);
    replace_ascii(sig, index, other_char(BASE64_ALPHABET, current, pick))
}

/// Arbitrary bodies for property tests.
pub(crate) fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// Asserts that `result` is an error and its message leaks neither a secret nor a signature
/// (strings shorter than 6 characters are skipped: they occur in any English message).
pub(crate) fn assert_rejected_quietly(
    result: Result<Verified, AuthError>,
    forbidden: &[&str],
) -> AuthError {
    let err = result.expect_err("must be rejected");
    let text = err.to_string();
    for f in forbidden.iter().filter(|f| f.len() >= 6) {
        assert!(!text.contains(f), "error `{text}` leaks `{f}`");
    }
    err
}
