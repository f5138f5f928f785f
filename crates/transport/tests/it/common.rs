//! Shared helpers: a transport for loopback mocks, a controllable clock, a test connector.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Capabilities, Channel, ChannelContext, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, DeliveryStatus, ErrorClass, HttpRequest, HttpResponse, MediaSource, MediaStep,
    Method, OutboundMessage, ProviderError, SendReceipt, Timestamp, WebhookOutcome, WebhookRequest,
    WindowPolicy,
};
use switchboard_transport::{Clock, EgressPolicy, Transport, TransportBuilder};

/// A builder whose policy lets requests reach the local mock servers.
pub(crate) fn loopback() -> TransportBuilder {
    Transport::builder().egress(EgressPolicy::allow_loopback_for_tests())
}

/// A transport for the local mock servers.
pub(crate) fn transport() -> Transport {
    loopback().build().unwrap()
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub(crate) struct ManualClock(AtomicI64);

impl ManualClock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(1_700_000_000_000)))
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.0
            .fetch_add(i64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

/// A connector that posts JSON to `{base}/messages` and, for media ids, looks up
/// `{base}/media/{id}` (JSON `{"url": ...}`) before fetching the URL.
pub(crate) struct TestConnector {
    info: ConnectorInfo,
    base: String,
    auth: OutboundAuth,
}

impl TestConnector {
    pub(crate) fn new(base: &str, auth: OutboundAuth) -> Self {
        Self {
            info: ConnectorInfo {
                id: "test".into(),
                version: "0".into(),
                display_name: "Test".into(),
                channels: vec![ChannelSupport::new(
                    Channel::Sms,
                    Capabilities::new(1600, WindowPolicy::None),
                )],
                egress_hosts: vec!["127.0.0.1".into()],
            },
            base: base.to_owned(),
            auth,
        }
    }
}

impl Connector for TestConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, _ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        Ok(WebhookAuth::None)
    }

    fn outbound_auth(&self, _ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        Ok(self.auth.clone())
    }

    fn parse_webhook(
        &self,
        _ctx: &ChannelContext,
        _req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        Err(ConnectorError::unsupported("webhooks"))
    }

    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        let from = ctx.setting("from")?;
        let to = msg.to.phone_number().unwrap_or_default();
        Ok(
            HttpRequest::new(Method::Post, format!("{}/messages", self.base))
                .with_json(&serde_json::json!({"from": from, "to": to})),
        )
    }

    fn parse_send_response(
        &self,
        _ctx: &ChannelContext,
        _msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        let json: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|_| ProviderError::new(ErrorClass::Retryable, "not JSON"))?;
        if !resp.is_success() {
            let message = json["error"].as_str().unwrap_or("error").to_owned();
            return Err(ProviderError::new(ErrorClass::Permanent, message));
        }
        let id = json["id"]
            .as_str()
            .ok_or_else(|| ProviderError::new(ErrorClass::Retryable, "no id"))?;
        Ok(SendReceipt::new(id, DeliveryStatus::Accepted))
    }

    fn media_step(
        &self,
        _ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, ConnectorError> {
        match (source, previous) {
            (MediaSource::ProviderId(id), None) => Ok(MediaStep::Fetch(HttpRequest::new(
                Method::Get,
                format!("{}/media/{id}", self.base),
            ))),
            (MediaSource::ProviderId(_), Some(lookup))
                if lookup.header("x-media") == Some("bytes") =>
            {
                Ok(MediaStep::Done)
            }
            (MediaSource::ProviderId(_), Some(lookup)) => {
                let json: serde_json::Value = serde_json::from_slice(&lookup.body)
                    .map_err(|_| ConnectorError::malformed("lookup is not JSON"))?;
                let url = json["url"]
                    .as_str()
                    .ok_or_else(|| ConnectorError::malformed("no url"))?;
                Ok(MediaStep::Fetch(HttpRequest::new(Method::Get, url)))
            }
            (MediaSource::Url(url), None) => {
                Ok(MediaStep::Fetch(HttpRequest::new(Method::Get, url.clone())))
            }
            (MediaSource::Url(_), Some(_)) => Ok(MediaStep::Done),
        }
    }
}
