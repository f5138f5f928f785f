//! [`WebhookAuth::Twilio`](super::WebhookAuth::Twilio): `X-Twilio-Signature`, a base64
//! HMAC-SHA1 over the public URL and the sorted form parameters, or over the URL alone with a
//! `bodySHA256` query parameter for JSON bodies.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::common::{self, malformed};
use super::public_url::{self, UrlParts};
use super::{AuthError, Verified};
use crate::{Method, SecretName, SecretStore, WebhookRequest};

/// The signature header.
const HEADER: &str = "X-Twilio-Signature";

pub(super) fn verify(
    auth_token: &SecretName,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
) -> Result<Verified, AuthError> {
    let key = common::secret(secrets, auth_token)?;
    let signature = common::required_header(req, HEADER)?;
    let expected = common::decode_base64_exact::<20>(HEADER, signature)?;
    let url = UrlParts::split(&req.url)
        .filter(UrlParts::is_http)
        .ok_or_else(|| malformed("url", "expected an absolute http(s) URL"))?;

    let body_sha256 = body_sha256_param(&req.url)?;
    let params: Cow<'_, [u8]> = if body_sha256.is_some() {
        // JSON body: the URL alone is signed; the body is bound by its hash in the URL.
        Cow::Borrowed(&[])
    } else if req.method == Method::Get {
        if !req.body.is_empty() {
            return Err(malformed(
                "body",
                "a GET body is not covered by the signature",
            ));
        }
        Cow::Borrowed(&[])
    } else {
        Cow::Owned(signed_params(&req.body)?)
    };

    let mac = Hmac::<Sha1>::new_from_slice(key)
        .map_err(|_| common::invalid_secret(auth_token, "unusable as an HMAC key"))?;
    let matches = |candidate: &str| {
        let mut mac = mac.clone();
        mac.update(candidate.as_bytes());
        mac.update(&params);
        mac.verify_slice(&expected).is_ok()
    };
    // The URL as received is by far the most common match: try it before building the others.
    // Stopping at the first match reveals which form matched, never anything about the key.
    let signature_ok = matches(&req.url) || url_forms(&req.url, &url).iter().any(|c| matches(c));

    let body_ok = match body_sha256 {
        Some(expected_hash) => bool::from(
            Sha256::digest(&req.body)
                .as_slice()
                .ct_eq(&expected_hash[..]),
        ),
        None => true,
    };
    if signature_ok && body_ok {
        Ok(Verified::Authentic)
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Every other form of the URL a Twilio validator accepts, deduplicated, the URL as given
/// excluded: port stripped, default port added, and each of the three with the query
/// re-encoded as a WHATWG URL serialiser does, as Node's `querystring` does, and both.
fn url_forms(given: &str, parts: &UrlParts<'_>) -> Vec<String> {
    let mut forms: Vec<String> = Vec::with_capacity(12);
    let push = |forms: &mut Vec<String>, form: String| {
        if form != given && !forms.contains(&form) {
            forms.push(form);
        }
    };
    let mut port_forms = vec![given.to_owned()];
    if parts.port.is_some() {
        port_forms.push(parts.without_port());
    }
    if let Some(with_port) = parts.with_default_port() {
        port_forms.push(with_port);
    }
    for form in &port_forms {
        push(&mut forms, form.clone());
    }
    for form in &port_forms {
        if let Some(whatwg) = public_url::whatwg_query(form) {
            push(&mut forms, whatwg);
        }
        if let Some(legacy) = public_url::legacy_query(form) {
            // Node serialises the legacy form through `new URL()` again before signing.
            if let Some(whatwg) = public_url::whatwg_query(&legacy) {
                push(&mut forms, whatwg);
            }
            push(&mut forms, legacy);
        }
    }
    forms
}

/// The decoded `bodySHA256` query parameter: `None` when absent; repeated or not 64 hex
/// digits fails closed.
fn body_sha256_param(url: &str) -> Result<Option<[u8; 32]>, AuthError> {
    const NAME: &str = "bodySHA256";
    let Some(query) = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .map(|(_, q)| q)
    else {
        return Ok(None);
    };
    let mut found: Option<Cow<'_, str>> = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == NAME {
            if found.is_some() {
                return Err(malformed(NAME, "the parameter is repeated"));
            }
            found = Some(value);
        }
    }
    let Some(value) = found else { return Ok(None) };
    let mut hash = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value.as_bytes(), &mut hash).is_err() {
        return Err(malformed(NAME, "expected 64 hex digits"));
    }
    Ok(Some(hash))
}

/// The signed parameter string of a form body: names sorted by code point, each name's values
/// deduplicated and sorted, `name + value` for each, no separators.
///
/// Decoding is strict where [`WebhookRequest::form_pairs`] is lossy: a name or value that is
/// not UTF-8 fails, because two different bodies must never share a signed string.
fn signed_params(body: &[u8]) -> Result<Vec<u8>, AuthError> {
    let not_utf8 = |_| malformed("form body", "a parameter is not UTF-8");
    let mut params: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(32);
    let mut rest = body;
    while !rest.is_empty() {
        let end = public_url::find_byte(rest, b'&').unwrap_or(rest.len());
        let (segment, after) = rest.split_at(end);
        rest = after.get(1..).unwrap_or_default();
        if segment.is_empty() {
            continue;
        }
        let (name, value) = match public_url::find_byte(segment, b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &[][..]),
        };
        params.push((
            public_url::percent_decode_plus(name).map_err(not_utf8)?,
            public_url::percent_decode_plus(value).map_err(not_utf8)?,
        ));
    }
    // Sorting the pairs sorts names by code point (UTF-8 byte order is code-point order) and
    // each name's values; dropping equal neighbours deduplicates the values.
    params.sort_unstable();
    params.dedup();
    let len = params.iter().map(|(n, v)| n.len() + v.len()).sum();
    let mut out = Vec::with_capacity(len);
    for (name, value) in &params {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    #[test]
    fn params_sort_dedupe_and_decode() {
        let got = signed_params(b"b=2&a=%2B1&b=1&b=2&&c&d=x+y").unwrap();
        assert_eq!(got, b"a+1b1b2cdx y");
        assert!(signed_params(b"a=%FF").is_err());
        assert!(signed_params(b"%FE=1").is_err());
    }

    #[test]
    fn url_forms_cover_ports_and_encodings() {
        let given = "https://h/p?Body=It's+ok";
        let forms = url_forms(given, &UrlParts::split(given).unwrap());
        for expected in [
            "https://h:443/p?Body=It's+ok",
            "https://h/p?Body=It%27s+ok",
            "https://h/p?Body=It's%20ok",
            "https://h/p?Body=It%27s%20ok",
            "https://h:443/p?Body=It%27s+ok",
        ] {
            assert!(
                forms.iter().any(|f| f == expected),
                "{expected} not in {forms:?}"
            );
        }
        assert!(!forms.iter().any(|f| f == given));
        let plain = "http://h:8080/p";
        assert_eq!(
            url_forms(plain, &UrlParts::split(plain).unwrap()),
            ["http://h/p"]
        );
    }

    #[test]
    fn body_hash_param_is_strict() {
        assert_eq!(body_sha256_param("https://h/p?a=1"), Ok(None));
        let hex64 = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert!(
            body_sha256_param(&format!("https://h/?bodySHA256={hex64}")).is_ok_and(|h| h.is_some())
        );
        assert!(
            body_sha256_param(&format!("https://h/?bodySHA256={}", hex64.to_uppercase()))
                .is_ok_and(|h| h.is_some())
        );
        assert!(body_sha256_param("https://h/?bodySHA256=abc").is_err());
        assert!(
            body_sha256_param(&format!("https://h/?bodySHA256={hex64}&bodySHA256={hex64}"))
                .is_err()
        );
        assert_eq!(
            body_sha256_param(&format!("https://h/#?bodySHA256={hex64}")),
            Ok(None)
        );
    }
}
