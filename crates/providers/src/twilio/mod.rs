//! The `twilio` connector: Twilio Programmable Messaging for WhatsApp and SMS/MMS, with
//! Messaging Services. Sans-IO: it parses webhooks and builds requests; the host verifies
//! signatures and the transport runs the requests.
//!
//! # Channel
//!
//! Settings, from [`ChannelContext::settings`]; a missing or invalid one is
//! [`ConnectorError::Config`] naming it:
//!
//! | setting | required | meaning |
//! |---|---|---|
//! | `account_sid` | yes | `AC…`, in the API path and the Basic user name |
//! | `from` | one of the two | the sender: `+1…`, `whatsapp:+1…`, short code or alphanumeric id |
//! | `messaging_service_sid` | one of the two | `MG…`: Twilio picks the sender |
//! | `whatsapp_from` | no | a different sender for WhatsApp sends than `from` |
//! | `api_key_sid` | no | `SK…`: send with an API key (secret `api_key_secret`) instead of the auth token |
//! | `status_callback_url` | no | `StatusCallback` of every send |
//! | `validity_period` | no | `ValidityPeriod` of every send, 1–36000 seconds |
//! | `base_url` | no | the API base, default `https://api.twilio.com` (tests, proxies) |
//! | `region`, `edge` | no | `https://api.{edge}.{region}.twilio.com` (region `us1` when only `edge` is given) |
//! | `whatsapp_opt_out_keywords` | no | `true`: STOP/START on WhatsApp also emit consent events |
//!
//! Secrets, referred to by name (the transport and the webhook verifier resolve them):
//! `auth_token` (always: it signs webhooks even when sending with an API key, and is the Basic
//! password without one) and `api_key_secret` (the Basic password with `api_key_sid`). The
//! gateway's public base URL is the server's business: it rebuilds the URL Twilio called before
//! verification, since signatures cover it.
//!
//! # One connector, two channels
//!
//! One Twilio channel serves WhatsApp and SMS: the channel of each message is its address's
//! (`whatsapp:` prefix inbound; `Address::channel` outbound). [`ConnectorInfo::channels`] lists
//! both with their own capabilities: WhatsApp's has the 24-hour window and templates, SMS's has
//! no window.
//!
//! # Webhooks
//!
//! - **Authentication**: [`WebhookAuth::Twilio`] with the `auth_token` secret; the host checks
//!   `X-Twilio-Signature` (ports, `bodySHA256`, query re-encoding) before parsing.
//! - **Shapes**: form POSTs, GETs (parameters in the query) and JSON bodies (one object whose
//!   members are Twilio's parameters; used with `bodySHA256`). The query of a POST's URL is the
//!   operator's own and is not read. Duplicate keys are kept; every
//!   parameter not represented by a normalized field stays in the event's `extensions` under its
//!   Twilio name (repeated values as an array), never an error. The reply is an empty TwiML
//!   `<Response/>` (`text/xml`).
//! - **Messages vs statuses**: `MessageStatus` (or, on old callbacks, `SmsStatus`) other than
//!   `received`/`receiving` makes a status callback; anything else with a body, media, location
//!   or button is a message.
//! - **Addresses**: `whatsapp:+…` → WhatsApp phone, `whatsapp:US.…` → WhatsApp business-scoped
//!   user id, plain `+…` → SMS phone, up to 8 digits → short code, lettered → alphanumeric.
//!   `WaId`, `ExternalUserId` and `ProfileName`'s raw fields stay available (`WaId` and
//!   `ExternalUserId` in extensions, `ProfileName` as `profile_name`).
//! - **Media** (`NumMedia`, `MediaUrl{N}`, `MediaContentType{N}`): **one message event per
//!   medium**, in index order. The first keeps the `MessageSid` as id and carries `Body` as its
//!   caption; the N-th further one has id `{MessageSid}/{N}`. The message's raw extras are in
//!   the first event's extensions only; with several media, each event also carries
//!   `media_index` and `media_count`. A contact-center transcript and agent UI then
//!   show every attachment as a first-class media item (with its own download through
//!   [`Connector::media_step`]) instead of burying all but one in extensions. Index gaps are
//!   skipped and `NumMedia` is not trusted (kept in extensions when it disagrees); more than 25
//!   media is malformed. MIME decides the kind; `image/webp` on WhatsApp is a sticker.
//! - **Other content**, in this order after media: `Latitude`/`Longitude` (valid coordinates)
//!   → location with `Label` as name and `Address`; `ButtonText`/`ButtonPayload` → a reply
//!   (payload as id); otherwise the `Body` text. An empty body with a non-text `MessageType` is
//!   `Content::Unsupported`.
//! - **Reply-to and referral**: `OriginalRepliedMessageSid` → `reply_to` (the sender stays in
//!   extensions); `Referral*` (click-to-WhatsApp ads) → `extensions.referral` with snake_case
//!   keys (`source_url`, `ctwa_clid`, …).
//! - **Consent**: Twilio forwards STOP/START/HELP messages. A single-word, case-insensitive
//!   keyword (see [`keyword`]) produces the message event **and** an `opt_out`/`opt_in` event
//!   (same id, keyword upper-cased). `OptOutType` (Advanced Opt-Out) decides when present.
//!   `HELP`/`INFO` are information requests, not consent changes: they stay plain messages for
//!   the routing core to answer. On WhatsApp, where Twilio blocks nothing after STOP, keywords
//!   produce consent events only with `whatsapp_opt_out_keywords: true`. A status callback with
//!   error 21610 (the recipient had unsubscribed) also produces an `opt_out` for the recipient.
//! - **Statuses**: `accepted`, `queued`, `sent`, `delivered`, `read`, `undelivered`, `failed`
//!   map to their namesakes; `scheduled` → accepted, `sending` → queued, `partially_delivered`
//!   → sent (delivery of the whole message is not proven), `canceled` → failed (a permanent
//!   error: a scheduled message canceled before sending); unknown words →
//!   [`switchboard_core::DeliveryStatus::Unknown`], which never moves a merged state. When the
//!   mapping loses meaning the raw `MessageStatus` stays in extensions. `ErrorCode` becomes the update's [`ProviderError`],
//!   classified by [`error_class`] and keeping its code; `ChannelStatusMessage` (or
//!   `ErrorMessage`) is its message. Twilio sends no timestamps on messaging webhooks, so
//!   events have none (`RawDlrDoneDate` stays in extensions).
//!
//! # Sends
//!
//! A form POST to `{base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, Basic auth (account
//! SID + `auth_token`, or `api_key_sid` + `api_key_secret`) added by the transport. Fields, in
//! order: `To`, `From` and/or `MessagingServiceSid`, `Body`, `MediaUrl` (repeated, at most 10),
//! `ContentSid`, `ContentVariables`, `PersistentAction`, `StatusCallback`, `ValidityPeriod`,
//! then pass-through extensions ([`PASSTHROUGH_PARAMS`]).
//!
//! - WhatsApp addresses get the `whatsapp:` prefix (a configured `from` works for both
//!   channels). A message `from` of kind provider account with an `MG…` id sends through that
//!   Messaging Service.
//! - Text → `Body` (at most 1600 characters); media by URL → `MediaUrl` with the caption as
//!   `Body`; templates always go as `ContentSid` (the template's `name`, `HX…`) and
//!   `ContentVariables` — never as `Body`, which fails outside the window with 63016 — with
//!   positional body parameters keyed `"1"`, `"2"`, … and named ones by name; WhatsApp location
//!   → `PersistentAction=geo:…`; buttons and lists → numbered text (support level fallback).
//!   Contacts, media by provider id, unnamed header/button template parameters are
//!   [`ConnectorError::Unsupported`]. `reply_to` and `tag` have no Twilio equivalent and are
//!   ignored.
//! - The answer: `sid` and `status` make the receipt; SMS text sends add `segments` and
//!   `encoding` (`gsm7`/`ucs2`, from [`switchboard_core::sms`]) to its extensions. Errors: the
//!   legacy `{code, message, more_info, status}` body and RFC 9457 problem details, classified
//!   by [`error_class`] (HTTP 5xx retryable, 429 throttled), `Retry-After` honoured. A 2xx with
//!   an unreadable body is a permanent error: the message may exist, so it is not re-sent.
//!
//! # Media download
//!
//! Inbound `MediaUrl`s point at the API host; [`Connector::media_step`] returns one GET, to
//! which the transport adds Basic auth and whose redirect to Twilio's media storage
//! (`mms.twiliocdn.com`, older media `s3-external-1.amazonaws.com`) it follows. URLs on other
//! hosts are refused, so the account's credentials never go elsewhere.

mod address;
mod errors;
mod inbound;
mod params;
mod send;
mod settings;
mod status;

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Capabilities, Channel, ChannelContext, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, ContentKind, HttpRequest, HttpResponse, MediaKind, MediaLimit, MediaSource,
    MediaStep, Method, OutboundMessage, ProviderError, SecretName, SendReceipt, SupportLevel,
    WebhookOutcome, WebhookRequest, WindowPolicy,
};

pub use errors::{ERROR_CODES, error_class};
pub use inbound::{EMPTY_TWIML, Keyword, keyword};
pub use send::PASSTHROUGH_PARAMS;

const MB: u64 = 1024 * 1024;

/// The Twilio connector (id `twilio`).
///
/// ```
/// use switchboard_core::Connector;
/// use switchboard_providers::twilio::TwilioConnector;
/// let twilio = TwilioConnector::new();
/// assert_eq!(twilio.info().id, "twilio");
/// ```
#[derive(Debug, Clone)]
pub struct TwilioConnector {
    info: ConnectorInfo,
}

impl Default for TwilioConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl TwilioConnector {
    /// The connector, with WhatsApp's capabilities in its info (see the module docs).
    pub fn new() -> Self {
        Self {
            info: ConnectorInfo {
                id: "twilio".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                display_name: "Twilio Messaging (WhatsApp, SMS/MMS)".into(),
                channels: [Channel::WhatsApp, Channel::Sms]
                    .into_iter()
                    .map(|channel| {
                        ChannelSupport::new(channel.clone(), Self::capabilities_for(&channel))
                    })
                    .collect(),
                egress_hosts: vec![
                    "api.twilio.com".into(),
                    // Regional and edge API hosts: api.{edge}.{region}.twilio.com.
                    "*.twilio.com".into(),
                    "mms.twiliocdn.com".into(),
                    "s3-external-1.amazonaws.com".into(),
                ],
            },
        }
    }

    /// What Twilio supports on `channel`: WhatsApp (24-hour window; media up to 5 MB for images
    /// and 16 MB otherwise; location partial; buttons and lists as numbered text) or SMS/MMS (no
    /// window; MMS images up to 5 MB, other media 500 KB and only where carriers take it; no
    /// location). Other channels get SMS's set.
    fn capabilities_for(channel: &Channel) -> Capabilities {
        let common = |window| {
            Capabilities::new(send::MAX_BODY_CHARS as u32, window)
                .with(ContentKind::Template, SupportLevel::Full)
                .with(ContentKind::Buttons, SupportLevel::Fallback)
                .with(ContentKind::List, SupportLevel::Fallback)
        };
        let limit = |kind, max_bytes| MediaLimit { kind, max_bytes };
        match channel {
            Channel::WhatsApp => {
                let mut caps = common(WindowPolicy::whatsapp())
                    .with(ContentKind::Media(MediaKind::Image), SupportLevel::Full)
                    .with(ContentKind::Media(MediaKind::Video), SupportLevel::Full)
                    .with(ContentKind::Media(MediaKind::Audio), SupportLevel::Full)
                    .with(ContentKind::Media(MediaKind::Document), SupportLevel::Full)
                    .with(ContentKind::Location, SupportLevel::Partial);
                caps.media_limits = vec![
                    limit(MediaKind::Image, 5 * MB),
                    limit(MediaKind::Video, 16 * MB),
                    limit(MediaKind::Audio, 16 * MB),
                    limit(MediaKind::Document, 16 * MB),
                ];
                caps
            }
            _ => {
                let mut caps = common(WindowPolicy::None)
                    .with(ContentKind::Media(MediaKind::Image), SupportLevel::Full)
                    .with(ContentKind::Media(MediaKind::Video), SupportLevel::Partial)
                    .with(ContentKind::Media(MediaKind::Audio), SupportLevel::Partial)
                    .with(
                        ContentKind::Media(MediaKind::Document),
                        SupportLevel::Partial,
                    );
                caps.media_limits = vec![
                    limit(MediaKind::Image, 5 * MB),
                    limit(MediaKind::Video, 500 * 1024),
                    limit(MediaKind::Audio, 500 * 1024),
                    limit(MediaKind::Document, 500 * 1024),
                ];
                caps
            }
        }
    }
}

impl Connector for TwilioConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, _ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        Ok(WebhookAuth::Twilio {
            auth_token: SecretName::new(settings::AUTH_TOKEN),
        })
    }

    fn outbound_auth(&self, ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        let account_sid = settings::account_sid(ctx)?;
        Ok(match settings::api_key_sid(ctx)? {
            Some(key) => OutboundAuth::Basic {
                username: key.to_owned(),
                password: SecretName::new(settings::API_KEY_SECRET),
            },
            None => OutboundAuth::Basic {
                username: account_sid.to_owned(),
                password: SecretName::new(settings::AUTH_TOKEN),
            },
        })
    }

    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        inbound::parse(ctx, req)
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
        msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        send::parse_response(msg, resp)
    }

    fn media_step(
        &self,
        ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, ConnectorError> {
        let MediaSource::Url(url) = source else {
            return Err(ConnectorError::unsupported(
                "Twilio media by id: use the MediaUrl of the webhook",
            ));
        };
        if previous.is_some() {
            return Ok(MediaStep::Done);
        }
        let base = settings::base_url(ctx)?;
        if !is_twilio_media_url(url, &base) {
            return Err(ConnectorError::unsupported(
                "a media URL outside the Twilio API: it would receive the account's credentials",
            ));
        }
        Ok(MediaStep::Fetch(HttpRequest::new(Method::Get, url)))
    }
}

/// Whether `url` is on the Twilio API (`api.twilio.com`, `api.*.twilio.com`) or on the channel's
/// configured API base (tests, proxies), over https (or the base's own scheme).
fn is_twilio_media_url(url: &str, base: &str) -> bool {
    let (Ok(url), Ok(base)) = (url::Url::parse(url), url::Url::parse(base)) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let is_api_host = url.scheme() == "https"
        && (host == "api.twilio.com"
            || (host.starts_with("api.") && host.ends_with(".twilio.com")));
    let is_base = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    is_api_host || is_base
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    #[test]
    fn media_urls_only_on_twilio_hosts() {
        let base = settings::DEFAULT_BASE_URL;
        let ok = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1";
        assert!(is_twilio_media_url(ok, base));
        assert!(is_twilio_media_url(
            "https://api.dublin.ie1.twilio.com/x",
            base
        ));
        assert!(!is_twilio_media_url(
            "https://evil.example/api.twilio.com",
            base
        ));
        assert!(!is_twilio_media_url(
            "https://api.twilio.com.evil.example/x",
            base
        ));
        assert!(!is_twilio_media_url("http://api.twilio.com/x", base));
        assert!(is_twilio_media_url(
            "http://127.0.0.1:9000/m",
            "http://127.0.0.1:9000"
        ));
        assert!(!is_twilio_media_url(
            "http://127.0.0.1:9001/m",
            "http://127.0.0.1:9000"
        ));
    }

    #[test]
    fn whatsapp_and_sms_capabilities_differ_in_window() {
        let twilio = TwilioConnector::new();
        let window = |channel| {
            twilio
                .info()
                .capabilities(&channel)
                .map(|c| c.window.clone())
        };
        assert_eq!(window(Channel::WhatsApp), Some(WindowPolicy::whatsapp()));
        assert_eq!(window(Channel::Sms), Some(WindowPolicy::None));
        assert_eq!(window(Channel::Messenger), None);
    }
}
