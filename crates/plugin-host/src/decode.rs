//! Decoding a plugin's `parse-webhook` outcome (JSON in core's serde shape) with less work
//! than core's derived `Deserialize`.
//!
//! Core's `InboundEvent` is internally tagged (`"type": "message"`), and serde decodes an
//! internally tagged enum by first buffering the whole object into an intermediate tree, then
//! decoding the variant from it: every event is walked twice, with allocations for the tree.
//! The plugin SDK serializes with serde, which writes the tag first, so the host can read the
//! tag and then decode the rest of the object straight into the variant's struct, with core's
//! own derived `Deserialize` for that struct (same fields, same defaults, unknown fields ignored
//! exactly as on the serde path). Messages get the same treatment one level down: their
//! `content` (also internally tagged) is read tag-first into a mirror of `InboundMessage` whose
//! struct literal below fails to compile when core adds a field, and whose mirrors refuse any
//! field they do not know (so the serde path takes over rather than anything being dropped).
//!
//! Anything else (the tag not first, an unknown event type, a field of `WebhookOutcome` this
//! host does not know) fails the fast path and the document is decoded again with core's
//! `Deserialize`, so the result and the errors are the serde path's. `benches/host.rs`
//! (`outcome_json/decode` vs `outcome_json/decode_fast`) measures the gain.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use switchboard_core::{
    Address, Consent, ContactCard, Content, Extensions, InboundEvent, InboundMessage, Interactive,
    Location, Media, Reaction, SelectedReply, SkippedItem, StatusUpdate, StatusWatermark, Template,
    Timestamp, WebhookOutcome, WebhookReply,
};

/// Decodes an outcome: the fast path, or core's `Deserialize` when it does not apply.
pub(crate) fn outcome(json: &str) -> Result<WebhookOutcome, serde_json::Error> {
    match fast(json) {
        Some(outcome) => Ok(outcome),
        None => serde_json::from_str(json),
    }
}

/// The fast path alone: `None` when it does not apply.
pub(crate) fn fast(json: &str) -> Option<WebhookOutcome> {
    let FastOutcome {
        events,
        reply,
        skipped,
    } = serde_json::from_str(json).ok()?;
    Some(WebhookOutcome {
        events: events.into_iter().map(|e| e.0).collect(),
        reply,
        skipped,
    })
}

/// `WebhookOutcome`'s fields; an unknown one (core grew) sends the document to serde.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastOutcome {
    events: Vec<FastEvent>,
    reply: WebhookReply,
    #[serde(default)]
    skipped: Vec<SkippedItem>,
}

struct FastEvent(InboundEvent);

/// The tag key; anything else first fails the fast path.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum TagKey {
    #[serde(rename = "type")]
    Type,
}

/// `InboundEvent`'s variants as its `rename_all = "snake_case"` names them.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Message,
    Status,
    OptOut,
    OptIn,
    Reaction,
    Watermark,
}

impl<'de> Deserialize<'de> for FastEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = FastEvent;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an inbound event with its \"type\" first")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastEvent, A::Error> {
        let Some(TagKey::Type) = map.next_key::<TagKey>()? else {
            return Err(de::Error::custom("no \"type\""));
        };
        let kind: Kind = map.next_value()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(FastEvent(match kind {
            Kind::Message => InboundEvent::Message(FastMessage::deserialize(rest)?.into()),
            Kind::Status => InboundEvent::Status(StatusUpdate::deserialize(rest)?),
            Kind::OptOut => InboundEvent::OptOut(Consent::deserialize(rest)?),
            Kind::OptIn => InboundEvent::OptIn(Consent::deserialize(rest)?),
            Kind::Reaction => InboundEvent::Reaction(Reaction::deserialize(rest)?),
            Kind::Watermark => InboundEvent::Watermark(StatusWatermark::deserialize(rest)?),
        }))
    }
}

/// `InboundMessage` with a tag-first `content`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastMessage {
    id: String,
    from: Address,
    to: Address,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    content: FastContent,
    #[serde(default)]
    profile_name: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    extensions: Extensions,
}

impl From<FastMessage> for InboundMessage {
    fn from(m: FastMessage) -> Self {
        // A struct literal on purpose: a field added to core breaks the build here.
        InboundMessage {
            id: m.id,
            from: m.from,
            to: m.to,
            timestamp: m.timestamp,
            content: m.content.0,
            profile_name: m.profile_name,
            reply_to: m.reply_to,
            extensions: m.extensions,
        }
    }
}

struct FastContent(Content);

/// `Content`'s variants as its `rename_all = "snake_case"` names them.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ContentKind {
    Text,
    Media,
    Location,
    Contacts,
    Template,
    Interactive,
    Reply,
    Reaction,
    Unsupported,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextFields {
    text: String,
    #[serde(default)]
    preview_url: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactsFields {
    contacts: Vec<ContactCard>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactionFields {
    message_id: String,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsupportedFields {
    provider_type: String,
}

impl<'de> Deserialize<'de> for FastContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = FastContent;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("message content with its \"type\" first")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastContent, A::Error> {
        let Some(TagKey::Type) = map.next_key::<TagKey>()? else {
            return Err(de::Error::custom("no \"type\""));
        };
        let kind: ContentKind = map.next_value()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(FastContent(match kind {
            ContentKind::Text => {
                let TextFields { text, preview_url } = TextFields::deserialize(rest)?;
                Content::Text { text, preview_url }
            }
            ContentKind::Media => Content::Media(Media::deserialize(rest)?),
            ContentKind::Location => Content::Location(Location::deserialize(rest)?),
            ContentKind::Contacts => Content::Contacts {
                contacts: ContactsFields::deserialize(rest)?.contacts,
            },
            ContentKind::Template => Content::Template(Template::deserialize(rest)?),
            ContentKind::Interactive => Content::Interactive(Interactive::deserialize(rest)?),
            ContentKind::Reply => Content::Reply(SelectedReply::deserialize(rest)?),
            ContentKind::Reaction => {
                let ReactionFields { message_id, emoji } = ReactionFields::deserialize(rest)?;
                Content::Reaction { message_id, emoji }
            }
            ContentKind::Unsupported => Content::Unsupported {
                provider_type: UnsupportedFields::deserialize(rest)?.provider_type,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every webhook outcome in `fixtures/`, as the SDK serializes it (tag first).
    fn outcomes() -> Vec<(String, WebhookOutcome)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut out = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let Ok(case) = serde_json::from_str::<serde_json::Value>(
                        &std::fs::read_to_string(&path).unwrap(),
                    ) else {
                        continue;
                    };
                    let Some(expect) = case.get("expect").filter(|e| e.get("events").is_some())
                    else {
                        continue;
                    };
                    if let Ok(outcome) = serde_json::from_value::<WebhookOutcome>(expect.clone()) {
                        out.push((path.display().to_string(), outcome));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn fast_path_equals_serde_on_every_fixture_outcome() {
        let all = outcomes();
        assert!(all.len() > 50, "{} outcomes", all.len());
        let mut events = 0;
        for (name, expected) in all {
            let json = serde_json::to_string(&expected).unwrap();
            let fast = fast(&json).unwrap_or_else(|| panic!("fast path refused {name}: {json}"));
            assert_eq!(fast, expected, "{name}");
            assert_eq!(outcome(&json).unwrap(), expected, "{name}");
            events += expected.events.len();
        }
        assert!(events > 50, "{events} events");
    }

    /// Every `content` object anywhere in `fixtures/` (inbound and outbound), as `Content`.
    fn contents() -> Vec<Content> {
        fn walk(v: &serde_json::Value, out: &mut Vec<Content>) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(c) = map.get("content")
                        && let Ok(content) = serde_json::from_value::<Content>(c.clone())
                    {
                        out.push(content);
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut out = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(
                    &std::fs::read_to_string(&path).unwrap_or_default(),
                ) {
                    walk(&v, &mut out);
                }
            }
        }
        out
    }

    #[test]
    fn every_content_kind_takes_the_fast_path() {
        let template = outcomes()
            .into_iter()
            .flat_map(|(_, o)| o.events)
            .find_map(|e| match e {
                InboundEvent::Message(m) => Some(m),
                _ => None,
            })
            .unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for content in contents() {
            let json = serde_json::to_value(&content).unwrap();
            kinds.insert(json["type"].as_str().unwrap().to_owned());
            let mut message = template.clone();
            message.content = content;
            let expected = WebhookOutcome::ok(vec![InboundEvent::Message(message)]);
            let json = serde_json::to_string(&expected).unwrap();
            assert_eq!(fast(&json).as_ref(), Some(&expected), "{json}");
        }
        let all = [
            "contacts",
            "interactive",
            "location",
            "media",
            "reaction",
            "reply",
            "template",
            "text",
            "unsupported",
        ];
        assert_eq!(kinds, all.iter().map(|k| k.to_string()).collect());
    }

    #[test]
    fn anything_else_falls_back_to_serde() {
        let (_, expected) = outcomes()
            .into_iter()
            .find(|(_, o)| o.events.len() > 2)
            .unwrap();
        // Keys sorted (the tag is not first): serde_json::Value sorts them.
        let sorted = serde_json::to_string(&serde_json::to_value(&expected).unwrap()).unwrap();
        assert!(fast(&sorted).is_none());
        assert_eq!(outcome(&sorted).unwrap(), expected);
        // A field of the outcome this host does not know.
        let mut value = serde_json::to_value(&expected).unwrap();
        value["later"] = serde_json::json!(1);
        let grown = serde_json::to_string(&value).unwrap();
        assert!(fast(&grown).is_none());
        // A content field this host does not know: the serde path decides (it ignores it).
        let text = r#"{"events":[{"type":"message","id":"m","from":{"channel":"sms","id":"+1","kind":"phone"},"to":{"channel":"sms","id":"+2","kind":"phone"},"content":{"type":"text","text":"hi","later":true}}],"reply":{"status":200}}"#;
        assert!(fast(text).is_none());
        assert_eq!(
            outcome(text).unwrap().events.len(),
            1,
            "serde ignores the unknown field"
        );
        // An unknown event type: serde's own error.
        let unknown = r#"{"events":[{"type":"telepathy"}],"reply":{"status":200}}"#;
        assert!(fast(unknown).is_none());
        let err = outcome(unknown).unwrap_err().to_string();
        assert!(err.contains("telepathy"), "{err}");
        assert!(outcome("{").is_err());
    }
}
