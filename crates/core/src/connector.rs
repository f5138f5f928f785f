//! The connector contract: one trait for webhook providers, one for session providers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::outbound_auth::OutboundAuth;
use crate::webhook_auth::{self, Verified, WebhookAuth};
use crate::{
    Capabilities, Channel, ConnectorError, HttpRequest, HttpResponse, InboundEvent, MediaSource,
    Method, OutboundMessage, ProviderError, SecretStore, Secrets, SendReceipt, Timestamp,
    WebhookReply, WebhookRequest,
};

/// What a connector is and what it can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    /// Stable identifier used in configuration, e.g. `twilio`, `meta-whatsapp`.
    pub id: String,
    /// The connector's version.
    pub version: String,
    /// A human name, e.g. "Twilio Messaging".
    pub display_name: String,
    /// The channels it serves, each with what it supports there.
    pub channels: Vec<ChannelSupport>,
    /// Hosts its requests go to (the transport's egress allow-list), e.g. `graph.facebook.com`.
    pub egress_hosts: Vec<String>,
}

impl ConnectorInfo {
    /// What the connector supports on `channel`; `None` when it does not serve it.
    ///
    /// ```
    /// use switchboard_core::{Capabilities, Channel, ChannelSupport, ConnectorInfo, WindowPolicy};
    /// let info = ConnectorInfo {
    ///     id: "sms-only".into(),
    ///     version: "1.0.0".into(),
    ///     display_name: "SMS".into(),
    ///     channels: vec![ChannelSupport::new(Channel::Sms, Capabilities::new(1600, WindowPolicy::None))],
    ///     egress_hosts: vec![],
    /// };
    /// assert!(info.capabilities(&Channel::Sms).is_some());
    /// assert!(info.capabilities(&Channel::WhatsApp).is_none());
    /// ```
    pub fn capabilities(&self, channel: &Channel) -> Option<&Capabilities> {
        self.channels
            .iter()
            .find(|support| support.channel == *channel)
            .map(|support| &support.capabilities)
    }
}

/// A channel a connector serves and what it supports there. One connector may serve several
/// channels with different rules (Twilio: WhatsApp with a 24-hour window, SMS without).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSupport {
    /// The channel.
    pub channel: Channel,
    /// What it supports.
    pub capabilities: Capabilities,
}

impl ChannelSupport {
    /// A channel with its capabilities.
    pub fn new(channel: Channel, capabilities: Capabilities) -> Self {
        Self {
            channel,
            capabilities,
        }
    }
}

/// One configured channel, as a connector sees it: its id and its non-secret settings.
///
/// Secrets are not here: connectors refer to them by name in their auth schemes and the host
/// resolves them.
///
/// ```
/// use switchboard_core::ChannelContext;
/// let ctx = ChannelContext::new("wa-main").with_setting("phone_number_id", "1234");
/// assert_eq!(ctx.setting("phone_number_id").unwrap(), "1234");
/// assert!(ctx.setting("waba_id").unwrap_err().to_string().contains("waba_id"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelContext {
    /// The gateway's id for the channel.
    pub channel_id: String,
    /// Non-secret settings, connector-specific.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl ChannelContext {
    /// A channel with no settings.
    pub fn new(channel_id: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            settings: serde_json::Map::new(),
        }
    }

    /// Adds a string setting.
    pub fn with_setting(mut self, name: &str, value: impl Into<String>) -> Self {
        self.settings
            .insert(name.to_owned(), serde_json::Value::String(value.into()));
        self
    }

    /// A required, non-empty string setting.
    pub fn setting(&self, name: &str) -> Result<&str, ConnectorError> {
        match self.settings.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
            Some(serde_json::Value::String(_)) => Err(ConnectorError::config(name, "is empty")),
            Some(_) => Err(ConnectorError::config(name, "must be a string")),
            None => Err(ConnectorError::config(name, "is required")),
        }
    }

    /// An optional string setting; present but empty or not a string is an error.
    pub fn optional_setting(&self, name: &str) -> Result<Option<&str>, ConnectorError> {
        match self.settings.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(_) => self.setting(name).map(Some),
        }
    }
}

/// The key a shared webhook endpoint routes on (e.g. a Meta `phone_number_id`): the server maps
/// it to the configured channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelKey(pub String);

/// What a connector made of one webhook: the events, what to answer the provider once they are
/// stored, and the items of a batch that produced no event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookOutcome {
    /// The events, in the order the provider gave them.
    pub events: Vec<InboundEvent>,
    /// The reply.
    pub reply: WebhookReply,
    /// Items that produced no event (a malformed entry of an otherwise good batch, an echo),
    /// so the host can log what it acknowledges without storing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedItem>,
}

impl WebhookOutcome {
    /// Events with a plain `200 OK`.
    pub fn ok(events: Vec<InboundEvent>) -> Self {
        Self::with_reply(events, WebhookReply::ok())
    }

    /// Events with a reply of the connector's choosing.
    pub fn with_reply(events: Vec<InboundEvent>, reply: WebhookReply) -> Self {
        Self {
            events,
            reply,
            skipped: Vec::new(),
        }
    }
}

/// An item of a webhook batch that produced no event, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedItem {
    /// Where the item is, e.g. `entry[0].changes[1].value.messages[2]`.
    pub path: String,
    /// Why it produced no event: what was malformed, or that the item carries no event (an
    /// echo, a read watermark).
    pub reason: String,
}

/// The next step of a media download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaStep {
    /// Run this request and call [`Connector::media_step`] again with its response.
    Fetch(HttpRequest),
    /// The last response's body is the media.
    Done,
}

/// A provider reached over HTTP: webhooks in, requests out. Pure functions over bytes, no I/O:
/// the host verifies webhooks (from [`Connector::webhook_auth`]), stores events, and runs the
/// requests through the transport (with credentials from [`Connector::outbound_auth`]).
///
/// Usable as `Arc<dyn Connector>`; a WebAssembly plugin implements it too, and the routing core
/// and server cannot tell the difference.
pub trait Connector: Send + Sync {
    /// Identity and capabilities.
    fn info(&self) -> &ConnectorInfo;

    /// How the host must authenticate this channel's webhooks (fail closed).
    fn webhook_auth(&self, ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError>;

    /// How the transport must authenticate this channel's requests.
    fn outbound_auth(&self, ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError>;

    /// For shared endpoints (one Meta app, many numbers): the key of the channel a webhook is
    /// for, read cheaply before verification. `None`: the endpoint names the channel.
    fn route(&self, _req: &WebhookRequest) -> Option<ChannelKey> {
        None
    }

    /// Turns an authenticated webhook into events and a reply.
    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError>;

    /// Builds the request that sends `msg`. Deterministic: the same input builds the same
    /// request.
    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError>;

    /// Reads the provider's answer to a send.
    fn parse_send_response(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError>;

    /// The next step to download media: `previous` is the response to the last step (`None`
    /// at the start). The default fetches a URL source directly and refuses provider ids.
    fn media_step(
        &self,
        _ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, ConnectorError> {
        match (source, previous) {
            (MediaSource::Url(url), None) => {
                Ok(MediaStep::Fetch(HttpRequest::new(Method::Get, url)))
            }
            (MediaSource::Url(_), Some(_)) => Ok(MediaStep::Done),
            (MediaSource::ProviderId(_), _) => Err(ConnectorError::unsupported(
                "media by provider id on this connector",
            )),
        }
    }
}

/// Authenticates a webhook with the connector's declared scheme, then parses it: the path every
/// webhook takes, in the gateway, in `switchboard replay` and in the conformance kit.
///
/// A subscription handshake (Meta's GET) is answered by the scheme and yields no events. `now`
/// is the current time, for schemes with a replay window.
pub fn receive_webhook(
    connector: &dyn Connector,
    ctx: &ChannelContext,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
    now: Timestamp,
) -> Result<WebhookOutcome, ConnectorError> {
    let scheme = connector.webhook_auth(ctx)?;
    match webhook_auth::verify(&scheme, secrets, req, now)? {
        Verified::Authentic => connector.parse_webhook(ctx, req),
        Verified::Handshake(reply) => Ok(WebhookOutcome::with_reply(Vec::new(), reply)),
    }
}

/// A boxed, sendable future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a sink refused events. The session must not acknowledge them to the provider.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event sink refused the events: {reason}")]
pub struct SinkError {
    /// Why, e.g. "store unavailable".
    pub reason: String,
}

/// Where a session connector pushes what it receives. `deliver` returns once the events are
/// durable; only then does the session acknowledge them to the provider.
pub trait EventSink: Send + Sync {
    /// Stores events of `channel_id`.
    fn deliver<'a>(
        &'a self,
        channel_id: &'a str,
        events: Vec<InboundEvent>,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// A provider that holds a connection (SMPP): it does its own I/O, pushes events into an
/// [`EventSink`] and sends over its session. Usable as `Arc<dyn SessionConnector>`.
pub trait SessionConnector: Send + Sync {
    /// Identity and capabilities.
    fn info(&self) -> &ConnectorInfo;

    /// Keeps the session up (reconnecting as needed) until it fails for good.
    fn run<'a>(
        &'a self,
        ctx: &'a ChannelContext,
        secrets: &'a Secrets,
        sink: Arc<dyn EventSink>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>>;

    /// Sends a message over the session.
    fn send<'a>(
        &'a self,
        msg: &'a OutboundMessage,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>>;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::{Address, Content, DeliveryStatus, InboundMessage, WindowPolicy};

    /// Polls a future that never waits (everything here is ready at once).
    fn ready<T>(future: BoxFuture<'_, T>) -> T {
        let mut future = future;
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("the test future was not ready"),
        }
    }

    /// Records deliveries; refuses them while `down` is set, as a store outage would.
    #[derive(Default)]
    struct RecordingSink {
        delivered: Mutex<Vec<(String, Vec<InboundEvent>)>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl EventSink for RecordingSink {
        fn deliver<'a>(
            &'a self,
            channel_id: &'a str,
            events: Vec<InboundEvent>,
        ) -> BoxFuture<'a, Result<(), SinkError>> {
            Box::pin(async move {
                if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(SinkError {
                        reason: "store unavailable".into(),
                    });
                }
                self.delivered
                    .lock()
                    .map_err(|_| SinkError {
                        reason: "poisoned".into(),
                    })?
                    .push((channel_id.to_owned(), events));
                Ok(())
            })
        }
    }

    /// A session that receives one message and acknowledges it only once the sink stored it.
    struct OneShotSession {
        info: ConnectorInfo,
        acknowledged: Mutex<Vec<String>>,
    }

    impl SessionConnector for OneShotSession {
        fn info(&self) -> &ConnectorInfo {
            &self.info
        }

        fn run<'a>(
            &'a self,
            ctx: &'a ChannelContext,
            _secrets: &'a Secrets,
            sink: Arc<dyn EventSink>,
        ) -> BoxFuture<'a, Result<(), ConnectorError>> {
            Box::pin(async move {
                let message = InboundMessage {
                    id: "smsc-1".into(),
                    from: Address::phone(Channel::Sms, "+15550001"),
                    to: Address::phone(Channel::Sms, "+15550002"),
                    timestamp: None,
                    content: Content::text("hi"),
                    profile_name: None,
                    reply_to: None,
                    extensions: Default::default(),
                };
                let outcome = sink
                    .deliver(&ctx.channel_id, vec![InboundEvent::Message(message)])
                    .await;
                if outcome.is_ok() {
                    self.acknowledged
                        .lock()
                        .map_err(|_| ConnectorError::malformed("poisoned"))?
                        .push("smsc-1".into());
                }
                Ok(())
            })
        }

        fn send<'a>(
            &'a self,
            msg: &'a OutboundMessage,
        ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
            Box::pin(async move {
                Ok(SendReceipt::new(
                    format!("smsc-{}", msg.idempotency_key),
                    DeliveryStatus::Accepted,
                ))
            })
        }
    }

    fn session() -> Arc<dyn SessionConnector> {
        Arc::new(OneShotSession {
            info: ConnectorInfo {
                id: "session".into(),
                version: "0".into(),
                display_name: "Session".into(),
                channels: vec![ChannelSupport::new(
                    Channel::Sms,
                    Capabilities::new(160, WindowPolicy::None),
                )],
                egress_hosts: vec![],
            },
            acknowledged: Mutex::new(Vec::new()),
        })
    }

    #[test]
    fn session_connectors_work_as_trait_objects_and_ack_only_stored_events() {
        let connector = session();
        let sink = Arc::new(RecordingSink::default());
        let ctx = ChannelContext::new("smpp-1");

        sink.down.store(true, std::sync::atomic::Ordering::SeqCst);
        ready(connector.run(&ctx, &Secrets::default(), sink.clone())).unwrap();
        assert!(sink.delivered.lock().unwrap().is_empty());

        sink.down.store(false, std::sync::atomic::Ordering::SeqCst);
        ready(connector.run(&ctx, &Secrets::default(), sink.clone())).unwrap();
        let delivered = sink.delivered.lock().unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].0, "smpp-1");

        let msg = OutboundMessage::new(
            "k9",
            Address::phone(Channel::Sms, "+15550001"),
            Content::text("hello"),
        );
        let receipt = ready(connector.send(&msg)).unwrap();
        assert_eq!(receipt.provider_message_id, "smsc-k9");
    }

    #[test]
    fn the_default_media_step_fetches_urls_and_refuses_provider_ids() {
        struct UrlOnly(ConnectorInfo);
        impl Connector for UrlOnly {
            fn info(&self) -> &ConnectorInfo {
                &self.0
            }
            fn webhook_auth(&self, _: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
                Ok(WebhookAuth::None)
            }
            fn outbound_auth(&self, _: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
                Ok(OutboundAuth::None)
            }
            fn parse_webhook(
                &self,
                _: &ChannelContext,
                _: &WebhookRequest,
            ) -> Result<WebhookOutcome, ConnectorError> {
                Ok(WebhookOutcome::ok(vec![]))
            }
            fn build_send(
                &self,
                _: &ChannelContext,
                _: &OutboundMessage,
            ) -> Result<HttpRequest, ConnectorError> {
                Err(ConnectorError::unsupported("sending"))
            }
            fn parse_send_response(
                &self,
                _: &ChannelContext,
                _: &OutboundMessage,
                _: &HttpResponse,
            ) -> Result<SendReceipt, ProviderError> {
                Err(ProviderError::new(
                    crate::ErrorClass::Unsupported,
                    "sending",
                ))
            }
        }
        let connector: Arc<dyn Connector> = Arc::new(UrlOnly(session().info().clone()));
        let ctx = ChannelContext::new("c");
        let url = MediaSource::Url("https://cdn.example/a.jpg".into());
        let first = connector.media_step(&ctx, &url, None).unwrap();
        assert_eq!(
            first,
            MediaStep::Fetch(HttpRequest::new(Method::Get, "https://cdn.example/a.jpg"))
        );
        let done = connector
            .media_step(&ctx, &url, Some(&HttpResponse::new(200, b"jpeg".to_vec())))
            .unwrap();
        assert_eq!(done, MediaStep::Done);
        let by_id = MediaSource::ProviderId("123".into());
        assert!(connector.media_step(&ctx, &by_id, None).is_err());
    }
}
