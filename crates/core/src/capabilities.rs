//! What a channel supports, and whether a message may be sent right now.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Content, MediaKind, Timestamp};

/// How well a channel supports a kind of content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportLevel {
    /// Supported as specified.
    Full,
    /// Supported with limits (e.g. fewer buttons, no footer).
    Partial,
    /// Sent in a degraded form (e.g. buttons rendered as numbered text, media as a link).
    Fallback,
    /// Refused.
    Rejected,
}

/// The kinds of content capabilities are declared for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    /// Text.
    Text,
    /// Media of a kind.
    Media(MediaKind),
    /// Location.
    Location,
    /// Contact cards.
    Contacts,
    /// Templates.
    Template,
    /// Reply buttons.
    Buttons,
    /// Lists.
    List,
    /// Reactions.
    Reaction,
}

impl ContentKind {
    /// The kind of a piece of content; `None` for content that is never sent (replies, unsupported).
    pub fn of(content: &Content) -> Option<Self> {
        Some(match content {
            Content::Text { .. } => ContentKind::Text,
            Content::Media(media) => ContentKind::Media(media.kind),
            Content::Location(_) => ContentKind::Location,
            Content::Contacts { .. } => ContentKind::Contacts,
            Content::Template(_) => ContentKind::Template,
            Content::Interactive(i) => match i.action {
                crate::InteractiveAction::Buttons { .. } => ContentKind::Buttons,
                crate::InteractiveAction::List { .. } => ContentKind::List,
            },
            Content::Reaction { .. } => ContentKind::Reaction,
            Content::Reply(_) | Content::Unsupported { .. } => return None,
        })
    }
}

/// A per-kind media size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaLimit {
    /// The media kind.
    pub kind: MediaKind,
    /// The largest accepted file, in bytes.
    pub max_bytes: u64,
}

/// When free-form messages may be sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WindowPolicy {
    /// No window: anything may be sent at any time (SMS).
    None,
    /// Free-form messages only within `window` of the customer's last message; templates
    /// outside it. A message carrying `extended_tag` may be sent up to `extended_window`
    /// (Messenger's `HUMAN_AGENT`: 7 days).
    CustomerService {
        /// The window length, in seconds in JSON.
        #[serde(with = "crate::serde_secs")]
        window: Duration,
        /// The tag that extends the window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extended_tag: Option<String>,
        /// The extended window, in seconds in JSON.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::serde_secs::option"
        )]
        extended_window: Option<Duration>,
    },
}

impl WindowPolicy {
    /// WhatsApp's 24-hour customer-service window.
    pub fn whatsapp() -> Self {
        WindowPolicy::CustomerService {
            window: Duration::from_secs(24 * 3600),
            extended_tag: None,
            extended_window: None,
        }
    }

    /// Messenger's 24-hour window, extended to 7 days by the `HUMAN_AGENT` tag.
    pub fn messenger() -> Self {
        WindowPolicy::CustomerService {
            window: Duration::from_secs(24 * 3600),
            extended_tag: Some("HUMAN_AGENT".into()),
            extended_window: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// The answer to "may this message be sent now?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum WindowDecision {
    /// Send it as it is.
    FreeForm,
    /// The window is closed (or was never opened): only a template may be sent.
    TemplateRequired,
    /// It cannot be sent on this channel at all.
    Reject {
        /// Why, for the operator.
        reason: String,
    },
}

/// What a channel supports.
///
/// ```
/// use std::time::Duration;
/// use switchboard_core::{
///     Capabilities, Content, ContentKind, SupportLevel, Timestamp, WindowDecision, WindowPolicy,
/// };
/// let caps = Capabilities::new(4096, WindowPolicy::whatsapp())
///     .with(ContentKind::Template, SupportLevel::Full);
/// let last_inbound = Timestamp::from_unix_seconds(1_700_000_000);
/// let later = last_inbound.saturating_add(Duration::from_secs(25 * 3600));
/// let decision = caps.window_decision(Some(last_inbound), later, &Content::text("hi"), None);
/// assert_eq!(decision, WindowDecision::TemplateRequired);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The longest text body, in characters.
    pub max_text_chars: u32,
    /// Support per content kind; kinds not listed are [`SupportLevel::Rejected`].
    pub support: Vec<(ContentKind, SupportLevel)>,
    /// Media size limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_limits: Vec<MediaLimit>,
    /// The window policy.
    pub window: WindowPolicy,
}

impl Capabilities {
    /// Text-only capabilities with a window policy; add more with [`Capabilities::with`].
    pub fn new(max_text_chars: u32, window: WindowPolicy) -> Self {
        Self {
            max_text_chars,
            support: vec![(ContentKind::Text, SupportLevel::Full)],
            media_limits: Vec::new(),
            window,
        }
    }

    /// Declares the support level of a content kind.
    pub fn with(mut self, kind: ContentKind, level: SupportLevel) -> Self {
        self.support.retain(|(k, _)| *k != kind);
        self.support.push((kind, level));
        self
    }

    /// The support level of a content kind.
    pub fn support_of(&self, kind: ContentKind) -> SupportLevel {
        self.support
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(SupportLevel::Rejected, |(_, level)| *level)
    }

    /// Decides whether `content` may be sent `now`, given when the customer last wrote
    /// (`None`: never) and the message's tag.
    ///
    /// Content the channel rejects, or text longer than the channel allows, is rejected
    /// whatever the window. Templates are always allowed where supported. Other content needs
    /// an open window; a closed one asks for a template, or rejects when the channel has none.
    pub fn window_decision(
        &self,
        last_inbound: Option<Timestamp>,
        now: Timestamp,
        content: &Content,
        tag: Option<&str>,
    ) -> WindowDecision {
        let Some(kind) = ContentKind::of(content) else {
            return WindowDecision::Reject {
                reason: "this content is received, never sent".into(),
            };
        };
        if self.support_of(kind) == SupportLevel::Rejected {
            return WindowDecision::Reject {
                reason: format!("the channel does not support {kind:?} content"),
            };
        }
        if let Content::Text { text, .. } = content {
            let chars = text.chars().count();
            if chars > self.max_text_chars as usize {
                return WindowDecision::Reject {
                    reason: format!(
                        "text is {chars} characters; the channel allows {}",
                        self.max_text_chars
                    ),
                };
            }
        }
        if kind == ContentKind::Template {
            return WindowDecision::FreeForm;
        }
        let WindowPolicy::CustomerService {
            window,
            extended_tag,
            extended_window,
        } = &self.window
        else {
            return WindowDecision::FreeForm;
        };
        let window = match (extended_tag, extended_window, tag) {
            (Some(allowed), Some(extended), Some(tag)) if allowed == tag => *extended,
            _ => *window,
        };
        let open = last_inbound
            .and_then(|last| now.checked_duration_since(last))
            .is_some_and(|elapsed| elapsed < window)
            // A customer message stamped slightly in the future (clock skew) opens the window.
            || last_inbound.is_some_and(|last| last > now);
        if open {
            WindowDecision::FreeForm
        } else if self.support_of(ContentKind::Template) != SupportLevel::Rejected {
            WindowDecision::TemplateRequired
        } else {
            WindowDecision::Reject {
                reason: "the window is closed and the channel has no templates".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Template, content::Media};

    const HOUR: u64 = 3600;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(secs)
    }

    fn whatsapp() -> Capabilities {
        Capabilities::new(4096, WindowPolicy::whatsapp())
            .with(ContentKind::Template, SupportLevel::Full)
            .with(ContentKind::Media(MediaKind::Image), SupportLevel::Full)
    }

    fn template() -> Content {
        Content::Template(Template {
            name: "hello".into(),
            language: "en".into(),
            header: None,
            body: vec![],
            buttons: vec![],
        })
    }

    #[test]
    fn window_open_closed_and_never_opened() {
        let caps = whatsapp();
        let text = Content::text("hi");
        let last = t(1_000_000);
        let inside = last.saturating_add(Duration::from_secs(23 * HOUR));
        let edge = last.saturating_add(Duration::from_secs(24 * HOUR));
        assert_eq!(
            caps.window_decision(Some(last), inside, &text, None),
            WindowDecision::FreeForm
        );
        assert_eq!(
            caps.window_decision(Some(last), edge, &text, None),
            WindowDecision::TemplateRequired
        );
        assert_eq!(
            caps.window_decision(None, inside, &text, None),
            WindowDecision::TemplateRequired
        );
        assert_eq!(
            caps.window_decision(None, inside, &template(), None),
            WindowDecision::FreeForm
        );
    }

    #[test]
    fn messenger_human_agent_tag_extends_to_seven_days() {
        let caps = Capabilities::new(2000, WindowPolicy::messenger());
        let last = t(1_000_000);
        let three_days = last.saturating_add(Duration::from_secs(72 * HOUR));
        let text = Content::text("hi");
        assert!(matches!(
            caps.window_decision(Some(last), three_days, &text, None),
            WindowDecision::Reject { .. }
        ));
        assert_eq!(
            caps.window_decision(Some(last), three_days, &text, Some("HUMAN_AGENT")),
            WindowDecision::FreeForm
        );
    }

    #[test]
    fn rejects_unsupported_content_and_long_text_in_characters() {
        let caps = Capabilities::new(5, WindowPolicy::None);
        let video = Content::Media(Media::from_url(MediaKind::Video, "https://x/v.mp4"));
        assert!(matches!(
            caps.window_decision(None, t(0), &video, None),
            WindowDecision::Reject { .. }
        ));
        // Five characters, ten bytes: allowed.
        assert_eq!(
            caps.window_decision(None, t(0), &Content::text("ééééé"), None),
            WindowDecision::FreeForm
        );
        assert!(matches!(
            caps.window_decision(None, t(0), &Content::text("123456"), None),
            WindowDecision::Reject { .. }
        ));
    }

    #[test]
    fn sms_has_no_window() {
        let caps = Capabilities::new(1600, WindowPolicy::None);
        assert_eq!(
            caps.window_decision(None, t(0), &Content::text("hi"), None),
            WindowDecision::FreeForm
        );
    }
}
