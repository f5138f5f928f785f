//! Credentials seen by the provider: basic, bearer, custom header.

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{HttpRequest, Method, Secrets};
use switchboard_transport::TransportError;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::transport;

fn secrets() -> Secrets {
    Secrets::default()
        .with("auth_token", "hunter2")
        .with("api_token", "tok-123")
        .with("api_key", "key-456")
}

#[tokio::test]
async fn basic_bearer_and_header_credentials_reach_the_provider() {
    let server = MockServer::start().await;
    // "AC1:hunter2" in base64.
    Mock::given(method("GET"))
        .and(path("/basic"))
        .and(header("authorization", "Basic QUMxOmh1bnRlcjI="))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/bearer"))
        .and(header("authorization", "Bearer tok-123"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/header"))
        .and(header("api-key", "key-456"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(202).set_body_string("{}"))
        .expect(1)
        .mount(&server)
        .await;

    let transport = transport();
    let secrets = secrets();
    let url = |p: &str| format!("{}{p}", server.uri());
    let cases = [
        (
            HttpRequest::new(Method::Get, url("/basic")),
            OutboundAuth::Basic {
                username: "AC1".into(),
                password: "auth_token".into(),
            },
            200,
        ),
        (
            HttpRequest::new(Method::Get, url("/bearer")),
            OutboundAuth::Bearer {
                token: "api_token".into(),
            },
            200,
        ),
        (
            HttpRequest::new(Method::Post, url("/header")).with_json(&serde_json::json!({"a": 1})),
            OutboundAuth::Header {
                name: "api-key".into(),
                value: "api_key".into(),
            },
            202,
        ),
    ];
    for (req, auth, status) in cases {
        let exchange = transport.execute(&req, &auth, &secrets).await.unwrap();
        assert_eq!(exchange.response.status, status, "{req:?}");
        assert_eq!(exchange.traces.len(), 1);
    }
}

#[tokio::test]
async fn connector_headers_cannot_override_the_credential() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer tok-123"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let req =
        HttpRequest::new(Method::Get, server.uri()).with_header("Authorization", "Bearer forged");
    let auth = OutboundAuth::Bearer {
        token: "api_token".into(),
    };
    let exchange = transport().execute(&req, &auth, &secrets()).await.unwrap();
    assert_eq!(exchange.response.status, 200);
}

#[tokio::test]
async fn a_missing_secret_is_named_and_nothing_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let req = HttpRequest::new(Method::Get, server.uri());
    let auth = OutboundAuth::Bearer {
        token: "not_configured".into(),
    };
    let err = transport()
        .execute(&req, &auth, &secrets())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::MissingSecret { name } if name.as_str() == "not_configured")
    );
    assert!(err.not_sent() && !err.outcome_unknown());
    assert_eq!(err.to_string(), "secret `not_configured` is not configured");
}
