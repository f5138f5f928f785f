//! Timeouts, refused connections, DNS failures and the body cap, with what each means for
//! "was it sent?".

use std::time::Duration;

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{HttpRequest, Method, Secrets};
use switchboard_transport::TransportError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::loopback;

async fn get(
    transport: &switchboard_transport::Transport,
    url: &str,
) -> Result<switchboard_transport::Exchange, TransportError> {
    transport
        .execute(
            &HttpRequest::new(Method::Get, url),
            &OutboundAuth::None,
            &Secrets::default(),
        )
        .await
}

#[tokio::test]
async fn a_timeout_means_the_outcome_is_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let transport = loopback()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = get(&transport, &server.uri()).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
    assert!(err.outcome_unknown() && !err.not_sent());
    // And indeed the provider got it.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_means_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = get(
        &loopback().build().unwrap(),
        &format!("http://127.0.0.1:{port}/x"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, TransportError::Connect { ref host, .. } if host == "127.0.0.1"),
        "{err:?}"
    );
    assert!(err.not_sent() && !err.outcome_unknown());
}

#[tokio::test]
async fn a_name_that_does_not_resolve_means_not_sent() {
    let transport = loopback().resolve("nowhere.test", &[]).build().unwrap();
    let err = get(&transport, "http://nowhere.test/x").await.unwrap_err();
    assert!(
        matches!(err, TransportError::Dns { ref host, .. } if host == "nowhere.test"),
        "{err:?}"
    );
    assert!(err.not_sent());
}

#[tokio::test]
async fn a_body_over_the_cap_is_a_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 4096]))
        .mount(&server)
        .await;
    let transport = loopback().max_body_bytes(1024).build().unwrap();
    let err = get(&transport, &server.uri()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::BodyTooLarge { limit: 1024, .. }),
        "{err:?}"
    );
    assert!(err.outcome_unknown());

    let exact = loopback().max_body_bytes(4096).build().unwrap();
    let exchange = get(&exact, &server.uri()).await.unwrap();
    assert_eq!(exchange.response.body.len(), 4096);
    assert_eq!(exchange.traces[0].response_body_bytes, 4096);
}

/// A server that streams a chunked body without a length, up to 64 MiB: the transport stops
/// reading at the cap instead of buffering it all.
#[tokio::test]
async fn a_streamed_body_is_cut_at_the_cap() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return 0;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        if socket.write_all(head).await.is_err() {
            return 0;
        }
        let chunk = [b"4000\r\n".as_slice(), &[b'y'; 0x4000], b"\r\n"].concat();
        let mut sent = 0usize;
        while sent < 64 * 1024 * 1024 {
            if socket.write_all(&chunk).await.is_err() {
                break;
            }
            sent += 0x4000;
        }
        sent
    });
    let transport = loopback().max_body_bytes(100 * 1024).build().unwrap();
    let err = get(&transport, &format!("http://{addr}/big"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::BodyTooLarge { limit: 102_400, .. }),
        "{err:?}"
    );
    drop(transport);
    let sent = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent < 64 * 1024 * 1024,
        "the server was stopped early, sent {sent}"
    );
}

/// HTTPS to something that does not speak TLS: the handshake fails before any request is
/// written, so nothing was sent.
#[tokio::test]
async fn a_failed_tls_handshake_means_not_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 512];
        let _ = socket.read(&mut buf).await;
        let _ = socket
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let transport = switchboard_transport::Transport::builder()
        .egress(switchboard_transport::EgressPolicy::allow_any_host().dangerous_allow_loopback())
        .build()
        .unwrap();
    let err = get(&transport, &format!("https://{addr}/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(err.not_sent(), "{err}");
    server.await.unwrap();
}
