//! Tests of the Meta connectors: the fixtures through the conformance kit, the error tables,
//! batch isolation, routing, media steps, and hostile input.
#![cfg(feature = "meta")]
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};

use switchboard_core::Connector;
use switchboard_providers::meta::{MessengerConnector, WhatsAppConnector};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta")
}

fn connector(id: &str) -> Box<dyn Connector> {
    match id {
        "meta-whatsapp" => Box::new(WhatsAppConnector::new()),
        "meta-messenger" => Box::new(MessengerConnector::new()),
        other => panic!("no connector {other}"),
    }
}

#[test]
fn conformance_whatsapp() {
    let report = switchboard_conformance::check_fixtures(&WhatsAppConnector::new(), &fixtures());
    eprintln!("meta-whatsapp: {report}");
    assert!(report.cases >= 50, "{report}");
}

#[test]
fn conformance_messenger() {
    let report = switchboard_conformance::check_fixtures(&MessengerConnector::new(), &fixtures());
    eprintln!("meta-messenger: {report}");
    assert!(report.cases >= 30, "{report}");
}

mod support {
    use switchboard_core::{
        Address, AddressKind, Channel, ChannelContext, Content, HttpResponse, Method,
        OutboundMessage, WebhookRequest,
    };

    pub(crate) fn wa_ctx() -> ChannelContext {
        ChannelContext::new("wa-main").with_setting("phone_number_id", "1122334455667")
    }

    pub(crate) fn fb_ctx() -> ChannelContext {
        ChannelContext::new("fb-main").with_setting("page_id", "1234567890")
    }

    pub(crate) fn wa_text() -> OutboundMessage {
        let to = Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, "16315551181");
        OutboundMessage::new("k1", to, Content::text("hi"))
    }

    pub(crate) fn fb_text() -> OutboundMessage {
        let to = Address::new(Channel::Messenger, AddressKind::PageScopedId, "5678");
        OutboundMessage::new("k1", to, Content::text("hi"))
    }

    pub(crate) fn graph_error(status: u16, code: i64, subcode: Option<i64>) -> HttpResponse {
        let sub = subcode.map_or(String::new(), |s| format!(r#","error_subcode":{s}"#));
        let body = format!(
            r#"{{"error":{{"message":"(#{code}) test","type":"OAuthException","code":{code}{sub},"error_data":{{"details":"details"}},"fbtrace_id":"Az1"}}}}"#
        );
        HttpResponse::new(status, body)
    }

    pub(crate) fn post(body: impl Into<Vec<u8>>) -> WebhookRequest {
        WebhookRequest::new(Method::Post, "https://gateway.example.com/webhooks/x").with_body(body)
    }

    pub(crate) fn fixture_body(name: &str) -> Vec<u8> {
        let path = super::fixtures().join(format!("{name}.json"));
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        case["request"]["body"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec()
    }
}

use support::*;
use switchboard_core::{
    Address, AddressKind, Channel, ChannelContext, Content, DeliveryStatus, ErrorClass, EventKind,
    HttpResponse, InboundEvent, Media, MediaKind, MediaSource, MediaStep, Method, WebhookRequest,
};

#[test]
fn whatsapp_error_table() {
    use ErrorClass::*;
    let wa = WhatsAppConnector::new();
    // (HTTP status, Graph code, class): the issue's table, then the neighbours.
    let table: &[(u16, i64, ErrorClass)] = &[
        (400, 131_047, WindowClosed),
        (400, 130_429, Throttled),
        (429, 130_429, Throttled),
        (400, 131_056, Throttled),
        (400, 131_026, InvalidRecipient),
        (401, 190, Auth),
        (400, 132_000, TemplateInvalid),
        (404, 132_001, TemplateInvalid),
        (400, 132_012, TemplateInvalid),
        (400, 132_015, TemplateInvalid),
        (400, 100, Permanent),
        (500, 131_000, Retryable),
        (400, 131_000, Retryable),
        (503, 131_016, Retryable),
        (400, 4, Throttled),
        (400, 80_007, Throttled),
        (400, 131_048, Throttled),
        (400, 133_016, Throttled),
        (400, 131_050, OptedOut),
        (400, 131_051, Unsupported),
        (403, 200, Auth),
        (400, 10, Auth),
        (400, 131_053, Retryable),
        (400, 368, Permanent),
        (400, 131_021, InvalidRecipient),
        // Unknown codes: by HTTP status; a 5xx is retryable whatever the code.
        (400, 999_999, Permanent),
        (401, 999_999, Auth),
        (429, 999_999, Throttled),
        (502, 999_999, Retryable),
        (500, 100, Retryable),
        (503, 130_429, Throttled),
    ];
    for &(status, code, class) in table {
        let e = wa
            .parse_send_response(&wa_ctx(), &wa_text(), &graph_error(status, code, None))
            .unwrap_err();
        assert_eq!(e.class, class, "HTTP {status} code {code}");
        assert_eq!(e.provider_code, Some(code.to_string()));
        assert!(
            e.message.contains("details") && e.message.contains("Az1"),
            "{e}"
        );
    }
}

#[test]
fn messenger_error_table() {
    use ErrorClass::*;
    let fb = MessengerConnector::new();
    let table: &[(u16, i64, Option<i64>, ErrorClass)] = &[
        (400, 10, Some(2_018_278), WindowClosed),
        (400, 10, None, WindowClosed),
        (400, 200, Some(2_018_278), WindowClosed),
        (400, 551, Some(1_545_041), InvalidRecipient),
        (400, 100, Some(2_018_001), InvalidRecipient),
        (400, 100, None, Permanent),
        (400, 613, None, Throttled),
        (400, 4, None, Throttled),
        (400, 190, Some(460), Auth),
        (403, 230, None, Auth),
        (500, 2, None, Retryable),
        (400, 1, None, Retryable),
        (400, 368, None, Permanent),
        (500, 999_999, None, Retryable),
        (400, 999_999, None, Permanent),
    ];
    for &(status, code, subcode, class) in table {
        let e = fb
            .parse_send_response(&fb_ctx(), &fb_text(), &graph_error(status, code, subcode))
            .unwrap_err();
        assert_eq!(e.class, class, "HTTP {status} code {code}/{subcode:?}");
        if let Some(sub) = subcode {
            assert!(e.message.contains(&sub.to_string()), "{e}");
        }
    }
}

#[test]
fn retry_after_is_kept_on_throttling_and_dropped_on_permanent_errors() {
    let wa = WhatsAppConnector::new();
    let mut resp = graph_error(429, 130_429, None);
    resp.headers.push(("Retry-After".into(), "30".into()));
    let e = wa
        .parse_send_response(&wa_ctx(), &wa_text(), &resp)
        .unwrap_err();
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(30)));
    let mut resp = graph_error(400, 131_026, None);
    resp.headers.push(("Retry-After".into(), "30".into()));
    let e = wa
        .parse_send_response(&wa_ctx(), &wa_text(), &resp)
        .unwrap_err();
    assert_eq!(e.retry_after, None);
}

#[test]
fn successful_answers_without_an_id_are_errors_not_receipts() {
    let wa = WhatsAppConnector::new();
    let fb = MessengerConnector::new();
    for body in [
        "",
        "{}",
        r#"{"messages":[]}"#,
        r#"{"messages":[{"id":""}]}"#,
        "null",
        "<html>",
    ] {
        let resp = HttpResponse::new(200, body);
        let e = wa
            .parse_send_response(&wa_ctx(), &wa_text(), &resp)
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent, "{body}");
        assert!(
            fb.parse_send_response(&fb_ctx(), &fb_text(), &resp)
                .is_err(),
            "{body}"
        );
    }
    // A 200 that carries a Graph error is that error.
    let resp = HttpResponse::new(200, r#"{"error":{"message":"m","code":131047}}"#);
    let e = wa
        .parse_send_response(&wa_ctx(), &wa_text(), &resp)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::WindowClosed);
}

#[test]
fn whatsapp_batch_isolation_reports_every_skipped_item() {
    let wa = WhatsAppConnector::new();
    let req = post(fixture_body("wa_batch_one_malformed_entry"));
    let outcome = wa.parse_webhook(&wa_ctx(), &req).unwrap();
    let ids: Vec<String> = outcome
        .events
        .iter()
        .map(|e| e.dedupe_key().provider_id)
        .collect();
    assert_eq!(
        ids,
        [
            "wamid.good1",
            "wamid.good2",
            "wamid.out1/delivered",
            "wamid.good3"
        ]
    );
    let paths: Vec<&str> = outcome.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "entry[0].changes[0].value.messages[1]",
            "entry[0].changes[0].value.messages[2]",
            "entry[0].changes[0].value.statuses[0]",
            "entry[1]",
            "entry[2].changes",
        ]
    );
    assert!(
        outcome.skipped[0].reason.contains("id"),
        "{:?}",
        outcome.skipped[0]
    );
    assert!(
        outcome.skipped[2].reason.contains("status"),
        "{:?}",
        outcome.skipped[2]
    );
}

#[test]
fn only_the_envelope_fails_the_whole_batch() {
    let wa = WhatsAppConnector::new();
    let fb = MessengerConnector::new();
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        br#"{"object":"page","entry":[]}"#,
        br#"{"object":"whatsapp_business_account","entry":"x"}"#,
        b"\xff\xfe",
    ] {
        assert!(
            matches!(
                wa.parse_webhook(&wa_ctx(), &post(body)),
                Err(switchboard_core::ConnectorError::Malformed { .. })
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let empty = br#"{"object":"whatsapp_business_account"}"#;
    assert!(
        wa.parse_webhook(&wa_ctx(), &post(&empty[..]))
            .unwrap()
            .events
            .is_empty()
    );
    assert!(fb.parse_webhook(&fb_ctx(), &post(&b"{}"[..])).is_err());
    let get = WebhookRequest::new(Method::Get, "https://gw/x?hub.mode=subscribe");
    assert!(matches!(
        wa.parse_webhook(&wa_ctx(), &get),
        Err(switchboard_core::ConnectorError::Unsupported { .. })
    ));
}

#[test]
fn business_scoped_users_are_never_phone_numbers() {
    let wa = WhatsAppConnector::new();
    let ctx = ChannelContext::new("wa").with_setting("phone_number_id", "12345");
    for name in ["wa_bsuid_user_id_only", "wa_bsuid_in_from"] {
        let events = wa
            .parse_webhook(&ctx, &post(fixture_body(name)))
            .unwrap()
            .events;
        let InboundEvent::Message(m) = &events[0] else {
            panic!("{name}: not a message")
        };
        assert_eq!(m.from.kind, AddressKind::BusinessScopedUserId, "{name}");
        assert_eq!(m.from.phone_number(), None);
    }
    // And a BSUID recipient is sent as `recipient`, never as `to`.
    let to = Address::new(Channel::WhatsApp, AddressKind::BusinessScopedUserId, "US.1");
    let msg = switchboard_core::OutboundMessage::new("k", to, Content::text("hi"));
    let req = wa.build_send(&wa_ctx(), &msg).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["recipient"], "US.1");
    assert!(body.get("to").is_none());
}

#[test]
fn messenger_watermarks_are_events_not_invented_statuses() {
    let fb = MessengerConnector::new();
    let read = fb
        .parse_webhook(&fb_ctx(), &post(fixture_body("fb_read_watermark")))
        .unwrap();
    let [InboundEvent::Watermark(watermark)] = read.events.as_slice() else {
        panic!("expected one watermark, got {:?}", read.events)
    };
    assert_eq!(watermark.status, DeliveryStatus::Read);
    assert_eq!(watermark.recipient.id, "5678");
    assert_eq!(watermark.up_to.unix_millis(), 1_458_668_856_253);

    let delivery = fb
        .parse_webhook(&fb_ctx(), &post(fixture_body("fb_delivery")))
        .unwrap();
    let kinds: Vec<_> = delivery.events.iter().map(InboundEvent::kind).collect();
    assert_eq!(kinds, [EventKind::Watermark, EventKind::Status]);

    let echo = fb
        .parse_webhook(&fb_ctx(), &post(fixture_body("fb_echo")))
        .unwrap();
    assert!(echo.events.is_empty());
    assert!(echo.skipped[0].reason.contains("echo"));
}

#[test]
fn routes_on_the_number_or_the_page_without_parsing_the_rest() {
    let wa = WhatsAppConnector::new();
    let fb = MessengerConnector::new();
    let key = wa.route(&post(fixture_body("wa_batch_messages_and_statuses")));
    assert_eq!(key.unwrap().0, "1122334455667");
    assert_eq!(
        wa.route(&post(fixture_body("wa_m2_signature_vector_text")))
            .unwrap()
            .0,
        "277321005464405"
    );
    assert_eq!(
        fb.route(&post(fixture_body("fb_text"))).unwrap().0,
        "1234567890"
    );
    // A later entry may be malformed: routing reads the first only.
    let body = br#"{"object":"page","entry":[{"id":"42","messaging":[]},{"id":"#;
    assert_eq!(
        fb.route(&post(&body[..])),
        None,
        "the body must still be JSON"
    );
    let body = br#"{"object":"page","entry":[{"id":"42","messaging":[]},7]}"#;
    assert_eq!(fb.route(&post(&body[..])).unwrap().0, "42");
    for junk in [
        &b""[..],
        b"{}",
        b"[]",
        br#"{"entry":[]}"#,
        br#"{"entry":[{"changes":[]}]}"#,
    ] {
        assert_eq!(wa.route(&post(junk)), None);
        assert_eq!(fb.route(&post(junk)), None);
    }
}

#[test]
fn media_download_is_two_steps_through_the_transport() {
    let wa = WhatsAppConnector::new();
    let ctx = wa_ctx().with_setting("base_url", "http://127.0.0.1:8080");
    let source = MediaSource::ProviderId("1234567890987654321".into());
    let MediaStep::Fetch(lookup) = wa.media_step(&ctx, &source, None).unwrap() else {
        panic!("first step must fetch")
    };
    assert_eq!(lookup.method, Method::Get);
    assert_eq!(
        lookup.url,
        "http://127.0.0.1:8080/v25.0/1234567890987654321"
    );
    assert!(
        lookup.header("authorization").is_none(),
        "the transport adds the token"
    );

    let info = HttpResponse::new(
        200,
        r#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1","mime_type":"image/jpeg","sha256":"x","file_size":303833,"id":"1234567890987654321"}"#,
    );
    let MediaStep::Fetch(download) = wa.media_step(&ctx, &source, Some(&info)).unwrap() else {
        panic!("second step must fetch the url")
    };
    assert_eq!(
        download.url,
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
    );
    // The bytes, even when they are JSON that looks like a lookup for another id.
    let bytes = HttpResponse::new(200, r#"{"url":"https://x","id":"other"}"#);
    assert_eq!(
        wa.media_step(&ctx, &source, Some(&bytes)).unwrap(),
        MediaStep::Done
    );
    let expired = HttpResponse::new(
        404,
        r#"{"error":{"message":"Unsupported get request","code":100,"error_subcode":33}}"#,
    );
    let e = wa.media_step(&ctx, &source, Some(&expired)).unwrap_err();
    assert!(e.to_string().contains("Unsupported get request"), "{e}");
    // URL sources are fetched directly.
    let url = MediaSource::Url("https://scontent.xx.fbcdn.net/v/arst".into());
    assert!(matches!(
        wa.media_step(&ctx, &url, None),
        Ok(MediaStep::Fetch(_))
    ));
    let fb = MessengerConnector::new();
    assert!(matches!(
        fb.media_step(&fb_ctx(), &url, None),
        Ok(MediaStep::Fetch(_))
    ));
}

#[test]
fn capabilities_and_auth_are_declared() {
    use switchboard_core::outbound_auth::OutboundAuth;
    use switchboard_core::webhook_auth::WebhookAuth;
    use switchboard_core::{Channel, ContentKind, SupportLevel, WindowPolicy};
    let wa = WhatsAppConnector::new();
    let fb = MessengerConnector::new();
    assert_eq!(wa.info().id, "meta-whatsapp");
    assert_eq!(fb.info().id, "meta-messenger");
    assert_eq!(
        wa.info().capabilities(&Channel::WhatsApp).unwrap().window,
        WindowPolicy::whatsapp()
    );
    assert_eq!(
        fb.info().capabilities(&Channel::Messenger).unwrap().window,
        WindowPolicy::messenger()
    );
    assert_eq!(
        wa.info()
            .capabilities(&Channel::WhatsApp)
            .unwrap()
            .max_text_chars,
        4096
    );
    assert_eq!(
        fb.info()
            .capabilities(&Channel::Messenger)
            .unwrap()
            .max_text_chars,
        2000
    );
    assert_eq!(
        wa.info()
            .capabilities(&Channel::WhatsApp)
            .unwrap()
            .support_of(ContentKind::Template),
        SupportLevel::Full
    );
    assert_eq!(
        fb.info()
            .capabilities(&Channel::Messenger)
            .unwrap()
            .support_of(ContentKind::Template),
        SupportLevel::Rejected
    );
    for c in [&wa as &dyn Connector, &fb] {
        let ctx = ChannelContext::new("c");
        assert_eq!(
            serde_json::to_value(c.webhook_auth(&ctx).unwrap()).unwrap(),
            serde_json::json!({"scheme": "hmac_sha256_header", "header": "X-Hub-Signature-256",
                "prefix": "sha256=", "secret": "app_secret", "verify_token": "verify_token"})
        );
        assert!(matches!(
            c.webhook_auth(&ctx).unwrap(),
            WebhookAuth::HmacSha256Header { .. }
        ));
        assert!(matches!(
            c.outbound_auth(&ctx).unwrap(),
            OutboundAuth::Bearer { token } if token.as_str() == "access_token"
        ));
    }
}

#[test]
fn settings_are_validated() {
    let wa = WhatsAppConnector::new();
    for (name, value) in [
        ("graph_version", "25"),
        ("base_url", "graph.facebook.com"),
        ("phone_number_id", "1/../../me"),
        ("phone_number_id", ""),
    ] {
        let ctx = wa_ctx().with_setting(name, value);
        let e = wa.build_send(&ctx, &wa_text()).unwrap_err();
        assert!(
            matches!(&e, switchboard_core::ConnectorError::Config { field, .. } if field == name),
            "{name}={value}: {e}"
        );
    }
    let ctx = wa_ctx().with_setting("graph_version", "v23.0");
    assert!(
        wa.build_send(&ctx, &wa_text())
            .unwrap()
            .url
            .contains("/v23.0/")
    );
}

#[test]
fn send_validation_refuses_what_the_channel_cannot_carry() {
    let wa = WhatsAppConnector::new();
    let fb = MessengerConnector::new();
    let long = |n| Content::text("é".repeat(n));
    let mut msg = wa_text();
    msg.content = long(4096);
    assert!(
        wa.build_send(&wa_ctx(), &msg).is_ok(),
        "4096 characters, 8192 bytes"
    );
    msg.content = long(4097);
    assert!(wa.build_send(&wa_ctx(), &msg).is_err());
    let mut captioned = Media::from_provider_id(MediaKind::Audio, "1");
    captioned.caption = Some("no".into());
    msg.content = Content::Media(captioned.clone());
    assert!(wa.build_send(&wa_ctx(), &msg).is_err());
    let mut fb_msg = fb_text();
    fb_msg.content = long(2000);
    assert!(fb.build_send(&fb_ctx(), &fb_msg).is_ok());
    captioned.kind = MediaKind::Image;
    fb_msg.content = Content::Media(captioned);
    assert!(fb.build_send(&fb_ctx(), &fb_msg).is_err());
    fb_msg.content = Content::text("hi");
    fb_msg.tag = Some("ACCOUNT_UPDATE".into());
    assert!(fb.build_send(&fb_ctx(), &fb_msg).is_err());
}

mod hostile {
    use proptest::prelude::*;
    use switchboard_core::{Connector, HttpResponse};

    use super::support::*;
    use super::{MessengerConnector, WhatsAppConnector, fixtures};

    /// Every webhook body of the fixtures.
    fn bodies() -> &'static [Vec<u8>] {
        static BODIES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        BODIES.get_or_init(load_bodies)
    }

    fn load_bodies() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(fixtures()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let case: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                if let Some(body) = case["request"]["body"].as_str().filter(|b| !b.is_empty()) {
                    out.push(body.as_bytes().to_vec());
                }
            }
        }
        out.sort();
        out
    }

    fn parse_everything(body: &[u8]) {
        let wa = WhatsAppConnector::new();
        let fb = MessengerConnector::new();
        let req = post(body.to_vec());
        let _ = wa.parse_webhook(&wa_ctx(), &req);
        let _ = fb.parse_webhook(&fb_ctx(), &req);
        let _ = wa.route(&req);
        let _ = fb.route(&req);
        for status in [200, 201, 400, 429, 500] {
            let resp = HttpResponse::new(status, body.to_vec());
            let wa_result = wa.parse_send_response(&wa_ctx(), &wa_text(), &resp);
            let fb_result = fb.parse_send_response(&fb_ctx(), &fb_text(), &resp);
            if status >= 400 {
                assert!(wa_result.is_err() && fb_result.is_err());
            }
        }
    }

    /// Replaces the node reached by `path` (indices taken modulo each container's size).
    fn mutate(node: &mut serde_json::Value, path: &[usize], with: serde_json::Value) {
        let Some((&step, rest)) = path.split_first() else {
            *node = with;
            return;
        };
        match node {
            serde_json::Value::Array(items) if !items.is_empty() => {
                let i = step % items.len();
                mutate(&mut items[i], rest, with);
            }
            serde_json::Value::Object(map) if !map.is_empty() => {
                let i = step % map.len();
                mutate(map.values_mut().nth(i).unwrap(), rest, with);
            }
            _ => *node = with,
        }
    }

    fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(Into::into),
            any::<i64>().prop_map(Into::into),
            any::<f64>().prop_map(
                |f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
            ),
            ".{0,12}".prop_map(Into::into),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            Just(serde_json::json!({"id": 1, "type": [], "text": {"body": null}})),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            parse_everything(&body);
        }

        #[test]
        fn mutated_fixture_bytes_never_panic(
            pick in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let bodies = bodies();
            let mut body = bodies[pick.index(bodies.len())].clone();
            for (at, byte, op) in edits {
                if body.is_empty() { break; }
                let i = at.index(body.len());
                match op {
                    0 => body[i] = byte,
                    1 => { body.remove(i); }
                    _ => body.truncate(i),
                }
            }
            parse_everything(&body);
        }

        #[test]
        fn mutated_fixture_json_never_panics(
            pick in any::<prop::sample::Index>(),
            path in proptest::collection::vec(any::<usize>(), 0..10),
            with in json_leaf(),
        ) {
            let bodies = bodies();
            let values: Vec<serde_json::Value> =
                bodies.iter().filter_map(|b| serde_json::from_slice(b).ok()).collect();
            let mut value = values[pick.index(values.len())].clone();
            mutate(&mut value, &path, with);
            parse_everything(value.to_string().as_bytes());
        }
    }

    #[test]
    fn deep_nesting_is_an_error_or_a_skip_never_a_stack_overflow() {
        let deep =
            |open: &str, close: &str| format!("{}{}", open.repeat(100_000), close.repeat(100_000));
        let arrays = deep("[", "]");
        let objects = deep("{\"a\":", "}").replace("{\"a\":}", "{\"a\":1}");
        for inner in [&arrays, &objects] {
            for body in [
                inner.clone(),
                format!(r#"{{"object":"whatsapp_business_account","entry":{inner}}}"#),
                format!(r#"{{"object":"whatsapp_business_account","entry":[{inner}]}}"#),
                format!(
                    r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"value":{{"metadata":{{"phone_number_id":"1122334455667"}},"messages":[{{"id":"w","from":"1","type":"order","order":{inner}}}]}}}}]}}]}}"#
                ),
                format!(
                    r#"{{"object":"page","entry":[{{"id":"1234567890","messaging":[{inner}]}}]}}"#
                ),
                format!(r#"{{"error":{inner}}}"#),
            ] {
                parse_everything(body.as_bytes());
            }
        }
    }
}

/// Every send variant over HTTP against a mock Graph API, through the real transport: the
/// request the mock sees (path, bearer token, JSON body) and the receipt or classified error.
mod wire {
    use serde_json::json;
    use switchboard_conformance::fixture::{CaseKind, load_dir};
    use switchboard_core::{ErrorClass, HttpRequest, MediaSource, OutboundMessage, Secrets};
    use switchboard_transport::{EgressPolicy, SendError, Transport};
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::support::*;
    use super::{connector, fixtures};

    fn transport() -> Transport {
        Transport::builder()
            .egress(EgressPolicy::allow_loopback_for_tests())
            .build()
            .unwrap()
    }

    fn secrets() -> Secrets {
        Secrets::default().with("access_token", "test-access-token")
    }

    /// The send fixtures that build a request: (connector id, channel, message, request).
    fn send_cases() -> Vec<(
        String,
        switchboard_core::ChannelContext,
        OutboundMessage,
        HttpRequest,
    )> {
        load_dir(&fixtures())
            .unwrap()
            .into_iter()
            .filter_map(|(_, case)| match case.kind {
                CaseKind::Send {
                    message,
                    expect_request: Some(request),
                    ..
                } => Some((case.connector, case.channel.context(), message, request)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn every_send_variant_reaches_the_graph_api_with_the_bearer_token() {
        let transport = transport();
        let cases = send_cases();
        assert!(cases.len() >= 20);
        for (id, ctx, message, expected) in cases {
            let server = MockServer::start().await;
            let ctx = ctx.with_setting("base_url", server.uri());
            let expected_path = expected
                .url
                .strip_prefix("https://graph.facebook.com")
                .unwrap()
                .to_owned();
            let answer = if id == "meta-whatsapp" {
                json!({"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "16315551181"}], "messages": [{"id": "wamid.SENT"}]})
            } else {
                json!({"recipient_id": "5678", "message_id": "m_SENT"})
            };
            let body: serde_json::Value = serde_json::from_slice(&expected.body).unwrap();
            Mock::given(method("POST"))
                .and(path(expected_path.as_str()))
                .and(header("authorization", "Bearer test-access-token"))
                .and(header("content-type", "application/json"))
                .and(body_json(body))
                .respond_with(ResponseTemplate::new(200).set_body_json(answer))
                .expect(1)
                .mount(&server)
                .await;
            let connector = connector(&id);
            let receipt = transport
                .send(connector.as_ref(), &ctx, &secrets(), &message)
                .await
                .unwrap_or_else(|e| panic!("{id} {expected_path}: {e}"));
            assert!(receipt.provider_message_id.ends_with("SENT"), "{receipt:?}");
            server.verify().await;
        }
    }

    async fn send_against(
        status: u16,
        body: serde_json::Value,
        retry_after: Option<&str>,
        connector_id: &str,
    ) -> SendError {
        let server = MockServer::start().await;
        let mut response = ResponseTemplate::new(status).set_body_json(body);
        if let Some(wait) = retry_after {
            response = response.insert_header("Retry-After", wait);
        }
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let (ctx, msg) = if connector_id == "meta-whatsapp" {
            (wa_ctx(), wa_text())
        } else {
            (fb_ctx(), fb_text())
        };
        let ctx = ctx.with_setting("base_url", server.uri());
        transport()
            .send(connector(connector_id).as_ref(), &ctx, &secrets(), &msg)
            .await
            .unwrap_err()
    }

    fn graph(code: i64, subcode: Option<i64>) -> serde_json::Value {
        let mut error =
            json!({"message": "test", "type": "OAuthException", "code": code, "fbtrace_id": "Az1"});
        if let Some(sub) = subcode {
            error["error_subcode"] = sub.into();
        }
        json!({ "error": error })
    }

    #[tokio::test]
    async fn error_bodies_throttling_and_server_errors_are_classified_over_the_wire() {
        let cases: &[(&str, u16, serde_json::Value, Option<&str>, ErrorClass)] = &[
            (
                "meta-whatsapp",
                400,
                graph(131_047, None),
                None,
                ErrorClass::WindowClosed,
            ),
            (
                "meta-whatsapp",
                429,
                graph(130_429, None),
                Some("17"),
                ErrorClass::Throttled,
            ),
            (
                "meta-whatsapp",
                400,
                graph(131_026, None),
                None,
                ErrorClass::InvalidRecipient,
            ),
            (
                "meta-whatsapp",
                401,
                graph(190, None),
                None,
                ErrorClass::Auth,
            ),
            (
                "meta-whatsapp",
                400,
                graph(132_001, None),
                None,
                ErrorClass::TemplateInvalid,
            ),
            (
                "meta-whatsapp",
                500,
                graph(131_000, None),
                None,
                ErrorClass::Retryable,
            ),
            (
                "meta-whatsapp",
                503,
                json!("unavailable"),
                None,
                ErrorClass::Retryable,
            ),
            (
                "meta-messenger",
                400,
                graph(10, Some(2_018_278)),
                None,
                ErrorClass::WindowClosed,
            ),
            (
                "meta-messenger",
                400,
                graph(551, None),
                None,
                ErrorClass::InvalidRecipient,
            ),
            (
                "meta-messenger",
                400,
                graph(613, None),
                None,
                ErrorClass::Throttled,
            ),
            (
                "meta-messenger",
                400,
                graph(190, None),
                None,
                ErrorClass::Auth,
            ),
            (
                "meta-messenger",
                502,
                json!({}),
                None,
                ErrorClass::Retryable,
            ),
        ];
        for (id, status, body, retry_after, class) in cases {
            let e = send_against(*status, body.clone(), *retry_after, id).await;
            let SendError::Provider(e) = e else {
                panic!("{id} {status}: not a provider error: {e}")
            };
            assert_eq!(e.class, *class, "{id} {status} {body}");
            if let Some(wait) = retry_after {
                assert_eq!(
                    e.retry_after.map(|d| d.as_secs().to_string()).as_deref(),
                    Some(*wait)
                );
            }
        }
    }

    #[tokio::test]
    async fn whatsapp_media_downloads_in_two_steps_with_the_token_on_both() {
        let server = MockServer::start().await;
        let media_url = format!("{}/whatsapp_business/attachments/?mid=1", server.uri());
        Mock::given(method("GET"))
            .and(path("/v25.0/1234567890987654321"))
            .and(header("authorization", "Bearer test-access-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp", "url": media_url, "mime_type": "image/jpeg",
                "sha256": "4654+8g=", "file_size": 5, "id": "1234567890987654321"
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/whatsapp_business/attachments/"))
            .and(header("authorization", "Bearer test-access-token"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Content-Type", "image/jpeg")
                    .set_body_bytes(b"\xff\xd8\xff\xe0!".to_vec()),
            )
            .expect(1)
            .mount(&server)
            .await;
        let ctx = wa_ctx().with_setting("base_url", server.uri());
        let source = MediaSource::ProviderId("1234567890987654321".into());
        let wa = connector("meta-whatsapp");
        let media = transport()
            .download_media(wa.as_ref(), &ctx, &secrets(), &source)
            .await
            .unwrap();
        assert_eq!(media.body, b"\xff\xd8\xff\xe0!");
        server.verify().await;
    }
}

/// The gateway's reference goes out as `biz_opaque_callback_data` (unless the caller set one)
/// and comes back on statuses as `client_reference`, so a status can settle a lost answer.
#[test]
fn the_client_reference_rides_biz_opaque_callback_data_both_ways() {
    let wa = WhatsAppConnector::new();
    let to = Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, "15551234567");
    let mut msg = switchboard_core::OutboundMessage::new("k", to, Content::text("hi"));
    msg.extensions
        .insert(switchboard_core::CLIENT_REFERENCE.into(), "sb-key-1".into());
    let body: serde_json::Value =
        serde_json::from_slice(&wa.build_send(&wa_ctx(), &msg).unwrap().body).unwrap();
    assert_eq!(body["biz_opaque_callback_data"], "sb-key-1");
    msg.extensions
        .insert("biz_opaque_callback_data".into(), "callers-own".into());
    let body: serde_json::Value =
        serde_json::from_slice(&wa.build_send(&wa_ctx(), &msg).unwrap().body).unwrap();
    assert_eq!(body["biz_opaque_callback_data"], "callers-own");

    let status = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1122334455667"},
            "statuses": [{"id": "wamid.X", "status": "delivered", "timestamp": "1700000000",
                          "recipient_id": "15551234567", "biz_opaque_callback_data": "sb-key-1"}]
        }}]}]
    });
    let events = wa
        .parse_webhook(&wa_ctx(), &post(status.to_string().into_bytes()))
        .unwrap()
        .events;
    let [InboundEvent::Status(update)] = events.as_slice() else {
        panic!("expected one status, got {events:?}")
    };
    assert_eq!(
        update.extensions[switchboard_core::CLIENT_REFERENCE],
        "sb-key-1"
    );
}
