//! The egress policy on real requests: allow-list, blocked addresses after resolution and as
//! literals, loopback only with the explicit switch. Only loopback is ever connected to.

use std::net::{IpAddr, Ipv4Addr};

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{HttpRequest, Method, Secrets};
use switchboard_transport::{BlockedRange, DenyRule, EgressPolicy, Transport, TransportError};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn get(transport: &Transport, url: &str) -> Result<u16, TransportError> {
    transport
        .execute(
            &HttpRequest::new(Method::Get, url),
            &OutboundAuth::Bearer { token: "t".into() },
            &Secrets::default().with("t", "secret-token"),
        )
        .await
        .map(|e| e.response.status)
}

async fn untouchable() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    server
}

fn blocked(err: &TransportError) -> Option<BlockedRange> {
    match err {
        TransportError::EgressDenied(d) => match d.rule {
            DenyRule::BlockedAddress { range, .. } => Some(range),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn hosts_off_the_allow_list_are_denied_before_sending() {
    let server = untouchable().await;
    let port = server.address().port();
    let policy = EgressPolicy::deny_all()
        .allow_hosts(["api.provider.test"])
        .unwrap()
        .allow_plain_http()
        .dangerous_allow_loopback();
    let transport = Transport::builder()
        .egress(policy)
        .resolve("api.provider.test", &[LOOPBACK])
        .resolve("evil.test", &[LOOPBACK])
        .build()
        .unwrap();
    for url in [
        format!("http://evil.test:{port}/"),
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let err = get(&transport, &url).await.unwrap_err();
        let TransportError::EgressDenied(denied) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(denied.rule, DenyRule::HostNotAllowed, "{url}");
        assert!(err.not_sent());
        assert!(err.to_string().contains(&denied.host), "{err}");
    }

    // The empty list denies everything.
    let deny_all = Transport::builder().build().unwrap();
    let err = get(&deny_all, &format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(
        &err,
        TransportError::EgressDenied(d) if matches!(d.rule, DenyRule::Scheme { .. })
    ));
    let https = get(&deny_all, "https://api.provider.test/")
        .await
        .unwrap_err();
    assert!(matches!(
        &https,
        TransportError::EgressDenied(d) if d.rule == DenyRule::NoHostsAllowed
    ));
}

#[tokio::test]
async fn names_resolving_to_loopback_are_blocked_without_the_switch() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let port = server.address().port();
    let url = format!("http://api.provider.test:{port}/x");

    let strict = Transport::builder()
        .egress(EgressPolicy::allow_any_host().allow_plain_http())
        .resolve("api.provider.test", &[LOOPBACK])
        .build()
        .unwrap();
    let err = get(&strict, &url).await.unwrap_err();
    assert_eq!(blocked(&err), Some(BlockedRange::Loopback), "{err:?}");
    assert!(err.not_sent());
    assert!(err.to_string().contains("api.provider.test"), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");

    // A mapped form of loopback is loopback too.
    let mapped = Transport::builder()
        .egress(EgressPolicy::allow_any_host().allow_plain_http())
        .resolve("api.provider.test", &["::ffff:127.0.0.1".parse().unwrap()])
        .build()
        .unwrap();
    let err = get(&mapped, &url).await.unwrap_err();
    assert_eq!(blocked(&err), Some(BlockedRange::Loopback), "{err:?}");

    // With the explicit switch, the same name reaches the mock (once: the expectation above).
    let allowed = Transport::builder()
        .egress(EgressPolicy::allow_loopback_for_tests())
        .resolve("api.provider.test", &[LOOPBACK])
        .build()
        .unwrap();
    assert_eq!(get(&allowed, &url).await.unwrap(), 204);
}

#[tokio::test]
async fn loopback_literals_are_blocked_without_the_switch() {
    let server = untouchable().await;
    let port = server.address().port();
    let transport = Transport::builder()
        .egress(EgressPolicy::allow_any_host().allow_plain_http())
        .build()
        .unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://2130706433:{port}/"),
    ] {
        let err = get(&transport, &url).await.unwrap_err();
        assert_eq!(
            blocked(&err),
            Some(BlockedRange::Loopback),
            "{url}: {err:?}"
        );
        assert!(err.not_sent());
    }
}

#[tokio::test]
async fn plain_http_needs_to_be_allowed() {
    let server = untouchable().await;
    let transport = Transport::builder()
        .egress(EgressPolicy::allow_any_host().dangerous_allow_loopback())
        .build()
        .unwrap();
    let err = get(&transport, &server.uri()).await.unwrap_err();
    assert!(matches!(
        &err,
        TransportError::EgressDenied(d) if d.rule == DenyRule::Scheme { scheme: "http".into() }
    ));
}
