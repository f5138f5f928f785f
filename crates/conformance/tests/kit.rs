//! The kit must pass a well-behaved connector and catch each kind of misbehaviour.

use std::path::Path;

use switchboard_conformance::{check_fixtures, run_fixtures};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Address, Capabilities, Channel, ChannelContext, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, Content, DeliveryStatus, ErrorClass, HttpRequest, HttpResponse, InboundEvent,
    InboundMessage, Method, OutboundMessage, ProviderError, SendReceipt, WebhookOutcome,
    WebhookRequest, WindowPolicy,
};

/// A toy provider: JSON webhooks `{"id", "from", "text"}` behind a header token; sends JSON.
struct Toy {
    info: ConnectorInfo,
    flaw: Option<Flaw>,
}

#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    PanicsOnGarbage,
    LeaksSecretInSend,
    FiveHundredIsSuccess,
    IgnoresAuth,
}

impl Toy {
    fn new(flaw: Option<Flaw>) -> Self {
        Self {
            info: ConnectorInfo {
                id: "toy".into(),
                version: "1.0.0".into(),
                display_name: "Toy".into(),
                channels: vec![ChannelSupport::new(
                    Channel::Sms,
                    Capabilities::new(160, WindowPolicy::None),
                )],
                egress_hosts: vec!["api.toy.example".into()],
            },
            flaw,
        }
    }
}

impl Connector for Toy {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, _ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        Ok(if self.flaw == Some(Flaw::IgnoresAuth) {
            WebhookAuth::None
        } else {
            WebhookAuth::HeaderToken {
                header: "X-Toy-Token".into(),
                token: "webhook_token".into(),
            }
        })
    }

    fn outbound_auth(&self, _ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        Ok(OutboundAuth::Bearer {
            token: "api_token".into(),
        })
    }

    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        let value: serde_json::Value = match serde_json::from_slice(&req.body) {
            Ok(value) => value,
            Err(_) if self.flaw == Some(Flaw::PanicsOnGarbage) => panic!("cannot parse"),
            Err(e) => return Err(ConnectorError::malformed(e.to_string())),
        };
        let field = |name: &str| {
            value[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ConnectorError::malformed(format!("`{name}` is missing")))
        };
        Ok(WebhookOutcome::ok(vec![InboundEvent::Message(
            InboundMessage {
                id: field("id")?,
                from: Address::phone(Channel::Sms, field("from")?),
                to: Address::phone(Channel::Sms, ctx.setting("number")?),
                timestamp: None,
                content: Content::text(field("text")?),
                profile_name: None,
                reply_to: None,
                extensions: Default::default(),
            },
        )]))
    }

    fn build_send(
        &self,
        _ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        let Content::Text { text, .. } = &msg.content else {
            return Err(ConnectorError::unsupported("non-text content"));
        };
        let mut body = serde_json::json!({"to": msg.to.id, "text": text});
        if self.flaw == Some(Flaw::LeaksSecretInSend) {
            body["token"] = "toy-api-token-123".into();
        }
        Ok(HttpRequest::new(Method::Post, "https://api.toy.example/send").with_json(&body))
    }

    fn parse_send_response(
        &self,
        _ctx: &ChannelContext,
        _msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        let server_error = resp.status >= 500 && self.flaw != Some(Flaw::FiveHundredIsSuccess);
        if server_error {
            return Err(ProviderError::new(ErrorClass::Retryable, "server error"));
        }
        let value: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, e.to_string()))?;
        match value["id"].as_str() {
            Some(id) => Ok(SendReceipt::new(id, DeliveryStatus::Accepted)),
            None => Err(ProviderError::new(ErrorClass::Permanent, "no id")),
        }
    }
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

#[test]
fn a_well_behaved_connector_passes_every_check() {
    let report = check_fixtures(&Toy::new(None), fixtures());
    assert_eq!(report.cases, 4);
    // 5 for the accepted webhook, 2 for the rejected one, 3 per send and response case.
    assert_eq!(report.checks, 13, "{report}");
}

fn failed_checks(flaw: Flaw) -> Vec<&'static str> {
    let report = run_fixtures(&Toy::new(Some(flaw)), fixtures());
    report.failures.iter().map(|f| f.check).collect()
}

#[test]
fn catches_a_panic_on_hostile_input() {
    assert!(failed_checks(Flaw::PanicsOnGarbage).contains(&"hostile_input_never_panics"));
}

#[test]
fn catches_a_secret_in_a_built_request() {
    assert!(failed_checks(Flaw::LeaksSecretInSend).contains(&"no_secret_in_request"));
}

#[test]
fn catches_a_server_error_read_as_success() {
    assert!(failed_checks(Flaw::FiveHundredIsSuccess).contains(&"server_errors_are_retryable"));
}

#[test]
fn catches_a_connector_that_skips_auth() {
    // The fixture expects a rejected token; with no auth the request is accepted.
    assert!(failed_checks(Flaw::IgnoresAuth).contains(&"webhook_error"));
}

#[test]
fn a_directory_without_cases_for_the_connector_fails() {
    let empty = tempdir();
    let report = run_fixtures(&Toy::new(None), &empty);
    assert!(!report.passed());
    assert!(report.to_string().contains("no case for connector `toy`"));
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-kit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
