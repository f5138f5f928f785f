//! Sends: the Messages API form POST, and reading Twilio's answer.

use serde_json::Value;
use switchboard_core::sms::SmsInfo;
use switchboard_core::{
    AddressKind, ChannelContext, ConnectorError, Content, ErrorClass, HttpRequest, HttpResponse,
    Interactive, InteractiveAction, Location, MediaSource, Method, OutboundMessage, ProviderError,
    SendReceipt, Template, TemplateHeader, TemplateValue,
};

use super::address::{self, SendChannel};
use super::errors::error_class;
use super::settings::{self, SendSettings};
use super::status::map_status;

/// Twilio's limit on `Body`, in characters.
pub(super) const MAX_BODY_CHARS: usize = 1600;
/// Twilio's limit on `MediaUrl` values per message.
pub(super) const MAX_MEDIA_URLS: usize = 10;
/// Provider messages longer than this are cut (a misbehaving proxy can answer with a page).
const MAX_ERROR_MESSAGE_CHARS: usize = 500;

/// Message-create parameters an [`OutboundMessage`]'s extensions may pass through. Extension
/// keys that start with an uppercase ASCII letter are Twilio parameters and must be listed here;
/// other keys (another connector's extras) are ignored.
pub const PASSTHROUGH_PARAMS: &[&str] = &[
    "AddressRetention",
    "ApplicationSid",
    "Attempt",
    "ContentRetention",
    "ForceDelivery",
    "MaxPrice",
    "MediaUrl",
    "PersistentAction",
    "ProvideFeedback",
    "RiskCheck",
    "ScheduleType",
    "SendAsMms",
    "SendAt",
    "ShortenUrls",
    "SmartEncoded",
    "StatusCallback",
    "TrafficType",
    "ValidityPeriod",
];

/// What a message's content becomes in the form.
#[derive(Debug, Default)]
pub(super) struct Rendered {
    /// `Body`.
    pub(super) body: Option<String>,
    /// `MediaUrl`, in order.
    pub(super) media: Vec<String>,
    /// `ContentSid`.
    content_sid: Option<String>,
    /// `ContentVariables`, a JSON object as a string.
    content_variables: Option<String>,
    /// `PersistentAction`.
    persistent_action: Option<String>,
}

/// Renders a message's content for `channel`.
pub(super) fn render(content: &Content, channel: SendChannel) -> Result<Rendered, ConnectorError> {
    let mut out = Rendered::default();
    match content {
        Content::Text { text, .. } => out.body = Some(text.clone()),
        Content::Media(media) => {
            let MediaSource::Url(url) = &media.source else {
                return Err(ConnectorError::unsupported(
                    "media by provider id on Twilio: give a public URL",
                ));
            };
            check_media_url(url)?;
            out.media.push(url.clone());
            out.body = media.caption.clone().filter(|c| !c.is_empty());
        }
        Content::Location(place) => {
            if channel != SendChannel::WhatsApp {
                return Err(ConnectorError::unsupported("location messages on SMS"));
            }
            render_location(place, &mut out)?;
        }
        Content::Template(template) => render_template(template, &mut out)?,
        Content::Interactive(interactive) => out.body = Some(numbered_text(interactive)),
        Content::Contacts { .. } => {
            return Err(ConnectorError::unsupported("contact cards on Twilio"));
        }
        Content::Reply(_) | Content::Unsupported { .. } => {
            return Err(ConnectorError::unsupported(
                "this content is received, never sent",
            ));
        }
        _ => return Err(ConnectorError::unsupported("this content type on Twilio")),
    }
    if let Some(body) = &out.body {
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(ConnectorError::unsupported(format!(
                "a body of {chars} characters (Twilio allows {MAX_BODY_CHARS})"
            )));
        }
    }
    Ok(out)
}

fn check_media_url(url: &str) -> Result<(), ConnectorError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(())
    } else {
        Err(ConnectorError::unsupported(
            "a media URL that is not http(s): Twilio fetches media by public URL",
        ))
    }
}

/// WhatsApp location: `PersistentAction=geo:LAT,LON|LABEL` with the name or address as `Body`.
fn render_location(place: &Location, out: &mut Rendered) -> Result<(), ConnectorError> {
    if !place.latitude.is_finite() || !place.longitude.is_finite() {
        return Err(ConnectorError::unsupported(
            "a location with a non-finite coordinate",
        ));
    }
    let label = place
        .name
        .as_deref()
        .or(place.address.as_deref())
        .filter(|l| !l.is_empty());
    let geo = format!("geo:{},{}", place.latitude, place.longitude);
    out.persistent_action = Some(match label {
        Some(label) => format!("{geo}|{label}"),
        None => geo.clone(),
    });
    out.body = Some(match (&place.name, &place.address) {
        (Some(name), Some(address)) if !name.is_empty() && !address.is_empty() => {
            format!("{name}, {address}")
        }
        _ => label.map_or_else(|| geo[4..].to_owned(), str::to_owned),
    });
    Ok(())
}

/// A template goes as `ContentSid` (its `name`, `HX…`) with `ContentVariables` from its
/// parameters: positional body parameters are `"1"`, `"2"`, … in order; named parameters
/// (anywhere) keep their name. The language is part of the Content SID, so it is not sent.
fn render_template(template: &Template, out: &mut Rendered) -> Result<(), ConnectorError> {
    if !settings::is_sid(&template.name, "HX") {
        return Err(ConnectorError::unsupported(format!(
            "template `{}`: Twilio sends templates by Content SID (HX followed by 32 hexadecimal digits)",
            template.name
        )));
    }
    let mut variables: Vec<(String, String)> = Vec::new();
    let mut push = |key: String, value: &TemplateValue| -> Result<(), ConnectorError> {
        if variables.iter().any(|(k, _)| *k == key) {
            return Err(ConnectorError::unsupported(format!(
                "template variable `{key}` given twice"
            )));
        }
        let text = match value {
            TemplateValue::Text { text } => text.clone(),
            TemplateValue::Currency { fallback, .. } | TemplateValue::DateTime { fallback } => {
                fallback.clone()
            }
            TemplateValue::Media(media) => match &media.source {
                MediaSource::Url(url) => url.clone(),
                MediaSource::ProviderId(_) => {
                    return Err(ConnectorError::unsupported(
                        "a media template variable by provider id: give a URL",
                    ));
                }
            },
        };
        variables.push((key, text));
        Ok(())
    };
    let mut position = 0u32;
    for param in &template.body {
        let key = match &param.name {
            Some(name) => name.clone(),
            None => {
                position += 1;
                position.to_string()
            }
        };
        push(key, &param.value)?;
    }
    let unnamed = || {
        ConnectorError::unsupported(
            "header and button parameters on Twilio: name them after the Content template's \
             variables (e.g. `3`) and pass them as body parameters",
        )
    };
    match &template.header {
        None => {}
        Some(TemplateHeader::Text { parameters }) => {
            for param in parameters {
                let name = param.name.clone().ok_or_else(unnamed)?;
                push(name, &param.value)?;
            }
        }
        Some(TemplateHeader::Media(_) | TemplateHeader::Location(_)) => return Err(unnamed()),
    }
    if !template.buttons.is_empty() {
        return Err(unnamed());
    }
    out.content_sid = Some(template.name.clone());
    if !variables.is_empty() {
        out.content_variables = Some(json_object(&variables));
    }
    Ok(())
}

/// A JSON object with members in the given order (independent of serde_json's map order).
fn json_object(members: &[(String, String)]) -> String {
    let mut json = String::from("{");
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&Value::from(key.as_str()).to_string());
        json.push(':');
        json.push_str(&Value::from(value.as_str()).to_string());
    }
    json.push('}');
    json
}

/// Buttons and lists as numbered text (support level "fallback"): Twilio sends interactive
/// messages only as pre-created Content templates.
fn numbered_text(interactive: &Interactive) -> String {
    let mut lines: Vec<String> = Vec::new();
    if let Some(header) = interactive.header.as_deref().filter(|h| !h.is_empty()) {
        lines.push(header.to_owned());
        lines.push(String::new());
    }
    lines.push(interactive.body.clone());
    lines.push(String::new());
    match &interactive.action {
        InteractiveAction::Buttons { buttons } => {
            for (i, button) in buttons.iter().enumerate() {
                lines.push(format!("{}. {}", i + 1, button.title));
            }
        }
        InteractiveAction::List { sections, .. } => {
            let mut n = 0;
            for section in sections {
                if let Some(title) = section.title.as_deref().filter(|t| !t.is_empty()) {
                    lines.push(title.to_owned());
                }
                for row in &section.rows {
                    n += 1;
                    match row.description.as_deref().filter(|d| !d.is_empty()) {
                        Some(description) => {
                            lines.push(format!("{n}. {} ({description})", row.title))
                        }
                        None => lines.push(format!("{n}. {}", row.title)),
                    }
                }
            }
        }
    }
    if let Some(footer) = interactive.footer.as_deref().filter(|f| !f.is_empty()) {
        lines.push(String::new());
        lines.push(footer.to_owned());
    }
    lines.join("\n")
}

/// The extension parameters to pass through, in key order; `None` values are dropped.
fn passthrough(msg: &OutboundMessage) -> Result<Vec<(&str, String)>, ConnectorError> {
    let mut out = Vec::new();
    for (key, value) in &msg.extensions {
        if !key.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        if !PASSTHROUGH_PARAMS.contains(&key.as_str()) {
            return Err(ConnectorError::unsupported(format!(
                "extension `{key}`: not a Twilio message parameter this connector passes through"
            )));
        }
        let scalar = |v: &Value| -> Result<Option<String>, ConnectorError> {
            match v {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                Value::Number(n) => Ok(Some(n.to_string())),
                Value::Bool(b) => Ok(Some(b.to_string())),
                _ => Err(ConnectorError::unsupported(format!(
                    "extension `{key}`: values must be strings, numbers or booleans"
                ))),
            }
        };
        match value {
            Value::Array(items) => {
                for item in items {
                    if let Some(text) = scalar(item)? {
                        out.push((key.as_str(), text));
                    }
                }
            }
            other => {
                if let Some(text) = scalar(other)? {
                    out.push((key.as_str(), text));
                }
            }
        }
    }
    Ok(out)
}

/// Builds the Messages API request.
pub(super) fn build(
    ctx: &ChannelContext,
    msg: &OutboundMessage,
) -> Result<HttpRequest, ConnectorError> {
    let settings = SendSettings::read(ctx)?;
    let channel = SendChannel::of(&msg.to)?;
    let to = address::recipient(&msg.to, channel)?;
    let rendered = render(&msg.content, channel)?;
    let extra = passthrough(msg)?;

    // The sender: the message's own, else the channel's.
    let (from, service) = match &msg.from {
        Some(from) if from.kind == AddressKind::ProviderAccount => {
            if !settings::is_sid(&from.id, "MG") {
                return Err(ConnectorError::unsupported(
                    "a provider-account sender that is not a Messaging Service SID (MG…)",
                ));
            }
            (None, Some(from.id.clone()))
        }
        Some(from) => (Some(address::sender(&from.id, channel)), None),
        None => {
            let number = match channel {
                SendChannel::WhatsApp => settings.whatsapp_from.or(settings.from),
                SendChannel::Sms => settings.from,
            };
            (
                number.map(|n| address::sender(n, channel)),
                settings.messaging_service_sid.map(str::to_owned),
            )
        }
    };
    if from.is_none() && service.is_none() {
        let field = match channel {
            SendChannel::WhatsApp => "whatsapp_from",
            SendChannel::Sms => "from",
        };
        return Err(ConnectorError::config(
            field,
            "no sender for this channel: set it or `messaging_service_sid`",
        ));
    }

    let mut form: Vec<(&str, String)> = vec![("To", to)];
    if let Some(from) = from {
        form.push(("From", from));
    }
    if let Some(service) = service {
        form.push(("MessagingServiceSid", service));
    }
    if let Some(body) = rendered.body {
        form.push(("Body", body));
    }
    let (extra_media, extra): (Vec<_>, Vec<_>) =
        extra.into_iter().partition(|(key, _)| *key == "MediaUrl");
    let mut media = rendered.media;
    for (_, url) in extra_media {
        check_media_url(&url)?;
        media.push(url);
    }
    if media.len() > MAX_MEDIA_URLS {
        return Err(ConnectorError::unsupported(format!(
            "{} media URLs in one message (Twilio allows {MAX_MEDIA_URLS})",
            media.len()
        )));
    }
    for url in media {
        form.push(("MediaUrl", url));
    }
    if let Some(sid) = rendered.content_sid {
        form.push(("ContentSid", sid));
    }
    if let Some(variables) = rendered.content_variables {
        form.push(("ContentVariables", variables));
    }
    if let Some(action) = rendered.persistent_action {
        form.push(("PersistentAction", action));
    }
    let overrides = |name: &str| extra.iter().any(|(k, _)| *k == name);
    if let (Some(url), false) = (settings.status_callback_url, overrides("StatusCallback")) {
        form.push(("StatusCallback", url.to_owned()));
    }
    if let (Some(secs), false) = (settings.validity_period, overrides("ValidityPeriod")) {
        form.push(("ValidityPeriod", secs.to_string()));
    }
    form.extend(extra);

    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        settings.base_url, settings.account_sid
    );
    Ok(HttpRequest::new(Method::Post, url).with_form(form.iter().map(|(k, v)| (*k, v.as_str()))))
}

/// The successful answer: `{"sid": "SM…", "status": "queued", …}`.
#[derive(serde::Deserialize)]
struct Created {
    sid: String,
    #[serde(default)]
    status: Option<String>,
}

/// Reads Twilio's answer to a send.
pub(super) fn parse_response(
    msg: &OutboundMessage,
    resp: &HttpResponse,
) -> Result<SendReceipt, ProviderError> {
    if !resp.is_success() {
        return Err(provider_error(resp));
    }
    let created: Created = serde_json::from_slice(&resp.body).map_err(|e| {
        // The message may exist: a permanent error, so it is not sent twice.
        ProviderError::new(
            ErrorClass::Permanent,
            format!(
                "Twilio answered HTTP {} with an unreadable body ({e}); the message may have been created",
                resp.status
            ),
        )
    })?;
    if created.sid.trim().is_empty() {
        return Err(ProviderError::new(
            ErrorClass::Permanent,
            format!("Twilio answered HTTP {} without a message sid", resp.status),
        ));
    }
    let status = created
        .status
        .as_deref()
        .map_or(switchboard_core::DeliveryStatus::Accepted, |s| {
            map_status(s).0
        });
    let mut receipt = SendReceipt::new(created.sid, status);
    if let Some(info) = sms_info(msg) {
        receipt
            .extensions
            .insert("segments".into(), Value::from(info.segments));
        receipt
            .extensions
            .insert("encoding".into(), Value::from(info.encoding.as_str()));
    }
    Ok(receipt)
}

/// The segment count and encoding of an SMS text send (not MMS, not templates).
pub(super) fn sms_info(msg: &OutboundMessage) -> Option<SmsInfo> {
    let channel = SendChannel::of(&msg.to).ok()?;
    if channel != SendChannel::Sms || msg.extensions.contains_key("MediaUrl") {
        return None;
    }
    let rendered = render(&msg.content, channel).ok()?;
    if !rendered.media.is_empty() || rendered.content_sid.is_some() {
        return None;
    }
    rendered.body.as_deref().map(SmsInfo::of)
}

/// Twilio's error bodies: the legacy `{code, message, more_info, status}` and RFC 9457
/// `{type, title, status, code, detail, instance}`; anything else is classified by HTTP status.
fn provider_error(resp: &HttpResponse) -> ProviderError {
    let body: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&resp.body).ok();
    let field = |name: &str| body.as_ref().and_then(|b| b.get(name));
    let text = |name: &str| {
        field(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let code = match field("code") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => text("type").and_then(code_from_type_url),
    };
    let message = text("message")
        .or_else(|| text("detail"))
        .or_else(|| text("title"))
        .map(truncate)
        .unwrap_or_else(|| format!("HTTP {}", resp.status));
    let mut error = ProviderError::new(error_class(code.as_deref(), Some(resp.status)), message);
    if let Some(code) = code {
        error = error.with_code(code);
    }
    if let Some(wait) = resp.retry_after() {
        error = error.with_retry_after(wait);
    }
    error
}

/// `https://www.twilio.com/docs/errors/20001` → `20001`.
fn code_from_type_url(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    (!last.is_empty() && last.len() <= 8 && last.bytes().all(|b| b.is_ascii_digit()))
        .then(|| last.to_owned())
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use switchboard_core::{Address, Channel, ReplyButton};

    #[test]
    fn interactive_falls_back_to_numbered_text() {
        let i = Interactive {
            body: "Pick one".into(),
            header: Some("Menu".into()),
            footer: None,
            action: InteractiveAction::Buttons {
                buttons: vec![
                    ReplyButton {
                        id: "a".into(),
                        title: "Sales".into(),
                    },
                    ReplyButton {
                        id: "b".into(),
                        title: "Support".into(),
                    },
                ],
            },
        };
        assert_eq!(
            numbered_text(&i),
            "Menu\n\nPick one\n\n1. Sales\n2. Support"
        );
    }

    #[test]
    fn error_bodies_legacy_and_rfc9457() {
        let legacy = HttpResponse::new(
            400,
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#,
        );
        let e = provider_error(&legacy);
        assert_eq!(
            (e.class, e.provider_code.as_deref()),
            (ErrorClass::OptedOut, Some("21610"))
        );
        let rfc = HttpResponse::new(
            400,
            r#"{"type": "https://www.twilio.com/docs/errors/63016", "title": "Window closed", "status": 400, "detail": "outside the 24h window"}"#,
        );
        let e = provider_error(&rfc);
        assert_eq!(
            (e.class, e.provider_code.as_deref()),
            (ErrorClass::WindowClosed, Some("63016"))
        );
        assert_eq!(e.message, "outside the 24h window");
        let html = HttpResponse::new(502, "<html>bad gateway</html>");
        assert_eq!(provider_error(&html).class, ErrorClass::Retryable);
        let long = HttpResponse::new(400, format!(r#"{{"message": "{}"}}"#, "x".repeat(5000)));
        assert!(provider_error(&long).message.chars().count() <= MAX_ERROR_MESSAGE_CHARS + 1);
    }

    #[test]
    fn segments_only_for_sms_text() {
        let sms = OutboundMessage::new(
            "k",
            Address::phone(Channel::Sms, "+1"),
            Content::text("hé €"),
        );
        let info = sms_info(&sms).unwrap();
        assert_eq!((info.segments, info.encoding.as_str()), (1, "gsm7"));
        let wa = OutboundMessage::new(
            "k",
            Address::phone(Channel::WhatsApp, "+1"),
            Content::text("hi"),
        );
        assert!(sms_info(&wa).is_none());
    }
}
