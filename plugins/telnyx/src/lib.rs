//! `telnyx`: the Telnyx Messaging API v2 (SMS and MMS) as a Switchboard connector plugin,
//! `POST https://api.telnyx.com/v2/messages`.
//!
//! Sans-IO like every connector: the host verifies webhooks with the declared
//! [`WebhookAuth::TelnyxEd25519`] scheme (Ed25519 over `timestamp|body` with the account's
//! public key) and the transport runs the requests, adding `Authorization: Bearer <api_key>`.
//! See `README.md` beside this crate for settings, secrets, mappings and sources.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    Address, AddressKind, Capabilities, Channel, ChannelContext, ChannelSupport, Connector,
    ConnectorError, ConnectorInfo, Consent, Content, ContentKind, DeliveryStatus, ErrorClass,
    Extensions, HttpRequest, HttpResponse, InboundEvent, InboundMessage, Media, MediaKind,
    MediaLimit, MediaSource, Method, OutboundMessage, ProviderError, SecretName, SendReceipt,
    SkippedItem, StatusUpdate, SupportLevel, Timestamp, WebhookOutcome, WebhookRequest,
    WindowPolicy,
};

const API_URL: &str = "https://api.telnyx.com/v2/messages";
/// Telnyx splits long texts; 10 segments of GSM-7 is a practical ceiling for one message.
const MAX_TEXT_CHARS: u32 = 1530;
/// More media than this in an inbound message is hostile input.
const MAX_INBOUND_MEDIA: usize = 25;
/// The longest provider text kept in an error message.
const MAX_ERROR_TEXT: usize = 300;
const MB: u64 = 1024 * 1024;

/// The connector (id `telnyx`).
#[derive(Debug, Clone)]
pub struct Telnyx {
    info: ConnectorInfo,
}

impl Default for Telnyx {
    fn default() -> Self {
        let mut sms = Capabilities::new(MAX_TEXT_CHARS, WindowPolicy::None);
        for kind in [
            MediaKind::Image,
            MediaKind::Video,
            MediaKind::Audio,
            MediaKind::Document,
        ] {
            // MMS: US and Canadian numbers only, and only where the carrier takes the type.
            sms = sms.with(ContentKind::Media(kind), SupportLevel::Partial);
            sms.media_limits.push(MediaLimit {
                kind,
                max_bytes: MB,
            });
        }
        Self {
            info: ConnectorInfo {
                id: "telnyx".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                display_name: "Telnyx Messaging (SMS/MMS)".into(),
                channels: vec![ChannelSupport::new(Channel::Sms, sms)],
                egress_hosts: vec!["api.telnyx.com".into()],
            },
        }
    }
}

impl Connector for Telnyx {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// Ed25519 signatures with the account's public key (secret `public_key`, base64);
    /// `webhook_tolerance_secs` (default 300, as Telnyx's SDKs) bounds the timestamp.
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
        Ok(WebhookAuth::TelnyxEd25519 {
            public_key: SecretName::new("public_key"),
            tolerance: Duration::from_secs(tolerance),
        })
    }

    /// `Authorization: Bearer <api_key>`.
    fn outbound_auth(&self, _ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        Ok(OutboundAuth::Bearer {
            token: SecretName::new("api_key"),
        })
    }

    fn parse_webhook(
        &self,
        _ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ConnectorError::malformed(format!("body is not JSON: {e}")))?;
        let data = body
            .get("data")
            .filter(|d| d.is_object())
            .ok_or_else(|| ConnectorError::malformed("`data` object is missing"))?;
        let event_type = data
            .get("event_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::malformed("`data.event_type` is missing"))?;
        let payload = data
            .get("payload")
            .filter(|p| p.is_object())
            .ok_or_else(|| ConnectorError::malformed("`data.payload` object is missing"))?;
        let occurred_at = data
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(Timestamp::parse_rfc3339);
        let events = match event_type {
            "message.received" => inbound_events(payload, occurred_at)?,
            "message.sent" | "message.finalized" => status_events(payload, occurred_at)?,
            other => {
                // Signed, but not a messaging event this connector reads: acknowledge it.
                let mut outcome = WebhookOutcome::ok(Vec::new());
                outcome.skipped.push(SkippedItem {
                    path: "data".into(),
                    reason: format!("event type `{other}` carries no messaging event"),
                });
                return Ok(outcome);
            }
        };
        Ok(WebhookOutcome::ok(events))
    }

    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        let body = send_body(ctx, msg)?;
        Ok(HttpRequest::new(Method::Post, API_URL)
            .with_header("Accept", "application/json")
            .with_json(&body))
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
        let data = body.get("data").unwrap_or(&Value::Null);
        let id = data
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::Permanent,
                    format!("HTTP {} without `data.id`", resp.status),
                )
            })?;
        let status = data
            .get("to")
            .and_then(Value::as_array)
            .and_then(|to| to.first())
            .and_then(|to| to.get("status"))
            .and_then(Value::as_str)
            .map_or(DeliveryStatus::Accepted, delivery_status);
        let mut receipt = SendReceipt::new(id, status);
        for name in ["parts", "encoding", "cost"] {
            if let Some(value) = data.get(name).filter(|v| !v.is_null()) {
                receipt.extensions.insert(name.into(), value.clone());
            }
        }
        Ok(receipt)
    }
}

switchboard_plugin_sdk::export_connector!(Telnyx);

// ---------------------------------------------------------------------------------------------
// Inbound

fn opt_str<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `+E.164` → phone, up to 6 digits → short code, anything else → alphanumeric sender id.
fn address(id: &str) -> Address {
    let digits = id.strip_prefix('+').unwrap_or(id);
    if id.starts_with('+') && is_digits(digits) {
        Address::phone(Channel::Sms, id)
    } else if is_digits(digits) && digits.len() <= 6 {
        Address::new(Channel::Sms, AddressKind::ShortCode, digits)
    } else if is_digits(digits) {
        Address::phone(Channel::Sms, format!("+{digits}"))
    } else {
        Address::new(Channel::Sms, AddressKind::Alphanumeric, id)
    }
}

fn phone_of<'a>(party: Option<&'a Value>, what: &str) -> Result<&'a str, ConnectorError> {
    party
        .and_then(|p| opt_str(p, "phone_number"))
        .ok_or_else(|| ConnectorError::malformed(format!("`{what}.phone_number` is missing")))
}

fn time_of(payload: &Value, names: &[&str]) -> Option<Timestamp> {
    names.iter().find_map(|name| {
        payload
            .get(*name)
            .and_then(Value::as_str)
            .and_then(Timestamp::parse_rfc3339)
    })
}

fn media_kind(content_type: Option<&str>) -> MediaKind {
    match content_type.and_then(|ct| ct.split('/').next()) {
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("audio") => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// `message.received`: one message event per medium (the first keeps the id and carries the
/// text as caption; the N-th further one is `{id}/{N}`), the text alone when there is none,
/// and an opt-out or opt-in event for a single-word consent keyword.
fn inbound_events(
    payload: &Value,
    occurred_at: Option<Timestamp>,
) -> Result<Vec<InboundEvent>, ConnectorError> {
    let id = opt_str(payload, "id")
        .ok_or_else(|| ConnectorError::malformed("`payload.id` is missing"))?;
    let from = address(phone_of(payload.get("from"), "from")?);
    let to_list = payload.get("to").and_then(Value::as_array);
    let to = address(phone_of(to_list.and_then(|t| t.first()), "to[0]")?);
    let timestamp = time_of(payload, &["received_at"]).or(occurred_at);
    let text = payload.get("text").and_then(Value::as_str).unwrap_or("");
    let media: Vec<&Value> = payload
        .get("media")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter(|m| opt_str(m, "url").is_some()).collect())
        .unwrap_or_default();
    if media.len() > MAX_INBOUND_MEDIA {
        return Err(ConnectorError::malformed(format!(
            "more than {MAX_INBOUND_MEDIA} media in one message"
        )));
    }
    if text.is_empty() && media.is_empty() {
        return Err(ConnectorError::malformed(
            "a message with neither text nor media",
        ));
    }

    let mut extensions = Extensions::new();
    for name in [
        "type",
        "encoding",
        "parts",
        "messaging_profile_id",
        "subject",
        "cost",
    ] {
        if let Some(value) = payload.get(name).filter(|v| !v.is_null()) {
            extensions.insert(name.into(), value.clone());
        }
    }
    let message = |id: String, content: Content, extensions: Extensions| {
        InboundEvent::Message(InboundMessage {
            id,
            from: from.clone(),
            to: to.clone(),
            timestamp,
            content,
            profile_name: None,
            reply_to: None,
            extensions,
        })
    };
    let mut events = Vec::with_capacity(media.len().max(1) + 1);
    if media.is_empty() {
        events.push(message(id.to_owned(), Content::text(text), extensions));
    } else {
        let count = media.len();
        for (index, medium) in media.into_iter().enumerate() {
            let content_type = opt_str(medium, "content_type");
            let mut item = Media::from_url(
                media_kind(content_type),
                opt_str(medium, "url").unwrap_or_default(),
            );
            item.mime_type = content_type.map(str::to_owned);
            item.sha256 = opt_str(medium, "hash_sha256")
                .or_else(|| opt_str(medium, "sha256"))
                .map(str::to_owned);
            let mut item_extensions = Extensions::new();
            if index == 0 {
                if !text.is_empty() {
                    item.caption = Some(text.to_owned());
                }
                item_extensions = extensions.clone();
            }
            if count > 1 {
                item_extensions.insert("media_index".into(), json!(index));
                item_extensions.insert("media_count".into(), json!(count));
            }
            let item_id = if index == 0 {
                id.to_owned()
            } else {
                format!("{id}/{index}")
            };
            events.push(message(item_id, Content::Media(item), item_extensions));
        }
    }
    if let Some(kind) = keyword(text) {
        let consent = Consent {
            id: id.to_owned(),
            from: from.clone(),
            to: Some(to.clone()),
            keyword: Some(text.trim().to_ascii_uppercase()),
            timestamp,
        };
        match kind {
            Keyword::OptOut => events.push(InboundEvent::OptOut(consent)),
            Keyword::OptIn => events.push(InboundEvent::OptIn(consent)),
            Keyword::Help => {}
        }
    }
    Ok(events)
}

/// What a single-word SMS asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    OptOut,
    OptIn,
    Help,
}

/// The consent keyword of a message: one word, case-insensitive, from the CTIA lists
/// (providers.md §6.3), which Telnyx's own opt-out handling also answers.
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

/// Telnyx's per-recipient statuses (`to[].status`).
fn delivery_status(word: &str) -> DeliveryStatus {
    match word {
        "queued" | "sending" => DeliveryStatus::Queued,
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "sending_failed" => DeliveryStatus::Failed,
        "delivery_failed" => DeliveryStatus::Undelivered,
        // The carrier never confirmed: handed over, delivery not proven.
        "delivery_unconfirmed" => DeliveryStatus::Sent,
        other => DeliveryStatus::Unknown(other.to_owned()),
    }
}

/// `message.sent` / `message.finalized`: one status per recipient in `to[]`, with the first
/// of `errors[]` as the error of failed ones.
fn status_events(
    payload: &Value,
    occurred_at: Option<Timestamp>,
) -> Result<Vec<InboundEvent>, ConnectorError> {
    let id = opt_str(payload, "id")
        .ok_or_else(|| ConnectorError::malformed("`payload.id` is missing"))?;
    let recipients = payload
        .get("to")
        .and_then(Value::as_array)
        .filter(|to| !to.is_empty())
        .ok_or_else(|| ConnectorError::malformed("`payload.to` is missing or empty"))?;
    let error = payload
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first())
        .map(|e| {
            let (code, message) = error_parts(e);
            let class = code.as_deref().map_or(ErrorClass::Permanent, |c| {
                error_class(c).unwrap_or(ErrorClass::Permanent)
            });
            let error = ProviderError::new(class, message);
            match code {
                Some(code) => error.with_code(code),
                None => error,
            }
        });
    let timestamp = time_of(payload, &["completed_at", "sent_at"]).or(occurred_at);
    let mut events = Vec::with_capacity(recipients.len());
    for (index, recipient) in recipients.iter().enumerate() {
        let word = opt_str(recipient, "status").ok_or_else(|| {
            ConnectorError::malformed(format!("`payload.to[{index}].status` is missing"))
        })?;
        let status = delivery_status(word);
        let mut update = StatusUpdate::new(id, status.clone());
        update.recipient = opt_str(recipient, "phone_number").map(address);
        update.timestamp = timestamp;
        if status.is_failure() || word == "delivery_unconfirmed" {
            update.error.clone_from(&error);
        }
        if matches!(
            word,
            "sending" | "delivery_unconfirmed" | "sending_failed" | "delivery_failed"
        ) || matches!(status, DeliveryStatus::Unknown(_))
        {
            update.extensions.insert("status".into(), json!(word));
        }
        for name in ["parts", "cost", "encoding"] {
            if let Some(value) = payload.get(name).filter(|v| !v.is_null()) {
                update.extensions.insert(name.into(), value.clone());
            }
        }
        let opted_out = update
            .error
            .as_ref()
            .is_some_and(|e| e.class == ErrorClass::OptedOut);
        let recipient_address = update.recipient.clone();
        events.push(InboundEvent::Status(update));
        // Blocked because the recipient replied STOP: stop messaging them.
        if opted_out && let Some(recipient) = recipient_address {
            events.push(InboundEvent::OptOut(Consent {
                id: format!("{id}/opt-out/{index}"),
                from: recipient,
                to: None,
                keyword: None,
                timestamp,
            }));
        }
    }
    Ok(events)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The code and text of a Telnyx error object (`code`, `title`, `detail`).
fn error_parts(error: &Value) -> (Option<String>, String) {
    let code = match error.get("code") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut message = match (opt_str(error, "title"), opt_str(error, "detail")) {
        (Some(t), Some(d)) => format!("{t}: {d}"),
        (Some(t), None) => t.to_owned(),
        (None, Some(d)) => d.to_owned(),
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

/// The class of a Telnyx error code (API errors 10xxx, messaging errors 40xxx). `None` when
/// the code has no documented meaning here.
fn error_class(code: &str) -> Option<ErrorClass> {
    Some(match code {
        // API request errors.
        "10009" | "10010" => ErrorClass::Auth,
        "10011" => ErrorClass::Throttled,
        "10007" | "10008" => ErrorClass::Retryable,
        "10001" | "10003" | "10004" | "10005" | "10006" | "10014" | "10015" => {
            ErrorClass::Permanent
        }
        // Delivery errors.
        "40001" | "40012" | "40310" => ErrorClass::InvalidRecipient,
        "40002" | "40011" => ErrorClass::Throttled,
        "40004" | "40006" => ErrorClass::Retryable,
        "40003" | "40005" | "40008" | "40009" | "40013" => ErrorClass::Permanent,
        "40300" => ErrorClass::OptedOut,
        _ => return None,
    })
}

fn response_error(resp: &HttpResponse) -> ProviderError {
    let first = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|body| body.get("errors").and_then(Value::as_array).cloned())
        .and_then(|errors| errors.into_iter().next());
    let (code, message) = first
        .as_ref()
        .map_or((None, format!("HTTP {}", resp.status)), error_parts);
    let pointer = first
        .as_ref()
        .and_then(|e| e.get("source"))
        .and_then(|s| opt_str(s, "pointer"));
    let by_status = match resp.status {
        401 | 403 => ErrorClass::Auth,
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    };
    let by_code = code
        .as_deref()
        .and_then(error_class)
        .or(match (code.as_deref(), pointer) {
            // An invalid phone number in `to` is the recipient's.
            (Some("10002" | "10016"), Some("/to")) => Some(ErrorClass::InvalidRecipient),
            _ => None,
        });
    let class = match (resp.status, by_code) {
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

fn send_body(ctx: &ChannelContext, msg: &OutboundMessage) -> Result<Value, ConnectorError> {
    if msg.to.channel != Channel::Sms {
        return Err(ConnectorError::unsupported(format!(
            "sending on channel `{}`",
            msg.to.channel
        )));
    }
    let to = e164(&msg.to)?;
    let mut body = Map::new();
    let from = match &msg.from {
        Some(from) => Some(from.id.clone()),
        None => ctx.optional_setting("from")?.map(str::to_owned),
    };
    let profile = ctx.optional_setting("messaging_profile_id")?;
    match (&from, profile) {
        (None, None) => {
            return Err(ConnectorError::config(
                "from",
                "is required (or `messaging_profile_id` to send from its number pool)",
            ));
        }
        (Some(from), _) => {
            body.insert("from".into(), json!(from));
        }
        (None, Some(_)) => {}
    }
    if let Some(profile) = profile {
        body.insert("messaging_profile_id".into(), json!(profile));
    }
    body.insert("to".into(), json!(to));
    match &msg.content {
        Content::Text { text, .. } => {
            if text.is_empty() {
                return Err(ConnectorError::malformed("empty text"));
            }
            if text.chars().count() > MAX_TEXT_CHARS as usize {
                return Err(ConnectorError::unsupported(format!(
                    "text longer than {MAX_TEXT_CHARS} characters"
                )));
            }
            body.insert("text".into(), json!(text));
        }
        Content::Media(media) => {
            let MediaSource::Url(url) = &media.source else {
                return Err(ConnectorError::unsupported("media by provider id"));
            };
            if media.kind == MediaKind::Sticker {
                return Err(ConnectorError::unsupported("stickers over MMS"));
            }
            if let Some(caption) = &media.caption {
                body.insert("text".into(), json!(caption));
            }
            body.insert("media_urls".into(), json!([url]));
            body.insert("type".into(), json!("MMS"));
        }
        other => {
            let what = match ContentKind::of(other) {
                Some(ContentKind::Location) => "locations",
                Some(ContentKind::Template) => "templates",
                Some(ContentKind::Contacts) => "contacts",
                Some(ContentKind::Buttons | ContentKind::List) => "interactive messages",
                Some(ContentKind::Reaction) => "reactions",
                _ => "this content",
            };
            return Err(ConnectorError::unsupported(format!("{what} over SMS")));
        }
    }
    if let Some(url) = ctx.optional_setting("webhook_url")? {
        body.insert("webhook_url".into(), json!(url));
    }
    if let Some(url) = ctx.optional_setting("webhook_failover_url")? {
        body.insert("webhook_failover_url".into(), json!(url));
    }
    Ok(Value::Object(body))
}

/// A recipient as `+E.164`, or a short code.
fn e164(to: &Address) -> Result<String, ConnectorError> {
    let id = to.id.trim();
    let digits = id.strip_prefix('+').unwrap_or(id);
    if !is_digits(digits) {
        return Err(ConnectorError::malformed(
            "the recipient is not a phone number or short code",
        ));
    }
    Ok(
        if to.kind == AddressKind::ShortCode || (digits.len() <= 6 && !id.starts_with('+')) {
            digits.to_owned()
        } else {
            format!("+{digits}")
        },
    )
}
