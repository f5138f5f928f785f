//! `POST {base}/{version}/{page_id}/messages`: an [`OutboundMessage`] as a Send API request,
//! and the answer as a receipt.

use serde::Serialize;
use switchboard_core::{
    AddressKind, Channel, ChannelContext, ConnectorError, Content, DeliveryStatus, HttpRequest,
    HttpResponse, Interactive, InteractiveAction, Media, MediaKind, MediaSource, Method,
    OutboundMessage, ProviderError, SendReceipt,
};

use super::errors::classify;
use crate::meta::graph::{self, Graph, path_id};

/// Messenger's longest text, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 2000;
/// Quick replies per message.
pub(crate) const MAX_QUICK_REPLIES: usize = 13;
/// The message tag that extends the window to 7 days.
pub(crate) const HUMAN_AGENT: &str = "HUMAN_AGENT";
/// The channel setting that allows it (the page must have the Human Agent permission).
pub(crate) const HUMAN_AGENT_SETTING: &str = "human_agent_tag";

fn is_none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

#[derive(Serialize)]
struct Envelope<'a> {
    recipient: RecipientOut<'a>,
    messaging_type: &'a str,
    #[serde(skip_serializing_if = "is_none")]
    tag: Option<&'static str>,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct RecipientOut<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    #[serde(skip_serializing_if = "is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    attachment: Option<AttachmentOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    quick_replies: Vec<QuickReplyOut<'a>>,
}

#[derive(Serialize)]
struct AttachmentOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    payload: AttachmentPayload<'a>,
}

#[derive(Serialize)]
struct AttachmentPayload<'a> {
    #[serde(skip_serializing_if = "is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    is_reusable: Option<bool>,
    #[serde(skip_serializing_if = "is_none")]
    attachment_id: Option<&'a str>,
}

#[derive(Serialize)]
struct QuickReplyOut<'a> {
    content_type: &'static str,
    title: &'a str,
    payload: &'a str,
}

fn unsupported(what: impl Into<String>) -> ConnectorError {
    ConnectorError::unsupported(what)
}

/// Whether the channel enables the `HUMAN_AGENT` tag: `true` or `"true"`.
fn human_agent_enabled(ctx: &ChannelContext) -> bool {
    match ctx.settings.get(HUMAN_AGENT_SETTING) {
        Some(serde_json::Value::Bool(enabled)) => *enabled,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    }
}

/// `RESPONSE` by default, `UPDATE` when `extensions.messaging_type` asks for it, `MESSAGE_TAG`
/// with `HUMAN_AGENT` for the tag (when the channel enables it).
fn messaging_type<'a>(
    ctx: &ChannelContext,
    msg: &'a OutboundMessage,
) -> Result<(&'a str, Option<&'static str>), ConnectorError> {
    match msg.tag.as_deref() {
        Some(HUMAN_AGENT) if human_agent_enabled(ctx) => Ok(("MESSAGE_TAG", Some(HUMAN_AGENT))),
        Some(HUMAN_AGENT) => Err(ConnectorError::config(
            HUMAN_AGENT_SETTING,
            "must be true to send with the HUMAN_AGENT tag (the page needs the Human Agent permission)",
        )),
        Some(other) => Err(unsupported(format!(
            "message tag {other:?} on Messenger (only HUMAN_AGENT)"
        ))),
        None => match msg.extensions.get("messaging_type") {
            None => Ok(("RESPONSE", None)),
            Some(serde_json::Value::String(t)) if t == "RESPONSE" || t == "UPDATE" => {
                Ok((t.as_str(), None))
            }
            Some(_) => Err(unsupported(
                "extension messaging_type other than RESPONSE or UPDATE (use the tag for MESSAGE_TAG)",
            )),
        },
    }
}

fn check_text(text: &str) -> Result<(), ConnectorError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(unsupported(format!(
            "text of {chars} characters (Messenger allows {MAX_TEXT_CHARS})"
        )));
    }
    if chars == 0 {
        return Err(unsupported("empty text"));
    }
    Ok(())
}

fn attachment(media: &Media) -> Result<AttachmentOut<'_>, ConnectorError> {
    let kind = match media.kind {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Document => "file",
        MediaKind::Sticker => return Err(unsupported("sending stickers on Messenger")),
    };
    if media.caption.is_some() {
        return Err(unsupported(
            "a caption on Messenger media (attachments have none; send the text separately)",
        ));
    }
    let payload = match &media.source {
        MediaSource::Url(url) => AttachmentPayload {
            url: Some(url),
            is_reusable: Some(true),
            attachment_id: None,
        },
        MediaSource::ProviderId(id) => AttachmentPayload {
            url: None,
            is_reusable: None,
            attachment_id: Some(id),
        },
    };
    Ok(AttachmentOut { kind, payload })
}

/// Interactive content as text with quick replies: buttons one for one, list rows flattened
/// (sections, descriptions and the list button label are not shown).
fn quick_replies(i: &Interactive) -> Result<(String, Vec<QuickReplyOut<'_>>), ConnectorError> {
    let replies: Vec<QuickReplyOut<'_>> = match &i.action {
        InteractiveAction::Buttons { buttons } => buttons
            .iter()
            .map(|b| QuickReplyOut {
                content_type: "text",
                title: &b.title,
                payload: &b.id,
            })
            .collect(),
        InteractiveAction::List { sections, .. } => sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| QuickReplyOut {
                content_type: "text",
                title: &r.title,
                payload: &r.id,
            })
            .collect(),
    };
    if replies.is_empty() || replies.len() > MAX_QUICK_REPLIES {
        return Err(unsupported(format!(
            "{} choices (Messenger quick replies allow 1 to {MAX_QUICK_REPLIES})",
            replies.len()
        )));
    }
    let text = [
        i.header.as_deref(),
        Some(i.body.as_str()),
        i.footer.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join("\n\n");
    check_text(&text)?;
    Ok((text, replies))
}

/// Builds the send request.
pub(crate) fn build(
    ctx: &ChannelContext,
    msg: &OutboundMessage,
) -> Result<HttpRequest, ConnectorError> {
    let graph = Graph::from_ctx(ctx)?;
    let page = path_id("page_id", ctx.setting("page_id")?)?;
    if msg.to.channel != Channel::Messenger || msg.to.kind != AddressKind::PageScopedId {
        return Err(unsupported(format!(
            "recipient {}:{:?} on Messenger (a page-scoped id)",
            msg.to.channel, msg.to.kind
        )));
    }
    if msg.to.id.is_empty() {
        return Err(unsupported("an empty recipient id"));
    }
    let (messaging_type, tag) = messaging_type(ctx, msg)?;
    let interactive_text;
    let message = match &msg.content {
        Content::Text { text, .. } => {
            check_text(text)?;
            MessageOut {
                text: Some(text),
                attachment: None,
                quick_replies: Vec::new(),
            }
        }
        Content::Media(media) => MessageOut {
            text: None,
            attachment: Some(attachment(media)?),
            quick_replies: Vec::new(),
        },
        Content::Interactive(interactive) => {
            let (text, replies) = quick_replies(interactive)?;
            interactive_text = text;
            MessageOut {
                text: Some(&interactive_text),
                attachment: None,
                quick_replies: replies,
            }
        }
        Content::Template(_) => {
            return Err(unsupported(
                "templates on Messenger (use the HUMAN_AGENT tag)",
            ));
        }
        Content::Location(_) | Content::Contacts { .. } => {
            return Err(unsupported("locations and contacts on Messenger"));
        }
        Content::Reply(_) => return Err(unsupported("sending a reply selection")),
        Content::Unsupported { provider_type } => {
            return Err(unsupported(format!("sending {provider_type:?} content")));
        }
        _ => return Err(unsupported("this content on Messenger")),
    };
    let env = Envelope {
        recipient: RecipientOut { id: &msg.to.id },
        messaging_type,
        tag,
        message,
    };
    let body = serde_json::to_vec(&env).map_err(|e| ConnectorError::malformed(e.to_string()))?;
    Ok(HttpRequest {
        method: Method::Post,
        url: graph.url(&format!("{page}/messages")),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    })
}

/// Reads the answer to a send: `message_id` on success, a classified error otherwise.
pub(crate) fn parse_response(resp: &HttpResponse) -> Result<SendReceipt, ProviderError> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(default, borrow)]
        message_id: Option<std::borrow::Cow<'a, str>>,
        #[serde(default, borrow)]
        recipient_id: Option<std::borrow::Cow<'a, str>>,
    }
    if !resp.is_success() || graph::has_error_object(&resp.body) {
        return Err(graph::provider_error(resp, classify));
    }
    let answer: Answer<'_> =
        serde_json::from_slice(&resp.body).map_err(|_| graph::missing_id(resp, "message_id"))?;
    let id = answer
        .message_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| graph::missing_id(resp, "message_id"))?;
    let mut receipt = SendReceipt::new(id.into_owned(), DeliveryStatus::Accepted);
    if let Some(recipient) = answer.recipient_id {
        receipt
            .extensions
            .insert("recipient_id".into(), recipient.as_ref().into());
    }
    Ok(receipt)
}
