//! [`WebhookAuth::VonageJwt`](super::WebhookAuth::VonageJwt): Vonage's signed webhooks (Messages
//! and Dispatch APIs, also Voice): `Authorization: Bearer <JWT>`, the JWT signed HS256 with the
//! account's *signature secret*, carrying `iat` and `payload_hash` (hex SHA-256 of the body).
//!
//! Checks, in order, failing closed at the first that fails:
//!
//! 1. the header is `Bearer <header>.<claims>.<signature>`, three unpadded base64url segments;
//! 2. the JOSE header is a JSON object whose `alg` is exactly `HS256` (`none`, `HS512`, `RS256`
//!    and everything else is refused before any key is used) and that has no `crit`;
//! 3. the signature is 32 bytes (canonical base64url) and equals HMAC-SHA256(secret,
//!    `header.claims`), compared in constant time;
//! 4. only then are the claims read: `iat` (required, whole seconds) within `tolerance` of now,
//!    in either direction; `exp` and `nbf` when present; `api_key` when the scheme pins one;
//! 5. `payload_hash`: required when the body is not empty, and when present it must equal the
//!    hex SHA-256 of the raw body (case-insensitive hex, constant-time comparison). Vonage calls
//!    this check optional behind TLS; here it is what makes the signature cover the body, so a
//!    token replayed with another body within the window is refused.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::common::{self, malformed};
use super::{AuthError, Verified};
use crate::{SecretName, SecretStore, Timestamp, WebhookRequest};

const AUTHORIZATION: &str = "Authorization";
const HEADER: &str = "JWT header";
const CLAIMS: &str = "JWT claims";
const SIGNATURE: &str = "JWT signature";

/// The scheme's settings, borrowed from the [`WebhookAuth`](super::WebhookAuth) variant.
pub(super) struct Settings<'a> {
    pub(super) secret: &'a SecretName,
    pub(super) tolerance: Duration,
    pub(super) api_key: Option<&'a str>,
}

pub(super) fn verify(
    settings: &Settings<'_>,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    let key = common::secret(secrets, settings.secret)?;
    let token = bearer_token(common::required_header(req, AUTHORIZATION)?)?;

    let mut segments = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(malformed(
            AUTHORIZATION,
            "expected a JWT of three `.`-separated segments",
        ));
    };

    // The header names the algorithm: read it before using the key, and accept one only.
    let header = decode_object(HEADER, header_b64)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(_)) => return Err(malformed(HEADER, "`alg` must be HS256")),
        _ => return Err(malformed(HEADER, "`alg` is missing")),
    }
    if header.contains_key("crit") {
        return Err(malformed(HEADER, "critical extensions are not supported"));
    }

    let mut signature = [0u8; 32];
    if signature_b64.len() != 43 {
        return Err(malformed(SIGNATURE, "expected 43 base64url characters"));
    }
    match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut signature) {
        Ok(32) => {}
        _ => return Err(malformed(SIGNATURE, "not canonical base64url")),
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| common::invalid_secret(settings.secret, "unusable as an HMAC key"))?;
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(claims_b64.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| AuthError::Mismatch)?;

    // Signed: the claims are Vonage's.
    let claims = decode_object(CLAIMS, claims_b64)?;
    let iat =
        seconds_claim(&claims, "iat")?.ok_or_else(|| malformed(CLAIMS, "`iat` is missing"))?;
    common::check_fresh(iat, now, settings.tolerance)?;
    let stale = || AuthError::Stale {
        tolerance_secs: settings.tolerance.as_secs(),
    };
    let now_millis = i128::from(now.unix_millis());
    if let Some(exp) = seconds_claim(&claims, "exp")?
        && now_millis > i128::from(exp) * 1000
    {
        return Err(stale());
    }
    let skew = i128::try_from(settings.tolerance.as_millis()).unwrap_or(i128::MAX);
    if let Some(nbf) = seconds_claim(&claims, "nbf")?
        && now_millis.saturating_add(skew) < i128::from(nbf) * 1000
    {
        return Err(stale());
    }
    if let Some(expected) = settings.api_key {
        match claims.get("api_key") {
            Some(Value::String(given)) if given == expected => {}
            Some(Value::String(_)) => return Err(AuthError::Mismatch),
            _ => return Err(malformed(CLAIMS, "`api_key` is missing")),
        }
    }
    match claims.get("payload_hash") {
        Some(Value::String(hash)) => {
            let mut given = [0u8; 32];
            if hash.len() != 64 || hex::decode_to_slice(hash, &mut given).is_err() {
                return Err(malformed(CLAIMS, "`payload_hash` is not 64 hex digits"));
            }
            let actual = Sha256::digest(&req.body);
            if !bool::from(given.as_slice().ct_eq(actual.as_slice())) {
                return Err(AuthError::Mismatch);
            }
        }
        Some(_) => return Err(malformed(CLAIMS, "`payload_hash` is not a string")),
        None if req.body.is_empty() => {}
        None => {
            return Err(malformed(
                CLAIMS,
                "`payload_hash` is missing but the request has a body",
            ));
        }
    }
    Ok(Verified::Authentic)
}

/// The token of `Bearer <token>` (scheme case-insensitive, one or more spaces).
fn bearer_token(value: &str) -> Result<&str, AuthError> {
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| malformed(AUTHORIZATION, "expected `Bearer <JWT>`"))?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(malformed(AUTHORIZATION, "expected the Bearer scheme"));
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(malformed(AUTHORIZATION, "the token is empty"));
    }
    Ok(token)
}

/// A base64url (unpadded) segment holding a JSON object.
fn decode_object(what: &str, segment: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| malformed(what, "not unpadded base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed(what, "not a JSON object")),
    }
}

/// An optional NumericDate claim in whole seconds; anything but an integer is malformed.
fn seconds_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| malformed(CLAIMS, "a time claim is not whole seconds")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::webhook_auth::{WebhookAuth, verify as verify_scheme};
    use crate::{Method, Secrets};

    /// providers.md §6.2, from the Vonage Python SDK's `jwt/tests/test_verify_jwt.py`: valid
    /// with this secret, invalid with `asdf`. No `payload_hash`: it signs no body.
    const V_SECRET: &str = "qwertyuiopasdfghjklzxcvbnm123456";
    const V_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJPbmxpbmUgSldUIEJ1aWxkZXIiLCJpYXQiOjE2OTc2MzQ2ODAsImV4cCI6MzMyNTQ1NDA4MjgsImF1ZCI6IiIsInN1YiI6IiJ9.88vJc3I2HhuqEDixHXVhc9R30tA6U_HQHZTC29y6CGM";
    const V_IAT: i64 = 1_697_634_680;
    const TOLERANCE: u64 = 300;
    const BODY: &str = r#"{"channel":"sms","message_uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","to":"447700900000","from":"447700900001","timestamp":"2020-01-01T14:00:00.000Z","text":"Hello From Vonage!","message_type":"text"}"#;

    fn scheme() -> WebhookAuth {
        scheme_with_api_key(None)
    }

    fn scheme_with_api_key(api_key: Option<&str>) -> WebhookAuth {
        WebhookAuth::VonageJwt {
            secret: SecretName::new("signature_secret"),
            tolerance: Duration::from_secs(TOLERANCE),
            api_key: api_key.map(str::to_owned),
        }
    }

    fn secrets(secret: &str) -> Secrets {
        Secrets::default().with("signature_secret", secret)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(secs)
    }

    fn request(token: &str, body: &[u8]) -> WebhookRequest {
        WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/vonage")
            .with_header("Content-Type", "application/json")
            .with_header("Authorization", format!("Bearer {token}"))
            .with_body(body.to_vec())
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An independent HS256 signer (any header, any claims).
    fn sign(secret: &[u8], header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    }

    /// A token as Vonage sends it: `iat`, `jti`, `api_key`, `payload_hash` of `body`.
    fn vonage_token(secret: &str, iat: i64, body: &[u8]) -> String {
        let claims = format!(
            r#"{{"iat":{iat},"jti":"c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5","iss":"Vonage","payload_hash":"{}","api_key":"a1b2c3d4","application_id":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}}"#,
            hex::encode(Sha256::digest(body))
        );
        sign(secret.as_bytes(), r#"{"alg":"HS256","typ":"JWT"}"#, &claims)
    }

    fn check(req: &WebhookRequest, secret: &str, now: i64) -> Result<Verified, AuthError> {
        verify_scheme(&scheme(), &secrets(secret), req, at(now))
    }

    #[test]
    fn official_vector_verifies_and_fails_with_the_wrong_secret() {
        assert_eq!(
            sign(
                V_SECRET.as_bytes(),
                r#"{"typ":"JWT","alg":"HS256"}"#,
                r#"{"iss":"Online JWT Builder","iat":1697634680,"exp":33254540828,"aud":"","sub":""}"#
            ),
            V_TOKEN,
            "the signer reproduces the vector"
        );
        let req = request(V_TOKEN, b"");
        assert_eq!(check(&req, V_SECRET, V_IAT), Ok(Verified::Authentic));
        assert_eq!(check(&req, "asdf", V_IAT), Err(AuthError::Mismatch));
        // The vector has no payload_hash: it may not vouch for a body.
        let with_body = request(V_TOKEN, BODY.as_bytes());
        assert!(matches!(
            check(&with_body, V_SECRET, V_IAT),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn a_vonage_style_token_covers_the_body() {
        let token = vonage_token(V_SECRET, V_IAT, BODY.as_bytes());
        let req = request(&token, BODY.as_bytes());
        assert_eq!(check(&req, V_SECRET, V_IAT), Ok(Verified::Authentic));
        // Upper-case hex in the claim is the same digest.
        let claims = format!(
            r#"{{"iat":{V_IAT},"payload_hash":"{}"}}"#,
            hex::encode_upper(Sha256::digest(BODY.as_bytes()))
        );
        let upper = sign(V_SECRET.as_bytes(), r#"{"alg":"HS256"}"#, &claims);
        assert_eq!(
            check(&request(&upper, BODY.as_bytes()), V_SECRET, V_IAT),
            Ok(Verified::Authentic)
        );
        let mut tampered = BODY.as_bytes().to_vec();
        tampered[40] ^= 0x01;
        assert_eq!(
            check(&request(&token, &tampered), V_SECRET, V_IAT),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            check(&request(&token, b""), V_SECRET, V_IAT),
            Err(AuthError::Mismatch),
            "a present payload_hash is checked even against an empty body"
        );
        assert_eq!(
            check(&req, "qwertyuiopasdfghjklzxcvbnm123457", V_IAT),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn iat_window_both_directions_and_exp_nbf() {
        let token = vonage_token(V_SECRET, V_IAT, BODY.as_bytes());
        let req = request(&token, BODY.as_bytes());
        let tol = TOLERANCE as i64;
        for now in [V_IAT - tol, V_IAT + tol] {
            assert_eq!(check(&req, V_SECRET, now), Ok(Verified::Authentic));
        }
        for now in [V_IAT - tol - 1, V_IAT + tol + 1, 0, i64::MAX / 2000] {
            assert_eq!(
                check(&req, V_SECRET, now),
                Err(AuthError::Stale {
                    tolerance_secs: TOLERANCE
                }),
                "now {now}"
            );
        }
        let header = r#"{"alg":"HS256"}"#;
        let expired = sign(
            V_SECRET.as_bytes(),
            header,
            &format!(r#"{{"iat":{V_IAT},"exp":{}}}"#, V_IAT + 10),
        );
        assert_eq!(
            check(&request(&expired, b""), V_SECRET, V_IAT + 10),
            Ok(Verified::Authentic)
        );
        assert!(matches!(
            check(&request(&expired, b""), V_SECRET, V_IAT + 11),
            Err(AuthError::Stale { .. })
        ));
        let not_yet = sign(
            V_SECRET.as_bytes(),
            header,
            &format!(r#"{{"iat":{V_IAT},"nbf":{}}}"#, V_IAT + 1000),
        );
        assert!(matches!(
            check(&request(&not_yet, b""), V_SECRET, V_IAT),
            Err(AuthError::Stale { .. })
        ));
        for claims in [
            r#"{"exp":33254540828}"#.to_owned(),
            format!(r#"{{"iat":"{V_IAT}"}}"#),
            format!(r#"{{"iat":{V_IAT}.5}}"#),
            format!(r#"{{"iat":{V_IAT},"exp":"never"}}"#),
        ] {
            let token = sign(V_SECRET.as_bytes(), header, &claims);
            assert!(
                matches!(
                    check(&request(&token, b""), V_SECRET, V_IAT),
                    Err(AuthError::Malformed { .. })
                ),
                "{claims}"
            );
        }
    }

    #[test]
    fn only_hs256_is_accepted() {
        let claims = format!(r#"{{"iat":{V_IAT}}}"#);
        // alg none with an empty signature, and with a valid HS256 MAC under another alg.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims.as_bytes())
        );
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":256}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"["HS256"]"#,
        ] {
            let token = sign(V_SECRET.as_bytes(), header, &claims);
            assert!(
                matches!(
                    check(&request(&token, b""), V_SECRET, V_IAT),
                    Err(AuthError::Malformed { .. })
                ),
                "{header}"
            );
        }
        assert!(matches!(
            check(&request(&none, b""), V_SECRET, V_IAT),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn json_shape() {
        let json = serde_json::json!({"scheme": "vonage_jwt", "secret": "signature_secret"});
        let parsed: WebhookAuth = serde_json::from_value(json).unwrap();
        assert_eq!(
            parsed,
            scheme(),
            "tolerance defaults to 300 s, api_key to none"
        );
        assert_eq!(
            serde_json::to_value(scheme_with_api_key(Some("a1b2c3d4"))).unwrap(),
            serde_json::json!({"scheme": "vonage_jwt", "secret": "signature_secret", "tolerance": 300, "api_key": "a1b2c3d4"})
        );
        assert!(scheme().signs_body());
    }

    #[test]
    fn pinned_api_key() {
        let token = vonage_token(V_SECRET, V_IAT, BODY.as_bytes());
        let req = request(&token, BODY.as_bytes());
        let s = secrets(V_SECRET);
        let ok = verify_scheme(&scheme_with_api_key(Some("a1b2c3d4")), &s, &req, at(V_IAT));
        assert_eq!(ok, Ok(Verified::Authentic));
        let other = verify_scheme(&scheme_with_api_key(Some("zzzz")), &s, &req, at(V_IAT));
        assert_eq!(other, Err(AuthError::Mismatch));
        let without = request(V_TOKEN, b"");
        assert!(matches!(
            verify_scheme(
                &scheme_with_api_key(Some("a1b2c3d4")),
                &s,
                &without,
                at(V_IAT)
            ),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn malformed_and_missing_are_typed() {
        let body = BODY.as_bytes();
        let bare = WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/vonage")
            .with_body(body.to_vec());
        assert_eq!(
            check(&bare, V_SECRET, V_IAT),
            Err(AuthError::MissingHeader(AUTHORIZATION.into()))
        );
        let valid = vonage_token(V_SECRET, V_IAT, body);
        let (head, sig) = valid.rsplit_once('.').unwrap();
        for value in [
            "Basic dXNlcjpwYXNz".to_owned(),
            "Bearer".to_owned(),
            "Bearer    ".to_owned(),
            format!("Token {valid}"),
            "Bearer a.b".to_owned(),
            "Bearer a.b.c.d".to_owned(),
            "Bearer ...".to_owned(),
            format!("Bearer {valid}."),
            format!("Bearer {head}.{sig}="),
            format!("Bearer {head}.{}", &sig[..42]),
            format!("Bearer {head}.{sig}A"),
            format!("Bearer {head}.{}+", &sig[..42]),
            format!("Bearer {}", valid.replacen('e', "=", 1)),
            "Bearer e30.e30.!!!".to_owned(),
        ] {
            let req = WebhookRequest::new(Method::Post, "https://h/")
                .with_header("Authorization", value.as_str())
                .with_body(body.to_vec());
            assert!(
                matches!(
                    check(&req, V_SECRET, V_IAT),
                    Err(AuthError::Malformed { .. }) | Err(AuthError::Mismatch)
                ),
                "{value}"
            );
        }
        // A non-canonical last signature character (its 2 spare bits set) is refused: one
        // MAC, one encoding.
        const URL_ALPHABET: &str =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = sig.as_bytes()[42];
        let index = URL_ALPHABET.bytes().position(|c| c == last).unwrap();
        assert_eq!(
            index % 4,
            0,
            "the last character carries 4 bits and 2 zero bits"
        );
        let sibling = char::from(URL_ALPHABET.as_bytes()[index + 1]);
        let req = request(&format!("{head}.{}{sibling}", &sig[..42]), body);
        assert!(matches!(
            check(&req, V_SECRET, V_IAT),
            Err(AuthError::Malformed { .. })
        ));
        // `bearer` is case-insensitive, like any HTTP auth scheme.
        let lower = WebhookRequest::new(Method::Post, "https://h/")
            .with_header("authorization", format!("bearer {valid}"))
            .with_body(body.to_vec());
        assert_eq!(check(&lower, V_SECRET, V_IAT), Ok(Verified::Authentic));
        assert_eq!(
            verify_scheme(
                &scheme(),
                &Secrets::default(),
                &request(&valid, body),
                at(V_IAT)
            ),
            Err(AuthError::MissingSecret(SecretName::new(
                "signature_secret"
            )))
        );
        assert!(matches!(
            verify_scheme(&scheme(), &secrets(""), &request(&valid, body), at(V_IAT)),
            Err(AuthError::InvalidSecret { .. })
        ));
    }

    #[test]
    fn errors_never_quote_the_secret_or_token() {
        let token = vonage_token(V_SECRET, V_IAT, BODY.as_bytes());
        let err = check(&request(&token, b"x"), V_SECRET, V_IAT).unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains(V_SECRET) && !text.contains(&token[..20]),
            "{text}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Garbage headers and bodies: a typed error, never a panic, never a pass.
        #[test]
        fn garbage_never_verifies(
            value in prop_oneof![
                "\\PC{0,80}",
                "Bearer [A-Za-z0-9_.=+/-]{0,200}",
                "Bearer [A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{1,80}\\.[A-Za-z0-9_-]{43}",
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|b| format!("Bearer {}.{}.{}", b64(br#"{"alg":"HS256"}"#), b64(&b), b64(&b))),
            ],
            body in proptest::collection::vec(any::<u8>(), 0..256),
            now in any::<i64>(),
        ) {
            let req = WebhookRequest::new(Method::Post, "https://h/")
                .with_header("Authorization", value)
                .with_body(body);
            prop_assert!(check(&req, V_SECRET, now).is_err());
        }

        /// Any change to a valid request (a body byte, a token character, the clock beyond the
        /// window) is refused.
        #[test]
        fn mutations_never_verify(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            iat in 1_000_000_000i64..4_000_000_000,
            index in any::<usize>(),
            xor in 1..=255u8,
            which in 0..3u8,
        ) {
            let token = vonage_token(V_SECRET, iat, &body);
            prop_assert_eq!(check(&request(&token, &body), V_SECRET, iat), Ok(Verified::Authentic));
            let result = match which {
                0 => {
                    let mut body2 = body.clone();
                    let i = index % body2.len();
                    body2[i] ^= xor;
                    check(&request(&token, &body2), V_SECRET, iat)
                }
                1 => {
                    let mut t = token.clone().into_bytes();
                    let i = index % t.len();
                    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
                    let pick = alphabet[(usize::from(xor)) % alphabet.len()];
                    t[i] = if t[i] == pick { if pick == b'A' { b'B' } else { b'A' } } else { pick };
                    check(&request(&String::from_utf8(t).unwrap(), &body), V_SECRET, iat)
                }
                _ => check(&request(&token, &body), V_SECRET, iat + TOLERANCE as i64 + 1 + i64::from(xor)),
            };
            prop_assert!(result.is_err());
        }
    }
}
