//! `vonage-messages`: the Vonage Messages API (v1) as a Switchboard connector plugin: SMS (and
//! MMS), WhatsApp and Facebook Messenger through one API, `POST https://api.nexmo.com/v1/messages`.
//!
//! Sans-IO like every connector: the host verifies webhooks with the declared
//! [`WebhookAuth::VonageJwt`] scheme (the plugin never sees the signature secret) and the
//! transport runs the requests, adding Basic auth (`api_key` : secret `api_secret`). See
//! `README.md` beside this crate for settings, secrets, mappings and sources.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Address, AddressKind, Capabilities, Channel, ChannelContext, ChannelSupport, Connector,
    ConnectorError, ConnectorInfo, Consent, Content, ContentKind, DeliveryStatus, ErrorClass,
    Extensions, HttpRequest, HttpResponse, InboundEvent, InboundMessage, Location, Media,
    MediaKind, MediaSource, Method, OutboundMessage, ProviderError, SecretName, SelectedReply,
    SendReceipt, StatusUpdate, SupportLevel, TemplateValue, Timestamp, WebhookOutcome,
    WebhookRequest, WindowPolicy,
};

/// The production API.
const API_BASE: &str = "https://api.nexmo.com";
/// The Messages API sandbox (WhatsApp, Messenger, Viber test numbers).
const SANDBOX_BASE: &str = "https://messages-sandbox.nexmo.com";
/// SMS text limit of the Messages API (`text`, 1 to 1000 characters).
const SMS_MAX_CHARS: u32 = 1000;
/// WhatsApp text limit.
const WHATSAPP_MAX_CHARS: u32 = 4096;
/// Messenger text limit.
const MESSENGER_MAX_CHARS: u32 = 640;
/// `client_ref` is at most 100 characters; longer idempotency keys are not sent.
const MAX_CLIENT_REF: usize = 100;
/// The longest provider text kept in an error message.
const MAX_ERROR_TEXT: usize = 300;

/// The connector (id `vonage-messages`).
#[derive(Debug, Clone)]
pub struct VonageMessages {
    info: ConnectorInfo,
}

impl Default for VonageMessages {
    fn default() -> Self {
        let media = |caps: Capabilities, level| {
            [MediaKind::Image, MediaKind::Video, MediaKind::Audio]
                .into_iter()
                .fold(caps, |c, kind| c.with(ContentKind::Media(kind), level))
        };
        let sms = media(
            Capabilities::new(SMS_MAX_CHARS, WindowPolicy::None),
            // Images, video and audio go as MMS (US numbers only).
            SupportLevel::Partial,
        );
        let whatsapp = media(
            Capabilities::new(WHATSAPP_MAX_CHARS, WindowPolicy::whatsapp()),
            SupportLevel::Full,
        )
        .with(ContentKind::Media(MediaKind::Document), SupportLevel::Full)
        .with(ContentKind::Media(MediaKind::Sticker), SupportLevel::Full)
        .with(ContentKind::Location, SupportLevel::Full)
        .with(ContentKind::Template, SupportLevel::Partial);
        let messenger = media(
            Capabilities::new(MESSENGER_MAX_CHARS, WindowPolicy::messenger()),
            SupportLevel::Full,
        )
        .with(ContentKind::Media(MediaKind::Document), SupportLevel::Full);
        Self {
            info: ConnectorInfo {
                id: "vonage-messages".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                display_name: "Vonage Messages API (SMS/MMS, WhatsApp, Messenger)".into(),
                channels: vec![
                    ChannelSupport::new(Channel::Sms, sms),
                    ChannelSupport::new(Channel::WhatsApp, whatsapp),
                    ChannelSupport::new(Channel::Messenger, messenger),
                ],
                egress_hosts: vec!["api.nexmo.com".into(), "messages-sandbox.nexmo.com".into()],
            },
        }
    }
}

impl Connector for VonageMessages {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// Vonage signs every Messages webhook: a JWT (HS256, the account's signature secret) in
    /// `Authorization: Bearer`, with `payload_hash` over the body. `webhook_api_key` pins the
    /// token's `api_key` claim; `webhook_tolerance_secs` (default 300) bounds `iat`.
    fn webhook_auth(&self, ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        let tolerance = match ctx.settings.get("webhook_tolerance_secs") {
            None | Some(Value::Null) => 300,
            Some(value) => value
                .as_u64()
                .filter(|secs| (1..=3600).contains(secs))
                .ok_or_else(|| {
                    ConnectorError::config("webhook_tolerance_secs", "must be 1 to 3600 seconds")
                })?,
        };
        Ok(WebhookAuth::VonageJwt {
            secret: SecretName::new("signature_secret"),
            tolerance: Duration::from_secs(tolerance),
            api_key: ctx.optional_setting("webhook_api_key")?.map(str::to_owned),
        })
    }

    /// Basic auth: the account's `api_key` setting and the `api_secret` secret.
    fn outbound_auth(&self, ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        Ok(OutboundAuth::Basic {
            username: ctx.setting("api_key")?.to_owned(),
            password: SecretName::new("api_secret"),
        })
    }

    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ConnectorError::malformed(format!("body is not JSON: {e}")))?;
        let Value::Object(body) = body else {
            return Err(ConnectorError::malformed("body is not a JSON object"));
        };
        let events = if body.contains_key("status") {
            status_events(&body)?
        } else if body.contains_key("message_type") {
            inbound_events(ctx, &body)?
        } else {
            return Err(ConnectorError::malformed(
                "neither an inbound message (`message_type`) nor a status (`status`)",
            ));
        };
        Ok(WebhookOutcome::ok(events))
    }

    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        let base = match ctx.settings.get("sandbox") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => API_BASE,
            Some(Value::Bool(true)) => SANDBOX_BASE,
            Some(_) => return Err(ConnectorError::config("sandbox", "must be true or false")),
        };
        let body = send_body(ctx, msg)?;
        Ok(
            HttpRequest::new(Method::Post, format!("{base}/v1/messages"))
                .with_header("Accept", "application/json")
                .with_json(&body),
        )
    }

    fn parse_send_response(
        &self,
        _ctx: &ChannelContext,
        _msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        if !resp.is_success() {
            return Err(response_error(resp));
        }
        let body: Value = serde_json::from_slice(&resp.body).map_err(|_| {
            // Accepted but unreadable: the message may exist, so it is not re-sent.
            ProviderError::new(
                ErrorClass::Permanent,
                format!("HTTP {} with a body that is not JSON", resp.status),
            )
        })?;
        let uuid = body
            .get("message_uuid")
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::Permanent,
                    format!("HTTP {} without a `message_uuid`", resp.status),
                )
            })?;
        let mut receipt = SendReceipt::new(uuid, DeliveryStatus::Accepted);
        if let Some(workflow) = body.get("workflow_id").and_then(Value::as_str) {
            receipt
                .extensions
                .insert("workflow_id".into(), json!(workflow));
        }
        Ok(receipt)
    }
}

switchboard_plugin_sdk::export_connector!(VonageMessages);

// ---------------------------------------------------------------------------------------------
// Inbound

/// The channel a webhook's `channel` names; MMS is SMS's channel with media.
fn channel_of(word: &str) -> Option<Channel> {
    match word {
        "sms" | "mms" => Some(Channel::Sms),
        "whatsapp" => Some(Channel::WhatsApp),
        "messenger" => Some(Channel::Messenger),
        _ => None,
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, ConnectorError> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ConnectorError::malformed(format!("`{name}` is missing or not a string")))
}

fn opt_str<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The customer's address on `channel`: digits become `+` E.164 on SMS (up to 6 digits: a
/// short code), WhatsApp keeps Vonage's digits as a WhatsApp id, Messenger ids are page-scoped.
fn customer_address(channel: &Channel, id: &str) -> Address {
    match channel {
        Channel::WhatsApp => Address::new(Channel::WhatsApp, AddressKind::WhatsAppId, id),
        Channel::Messenger => Address::new(Channel::Messenger, AddressKind::PageScopedId, id),
        _ => sms_address(id),
    }
}

/// The business side: a number on SMS and WhatsApp, the page on Messenger.
fn business_address(channel: &Channel, id: &str) -> Address {
    match channel {
        Channel::Messenger => Address::new(Channel::Messenger, AddressKind::ProviderAccount, id),
        Channel::WhatsApp => {
            let digits = id.trim_start_matches('+');
            if is_digits(digits) {
                Address::phone(Channel::WhatsApp, format!("+{digits}"))
            } else {
                Address::new(Channel::WhatsApp, AddressKind::Other, id)
            }
        }
        _ => sms_address(id),
    }
}

fn sms_address(id: &str) -> Address {
    let digits = id.trim_start_matches('+');
    if is_digits(digits) && digits.len() > 6 {
        Address::phone(Channel::Sms, format!("+{digits}"))
    } else if is_digits(digits) {
        Address::new(Channel::Sms, AddressKind::ShortCode, digits)
    } else {
        Address::new(Channel::Sms, AddressKind::Alphanumeric, id)
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn timestamp_of(body: &Map<String, Value>) -> Option<Timestamp> {
    body.get("timestamp")
        .and_then(Value::as_str)
        .and_then(Timestamp::parse_rfc3339)
}

/// Copies the listed members of `body`, when present, into `extensions`.
fn keep(body: &Map<String, Value>, names: &[&str], extensions: &mut Extensions) {
    for name in names {
        if let Some(value) = body.get(*name).filter(|v| !v.is_null()) {
            extensions.insert((*name).to_owned(), value.clone());
        }
    }
}

fn inbound_events(
    ctx: &ChannelContext,
    body: &Map<String, Value>,
) -> Result<Vec<InboundEvent>, ConnectorError> {
    let id = str_field(body, "message_uuid")?;
    let channel_word = str_field(body, "channel")?;
    let channel = channel_of(channel_word).ok_or_else(|| {
        ConnectorError::unsupported(format!("inbound messages on channel `{channel_word}`"))
    })?;
    let from = customer_address(&channel, str_field(body, "from")?);
    let to = business_address(&channel, str_field(body, "to")?);
    let message_type = str_field(body, "message_type")?;
    let content = inbound_content(message_type, body)?;

    let mut extensions = Extensions::new();
    if channel_word == "mms" {
        extensions.insert("channel".into(), json!("mms"));
    }
    keep(
        body,
        &[
            "client_ref",
            "sms",
            "usage",
            "whatsapp",
            "context_status",
            "provider_message",
        ],
        &mut extensions,
    );
    let message = InboundMessage {
        id: id.to_owned(),
        from,
        to,
        timestamp: timestamp_of(body),
        content,
        profile_name: body
            .get("profile")
            .and_then(|p| opt_str(p, "name"))
            .map(str::to_owned),
        reply_to: body
            .get("context")
            .and_then(|c| opt_str(c, "message_uuid"))
            .map(str::to_owned),
        extensions,
    };

    let mut events = Vec::with_capacity(2);
    let consent = match (&channel, &message.content) {
        (Channel::Sms, Content::Text { text, .. }) => keyword(text).map(|k| (k, text.trim())),
        (Channel::WhatsApp, Content::Text { text, .. })
            if ctx
                .settings
                .get("whatsapp_opt_out_keywords")
                .and_then(Value::as_bool)
                == Some(true) =>
        {
            keyword(text).map(|k| (k, text.trim()))
        }
        _ => None,
    };
    let consent = consent.and_then(|(kind, word)| {
        let record = Consent {
            id: message.id.clone(),
            from: message.from.clone(),
            to: Some(message.to.clone()),
            keyword: Some(word.to_ascii_uppercase()),
            timestamp: message.timestamp,
        };
        match kind {
            Keyword::OptOut => Some(InboundEvent::OptOut(record)),
            Keyword::OptIn => Some(InboundEvent::OptIn(record)),
            Keyword::Help => None,
        }
    });
    events.push(InboundEvent::Message(message));
    events.extend(consent);
    Ok(events)
}

/// The content of an inbound message by `message_type`; kinds without a normalized form are
/// [`Content::Unsupported`].
fn inbound_content(
    message_type: &str,
    body: &Map<String, Value>,
) -> Result<Content, ConnectorError> {
    let object = |name: &str| {
        body.get(name)
            .filter(|v| v.is_object())
            .ok_or_else(|| ConnectorError::malformed(format!("`{name}` object is missing")))
    };
    let media = |kind: MediaKind, name: &str| -> Result<Content, ConnectorError> {
        let value = object(name)?;
        let url = opt_str(value, "url")
            .ok_or_else(|| ConnectorError::malformed(format!("`{name}.url` is missing")))?;
        let mut media = Media::from_url(kind, url);
        media.caption = opt_str(value, "caption").map(str::to_owned);
        media.filename = opt_str(value, "name").map(str::to_owned);
        if name == "vcard" {
            media.mime_type = Some("text/vcard".into());
        }
        Ok(Content::Media(media))
    };
    Ok(match message_type {
        "text" => Content::text(
            body.get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| ConnectorError::malformed("`text` is missing"))?,
        ),
        "image" => media(MediaKind::Image, "image")?,
        "audio" => media(MediaKind::Audio, "audio")?,
        "video" => media(MediaKind::Video, "video")?,
        "file" => media(MediaKind::Document, "file")?,
        "vcard" => media(MediaKind::Document, "vcard")?,
        "sticker" => media(MediaKind::Sticker, "sticker")?,
        "location" => {
            let value = object("location")?;
            let coordinate = |names: [&str; 2]| {
                names.iter().find_map(|n| match value.get(*n) {
                    Some(Value::Number(x)) => x.as_f64(),
                    Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                    _ => None,
                })
            };
            let (Some(latitude), Some(longitude)) = (
                coordinate(["lat", "latitude"]),
                coordinate(["long", "longitude"]),
            ) else {
                return Err(ConnectorError::malformed("`location` has no coordinates"));
            };
            if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
                return Err(ConnectorError::malformed("`location` is off the map"));
            }
            Content::Location(Location {
                latitude,
                longitude,
                name: opt_str(value, "name").map(str::to_owned),
                address: opt_str(value, "address").map(str::to_owned),
            })
        }
        "reply" => {
            let value = object("reply")?;
            let title = opt_str(value, "title")
                .ok_or_else(|| ConnectorError::malformed("`reply.title` is missing"))?;
            Content::Reply(SelectedReply {
                id: opt_str(value, "id").map(str::to_owned),
                title: title.to_owned(),
            })
        }
        "button" => {
            let value = object("button")?;
            let title = opt_str(value, "text")
                .or_else(|| opt_str(value, "payload"))
                .ok_or_else(|| ConnectorError::malformed("`button` has no text"))?;
            Content::Reply(SelectedReply {
                id: opt_str(value, "payload").map(str::to_owned),
                title: title.to_owned(),
            })
        }
        other => Content::Unsupported {
            provider_type: other.to_owned(),
        },
    })
}

/// What a single-word SMS asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    OptOut,
    OptIn,
    Help,
}

/// The consent keyword of a message: one word, case-insensitive, from the CTIA lists
/// (providers.md §6.3). `"STOP PLEASE"` is not a keyword.
fn keyword(text: &str) -> Option<Keyword> {
    let word = text.trim();
    if word.is_empty() || word.len() > 16 || word.contains(char::is_whitespace) {
        return None;
    }
    let is = |list: &[&str]| list.iter().any(|k| k.eq_ignore_ascii_case(word));
    if is(&[
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    ]) {
        Some(Keyword::OptOut)
    } else if is(&["START", "YES", "UNSTOP"]) {
        Some(Keyword::OptIn)
    } else if is(&["HELP", "INFO"]) {
        Some(Keyword::Help)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Statuses

/// Vonage's status words: `submitted`, `delivered`, `read`, `rejected`, `undeliverable` (the
/// documented set), plus `failed` seen on some channels. Others are kept as unknown.
fn delivery_status(word: &str) -> DeliveryStatus {
    match word {
        "submitted" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "rejected" | "failed" => DeliveryStatus::Failed,
        "undeliverable" => DeliveryStatus::Undelivered,
        other => DeliveryStatus::Unknown(other.to_owned()),
    }
}

fn status_events(body: &Map<String, Value>) -> Result<Vec<InboundEvent>, ConnectorError> {
    let id = str_field(body, "message_uuid")?;
    let word = str_field(body, "status")?;
    let status = delivery_status(word);
    let channel = body
        .get("channel")
        .and_then(Value::as_str)
        .and_then(channel_of);
    let mut update = StatusUpdate::new(id, status.clone());
    update.timestamp = timestamp_of(body);
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    update.recipient = match (&channel, to) {
        (Some(channel), Some(to)) => Some(customer_address(channel, to)),
        _ => None,
    };
    if let Some(error) = body.get("error").filter(|e| e.is_object()) {
        let (code, message) = problem_parts(error);
        let class = code.as_deref().map_or(ErrorClass::Permanent, |c| {
            error_class(c).unwrap_or(ErrorClass::Permanent)
        });
        let mut provider_error = ProviderError::new(class, message);
        if let Some(code) = code {
            provider_error = provider_error.with_code(code);
        }
        update.error = Some(provider_error);
    }
    if matches!(status, DeliveryStatus::Unknown(_)) || word == "rejected" || word == "failed" {
        update.extensions.insert("status".into(), json!(word));
    }
    keep(
        body,
        &[
            "channel",
            "client_ref",
            "usage",
            "destination",
            "sms",
            "whatsapp",
        ],
        &mut update.extensions,
    );
    let mut events = vec![InboundEvent::Status(update)];
    // The recipient is on the blocklist (e.g. replied STOP): stop messaging them.
    if let Some(InboundEvent::Status(StatusUpdate {
        error: Some(error),
        recipient: Some(recipient),
        timestamp,
        ..
    })) = events.first()
        && error.class == ErrorClass::OptedOut
    {
        let consent = InboundEvent::OptOut(Consent {
            id: format!("{id}/opt-out"),
            from: recipient.clone(),
            to: None,
            keyword: None,
            timestamp: *timestamp,
        });
        events.push(consent);
    }
    Ok(events)
}

/// The code and text of an RFC 7807 problem (`type`, `title`, `detail`): the code is `title`
/// when numeric (status webhooks put the Messages error code there), else the `#fragment` of
/// `type` (`…/api-errors#unauthorized`, `…/messages#1150`).
fn problem_parts(problem: &Value) -> (Option<String>, String) {
    let title = match problem.get("title") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let fragment = opt_str(problem, "type")
        .and_then(|t| t.rsplit_once('#'))
        .map(|(_, f)| f.to_owned())
        .filter(|f| !f.is_empty());
    let code = match (&title, fragment) {
        (Some(t), _) if is_digits(t) => Some(t.clone()),
        (_, fragment) => fragment,
    };
    let detail = opt_str(problem, "detail");
    let mut message = match (&title, detail) {
        (Some(t), Some(d)) if !is_digits(t) => format!("{t}: {d}"),
        (_, Some(d)) => d.to_owned(),
        (Some(t), None) => t.clone(),
        (None, None) => "no detail".to_owned(),
    };
    if message.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    (code, message)
}

/// The class of a Messages API error code (developer.vonage.com/api-errors/messages) or of a
/// generic problem type. `None` for codes without a documented meaning here.
fn error_class(code: &str) -> Option<ErrorClass> {
    Some(match code {
        "1000" => ErrorClass::Throttled,
        "1010" | "1020" | "1021" | "1040" | "1080" | "1090" | "1120" | "1130" => {
            ErrorClass::Permanent
        }
        "1022" => ErrorClass::TemplateInvalid,
        "1030" | "1100" => ErrorClass::Retryable,
        // "Number barred": the destination is on the block list, opt-outs included.
        "1050" => ErrorClass::OptedOut,
        "1060" => ErrorClass::Auth,
        "1070" | "low-balance" => ErrorClass::Permanent,
        "unauthorized" | "forbidden" | "unprovisioned" | "account-suspended" | "jwt-expired"
        | "jwt-revoked" | "invalid-api-key" => ErrorClass::Auth,
        "rate-limit" => ErrorClass::Throttled,
        _ => return None,
    })
}

fn response_error(resp: &HttpResponse) -> ProviderError {
    let problem: Option<Value> = serde_json::from_slice(&resp.body)
        .ok()
        .filter(Value::is_object);
    let (code, message) = problem
        .as_ref()
        .map_or((None, format!("HTTP {}", resp.status)), problem_parts);
    let by_status = match resp.status {
        401 | 403 => ErrorClass::Auth,
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    };
    // Server errors and throttling are decided by the status; a 4xx by its code when known.
    let class = match (resp.status, code.as_deref().and_then(error_class)) {
        (429 | 500..=599, _) | (_, None) => by_status,
        (_, Some(class)) => class,
    };
    let mut error = ProviderError::new(class, format!("HTTP {}: {message}", resp.status));
    if let Some(code) = code {
        error = error.with_code(code);
    }
    match resp.retry_after() {
        Some(wait) if class.is_retryable() => error.with_retry_after(wait),
        _ => error,
    }
}

// ---------------------------------------------------------------------------------------------
// Sends

/// The `channel` word and the sender of a message.
fn route(
    ctx: &ChannelContext,
    msg: &OutboundMessage,
) -> Result<(&'static str, String), ConnectorError> {
    let (word, setting) = match msg.to.channel {
        Channel::Sms => ("sms", "sms_from"),
        Channel::WhatsApp => ("whatsapp", "whatsapp_from"),
        Channel::Messenger => ("messenger", "messenger_from"),
        ref other => {
            return Err(ConnectorError::unsupported(format!(
                "sending on channel `{other}`"
            )));
        }
    };
    let from = match &msg.from {
        Some(from) => from.id.clone(),
        None => match ctx.optional_setting(setting)? {
            Some(from) => from.to_owned(),
            None => ctx
                .optional_setting("from")?
                .ok_or_else(|| ConnectorError::config(setting, "is required (or `from`)"))?
                .to_owned(),
        },
    };
    Ok((word, number_or_id(&from)))
}

/// Vonage wants E.164 without `+`; ids other than numbers pass unchanged.
fn number_or_id(id: &str) -> String {
    let digits = id.trim().trim_start_matches('+');
    if is_digits(digits) {
        digits.to_owned()
    } else {
        id.trim().to_owned()
    }
}

fn send_body(ctx: &ChannelContext, msg: &OutboundMessage) -> Result<Value, ConnectorError> {
    let (mut channel, from) = route(ctx, msg)?;
    let to = number_or_id(&msg.to.id);
    if to.is_empty() {
        return Err(ConnectorError::malformed("the recipient id is empty"));
    }
    let mut body = Map::new();
    let text_limit = |limit: u32, text: &str| {
        if text.chars().count() > limit as usize {
            Err(ConnectorError::unsupported(format!(
                "text longer than {limit} characters on {channel}"
            )))
        } else {
            Ok(())
        }
    };
    match &msg.content {
        Content::Text { text, .. } => {
            if text.is_empty() {
                return Err(ConnectorError::malformed("empty text"));
            }
            let limit = match channel {
                "sms" => SMS_MAX_CHARS,
                "whatsapp" => WHATSAPP_MAX_CHARS,
                _ => MESSENGER_MAX_CHARS,
            };
            text_limit(limit, text)?;
            body.insert("message_type".into(), json!("text"));
            body.insert("text".into(), json!(text));
        }
        Content::Media(media) => {
            let (kind_word, caption_allowed) = match (channel, media.kind) {
                (_, MediaKind::Image) => ("image", true),
                ("whatsapp", MediaKind::Video) => ("video", true),
                (_, MediaKind::Video) => ("video", false),
                (_, MediaKind::Audio) => ("audio", false),
                ("sms", MediaKind::Document | MediaKind::Sticker) => {
                    return Err(ConnectorError::unsupported(
                        "documents and stickers over SMS",
                    ));
                }
                (_, MediaKind::Document) => ("file", channel == "whatsapp"),
                ("whatsapp", MediaKind::Sticker) => ("sticker", false),
                (_, MediaKind::Sticker) => {
                    return Err(ConnectorError::unsupported("stickers outside WhatsApp"));
                }
            };
            let mut object = Map::new();
            match &media.source {
                MediaSource::Url(url) => {
                    object.insert("url".into(), json!(url));
                }
                MediaSource::ProviderId(id) if kind_word == "sticker" => {
                    object.insert("id".into(), json!(id));
                }
                MediaSource::ProviderId(_) => {
                    return Err(ConnectorError::unsupported("media by provider id"));
                }
            }
            if let Some(caption) = &media.caption {
                if !caption_allowed {
                    return Err(ConnectorError::unsupported(format!(
                        "a caption on {kind_word} messages on {channel}"
                    )));
                }
                object.insert("caption".into(), json!(caption));
            }
            if kind_word == "file"
                && channel == "whatsapp"
                && let Some(name) = &media.filename
            {
                object.insert("name".into(), json!(name));
            }
            if channel == "sms" {
                // Media over SMS numbers is MMS (US numbers only).
                channel = "mms";
            }
            body.insert("message_type".into(), json!(kind_word));
            body.insert(kind_word.into(), Value::Object(object));
        }
        Content::Location(location) if channel == "whatsapp" => {
            let mut object = Map::new();
            object.insert("latitude".into(), json!(location.latitude));
            object.insert("longitude".into(), json!(location.longitude));
            if let Some(name) = &location.name {
                object.insert("name".into(), json!(name));
            }
            if let Some(address) = &location.address {
                object.insert("address".into(), json!(address));
            }
            // WhatsApp's own location object through Vonage's `custom` passthrough.
            body.insert("message_type".into(), json!("custom"));
            body.insert(
                "custom".into(),
                json!({"type": "location", "location": Value::Object(object)}),
            );
        }
        Content::Template(template) if channel == "whatsapp" => {
            if template.header.is_some() || !template.buttons.is_empty() {
                return Err(ConnectorError::unsupported(
                    "template headers and buttons (Vonage `template` takes body text parameters)",
                ));
            }
            let mut parameters = Vec::with_capacity(template.body.len());
            for parameter in &template.body {
                match (&parameter.name, &parameter.value) {
                    (None, TemplateValue::Text { text }) => parameters.push(json!(text)),
                    _ => {
                        return Err(ConnectorError::unsupported(
                            "template parameters other than positional text",
                        ));
                    }
                }
            }
            body.insert("message_type".into(), json!("template"));
            body.insert(
                "template".into(),
                json!({"name": template.name, "parameters": parameters}),
            );
            body.insert(
                "whatsapp".into(),
                json!({"policy": "deterministic", "locale": template.language}),
            );
        }
        other => {
            let what = ContentKind::of(other).map_or("this content", |kind| match kind {
                ContentKind::Location => "locations outside WhatsApp",
                ContentKind::Template => "templates outside WhatsApp",
                ContentKind::Contacts => "contacts",
                ContentKind::Buttons | ContentKind::List => "interactive messages",
                ContentKind::Reaction => "reactions",
                _ => "this content",
            });
            return Err(ConnectorError::unsupported(what));
        }
    }
    body.insert("channel".into(), json!(channel));
    body.insert("to".into(), json!(to));
    body.insert("from".into(), json!(from));
    if !msg.idempotency_key.is_empty() && msg.idempotency_key.chars().count() <= MAX_CLIENT_REF {
        body.insert("client_ref".into(), json!(msg.idempotency_key));
    }
    if channel == "whatsapp"
        && let Some(reply_to) = &msg.reply_to
    {
        body.insert("context".into(), json!({"message_uuid": reply_to}));
    }
    if channel == "messenger" {
        let messenger = match &msg.tag {
            Some(tag) => json!({"category": "message_tag", "tag": tag}),
            None => json!({"category": "response"}),
        };
        body.insert("messenger".into(), messenger);
    }
    if let Some(url) = ctx.optional_setting("webhook_url")? {
        body.insert("webhook_url".into(), json!(url));
    }
    Ok(Value::Object(body))
}
