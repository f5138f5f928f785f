//! Secrets and phone numbers never reach logs, traces, errors or `Debug` output.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{HttpRequest, Method, Secrets};
use switchboard_transport::{EgressPolicy, Transport};
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::loopback;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const PHONE: &str = "14155550123";
const SECRETS: &[&str] = &[
    "sekret-basic-pw",
    "sekret-bearer-token",
    "sekret-header-value",
    "sekret-client-secret",
    "sekret-access-token",
    "sekret-query-key",
    "sekret-cookie",
    "sekret-url-password",
];

fn secrets() -> Secrets {
    Secrets::default()
        .with("basic", "sekret-basic-pw")
        .with("bearer", "sekret-bearer-token")
        .with("header", "sekret-header-value")
        .with("client", "sekret-client-secret")
}

#[tokio::test]
async fn secrets_and_phone_numbers_never_appear_in_logs_traces_or_errors() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "sekret-access-token", "token_type": "bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    Mock::given(path_regex("/slow$"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(path_regex("/big$"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 5000]))
        .mount(&server)
        .await;
    Mock::given(path_regex("/denied$"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("set-cookie", "session=sekret-cookie")
                .insert_header("x-recipient", "+14155550123"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-recipient", "+14155550123")
                .set_body_string("ok"),
        )
        .mount(&server)
        .await;

    let transport = loopback()
        .timeout(Duration::from_millis(300))
        .max_body_bytes(1000)
        .build()
        .unwrap();
    let base = server.uri();
    let query = format!("?To=%2B{PHONE}&api_key=sekret-query-key&From=+{PHONE}");
    let oauth = OutboundAuth::OAuth2ClientCredentials {
        token_url: format!("{base}/token"),
        client_id: "client-1".into(),
        client_secret: "client".into(),
        scope: None,
    };
    let schemes = [
        OutboundAuth::Basic {
            username: "AC1".into(),
            password: "basic".into(),
        },
        OutboundAuth::Bearer {
            token: "bearer".into(),
        },
        OutboundAuth::Header {
            name: "X-Partner-Cred".into(),
            value: "header".into(),
        },
        oauth,
    ];
    let mut shown = Vec::new();
    for auth in &schemes {
        for target in ["/ok", "/slow", "/big", "/denied"] {
            let req = HttpRequest::new(
                Method::Get,
                format!("{base}/Accounts/+{PHONE}{target}{query}"),
            )
            .with_header("X-Customer", format!("+{PHONE}"));
            match transport.execute(&req, auth, &secrets()).await {
                Ok(exchange) => {
                    shown.push(format!("{exchange:?}"));
                    for trace in &exchange.traces {
                        shown.push(format!("{trace} {trace:?}"));
                    }
                }
                Err(err) => shown.push(format!("{err} {err:?}")),
            }
        }
    }
    // Errors that carry URLs: unparseable, denied.
    let bad_urls = [
        format!("{base}/x?token=sekret-query-key&to=+{PHONE}"),
        format!("https://user:sekret-url-password@10.0.0.1/+{PHONE}?api_key=sekret-query-key"),
        format!("notaurl?api_key=sekret-query-key&to=+{PHONE}"),
    ];
    let strict = Transport::builder()
        .egress(EgressPolicy::allow_any_host())
        .build()
        .unwrap();
    for url in &bad_urls {
        let req = HttpRequest::new(Method::Get, url.as_str());
        let err = strict
            .execute(&req, &schemes[0], &secrets())
            .await
            .unwrap_err();
        assert!(err.not_sent(), "{err}");
        shown.push(format!("{err} {err:?}"));
    }
    shown.push(format!("{transport:?} {:?}", secrets()));
    drop(_guard);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("http exchange"), "nothing logged:\n{log}");
    assert!(
        log.contains("+1415*****23"),
        "phone numbers are logged masked:\n{log}"
    );
    assert!(log.contains("[REDACTED]"), "{log}");
    let everything = format!("{log}\n{}", shown.join("\n"));
    for secret in SECRETS {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked:\n{everything}"
        );
    }
    assert!(
        !everything.contains(PHONE),
        "a phone number leaked:\n{everything}"
    );
    // Base64 of the Basic credentials, and the client's.
    for b64 in [
        "QUMxOnNla3JldC1iYXNpYy1wdw",
        "Y2xpZW50LTE6c2VrcmV0LWNsaWVudC1zZWNyZXQ",
    ] {
        assert!(!everything.contains(b64), "`{b64}` leaked");
    }
    // The outcomes really were the ones meant to be shown.
    assert!(everything.contains("timed out"), "{everything}");
    assert!(everything.contains("exceeds the limit"), "{everything}");
    assert!(everything.contains("401"), "{everything}");
}
