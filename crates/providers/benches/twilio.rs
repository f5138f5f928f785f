//! Criterion benchmarks of the Twilio connector: verify + parse of an inbound WhatsApp form
//! webhook (target under 10 µs), parse alone, and building sends.
//!
//! `cargo bench -p switchboard-providers --bench twilio -- --warm-up-time 1 --measurement-time 3`

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::hint::black_box;
use std::path::Path;

use switchboard_core::webhook_auth::{self, Verified};
use switchboard_core::{
    Address, Channel, ChannelContext, Connector, Content, HttpResponse, OutboundMessage, Secrets,
    Template, TemplateParameter, Timestamp, WebhookRequest,
};
use switchboard_providers::twilio::TwilioConnector;

use criterion::{Criterion, criterion_group, criterion_main};

/// The inbound WhatsApp text fixture: its channel and its signed request (16 parameters).
fn inbound() -> (ChannelContext, WebhookRequest) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/twilio/inbound_whatsapp_text.json");
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture is readable"))
            .expect("the fixture is JSON");
    let ctx = serde_json::from_value(case["channel"].clone()).expect("a channel");
    let req = serde_json::from_value(case["request"].clone()).expect("a request");
    (ctx, req)
}

fn benches(c: &mut Criterion) {
    let twilio = TwilioConnector::new();
    let (ctx, req) = inbound();
    let secrets = Secrets::default().with("auth_token", "12345");
    let now = Timestamp::from_unix_seconds(1_704_067_200);
    let scheme = twilio.webhook_auth(&ctx).expect("a scheme");
    assert_eq!(
        webhook_auth::verify(&scheme, &secrets, &req, now),
        Ok(Verified::Authentic),
        "the fixture's signature verifies"
    );

    c.bench_function("twilio/verify+parse inbound form webhook", |b| {
        b.iter(|| {
            let verdict = webhook_auth::verify(&scheme, &secrets, black_box(&req), now);
            assert!(verdict.is_ok());
            twilio.parse_webhook(&ctx, black_box(&req)).expect("parses")
        })
    });
    c.bench_function("twilio/parse inbound form webhook", |b| {
        b.iter(|| twilio.parse_webhook(&ctx, black_box(&req)).expect("parses"))
    });

    let sms = OutboundMessage::new(
        "order-42",
        Address::phone(Channel::Sms, "+14133881111"),
        Content::text("Your order #42 has shipped."),
    );
    c.bench_function("twilio/build_send sms text", |b| {
        b.iter(|| twilio.build_send(&ctx, black_box(&sms)).expect("builds"))
    });
    let template = OutboundMessage::new(
        "appt-7",
        Address::phone(Channel::WhatsApp, "+14017122661"),
        Content::Template(Template {
            name: "HXb5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0".into(),
            language: "en".into(),
            header: None,
            body: vec![
                TemplateParameter::text("Kerry"),
                TemplateParameter::text("tomorrow at 3pm"),
            ],
            buttons: vec![],
        }),
    );
    c.bench_function("twilio/build_send whatsapp template", |b| {
        b.iter(|| {
            twilio
                .build_send(&ctx, black_box(&template))
                .expect("builds")
        })
    });

    let created = HttpResponse::new(
        201,
        r#"{"sid": "SMf0e1d2c3b4a5968778695a4b3c2d1e0f", "status": "queued", "num_segments": "1"}"#,
    );
    c.bench_function("twilio/parse_send_response 201", |b| {
        b.iter(|| {
            twilio
                .parse_send_response(&ctx, &sms, black_box(&created))
                .expect("a receipt")
        })
    });
}

criterion_group!(twilio, benches);
criterion_main!(twilio);
