//! [`WebhookAuth::TelnyxEd25519`](super::WebhookAuth::TelnyxEd25519): Telnyx API v2 webhooks,
//! an Ed25519 signature (`telnyx-signature-ed25519`, base64) over `timestamp + "|" + body`
//! (`telnyx-timestamp`, Unix seconds), checked with the account's public key, with a replay
//! window in both directions.
//!
//! The key is a *public* key (base64 of 32 bytes, from the Telnyx portal), so the channel's
//! "secret" is not secret; it still lives in the secret store, where the operator configures
//! it per channel. Verification is strict (RFC 8032 plus the checks libsodium makes, as the
//! official SDKs' PyNaCl/tweetnacl do): non-canonical signatures and small-order keys fail.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

use super::common;
use super::{AuthError, Verified};
use crate::{SecretName, SecretStore, Timestamp, WebhookRequest};

const SIGNATURE: &str = "telnyx-signature-ed25519";
const TIMESTAMP: &str = "telnyx-timestamp";

pub(super) fn verify(
    public_key: &SecretName,
    tolerance: Duration,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    let key = verifying_key(public_key, secrets)?;
    let signature = common::required_header(req, SIGNATURE)?;
    let timestamp = common::required_header(req, TIMESTAMP)?;
    let unix_seconds = common::parse_unix_seconds(TIMESTAMP, timestamp)?;
    let signature = common::decode_base64_exact::<64>(SIGNATURE, signature)?;
    common::check_fresh(unix_seconds, now, tolerance)?;

    // The timestamp is digits only, so `timestamp|body` splits uniquely.
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + req.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(&req.body);
    key.verify_strict(&signed, &Signature::from_bytes(&signature))
        .map_err(|_| AuthError::Mismatch)?;
    Ok(Verified::Authentic)
}

/// The channel's Ed25519 public key: standard base64 of exactly 32 bytes (surrounding
/// whitespace ignored) that decodes to a curve point. Anything else fails closed.
fn verifying_key(name: &SecretName, secrets: &dyn SecretStore) -> Result<VerifyingKey, AuthError> {
    let text = common::secret(secrets, name)?;
    let text = text.trim_ascii();
    let mut bytes = [0u8; 32];
    if text.len() != 44 || !matches!(STANDARD.decode_slice(text, &mut bytes), Ok(32)) {
        return Err(common::invalid_secret(
            name,
            "expected the base64 of a 32-byte Ed25519 public key",
        ));
    }
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| common::invalid_secret(name, "not an Ed25519 public key"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use ed25519_dalek::Verifier;
    use proptest::prelude::*;

    use super::*;
    use crate::webhook_auth::{WebhookAuth, verify as verify_scheme};
    use crate::{Method, Secrets};

    /// RFC 8032 §7.1 TEST 1: the key pair and the signature of the empty message.
    const RFC_PUBLIC_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_EMPTY_SIGNATURE_HEX: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    /// providers.md §6.2: the Telnyx vector built on that key (the SDKs ship none).
    const PUBLIC_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const TS: &str = "1700000000";
    const TS_SECS: i64 = 1_700_000_000;
    const BODY: &str = r#"{"data":{"event_type":"message.received","id":"b301ed3f-1490-491f-995f-6e64e69674d4","payload":{"text":"Hello"},"record_type":"event"}}"#;
    const SIG: &str =
        "oxpcrZn2YfzgRy4P3H7SIRkMNZP2P+iMk+fnnQUe8dXK9QNVKB1IBWeUrt5++YFoIgOdKZwpInDvqEPaaWl2Dg==";
    const TOLERANCE: u64 = 300;

    fn scheme() -> WebhookAuth {
        WebhookAuth::TelnyxEd25519 {
            public_key: SecretName::new("public_key"),
            tolerance: Duration::from_secs(TOLERANCE),
        }
    }

    fn key(value: &str) -> Secrets {
        Secrets::default().with("public_key", value)
    }

    fn request(body: &[u8], sig: &str, ts: &str) -> WebhookRequest {
        WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/telnyx")
            .with_header("Content-Type", "application/json")
            .with_header("telnyx-signature-ed25519", sig)
            .with_header("telnyx-timestamp", ts)
            .with_body(body.to_vec())
    }

    fn check(req: &WebhookRequest, now: i64) -> Result<Verified, AuthError> {
        verify_scheme(
            &scheme(),
            &key(PUBLIC_KEY),
            req,
            Timestamp::from_unix_seconds(now),
        )
    }

    #[test]
    fn rfc8032_test1_holds_for_the_primitive() {
        let public: [u8; 32] = hex::decode(RFC_PUBLIC_HEX).unwrap().try_into().unwrap();
        assert_eq!(STANDARD.encode(public), PUBLIC_KEY);
        let signature: [u8; 64] = hex::decode(RFC_EMPTY_SIGNATURE_HEX)
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&public).unwrap();
        assert!(key.verify(b"", &Signature::from_bytes(&signature)).is_ok());
        assert!(
            key.verify_strict(b"", &Signature::from_bytes(&signature))
                .is_ok()
        );
    }

    #[test]
    fn the_telnyx_vector_verifies() {
        let req = request(BODY.as_bytes(), SIG, TS);
        assert_eq!(check(&req, TS_SECS), Ok(Verified::Authentic));
        // Header names are case-insensitive.
        let upper = WebhookRequest::new(Method::Post, "https://h/")
            .with_header("Telnyx-Signature-Ed25519", SIG)
            .with_header("Telnyx-Timestamp", TS)
            .with_body(BODY.as_bytes().to_vec());
        assert_eq!(check(&upper, TS_SECS), Ok(Verified::Authentic));
        // Whitespace around the configured key is tolerated (a pasted key).
        assert_eq!(
            verify_scheme(
                &scheme(),
                &key(&format!(" {PUBLIC_KEY}\n")),
                &req,
                Timestamp::from_unix_seconds(TS_SECS)
            ),
            Ok(Verified::Authentic)
        );
    }

    #[test]
    fn json_shape() {
        let json = serde_json::json!({"scheme": "telnyx_ed25519", "public_key": "public_key", "tolerance": 300});
        assert_eq!(
            serde_json::from_value::<WebhookAuth>(json.clone()).unwrap(),
            scheme()
        );
        assert_eq!(serde_json::to_value(scheme()).unwrap(), json);
        assert!(scheme().signs_body());
    }

    #[test]
    fn tampering_fails() {
        let mut body = BODY.as_bytes().to_vec();
        body[30] ^= 0x01;
        let cases = [
            request(&body, SIG, TS),
            request(&BODY.as_bytes()[1..], SIG, TS),
            request(BODY.as_bytes(), SIG, "1700000001"),
            // Leading zeros change the signed string.
            request(BODY.as_bytes(), SIG, "01700000000"),
            request(BODY.as_bytes(), &SIG.replacen('o', "p", 1), TS),
        ];
        for req in cases {
            assert_eq!(check(&req, TS_SECS), Err(AuthError::Mismatch));
        }
        // Another key (RFC 8032 TEST 2's) does not verify it.
        let other = STANDARD.encode(
            hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
                .unwrap(),
        );
        assert_eq!(
            verify_scheme(
                &scheme(),
                &key(&other),
                &request(BODY.as_bytes(), SIG, TS),
                Timestamp::from_unix_seconds(TS_SECS)
            ),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn replay_window_both_directions() {
        let req = request(BODY.as_bytes(), SIG, TS);
        let tol = TOLERANCE as i64;
        for now in [TS_SECS - tol, TS_SECS + tol] {
            assert_eq!(check(&req, now), Ok(Verified::Authentic));
        }
        for now in [TS_SECS - tol - 1, TS_SECS + tol + 1, 0] {
            assert_eq!(
                check(&req, now),
                Err(AuthError::Stale {
                    tolerance_secs: TOLERANCE
                })
            );
        }
    }

    #[test]
    fn malformed_missing_and_bad_keys_are_typed() {
        for missing in ["telnyx-signature-ed25519", "telnyx-timestamp"] {
            let mut req = request(BODY.as_bytes(), SIG, TS);
            req.headers.retain(|(n, _)| n != missing);
            assert_eq!(
                check(&req, TS_SECS),
                Err(AuthError::MissingHeader(missing.into()))
            );
        }
        for (sig, ts) in [
            (SIG, "1700000000.0"),
            (SIG, "-1700000000"),
            (SIG, "soon"),
            (&SIG[..86], TS),
            ("not base64 at all", TS),
            (
                "oxpcrZn2YfzgRy4P3H7SIRkMNZP2P+iMk+fnnQUe8dXK9QNVKB1IBWeUrt5++YFoIgOdKZwpInDvqEPaaWl2Dg",
                TS,
            ),
        ] {
            assert!(
                matches!(
                    check(&request(BODY.as_bytes(), sig, ts), TS_SECS),
                    Err(AuthError::Malformed { .. })
                ),
                "{sig} {ts}"
            );
        }
        let req = request(BODY.as_bytes(), SIG, TS);
        let now = Timestamp::from_unix_seconds(TS_SECS);
        assert_eq!(
            verify_scheme(&scheme(), &Secrets::default(), &req, now),
            Err(AuthError::MissingSecret(SecretName::new("public_key")))
        );
        // Not base64, the wrong length, a 32-byte string that is not a point.
        let not_a_point = STANDARD.encode(
            hex::decode("0200000000000000000000000000000000000000000000000000000000000000")
                .unwrap(),
        );
        for bad in ["", "not-a-key", "AAAA", &PUBLIC_KEY[..40], &not_a_point] {
            let result = verify_scheme(&scheme(), &key(bad), &req, now);
            assert!(
                matches!(result, Err(AuthError::InvalidSecret { .. })),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[test]
    fn small_order_keys_never_verify() {
        // The identity point as a key with the identity as R and S = 0 "signs" everything
        // under the cofactored equation; strict verification refuses the weak key.
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let req = request(BODY.as_bytes(), &STANDARD.encode(forged), TS);
        let result = verify_scheme(
            &scheme(),
            &key(&STANDARD.encode(identity)),
            &req,
            Timestamp::from_unix_seconds(TS_SECS),
        );
        assert_eq!(result, Err(AuthError::Mismatch));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Arbitrary header values and bodies: a typed error, never a panic, never a pass.
        #[test]
        fn garbage_never_verifies(
            sig in prop_oneof!["\\PC{0,100}", "[A-Za-z0-9+/]{86}==", "[A-Za-z0-9+/=]{0,120}"],
            ts in prop_oneof!["\\PC{0,24}", "[0-9]{1,20}", Just(TS.to_owned())],
            body in proptest::collection::vec(any::<u8>(), 0..256),
            now in prop_oneof![any::<i64>(), Just(TS_SECS)],
        ) {
            prop_assert!(check(&request(&body, &sig, &ts), now).is_err());
        }

        /// A flipped body byte or signature bit never verifies.
        #[test]
        fn mutations_never_verify(index in any::<usize>(), xor in 1..=255u8, in_signature in any::<bool>()) {
            let mut body = BODY.as_bytes().to_vec();
            let mut sig = STANDARD.decode(SIG).unwrap();
            if in_signature {
                let i = index % sig.len();
                sig[i] ^= xor;
            } else {
                let i = index % body.len();
                body[i] ^= xor;
            }
            prop_assert!(check(&request(&body, &STANDARD.encode(&sig), TS), TS_SECS).is_err());
        }
    }
}
