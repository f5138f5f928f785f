//! WhatsApp Cloud API webhooks: `entry[].changes[].value.{messages,statuses}[]` into events.
//!
//! Two decodings, one mapping. The fast path decodes the whole body in one pass with the
//! messages, statuses and contacts typed. When that fails (a message of the wrong shape, a
//! syntax error), the isolating path decodes the body again keeping every item raw and decodes
//! the items one by one, so one malformed item costs only itself: it is listed in the
//! outcome's `skipped` and the rest of the batch is parsed. The levels above the items are lenient
//! in both (a value of the wrong type is recorded, never a failure of the body), and both feed
//! the same mapping code, so they agree on every body the fast path accepts.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_core::{
    Address, AddressKind, Channel, ChannelContext, ChannelKey, ConnectorError, ContactCard,
    Content, DeliveryStatus, ErrorClass, Extensions, InboundEvent, InboundMessage, Location, Media,
    MediaKind, Reaction, SelectedReply, StatusUpdate, WebhookRequest,
};

use super::errors::classify;
use crate::meta::graph::{
    Arr, First, GraphError, Obj, Str, UnixTime, WebhookReport, is_wa_id, json_reason,
};

/// The `object` of WhatsApp Business Account webhooks.
const OBJECT: &str = "whatsapp_business_account";

/// The body, generic over how items are held: typed (`Message`, `StatusIn`, `Contact`) on the
/// fast path, raw (`&RawValue`) on the isolating path.
#[derive(Deserialize)]
struct Envelope<'a, M, S, C> {
    #[serde(default, borrow)]
    object: Option<Str<'a>>,
    #[serde(default = "none", borrow)]
    entry: Option<Arr<Obj<Entry<'a, M, S, C>>>>,
}

/// `None`, as the default of generic fields (serde's plain `default` would demand
/// `M: Default`).
fn none<T>() -> Option<T> {
    None
}

#[derive(Deserialize)]
struct Entry<'a, M, S, C> {
    #[serde(default = "none", borrow)]
    changes: Option<Arr<Obj<Change<'a, M, S, C>>>>,
}

#[derive(Deserialize)]
struct Change<'a, M, S, C> {
    #[serde(default, borrow)]
    field: Option<Str<'a>>,
    #[serde(default = "none", borrow)]
    value: Option<Obj<Value<'a, M, S, C>>>,
}

#[derive(Deserialize)]
struct Value<'a, M, S, C> {
    #[serde(default, borrow)]
    metadata: Option<Obj<Metadata<'a>>>,
    #[serde(default = "none")]
    contacts: Option<Arr<C>>,
    #[serde(default = "none")]
    messages: Option<Arr<M>>,
    #[serde(default = "none")]
    statuses: Option<Arr<S>>,
    #[serde(default, borrow)]
    errors: Option<Arr<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    phone_number_id: Option<Str<'a>>,
}

/// An item as the batch holds it: already typed, or raw and typed on demand.
trait Item<'a, T> {
    fn typed(self) -> Result<T, String>;
}

impl<'a, T: Deserialize<'a>> Item<'a, T> for &'a RawValue {
    fn typed(self) -> Result<T, String> {
        serde_json::from_str(self.get()).map_err(|e| json_reason(&e))
    }
}

macro_rules! typed_item {
    ($($ty:ident),*) => {$(
        impl<'a> Item<'a, $ty<'a>> for $ty<'a> {
            fn typed(self) -> Result<$ty<'a>, String> {
                Ok(self)
            }
        }
    )*};
}

typed_item!(Message, StatusIn, Contact);

#[derive(Deserialize)]
struct Contact<'a> {
    #[serde(default, borrow)]
    profile: Option<Profile<'a>>,
    #[serde(default, borrow)]
    wa_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Profile<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    username: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    from_user_id: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp: UnixTime,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    context: Option<Context<'a>>,
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default, borrow)]
    image: Option<Box<MediaIn<'a>>>,
    #[serde(default, borrow)]
    video: Option<Box<MediaIn<'a>>>,
    #[serde(default, borrow)]
    audio: Option<Box<MediaIn<'a>>>,
    #[serde(default, borrow)]
    document: Option<Box<MediaIn<'a>>>,
    #[serde(default, borrow)]
    sticker: Option<Box<MediaIn<'a>>>,
    #[serde(default, borrow)]
    location: Option<Box<LocationIn<'a>>>,
    #[serde(default, borrow)]
    contacts: Option<Vec<ContactCardIn<'a>>>,
    #[serde(default, borrow)]
    interactive: Option<Box<InteractiveIn<'a>>>,
    #[serde(default, borrow)]
    button: Option<ButtonIn<'a>>,
    #[serde(default, borrow)]
    reaction: Option<ReactionIn<'a>>,
    #[serde(default, borrow)]
    referral: Option<&'a RawValue>,
    #[serde(default, borrow)]
    errors: Option<&'a RawValue>,
    // Documented types the model does not normalize: their payload rides as an extension.
    #[serde(default, borrow)]
    order: Option<&'a RawValue>,
    #[serde(default, borrow)]
    system: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Context<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    forwarded: Option<bool>,
    #[serde(default)]
    frequently_forwarded: Option<bool>,
}

#[derive(Deserialize)]
struct Text<'a> {
    #[serde(borrow)]
    body: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MediaIn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    mime_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sha256: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    caption: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    filename: Option<Cow<'a, str>>,
    #[serde(default)]
    voice: Option<bool>,
    #[serde(default)]
    animated: Option<bool>,
}

#[derive(Deserialize)]
struct LocationIn<'a> {
    latitude: f64,
    longitude: f64,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    address: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ContactCardIn<'a> {
    #[serde(default, borrow)]
    name: Option<NameIn<'a>>,
    #[serde(default, borrow)]
    phones: Option<Vec<PhoneIn<'a>>>,
    #[serde(default, borrow)]
    emails: Option<Vec<EmailIn<'a>>>,
}

#[derive(Deserialize)]
struct NameIn<'a> {
    #[serde(default, borrow)]
    formatted_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    first_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    last_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PhoneIn<'a> {
    #[serde(default, borrow)]
    phone: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EmailIn<'a> {
    #[serde(default, borrow)]
    email: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InteractiveIn<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    button_reply: Option<ReplyIn<'a>>,
    #[serde(default, borrow)]
    list_reply: Option<ReplyIn<'a>>,
    /// A WhatsApp Flow's answer.
    #[serde(default, borrow)]
    nfm_reply: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ReplyIn<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ButtonIn<'a> {
    #[serde(default, borrow)]
    payload: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ReactionIn<'a> {
    #[serde(borrow)]
    message_id: Cow<'a, str>,
    #[serde(default, borrow)]
    emoji: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StatusIn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default)]
    timestamp: UnixTime,
    #[serde(default, borrow)]
    recipient_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    recipient_user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    errors: Option<Vec<GraphError<'a>>>,
    #[serde(default)]
    conversation: Option<serde_json::Value>,
    #[serde(default)]
    pricing: Option<serde_json::Value>,
    #[serde(default, borrow)]
    biz_opaque_callback_data: Option<Cow<'a, str>>,
}

/// `entry[0].changes[0].value.metadata.phone_number_id`, decoding nothing else.
pub(crate) fn route(req: &WebhookRequest) -> Option<ChannelKey> {
    #[derive(Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        entry: First<REntry<'a>>,
    }
    #[derive(Deserialize)]
    struct REntry<'a> {
        #[serde(borrow)]
        changes: First<RChange<'a>>,
    }
    #[derive(Deserialize)]
    struct RChange<'a> {
        #[serde(borrow)]
        value: RValue<'a>,
    }
    #[derive(Deserialize)]
    struct RValue<'a> {
        #[serde(borrow)]
        metadata: Metadata<'a>,
    }
    let r: R<'_> = serde_json::from_slice(&req.body).ok()?;
    let id = r.entry.0?.changes.0?.value.metadata.phone_number_id?;
    id.non_empty().map(|id| ChannelKey(id.to_owned()))
}

/// Parses a webhook body into `report`.
pub(crate) fn parse(
    ctx: &ChannelContext,
    body: &[u8],
    report: &mut WebhookReport,
) -> Result<(), ConnectorError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ConnectorError::malformed(format!("the body is not UTF-8: {e}")))?;
    // The channel's own number: changes for another number are not this channel's.
    let own_number = ctx.optional_setting("phone_number_id").ok().flatten();
    type Fast<'a> = Envelope<'a, Message<'a>, StatusIn<'a>, Contact<'a>>;
    match serde_json::from_str::<Fast<'_>>(text) {
        Ok(envelope) => batch(envelope, own_number, report),
        Err(_) => isolating(text, own_number, report),
    }
}

/// The isolating path: every item raw, decoded one by one.
fn isolating(
    text: &str,
    own_number: Option<&str>,
    report: &mut WebhookReport,
) -> Result<(), ConnectorError> {
    type Isolating<'a> = Envelope<'a, &'a RawValue, &'a RawValue, &'a RawValue>;
    let envelope: Isolating<'_> = serde_json::from_str(text).map_err(|e| {
        ConnectorError::malformed(format!("not a WhatsApp webhook body: {}", json_reason(&e)))
    })?;
    batch(envelope, own_number, report)
}

fn batch<'a, M, S, C>(
    envelope: Envelope<'a, M, S, C>,
    own_number: Option<&str>,
    report: &mut WebhookReport,
) -> Result<(), ConnectorError>
where
    M: Item<'a, Message<'a>>,
    S: Item<'a, StatusIn<'a>>,
    C: Item<'a, Contact<'a>>,
{
    match envelope.object.as_ref().map(|o| o.0.as_deref()) {
        Some(Ok(OBJECT)) => {}
        Some(Ok(other)) => {
            return Err(ConnectorError::malformed(format!(
                "object is {other:?}, expected {OBJECT:?}"
            )));
        }
        Some(Err(_)) | None => {
            return Err(ConnectorError::malformed(format!(
                "no `object` string, expected {OBJECT:?}"
            )));
        }
    }
    let entries = match envelope.entry.map(|e| e.0) {
        None => Vec::new(),
        Some(Ok(entries)) => entries,
        Some(Err(found)) => {
            return Err(ConnectorError::malformed(format!(
                "`entry` is {found}, expected an array"
            )));
        }
    };
    for (e, entry) in entries.into_iter().enumerate() {
        let changes = match entry.0 {
            Ok(Entry { changes: None }) => Vec::new(),
            Ok(Entry {
                changes: Some(Arr(Ok(changes))),
            }) => changes,
            Ok(Entry {
                changes: Some(Arr(Err(found))),
            }) => {
                report.skip(
                    format!("entry[{e}].changes"),
                    format!("is {found}, expected an array"),
                );
                continue;
            }
            Err(found) => {
                report.skip(
                    format!("entry[{e}]"),
                    format!("is {found}, expected an object"),
                );
                continue;
            }
        };
        for (c, change) in changes.into_iter().enumerate() {
            parse_change(own_number, change, (e, c), report);
        }
    }
    Ok(())
}

fn parse_change<'a, M, S, C>(
    own_number: Option<&str>,
    change: Obj<Change<'a, M, S, C>>,
    (e, c): (usize, usize),
    report: &mut WebhookReport,
) where
    M: Item<'a, Message<'a>>,
    S: Item<'a, StatusIn<'a>>,
    C: Item<'a, Contact<'a>>,
{
    let path = || format!("entry[{e}].changes[{c}]");
    let change = match change.0 {
        Ok(change) => change,
        Err(found) => return report.skip(path(), format!("is {found}, expected an object")),
    };
    if let Some(field) = &change.field {
        match field.0.as_deref() {
            Ok("messages") => {}
            Ok(other) => {
                return report.skip(path(), format!("field {other:?} carries no message events"));
            }
            Err(found) => return report.skip(path(), format!("`field` is {found}")),
        }
    }
    let value = match change.value.map(|v| v.0) {
        Some(Ok(value)) => value,
        Some(Err(found)) => {
            return report.skip(path(), format!("`value` is {found}, expected an object"));
        }
        None => return report.skip(path(), "no `value`"),
    };
    let number = value
        .metadata
        .as_ref()
        .and_then(|m| m.0.as_ref().ok())
        .and_then(|m| m.phone_number_id.as_ref())
        .and_then(Str::non_empty);
    let number = match (number, own_number) {
        (Some(number), Some(own)) if number != own => {
            return report.skip(
                path(),
                format!("for phone number id {number}, not this channel's {own}"),
            );
        }
        (Some(number), _) => number,
        (None, Some(own)) => own,
        (None, None) => return report.skip(path(), "no `metadata.phone_number_id`"),
    };
    let business = Address::new(Channel::WhatsApp, AddressKind::ProviderAccount, number);
    let contacts: Vec<Contact<'a>> = match value.contacts.map(|c| c.0) {
        Some(Ok(contacts)) => contacts
            .into_iter()
            .filter_map(|c| c.typed().ok())
            .collect(),
        _ => Vec::new(),
    };

    match value.messages.map(|m| m.0) {
        None => {}
        Some(Err(found)) => report.skip(
            format!("{}.value.messages", path()),
            format!("is {found}, expected an array"),
        ),
        Some(Ok(messages)) => {
            report.outcome.events.reserve(messages.len());
            for (i, raw) in messages.into_iter().enumerate() {
                match raw
                    .typed()
                    .and_then(|m| message_event(m, &business, &contacts))
                {
                    Ok(event) => report.outcome.events.push(event),
                    Err(reason) => report.skip(format!("{}.value.messages[{i}]", path()), reason),
                }
            }
        }
    }
    match value.statuses.map(|s| s.0) {
        None => {}
        Some(Err(found)) => report.skip(
            format!("{}.value.statuses", path()),
            format!("is {found}, expected an array"),
        ),
        Some(Ok(statuses)) => {
            report.outcome.events.reserve(statuses.len());
            for (i, raw) in statuses.into_iter().enumerate() {
                match raw.typed().and_then(status_event) {
                    Ok(event) => report.outcome.events.push(event),
                    Err(reason) => report.skip(format!("{}.value.statuses[{i}]", path()), reason),
                }
            }
        }
    }
    match value.errors.map(|e| e.0) {
        None => {}
        Some(Err(found)) => report.skip(
            format!("{}.value.errors", path()),
            format!("is {found}, expected an array"),
        ),
        Some(Ok(errors)) => {
            for (i, raw) in errors.into_iter().enumerate() {
                report.skip(format!("{}.value.errors[{i}]", path()), out_of_band(raw));
            }
        }
    }
}

/// Why an out-of-band `value.errors[]` item produced no event.
fn out_of_band(raw: &RawValue) -> String {
    match serde_json::from_str::<GraphError<'_>>(raw.get()) {
        Ok(err) => format!(
            "out-of-band error {}: {}",
            err.code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
            err.describe()
        ),
        Err(err) => json_reason(&err),
    }
}

/// A user id as an address: digits are a `wa_id`, anything else a business-scoped user id.
fn user_address(id: &str) -> Address {
    let kind = if is_wa_id(id) {
        AddressKind::WhatsAppId
    } else {
        AddressKind::BusinessScopedUserId
    };
    Address::new(Channel::WhatsApp, kind, id)
}

fn owned(text: Option<Cow<'_, str>>) -> Option<String> {
    text.map(Cow::into_owned)
}

fn message_event(
    msg: Message<'_>,
    business: &Address,
    contacts: &[Contact<'_>],
) -> Result<InboundEvent, String> {
    let id = msg
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or("no message `id`")?
        .to_owned();
    let from = msg.from.as_deref().filter(|f| !f.is_empty());
    let from_user_id = msg.from_user_id.as_deref().filter(|f| !f.is_empty());
    let sender = match (from, from_user_id) {
        (Some(from), _) => user_address(from),
        (None, Some(user)) => {
            Address::new(Channel::WhatsApp, AddressKind::BusinessScopedUserId, user)
        }
        (None, None) => return Err("neither `from` nor `from_user_id`".into()),
    };
    let timestamp = msg.timestamp.timestamp();
    let kind = msg.kind.as_deref().ok_or("no message `type`")?;

    if kind == "reaction" {
        let reaction = msg.reaction.ok_or("type reaction without `reaction`")?;
        return Ok(InboundEvent::Reaction(Reaction {
            id,
            from: sender,
            to: business.clone(),
            message_id: reaction.message_id.into_owned(),
            emoji: owned(reaction.emoji.filter(|e| !e.is_empty())),
            timestamp,
        }));
    }

    let mut extensions = Extensions::new();
    let contact = contacts
        .iter()
        .find(|c| {
            (from.is_some() && c.wa_id.as_deref() == from)
                || c.user_id
                    .as_deref()
                    .is_some_and(|u| Some(u) == from_user_id || Some(u) == from)
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        });
    // A `wa_id` sender may also be known by a business-scoped user id: keep it for migration.
    let user_id = from_user_id.or(contact.and_then(|c| c.user_id.as_deref()));
    if let Some(user_id) = user_id.filter(|u| sender.id != *u) {
        extensions.insert("user_id".into(), user_id.into());
    }
    if let Some(username) = contact
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.username.as_deref())
    {
        extensions.insert("username".into(), username.into());
    }
    let profile_name = contact
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.as_deref())
        .filter(|n| !n.is_empty())
        .map(str::to_owned);

    let mut reply_to = None;
    if let Some(context) = msg.context {
        reply_to = owned(context.id.filter(|id| !id.is_empty()));
        if context.forwarded == Some(true) {
            extensions.insert("forwarded".into(), true.into());
        }
        if context.frequently_forwarded == Some(true) {
            extensions.insert("frequently_forwarded".into(), true.into());
        }
    }
    if let Some(referral) = msg.referral {
        extensions.insert("referral".into(), raw_value(referral));
    }
    if let Some(errors) = msg.errors {
        extensions.insert("errors".into(), raw_value(errors));
    }

    let content = match kind {
        "text" => Content::text(msg.text.ok_or("type text without `text.body`")?.body),
        "image" => media(MediaKind::Image, msg.image, &mut extensions)?,
        "video" => media(MediaKind::Video, msg.video, &mut extensions)?,
        "audio" => media(MediaKind::Audio, msg.audio, &mut extensions)?,
        "document" => media(MediaKind::Document, msg.document, &mut extensions)?,
        "sticker" => media(MediaKind::Sticker, msg.sticker, &mut extensions)?,
        "location" => {
            let l = *msg.location.ok_or("type location without `location`")?;
            if let Some(url) = l.url {
                extensions.insert("url".into(), url.as_ref().into());
            }
            Content::Location(Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: owned(l.name),
                address: owned(l.address),
            })
        }
        "contacts" => Content::Contacts {
            contacts: msg
                .contacts
                .ok_or("type contacts without `contacts`")?
                .into_iter()
                .map(contact_card)
                .collect(),
        },
        "button" => {
            let b = msg.button.ok_or("type button without `button`")?;
            Content::Reply(SelectedReply {
                id: owned(b.payload),
                title: owned(b.text).unwrap_or_default(),
            })
        }
        "interactive" => interactive(msg.interactive, &mut extensions)?,
        other => {
            let payload = match other {
                "order" => msg.order,
                "system" => msg.system,
                _ => None,
            };
            if let Some(payload) = payload {
                extensions.insert(other.to_owned(), raw_value(payload));
            }
            Content::Unsupported {
                provider_type: other.to_owned(),
            }
        }
    };
    Ok(InboundEvent::Message(InboundMessage {
        id,
        from: sender,
        to: business.clone(),
        timestamp,
        content,
        profile_name,
        reply_to,
        extensions,
    }))
}

fn media(
    kind: MediaKind,
    payload: Option<Box<MediaIn<'_>>>,
    extensions: &mut Extensions,
) -> Result<Content, String> {
    let m = *payload.ok_or_else(|| format!("type {kind:?} without its media object (`id`)"))?;
    if m.voice == Some(true) {
        extensions.insert("voice".into(), true.into());
    }
    if m.animated == Some(true) {
        extensions.insert("animated".into(), true.into());
    }
    let mut media = Media::from_provider_id(kind, m.id);
    media.mime_type = owned(m.mime_type);
    media.sha256 = owned(m.sha256);
    media.caption = owned(m.caption);
    media.filename = owned(m.filename);
    Ok(Content::Media(media))
}

fn contact_card(card: ContactCardIn<'_>) -> ContactCard {
    let name = card
        .name
        .map(|n| match n.formatted_name {
            Some(formatted) => formatted.into_owned(),
            None => [n.first_name, n.last_name]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        })
        .unwrap_or_default();
    ContactCard {
        name,
        phones: card
            .phones
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| owned(p.phone))
            .collect(),
        emails: card
            .emails
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| owned(e.email))
            .collect(),
    }
}

fn interactive(
    payload: Option<Box<InteractiveIn<'_>>>,
    extensions: &mut Extensions,
) -> Result<Content, String> {
    let i = *payload.ok_or("type interactive without `interactive`")?;
    let reply = match i.kind.as_deref() {
        Some("button_reply") => i.button_reply,
        Some("list_reply") => i.list_reply,
        other => {
            // A Flow's answer keeps its payload; newer kinds carry their name only.
            if let Some(nfm) = i.nfm_reply {
                extensions.insert("nfm_reply".into(), raw_value(nfm));
            }
            return Ok(Content::Unsupported {
                provider_type: other.unwrap_or("interactive").to_owned(),
            });
        }
    };
    let reply = reply.ok_or("interactive reply without its reply object")?;
    if let Some(description) = reply.description {
        extensions.insert("description".into(), description.as_ref().into());
    }
    Ok(Content::Reply(SelectedReply {
        id: owned(reply.id),
        title: owned(reply.title).unwrap_or_default(),
    }))
}

fn status_event(s: StatusIn<'_>) -> Result<InboundEvent, String> {
    if s.id.is_empty() {
        return Err("empty status `id`".into());
    }
    let recipient = match (s.recipient_id.as_deref(), s.recipient_user_id.as_deref()) {
        (Some(id), _) if !id.is_empty() => Some(user_address(id)),
        (_, Some(user)) if !user.is_empty() => Some(Address::new(
            Channel::WhatsApp,
            AddressKind::BusinessScopedUserId,
            user,
        )),
        _ => None,
    };
    let status = match s.status.as_ref() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::from(s.status.into_owned()),
    };
    let mut update = StatusUpdate::new(s.id, status);
    update.recipient = recipient;
    update.timestamp = s.timestamp.timestamp();
    update.error = s
        .errors
        .as_deref()
        .and_then(<[_]>::first)
        .map(|e| e.to_provider_error(classify, ErrorClass::Permanent));
    if let Some(conversation) = s.conversation {
        update
            .extensions
            .insert("conversation".into(), conversation);
    }
    if let Some(pricing) = s.pricing {
        update.extensions.insert("pricing".into(), pricing);
    }
    if let Some(data) = s.biz_opaque_callback_data {
        update.extensions.insert(
            switchboard_core::CLIENT_REFERENCE.into(),
            data.as_ref().into(),
        );
        update
            .extensions
            .insert("biz_opaque_callback_data".into(), data.as_ref().into());
    }
    Ok(InboundEvent::Status(update))
}

/// A raw JSON fragment as a value (it was already validated as JSON).
fn raw_value(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path and the isolating path agree on every WhatsApp fixture body.
    #[test]
    fn fast_and_isolating_paths_agree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta");
        let mut compared = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".json") {
                continue;
            }
            let case: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if case["connector"] != "meta-whatsapp" {
                continue;
            }
            let Some(body) = case["request"]["body"].as_str().filter(|b| !b.is_empty()) else {
                continue;
            };
            let own = case["channel"]["settings"]["phone_number_id"].as_str();
            let ctx = ChannelContext {
                channel_id: "c".into(),
                settings: case["channel"]["settings"].as_object().unwrap().clone(),
            };
            let mut fast = WebhookReport::new();
            let fast_result = parse(&ctx, body.as_bytes(), &mut fast);
            let mut slow = WebhookReport::new();
            let slow_result = isolating(body, own, &mut slow);
            assert_eq!(
                fast_result.is_ok(),
                slow_result.is_ok(),
                "{}",
                path.display()
            );
            assert_eq!(fast, slow, "{}", path.display());
            compared += 1;
        }
        assert!(compared > 20);
    }
}
