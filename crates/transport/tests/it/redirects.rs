//! Redirects: returned as they are by default; followed in media mode with per-hop egress
//! checks and credentials dropped when the origin changes.

use std::net::{IpAddr, Ipv4Addr};

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{ChannelContext, HttpRequest, MediaSource, Method, Secrets};
use switchboard_transport::{
    DenyRule, DownloadError, EgressPolicy, Redirects, Transport, TransportError,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::common::{TestConnector, loopback, transport};

/// Matches requests that carry no credentials at all.
struct NoCredentials;

impl Match for NoCredentials {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key("authorization") && !request.headers.contains_key("cookie")
    }
}

fn basic() -> OutboundAuth {
    OutboundAuth::Basic {
        username: "AC1".into(),
        password: "auth_token".into(),
    }
}

fn secrets() -> Secrets {
    Secrets::default().with("auth_token", "hunter2")
}

fn redirect(status: u16, to: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("location", to)
}

#[tokio::test]
async fn redirects_are_not_followed_by_default() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(redirect(302, "/b"))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let req = HttpRequest::new(Method::Get, format!("{}/a", server.uri()));
    let transport = loopback().follow_redirects(5).build().unwrap();
    // `execute` never follows, even on a transport that follows for media.
    let exchange = transport.execute(&req, &basic(), &secrets()).await.unwrap();
    assert_eq!(exchange.response.status, 302);
    assert_eq!(exchange.response.header("location"), Some("/b"));
    // Nor does media download with `follow_redirects(0)`.
    let connector = TestConnector::new(&server.uri(), basic());
    let err = loopback()
        .follow_redirects(0)
        .build()
        .unwrap()
        .download_media(
            &connector,
            &ChannelContext::new("c"),
            &secrets(),
            &MediaSource::Url(format!("{}/a", server.uri())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Status { status: 302 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn media_mode_follows_and_drops_credentials_across_origins() {
    let provider = MockServer::start().await;
    let cdn = MockServer::start().await;
    // Same origin: credentials kept.
    Mock::given(method("GET"))
        .and(path("/Media/ME1"))
        .and(header("authorization", "Basic QUMxOmh1bnRlcjI="))
        .respond_with(redirect(301, "/Media/ME1/Content"))
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path("/Media/ME1/Content"))
        .and(header("authorization", "Basic QUMxOmh1bnRlcjI="))
        .respond_with(redirect(
            307,
            &format!("{}/bucket/file?X-Amz-Signature=abc", cdn.uri()),
        ))
        .expect(1)
        .mount(&provider)
        .await;
    // Another origin (another port): no credentials.
    Mock::given(method("GET"))
        .and(path("/bucket/file"))
        .and(NoCredentials)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(b"JPEG".to_vec()),
        )
        .expect(1)
        .mount(&cdn)
        .await;

    let transport = loopback().follow_redirects(3).build().unwrap();
    let connector = TestConnector::new(&provider.uri(), basic());
    let media = transport
        .download_media(
            &connector,
            &ChannelContext::new("c"),
            &secrets(),
            &MediaSource::Url(format!("{}/Media/ME1", provider.uri())),
        )
        .await
        .unwrap();
    assert_eq!(media.body, b"JPEG");
    assert_eq!(media.header("content-type"), Some("image/jpeg"));
}

#[tokio::test]
async fn credentials_stay_dropped_after_leaving_the_origin() {
    let provider = MockServer::start().await;
    let cdn = MockServer::start().await;
    Mock::given(path("/start"))
        .respond_with(redirect(302, &format!("{}/hop", cdn.uri())))
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(path("/hop"))
        .and(NoCredentials)
        .respond_with(redirect(302, &format!("{}/back", provider.uri())))
        .expect(1)
        .mount(&cdn)
        .await;
    // Back on the first origin: still no credentials.
    Mock::given(path("/back"))
        .and(NoCredentials)
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&provider)
        .await;
    let req = HttpRequest::new(Method::Get, format!("{}/start", provider.uri()))
        .with_header("Cookie", "session=1")
        .with_header("Accept", "*/*");
    let exchange = transport()
        .execute_with(&req, &basic(), &secrets(), Redirects::follow(5))
        .await
        .unwrap();
    assert_eq!(exchange.response.body, b"ok");
    assert_eq!(exchange.traces.len(), 3);
    let first = &exchange.traces[0];
    assert!(
        first
            .request_headers
            .iter()
            .any(|(n, _)| n == "authorization")
    );
    for hop in &exchange.traces[1..] {
        assert!(
            !hop.request_headers
                .iter()
                .any(|(n, _)| n == "authorization" || n == "cookie"),
            "{hop:?}"
        );
        assert!(hop.request_headers.iter().any(|(n, _)| n == "accept"));
    }
}

#[tokio::test]
async fn every_hop_is_checked_by_the_egress_policy() {
    let provider = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/start"))
        .respond_with(redirect(302, &format!("{}/secret", elsewhere.uri())))
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(path("/secret"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let policy = EgressPolicy::deny_all()
        .allow_host("localhost")
        .unwrap()
        .allow_plain_http()
        .dangerous_allow_loopback();
    let transport = Transport::builder()
        .egress(policy)
        .resolve("localhost", &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .build()
        .unwrap();
    let req = HttpRequest::new(
        Method::Get,
        format!("http://localhost:{}/start", provider.address().port()),
    );
    let err = transport
        .execute_with(
            &req,
            &OutboundAuth::None,
            &Secrets::default(),
            Redirects::follow(3),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::EgressDenied(d) if d.rule == DenyRule::HostNotAllowed && d.host == "127.0.0.1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirect_loops_stop_at_the_hop_limit() {
    let server = MockServer::start().await;
    Mock::given(path("/loop"))
        .respond_with(redirect(302, "/loop"))
        .expect(3)
        .mount(&server)
        .await;
    let req = HttpRequest::new(Method::Get, format!("{}/loop", server.uri()));
    let err = transport()
        .execute_with(
            &req,
            &OutboundAuth::None,
            &Secrets::default(),
            Redirects::follow(2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::TooManyRedirects { max_hops: 2 }),
        "{err:?}"
    );

    Mock::given(path("/nowhere"))
        .respond_with(ResponseTemplate::new(302))
        .mount(&server)
        .await;
    let req = HttpRequest::new(Method::Get, format!("{}/nowhere", server.uri()));
    let err = transport()
        .execute_with(
            &req,
            &OutboundAuth::None,
            &Secrets::default(),
            Redirects::follow(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::BadRedirect { .. }), "{err:?}");
}

#[tokio::test]
async fn only_gets_follow_redirects() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(redirect(307, "/elsewhere"))
        .expect(1)
        .mount(&server)
        .await;
    let req = HttpRequest::new(Method::Post, server.uri()).with_json(&serde_json::json!({}));
    let exchange = transport()
        .execute_with(
            &req,
            &OutboundAuth::None,
            &Secrets::default(),
            Redirects::follow(2),
        )
        .await
        .unwrap();
    assert_eq!(exchange.response.status, 307);
}
