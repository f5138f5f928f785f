//! The SDK path end to end, as an integrator embeds it: a signed Twilio WhatsApp webhook in,
//! a reply out through the real transport (against a stand-in for Twilio's API on loopback),
//! then the reply's status callbacks arriving out of order and merging into one state.

use std::path::Path;

use switchboard::transport::{EgressPolicy, Transport};
use switchboard::{
    Channel, Content, DeliveryState, DeliveryStatus, InboundEvent, OutboundMessage, SecretStore,
    Timestamp, WebhookRequest, WindowDecision, receive_webhook,
};
use switchboard_conformance::fixture::{ChannelSpec, load_request};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/twilio")
        .join(name)
}

#[tokio::test]
async fn webhook_in_reply_out_statuses_merge() {
    let twilio = switchboard_providers::builtin("twilio").expect("twilio is built in");
    let api = MockServer::start().await;

    // The channel from the fixture, with the API pointed at the stand-in.
    let mut spec = ChannelSpec::load(&fixture("inbound_whatsapp_text.json")).unwrap();
    spec.settings.insert("base_url".into(), api.uri().into());
    let ctx = spec.context();
    let secrets = spec.resolve_secrets().unwrap();
    assert!(secrets.secret(&"auth_token".into()).is_some());
    let now = Timestamp::from_unix_seconds(1_700_000_000);

    // 1. A signed webhook in.
    let request: WebhookRequest = load_request(&fixture("inbound_whatsapp_text.json")).unwrap();
    let outcome = receive_webhook(twilio.as_ref(), &ctx, &secrets, &request, now).unwrap();
    let [InboundEvent::Message(inbound)] = outcome.events.as_slice() else {
        panic!("expected one message, got {:?}", outcome.events)
    };
    assert_eq!(inbound.from.channel, Channel::WhatsApp);

    // 2. The customer just wrote, so free text may go back.
    let capabilities = twilio.info().capabilities(&Channel::WhatsApp).unwrap();
    let reply = Content::text("Thanks, an agent will be with you shortly.");
    assert_eq!(
        capabilities.window_decision(Some(now), now, &reply, None),
        WindowDecision::FreeForm
    );

    // 3. The reply goes out through the transport, which adds Basic auth.
    Mock::given(method("POST"))
        .and(path(
            "/2010-04-01/Accounts/AC9f8e7d6c5b4a39281706f5e4d3c2b1a0/Messages.json",
        ))
        .and(header(
            "authorization",
            "Basic QUM5ZjhlN2Q2YzViNGEzOTI4MTcwNmY1ZTRkM2MyYjFhMDoxMjM0NQ==",
        ))
        .and(body_string_contains("To=whatsapp%3A%2B14017122661"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "sid": "SM9e4c1d7b5a3f28e6d0c9b8a7f6e5d4c3",
            "status": "queued"
        })))
        .expect(1)
        .mount(&api)
        .await;
    let transport = Transport::builder()
        .egress(EgressPolicy::allow_loopback_for_tests())
        .build()
        .unwrap();
    let message = OutboundMessage::new("reply-1", inbound.from.clone(), reply);
    let receipt = transport
        .send(twilio.as_ref(), &ctx, &secrets, &message)
        .await
        .unwrap();
    assert_eq!(
        receipt.provider_message_id,
        "SM9e4c1d7b5a3f28e6d0c9b8a7f6e5d4c3"
    );

    // 4. Its statuses arrive read-before-delivered; the merge ends on read either way.
    let mut state = DeliveryState::new(receipt.status.clone());
    for name in [
        "status_whatsapp_read.json",
        "status_whatsapp_delivered.json",
    ] {
        let request = load_request(&fixture(name)).unwrap();
        let outcome = receive_webhook(twilio.as_ref(), &ctx, &secrets, &request, now).unwrap();
        for event in outcome.events {
            if let InboundEvent::Status(update) = event {
                assert_eq!(update.message_id, receipt.provider_message_id);
                state.apply(&update.status, update.error.as_ref());
            }
        }
    }
    assert_eq!(state.status, DeliveryStatus::Read);
}
