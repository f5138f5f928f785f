//! Benchmarks of `switchboard-core`'s hot paths: webhook verification per scheme on a 2 KB
//! body, the delivery-status merge, and the JSON round trip of an inbound message.
//!
//! `cargo bench -p switchboard-core --bench core -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_main};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use switchboard_core::webhook_auth::{self, Verified, WebhookAuth};
use switchboard_core::{
    Address, Channel, Content, DeliveryState, DeliveryStatus, ErrorClass, Extensions, InboundEvent,
    InboundMessage, Method, ProviderError, SecretName, Secrets, Timestamp, WebhookRequest,
};

const BODY_LEN: usize = 2048;
const NOW_SECS: i64 = 1_700_000_000;

fn mac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A JSON-looking body of exactly [`BODY_LEN`] bytes.
fn json_body() -> Vec<u8> {
    let mut body = br#"{"object":"whatsapp_business_account","entry":[{"text":""#.to_vec();
    body.resize(BODY_LEN - 4, b'x');
    body.extend_from_slice(br#""}]}"#);
    body
}

fn secrets() -> Secrets {
    Secrets::default()
        .with("app_secret", "1222e786b144d0e85b9f365372d93676")
        .with("auth_token", "0123456789abcdef0123456789abcdef")
        .with("sinch", "foo_secret1234")
        .with("whsec", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .with("password", "correct horse battery staple")
        .with("token", "tok_9f8e7d6c5b4a3f2e1d0c")
        .with("vonage", "qwertyuiopasdfghjklzxcvbnm123456")
        // RFC 8032 §7.1 TEST 1's public key.
        .with("telnyx", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
}

/// Every scheme with a valid 2 KB request for it.
fn cases() -> Vec<(&'static str, WebhookAuth, WebhookRequest)> {
    let body = json_body();
    let url = "https://gw.example.com/hooks/ch_42";
    let mut cases = Vec::new();

    let sig = hex::encode(mac_sha256(b"1222e786b144d0e85b9f365372d93676", &[&body]));
    cases.push((
        "hmac_sha256_header",
        WebhookAuth::HmacSha256Header {
            header: "X-Hub-Signature-256".into(),
            prefix: "sha256=".into(),
            secret: SecretName::new("app_secret"),
            verify_token: Some(SecretName::new("verify_token")),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("Content-Type", "application/json")
            .with_header("X-Hub-Signature-256", format!("sha256={sig}"))
            .with_body(body.clone()),
    ));

    // A Twilio inbound SMS form of about 2 KB, signed over the URL and the sorted params.
    let long_body = "Hello from the benchmark! ".repeat(60);
    let params: Vec<(&str, &str)> = vec![
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94107"),
        ("SmsSid", "SM0123456789abcdef0123456789abcdef"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", &long_body),
        ("FromCountry", "US"),
        ("To", "+14155550100"),
        ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
        ("ToZip", "94107"),
        ("NumSegments", "10"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155550199"),
        ("ApiVersion", "2010-04-01"),
    ];
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let mut sorted = params.clone();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in &sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
    mac.update(signed.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    cases.push((
        "twilio",
        WebhookAuth::Twilio {
            auth_token: SecretName::new("auth_token"),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("Content-Type", "application/x-www-form-urlencoded")
            .with_header("X-Twilio-Signature", sig)
            .with_body(form.into_bytes()),
    ));

    let (nonce, ts) = ("01FJA8B4A7BM43YGWSG9GBV067", NOW_SECS.to_string());
    let sig = STANDARD.encode(mac_sha256(
        b"foo_secret1234",
        &[&body, b".", nonce.as_bytes(), b".", ts.as_bytes()],
    ));
    cases.push((
        "sinch",
        WebhookAuth::Sinch {
            secret: SecretName::new("sinch"),
            tolerance: Duration::from_secs(300),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("x-sinch-webhook-signature", sig)
            .with_header("x-sinch-webhook-signature-nonce", nonce)
            .with_header("x-sinch-webhook-signature-timestamp", ts.as_str())
            .with_header("x-sinch-webhook-signature-algorithm", "HmacSHA256")
            .with_body(body.clone()),
    ));

    let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let sig = STANDARD.encode(mac_sha256(
        &key,
        &[id.as_bytes(), b".", ts.as_bytes(), b".", &body],
    ));
    cases.push((
        "standard_webhooks",
        WebhookAuth::StandardWebhooks {
            secret: SecretName::new("whsec"),
            tolerance: Duration::from_secs(300),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("webhook-id", id)
            .with_header("webhook-timestamp", ts.as_str())
            .with_header(
                "webhook-signature",
                format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,{sig}"),
            )
            .with_body(body.clone()),
    ));

    let credentials = STANDARD.encode("switchboard:correct horse battery staple");
    cases.push((
        "basic",
        WebhookAuth::Basic {
            username: "switchboard".into(),
            password: SecretName::new("password"),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("Authorization", format!("Basic {credentials}"))
            .with_body(body.clone()),
    ));

    // A Vonage Messages webhook: HS256 JWT with the body's payload_hash.
    let b64url = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let claims = format!(
        r#"{{"iat":{NOW_SECS},"jti":"c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5","iss":"Vonage","payload_hash":"{}","api_key":"a1b2c3d4"}}"#,
        hex::encode(<Sha256 as sha2::Digest>::digest(&body))
    );
    let input = format!(
        "{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(claims.as_bytes())
    );
    let sig = b64url(&mac_sha256(
        b"qwertyuiopasdfghjklzxcvbnm123456",
        &[input.as_bytes()],
    ));
    cases.push((
        "vonage_jwt",
        WebhookAuth::VonageJwt {
            secret: SecretName::new("vonage"),
            tolerance: Duration::from_secs(300),
            api_key: None,
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("Authorization", format!("Bearer {input}.{sig}"))
            .with_body(body.clone()),
    ));

    // A Telnyx webhook signed with RFC 8032 TEST 1's secret key.
    let signing_key = ed25519_dalek::SigningKey::from_bytes(&[
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ]);
    let signed = [ts.as_bytes(), b"|", &body].concat();
    let sig = STANDARD.encode(ed25519_dalek::Signer::sign(&signing_key, &signed).to_bytes());
    cases.push((
        "telnyx_ed25519",
        WebhookAuth::TelnyxEd25519 {
            public_key: SecretName::new("telnyx"),
            tolerance: Duration::from_secs(300),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("telnyx-signature-ed25519", sig)
            .with_header("telnyx-timestamp", ts.as_str())
            .with_body(body.clone()),
    ));

    cases.push((
        "header_token",
        WebhookAuth::HeaderToken {
            header: "X-Webhook-Token".into(),
            token: SecretName::new("token"),
        },
        WebhookRequest::new(Method::Post, url)
            .with_header("X-Webhook-Token", "tok_9f8e7d6c5b4a3f2e1d0c")
            .with_body(body),
    ));
    cases
}

fn verify(c: &mut Criterion) {
    let secrets = secrets();
    let now = Timestamp::from_unix_seconds(NOW_SECS);
    let mut group = c.benchmark_group("verify");
    for (name, scheme, req) in cases() {
        assert_eq!(
            webhook_auth::verify(&scheme, &secrets, &req, now),
            Ok(Verified::Authentic),
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| webhook_auth::verify(black_box(&scheme), &secrets, black_box(&req), now))
        });
    }
    group.finish();
}

fn status_merge(c: &mut Criterion) {
    let error = ProviderError::new(ErrorClass::Permanent, "unreachable").with_code("30003");
    let updates: Vec<(DeliveryStatus, Option<ProviderError>)> = vec![
        (DeliveryStatus::Sent, None),
        (DeliveryStatus::Queued, None),
        (DeliveryStatus::Accepted, None),
        (DeliveryStatus::Undelivered, Some(error.clone())),
        (DeliveryStatus::Delivered, None),
        (DeliveryStatus::Failed, Some(error)),
        (DeliveryStatus::Unknown("partially_delivered".into()), None),
        (DeliveryStatus::Read, None),
    ];
    c.bench_function("status_merge", |b| {
        b.iter(|| {
            let mut state = DeliveryState::default();
            for (status, error) in black_box(&updates) {
                state.apply(status, error.as_ref());
            }
            state
        })
    });
}

fn json_roundtrip(c: &mut Criterion) {
    let event = InboundEvent::Message(InboundMessage {
        id: "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA".into(),
        from: Address::phone(Channel::WhatsApp, "+972544401243"),
        to: Address::phone(Channel::WhatsApp, "+15550953877"),
        timestamp: Some(Timestamp::from_unix_seconds(1_730_231_903)),
        content: Content::text("Hey there! I am using PyWa."),
        profile_name: Some("PyWa Tests".into()),
        reply_to: None,
        extensions: Extensions::new(),
    });
    let mut group = c.benchmark_group("json_roundtrip");
    group.bench_function("inbound_message", |b| {
        b.iter(|| {
            let json = serde_json::to_vec(black_box(&event)).unwrap();
            serde_json::from_slice::<InboundEvent>(&json).unwrap()
        })
    });
    group.finish();
}

/// The group `criterion_group!` would generate, without its undocumented `pub fn`.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    verify(&mut criterion);
    status_merge(&mut criterion);
    json_roundtrip(&mut criterion);
}

criterion_main!(benches);
