//! `send` and `download_media` through a connector.

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::{
    Address, Channel, ChannelContext, Content, ErrorClass, MediaSource, OutboundMessage, Secrets,
};
use switchboard_transport::{DownloadError, SendError};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{TestConnector, transport};

fn bearer() -> OutboundAuth {
    OutboundAuth::Bearer {
        token: "api_token".into(),
    }
}

fn secrets() -> Secrets {
    Secrets::default().with("api_token", "tok-9")
}

fn msg() -> OutboundMessage {
    OutboundMessage::new(
        "k1",
        Address::phone(Channel::Sms, "+14155550123"),
        Content::text("hi"),
    )
}

fn ctx() -> ChannelContext {
    ChannelContext::new("sms-main").with_setting("from", "+14155550100")
}

#[tokio::test]
async fn send_builds_executes_and_parses() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/messages"))
        .and(header("authorization", "Bearer tok-9"))
        .and(body_json(
            serde_json::json!({"from": "+14155550100", "to": "+14155550123"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "SM1"})))
        .expect(1)
        .mount(&server)
        .await;
    let connector = TestConnector::new(&server.uri(), bearer());
    let receipt = transport()
        .send(&connector, &ctx(), &secrets(), &msg())
        .await
        .unwrap();
    assert_eq!(receipt.provider_message_id, "SM1");
}

#[tokio::test]
async fn send_errors_say_where_they_came_from() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "bad number"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let connector = TestConnector::new(&server.uri(), bearer());
    let transport = transport();

    let err = transport
        .send(&connector, &ctx(), &secrets(), &msg())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Provider(p) if p.class == ErrorClass::Permanent && p.message == "bad number"),
        "{err:?}"
    );
    assert!(!err.not_sent() && !err.outcome_unknown());

    // No `from` setting: the connector refuses, nothing is sent.
    let err = transport
        .send(&connector, &ChannelContext::new("c"), &secrets(), &msg())
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Connector(_)), "{err:?}");
    assert!(err.not_sent());

    // A missing secret: the transport refuses, nothing is sent.
    let err = transport
        .send(&connector, &ctx(), &Secrets::default(), &msg())
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Transport(_)), "{err:?}");
    assert!(err.not_sent());
}

#[tokio::test]
async fn media_by_provider_id_takes_the_connector_steps() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/media/M1"))
        .and(header("authorization", "Bearer tok-9"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"url": format!("{}/files/M1", server.uri())})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/M1"))
        .and(header("authorization", "Bearer tok-9"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-media", "bytes")
                .set_body_bytes(vec![7u8; 1000]),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/media/GONE"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let connector = TestConnector::new(&server.uri(), bearer());
    let transport = transport();
    let media = transport
        .download_media(
            &connector,
            &ctx(),
            &secrets(),
            &MediaSource::ProviderId("M1".into()),
        )
        .await
        .unwrap();
    assert_eq!(media.body, vec![7u8; 1000]);

    let err = transport
        .download_media(
            &connector,
            &ctx(),
            &secrets(),
            &MediaSource::ProviderId("GONE".into()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Status { status: 404 }),
        "{err:?}"
    );

    // A connector that never finishes is stopped.
    Mock::given(method("GET"))
        .and(path("/media/LOOP"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"url": format!("{}/media/LOOP", server.uri())})),
        )
        .expect(8)
        .mount(&server)
        .await;
    let err = transport
        .download_media(
            &connector,
            &ctx(),
            &secrets(),
            &MediaSource::ProviderId("LOOP".into()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::TooManySteps { max: 8 }),
        "{err:?}"
    );

    let capped = crate::common::loopback()
        .max_media_bytes(100)
        .build()
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/media/BIG"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![0u8; 101]))
        .mount(&server)
        .await;
    let err = capped
        .download_media(
            &connector,
            &ctx(),
            &secrets(),
            &MediaSource::ProviderId("BIG".into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Transport(_)), "{err:?}");
}
