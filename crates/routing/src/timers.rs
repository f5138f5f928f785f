//! Timer identities. The engine asks the driver to start and cancel timers; the driver persists
//! them and feeds [`crate::Input::Timer`] back when they are due.
//!
//! A conversation has at most one timer of each [`TimerKind`], so [`TimerId`] is the pair and a
//! new start of the same id replaces the old one (the driver upserts). A firing whose timer the
//! state no longer holds, or that arrives before the due time the state holds, is ignored:
//! stale firings are harmless.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ConvId;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// The customer is still choosing a queue: the chat expires.
    QueueSelecting,
    /// Unanswered in queue: the chat expires (hours or after-hours value).
    Unanswered,
    /// An offer to an agent was not accepted in time: RONA.
    Offer,
    /// A new message waited for its away agent.
    AssignedAgentWait,
    /// Then waited for the agent's queue: the fallback route applies.
    AssignedQueueWait,
    /// Focus lock: stop waiting for the preferred agent.
    PreferredFallback,
    /// Send the dismissal warning.
    DismissalWarning,
    /// Dismiss the inactive chat (or ask the agent to).
    Dismissal,
    /// Customer inactivity ends the chat.
    ChatTimeout,
    /// The 7-day compliance expiry, whatever the settings.
    Compliance,
    /// The agent has not replied within the response-time target.
    ResponseTarget,
    /// No customer answer since the last agent message: close ("Closed for inactivity").
    InteractionInactivity,
    /// A transfer was not accepted in time.
    Transfer,
}

/// A timer: one kind on one conversation. JSON: `{"conversation": "conv_3", "kind": "offer"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerId {
    /// The conversation.
    pub conversation: ConvId,
    /// The kind.
    pub kind: TimerKind,
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.conversation, self.kind)
    }
}
