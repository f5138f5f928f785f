//! `Sinch`: Sinch Conversation API callbacks (providers.md §3.6, vectors S1 and S2), with the
//! replay window.

use std::time::Duration;

use proptest::prelude::*;
use switchboard_core::webhook_auth::{AuthError, Verified, WebhookAuth};
use switchboard_core::{Method, Secrets, WebhookRequest};

use crate::support::*;

const SECRET: &str = "foo_secret1234";
const NONCE: &str = "01FJA8B4A7BM43YGWSG9GBV067";
const TS: &str = "1634579353";
const TS_SECS: i64 = 1_634_579_353;
const S1_BODY: &str = r#"{"app_id":"01EB37HMH1M6SV18BSNS3G135H","accepted_time":"2020-11-17T15:09:11.659Z","project_id":"c36f3d3d-1513-2edd-ae42-11995557ff61","message_delivery_report":{"message_id":"01EQBC1A3BEK731GY4YXEN0C2R","conversation_id":"01EPYATA64TMNZ1FV02JKF12JF","status":"QUEUED_ON_CHANNEL","contact_id":"01EXA07N79THJ20WSN6AS30TMW"}}"#;
const S1_SIG: &str = "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk=";
const S2_BODY: &str = r#"{"app_id":"","accepted_time":"2021-10-18T17:49:13.813615Z","project_id":"e2df3a34-a71b-4448-9db5-a8d2baad28e4","contact_create_notification":{"contact":{"id":"01FJA8B466Y0R2GNXD78MD9SM1","channel_identities":[{"channel":"SMS","identity":"48123456789","app_id":""}],"display_name":"New Test Contact","email":"new.contact@email.com","external_id":"","metadata":"","language":"EN_US"}},"message_metadata":""}"#;
const S2_SIG: &str = "6bpJoRmFoXVjfJIVglMoJzYXxnoxRujzR4k2GOXewOE=";
const TOLERANCE: u64 = 300;

fn scheme() -> WebhookAuth {
    WebhookAuth::Sinch {
        secret: name("webhook_secret"),
        tolerance: Duration::from_secs(TOLERANCE),
    }
}

fn key() -> Secrets {
    secrets(&[("webhook_secret", SECRET)])
}

fn request(body: &[u8], sig: &str, nonce: &str, ts: &str) -> WebhookRequest {
    WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/sinch")
        .with_header("Content-Type", "application/json")
        .with_header("x-sinch-webhook-signature", sig)
        .with_header("x-sinch-webhook-signature-nonce", nonce)
        .with_header("x-sinch-webhook-signature-timestamp", ts)
        .with_header("x-sinch-webhook-signature-algorithm", "HmacSHA256")
        .with_body(body.to_vec())
}

fn sign(body: &[u8], nonce: &str, ts: &str) -> String {
    b64(&hmac_sha256(
        SECRET.as_bytes(),
        &[body, b".", nonce.as_bytes(), b".", ts.as_bytes()],
    ))
}

#[test]
fn s1_and_s2_vectors() {
    for (body, sig) in [(S1_BODY, S1_SIG), (S2_BODY, S2_SIG)] {
        assert_eq!(
            sign(body.as_bytes(), NONCE, TS),
            sig,
            "signed data is body.nonce.timestamp"
        );
        let req = request(body.as_bytes(), sig, NONCE, TS);
        assert_eq!(
            check(&scheme(), &key(), &req, at(TS_SECS)),
            Ok(Verified::Authentic)
        );
    }
}

#[test]
fn algorithm_header_is_optional_but_checked() {
    let mut req = request(S1_BODY.as_bytes(), S1_SIG, NONCE, TS);
    req.headers
        .retain(|(n, _)| n != "x-sinch-webhook-signature-algorithm");
    assert_eq!(
        check(&scheme(), &key(), &req, at(TS_SECS)),
        Ok(Verified::Authentic)
    );
    let sha1 = req
        .clone()
        .with_header("x-sinch-webhook-signature-algorithm", "HmacSHA1");
    assert!(matches!(
        check(&scheme(), &key(), &sha1, at(TS_SECS)),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn replay_window_both_directions() {
    let req = request(S1_BODY.as_bytes(), S1_SIG, NONCE, TS);
    let tol = TOLERANCE as i64;
    for now in [TS_SECS - tol, TS_SECS + tol, TS_SECS] {
        assert_eq!(
            check(&scheme(), &key(), &req, at(now)),
            Ok(Verified::Authentic),
            "now {now}"
        );
    }
    for now in [TS_SECS - tol - 1, TS_SECS + tol + 1, 0, i64::MAX / 2000] {
        assert_eq!(
            check(&scheme(), &key(), &req, at(now)),
            Err(AuthError::Stale {
                tolerance_secs: TOLERANCE
            }),
            "now {now}"
        );
    }
    // 300.001 s late is already outside.
    let late = switchboard_core::Timestamp::from_unix_millis((TS_SECS + tol) * 1000 + 1);
    assert!(matches!(
        check(&scheme(), &key(), &req, late),
        Err(AuthError::Stale { .. })
    ));
}

#[test]
fn tampering_fails() {
    let now = at(TS_SECS);
    let other_ts = (TS_SECS + 1).to_string();
    let cases = [
        request(&S1_BODY.as_bytes()[1..], S1_SIG, NONCE, TS),
        request(S2_BODY.as_bytes(), S1_SIG, NONCE, TS),
        request(S1_BODY.as_bytes(), S1_SIG, "01FJA8B4A7BM43YGWSG9GBV068", TS),
        request(S1_BODY.as_bytes(), S1_SIG, NONCE, &other_ts),
        request(S1_BODY.as_bytes(), S2_SIG, NONCE, TS),
        // Leading zeros change the signed string.
        request(S1_BODY.as_bytes(), S1_SIG, NONCE, &format!("0{TS}")),
    ];
    for req in cases {
        assert_eq!(
            check(&scheme(), &key(), &req, now),
            Err(AuthError::Mismatch)
        );
    }
    let wrong_key = secrets(&[("webhook_secret", "foo_secret1235")]);
    let req = request(S1_BODY.as_bytes(), S1_SIG, NONCE, TS);
    assert_eq!(
        check(&scheme(), &wrong_key, &req, now),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn bytes_cannot_move_between_body_and_nonce() {
    // `a.b` + `c` and `a` + `b.c` sign the same string; a nonce with a dot is refused.
    let sig = sign(b"{}.x", "n", TS);
    let shifted = request(b"{}", &sig, "x.n", TS);
    assert!(matches!(
        check(&scheme(), &key(), &shifted, at(TS_SECS)),
        Err(AuthError::Malformed { .. })
    ));
    assert_eq!(
        check(
            &scheme(),
            &key(),
            &request(b"{}.x", &sig, "n", TS),
            at(TS_SECS)
        ),
        Ok(Verified::Authentic)
    );
}

#[test]
fn malformed_and_missing_headers_are_typed() {
    let now = at(TS_SECS);
    for bad_ts in [
        "1634579353.0",
        "-1634579353",
        "+1634579353",
        "hello",
        "0x616D",
        "1634579353 1",
        "9999999999999999999999",
    ] {
        let req = request(S1_BODY.as_bytes(), S1_SIG, NONCE, bad_ts);
        assert!(
            matches!(
                check(&scheme(), &key(), &req, now),
                Err(AuthError::Malformed { .. })
            ),
            "{bad_ts}"
        );
    }
    for bad_sig in [
        "",
        "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk",
        "not base64!",
        "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczf==",
        "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk=Yc+3",
    ] {
        let req = request(S1_BODY.as_bytes(), bad_sig, NONCE, TS);
        assert!(
            matches!(
                check(&scheme(), &key(), &req, now),
                Err(AuthError::Malformed { .. })
            ),
            "{bad_sig:?}"
        );
    }
    for missing in [
        "x-sinch-webhook-signature",
        "x-sinch-webhook-signature-nonce",
        "x-sinch-webhook-signature-timestamp",
    ] {
        let mut req = request(S1_BODY.as_bytes(), S1_SIG, NONCE, TS);
        req.headers.retain(|(n, _)| n != missing);
        assert_eq!(
            check(&scheme(), &key(), &req, now),
            Err(AuthError::MissingHeader(missing.into()))
        );
    }
    assert_eq!(
        check(
            &scheme(),
            &secrets(&[]),
            &request(S1_BODY.as_bytes(), S1_SIG, NONCE, TS),
            now
        ),
        Err(AuthError::MissingSecret(name("webhook_secret")))
    );
    // `x-sinch-signature` (the Numbers API's SHA-1 scheme) is not a substitute.
    let other = WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/sinch")
        .with_header("x-sinch-signature", "abc")
        .with_body(S1_BODY.as_bytes().to_vec());
    assert!(matches!(
        check(&scheme(), &key(), &other, now),
        Err(AuthError::MissingHeader(_))
    ));
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBodyByte {
        index: usize,
        xor: u8,
    },
    NonceChar {
        pos: usize,
        pick: usize,
    },
    /// A different timestamp still inside the window, keeping the signature.
    TimestampWithin(i64),
    /// The whole request replayed outside the window.
    TimestampBeyond(i64),
    SignatureChar {
        pos: usize,
        pick: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tol = TOLERANCE as i64;
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(index, xor)| Mutation::FlipBodyByte { index, xor }),
        (any::<usize>(), any::<usize>()).prop_map(|(pos, pick)| Mutation::NonceChar { pos, pick }),
        prop_oneof![-tol..0, 1..=tol].prop_map(Mutation::TimestampWithin),
        prop_oneof![(tol + 1)..=(10 * tol), -(10 * tol)..=-(tol + 1)]
            .prop_map(Mutation::TimestampBeyond),
        (any::<usize>(), any::<usize>())
            .prop_map(|(pos, pick)| Mutation::SignatureChar { pos, pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn mutations_never_verify(
        body in body(),
        nonce in "[0-9A-Z]{26}",
        ts in 1_000_000_000i64..4_000_000_000,
        m in mutation(),
    ) {
        let ts_text = ts.to_string();
        let sig = sign(&body, &nonce, &ts_text);
        let now = at(ts);
        prop_assert_eq!(check(&scheme(), &key(), &request(&body, &sig, &nonce, &ts_text), now), Ok(Verified::Authentic));

        let (mut body2, mut nonce2, mut ts2, mut sig2, mut now2) = (body.clone(), nonce.clone(), ts_text.clone(), sig.clone(), now);
        match m {
            Mutation::FlipBodyByte { index, xor } => {
                if body2.is_empty() { body2.push(xor) } else { let i = index % body2.len(); body2[i] ^= xor }
            }
            Mutation::NonceChar { pos, pick } => {
                let i = pos % nonce.len();
                nonce2 = replace_ascii(&nonce, i, other_char(ALNUM, char::from(nonce.as_bytes()[i]), pick));
            }
            Mutation::TimestampWithin(delta) => ts2 = (ts + delta).to_string(),
            Mutation::TimestampBeyond(delta) => now2 = at(ts + delta),
            Mutation::SignatureChar { pos, pick } => sig2 = mutate_base64(&sig, pos, pick),
        }
        let result = check(&scheme(), &key(), &request(&body2, &sig2, &nonce2, &ts2), now2);
        if matches!(m, Mutation::TimestampBeyond(_)) {
            prop_assert_eq!(result, Err(AuthError::Stale { tolerance_secs: TOLERANCE }));
        } else {
            assert_rejected_quietly(result, &[SECRET, &sig, &sig2]);
        }
    }
}
