//! Integration tests of the `twilio` connector: the fixture cases under `fixtures/twilio`
//! (directly and through the conformance kit), hostile input, and the contract edges.

#![cfg(feature = "twilio")]
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::{self, Verified, WebhookAuth};
use switchboard_core::{
    Address, AddressKind, Channel, ChannelContext, Connector, ConnectorError, Content, ErrorClass,
    HttpRequest, HttpResponse, InboundEvent, MediaSource, MediaStep, Method, OutboundMessage,
    SecretName, Secrets, SendReceipt, Timestamp, WebhookRequest, WindowDecision,
};
use switchboard_providers::twilio::{EMPTY_TWIML, TwilioConnector};

const ACCOUNT: &str = "AC9f8e7d6c5b4a39281706f5e4d3c2b1a0";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/twilio")
}

/// Every fixture case, as raw JSON, by file name.
fn cases() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 40, "fixtures are missing: {}", out.len());
    out
}

fn context(case: &Value) -> ChannelContext {
    serde_json::from_value(case["channel"].clone()).unwrap()
}

fn secrets(case: &Value) -> Secrets {
    let mut secrets = Secrets::default();
    if let Some(map) = case["channel"]["secrets"].as_object() {
        for (name, reference) in map {
            let value = reference.as_str().unwrap().strip_prefix("value:").unwrap();
            secrets = secrets.with(name.clone(), value);
        }
    }
    secrets
}

fn error_kind(e: &ConnectorError) -> &'static str {
    match e {
        ConnectorError::InvalidSignature { .. } => "invalid_signature",
        ConnectorError::Malformed { .. } => "malformed",
        ConnectorError::Unsupported { .. } => "unsupported",
        ConnectorError::Config { .. } => "config",
        _ => "other",
    }
}

fn check_expected_error(name: &str, error: &ConnectorError, expected: &Value) {
    assert_eq!(error_kind(error), expected["kind"], "{name}: {error}");
    if let Some(needle) = expected["contains"].as_str() {
        assert!(
            error.to_string().contains(needle),
            "{name}: `{error}` lacks `{needle}`"
        );
    }
}

#[test]
fn webhook_fixtures_parse_to_the_expected_events() {
    let twilio = TwilioConnector::new();
    let mut checked = 0;
    for (name, case) in cases().iter().filter(|(_, c)| c["kind"] == "webhook") {
        let req: WebhookRequest = serde_json::from_value(case["request"].clone()).unwrap();
        let result = twilio.parse_webhook(&context(case), &req);
        if let Some(expected) = case.get("expect") {
            let outcome = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                serde_json::to_value(&outcome.events).unwrap(),
                expected["events"],
                "{name}: events"
            );
            assert_eq!(
                serde_json::to_value(&outcome.reply).unwrap(),
                expected["reply"],
                "{name}: reply"
            );
            checked += 1;
        } else if case["expect_error"]["kind"] != "invalid_signature" {
            check_expected_error(name, &result.unwrap_err(), &case["expect_error"]);
            checked += 1;
        }
    }
    assert!(checked >= 30);
}

#[test]
fn fixture_signatures_verify_through_core() {
    let twilio = TwilioConnector::new();
    let now = Timestamp::from_unix_seconds(1_704_067_200);
    for (name, case) in cases().iter().filter(|(_, c)| c["kind"] == "webhook") {
        let req: WebhookRequest = serde_json::from_value(case["request"].clone()).unwrap();
        let scheme = twilio.webhook_auth(&context(case)).unwrap();
        let verdict = webhook_auth::verify(&scheme, &secrets(case), &req, now);
        if case["expect_error"]["kind"] == "invalid_signature" {
            assert!(verdict.is_err(), "{name}: a forged signature verified");
        } else {
            assert_eq!(verdict, Ok(Verified::Authentic), "{name}");
        }
    }
}

#[test]
fn send_fixtures_build_the_expected_requests() {
    let twilio = TwilioConnector::new();
    for (name, case) in cases().iter().filter(|(_, c)| c["kind"] == "send") {
        let msg: OutboundMessage = serde_json::from_value(case["message"].clone()).unwrap();
        let result = twilio.build_send(&context(case), &msg);
        match case.get("expect_request") {
            Some(expected) => {
                let expected: HttpRequest = serde_json::from_value(expected.clone()).unwrap();
                let built = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    (built.method, &built.url),
                    (expected.method, &expected.url),
                    "{name}"
                );
                assert_eq!(built.headers, expected.headers, "{name}");
                let pairs = |body: &[u8]| {
                    WebhookRequest::new(Method::Post, "")
                        .with_body(body.to_vec())
                        .form_pairs()
                };
                assert_eq!(pairs(&built.body), pairs(&expected.body), "{name}: form");
                assert_eq!(
                    twilio.build_send(&context(case), &msg).unwrap(),
                    built,
                    "{name}"
                );
            }
            None => check_expected_error(name, &result.unwrap_err(), &case["expect_error"]),
        }
    }
}

#[test]
fn send_response_fixtures_read_as_expected() {
    let twilio = TwilioConnector::new();
    for (name, case) in cases().iter().filter(|(_, c)| c["kind"] == "send_response") {
        let msg: OutboundMessage = serde_json::from_value(case["message"].clone()).unwrap();
        let resp: HttpResponse = serde_json::from_value(case["response"].clone()).unwrap();
        let result = twilio.parse_send_response(&context(case), &msg, &resp);
        if let Some(expected) = case.get("expect_receipt") {
            let expected: SendReceipt = serde_json::from_value(expected.clone()).unwrap();
            assert_eq!(result.unwrap(), expected, "{name}");
        } else {
            let expected = &case["expect_provider_error"];
            let error = result.unwrap_err();
            assert_eq!(error.class.as_str(), expected["class"], "{name}: {error}");
            if let Some(code) = expected["provider_code"].as_str() {
                assert_eq!(error.provider_code.as_deref(), Some(code), "{name}");
            }
            if let Some(secs) = expected["retry_after_secs"].as_u64() {
                assert_eq!(error.retry_after, Some(Duration::from_secs(secs)), "{name}");
            }
        }
    }
}

#[test]
fn conformance_kit_passes_on_the_fixtures() {
    let report = switchboard_conformance::check_fixtures(&TwilioConnector::new(), &fixtures_dir());
    assert!(report.cases >= 40);
}

// --- Contract edges ---------------------------------------------------------------------------

fn channel() -> ChannelContext {
    ChannelContext::new("twilio-main")
        .with_setting("account_sid", ACCOUNT)
        .with_setting("from", "+14155238886")
}

fn form(body: &[u8]) -> WebhookRequest {
    WebhookRequest::new(Method::Post, "https://gw.example.com/webhooks/t")
        .with_header("Content-Type", "application/x-www-form-urlencoded")
        .with_body(body.to_vec())
}

fn parse(body: &str) -> Result<Vec<InboundEvent>, ConnectorError> {
    TwilioConnector::new()
        .parse_webhook(&channel(), &form(body.as_bytes()))
        .map(|o| o.events)
}

#[test]
fn auth_schemes() {
    let twilio = TwilioConnector::new();
    assert_eq!(
        twilio.webhook_auth(&channel()).unwrap(),
        WebhookAuth::Twilio {
            auth_token: SecretName::new("auth_token")
        }
    );
    assert_eq!(
        twilio.outbound_auth(&channel()).unwrap(),
        OutboundAuth::Basic {
            username: ACCOUNT.into(),
            password: SecretName::new("auth_token")
        }
    );
    let with_key = channel().with_setting("api_key_sid", "SK0123456789abcdef0123456789abcdef");
    assert_eq!(
        twilio.outbound_auth(&with_key).unwrap(),
        OutboundAuth::Basic {
            username: "SK0123456789abcdef0123456789abcdef".into(),
            password: SecretName::new("api_key_secret")
        }
    );
    let bad_key = channel().with_setting("api_key_sid", "AC0123456789abcdef0123456789abcdef");
    assert!(matches!(
        twilio.outbound_auth(&bad_key),
        Err(ConnectorError::Config { field, .. }) if field == "api_key_sid"
    ));
    assert!(matches!(
        twilio.outbound_auth(&ChannelContext::new("x")),
        Err(ConnectorError::Config { field, .. }) if field == "account_sid"
    ));
}

#[test]
fn reply_is_empty_twiml() {
    let outcome = TwilioConnector::new()
        .parse_webhook(
            &channel(),
            &form(b"MessageSid=SM1&From=%2B1555&To=%2B1666&Body=hi"),
        )
        .unwrap();
    assert_eq!(outcome.reply.body, EMPTY_TWIML);
    assert_eq!(outcome.reply.content_type.as_deref(), Some("text/xml"));
}

#[test]
fn whatsapp_stop_is_consent_only_when_the_channel_says_so() {
    let body =
        "MessageSid=SM1&From=whatsapp%3A%2B1555&To=whatsapp%3A%2B1666&Body=STOP&SmsStatus=received";
    let events = parse(body).unwrap();
    assert_eq!(events.len(), 1, "WhatsApp STOP: message only by default");
    let ctx = channel().with_setting("whatsapp_opt_out_keywords", "true");
    let events = TwilioConnector::new()
        .parse_webhook(&ctx, &form(body.as_bytes()))
        .unwrap()
        .events;
    assert!(matches!(&events[1], InboundEvent::OptOut(c) if c.keyword.as_deref() == Some("STOP")));
    let ctx = channel().with_setting("whatsapp_opt_out_keywords", "maybe");
    assert!(matches!(
        TwilioConnector::new().parse_webhook(&ctx, &form(body.as_bytes())),
        Err(ConnectorError::Config { .. })
    ));
}

#[test]
fn sms_keywords_trailing_whitespace_and_multi_word() {
    let events = parse("MessageSid=SM1&From=%2B1555&To=%2B1666&Body=unsubscribe%0A").unwrap();
    assert!(
        matches!(&events[1], InboundEvent::OptOut(c) if c.keyword.as_deref() == Some("UNSUBSCRIBE"))
    );
    let events = parse("MessageSid=SM1&From=%2B1555&To=%2B1666&Body=Stop+please").unwrap();
    assert_eq!(events.len(), 1);
    let events = parse("MessageSid=SM1&From=%2B1555&To=%2B1666&Body=INFO").unwrap();
    assert_eq!(events.len(), 1, "INFO is not a consent change");
}

// --- Hostile input ------------------------------------------------------------------------------

#[test]
fn invalid_utf8_body_parses_gracefully() {
    let mut body = b"MessageSid=SM1&From=%2B1555&To=%2B1666&Body=".to_vec();
    body.extend_from_slice(&[0xff, 0xfe, b'o', b'k']);
    let outcome = TwilioConnector::new()
        .parse_webhook(&channel(), &form(&body))
        .unwrap();
    let InboundEvent::Message(m) = &outcome.events[0] else {
        panic!("not a message")
    };
    assert!(m.content.summary_text().unwrap().ends_with("ok"));
    // Invalid UTF-8 in a JSON body is a typed error.
    let json = WebhookRequest::new(Method::Post, "https://h/")
        .with_header("Content-Type", "application/json")
        .with_body(vec![b'{', 0xff, b'}']);
    assert!(matches!(
        TwilioConnector::new().parse_webhook(&channel(), &json),
        Err(ConnectorError::Malformed { .. })
    ));
}

#[test]
fn huge_num_media_and_index_gaps() {
    let events = parse(
        "MessageSid=MM1&From=%2B1555&To=%2B1666&NumMedia=99999999999999999999\
         &MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fa&MediaContentType0=image%2Fpng\
         &MediaUrl7=https%3A%2F%2Fapi.twilio.com%2Fc&MediaUrl3=https%3A%2F%2Fapi.twilio.com%2Fb&MediaContentType3=video%2Fmp4",
    )
    .unwrap();
    let urls: Vec<_> = events
        .iter()
        .map(|e| match e {
            InboundEvent::Message(m) => match &m.content {
                Content::Media(media) => (m.id.clone(), media.source.clone(), media.kind),
                other => panic!("not media: {other:?}"),
            },
            other => panic!("not a message: {other:?}"),
        })
        .collect();
    assert_eq!(urls.len(), 3);
    assert_eq!(urls[1].0, "MM1/1");
    assert_eq!(
        urls[1].1,
        MediaSource::Url("https://api.twilio.com/b".into())
    );
    assert_eq!(urls[2].2, switchboard_core::MediaKind::Document);
    let InboundEvent::Message(first) = &events[0] else {
        panic!()
    };
    assert_eq!(first.extensions["NumMedia"], json!("99999999999999999999"));

    let many: String = (0..30)
        .map(|i| format!("&MediaUrl{i}=https%3A%2F%2Fapi.twilio.com%2F{i}"))
        .collect();
    assert!(matches!(
        parse(&format!("MessageSid=MM1&From=%2B1555&To=%2B1666{many}")),
        Err(ConnectorError::Malformed { .. })
    ));
}

#[test]
fn duplicate_keys_and_unknown_fields_never_fail() {
    let events = parse(
        "MessageSid=SM1&MessageSid=SM2&From=%2B1555&To=%2B1666&Body=a&Body=b&Brand+New=%F0%9F%98%80",
    )
    .unwrap();
    let InboundEvent::Message(m) = &events[0] else {
        panic!()
    };
    assert_eq!(m.id, "SM1");
    assert_eq!(m.extensions["MessageSid"], json!(["SM1", "SM2"]));
    assert_eq!(m.extensions["Brand New"], json!("😀"));
}

#[test]
fn deep_and_odd_json_bodies_are_typed_errors() {
    let twilio = TwilioConnector::new();
    let json = |body: Vec<u8>| {
        WebhookRequest::new(Method::Post, "https://h/?bodySHA256=00")
            .with_header("Content-Type", "application/json")
            .with_body(body)
    };
    for body in [
        "[".repeat(100_000).into_bytes(),
        "{\"a\":".repeat(50_000).into_bytes(),
        b"[1,2]".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"MessageSid\":".to_vec(),
    ] {
        assert!(matches!(
            twilio.parse_webhook(&channel(), &json(body)),
            Err(ConnectorError::Malformed { .. })
        ));
    }
    // Nested members within serde's limit are kept in extensions.
    let ok = json(
        br#"{"MessageSid":"SM1","From":"+1555","To":"+1666","Body":"hi","Meta":{"a":[{"b":1}]}}"#
            .to_vec(),
    );
    let events = twilio.parse_webhook(&channel(), &ok).unwrap().events;
    let InboundEvent::Message(m) = &events[0] else {
        panic!()
    };
    assert_eq!(m.extensions["Meta"], json!({"a": [{"b": 1}]}));
}

#[test]
fn neither_message_nor_status_is_malformed() {
    assert!(matches!(
        parse("Foo=bar"),
        Err(ConnectorError::Malformed { .. })
    ));
    assert!(matches!(parse(""), Err(ConnectorError::Malformed { .. })));
    assert!(matches!(
        parse("MessageStatus=sent"),
        Err(ConnectorError::Malformed { reason }) if reason.contains("MessageSid")
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_webhook_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600),
                                  content_type in prop_oneof![
                                      Just("application/x-www-form-urlencoded"),
                                      Just("application/json"),
                                      Just("text/plain"),
                                  ],
                                  get in any::<bool>()) {
        let method = if get { Method::Get } else { Method::Post };
        let query = String::from_utf8_lossy(&body).replace(['#', ' '], "");
        let req = WebhookRequest::new(method, format!("https://h/p?{query}"))
            .with_header("Content-Type", content_type)
            .with_body(body);
        let _ = TwilioConnector::new().parse_webhook(&channel(), &req);
    }

    #[test]
    fn form_like_bodies_never_panic(pairs in proptest::collection::vec(
        (prop_oneof![
            Just("MessageSid".to_string()), Just("From".to_string()), Just("To".to_string()),
            Just("Body".to_string()), Just("NumMedia".to_string()), Just("MessageStatus".to_string()),
            Just("ErrorCode".to_string()), Just("Latitude".to_string()), Just("Longitude".to_string()),
            Just("ButtonPayload".to_string()), Just("OptOutType".to_string()),
            "MediaUrl[0-9]{1,6}", "MediaContentType[0-9]{1,3}", "Referral[A-Za-z]{0,8}", "\\PC{0,8}",
        ], "\\PC{0,20}"),
        0..40)) {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let _ = parse(&body);
    }

    #[test]
    fn parse_send_response_never_panics(status in 100u16..600,
                                        body in proptest::collection::vec(any::<u8>(), 0..400),
                                        retry_after in "\\PC{0,8}") {
        let msg = OutboundMessage::new("k", Address::phone(Channel::Sms, "+1555"), Content::text("hi"));
        let mut resp = HttpResponse::new(status, body);
        resp.headers.push(("Retry-After".into(), retry_after));
        let result = TwilioConnector::new().parse_send_response(&channel(), &msg, &resp);
        if status >= 500 {
            prop_assert_eq!(result.unwrap_err().class, ErrorClass::Retryable);
        } else if !(200..300).contains(&status) {
            prop_assert!(result.is_err());
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// --- Sends, media, capabilities --------------------------------------------------------------------

#[test]
fn send_through_a_messaging_service_given_on_the_message() {
    let mut msg = OutboundMessage::new(
        "k",
        Address::phone(Channel::WhatsApp, "+14017122661"),
        Content::text("hi"),
    );
    msg.from = Some(Address::new(
        Channel::WhatsApp,
        AddressKind::ProviderAccount,
        "MG0123456789abcdef0123456789abcdef",
    ));
    let req = TwilioConnector::new().build_send(&channel(), &msg).unwrap();
    let body = String::from_utf8(req.body).unwrap();
    assert_eq!(
        body,
        "To=whatsapp%3A%2B14017122661&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&Body=hi"
    );
}

#[test]
fn send_rejections_are_typed() {
    let twilio = TwilioConnector::new();
    let to_wa = Address::phone(Channel::WhatsApp, "+14017122661");
    let cases: Vec<(OutboundMessage, &str)> = vec![
        (
            OutboundMessage::new("k", to_wa.clone(), Content::text("x".repeat(1601))),
            "1601 characters",
        ),
        (
            OutboundMessage::new(
                "k",
                Address::phone(Channel::Messenger, "+1"),
                Content::text("hi"),
            ),
            "messenger",
        ),
        (
            OutboundMessage::new(
                "k",
                to_wa.clone(),
                Content::Media(switchboard_core::Media::from_provider_id(
                    switchboard_core::MediaKind::Image,
                    "123",
                )),
            ),
            "provider id",
        ),
        (
            OutboundMessage::new(
                "k",
                Address::phone(Channel::Sms, "+1555"),
                Content::Location(switchboard_core::Location {
                    latitude: 1.0,
                    longitude: 2.0,
                    name: None,
                    address: None,
                }),
            ),
            "location",
        ),
        (
            {
                let mut m = OutboundMessage::new("k", to_wa.clone(), Content::text("hi"));
                m.extensions.insert("Body".into(), json!("sneaky"));
                m
            },
            "extension `Body`",
        ),
    ];
    for (msg, needle) in cases {
        let error = twilio.build_send(&channel(), &msg).unwrap_err();
        assert!(
            matches!(error, ConnectorError::Unsupported { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains(needle),
            "`{error}` lacks `{needle}`"
        );
    }
}

#[test]
fn whatsapp_location_goes_as_persistent_action() {
    let msg = OutboundMessage::new(
        "k",
        Address::phone(Channel::WhatsApp, "+14017122661"),
        Content::Location(switchboard_core::Location {
            latitude: 37.78789,
            longitude: -122.391664,
            name: Some("Twilio HQ".into()),
            address: None,
        }),
    );
    let req = TwilioConnector::new().build_send(&channel(), &msg).unwrap();
    let pairs = WebhookRequest::new(Method::Post, "")
        .with_body(req.body)
        .form_pairs();
    assert!(pairs.contains(&(
        "PersistentAction".into(),
        "geo:37.78789,-122.391664|Twilio HQ".into()
    )));
    assert!(pairs.contains(&("Body".into(), "Twilio HQ".into())));
}

#[test]
fn media_step_fetches_twilio_urls_once() {
    let twilio = TwilioConnector::new();
    let url =
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME1");
    let source = MediaSource::Url(url.clone());
    assert_eq!(
        twilio.media_step(&channel(), &source, None).unwrap(),
        MediaStep::Fetch(HttpRequest::new(Method::Get, url))
    );
    let done = HttpResponse::new(200, b"bytes".to_vec());
    assert_eq!(
        twilio.media_step(&channel(), &source, Some(&done)).unwrap(),
        MediaStep::Done
    );
    let elsewhere = MediaSource::Url("https://evil.example/x.jpg".into());
    assert!(twilio.media_step(&channel(), &elsewhere, None).is_err());
    let by_id = MediaSource::ProviderId("ME1".into());
    assert!(twilio.media_step(&channel(), &by_id, None).is_err());
}

#[test]
fn window_policy_per_channel() {
    let twilio = TwilioConnector::new();
    let last = Timestamp::from_unix_seconds(1_700_000_000);
    let later = last.saturating_add(Duration::from_secs(25 * 3600));
    let text = Content::text("hi");
    assert_eq!(
        twilio
            .info()
            .capabilities(&Channel::WhatsApp)
            .unwrap()
            .window_decision(Some(last), later, &text, None),
        WindowDecision::TemplateRequired
    );
    assert_eq!(
        twilio
            .info()
            .capabilities(&Channel::Sms)
            .unwrap()
            .window_decision(Some(last), later, &text, None),
        WindowDecision::FreeForm
    );
}
