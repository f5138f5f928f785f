//! `meta-messenger`: Facebook Messenger through the Graph API.
//!
//! # Channel
//!
//! Settings: `page_id` (required: sends go to `/{page_id}/messages` and webhooks for other
//! pages are not this channel's), optional `human_agent_tag` (`true` allows the `HUMAN_AGENT`
//! tag), `graph_version`, `base_url`. Secrets by name: `app_secret`, `verify_token`,
//! `access_token` (the page access token, sent as a bearer token).
//!
//! # Webhooks
//!
//! [`route`](switchboard_core::Connector::route) reads `entry[0].id`, the page. The host
//! verifies the signature and answers the GET handshake. A body that is not JSON, or whose
//! `object` is not `page`, is malformed; below that every entry and item is decoded on its
//! own, and one malformed produces no event and is listed in the outcome's `skipped`.
//!
//! Items of `entry[].messaging[]` and `entry[].standby[]` (the latter marked with a `standby:
//! true` extension: another app owns the conversation) become:
//!
//! | Item | Event |
//! |---|---|
//! | `message` with `text` | message, `Content::Text` |
//! | `message` with `quick_reply.payload` | message, `Content::Reply` (payload as id, text as title) |
//! | `message.attachments[]` `image` / `video` / `audio` / `file` | message, `Content::Media` by URL (an image with a `sticker_id` is a sticker) |
//! | `message.attachments[]` `location` | message, `Content::Location` (title as name) |
//! | `message.attachments[]` `fallback`, `template`, `reel`, newer | message, `Content::Unsupported` with the raw attachment |
//! | `message` with `is_echo` | nothing: it is the page's own outbound message (listed as skipped) |
//! | `message` with `is_deleted` | nothing (listed as skipped) |
//! | `postback` | message, `Content::Reply` (payload as id, title); id `mid`, or `postback:{psid}:{timestamp}` when Meta gives none |
//! | `delivery` | a `delivered` status per id in `mids`, plus a `delivered` watermark |
//! | `read` | a `read` watermark |
//! | `reaction` | `InboundEvent::Reaction`; `unreact` removes; id `reaction:{psid}:{mid}:{action}:{timestamp}` |
//! | anything else (`optin`, `referral`, `message_edit`, …) | nothing (listed as skipped) |
//!
//! One message may carry text and several attachments: each becomes its own event; the first
//! keeps the `mid`, the others are `{mid}#1`, `{mid}#2`, … with the `mid` as an extension.
//! `reply_to.mid` becomes `reply_to`. The customer is a `AddressKind::PageScopedId` (a
//! `user_ref` sender, from the chat plugin, is `AddressKind::Other`), the business side the
//! page.
//!
//! **Watermarks.** Messenger reports reads, and deliveries from older clients, as a watermark:
//! "everything sent to this customer before this time". A watermark names no message, and a
//! sans-IO connector cannot know which messages it covers, so it never becomes a status with a
//! made-up message id: it becomes an [`InboundEvent::Watermark`](switchboard_core::InboundEvent),
//! which the host applies to the messages it sent to that customer at or before the watermark.
//! Deliveries that list `mids` also give one status per mid.
//!
//! # Sending
//!
//! `POST {base_url}/{graph_version}/{page_id}/messages` with `{"recipient":{"id":PSID},
//! "messaging_type", "tag"?, "message"}`. `messaging_type` is `RESPONSE` (the window policy
//! says free-form messages go inside the 24-hour window), `UPDATE` when
//! `extensions.messaging_type` asks for it, and `MESSAGE_TAG` with `tag: HUMAN_AGENT` when the
//! message's tag is `HUMAN_AGENT` and the channel enables it (7 days); other tags are refused
//! (Meta retired the rest in 2026). Content: text up to 2000 characters; image, video, audio
//! and file attachments by URL (`is_reusable`) or attachment id, without captions; reply
//! buttons and list rows as quick replies (1 to 13, header and footer joined to the text).
//! Templates, locations, contacts and stickers are refused. `reply_to` is not sent (Meta's
//! documentation of the field is inconsistent). The answer's `message_id` is the receipt.
//!
//! # Errors
//!
//! See [`errors`] for the code table: 10 and subcode 2018278 window closed, 551 invalid
//! recipient, 613 throttled, 190 auth, …; unknown codes fall back on the HTTP status.

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Capabilities, Channel, ChannelContext, ChannelKey, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, ContentKind, HttpRequest, HttpResponse, MediaKind, MediaLimit, OutboundMessage,
    ProviderError, SendReceipt, SupportLevel, WebhookOutcome, WebhookRequest, WindowPolicy,
};

use super::graph::{self, WebhookReport};

pub mod errors;
mod inbound;
mod send;

/// The Messenger connector (`meta-messenger`). See the [module docs](self).
///
/// ```
/// use switchboard_core::{Address, AddressKind, Channel, ChannelContext, Connector, Content, OutboundMessage};
/// use switchboard_providers::meta::MessengerConnector;
///
/// let ctx = ChannelContext::new("fb").with_setting("page_id", "1234567890");
/// let to = Address::new(Channel::Messenger, AddressKind::PageScopedId, "5678");
/// let req = MessengerConnector::new()
///     .build_send(&ctx, &OutboundMessage::new("k1", to, Content::text("Hello")))
///     .unwrap();
/// assert_eq!(req.url, "https://graph.facebook.com/v25.0/1234567890/messages");
/// assert!(String::from_utf8(req.body).unwrap().contains(r#""messaging_type":"RESPONSE""#));
/// ```
#[derive(Debug)]
pub struct MessengerConnector {
    info: ConnectorInfo,
}

impl MessengerConnector {
    /// The connector, with its capabilities.
    pub fn new() -> Self {
        let partial = SupportLevel::Partial;
        let mut capabilities =
            Capabilities::new(send::MAX_TEXT_CHARS as u32, WindowPolicy::messenger())
                .with(ContentKind::Media(MediaKind::Image), partial)
                .with(ContentKind::Media(MediaKind::Video), partial)
                .with(ContentKind::Media(MediaKind::Audio), partial)
                .with(ContentKind::Media(MediaKind::Document), partial)
                .with(ContentKind::Buttons, partial)
                .with(ContentKind::List, SupportLevel::Fallback);
        // Meta's attachment limit.
        capabilities.media_limits = [
            MediaKind::Image,
            MediaKind::Video,
            MediaKind::Audio,
            MediaKind::Document,
        ]
        .into_iter()
        .map(|kind| MediaLimit {
            kind,
            max_bytes: 25 * 1024 * 1024,
        })
        .collect();
        Self {
            info: ConnectorInfo {
                id: "meta-messenger".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                display_name: "Facebook Messenger (Meta)".into(),
                channels: vec![ChannelSupport::new(Channel::Messenger, capabilities)],
                // Graph, and the CDNs inbound attachment URLs point at.
                egress_hosts: vec![
                    "graph.facebook.com".into(),
                    "*.fbcdn.net".into(),
                    "*.fbsbx.com".into(),
                ],
            },
        }
    }
}

impl Default for MessengerConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl Connector for MessengerConnector {
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
}
