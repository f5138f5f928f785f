//! `meta-whatsapp`: the WhatsApp Cloud API.
//!
//! # Channel
//!
//! Settings: `phone_number_id` (required: sends go to `/{phone_number_id}/messages` and
//! webhooks for other numbers are not this channel's), `waba_id` (informational), optional
//! `graph_version` and `base_url`. Secrets by name: `app_secret` (webhook signature),
//! `verify_token` (subscription handshake), `access_token` (outbound bearer).
//!
//! # Webhooks
//!
//! [`route`](switchboard_core::Connector::route) reads
//! `entry[0].changes[0].value.metadata.phone_number_id` so one Meta app can serve many numbers
//! through one endpoint. The host verifies the signature and answers the GET handshake; the
//! connector refuses GET as unsupported.
//!
//! Each `entry[].changes[]` with `field: "messages"` gives, in order, its `messages[]` then its
//! `statuses[]`. A body that is not JSON, or whose `object` is not
//! `whatsapp_business_account`, is [`ConnectorError::Malformed`]; anything below that is
//! isolated: a malformed entry, change, message or status produces no event, is listed in the
//! outcome's `skipped`, and the rest of the batch is parsed. Out-of-band `value.errors[]` and
//! other webhook fields (`account_update`, template status, …) produce no event and are listed
//! too.
//!
//! | Message `type` | Event |
//! |---|---|
//! | `text` | message, `Content::Text` |
//! | `image`, `video`, `audio`, `document`, `sticker` | message, `Content::Media` by provider id with mime type, sha256, caption, file name; `voice` / `animated` as extensions |
//! | `location` | message, `Content::Location`; its `url` as an extension |
//! | `contacts` | message, `Content::Contacts` (formatted name, phones, e-mails) |
//! | `interactive` `button_reply` / `list_reply` | message, `Content::Reply` with the button or row id; a row's description as an extension |
//! | `button` (template quick reply) | message, `Content::Reply` with the payload as id |
//! | `reaction` | `InboundEvent::Reaction`; an empty or absent emoji is a removal |
//! | anything else (`order`, `system`, `unsupported`, `nfm_reply`, newer types) | message, `Content::Unsupported` with the type; the payload of `order`, `system` and `nfm_reply` as an extension |
//!
//! On every message: `context.id` becomes `reply_to`; `forwarded` / `frequently_forwarded`,
//! `referral` (click-to-WhatsApp ads) and `errors` ride as extensions; the profile name comes
//! from the matching `contacts[]` entry. The sender is `from` as a `AddressKind::WhatsAppId`
//! when it is digits, and a `AddressKind::BusinessScopedUserId` when it is not or when only
//! `from_user_id` is given (users with a username may have no phone number at all: none is
//! ever invented). When both are known the business-scoped id is kept in the `user_id`
//! extension, and a contact's `username` in the `username` extension.
//!
//! Statuses map `sent`, `delivered`, `read`, `failed` to
//! [`DeliveryStatus`](switchboard_core::DeliveryStatus); any other word (`played`, `deleted`,
//! newer ones) is kept as `DeliveryStatus::Unknown`. The first of `errors[]` becomes the
//! status's [`ProviderError`] through the error table; `conversation`, `pricing` and
//! `biz_opaque_callback_data` ride as extensions (the latter also as
//! [`CLIENT_REFERENCE`](switchboard_core::CLIENT_REFERENCE)).
//!
//! Well-formed bodies are decoded in one pass; a body with a malformed item is decoded again,
//! item by item, so the item is isolated (see `inbound`).
//!
//! # Sending
//!
//! `POST {base_url}/{graph_version}/{phone_number_id}/messages` with a JSON message object:
//! text (with `preview_url`), media by `link` or `id` (captions on image, video and document;
//! file name on documents), location, contacts, templates (header text, media or location;
//! body parameters text, currency, date_time, media, named or positional; quick-reply, URL and
//! copy-code buttons), reply buttons (1 to 3) and lists (1 to 10 rows). `reply_to` becomes
//! `context.message_id`. A `wa_id` or phone recipient goes in `to`, a business-scoped user id
//! in `recipient`; other recipient kinds are refused. The message's `from` is not read: a
//! channel sends from its own `phone_number_id`. Text over 4096 characters, captions on audio
//! and stickers, and button or row counts outside Meta's limits are refused before sending.
//!
//! `Content::Reaction` becomes a `reaction` message (no emoji removes an earlier reaction). A
//! string `extensions.biz_opaque_callback_data` is passed through, else the extension
//! [`CLIENT_REFERENCE`](switchboard_core::CLIENT_REFERENCE); it comes back on statuses.
//!
//! The answer's `messages[0].id` is the receipt; `message_status` and the recipient's `wa_id`
//! / `user_id` ride as extensions.
//!
//! # Errors
//!
//! See [`errors`] for the code table. Codes not in it fall back on the HTTP status: 429
//! throttled, 5xx retryable, 401/403 auth, other statuses permanent; `Retry-After` is kept on
//! retryable classes.
//!
//! # Media
//!
//! Inbound media is a provider id: [`Connector::media_step`] first GETs
//! `{base_url}/{graph_version}/{media_id}`, whose JSON `url` it then GETs; the transport adds
//! the bearer token to both.

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Capabilities, Channel, ChannelContext, ChannelKey, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, ContentKind, HttpRequest, HttpResponse, MediaKind, MediaLimit, MediaSource,
    MediaStep, OutboundMessage, ProviderError, SendReceipt, SupportLevel, WebhookOutcome,
    WebhookRequest, WindowPolicy,
};

use super::graph::{self, WebhookReport};

pub mod errors;
mod inbound;
mod send;

/// The WhatsApp Cloud API connector (`meta-whatsapp`). See the [module docs](self).
///
/// ```
/// use switchboard_core::{Connector, ChannelContext, Method, WebhookRequest};
/// use switchboard_providers::meta::WhatsAppConnector;
///
/// let wa = WhatsAppConnector::new();
/// let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
///   "value":{"metadata":{"phone_number_id":"277321005464405"},"messages":[{"from":"972544401243",
///   "id":"wamid.1","timestamp":"1730231903","type":"text","text":{"body":"Hi"}}]}}]}]}"#;
/// let req = WebhookRequest::new(Method::Post, "https://gw.example/hook").with_body(body.to_vec());
/// assert_eq!(wa.route(&req).unwrap().0, "277321005464405");
/// let ctx = ChannelContext::new("wa").with_setting("phone_number_id", "277321005464405");
/// assert_eq!(wa.parse_webhook(&ctx, &req).unwrap().events.len(), 1);
/// ```
#[derive(Debug)]
pub struct WhatsAppConnector {
    info: ConnectorInfo,
}

impl WhatsAppConnector {
    /// The connector, with its capabilities.
    pub fn new() -> Self {
        let full = SupportLevel::Full;
        let capabilities = Capabilities::new(send::MAX_TEXT_CHARS as u32, WindowPolicy::whatsapp())
            .with(ContentKind::Media(MediaKind::Image), full)
            .with(ContentKind::Media(MediaKind::Video), full)
            .with(ContentKind::Media(MediaKind::Audio), full)
            .with(ContentKind::Media(MediaKind::Document), full)
            .with(ContentKind::Media(MediaKind::Sticker), full)
            .with(ContentKind::Location, full)
            .with(ContentKind::Contacts, SupportLevel::Partial)
            .with(ContentKind::Template, full)
            .with(ContentKind::Buttons, SupportLevel::Partial)
            .with(ContentKind::List, SupportLevel::Partial)
            .with(ContentKind::Reaction, full);
        let capabilities = Capabilities {
            // Meta's limits for sent media.
            media_limits: vec![
                limit(MediaKind::Image, 5 * MB),
                limit(MediaKind::Video, 16 * MB),
                limit(MediaKind::Audio, 16 * MB),
                limit(MediaKind::Document, 100 * MB),
                limit(MediaKind::Sticker, 500 * 1024),
            ],
            ..capabilities
        };
        Self {
            info: ConnectorInfo {
                id: "meta-whatsapp".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                display_name: "WhatsApp Cloud API (Meta)".into(),
                channels: vec![ChannelSupport::new(Channel::WhatsApp, capabilities)],
                egress_hosts: vec!["graph.facebook.com".into(), "lookaside.fbsbx.com".into()],
            },
        }
    }
}

const MB: u64 = 1024 * 1024;

fn limit(kind: MediaKind, max_bytes: u64) -> MediaLimit {
    MediaLimit { kind, max_bytes }
}

impl Default for WhatsAppConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl Connector for WhatsAppConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, _ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        Ok(graph::webhook_auth())
    }

    fn outbound_auth(&self, _ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        Ok(graph::outbound_auth())
    }

    fn route(&self, req: &WebhookRequest) -> Option<ChannelKey> {
        inbound::route(req)
    }

    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        graph::require_post(req.method)?;
        let mut report = WebhookReport::new();
        inbound::parse(ctx, &req.body, &mut report)?;
        Ok(report.outcome)
    }

    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        send::build(ctx, msg)
    }

    fn parse_send_response(
        &self,
        _ctx: &ChannelContext,
        _msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        send::parse_response(resp)
    }

    fn media_step(
        &self,
        ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, ConnectorError> {
        graph::media_step(ctx, source, previous)
    }
}
