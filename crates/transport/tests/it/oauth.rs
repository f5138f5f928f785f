//! OAuth 2 client credentials: one fetch for many requests, refresh before expiry, 401
//! invalidation.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{HttpRequest, Method, Secrets};
use switchboard_transport::{TokenFailure, Transport, TransportError};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{ManualClock, loopback};

fn auth(server: &MockServer) -> OutboundAuth {
    OutboundAuth::OAuth2ClientCredentials {
        token_url: format!("{}/oauth2/token", server.uri()),
        client_id: "client-1".into(),
        client_secret: "oauth_secret".into(),
        scope: Some("messages".into()),
    }
}

fn secrets() -> Secrets {
    Secrets::default().with("oauth_secret", "s3cr3t")
}

fn token(value: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }))
}

/// The token endpoint, checking the grant and the client's Basic credentials
/// ("client-1:s3cr3t").
fn token_endpoint() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("authorization", "Basic Y2xpZW50LTE6czNjcjN0"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials&scope=messages"))
}

fn api(bearer: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/api"))
        .and(header("authorization", format!("Bearer {bearer}").as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_fetch_serves_many_concurrent_requests() {
    let server = MockServer::start().await;
    token_endpoint()
        .respond_with(token("tok-1", 3600).set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&server)
        .await;
    api("tok-1")
        .respond_with(ResponseTemplate::new(200))
        .expect(20)
        .mount(&server)
        .await;

    let transport = loopback().build().unwrap();
    let auth = Arc::new(auth(&server));
    let secrets = Arc::new(secrets());
    let req = Arc::new(HttpRequest::new(
        Method::Get,
        format!("{}/api", server.uri()),
    ));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (transport, auth, secrets, req) = (
                transport.clone(),
                Arc::clone(&auth),
                Arc::clone(&secrets),
                Arc::clone(&req),
            );
            tokio::spawn(async move { transport.execute(&req, &auth, secrets.as_ref()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().response.status, 200);
    }
}

#[tokio::test]
async fn the_token_is_refreshed_before_it_expires() {
    let server = MockServer::start().await;
    token_endpoint()
        .respond_with(token("tok-1", 60))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_endpoint()
        .respond_with(token("tok-2", 60))
        .expect(1)
        .mount(&server)
        .await;
    api("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_string("one"))
        .expect(2)
        .mount(&server)
        .await;
    api("tok-2")
        .respond_with(ResponseTemplate::new(200).set_body_string("two"))
        .expect(1)
        .mount(&server)
        .await;

    let clock = ManualClock::new();
    let transport = loopback().clock(clock.clone()).build().unwrap();
    let (auth, secrets) = (auth(&server), secrets());
    let req = HttpRequest::new(Method::Get, format!("{}/api", server.uri()));
    let body = |t: &Transport| {
        let (req, auth, secrets) = (req.clone(), auth.clone(), secrets.clone());
        let t = t.clone();
        async move {
            t.execute(&req, &auth, &secrets)
                .await
                .unwrap()
                .response
                .body
        }
    };

    let first = transport.execute(&req, &auth, &secrets).await.unwrap();
    assert_eq!(first.response.body, b"one");
    assert_eq!(first.traces.len(), 2, "token request, then the API request");
    // A 60 s token is refreshed 6 s before it expires.
    clock.advance(Duration::from_secs(53));
    assert_eq!(body(&transport).await, b"one");
    clock.advance(Duration::from_secs(1));
    assert_eq!(body(&transport).await, b"two");
}

#[tokio::test]
async fn a_401_invalidates_the_token_and_the_request_is_retried_once() {
    let server = MockServer::start().await;
    token_endpoint()
        .respond_with(token("tok-1", 3600))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_endpoint()
        .respond_with(token("tok-2", 3600))
        .expect(1)
        .mount(&server)
        .await;
    api("tok-1")
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    api("tok-2")
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&server)
        .await;

    let transport = loopback().build().unwrap();
    let (auth, secrets) = (auth(&server), secrets());
    let req = HttpRequest::new(Method::Get, format!("{}/api", server.uri()));
    let first = transport.execute(&req, &auth, &secrets).await.unwrap();
    assert_eq!(first.response.status, 200);
    let statuses: Vec<_> = first.traces.iter().map(|t| t.status).collect();
    // Token, API (refused), new token, API again.
    assert_eq!(statuses, [Some(200), Some(401), Some(200), Some(200)]);
    let again = transport.execute(&req, &auth, &secrets).await.unwrap();
    assert_eq!(again.traces.len(), 1, "the new token is cached");
}

#[tokio::test]
async fn many_requests_refused_with_the_same_token_invalidate_it_once() {
    let server = MockServer::start().await;
    token_endpoint()
        .respond_with(token("tok-1", 3600))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_endpoint()
        .respond_with(token("tok-2", 3600).set_delay(Duration::from_millis(100)))
        .expect(1)
        .mount(&server)
        .await;
    api("tok-1")
        .respond_with(ResponseTemplate::new(401).set_delay(Duration::from_millis(100)))
        .expect(4)
        .mount(&server)
        .await;
    api("tok-2")
        .respond_with(ResponseTemplate::new(200))
        .expect(4)
        .mount(&server)
        .await;

    let transport = loopback().build().unwrap();
    let (auth, secrets) = (auth(&server), secrets());
    let req = HttpRequest::new(Method::Get, format!("{}/api", server.uri()));
    let run = || transport.execute(&req, &auth, &secrets);
    let (a, b, c, d) = tokio::join!(run(), run(), run(), run());
    for result in [a, b, c, d] {
        let exchange = result.unwrap();
        assert_eq!(exchange.response.status, 200);
        // Never a third token or a second retry.
        assert!(exchange.traces.len() <= 4, "{:?}", exchange.traces);
    }
}

/// An expiry within the margin does not make every request fetch: the token is shared, and a
/// failing refresh falls back to the still-valid token.
#[tokio::test]
async fn a_failed_refresh_keeps_using_the_unexpired_token() {
    let server = MockServer::start().await;
    token_endpoint()
        .respond_with(token("tok-1", 100))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_endpoint()
        .respond_with(ResponseTemplate::new(503))
        .expect(2)
        .mount(&server)
        .await;
    api("tok-1")
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let transport = loopback().clock(clock.clone()).build().unwrap();
    let (auth, secrets) = (auth(&server), secrets());
    let req = HttpRequest::new(Method::Get, format!("{}/api", server.uri()));
    assert!(transport.execute(&req, &auth, &secrets).await.is_ok());
    clock.advance(Duration::from_secs(95));
    // Due for refresh, refresh fails, the token still works for 5 s.
    assert!(transport.execute(&req, &auth, &secrets).await.is_ok());
    clock.advance(Duration::from_secs(5));
    let err = transport.execute(&req, &auth, &secrets).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Token { .. }) && err.not_sent(),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_token_request_is_typed_and_the_api_is_not_called() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"error": "invalid_client", "error_description": "unknown client"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let transport = loopback().build().unwrap();
    let req = HttpRequest::new(Method::Get, format!("{}/api", server.uri()));
    let err = transport
        .execute(&req, &auth(&server), &secrets())
        .await
        .unwrap_err();
    assert!(err.not_sent(), "{err}");
    let TransportError::Token {
        source: TokenFailure::Endpoint(inner),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(inner.to_string().contains("invalid_client"), "{inner}");
    assert!(err.to_string().contains("/oauth2/token"), "{err}");
}
