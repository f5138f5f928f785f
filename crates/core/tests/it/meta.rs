//! `HmacSha256Header`: Meta's `X-Hub-Signature-256` (providers.md §2.6) and the GET handshake.

use proptest::prelude::*;
use switchboard_core::webhook_auth::{AuthError, Verified, WebhookAuth};
use switchboard_core::{Method, WebhookReply, WebhookRequest};

use crate::support::*;

const M2_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
const M2_SECRET: &str = "1222e786b144d0e85b9f365372d93676";
const M2_SIG: &str = "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";
const M1_SIG: &str = "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221";
const URL: &str = "https://gw.example.com/hooks/meta";

fn scheme() -> WebhookAuth {
    WebhookAuth::HmacSha256Header {
        header: "X-Hub-Signature-256".into(),
        prefix: "sha256=".into(),
        secret: name("app_secret"),
        verify_token: Some(name("verify_token")),
    }
}

fn keys(app_secret: &str) -> switchboard_core::Secrets {
    secrets(&[
        ("app_secret", app_secret),
        ("verify_token", "s3cr3t-verify"),
    ])
}

fn post(sig: &str, body: &[u8]) -> WebhookRequest {
    WebhookRequest::new(Method::Post, URL)
        .with_header("Content-Type", "application/json")
        .with_header("X-Hub-Signature-256", sig)
        .with_body(body.to_vec())
}

#[test]
fn m1_vector() {
    let req = post(M1_SIG, b"test");
    assert_eq!(
        check(&scheme(), &keys("TEST_APP_SECRET"), &req, now()),
        Ok(Verified::Authentic)
    );
}

#[test]
fn m2_vector_exact_511_bytes() {
    assert_eq!(M2_BODY.len(), 511);
    let req = post(M2_SIG, M2_BODY.as_bytes());
    assert_eq!(
        check(&scheme(), &keys(M2_SECRET), &req, now()),
        Ok(Verified::Authentic)
    );
}

#[test]
fn uppercase_hex_and_header_name_case_are_accepted() {
    let upper = format!("sha256={}", M2_SIG["sha256=".len()..].to_uppercase());
    let req = WebhookRequest::new(Method::Post, URL)
        .with_header("x-hub-signature-256", upper)
        .with_body(M2_BODY.as_bytes().to_vec());
    assert_eq!(
        check(&scheme(), &keys(M2_SECRET), &req, now()),
        Ok(Verified::Authentic)
    );
}

#[test]
fn reserialised_body_fails() {
    // The same JSON with a space: Meta's bytes are what is signed, never a re-serialisation.
    let spaced = M2_BODY.replacen("\"object\":", "\"object\": ", 1);
    let req = post(M2_SIG, spaced.as_bytes());
    assert_eq!(
        check(&scheme(), &keys(M2_SECRET), &req, now()),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn malformed_headers_are_typed() {
    let s = keys("TEST_APP_SECRET");
    let digest = &M1_SIG["sha256=".len()..];
    let cases: Vec<(String, &str)> = vec![
        (format!("sha1={digest}"), "prefix"),
        (digest.to_owned(), "no prefix"),
        (format!("sha256={}", &digest[..63]), "short"),
        (format!("sha256={digest}0"), "long"),
        (format!("sha256={}g", &digest[..63]), "non-hex"),
        ("sha256=".to_owned(), "empty digest"),
        (format!("sha256= {digest}"), "space"),
    ];
    for (value, why) in cases {
        let err = check(&scheme(), &s, &post(&value, b"test"), now());
        assert!(
            matches!(err, Err(AuthError::Malformed { .. })),
            "{why}: {err:?}"
        );
    }
}

#[test]
fn missing_or_legacy_header_is_rejected() {
    let s = keys("TEST_APP_SECRET");
    let bare = WebhookRequest::new(Method::Post, URL).with_body(b"test".to_vec());
    assert_eq!(
        check(&scheme(), &s, &bare, now()),
        Err(AuthError::MissingHeader("X-Hub-Signature-256".into()))
    );
    // The SHA-1 `X-Hub-Signature` is ignored, never a fallback.
    let legacy = bare.with_header(
        "X-Hub-Signature",
        "sha1=a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    );
    assert!(matches!(
        check(&scheme(), &s, &legacy, now()),
        Err(AuthError::MissingHeader(_))
    ));
}

#[test]
fn repeated_signature_header_is_rejected() {
    let req = post(M1_SIG, b"test").with_header("X-Hub-Signature-256", M1_SIG);
    assert!(matches!(
        check(&scheme(), &keys("TEST_APP_SECRET"), &req, now()),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn secrets_missing_or_empty() {
    let req = post(M1_SIG, b"test");
    assert_eq!(
        check(&scheme(), &secrets(&[]), &req, now()),
        Err(AuthError::MissingSecret(name("app_secret")))
    );
    assert!(matches!(
        check(&scheme(), &keys(""), &req, now()),
        Err(AuthError::InvalidSecret { .. })
    ));
}

fn get(query: &str) -> WebhookRequest {
    WebhookRequest::new(Method::Get, format!("{URL}?{query}"))
}

#[test]
fn handshake_echoes_the_challenge() {
    let req = get("hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1158201444");
    assert_eq!(
        check(&scheme(), &keys("TEST_APP_SECRET"), &req, now()),
        Ok(Verified::Handshake(WebhookReply::with_body(
            "text/plain",
            "1158201444"
        )))
    );
    // Percent-encoded token and any parameter order.
    let req = get("hub.challenge=abc-123&hub.verify_token=s3cr3t%2Dverify&hub.mode=subscribe");
    assert_eq!(
        check(&scheme(), &keys("TEST_APP_SECRET"), &req, now()),
        Ok(Verified::Handshake(WebhookReply::with_body(
            "text/plain",
            "abc-123"
        )))
    );
    // The handshake needs the verify token only.
    let only_token = secrets(&[("verify_token", "s3cr3t-verify")]);
    let req = get("hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1");
    assert!(matches!(
        check(&scheme(), &only_token, &req, now()),
        Ok(Verified::Handshake(_))
    ));
}

#[test]
fn handshake_failures() {
    let s = keys("TEST_APP_SECRET");
    let mismatch = [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verif&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verify%20&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=S3CR3T-VERIFY&hub.challenge=1",
    ];
    for q in mismatch {
        assert_eq!(
            check(&scheme(), &s, &get(q), now()),
            Err(AuthError::Mismatch),
            "{q}"
        );
    }
    let malformed = [
        "hub.mode=unsubscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1",
        "hub.verify_token=s3cr3t-verify&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verify",
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=",
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=a+b",
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=%0A",
        "hub.mode=subscribe&hub.verify_token=x&hub.verify_token=s3cr3t-verify&hub.challenge=1",
        "hub.mode=subscribe&hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1",
    ];
    for q in malformed {
        assert!(
            matches!(
                check(&scheme(), &s, &get(q), now()),
                Err(AuthError::Malformed { .. })
            ),
            "{q}"
        );
    }
    let long = format!(
        "hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge={}",
        "1".repeat(513)
    );
    assert!(matches!(
        check(&scheme(), &s, &get(&long), now()),
        Err(AuthError::Malformed { .. })
    ));
    let no_token = secrets(&[("app_secret", "x")]);
    let req = get("hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1");
    assert_eq!(
        check(&scheme(), &no_token, &req, now()),
        Err(AuthError::MissingSecret(name("verify_token")))
    );
}

#[test]
fn get_without_hub_params_or_signature_is_rejected() {
    let s = keys("TEST_APP_SECRET");
    for req in [
        WebhookRequest::new(Method::Get, URL),
        get("foo=bar"),
        get("mode=subscribe&verify_token=s3cr3t-verify&challenge=1"),
    ] {
        assert!(
            matches!(
                check(&scheme(), &s, &req, now()),
                Err(AuthError::MissingHeader(_))
            ),
            "{req:?}"
        );
    }
}

#[test]
fn hub_params_are_no_handshake_without_a_verify_token_or_on_post() {
    let s = keys("TEST_APP_SECRET");
    let no_token = WebhookAuth::HmacSha256Header {
        header: "X-Hub-Signature-256".into(),
        prefix: "sha256=".into(),
        secret: name("app_secret"),
        verify_token: None,
    };
    let req = get("hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1");
    assert!(matches!(
        check(&no_token, &s, &req, now()),
        Err(AuthError::MissingHeader(_))
    ));
    // A POST carrying hub params is an ordinary signed delivery.
    let post = WebhookRequest::new(
        Method::Post,
        format!("{URL}?hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1"),
    )
    .with_header("X-Hub-Signature-256", M1_SIG)
    .with_body(b"test".to_vec());
    assert_eq!(check(&scheme(), &s, &post, now()), Ok(Verified::Authentic));
    let unsigned = WebhookRequest {
        headers: vec![],
        ..post
    };
    assert!(matches!(
        check(&scheme(), &s, &unsigned, now()),
        Err(AuthError::MissingHeader(_))
    ));
}

#[test]
fn custom_header_and_empty_prefix() {
    let scheme = WebhookAuth::HmacSha256Header {
        header: "X-Signature".into(),
        prefix: String::new(),
        secret: name("k"),
        verify_token: None,
    };
    let s = secrets(&[("k", "key")]);
    let sig = hex::encode(hmac_sha256(b"key", &[b"payload"]));
    let req = WebhookRequest::new(Method::Post, URL)
        .with_header("X-Signature", sig.as_str())
        .with_body(b"payload".to_vec());
    assert_eq!(check(&scheme, &s, &req, now()), Ok(Verified::Authentic));
    let prefixed = WebhookRequest::new(Method::Post, URL)
        .with_header("X-Signature", format!("sha256={sig}"))
        .with_body(b"payload".to_vec());
    assert!(check(&scheme, &s, &prefixed, now()).is_err());
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBodyByte { index: usize, xor: u8 },
    AppendBodyByte(u8),
    TruncateBody { keep: usize },
    SignatureDigit { index: usize, pick: usize },
    Prefix(&'static str),
    ReplayOtherBody(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(index, xor)| Mutation::FlipBodyByte { index, xor }),
        any::<u8>().prop_map(Mutation::AppendBodyByte),
        any::<usize>().prop_map(|keep| Mutation::TruncateBody { keep }),
        (0..64usize, any::<usize>())
            .prop_map(|(index, pick)| Mutation::SignatureDigit { index, pick }),
        prop_oneof![
            Just("sha1="),
            Just("sha512="),
            Just(""),
            Just("sha256:"),
            Just("sha256=sha256=")
        ]
        .prop_map(Mutation::Prefix),
        body().prop_map(Mutation::ReplayOtherBody),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A signed request verifies; every mutation of what is signed, or of the signature, fails.
    #[test]
    fn mutations_never_verify(body in body(), key in "[ -~]{1,40}", m in mutation()) {
        let s = secrets(&[("app_secret", &key), ("verify_token", "t")]);
        let digest = hex::encode(hmac_sha256(key.as_bytes(), &[&body]));
        let valid = post(&format!("sha256={digest}"), &body);
        prop_assert_eq!(check(&scheme(), &s, &valid, now()), Ok(Verified::Authentic));

        let (mut prefix, mut digest, mut body2) = ("sha256=", digest, body.clone());
        match m {
            Mutation::FlipBodyByte { index, xor } => {
                if body2.is_empty() { body2.push(xor) } else { let i = index % body2.len(); body2[i] ^= xor }
            }
            Mutation::AppendBodyByte(b) => body2.push(b),
            Mutation::TruncateBody { keep } => {
                if body2.is_empty() { body2.push(0) } else { body2.truncate(keep % body2.len()) }
            }
            Mutation::SignatureDigit { index, pick } => {
                let current = char::from(digest.as_bytes()[index]);
                digest = replace_ascii(&digest, index, other_char("0123456789abcdef", current, pick));
            }
            Mutation::Prefix(p) => prefix = p,
            Mutation::ReplayOtherBody(other) => {
                prop_assume!(other != body);
                body2 = other;
            }
        }
        let tampered = post(&format!("{prefix}{digest}"), &body2);
        assert_rejected_quietly(check(&scheme(), &s, &tampered, now()), &[&key, &digest]);
    }
}
