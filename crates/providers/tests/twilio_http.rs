//! The `twilio` connector through the real transport (`switchboard-transport`, reqwest) against
//! wiremock servers standing in for `api.twilio.com` and Twilio's media CDN: every send variant
//! as the provider sees it on the wire (path, Basic auth, form fields), every error body as the
//! gateway sees it (`SendError` class, code, wait), timeouts, and media downloads with their
//! redirect. Only loopback addresses are connected to; the channel's `base_url` points at the
//! mock.

#![cfg(feature = "twilio")]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_core::{
    Address, AddressKind, Channel, ChannelContext, Connector, ConnectorError, Content,
    DeliveryStatus, ErrorClass, InboundEvent, MediaSource, Method, OutboundMessage, Secrets,
    SendReceipt, WebhookRequest,
};
use switchboard_providers::twilio::TwilioConnector;
use switchboard_transport::{
    DenyRule, DownloadError, EgressPolicy, SendError, Transport, TransportBuilder, TransportError,
};
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The account of the fixtures.
const ACCOUNT: &str = "AC9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// The fixtures' auth token (Twilio's published test value).
const AUTH_TOKEN: &str = "12345";
/// The Messages endpoint of [`ACCOUNT`].
const MESSAGES: &str = "/2010-04-01/Accounts/AC9f8e7d6c5b4a39281706f5e4d3c2b1a0/Messages.json";
/// `Basic base64("{ACCOUNT}:{AUTH_TOKEN}")`, computed independently of the transport.
const ACCOUNT_BASIC: &str = "Basic QUM5ZjhlN2Q2YzViNGEzOTI4MTcwNmY1ZTRkM2MyYjFhMDoxMjM0NQ==";
const API_KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
const API_KEY_SECRET: &str = "key-secret-67890";
const SERVICE_SID: &str = "MGd4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9";
const MESSAGE_SID: &str = "MM1a2b3c4d5e6f708192a3b4c5d6e7f809";
const MEDIA_SID: &str = "ME11112222333344445555666677778888";
/// A host name for the media CDN, pinned to loopback by the transport's resolver.
const CDN_HOST: &str = "mms.twiliocdn.test";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/twilio")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The case's channel, with its API base pointed at `base_url`.
fn channel(case: &Value, base_url: &str) -> ChannelContext {
    let ctx: ChannelContext =
        serde_json::from_value(case["channel"].clone()).expect("the fixture's channel");
    ctx.with_setting("base_url", base_url)
}

/// The case's `value:` secrets.
fn secrets(case: &Value) -> Secrets {
    let map = case["channel"]["secrets"]
        .as_object()
        .expect("the fixture's secrets");
    map.iter()
        .fold(Secrets::default(), |secrets, (name, reference)| {
            let value = reference
                .as_str()
                .and_then(|r| r.strip_prefix("value:"))
                .expect("fixtures use value: secrets");
            secrets.with(name.clone(), value)
        })
}

fn message(case: &Value) -> OutboundMessage {
    serde_json::from_value(case["message"].clone()).expect("the fixture's message")
}

/// The channel every hand-written case uses: one `from` for both channels.
fn plain_channel(base_url: &str) -> ChannelContext {
    ChannelContext::new("twilio-main")
        .with_setting("account_sid", ACCOUNT)
        .with_setting("from", "+14155238886")
        .with_setting("base_url", base_url)
}

fn token_secrets() -> Secrets {
    Secrets::default().with("auth_token", AUTH_TOKEN)
}

/// Egress for the mocks: `127.0.0.1` only (any port), plain HTTP, loopback addresses.
fn loopback_egress() -> EgressPolicy {
    EgressPolicy::deny_all()
        .allow_host("127.0.0.1")
        .expect("a valid host pattern")
        .allow_plain_http()
        .dangerous_allow_loopback()
}

fn builder() -> TransportBuilder {
    Transport::builder()
        .egress(loopback_egress())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .media_timeout(Duration::from_secs(10))
}

/// A transport as a gateway configures it for Twilio: media downloads follow redirects.
fn transport() -> Transport {
    builder()
        .follow_redirects(3)
        .build()
        .expect("the test transport builds")
}

/// A mock answer from a fixture's `response`.
fn fixture_response(case: &Value) -> ResponseTemplate {
    let response = &case["response"];
    let status = response["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .expect("the fixture's status");
    let body = response["body"].as_str().unwrap_or_default().to_owned();
    let mut content_type = "application/octet-stream".to_owned();
    let mut template = ResponseTemplate::new(status);
    for pair in response["headers"].as_array().into_iter().flatten() {
        let name = pair[0].as_str().expect("a header name");
        let value = pair[1].as_str().expect("a header value");
        if name.eq_ignore_ascii_case("content-type") {
            value.clone_into(&mut content_type);
        } else {
            template = template.insert_header(name, value);
        }
    }
    template.set_body_raw(body, &content_type)
}

/// A JSON answer.
fn json_response(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json")
}

/// A `201 Created` as Twilio answers a message create.
fn created(sid: &str, status: &str) -> ResponseTemplate {
    json_response(
        201,
        &json!({
            "account_sid": ACCOUNT,
            "api_version": "2010-04-01",
            "sid": sid,
            "status": status,
            "error_code": null,
            "error_message": null,
        }),
    )
}

/// The one request `server` received.
async fn only_request(server: &MockServer) -> Request {
    let mut requests = server
        .received_requests()
        .await
        .expect("request recording is on");
    assert_eq!(requests.len(), 1, "expected exactly one request");
    requests.pop().expect("one request")
}

async fn request_count(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .expect("request recording is on")
        .len()
}

/// The decoded form fields of a request body, in order.
fn form(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn header_value<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Matches requests that carry no credentials.
struct NoCredentials;

impl Match for NoCredentials {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key("authorization")
            && !request.headers.contains_key("proxy-authorization")
            && !request.headers.contains_key("cookie")
    }
}

/// Mounts the Messages endpoint on `server`, requiring Basic auth with the account SID and
/// auth token and a form body, answering `response`.
async fn mount_messages(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(basic_auth(ACCOUNT, AUTH_TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(response)
        .expect(1)
        .mount(server)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sms_text_goes_as_a_form_post_with_account_basic_auth() {
    let request_case = fixture("send_sms_text");
    let response_case = fixture("response_success_sms");
    let server = MockServer::start().await;
    mount_messages(&server, fixture_response(&response_case)).await;

    let receipt = transport()
        .send(
            &TwilioConnector::new(),
            &channel(&request_case, &server.uri()),
            &secrets(&request_case),
            &message(&request_case),
        )
        .await
        .unwrap();

    let seen = only_request(&server).await;
    assert_eq!(seen.method.as_str(), "POST");
    assert_eq!(seen.url.path(), MESSAGES);
    assert_eq!(header_value(&seen, "authorization"), Some(ACCOUNT_BASIC));
    // The body reaches Twilio byte for byte as the connector built it (the fixture's request).
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        request_case["expect_request"]["body"].as_str().unwrap()
    );
    assert_eq!(
        form(&seen),
        pairs(&[
            ("To", "+14133881111"),
            ("From", "+14155238886"),
            ("Body", "Your order #42 has shipped."),
            (
                "StatusCallback",
                "https://gateway.example.com/webhooks/twilio-main"
            ),
        ])
    );

    // The receipt: sid, status and the SMS extras.
    let expected: SendReceipt =
        serde_json::from_value(response_case["expect_receipt"].clone()).unwrap();
    assert_eq!(receipt, expected);
    assert_eq!(
        receipt.provider_message_id,
        "SMf0e1d2c3b4a5968778695a4b3c2d1e0f"
    );
    assert_eq!(receipt.status, DeliveryStatus::Queued);
    assert_eq!(receipt.extensions["segments"], json!(1));
    assert_eq!(receipt.extensions["encoding"], json!("gsm7"));
}

#[tokio::test]
async fn sms_with_an_emoji_reports_ucs2_segments_and_arrives_intact() {
    let case = fixture("response_success_sms_ucs2");
    let server = MockServer::start().await;
    mount_messages(&server, fixture_response(&case)).await;
    let msg = message(&case);

    let receipt = transport()
        .send(
            &TwilioConnector::new(),
            &channel(&case, &server.uri()),
            &secrets(&case),
            &msg,
        )
        .await
        .unwrap();

    let Content::Text { text, .. } = &msg.content else {
        panic!("the fixture sends text")
    };
    let seen = only_request(&server).await;
    let body = form(&seen)
        .into_iter()
        .find(|(k, _)| k == "Body")
        .map(|(_, v)| v);
    assert_eq!(body.as_deref(), Some(text.as_str()));
    assert_eq!(receipt.status, DeliveryStatus::Queued);
    assert_eq!(receipt.extensions["segments"], json!(2));
    assert_eq!(receipt.extensions["encoding"], json!("ucs2"));
}

#[tokio::test]
async fn api_key_credentials_replace_the_auth_token_in_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(basic_auth(API_KEY_SID, API_KEY_SECRET))
        .respond_with(created("SM00000000000000000000000000000001", "queued"))
        .expect(1)
        .mount(&server)
        .await;
    let ctx = plain_channel(&server.uri()).with_setting("api_key_sid", API_KEY_SID);
    // Both secrets are configured: the auth token still signs webhooks, the key sends.
    let secrets = token_secrets().with("api_key_secret", API_KEY_SECRET);
    let msg = OutboundMessage::new(
        "key-1",
        Address::phone(Channel::Sms, "+14133881111"),
        Content::text("Sent with an API key"),
    );

    let receipt = transport()
        .send(&TwilioConnector::new(), &ctx, &secrets, &msg)
        .await
        .unwrap();

    assert_eq!(
        receipt.provider_message_id,
        "SM00000000000000000000000000000001"
    );
    let seen = only_request(&server).await;
    // The path keeps the account; only the credentials change.
    assert_eq!(seen.url.path(), MESSAGES);
    let authorization = header_value(&seen, "authorization").unwrap();
    assert_ne!(authorization, ACCOUNT_BASIC);
    assert!(authorization.starts_with("Basic "));
}

#[tokio::test]
async fn api_key_without_its_secret_is_not_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created("SM00000000000000000000000000000001", "queued"))
        .expect(0)
        .mount(&server)
        .await;
    let ctx = plain_channel(&server.uri()).with_setting("api_key_sid", API_KEY_SID);
    let msg = OutboundMessage::new(
        "key-2",
        Address::phone(Channel::Sms, "+14133881111"),
        Content::text("hi"),
    );

    // Only the auth token is configured: the transport must not fall back on it.
    let err = transport()
        .send(&TwilioConnector::new(), &ctx, &token_secrets(), &msg)
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            SendError::Transport(TransportError::MissingSecret { name }) if name.as_str() == "api_key_secret"
        ),
        "{err:?}"
    );
    assert!(err.not_sent() && !err.outcome_unknown());
    assert_eq!(request_count(&server).await, 0);
}

#[tokio::test]
async fn messaging_service_sends_without_from() {
    let case = fixture("send_messaging_service");
    let server = MockServer::start().await;
    mount_messages(
        &server,
        created("SM00000000000000000000000000000002", "accepted"),
    )
    .await;
    let ctx = channel(&case, &server.uri()).with_setting("validity_period", "600");

    let receipt = transport()
        .send(
            &TwilioConnector::new(),
            &ctx,
            &secrets(&case),
            &message(&case),
        )
        .await
        .unwrap();

    let seen = only_request(&server).await;
    assert_eq!(
        form(&seen),
        pairs(&[
            ("To", "+14133881111"),
            ("MessagingServiceSid", SERVICE_SID),
            ("Body", "Hello from the service"),
            ("ValidityPeriod", "600"),
        ])
    );
    // Twilio picks the sender later: `accepted`, and still an SMS with segment info.
    assert_eq!(receipt.status, DeliveryStatus::Accepted);
    assert_eq!(receipt.extensions["segments"], json!(1));
}

#[tokio::test]
async fn a_messaging_service_sender_on_the_message_replaces_the_channel_number() {
    let server = MockServer::start().await;
    mount_messages(
        &server,
        created("SM00000000000000000000000000000003", "accepted"),
    )
    .await;
    let mut msg = OutboundMessage::new(
        "svc-2",
        Address::phone(Channel::Sms, "+14133881111"),
        Content::text("Picked by the service"),
    );
    msg.from = Some(Address::new(
        Channel::Sms,
        AddressKind::ProviderAccount,
        SERVICE_SID,
    ));

    transport()
        .send(
            &TwilioConnector::new(),
            &plain_channel(&server.uri()),
            &token_secrets(),
            &msg,
        )
        .await
        .unwrap();

    let fields = form(&only_request(&server).await);
    assert!(
        fields
            .iter()
            .any(|(k, v)| k == "MessagingServiceSid" && v == SERVICE_SID),
        "{fields:?}"
    );
    assert!(
        !fields.iter().any(|(k, _)| k == "From"),
        "the channel's number must not be sent with the service: {fields:?}"
    );
}

#[tokio::test]
async fn whatsapp_media_sends_every_media_url_in_order() {
    let case = fixture("send_whatsapp_media");
    let server = MockServer::start().await;
    mount_messages(
        &server,
        created("MM00000000000000000000000000000004", "queued"),
    )
    .await;
    let mut msg = message(&case);
    msg.extensions.insert(
        "MediaUrl".into(),
        json!([
            "https://cdn.example.com/orders/42-invoice.pdf",
            "https://cdn.example.com/orders/42-label.png"
        ]),
    );

    let receipt = transport()
        .send(
            &TwilioConnector::new(),
            &channel(&case, &server.uri()),
            &secrets(&case),
            &msg,
        )
        .await
        .unwrap();

    let seen = only_request(&server).await;
    assert_eq!(header_value(&seen, "authorization"), Some(ACCOUNT_BASIC));
    assert_eq!(
        form(&seen),
        pairs(&[
            ("To", "whatsapp:+14017122661"),
            ("From", "whatsapp:+14155238886"),
            ("Body", "Your parcel"),
            ("MediaUrl", "https://cdn.example.com/orders/42.jpg"),
            ("MediaUrl", "https://cdn.example.com/orders/42-invoice.pdf"),
            ("MediaUrl", "https://cdn.example.com/orders/42-label.png"),
            (
                "StatusCallback",
                "https://gateway.example.com/webhooks/twilio-main"
            ),
        ])
    );
    assert_eq!(
        receipt.provider_message_id,
        "MM00000000000000000000000000000004"
    );
    assert_eq!(receipt.status, DeliveryStatus::Queued);
    // Segments and encoding are SMS text facts: not on a WhatsApp media send.
    assert!(receipt.extensions.is_empty(), "{:?}", receipt.extensions);
}

#[tokio::test]
async fn template_goes_as_content_sid_and_content_variables_never_as_body() {
    let case = fixture("send_whatsapp_template");
    let server = MockServer::start().await;
    mount_messages(
        &server,
        created("MM00000000000000000000000000000005", "queued"),
    )
    .await;

    let receipt = transport()
        .send(
            &TwilioConnector::new(),
            &channel(&case, &server.uri()),
            &secrets(&case),
            &message(&case),
        )
        .await
        .unwrap();

    let fields = form(&only_request(&server).await);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "To",
            "From",
            "ContentSid",
            "ContentVariables",
            "StatusCallback"
        ]
    );
    assert_eq!(fields[0].1, "whatsapp:+14017122661");
    assert_eq!(fields[2].1, "HXb5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0");
    // Positional parameters are "1", "2", …; named ones keep their name.
    let variables: Value = serde_json::from_str(&fields[3].1).unwrap();
    assert_eq!(
        variables,
        json!({"1": "Kerry", "2": "tomorrow at 3pm", "store": "Beale St"})
    );
    assert_eq!(receipt.status, DeliveryStatus::Queued);
    assert!(receipt.extensions.is_empty(), "{:?}", receipt.extensions);
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

/// One provider answer and what the gateway must see.
struct ErrorCase {
    name: &'static str,
    message: OutboundMessage,
    response: ResponseTemplate,
    class: ErrorClass,
    code: Option<&'static str>,
    retry_after: Option<Duration>,
    /// A substring of the error's message, when the case checks it.
    contains: Option<&'static str>,
}

fn sms_message() -> OutboundMessage {
    OutboundMessage::new(
        "order-42-sms",
        Address::phone(Channel::Sms, "+14133881111"),
        Content::text("Your order #42 has shipped."),
    )
}

fn from_fixture(
    name: &'static str,
    class: ErrorClass,
    code: Option<&'static str>,
    retry_after: Option<Duration>,
) -> ErrorCase {
    let case = fixture(name);
    ErrorCase {
        name,
        message: message(&case),
        response: fixture_response(&case),
        class,
        code,
        retry_after,
        contains: None,
    }
}

fn legacy_body(code: u32, message: &str, status: u16) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

fn error_cases() -> Vec<ErrorCase> {
    let hand = |name, response, class, code, retry_after, contains| ErrorCase {
        name,
        message: sms_message(),
        response,
        class,
        code,
        retry_after,
        contains,
    };
    vec![
        from_fixture(
            "response_21610_opted_out",
            ErrorClass::OptedOut,
            Some("21610"),
            None,
        ),
        from_fixture(
            "response_63016_window_closed",
            ErrorClass::WindowClosed,
            Some("63016"),
            None,
        ),
        hand(
            "legacy 21211",
            json_response(
                400,
                &legacy_body(
                    21211,
                    "The 'To' number +1413388 is not a valid phone number.",
                    400,
                ),
            ),
            ErrorClass::InvalidRecipient,
            Some("21211"),
            None,
            Some("not a valid phone number"),
        ),
        from_fixture("response_401_auth", ErrorClass::Auth, Some("20003"), None),
        from_fixture(
            "response_429_retry_after",
            ErrorClass::Throttled,
            Some("20429"),
            Some(Duration::from_secs(30)),
        ),
        hand(
            "429 without a Twilio body",
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_raw("<html>slow down</html>", "text/html"),
            ErrorClass::Throttled,
            None,
            Some(Duration::from_secs(7)),
            None,
        ),
        ErrorCase {
            contains: Some("is not a valid phone number"),
            ..from_fixture(
                "response_rfc9457_invalid_to",
                ErrorClass::InvalidRecipient,
                Some("21211"),
                None,
            )
        },
        hand(
            "RFC 9457 with the code only in its type URL",
            ResponseTemplate::new(400).set_body_raw(
                json!({
                    "type": "https://www.twilio.com/docs/errors/63016",
                    "title": "Outside the allowed window",
                    "status": 400,
                    "detail": "Use a Content template outside the 24-hour window",
                    "instance": MESSAGES,
                })
                .to_string(),
                "application/problem+json",
            ),
            ErrorClass::WindowClosed,
            Some("63016"),
            None,
            Some("Content template"),
        ),
        from_fixture("response_500", ErrorClass::Retryable, None, None),
        hand(
            "503 with Retry-After",
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "5")
                .set_body_raw("Service Unavailable", "text/plain"),
            ErrorClass::Retryable,
            None,
            Some(Duration::from_secs(5)),
            None,
        ),
        hand(
            "503 with a stale legacy body: 5xx wins, the code is kept",
            json_response(
                503,
                &legacy_body(21610, "Attempt to send to unsubscribed recipient", 400),
            ),
            ErrorClass::Retryable,
            Some("21610"),
            None,
            None,
        ),
        hand(
            "201 with an unreadable body: the message may exist",
            ResponseTemplate::new(201).set_body_raw("<html>proxy</html>", "text/html"),
            ErrorClass::Permanent,
            None,
            None,
            Some("may have been created"),
        ),
    ]
}

#[tokio::test]
async fn error_bodies_surface_as_classified_provider_errors() {
    let transport = transport();
    let connector = TwilioConnector::new();
    for case in error_cases() {
        let server = MockServer::start().await;
        // Credentials are checked here too: the answer is the provider's, not a 404 of the mock.
        mount_messages(&server, case.response).await;
        let err = transport
            .send(
                &connector,
                &plain_channel(&server.uri()),
                &token_secrets(),
                &case.message,
            )
            .await
            .unwrap_err();
        let SendError::Provider(e) = &err else {
            panic!("{}: expected a provider error, got {err:?}", case.name)
        };
        assert_eq!(e.class, case.class, "{}: {e:?}", case.name);
        assert_eq!(e.provider_code.as_deref(), case.code, "{}", case.name);
        assert_eq!(e.retry_after, case.retry_after, "{}", case.name);
        if let Some(text) = case.contains {
            assert!(e.message.contains(text), "{}: {}", case.name, e.message);
        }
        // The provider answered: its verdict, neither "not sent" nor "outcome unknown".
        assert!(!err.not_sent() && !err.outcome_unknown(), "{}", case.name);
        // One request: Basic auth is not retried on 401, errors are not retried by the transport.
        assert_eq!(request_count(&server).await, 1, "{}", case.name);
    }
}

#[tokio::test]
async fn a_send_slower_than_the_timeout_is_outcome_unknown_not_a_provider_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            created("SM00000000000000000000000000000006", "queued")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let transport = builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let started = Instant::now();
    let err = transport
        .send(
            &TwilioConnector::new(),
            &plain_channel(&server.uri()),
            &token_secrets(),
            &sms_message(),
        )
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout was not applied"
    );
    assert!(
        matches!(&err, SendError::Transport(TransportError::Timeout { after, .. }) if *after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.outcome_unknown() && !err.not_sent());
    // The provider did get the message: resending blindly could duplicate it.
    assert_eq!(request_count(&server).await, 1);
}

// ---------------------------------------------------------------------------------------------
// Media downloads
// ---------------------------------------------------------------------------------------------

fn media_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MESSAGE_SID}/Media/{MEDIA_SID}")
}

/// An inbound MMS whose `MediaUrl0` is on `api_base`, parsed by the connector; returns the
/// media source of its event, as the gateway would download it.
fn inbound_media_source(ctx: &ChannelContext, api_base: &str) -> MediaSource {
    let media_url = format!("{api_base}{}", media_path());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("MessageSid", MESSAGE_SID),
            ("AccountSid", ACCOUNT),
            ("From", "+14133881111"),
            ("To", "+14155238886"),
            ("Body", "Photo of the damage"),
            ("NumMedia", "1"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl0", media_url.as_str()),
            ("SmsStatus", "received"),
            ("ApiVersion", "2010-04-01"),
        ])
        .finish();
    let req = WebhookRequest::new(
        Method::Post,
        "https://gateway.example.com/webhooks/twilio-main",
    )
    .with_header("Content-Type", "application/x-www-form-urlencoded")
    .with_body(body);
    let outcome = TwilioConnector::new()
        .parse_webhook(ctx, &req)
        .expect("the inbound MMS parses");
    let Some(InboundEvent::Message(message)) = outcome.events.into_iter().next() else {
        panic!("expected a message event")
    };
    let Content::Media(media) = message.content else {
        panic!("expected media content, got {:?}", message.content)
    };
    assert_eq!(media.source, MediaSource::Url(media_url));
    media.source
}

/// JPEG-ish bytes, not valid UTF-8, so a lossy text round trip would show.
fn image_bytes() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'];
    bytes.extend((0..4096u32).map(|i| (i % 251) as u8));
    bytes.extend([0xFF, 0xD9]);
    bytes
}

fn redirect_to(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(307).insert_header("Location", location)
}

#[tokio::test]
async fn inbound_media_is_fetched_with_basic_auth_and_the_cdn_gets_no_credentials() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    let cdn_path = "/media/AC9f8e7d6c5b4a39281706f5e4d3c2b1a0/ME11112222333344445555666677778888";
    Mock::given(method("GET"))
        .and(path(media_path()))
        .and(basic_auth(ACCOUNT, AUTH_TOKEN))
        .respond_with(redirect_to(&format!(
            "{}{cdn_path}?Expires=1700000000&Signature=abc",
            cdn.uri()
        )))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path(cdn_path))
        .and(NoCredentials)
        .respond_with(ResponseTemplate::new(200).set_body_raw(image_bytes(), "image/jpeg"))
        .expect(1)
        .mount(&cdn)
        .await;
    let ctx = plain_channel(&api.uri());
    let source = inbound_media_source(&ctx, &api.uri());

    let media = transport()
        .download_media(&TwilioConnector::new(), &ctx, &token_secrets(), &source)
        .await
        .unwrap();

    assert_eq!(media.status, 200);
    assert_eq!(media.body, image_bytes());
    assert_eq!(media.header("content-type"), Some("image/jpeg"));
    let first = only_request(&api).await;
    assert_eq!(header_value(&first, "authorization"), Some(ACCOUNT_BASIC));
    // The CDN is another origin (another port): no credentials, and the signed query intact.
    let hop = only_request(&cdn).await;
    assert_eq!(header_value(&hop, "authorization"), None);
    assert_eq!(hop.url.query(), Some("Expires=1700000000&Signature=abc"));
}

#[tokio::test]
async fn media_redirect_to_a_named_cdn_host_drops_credentials() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    let cdn_port = cdn.address().port();
    Mock::given(method("GET"))
        .and(path(media_path()))
        .and(basic_auth(ACCOUNT, AUTH_TOKEN))
        .respond_with(redirect_to(&format!(
            "http://{CDN_HOST}:{cdn_port}/m/{MEDIA_SID}"
        )))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/m/{MEDIA_SID}")))
        .and(NoCredentials)
        .respond_with(ResponseTemplate::new(200).set_body_raw(image_bytes(), "image/jpeg"))
        .expect(1)
        .mount(&cdn)
        .await;
    let transport = builder()
        .egress(loopback_egress().allow_host(CDN_HOST).unwrap())
        .resolve(CDN_HOST, &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .follow_redirects(3)
        .build()
        .unwrap();
    let ctx = plain_channel(&api.uri());
    let source = inbound_media_source(&ctx, &api.uri());

    let media = transport
        .download_media(&TwilioConnector::new(), &ctx, &token_secrets(), &source)
        .await
        .unwrap();

    assert_eq!(media.body, image_bytes());
    let hop = only_request(&cdn).await;
    assert_eq!(header_value(&hop, "authorization"), None);
    assert_eq!(
        header_value(&hop, "host"),
        Some(format!("{CDN_HOST}:{cdn_port}").as_str())
    );
}

#[tokio::test]
async fn media_redirect_to_a_host_outside_the_egress_policy_is_refused() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(media_path()))
        .respond_with(redirect_to(&format!(
            "http://{CDN_HOST}:{}/m/{MEDIA_SID}",
            cdn.address().port()
        )))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(image_bytes(), "image/jpeg"))
        .expect(0)
        .mount(&cdn)
        .await;
    // The CDN name resolves to loopback but is not on the allow-list.
    let transport = builder()
        .resolve(CDN_HOST, &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .follow_redirects(3)
        .build()
        .unwrap();
    let ctx = plain_channel(&api.uri());
    let source = inbound_media_source(&ctx, &api.uri());

    let err = transport
        .download_media(&TwilioConnector::new(), &ctx, &token_secrets(), &source)
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            DownloadError::Transport(TransportError::EgressDenied(denied))
                if denied.host == CDN_HOST && denied.rule == DenyRule::HostNotAllowed
        ),
        "{err:?}"
    );
    assert_eq!(request_count(&cdn).await, 0);
}

#[tokio::test]
async fn a_media_url_off_the_api_base_is_refused_before_any_request() {
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(image_bytes(), "image/jpeg"))
        .expect(0)
        .mount(&elsewhere)
        .await;
    // Same host as the API base, another port: another origin, so no credentials for it.
    let source = MediaSource::Url(format!("{}{}", elsewhere.uri(), media_path()));

    let err = transport()
        .download_media(
            &TwilioConnector::new(),
            &plain_channel(&api.uri()),
            &token_secrets(),
            &source,
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            DownloadError::Connector(ConnectorError::Unsupported { .. })
        ),
        "{err:?}"
    );
    assert_eq!(request_count(&elsewhere).await, 0);
    assert_eq!(request_count(&api).await, 0);
}

#[tokio::test]
async fn media_on_a_transport_that_does_not_follow_redirects_fails_instead_of_returning_the_redirect()
 {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(media_path()))
        .respond_with(redirect_to(&format!("{}/m/{MEDIA_SID}", cdn.uri())))
        .expect(1)
        .mount(&api)
        .await;
    let transport = builder().follow_redirects(0).build().unwrap();
    let ctx = plain_channel(&api.uri());
    let source = inbound_media_source(&ctx, &api.uri());

    let err = transport
        .download_media(&TwilioConnector::new(), &ctx, &token_secrets(), &source)
        .await
        .unwrap_err();

    assert!(
        matches!(err, DownloadError::Status { status: 307 }),
        "{err:?}"
    );
    assert_eq!(request_count(&cdn).await, 0);
}

#[tokio::test]
async fn missing_media_is_a_status_error() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(media_path()))
        .and(basic_auth(ACCOUNT, AUTH_TOKEN))
        .respond_with(json_response(
            404,
            &legacy_body(20404, "The requested resource was not found", 404),
        ))
        .expect(1)
        .mount(&api)
        .await;
    let ctx = plain_channel(&api.uri());
    let source = inbound_media_source(&ctx, &api.uri());

    let err = transport()
        .download_media(&TwilioConnector::new(), &ctx, &token_secrets(), &source)
        .await
        .unwrap_err();

    assert!(
        matches!(err, DownloadError::Status { status: 404 }),
        "{err:?}"
    );
}
