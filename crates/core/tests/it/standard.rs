//! `StandardWebhooks`: vectors A and B and every negative case of reliability.md §1.1.

use std::time::Duration;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use proptest::prelude::*;
use switchboard_core::webhook_auth::{self, AuthError, Verified, WebhookAuth};
use switchboard_core::{Method, Secrets, Timestamp, WebhookRequest};

use crate::support::*;

// Vector A (Rust library `test_sign`).
const A_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const A_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const A_TS: i64 = 1_649_367_553;
const A_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
const A_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
// Vector B (Python, Go, JS, PHP, Ruby, C# libraries).
const B_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const B_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const B_TS: i64 = 1_614_265_330;
const B_BODY: &str = r#"{"test": 2432232314}"#;
const B_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn scheme() -> WebhookAuth {
    WebhookAuth::StandardWebhooks {
        secret: name("signing_secret"),
        tolerance: Duration::from_secs(300),
    }
}

fn key(secret: &str) -> Secrets {
    secrets(&[("signing_secret", secret)])
}

fn request(id: &str, ts: &str, sig: &str, body: &[u8]) -> WebhookRequest {
    WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/sw")
        .with_header("webhook-id", id)
        .with_header("webhook-timestamp", ts)
        .with_header("webhook-signature", sig)
        .with_body(body.to_vec())
}

fn a(sig: &str) -> WebhookRequest {
    request(A_ID, &A_TS.to_string(), sig, A_BODY.as_bytes())
}

fn b(sig: &str) -> WebhookRequest {
    request(B_ID, &B_TS.to_string(), sig, B_BODY.as_bytes())
}

fn verify_a(sig: &str) -> Result<Verified, AuthError> {
    check(&scheme(), &key(A_SECRET), &a(sig), at(A_TS))
}

fn verify_b(sig: &str) -> Result<Verified, AuthError> {
    check(&scheme(), &key(B_SECRET), &b(sig), at(B_TS))
}

/// Decodes a secret as the reference libraries do: padding optional, trailing bits ignored.
fn decode_secret(secret: &str) -> Vec<u8> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(secret.trim_start_matches("whsec_")).unwrap()
}

fn sign(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
    format!(
        "v1,{}",
        b64(&hmac_sha256(
            key,
            &[id.as_bytes(), b".", ts.as_bytes(), b".", body]
        ))
    )
}

#[test]
fn vector_a() {
    assert_eq!(
        sign(
            &decode_secret(A_SECRET),
            A_ID,
            &A_TS.to_string(),
            A_BODY.as_bytes()
        ),
        A_SIG
    );
    assert_eq!(verify_a(A_SIG), Ok(Verified::Authentic));
}

#[test]
fn vector_b() {
    assert_eq!(verify_b(B_SIG), Ok(Verified::Authentic));
    // Byte-exact payload: without the space after the colon it no longer verifies.
    let compact = request(B_ID, &B_TS.to_string(), B_SIG, br#"{"test":2432232314}"#);
    assert_eq!(
        check(&scheme(), &key(B_SECRET), &compact, at(B_TS)),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn wrong_signatures() {
    // Python: differs from B in the last character.
    assert_eq!(
        verify_b("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="),
        Err(AuthError::Mismatch)
    );
    // Rust `test_no_verify`, with vector A's inputs.
    assert_eq!(
        verify_a("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU="),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn rust_multi_signature_decoys() {
    let decoys = [
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
        "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
    ];
    let with_valid_third = format!("{} {} {A_SIG} {}", decoys[0], decoys[1], decoys[2]);
    assert_eq!(verify_a(&with_valid_third), Ok(Verified::Authentic));
    assert_eq!(verify_a(&decoys.join(" ")), Err(AuthError::Mismatch));
    for decoy in decoys {
        assert_eq!(verify_a(decoy), Err(AuthError::Mismatch));
    }
}

#[test]
fn other_libraries_multi_signature_decoys() {
    let decoy_v1 = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let decoy_v2 = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    assert_eq!(
        verify_b(&format!("{decoy_v1} {decoy_v2} {B_SIG}")),
        Ok(Verified::Authentic)
    );
    assert_eq!(
        verify_b(&format!("{B_SIG} {decoy_v2} {decoy_v1}")),
        Ok(Verified::Authentic)
    );
    assert_eq!(
        verify_b(&format!("{decoy_v1} {decoy_v2}")),
        Err(AuthError::Mismatch)
    );
    // Unknown versions are skipped, even when they carry the right MAC.
    let digest = &B_SIG[3..];
    for other in [
        format!("v2,{digest}"),
        format!("v1a,{digest}"),
        format!("V1,{digest}"),
        format!("v0,{digest}"),
        digest.to_owned(),
    ] {
        assert_eq!(verify_b(&other), Err(AuthError::Mismatch), "{other}");
    }
    // Extra spaces between entries are harmless.
    assert_eq!(
        verify_b(&format!("{decoy_v2}   {B_SIG}")),
        Ok(Verified::Authentic)
    );
}

#[test]
fn truncated_partial_and_garbage_signatures() {
    for sig in [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",
        "v1,dawfeoifkpqwoekfpqoekf",
        "v1,",
        &B_SIG[..8],
        &B_SIG[..B_SIG.len() - 1],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=x",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        "v1 g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ",,,",
    ] {
        assert_eq!(verify_b(sig), Err(AuthError::Mismatch), "{sig:?}");
    }
    assert!(matches!(verify_b(""), Err(AuthError::Malformed { .. })));
}

#[test]
fn secret_prefix_is_optional() {
    let bare = B_SECRET.trim_start_matches("whsec_");
    assert_eq!(
        check(&scheme(), &key(bare), &b(B_SIG), at(B_TS)),
        Ok(Verified::Authentic)
    );
}

#[test]
fn unpadded_secrets_are_accepted() {
    let ts = B_TS.to_string();
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",    // needs one `=`
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr", // needs `==`
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
    ] {
        let raw = decode_secret(secret);
        let sig = sign(&raw, B_ID, &ts, B_BODY.as_bytes());
        let req = request(B_ID, &ts, &sig, B_BODY.as_bytes());
        assert_eq!(
            check(&scheme(), &key(secret), &req, at(B_TS)),
            Ok(Verified::Authentic),
            "{secret}"
        );
        // Not the same key as the padded vector secret.
        assert_eq!(
            check(&scheme(), &key(B_SECRET), &req, at(B_TS)),
            Err(AuthError::Mismatch),
            "{secret}"
        );
    }
    assert_eq!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS").len(), 23);
    assert_eq!(
        decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr").len(),
        25
    );
}

#[test]
fn empty_secrets_are_rejected() {
    for secret in ["", "whsec_"] {
        assert!(
            matches!(
                check(&scheme(), &key(secret), &b(B_SIG), at(B_TS)),
                Err(AuthError::InvalidSecret { .. })
            ),
            "{secret:?}"
        );
    }
    assert!(matches!(
        check(&scheme(), &key("whsec_not*base64"), &b(B_SIG), at(B_TS)),
        Err(AuthError::InvalidSecret { .. })
    ));
    assert_eq!(
        check(&scheme(), &secrets(&[]), &b(B_SIG), at(B_TS)),
        Err(AuthError::MissingSecret(name("signing_secret")))
    );
}

#[test]
fn timestamps_at_tolerance_plus_one_second_both_ways() {
    let s = key(B_SECRET);
    let stale = Err(AuthError::Stale {
        tolerance_secs: 300,
    });
    assert_eq!(check(&scheme(), &s, &b(B_SIG), at(B_TS + 301)), stale);
    assert_eq!(check(&scheme(), &s, &b(B_SIG), at(B_TS - 301)), stale);
    assert_eq!(
        check(&scheme(), &s, &b(B_SIG), at(B_TS + 300)),
        Ok(Verified::Authentic)
    );
    assert_eq!(
        check(&scheme(), &s, &b(B_SIG), at(B_TS - 300)),
        Ok(Verified::Authentic)
    );
    // Old/new signed messages (the libraries re-sign with the shifted timestamp).
    let raw = decode_secret(B_SECRET);
    for shift in [-301i64, 301] {
        let ts = (B_TS + shift).to_string();
        let req = request(
            B_ID,
            &ts,
            &sign(&raw, B_ID, &ts, B_BODY.as_bytes()),
            B_BODY.as_bytes(),
        );
        assert_eq!(check(&scheme(), &s, &req, at(B_TS)), stale);
    }
    let half_second = Timestamp::from_unix_millis((B_TS + 300) * 1000 + 500);
    assert_eq!(check(&scheme(), &s, &b(B_SIG), half_second), stale);
}

#[test]
fn non_digit_timestamps_are_malformed() {
    for ts in [
        "hello",
        "161426533.0",
        "invalid timestamp",
        "-161426533",
        "+1614265330",
        "1614265330a",
        "0x1",
        "1614265330 ",
        "１６１４２６５３３０",
    ] {
        let req = request(B_ID, ts, B_SIG, B_BODY.as_bytes());
        let result = check(&scheme(), &key(B_SECRET), &req, at(B_TS));
        // A trailing space is trimmed as HTTP whitespace: then it is the valid timestamp.
        if ts == "1614265330 " {
            assert_eq!(result, Ok(Verified::Authentic));
        } else {
            assert!(
                matches!(result, Err(AuthError::Malformed { .. })),
                "{ts:?}: {result:?}"
            );
        }
    }
}

#[test]
fn missing_headers() {
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut req = b(B_SIG);
        req.headers.retain(|(n, _)| n != missing);
        assert_eq!(
            check(&scheme(), &key(B_SECRET), &req, at(B_TS)),
            Err(AuthError::MissingHeader(missing.into()))
        );
    }
}

#[test]
fn ids_with_dots_and_repeated_headers_are_rejected() {
    let raw = decode_secret(B_SECRET);
    let ts = B_TS.to_string();
    // `msg.1614265330` + `.` + `x` signs like `msg` + `.1614265330.x`… refuse dotted ids.
    let id = "msg_p5jXN8AQM9.LWM0D4loKWxJek";
    let req = request(
        id,
        &ts,
        &sign(&raw, id, &ts, B_BODY.as_bytes()),
        B_BODY.as_bytes(),
    );
    assert!(matches!(
        check(&scheme(), &key(B_SECRET), &req, at(B_TS)),
        Err(AuthError::Malformed { .. })
    ));
    let twice = b(B_SIG).with_header("Webhook-Signature", B_SIG);
    assert!(matches!(
        check(&scheme(), &key(B_SECRET), &twice, at(B_TS)),
        Err(AuthError::Malformed { .. })
    ));
    let two_ids = b(B_SIG).with_header("webhook-id", "msg_other");
    assert!(matches!(
        check(&scheme(), &key(B_SECRET), &two_ids, at(B_TS)),
        Err(AuthError::Malformed { .. })
    ));
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBodyByte { index: usize, xor: u8 },
    IdChar { pos: usize, pick: usize },
    TimestampWithin(i64),
    TimestampBeyond(i64),
    SignatureChar { pos: usize, pick: usize },
    Version(&'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(index, xor)| Mutation::FlipBodyByte { index, xor }),
        (any::<usize>(), any::<usize>()).prop_map(|(pos, pick)| Mutation::IdChar { pos, pick }),
        prop_oneof![-300i64..0, 1i64..=300].prop_map(Mutation::TimestampWithin),
        prop_oneof![301i64..=3000, -3000i64..=-301].prop_map(Mutation::TimestampBeyond),
        (any::<usize>(), any::<usize>())
            .prop_map(|(pos, pick)| Mutation::SignatureChar { pos, pick }),
        prop_oneof![
            Just("v2,"),
            Just("v1a,"),
            Just("v0,"),
            Just("V1,"),
            Just("")
        ]
        .prop_map(Mutation::Version),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn mutations_never_verify(
        body in body(),
        key_bytes in proptest::collection::vec(any::<u8>(), 24..=64),
        id in "msg_[0-9A-Za-z]{10,27}",
        ts in 1_000_000_000i64..4_000_000_000,
        m in mutation(),
    ) {
        let secret = format!("whsec_{}", b64(&key_bytes));
        let s = key(&secret);
        let ts_text = ts.to_string();
        let sig = sign(&key_bytes, &id, &ts_text, &body);
        prop_assert_eq!(check(&scheme(), &s, &request(&id, &ts_text, &sig, &body), at(ts)), Ok(Verified::Authentic));

        let (mut body2, mut id2, mut ts2, mut sig2, mut now) = (body.clone(), id.clone(), ts_text.clone(), sig.clone(), at(ts));
        match m {
            Mutation::FlipBodyByte { index, xor } => {
                if body2.is_empty() { body2.push(xor) } else { let i = index % body2.len(); body2[i] ^= xor }
            }
            Mutation::IdChar { pos, pick } => {
                let i = 4 + pos % (id.len() - 4);
                id2 = replace_ascii(&id, i, other_char(ALNUM, char::from(id.as_bytes()[i]), pick));
            }
            Mutation::TimestampWithin(delta) => ts2 = (ts + delta).to_string(),
            Mutation::TimestampBeyond(delta) => now = at(ts + delta),
            Mutation::SignatureChar { pos, pick } => sig2 = format!("v1,{}", mutate_base64(&sig[3..], pos, pick)),
            Mutation::Version(v) => sig2 = format!("{v}{}", &sig[3..]),
        }
        let result = check(&scheme(), &s, &request(&id2, &ts2, &sig2, &body2), now);
        if matches!(m, Mutation::TimestampBeyond(_)) {
            prop_assert_eq!(result, Err(AuthError::Stale { tolerance_secs: 300 }));
        } else {
            assert_rejected_quietly(result, &[&secret, &secret[6..], &sig[3..]]);
        }
    }
}

// Signing (`sign_standard_webhooks`): the spec's known answers, rotation, round trip.

fn names(list: &[&str]) -> Vec<switchboard_core::SecretName> {
    list.iter().map(|n| name(n)).collect()
}

#[test]
fn signing_reproduces_vectors_a_and_b() {
    let signed_a = webhook_auth::sign_standard_webhooks(
        &names(&["signing_secret"]),
        &key(A_SECRET),
        A_ID,
        at(A_TS),
        A_BODY.as_bytes(),
    );
    assert_eq!(signed_a.as_deref(), Ok(A_SIG));
    let signed_b = webhook_auth::sign_standard_webhooks(
        &names(&["signing_secret"]),
        &key(B_SECRET),
        B_ID,
        at(B_TS),
        B_BODY.as_bytes(),
    );
    assert_eq!(signed_b.as_deref(), Ok(B_SIG));
}

#[test]
fn signing_with_several_secrets_lists_one_entry_each_and_each_verifies() {
    let both = secrets(&[("new", A_SECRET), ("old", B_SECRET)]);
    let header = webhook_auth::sign_standard_webhooks(
        &names(&["new", "old"]),
        &both,
        A_ID,
        at(A_TS),
        A_BODY.as_bytes(),
    )
    .unwrap();
    let entries: Vec<&str> = header.split(' ').collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0], A_SIG);
    assert!(entries[1].starts_with("v1,") && entries[1] != A_SIG);
    // A receiver that knows only one of the two secrets accepts the message (rotation).
    for only in [A_SECRET, B_SECRET] {
        assert_eq!(
            check(&scheme(), &key(only), &a(&header), at(A_TS)),
            Ok(Verified::Authentic)
        );
    }
    // One that knows neither does not.
    assert_eq!(
        check(
            &scheme(),
            &key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr=="),
            &a(&header),
            at(A_TS)
        ),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn signing_refuses_bad_ids_no_secrets_and_unusable_secrets() {
    let s = key(A_SECRET);
    let sign = |ids: &[&str], id: &str, store: &Secrets| {
        webhook_auth::sign_standard_webhooks(&names(ids), store, id, at(A_TS), b"{}")
    };
    assert!(matches!(
        sign(&["signing_secret"], "msg.1", &s),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        sign(&["signing_secret"], "", &s),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        sign(&[], "msg_1", &s),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        sign(&["absent"], "msg_1", &s),
        Err(AuthError::MissingSecret(_))
    ));
    assert!(matches!(
        sign(&["signing_secret"], "msg_1", &key("whsec_")),
        Err(AuthError::InvalidSecret { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signing_round_trips_through_verify(
        body in body(),
        key_bytes in proptest::collection::vec(any::<u8>(), 24..=64),
        id in "msg_[0-9A-Za-z]{10,27}",
        ts in 1_000_000_000i64..4_000_000_000,
    ) {
        let s = key(&format!("whsec_{}", b64(&key_bytes)));
        let header = webhook_auth::sign_standard_webhooks(&names(&["signing_secret"]), &s, &id, at(ts), &body).unwrap();
        prop_assert_eq!(check(&scheme(), &s, &request(&id, &ts.to_string(), &header, &body), at(ts)), Ok(Verified::Authentic));
    }
}
