//! Messenger webhooks: `entry[].messaging[]` (and `standby[]`) into events.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use switchboard_core::{
    Address, AddressKind, Channel, ChannelContext, ChannelKey, ConnectorError, Content,
    DeliveryStatus, Extensions, InboundEvent, InboundMessage, Location, Media, MediaKind, Reaction,
    SelectedReply, StatusUpdate, StatusWatermark, WebhookRequest,
};

use crate::meta::graph::{First, UnixTime, WebhookReport, json_reason};

/// The `object` of Messenger webhooks.
const OBJECT: &str = "page";

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    entry: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    messaging: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    standby: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(default, borrow)]
    sender: Option<Party<'a>>,
    #[serde(default, borrow)]
    recipient: Option<Party<'a>>,
    #[serde(default)]
    timestamp: UnixTime,
    #[serde(default, borrow)]
    message: Option<MessageIn<'a>>,
    #[serde(default, borrow)]
    postback: Option<PostbackIn<'a>>,
    #[serde(default, borrow)]
    delivery: Option<DeliveryIn<'a>>,
    #[serde(default)]
    read: Option<ReadIn>,
    #[serde(default, borrow)]
    reaction: Option<ReactionIn<'a>>,
}

#[derive(Deserialize)]
struct Party<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_ref: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    mid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    is_echo: Option<bool>,
    #[serde(default)]
    is_deleted: Option<bool>,
    #[serde(default, borrow)]
    quick_reply: Option<QuickReplyIn<'a>>,
    #[serde(default, borrow)]
    reply_to: Option<ReplyToIn<'a>>,
    #[serde(default, borrow)]
    attachments: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct QuickReplyIn<'a> {
    #[serde(default, borrow)]
    payload: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ReplyToIn<'a> {
    #[serde(default, borrow)]
    mid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AttachmentIn<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    payload: Option<PayloadIn<'a>>,
}

#[derive(Deserialize)]
struct PayloadIn<'a> {
    #[serde(default, borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sticker_id: Option<&'a RawValue>,
    #[serde(default)]
    coordinates: Option<Coordinates>,
}

#[derive(Deserialize)]
struct Coordinates {
    lat: f64,
    long: f64,
}

#[derive(Deserialize)]
struct PostbackIn<'a> {
    #[serde(default, borrow)]
    mid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    payload: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    referral: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct DeliveryIn<'a> {
    #[serde(default, borrow)]
    mids: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    watermark: UnixTime,
}

#[derive(Deserialize)]
struct ReadIn {
    #[serde(default)]
    watermark: UnixTime,
}

#[derive(Deserialize)]
struct ReactionIn<'a> {
    #[serde(borrow)]
    mid: Cow<'a, str>,
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    emoji: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reaction: Option<Cow<'a, str>>,
}

/// `entry[0].id`, the page, decoding nothing else.
pub(crate) fn route(req: &WebhookRequest) -> Option<ChannelKey> {
    #[derive(Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        entry: First<REntry<'a>>,
    }
    #[derive(Deserialize)]
    struct REntry<'a> {
        #[serde(borrow)]
        id: Cow<'a, str>,
    }
    let r: R<'_> = serde_json::from_slice(&req.body).ok()?;
    let id = r.entry.0?.id;
    (!id.is_empty()).then(|| ChannelKey(id.into_owned()))
}

/// Parses a webhook body into `report`.
pub(crate) fn parse(
    ctx: &ChannelContext,
    body: &[u8],
    report: &mut WebhookReport,
) -> Result<(), ConnectorError> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        ConnectorError::malformed(format!("not a Messenger webhook body: {}", json_reason(&e)))
    })?;
    match envelope.object.as_deref() {
        Some(OBJECT) => {}
        Some(other) => {
            return Err(ConnectorError::malformed(format!(
                "object is {other:?}, expected {OBJECT:?}"
            )));
        }
        None => {
            return Err(ConnectorError::malformed(format!(
                "no `object`, expected {OBJECT:?}"
            )));
        }
    }
    let own_page = ctx.optional_setting("page_id").ok().flatten();
    for (e, entry) in envelope.entry.unwrap_or_default().into_iter().enumerate() {
        let entry: Entry<'_> = match serde_json::from_str(entry.get()) {
            Ok(entry) => entry,
            Err(err) => {
                report.skip(format!("entry[{e}]"), json_reason(&err));
                continue;
            }
        };
        let page = entry.id.as_deref().filter(|id| !id.is_empty()).or(own_page);
        let Some(page) = page else {
            report.skip(format!("entry[{e}]"), "no page `id`");
            continue;
        };
        if let Some(own) = own_page.filter(|own| *own != page) {
            report.skip(
                format!("entry[{e}]"),
                format!("for page {page}, not this channel's {own}"),
            );
            continue;
        }
        let lists = [
            ("messaging", false, entry.messaging),
            ("standby", true, entry.standby),
        ];
        for (list, standby, items) in lists {
            for (i, raw) in items.unwrap_or_default().into_iter().enumerate() {
                let path = format!("entry[{e}].{list}[{i}]");
                parse_item(page, raw, standby, &path, report);
            }
        }
    }
    Ok(())
}

fn parse_item(page: &str, raw: &RawValue, standby: bool, path: &str, report: &mut WebhookReport) {
    let item: Item<'_> = match serde_json::from_str(raw.get()) {
        Ok(item) => item,
        Err(err) => return report.skip(path, json_reason(&err)),
    };
    let business = Address::new(
        Channel::Messenger,
        AddressKind::ProviderAccount,
        item.recipient
            .as_ref()
            .and_then(|r| r.id.as_deref())
            .filter(|id| !id.is_empty())
            .unwrap_or(page),
    );
    let customer = match item.sender {
        Some(Party { id: Some(id), .. }) if !id.is_empty() => {
            Address::new(Channel::Messenger, AddressKind::PageScopedId, id)
        }
        Some(Party {
            user_ref: Some(user_ref),
            ..
        }) if !user_ref.is_empty() => {
            Address::new(Channel::Messenger, AddressKind::Other, user_ref)
        }
        _ => return report.skip(path, "no `sender.id`"),
    };
    let time = item.timestamp;
    let mut extensions = Extensions::new();
    if standby {
        extensions.insert("standby".into(), true.into());
    }

    if let Some(message) = item.message {
        if message.is_echo == Some(true) {
            return report.skip(path, "echo of a message the page sent");
        }
        if message.is_deleted == Some(true) {
            return report.skip(path, "the customer deleted a message");
        }
        let base = Base {
            customer,
            business,
            time,
            extensions,
        };
        return message_events(message, base, path, report);
    }
    if let Some(postback) = item.postback {
        let id = match postback.mid.as_deref().filter(|mid| !mid.is_empty()) {
            Some(mid) => mid.to_owned(),
            // Postbacks from buttons of templates and menus carry no mid: the sender and the
            // time identify them across redeliveries.
            None => format!("postback:{}:{}", customer.id, time.0.unwrap_or_default()),
        };
        if let Some(referral) = postback.referral {
            extensions.insert("referral".into(), raw_value(referral));
        }
        let title = postback.title.map(Cow::into_owned).unwrap_or_default();
        report
            .outcome
            .events
            .push(InboundEvent::Message(InboundMessage {
                id,
                from: customer,
                to: business,
                timestamp: time.timestamp(),
                content: Content::Reply(SelectedReply {
                    id: postback.payload.map(Cow::into_owned),
                    title,
                }),
                profile_name: None,
                reply_to: None,
                extensions,
            }));
        return;
    }
    if let Some(delivery) = item.delivery {
        let mids = delivery.mids.unwrap_or_default();
        if let Some(watermark) = delivery.watermark.timestamp() {
            report
                .outcome
                .events
                .push(InboundEvent::Watermark(StatusWatermark {
                    recipient: customer.clone(),
                    sender: business.clone(),
                    status: DeliveryStatus::Delivered,
                    up_to: watermark,
                }));
        } else if mids.is_empty() {
            return report.skip(path, "delivery without `mids` or `watermark`");
        }
        for mid in mids.into_iter().filter(|mid| !mid.is_empty()) {
            let mut update = StatusUpdate::new(mid, DeliveryStatus::Delivered);
            update.recipient = Some(customer.clone());
            update.timestamp = time.timestamp();
            update.extensions = extensions.clone();
            report.outcome.events.push(InboundEvent::Status(update));
        }
        return;
    }
    if let Some(read) = item.read {
        // A read receipt names no message: it is a watermark only (see the module docs).
        return match read.watermark.timestamp() {
            Some(watermark) => {
                report
                    .outcome
                    .events
                    .push(InboundEvent::Watermark(StatusWatermark {
                        recipient: customer,
                        sender: business,
                        status: DeliveryStatus::Read,
                        up_to: watermark,
                    }))
            }
            None => report.skip(path, "read without `watermark`"),
        };
    }
    if let Some(reaction) = item.reaction {
        let removed = reaction.action.as_deref() == Some("unreact");
        let action = reaction.action.as_deref().unwrap_or("react");
        let id = format!(
            "reaction:{}:{}:{action}:{}",
            customer.id,
            reaction.mid,
            time.0.unwrap_or_default()
        );
        let emoji = if removed {
            None
        } else {
            reaction
                .emoji
                .or(reaction.reaction)
                .filter(|e| !e.is_empty())
                .map(Cow::into_owned)
        };
        report.outcome.events.push(InboundEvent::Reaction(Reaction {
            id,
            from: customer,
            to: business,
            message_id: reaction.mid.into_owned(),
            emoji,
            timestamp: time.timestamp(),
        }));
        return;
    }
    report.skip(path, format!("no event for {}", item_kinds(raw)));
}

/// What an item has besides sender, recipient and timestamp, e.g. `optin`, `referral`.
fn item_kinds(raw: &RawValue) -> String {
    let keys: BTreeMap<Cow<'_, str>, IgnoredAny> =
        serde_json::from_str(raw.get()).unwrap_or_default();
    let kinds: Vec<&str> = keys
        .keys()
        .map(Cow::as_ref)
        .filter(|k| !matches!(*k, "sender" | "recipient" | "timestamp"))
        .collect();
    if kinds.is_empty() {
        "an empty item".to_owned()
    } else {
        format!("`{}`", kinds.join("`, `"))
    }
}

/// What every event of one messaging item shares.
struct Base {
    customer: Address,
    business: Address,
    time: UnixTime,
    extensions: Extensions,
}

fn message_events(message: MessageIn<'_>, base: Base, path: &str, report: &mut WebhookReport) {
    let Some(mid) = message.mid.filter(|mid| !mid.is_empty()) else {
        return report.skip(path, "message without `mid`");
    };
    let reply_to = message
        .reply_to
        .and_then(|r| r.mid)
        .filter(|mid| !mid.is_empty())
        .map(Cow::into_owned);
    let text = message.text.filter(|t| !t.is_empty());
    // The message's contents: its text (a quick-reply answer when it carries a payload), then
    // each attachment. One event each; the first keeps the mid, the others are `{mid}#{n}`.
    let mut contents: Vec<(Content, Extensions)> = Vec::new();
    match (text, message.quick_reply.and_then(|q| q.payload)) {
        (text, Some(payload)) => contents.push((
            Content::Reply(SelectedReply {
                id: Some(payload.into_owned()),
                title: text.map(Cow::into_owned).unwrap_or_default(),
            }),
            Extensions::new(),
        )),
        (Some(text), None) => contents.push((Content::text(text), Extensions::new())),
        (None, None) => {}
    }
    for (a, raw) in message
        .attachments
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match attachment(raw) {
            Ok(content) => contents.push(content),
            Err(reason) => report.skip(format!("{path}.message.attachments[{a}]"), reason),
        }
    }
    if contents.is_empty() {
        contents.push((
            Content::Unsupported {
                provider_type: "message".into(),
            },
            Extensions::new(),
        ));
    }
    for (n, (content, mut extensions)) in contents.into_iter().enumerate() {
        let id = if n == 0 {
            mid.to_string()
        } else {
            extensions.insert("mid".into(), mid.as_ref().into());
            format!("{mid}#{n}")
        };
        extensions.extend(base.extensions.clone());
        report
            .outcome
            .events
            .push(InboundEvent::Message(InboundMessage {
                id,
                from: base.customer.clone(),
                to: base.business.clone(),
                timestamp: base.time.timestamp(),
                content,
                profile_name: None,
                reply_to: reply_to.clone(),
                extensions,
            }));
    }
}

fn attachment(raw: &RawValue) -> Result<(Content, Extensions), String> {
    let a: AttachmentIn<'_> = serde_json::from_str(raw.get()).map_err(|e| json_reason(&e))?;
    let mut extensions = Extensions::new();
    let media_kind = match a.kind.as_ref() {
        "image" => Some(MediaKind::Image),
        "video" => Some(MediaKind::Video),
        "audio" => Some(MediaKind::Audio),
        "file" => Some(MediaKind::Document),
        _ => None,
    };
    if let Some(mut kind) = media_kind {
        let payload = a.payload.ok_or("media attachment without `payload`")?;
        let url = payload
            .url
            .filter(|u| !u.is_empty())
            .ok_or("media attachment without `payload.url`")?;
        if let Some(sticker) = payload.sticker_id {
            // The thumbs-up and other stickers arrive as images with a sticker id.
            kind = MediaKind::Sticker;
            extensions.insert("sticker_id".into(), raw_value(sticker));
        }
        return Ok((Content::Media(Media::from_url(kind, url)), extensions));
    }
    if a.kind == "location" {
        let payload = a.payload.ok_or("location attachment without `payload`")?;
        let c = payload
            .coordinates
            .ok_or("location attachment without `payload.coordinates`")?;
        if let Some(url) = payload.url {
            extensions.insert("url".into(), url.as_ref().into());
        }
        return Ok((
            Content::Location(Location {
                latitude: c.lat,
                longitude: c.long,
                name: payload.title.map(Cow::into_owned),
                address: None,
            }),
            extensions,
        ));
    }
    // `fallback` (link shares), `template`, `reel`, `product`, newer kinds: the raw attachment
    // rides along.
    extensions.insert("attachment".into(), raw_value(raw));
    Ok((
        Content::Unsupported {
            provider_type: a.kind.into_owned(),
        },
        extensions,
    ))
}

fn raw_value(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null)
}
