//! Criterion benchmarks of the Meta connectors: parsing a ~2 KB WhatsApp webhook (target under
//! 10 µs) and building a template send (target under 5 µs).
//!
//! `cargo bench -p switchboard-providers --bench meta -- --warm-up-time 1 --measurement-time 3`
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_core::{
    Address, AddressKind, Channel, ChannelContext, Connector, Content, Media, MediaKind, Method,
    OutboundMessage, Template, TemplateButton, TemplateHeader, TemplateParameter, TemplateValue,
    WebhookRequest,
};
use switchboard_providers::meta::WhatsAppConnector;

/// The body of the batch fixture: 4 messages and 3 statuses in two entries, 1951 bytes.
fn batch_body() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/meta/wa_batch_messages_and_statuses.json");
    let case: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).expect("the batch fixture is readable"),
    )
    .expect("the batch fixture is JSON");
    case["request"]["body"]
        .as_str()
        .expect("the fixture has a body")
        .as_bytes()
        .to_vec()
}

fn template_message() -> OutboundMessage {
    let to = Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, "250788123123");
    let template = Template {
        name: "revive_issue".into(),
        language: "en_US".into(),
        header: Some(TemplateHeader::Media(Media::from_url(
            MediaKind::Image,
            "https://foo.bar/image.jpg",
        ))),
        body: vec![
            TemplateParameter::text("Ryan Lewis"),
            TemplateParameter::text("niño"),
            TemplateParameter {
                name: None,
                value: TemplateValue::Currency {
                    fallback: "$100.99".into(),
                    code: "USD".into(),
                    amount_1000: 100_990,
                },
            },
        ],
        buttons: vec![
            TemplateButton::QuickReply {
                index: 0,
                payload: "Sip".into(),
            },
            TemplateButton::Url {
                index: 1,
                text: "id00231".into(),
            },
        ],
    };
    OutboundMessage::new("order-42", to, Content::Template(template))
}

fn benches(c: &mut Criterion) {
    let wa = WhatsAppConnector::new();
    let ctx = ChannelContext::new("wa-main").with_setting("phone_number_id", "1122334455667");

    let body = batch_body();
    let req = WebhookRequest::new(Method::Post, "https://gateway.example.com/webhooks/wa-main")
        .with_body(body.clone());
    assert_eq!(
        wa.parse_webhook(&ctx, &req).map(|o| o.events.len()).ok(),
        Some(7),
        "the batch parses to 7 events"
    );
    let mut group = c.benchmark_group("meta-whatsapp");
    group.throughput(criterion::Throughput::Bytes(body.len() as u64));
    group.bench_function("parse_webhook_batch_2kb", |b| {
        b.iter(|| wa.parse_webhook(black_box(&ctx), black_box(&req)))
    });
    group.bench_function("route_batch_2kb", |b| b.iter(|| wa.route(black_box(&req))));
    group.finish();

    let msg = template_message();
    assert!(wa.build_send(&ctx, &msg).is_ok(), "the template builds");
    c.bench_function("meta-whatsapp/build_send_template", |b| {
        b.iter(|| wa.build_send(black_box(&ctx), black_box(&msg)))
    });
}

criterion_group!(meta, benches);
criterion_main!(meta);
