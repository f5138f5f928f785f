//! Garbage in, typed errors out: arbitrary requests never verify and never panic.

use std::time::Duration;

use proptest::prelude::*;
use switchboard_core::webhook_auth::{AuthError, WebhookAuth};
use switchboard_core::{Method, Secrets, WebhookRequest};

use crate::support::*;

fn schemes() -> Vec<WebhookAuth> {
    vec![
        WebhookAuth::HmacSha256Header {
            header: "X-Hub-Signature-256".into(),
            prefix: "sha256=".into(),
            secret: name("app_secret"),
            verify_token: Some(name("verify_token")),
        },
        WebhookAuth::Twilio {
            auth_token: name("auth_token"),
        },
        WebhookAuth::Sinch {
            secret: name("sinch"),
            tolerance: Duration::from_secs(300),
        },
        WebhookAuth::StandardWebhooks {
            secret: name("whsec"),
            tolerance: Duration::from_secs(300),
        },
        WebhookAuth::Basic {
            username: "user".into(),
            password: name("password"),
        },
        WebhookAuth::HeaderToken {
            header: "X-Webhook-Token".into(),
            token: name("token"),
        },
    ]
}

fn all_secrets() -> Secrets {
    secrets(&[
        ("app_secret", "meta-app-secret"),
        ("verify_token", "meta-verify-token"),
        ("auth_token", "twilio-auth-token"),
        ("sinch", "sinch-secret"),
        ("whsec", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("password", "basic-password"),
        ("token", "header-token-value"),
    ])
}

const HEADER_NAMES: &[&str] = &[
    "X-Hub-Signature-256",
    "X-Twilio-Signature",
    "x-sinch-webhook-signature",
    "x-sinch-webhook-signature-nonce",
    "x-sinch-webhook-signature-timestamp",
    "x-sinch-webhook-signature-algorithm",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "Authorization",
    "X-Webhook-Token",
    "Content-Type",
];

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,64}",
        "[ -~]{0,80}",
        "sha256=[0-9a-fA-F]{64}",
        "[A-Za-z0-9+/]{27}=",
        "[A-Za-z0-9+/]{43}=",
        "v1,[A-Za-z0-9+/]{43}= v2,[A-Za-z0-9+/]{0,50}",
        "[0-9]{1,20}",
        "Basic [A-Za-z0-9+/=]{0,40}",
        "\\PC{0,4}".prop_map(|s| s.repeat(3000)),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            proptest::sample::select(HEADER_NAMES).prop_map(str::to_owned),
            "[A-Za-z-]{1,20}"
        ],
        header_value(),
    )
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        "https?://[a-z.]{1,12}(:[0-9]{0,6})?/[ -~]{0,40}",
        "https://h/p\\?(hub\\.(mode|verify_token|challenge)=[ -~]{0,10}&?){0,4}",
        "https://h/p\\?bodySHA256=[0-9a-fA-F]{0,70}",
    ]
}

fn method() -> impl Strategy<Value = Method> {
    proptest::sample::select(vec![
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Random requests against every scheme: an error (typed, never a panic), never a pass.
    #[test]
    fn arbitrary_requests_are_rejected(
        method in method(),
        url in url(),
        headers in proptest::collection::vec(header(), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now_secs in any::<i64>(),
    ) {
        let req = WebhookRequest { method, url, headers, body };
        let s = all_secrets();
        for scheme in schemes() {
            let result = check(&scheme, &s, &req, at(now_secs));
            prop_assert!(result.is_err(), "{scheme:?} accepted {req:?}");
            let text = result.unwrap_err().to_string();
            for secret in ["meta-app-secret", "twilio-auth-token", "sinch-secret", "basic-password", "header-token-value", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
                prop_assert!(!text.contains(secret));
            }
        }
    }
}

#[test]
fn huge_headers_are_refused_before_any_work() {
    let huge = "A".repeat(100_000);
    let s = all_secrets();
    for scheme in schemes() {
        for name in HEADER_NAMES {
            let req =
                WebhookRequest::new(Method::Post, "https://h/p").with_header(*name, huge.as_str());
            let result = check(&scheme, &s, &req, now());
            assert!(result.is_err(), "{scheme:?} {name}");
            if let Err(AuthError::Malformed { reason, .. }) = &result {
                assert!(!reason.contains(&huge[..100]));
            }
        }
    }
}

#[test]
fn empty_values_are_malformed_not_missing() {
    let s = all_secrets();
    let cases: [(usize, &str); 6] = [
        (0, "X-Hub-Signature-256"),
        (1, "X-Twilio-Signature"),
        (2, "x-sinch-webhook-signature"),
        (3, "webhook-signature"),
        (4, "Authorization"),
        (5, "X-Webhook-Token"),
    ];
    let schemes = schemes();
    for (i, header) in cases {
        let req = WebhookRequest::new(Method::Post, "https://h/p").with_header(header, "");
        let result = check(&schemes[i], &s, &req, now());
        assert!(
            matches!(
                result,
                Err(AuthError::Malformed { .. }) | Err(AuthError::MissingHeader(_))
            ),
            "{header}: {result:?}"
        );
    }
}

#[test]
fn binary_bodies_are_fine_to_verify() {
    // Verification is over bytes: a non-UTF-8 body signs and verifies like any other.
    let body: Vec<u8> = (0..=255).collect();
    let sig = format!(
        "sha256={}",
        hex::encode(hmac_sha256(b"meta-app-secret", &[&body]))
    );
    let req = WebhookRequest::new(Method::Post, "https://h/p")
        .with_header("X-Hub-Signature-256", sig)
        .with_body(body);
    assert!(check(&schemes()[0], &all_secrets(), &req, now()).is_ok());
}
