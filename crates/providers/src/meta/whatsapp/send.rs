//! `POST {base}/{version}/{phone_number_id}/messages`: an [`OutboundMessage`] as a Cloud API
//! message object, and the answer as a receipt.

use serde::{Serialize, Serializer};
use switchboard_core::{
    AddressKind, Channel, ChannelContext, ConnectorError, ContactCard, Content, DeliveryStatus,
    HttpRequest, HttpResponse, Interactive, InteractiveAction, Location, Media, MediaKind,
    MediaSource, Method, OutboundMessage, ProviderError, SendReceipt, Template, TemplateButton,
    TemplateHeader, TemplateParameter, TemplateValue,
};

use super::errors::classify;
use crate::meta::graph::{self, Graph, path_id};

/// WhatsApp's longest text body, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 4096;
/// Reply buttons per interactive message.
const MAX_BUTTONS: usize = 3;
/// Rows across all sections of a list.
const MAX_LIST_ROWS: usize = 10;

fn is_none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn as_string<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[derive(Serialize)]
struct Envelope<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    #[serde(skip_serializing_if = "is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    recipient: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    context: Option<ContextOut<'a>>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "is_none")]
    text: Option<TextOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    image: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    video: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    audio: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    document: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    sticker: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    location: Option<LocationOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    contacts: Option<Vec<ContactOut<'a>>>,
    #[serde(skip_serializing_if = "is_none")]
    template: Option<TemplateOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    interactive: Option<InteractiveOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    reaction: Option<ReactionOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    biz_opaque_callback_data: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    fn new(kind: &'static str) -> Self {
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: None,
            recipient: None,
            context: None,
            kind,
            text: None,
            image: None,
            video: None,
            audio: None,
            document: None,
            sticker: None,
            location: None,
            contacts: None,
            template: None,
            interactive: None,
            reaction: None,
            biz_opaque_callback_data: None,
        }
    }
}

#[derive(Serialize)]
struct ContextOut<'a> {
    message_id: &'a str,
}

#[derive(Serialize)]
struct TextOut<'a> {
    body: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    preview_url: bool,
}

#[derive(Serialize)]
struct MediaOut<'a> {
    #[serde(skip_serializing_if = "is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    caption: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    filename: Option<&'a str>,
}

#[derive(Serialize)]
struct LocationOut<'a> {
    latitude: f64,
    longitude: f64,
    #[serde(skip_serializing_if = "is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    address: Option<&'a str>,
}

#[derive(Serialize)]
struct ContactOut<'a> {
    name: ContactNameOut<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    phones: Vec<PhoneOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    emails: Vec<EmailOut<'a>>,
}

#[derive(Serialize)]
struct ContactNameOut<'a> {
    formatted_name: &'a str,
    first_name: &'a str,
}

#[derive(Serialize)]
struct PhoneOut<'a> {
    phone: &'a str,
}

#[derive(Serialize)]
struct EmailOut<'a> {
    email: &'a str,
}

#[derive(Serialize)]
struct TemplateOut<'a> {
    name: &'a str,
    language: LanguageOut<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    components: Vec<ComponentOut<'a>>,
}

#[derive(Serialize)]
struct LanguageOut<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct ComponentOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "is_none")]
    sub_type: Option<&'static str>,
    #[serde(skip_serializing_if = "is_none", serialize_with = "opt_index")]
    index: Option<u32>,
    parameters: Vec<ParamOut<'a>>,
}

fn opt_index<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => as_string(v, s),
        None => s.serialize_none(),
    }
}

#[derive(Serialize)]
struct ParamOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "is_none")]
    parameter_name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    coupon_code: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    currency: Option<CurrencyOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    date_time: Option<DateTimeOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    image: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    video: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    document: Option<MediaOut<'a>>,
    #[serde(skip_serializing_if = "is_none")]
    location: Option<LocationOut<'a>>,
}

impl<'a> ParamOut<'a> {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            parameter_name: None,
            text: None,
            payload: None,
            coupon_code: None,
            currency: None,
            date_time: None,
            image: None,
            video: None,
            document: None,
            location: None,
        }
    }
}

#[derive(Serialize)]
struct CurrencyOut<'a> {
    fallback_value: &'a str,
    code: &'a str,
    amount_1000: i64,
}

#[derive(Serialize)]
struct DateTimeOut<'a> {
    fallback_value: &'a str,
}

#[derive(Serialize)]
struct InteractiveOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "is_none")]
    header: Option<HeaderOut<'a>>,
    body: BodyOut<'a>,
    #[serde(skip_serializing_if = "is_none")]
    footer: Option<BodyOut<'a>>,
    action: ActionOut<'a>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct ActionOut<'a> {
    #[serde(skip_serializing_if = "is_none")]
    button: Option<&'a str>,
    #[serde(skip_serializing_if = "is_none")]
    buttons: Option<Vec<ButtonOut<'a>>>,
    #[serde(skip_serializing_if = "is_none")]
    sections: Option<Vec<SectionOut<'a>>>,
}

#[derive(Serialize)]
struct ButtonOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    reply: ReplyOut<'a>,
}

#[derive(Serialize)]
struct ReplyOut<'a> {
    id: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
struct SectionOut<'a> {
    #[serde(skip_serializing_if = "is_none")]
    title: Option<&'a str>,
    rows: Vec<RowOut<'a>>,
}

#[derive(Serialize)]
struct RowOut<'a> {
    id: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "is_none")]
    description: Option<&'a str>,
}

#[derive(Serialize)]
struct ReactionOut<'a> {
    message_id: &'a str,
    emoji: &'a str,
}

fn unsupported(what: impl Into<String>) -> ConnectorError {
    ConnectorError::unsupported(what)
}

/// Builds the send request.
pub(crate) fn build(
    ctx: &ChannelContext,
    msg: &OutboundMessage,
) -> Result<HttpRequest, ConnectorError> {
    let graph = Graph::from_ctx(ctx)?;
    let number = path_id("phone_number_id", ctx.setting("phone_number_id")?)?;

    let mut env = content_envelope(msg)?;
    if msg.to.channel != Channel::WhatsApp {
        return Err(unsupported(format!(
            "a {} recipient on WhatsApp",
            msg.to.channel
        )));
    }
    match msg.to.kind {
        AddressKind::WhatsAppId | AddressKind::Phone => env.to = Some(&msg.to.id),
        AddressKind::BusinessScopedUserId => env.recipient = Some(&msg.to.id),
        other => {
            return Err(unsupported(format!(
                "recipient kind {other:?} on WhatsApp (wa_id, phone or business-scoped user id)"
            )));
        }
    }
    if msg.to.id.is_empty() {
        return Err(unsupported("an empty recipient id"));
    }
    env.biz_opaque_callback_data = match msg.extensions.get("biz_opaque_callback_data") {
        // The gateway's reference rides here when the caller chose none (see `CLIENT_REFERENCE`).
        None => msg
            .extensions
            .get(switchboard_core::CLIENT_REFERENCE)
            .and_then(serde_json::Value::as_str),
        Some(serde_json::Value::String(data)) => Some(data),
        Some(_) => {
            return Err(unsupported(
                "extension biz_opaque_callback_data that is not a string",
            ));
        }
    };
    let body = serde_json::to_vec(&env).map_err(|e| ConnectorError::malformed(e.to_string()))?;
    let mut path = String::with_capacity(number.len() + 9);
    path.push_str(number);
    path.push_str("/messages");
    Ok(HttpRequest {
        method: Method::Post,
        url: graph.url(&path),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    })
}

fn content_envelope(msg: &OutboundMessage) -> Result<Envelope<'_>, ConnectorError> {
    let mut env = match &msg.content {
        Content::Text { text, preview_url } => {
            let chars = text.chars().count();
            if chars > MAX_TEXT_CHARS {
                return Err(unsupported(format!(
                    "text of {chars} characters (WhatsApp allows {MAX_TEXT_CHARS})"
                )));
            }
            if text.is_empty() {
                return Err(unsupported("empty text"));
            }
            let mut env = Envelope::new("text");
            env.text = Some(TextOut {
                body: text,
                preview_url: *preview_url,
            });
            env
        }
        Content::Media(media) => media_envelope(media)?,
        Content::Location(location) => {
            let mut env = Envelope::new("location");
            env.location = Some(location_out(location)?);
            env
        }
        Content::Contacts { contacts } => {
            if contacts.is_empty() {
                return Err(unsupported("a contacts message without contacts"));
            }
            let mut env = Envelope::new("contacts");
            env.contacts = Some(contacts.iter().map(contact_out).collect());
            env
        }
        Content::Template(template) => {
            let mut env = Envelope::new("template");
            env.template = Some(template_out(template)?);
            env
        }
        Content::Interactive(interactive) => {
            let mut env = Envelope::new("interactive");
            env.interactive = Some(interactive_out(interactive)?);
            env
        }
        Content::Reaction { message_id, emoji } => {
            if message_id.is_empty() {
                return Err(unsupported(
                    "a reaction without the id of the message reacted to",
                ));
            }
            let mut env = Envelope::new("reaction");
            // Meta removes a reaction when the emoji is empty.
            env.reaction = Some(ReactionOut {
                message_id,
                emoji: emoji.as_deref().unwrap_or(""),
            });
            env
        }
        Content::Reply(_) => return Err(unsupported("sending a reply selection")),
        Content::Unsupported { provider_type } => {
            return Err(unsupported(format!("sending {provider_type:?} content")));
        }
        _ => return Err(unsupported("this content on WhatsApp")),
    };
    env.context = msg
        .reply_to
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|message_id| ContextOut { message_id });
    Ok(env)
}

fn media_out<'a>(media: &'a Media, allow_caption: bool) -> Result<MediaOut<'a>, ConnectorError> {
    let (id, link) = match &media.source {
        MediaSource::ProviderId(id) => (Some(id.as_str()), None),
        MediaSource::Url(url) => (None, Some(url.as_str())),
    };
    if media.caption.is_some() && !allow_caption {
        return Err(unsupported(format!(
            "a caption on {:?} media (WhatsApp captions images, videos and documents)",
            media.kind
        )));
    }
    Ok(MediaOut {
        id,
        link,
        caption: media.caption.as_deref(),
        filename: if media.kind == MediaKind::Document {
            media.filename.as_deref()
        } else {
            None
        },
    })
}

fn media_envelope(media: &Media) -> Result<Envelope<'_>, ConnectorError> {
    let captioned = matches!(
        media.kind,
        MediaKind::Image | MediaKind::Video | MediaKind::Document
    );
    let out = Some(media_out(media, captioned)?);
    Ok(match media.kind {
        MediaKind::Image => Envelope {
            image: out,
            ..Envelope::new("image")
        },
        MediaKind::Video => Envelope {
            video: out,
            ..Envelope::new("video")
        },
        MediaKind::Audio => Envelope {
            audio: out,
            ..Envelope::new("audio")
        },
        MediaKind::Document => Envelope {
            document: out,
            ..Envelope::new("document")
        },
        MediaKind::Sticker => Envelope {
            sticker: out,
            ..Envelope::new("sticker")
        },
    })
}

fn location_out(location: &Location) -> Result<LocationOut<'_>, ConnectorError> {
    if !(location.latitude.is_finite() && location.longitude.is_finite()) {
        return Err(unsupported("a location with non-finite coordinates"));
    }
    Ok(LocationOut {
        latitude: location.latitude,
        longitude: location.longitude,
        name: location.name.as_deref(),
        address: location.address.as_deref(),
    })
}

fn contact_out(card: &ContactCard) -> ContactOut<'_> {
    ContactOut {
        name: ContactNameOut {
            formatted_name: &card.name,
            first_name: &card.name,
        },
        phones: card.phones.iter().map(|phone| PhoneOut { phone }).collect(),
        emails: card.emails.iter().map(|email| EmailOut { email }).collect(),
    }
}

fn template_out(t: &Template) -> Result<TemplateOut<'_>, ConnectorError> {
    if t.name.is_empty() || t.language.is_empty() {
        return Err(unsupported("a template without name or language"));
    }
    let mut components = Vec::with_capacity(2 + t.buttons.len());
    if let Some(header) = &t.header {
        let parameters = match header {
            TemplateHeader::Text { parameters } => {
                parameters.iter().map(param_out).collect::<Result<_, _>>()?
            }
            TemplateHeader::Media(media) => vec![media_param(media)?],
            TemplateHeader::Location(location) => {
                let mut p = ParamOut::new("location");
                p.location = Some(location_out(location)?);
                vec![p]
            }
        };
        components.push(ComponentOut {
            kind: "header",
            sub_type: None,
            index: None,
            parameters,
        });
    }
    if !t.body.is_empty() {
        components.push(ComponentOut {
            kind: "body",
            sub_type: None,
            index: None,
            parameters: t.body.iter().map(param_out).collect::<Result<_, _>>()?,
        });
    }
    for button in &t.buttons {
        let (sub_type, index, param) = match button {
            TemplateButton::QuickReply { index, payload } => {
                let mut p = ParamOut::new("payload");
                p.payload = Some(payload);
                ("quick_reply", *index, p)
            }
            TemplateButton::Url { index, text } => {
                let mut p = ParamOut::new("text");
                p.text = Some(text);
                ("url", *index, p)
            }
            TemplateButton::CopyCode { index, code } => {
                let mut p = ParamOut::new("coupon_code");
                p.coupon_code = Some(code);
                ("copy_code", *index, p)
            }
        };
        components.push(ComponentOut {
            kind: "button",
            sub_type: Some(sub_type),
            index: Some(index),
            parameters: vec![param],
        });
    }
    Ok(TemplateOut {
        name: &t.name,
        language: LanguageOut { code: &t.language },
        components,
    })
}

fn param_out(p: &TemplateParameter) -> Result<ParamOut<'_>, ConnectorError> {
    let mut out = match &p.value {
        TemplateValue::Text { text } => {
            let mut out = ParamOut::new("text");
            out.text = Some(text);
            out
        }
        TemplateValue::Currency {
            fallback,
            code,
            amount_1000,
        } => {
            let mut out = ParamOut::new("currency");
            out.currency = Some(CurrencyOut {
                fallback_value: fallback,
                code,
                amount_1000: *amount_1000,
            });
            out
        }
        TemplateValue::DateTime { fallback } => {
            let mut out = ParamOut::new("date_time");
            out.date_time = Some(DateTimeOut {
                fallback_value: fallback,
            });
            out
        }
        TemplateValue::Media(media) => media_param(media)?,
    };
    out.parameter_name = p.name.as_deref();
    Ok(out)
}

fn media_param(media: &Media) -> Result<ParamOut<'_>, ConnectorError> {
    // Template media carries no caption; a document keeps its file name.
    let (id, link) = match &media.source {
        MediaSource::ProviderId(id) => (Some(id.as_str()), None),
        MediaSource::Url(url) => (None, Some(url.as_str())),
    };
    let out = MediaOut {
        id,
        link,
        caption: None,
        filename: (media.kind == MediaKind::Document)
            .then_some(media.filename.as_deref())
            .flatten(),
    };
    Ok(match media.kind {
        MediaKind::Image => ParamOut {
            image: Some(out),
            ..ParamOut::new("image")
        },
        MediaKind::Video => ParamOut {
            video: Some(out),
            ..ParamOut::new("video")
        },
        MediaKind::Document => ParamOut {
            document: Some(out),
            ..ParamOut::new("document")
        },
        other => {
            return Err(unsupported(format!(
                "{other:?} media in a template (image, video or document)"
            )));
        }
    })
}

fn interactive_out(i: &Interactive) -> Result<InteractiveOut<'_>, ConnectorError> {
    if i.body.is_empty() {
        return Err(unsupported("an interactive message without body text"));
    }
    let (kind, action) = match &i.action {
        InteractiveAction::Buttons { buttons } => {
            if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
                return Err(unsupported(format!(
                    "{} reply buttons (WhatsApp allows 1 to {MAX_BUTTONS})",
                    buttons.len()
                )));
            }
            let buttons = buttons
                .iter()
                .map(|b| ButtonOut {
                    kind: "reply",
                    reply: ReplyOut {
                        id: &b.id,
                        title: &b.title,
                    },
                })
                .collect();
            (
                "button",
                ActionOut {
                    button: None,
                    buttons: Some(buttons),
                    sections: None,
                },
            )
        }
        InteractiveAction::List { button, sections } => {
            let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
            if rows == 0 || rows > MAX_LIST_ROWS {
                return Err(unsupported(format!(
                    "a list of {rows} rows (WhatsApp allows 1 to {MAX_LIST_ROWS})"
                )));
            }
            let sections = sections
                .iter()
                .map(|s| SectionOut {
                    title: s.title.as_deref(),
                    rows: s
                        .rows
                        .iter()
                        .map(|r| RowOut {
                            id: &r.id,
                            title: &r.title,
                            description: r.description.as_deref(),
                        })
                        .collect(),
                })
                .collect();
            (
                "list",
                ActionOut {
                    button: Some(button),
                    buttons: None,
                    sections: Some(sections),
                },
            )
        }
    };
    Ok(InteractiveOut {
        kind,
        header: i
            .header
            .as_deref()
            .map(|text| HeaderOut { kind: "text", text }),
        body: BodyOut { text: &i.body },
        footer: i.footer.as_deref().map(|text| BodyOut { text }),
        action,
    })
}

/// Reads the answer to a send: `messages[0].id` on success, a classified error otherwise.
pub(crate) fn parse_response(resp: &HttpResponse) -> Result<SendReceipt, ProviderError> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(default, borrow)]
        messages: Vec<AnswerMessage<'a>>,
        #[serde(default, borrow)]
        contacts: Vec<AnswerContact<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct AnswerMessage<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
        #[serde(default, borrow)]
        message_status: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct AnswerContact<'a> {
        #[serde(default, borrow)]
        wa_id: Option<std::borrow::Cow<'a, str>>,
        #[serde(default, borrow)]
        user_id: Option<std::borrow::Cow<'a, str>>,
    }

    if !resp.is_success() || graph::has_error_object(&resp.body) {
        return Err(graph::provider_error(resp, classify));
    }
    let answer: Answer<'_> = serde_json::from_slice(&resp.body)
        .map_err(|_| graph::missing_id(resp, "messages[0].id"))?;
    let mut messages = answer.messages.into_iter();
    let first = messages
        .next()
        .filter(|m| !m.id.is_empty())
        .ok_or_else(|| graph::missing_id(resp, "messages[0].id"))?;
    let mut receipt = SendReceipt::new(first.id.into_owned(), DeliveryStatus::Accepted);
    if let Some(status) = first.message_status {
        receipt
            .extensions
            .insert("message_status".into(), status.as_ref().into());
    }
    if let Some(contact) = answer.contacts.into_iter().next() {
        if let Some(wa_id) = contact.wa_id {
            receipt
                .extensions
                .insert("wa_id".into(), wa_id.as_ref().into());
        }
        if let Some(user_id) = contact.user_id {
            receipt
                .extensions
                .insert("user_id".into(), user_id.as_ref().into());
        }
    }
    Ok(receipt)
}
