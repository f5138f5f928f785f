//! Inbound webhooks: customer messages (with consent keywords) and the dispatch to status
//! callbacks.

use serde_json::{Map, Value};
use switchboard_core::{
    Address, Channel, ChannelContext, ConnectorError, Consent, Content, Extensions, InboundEvent,
    InboundMessage, Location, Media, MediaKind, SelectedReply, WebhookOutcome, WebhookReply,
    WebhookRequest,
};

use super::params::Params;
use super::{address, settings, status};

/// The empty TwiML document Twilio expects in answer to a webhook: no reply is sent from here.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/// Twilio never sends more than 10 media per message; more is hostile input.
const MAX_MEDIA: usize = 25;

/// What a single-word message asks for, as Twilio's default opt-out handling reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    /// `STOP`, `STOPALL`, `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT`, `REVOKE`, `OPTOUT`.
    OptOut,
    /// `START`, `YES`, `UNSTOP`.
    OptIn,
    /// `HELP`, `INFO`: an information request, not a consent change.
    Help,
}

/// The consent keyword of a message body: one word (surrounding whitespace ignored),
/// case-insensitive, from Twilio's default lists. `"STOP PLEASE"` and `"OPT OUT"` are not
/// keywords, as Twilio does not match them either.
///
/// ```
/// use switchboard_providers::twilio::{Keyword, keyword};
/// assert_eq!(keyword(" stop \n"), Some(Keyword::OptOut));
/// assert_eq!(keyword("Unstop"), Some(Keyword::OptIn));
/// assert_eq!(keyword("stop please"), None);
/// ```
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim();
    if word.is_empty() || word.len() > 16 || word.contains(char::is_whitespace) {
        return None;
    }
    const OPT_OUT: &[&str] = &[
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    ];
    const OPT_IN: &[&str] = &["START", "YES", "UNSTOP"];
    const HELP: &[&str] = &["HELP", "INFO"];
    let is = |list: &[&str]| list.iter().any(|k| k.eq_ignore_ascii_case(word));
    if is(OPT_OUT) {
        Some(Keyword::OptOut)
    } else if is(OPT_IN) {
        Some(Keyword::OptIn)
    } else if is(HELP) {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// Parses an authenticated webhook.
pub(super) fn parse(
    ctx: &ChannelContext,
    req: &WebhookRequest,
) -> Result<WebhookOutcome, ConnectorError> {
    let params = Params::from_request(req)?;
    let events = if is_status_callback(&params)? {
        status::events(&params)?
    } else {
        message_events(ctx, &params)?
    };
    Ok(WebhookOutcome::with_reply(
        events,
        WebhookReply::with_body("text/xml", EMPTY_TWIML),
    ))
}

/// Status callbacks carry `MessageStatus` (older ones only `SmsStatus`) with an outbound
/// status; inbound messages carry `SmsStatus=received` and a body, media, location or button.
fn is_status_callback(params: &Params) -> Result<bool, ConnectorError> {
    let inbound = |word: &str| matches!(word.trim(), "received" | "receiving");
    if let Some(word) = params.non_empty("MessageStatus") {
        return Ok(!inbound(word));
    }
    if let Some(word) = params.non_empty("SmsStatus") {
        return Ok(!inbound(word));
    }
    let has_content = [
        "Body",
        "NumMedia",
        "MediaUrl0",
        "Latitude",
        "ButtonText",
        "ButtonPayload",
    ]
    .iter()
    .any(|name| params.get(name).is_some());
    if has_content {
        Ok(false)
    } else {
        Err(ConnectorError::malformed(
            "neither an inbound message nor a status callback (no MessageStatus, SmsStatus or Body)",
        ))
    }
}

/// One medium of an inbound message.
struct InboundMedia<'a> {
    index: u32,
    url: &'a str,
    mime: Option<&'a str>,
}

/// `MediaUrl{N}` with their `MediaContentType{N}`, by index; gaps are skipped, `NumMedia` is not
/// trusted.
fn collect_media(params: &Params) -> Result<Vec<InboundMedia<'_>>, ConnectorError> {
    let mut media = Vec::new();
    for (name, value) in params.pairs() {
        let Some(index) = media_index(name, "MediaUrl") else {
            continue;
        };
        if value.trim().is_empty() || media.iter().any(|m: &InboundMedia<'_>| m.index == index) {
            continue;
        }
        if media.len() == MAX_MEDIA {
            return Err(ConnectorError::malformed(format!(
                "more than {MAX_MEDIA} media in one message"
            )));
        }
        media.push(InboundMedia {
            index,
            url: value.trim(),
            mime: None,
        });
    }
    media.sort_by_key(|m| m.index);
    for m in &mut media {
        m.mime = params
            .non_empty(&format!("MediaContentType{}", m.index))
            .map(str::trim);
    }
    Ok(media)
}

/// `MediaUrl12` → `Some(12)` for prefix `MediaUrl`.
fn media_index(name: &str, prefix: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn is_media_param(name: &str) -> bool {
    media_index(name, "MediaUrl").is_some() || media_index(name, "MediaContentType").is_some()
}

/// The media kind of a MIME type. On WhatsApp, `image/webp` is a sticker (WhatsApp converts
/// photos to JPEG; only stickers arrive as WebP).
fn media_kind(mime: Option<&str>, channel: &Channel) -> MediaKind {
    let mime = mime.unwrap_or_default().to_ascii_lowercase();
    match mime.split('/').next().unwrap_or_default() {
        "image" if mime == "image/webp" && *channel == Channel::WhatsApp => MediaKind::Sticker,
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// A shared location, when `Latitude` and `Longitude` are valid coordinates.
fn location(params: &Params) -> Option<Location> {
    let coordinate = |name: &str, limit: f64| {
        params
            .non_empty(name)?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && v.abs() <= limit)
    };
    Some(Location {
        latitude: coordinate("Latitude", 90.0)?,
        longitude: coordinate("Longitude", 180.0)?,
        name: params.non_empty("Label").map(str::to_owned),
        address: params.non_empty("Address").map(str::to_owned),
    })
}

/// Click-to-WhatsApp ad fields (`ReferralBody`, `ReferralSourceUrl`, …) as one object with
/// snake_case keys (`body`, `source_url`, …).
fn referral(params: &Params) -> Option<Value> {
    let mut out = Map::new();
    for (name, value) in params.pairs() {
        let Some(rest) = name.strip_prefix("Referral") else {
            continue;
        };
        // Twilio sends `ReferralNumMedia=0` on every WhatsApp message: not a referral.
        if rest.is_empty() || value.is_empty() || (rest == "NumMedia" && value == "0") {
            continue;
        }
        out.entry(snake_case(rest))
            .or_insert_with(|| Value::String(value.to_owned()));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The parameters an inbound message always represents in its normalized fields.
const CONSUMED: &[&str] = &[
    "MessageSid",
    "SmsMessageSid",
    "SmsSid",
    "SmsStatus",
    "ApiVersion",
    "From",
    "To",
    "ProfileName",
    "OriginalRepliedMessageSid",
];

fn message_events(
    ctx: &ChannelContext,
    params: &Params,
) -> Result<Vec<InboundEvent>, ConnectorError> {
    let sid = params
        .first_of(&["MessageSid", "SmsMessageSid", "SmsSid"])
        .ok_or_else(|| ConnectorError::malformed("inbound message without MessageSid"))?
        .trim();
    let from = address::parse(
        params
            .non_empty("From")
            .ok_or_else(|| ConnectorError::malformed("inbound message without From"))?,
    );
    let to = address::parse(
        params
            .non_empty("To")
            .ok_or_else(|| ConnectorError::malformed("inbound message without To"))?,
    );
    let body = params.get("Body").unwrap_or_default();
    let media = collect_media(params)?;

    // What the message is: media first (Body is the caption), then a location, then a button
    // reply, then text.
    let mut body_used = body.is_empty();
    let mut location_used = false;
    let mut button_used = false;
    let contents: Vec<Content> = if !media.is_empty() {
        body_used = true;
        media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut item = Media::from_url(media_kind(m.mime, &from.channel), m.url);
                item.mime_type = m.mime.map(str::to_owned);
                if i == 0 && !body.is_empty() {
                    item.caption = Some(body.to_owned());
                }
                Content::Media(item)
            })
            .collect()
    } else if let Some(place) = location(params) {
        location_used = true;
        body_used |= place.name.as_deref() == Some(body) || place.address.as_deref() == Some(body);
        vec![Content::Location(place)]
    } else if let Some(title) = params.first_of(&["ButtonText", "ButtonPayload"]) {
        button_used = true;
        let title = params.non_empty("ButtonText").unwrap_or(title);
        body_used |= body == title;
        vec![Content::Reply(SelectedReply {
            id: params.non_empty("ButtonPayload").map(str::to_owned),
            title: title.to_owned(),
        })]
    } else {
        match params.non_empty("MessageType") {
            Some(kind) if body.is_empty() && kind != "text" => {
                vec![Content::Unsupported {
                    provider_type: kind.to_owned(),
                }]
            }
            _ => {
                body_used = true;
                vec![Content::text(body)]
            }
        }
    };

    let count = contents.len();
    let num_media_matches = params
        .non_empty("NumMedia")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|n| n == media.len());
    let mut extensions = params.extensions(|name| {
        CONSUMED.contains(&name)
            || is_media_param(name)
            || name.starts_with("Referral")
            || (name == "Body" && body_used)
            || (name == "NumMedia" && num_media_matches)
            || (location_used && matches!(name, "Latitude" | "Longitude" | "Label" | "Address"))
            || (button_used && matches!(name, "ButtonText" | "ButtonPayload"))
    });
    if let Some(referral) = referral(params) {
        extensions.insert("referral".into(), referral);
    }
    let profile_name = params.non_empty("ProfileName").map(str::to_owned);
    let reply_to = params
        .non_empty("OriginalRepliedMessageSid")
        .map(str::to_owned);

    let mut events: Vec<InboundEvent> = contents
        .into_iter()
        .enumerate()
        .map(|(i, content)| {
            // The raw extras describe the one Twilio message: the first event carries them,
            // the others only their position (no copy per medium).
            let mut extensions = if i == 0 {
                std::mem::take(&mut extensions)
            } else {
                Extensions::new()
            };
            if count > 1 {
                extensions.insert("media_index".into(), Value::from(i));
                extensions.insert("media_count".into(), Value::from(count));
            }
            InboundEvent::Message(InboundMessage {
                id: if i == 0 {
                    sid.to_owned()
                } else {
                    format!("{sid}/{i}")
                },
                from: from.clone(),
                to: to.clone(),
                timestamp: None,
                content,
                profile_name: profile_name.clone(),
                reply_to: reply_to.clone(),
                extensions,
            })
        })
        .collect();

    if let Some(consent) = consent(ctx, params, body, sid, &from, &to)? {
        events.push(consent);
    }
    Ok(events)
}

/// The opt-out or opt-in a message carries. `OptOutType` (Advanced Opt-Out) decides when
/// present; otherwise the body's keyword, on SMS (and other non-WhatsApp channels) always, on
/// WhatsApp only when the channel sets `whatsapp_opt_out_keywords` (Twilio itself does not
/// block WhatsApp sends after STOP).
fn consent(
    ctx: &ChannelContext,
    params: &Params,
    body: &str,
    sid: &str,
    from: &Address,
    to: &Address,
) -> Result<Option<InboundEvent>, ConnectorError> {
    let typed = params.non_empty("OptOutType").map(str::trim);
    let kind = match typed {
        Some(t) if t.eq_ignore_ascii_case("STOP") => Some(Keyword::OptOut),
        Some(t) if t.eq_ignore_ascii_case("START") => Some(Keyword::OptIn),
        Some(_) => None,
        None if from.channel == Channel::WhatsApp && !settings::whatsapp_opt_out_keywords(ctx)? => {
            None
        }
        None => keyword(body),
    };
    let word = match keyword(body) {
        Some(_) => body.trim().to_ascii_uppercase(),
        None => typed.unwrap_or_default().to_ascii_uppercase(),
    };
    let consent = || Consent {
        id: sid.to_owned(),
        from: from.clone(),
        to: Some(to.clone()),
        keyword: (!word.is_empty()).then(|| word.clone()),
        timestamp: None,
    };
    Ok(match kind {
        Some(Keyword::OptOut) => Some(InboundEvent::OptOut(consent())),
        Some(Keyword::OptIn) => Some(InboundEvent::OptIn(consent())),
        Some(Keyword::Help) | None => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_single_words_case_insensitive() {
        for word in [
            "STOP",
            "stop",
            "Stop",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
            "REVOKE",
            "optout",
        ] {
            assert_eq!(keyword(word), Some(Keyword::OptOut), "{word}");
            assert_eq!(
                keyword(&format!("  {word} \r\n")),
                Some(Keyword::OptOut),
                "{word}"
            );
        }
        for word in ["START", "yes", "Unstop"] {
            assert_eq!(keyword(word), Some(Keyword::OptIn), "{word}");
        }
        for word in ["HELP", "info"] {
            assert_eq!(keyword(word), Some(Keyword::Help), "{word}");
        }
        for text in [
            "STOP PLEASE",
            "OPT OUT",
            "stop.",
            "",
            "   ",
            "stopp",
            "please stop",
        ] {
            assert_eq!(keyword(text), None, "{text:?}");
        }
    }

    #[test]
    fn media_index_accepts_only_digits() {
        assert_eq!(media_index("MediaUrl0", "MediaUrl"), Some(0));
        assert_eq!(media_index("MediaUrl12", "MediaUrl"), Some(12));
        assert_eq!(media_index("MediaUrl", "MediaUrl"), None);
        assert_eq!(media_index("MediaUrlX", "MediaUrl"), None);
        assert_eq!(media_index("MediaUrl99999999999", "MediaUrl"), None);
    }

    #[test]
    fn referral_keys_are_snake_case() {
        assert_eq!(snake_case("SourceUrl"), "source_url");
        assert_eq!(snake_case("CtwaClid"), "ctwa_clid");
        assert_eq!(snake_case("Body"), "body");
    }
}
