//! What a message says: text, media, location, templates, interactive messages.

use serde::{Deserialize, Serialize};

/// The body of a message, inbound or outbound.
///
/// JSON shape: an object tagged by `"type"`, e.g. `{"type": "text", "text": "hi"}` or
/// `{"type": "media", "kind": "image", "url": "https://…", "caption": "…"}`.
///
/// ```
/// use switchboard_core::Content;
/// let c: Content = serde_json::from_str(r#"{"type":"text","text":"hello"}"#).unwrap();
/// assert_eq!(c, Content::text("hello"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    /// Plain text.
    Text {
        /// The text, as characters (not bytes).
        text: String,
        /// Ask the provider to render a link preview (WhatsApp `preview_url`).
        #[serde(default, skip_serializing_if = "is_false")]
        preview_url: bool,
    },
    /// An image, video, audio clip, document or sticker.
    Media(Media),
    /// A geographic location.
    Location(Location),
    /// One or more contact cards (vCard-like).
    Contacts {
        /// The shared contacts.
        contacts: Vec<ContactCard>,
    },
    /// A pre-approved template (WhatsApp message template, Twilio Content, Sinch template).
    Template(Template),
    /// Reply buttons or a list the recipient picks from.
    Interactive(Interactive),
    /// The recipient's answer to an interactive message or a template quick-reply button.
    Reply(SelectedReply),
    /// A reaction to an earlier message, sent by the business (customers' reactions arrive as
    /// [`crate::InboundEvent::Reaction`]).
    Reaction {
        /// The provider id of the message reacted to.
        message_id: String,
        /// The emoji; `None` removes an earlier reaction.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    /// A message type the connector does not normalize; `provider_type` names it.
    Unsupported {
        /// The provider's own name for the type, e.g. `"ephemeral"` or `"order"`.
        provider_type: String,
    },
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Content {
    /// Plain text without link preview.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text {
            text: text.into(),
            preview_url: false,
        }
    }

    /// The text a human reads first: the text body, a media caption, a reply title.
    pub fn summary_text(&self) -> Option<&str> {
        match self {
            Content::Text { text, .. } => Some(text),
            Content::Media(media) => media.caption.as_deref(),
            Content::Reply(reply) => Some(&reply.title),
            Content::Interactive(interactive) => Some(&interactive.body),
            _ => None,
        }
    }
}

/// The kind of a media attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video clip.
    Video,
    /// An audio clip or voice note.
    Audio,
    /// A file such as a PDF.
    Document,
    /// A sticker.
    Sticker,
}

/// Where media bytes are: a URL anyone with the link (or the provider's token) can fetch, or an
/// id in the provider's media store (WhatsApp media id), fetched through the connector's media
/// download steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    /// A fetchable URL.
    Url(String),
    /// A provider media id.
    ProviderId(String),
}

/// A media attachment. JSON: `{"kind": "image", "url": "…"}` or `{"kind": "image", "provider_id": "…"}`
/// plus the optional fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// What the media is.
    pub kind: MediaKind,
    /// Where its bytes are.
    #[serde(flatten)]
    pub source: MediaSource,
    /// MIME type, e.g. `image/jpeg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// A caption shown with the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// The file name shown for documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Hex or base64 SHA-256 of the bytes, as the provider reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Media {
    /// Media by URL with no optional fields set.
    pub fn from_url(kind: MediaKind, url: impl Into<String>) -> Self {
        Self::new(kind, MediaSource::Url(url.into()))
    }

    /// Media by provider id with no optional fields set.
    pub fn from_provider_id(kind: MediaKind, id: impl Into<String>) -> Self {
        Self::new(kind, MediaSource::ProviderId(id.into()))
    }

    fn new(kind: MediaKind, source: MediaSource) -> Self {
        Self {
            kind,
            source,
            mime_type: None,
            caption: None,
            filename: None,
            sha256: None,
        }
    }
}

/// A point on the map, optionally named.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// A place name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A shared contact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    /// The formatted name.
    pub name: String,
    /// Phone numbers as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
}

/// A pre-approved template with typed parameters.
///
/// `name` is the provider's template identifier: the WhatsApp template name, a Twilio Content
/// SID (`HX…`), a Sinch template id.
///
/// ```
/// use switchboard_core::{Template, TemplateParameter, TemplateValue};
/// let t = Template {
///     name: "order_update".into(),
///     language: "en_US".into(),
///     header: None,
///     body: vec![TemplateParameter::text("42")],
///     buttons: vec![],
/// };
/// assert_eq!(t.body[0].value, TemplateValue::Text { text: "42".into() });
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// The provider's template identifier.
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// The header, when the template has a variable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<TemplateHeader>,
    /// Body parameters in order (`{{1}}`, `{{2}}`, …) or named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<TemplateParameter>,
    /// Parameters of buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateButton>,
}

/// A template's variable header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateHeader {
    /// A text header with its parameters.
    Text {
        /// Parameters of the header text.
        parameters: Vec<TemplateParameter>,
    },
    /// An image, video or document header.
    Media(Media),
    /// A location header.
    Location(Location),
}

/// One template parameter: an optional name (for named parameters) and a typed value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateParameter {
    /// The parameter name for templates with named parameters; positional when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value.
    #[serde(flatten)]
    pub value: TemplateValue,
}

impl TemplateParameter {
    /// A positional text parameter.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            name: None,
            value: TemplateValue::Text { text: text.into() },
        }
    }
}

/// A typed template parameter value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateValue {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An amount of money, localized by the provider where it can.
    Currency {
        /// Shown where localization is not possible.
        fallback: String,
        /// ISO 4217 code.
        code: String,
        /// The amount times 1000 (WhatsApp's `amount_1000`).
        amount_1000: i64,
    },
    /// A date and time, shown as given.
    DateTime {
        /// The text shown.
        fallback: String,
    },
    /// Media in a parameter.
    Media(Media),
}

/// A template button's parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateButton {
    /// A quick-reply button's payload, sent back when the user taps it.
    QuickReply {
        /// The button's position in the template, from 0.
        index: u32,
        /// The payload.
        payload: String,
    },
    /// The variable suffix of a URL button.
    Url {
        /// The button's position in the template, from 0.
        index: u32,
        /// The text appended to the template's URL.
        text: String,
    },
    /// The code of a copy-code button.
    CopyCode {
        /// The button's position in the template, from 0.
        index: u32,
        /// The code.
        code: String,
    },
}

/// An interactive message: reply buttons or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    /// The body text.
    pub body: String,
    /// A text header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The buttons or list.
    pub action: InteractiveAction,
}

/// What the recipient picks from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InteractiveAction {
    /// Up to three reply buttons (WhatsApp), more on other channels.
    Buttons {
        /// The buttons.
        buttons: Vec<ReplyButton>,
    },
    /// A list with sections of rows.
    List {
        /// The label of the button that opens the list.
        button: String,
        /// The sections.
        sections: Vec<ListSection>,
    },
}

/// A reply button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    /// Returned in the reply when tapped.
    pub id: String,
    /// The label.
    pub title: String,
}

/// A section of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// The section title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// A row of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// Returned in the reply when picked.
    pub id: String,
    /// The label.
    pub title: String,
    /// A second line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The recipient's choice: a reply button, a list row or a template quick-reply button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectedReply {
    /// The button or row id, or the quick-reply payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The label the recipient saw.
    pub title: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_json_shape_flattens_the_source() {
        let mut m = Media::from_url(MediaKind::Image, "https://example.com/a.jpg");
        m.caption = Some("A".into());
        let c = Content::Media(m);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"type": "media", "kind": "image", "url": "https://example.com/a.jpg", "caption": "A"})
        );
        let by_id: Content = serde_json::from_value(
            json!({"type": "media", "kind": "document", "provider_id": "123", "filename": "x.pdf"}),
        )
        .unwrap();
        let Content::Media(m) = by_id else {
            panic!("not media")
        };
        assert_eq!(m.source, MediaSource::ProviderId("123".into()));
    }

    #[test]
    fn template_parameters_are_typed() {
        let t: Template = serde_json::from_value(json!({
            "name": "t", "language": "en",
            "header": {"type": "media", "kind": "image", "url": "https://x/y.png"},
            "body": [{"type": "text", "text": "a"}, {"name": "price", "type": "currency", "fallback": "$1", "code": "USD", "amount_1000": 1000}],
            "buttons": [{"type": "quick_reply", "index": 0, "payload": "yes"}]
        }))
        .unwrap();
        assert!(matches!(t.header, Some(TemplateHeader::Media(_))));
        assert_eq!(t.body[1].name.as_deref(), Some("price"));
        assert!(matches!(
            t.body[1].value,
            TemplateValue::Currency {
                amount_1000: 1000,
                ..
            }
        ));
    }

    #[test]
    fn unknown_content_type_is_an_error_not_a_panic() {
        assert!(serde_json::from_value::<Content>(json!({"type": "hologram"})).is_err());
    }
}
