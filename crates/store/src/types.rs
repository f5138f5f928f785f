//! The values the store takes and returns.

use std::fmt;

use serde::{Deserialize, Serialize};
use switchboard_core::{DeliveryState, ErrorClass, OutboundMessage, SendReceipt, Timestamp};

/// What [`crate::Store::ingest`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestResult {
    /// Events stored.
    pub stored: usize,
    /// Events skipped because their dedupe key was already there.
    pub duplicates: usize,
}

/// What a routing job carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingJobKind {
    /// An inbound event (stored by `ingest`).
    Inbound,
    /// A due timer (payload: the routing `TimerId` JSON).
    Timer,
    /// An agent or API command (payload: the routing `AgentCommand` JSON).
    Command,
}

impl RoutingJobKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RoutingJobKind::Inbound => "inbound",
            RoutingJobKind::Timer => "timer",
            RoutingJobKind::Command => "command",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "inbound" => RoutingJobKind::Inbound,
            "timer" => RoutingJobKind::Timer,
            "command" => RoutingJobKind::Command,
            _ => return None,
        })
    }
}

/// A claimed routing job.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingJob {
    /// The job id (ascending in creation order).
    pub id: i64,
    /// What it is.
    pub kind: RoutingJobKind,
    /// Inbound: the channel the event came from.
    pub channel_id: Option<String>,
    /// Inbound: the event JSON (`InboundEvent`); timer and command: their payload JSON.
    pub payload: String,
    /// How many times it was claimed, this time included.
    pub attempts: i64,
}

/// The routing engine's stored state.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingState {
    /// The version, +1 at every commit.
    pub version: i64,
    /// The state JSON.
    pub state: String,
}

/// A timer to start (or restart) or cancel.
#[derive(Clone, Debug, PartialEq)]
pub enum TimerChange {
    /// Start or replace the timer `key`.
    Start {
        /// The timer's identity (one per conversation and kind).
        key: String,
        /// What to feed back when due (the routing `TimerId` JSON).
        payload: String,
        /// When.
        due: Timestamp,
    },
    /// Cancel the timer `key` (nothing when absent).
    Cancel {
        /// The timer's identity.
        key: String,
    },
}

/// An outbound message to queue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOutbox {
    /// The channel it leaves through.
    pub channel_id: String,
    /// The conversation, if any.
    pub conversation_id: Option<String>,
    /// The message; its `idempotency_key` is unique per channel (a second insert is ignored).
    pub message: OutboundMessage,
}

/// A change to a conversation's summary row.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationUpdate {
    /// `conv_N`.
    pub id: String,
    /// The channel; used when the row is created.
    pub channel_id: Option<String>,
    /// The customer's address id; used when the row is created.
    pub customer: Option<String>,
    /// The new state (`open`, `queued`, `assigned`, `dismissed`, `ended`).
    pub state: Option<String>,
    /// The queue.
    pub queue: Option<String>,
    /// The agent.
    pub agent: Option<String>,
    /// The end reason (with `state = ended`).
    pub end_reason: Option<String>,
}

/// One step of the routing driver, committed atomically by [`crate::Store::commit_routing`].
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingCommit {
    /// The worker that claimed the jobs.
    pub worker: String,
    /// The state version the step started from (`0` when there was none).
    pub base_version: i64,
    /// The new state JSON.
    pub state: String,
    /// The jobs this step finished.
    pub done_jobs: Vec<i64>,
    /// Outbound messages.
    pub outbox: Vec<NewOutbox>,
    /// Timer changes, in order.
    pub timers: Vec<TimerChange>,
    /// Conversation summary changes, in order.
    pub conversations: Vec<ConversationUpdate>,
    /// Transcript entries `(conversation, entry JSON)`.
    pub transcript_entries: Vec<(String, String)>,
    /// Transcript copies `(conversation, body JSON)`.
    pub transcripts: Vec<(String, String)>,
    /// When.
    pub now: Timestamp,
}

/// Where an outbox job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to be sent (first try or a retry at `next_attempt_at`).
    Pending,
    /// Claimed by a worker that is sending it.
    Sending,
    /// The provider accepted it.
    Sent,
    /// Failed for good.
    Failed,
    /// The request may or may not have reached the provider: not re-sent; reconciled by a
    /// status or an operator.
    Unknown,
    /// The recipient opted out; not sent.
    OptedOut,
}

impl OutboxState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Unknown => "unknown",
            OutboxState::OptedOut => "opted_out",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => OutboxState::Pending,
            "sending" => OutboxState::Sending,
            "sent" => OutboxState::Sent,
            "failed" => OutboxState::Failed,
            "unknown" => OutboxState::Unknown,
            "opted_out" => OutboxState::OptedOut,
            _ => return None,
        })
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbox job.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxJob {
    /// The job id.
    pub id: i64,
    /// The channel it leaves through.
    pub channel_id: String,
    /// The conversation, if any.
    pub conversation_id: Option<String>,
    /// The message.
    pub message: OutboundMessage,
    /// Where it is.
    pub state: OutboxState,
    /// Attempts so far (claims).
    pub attempts: i64,
    /// When it may be tried next.
    pub next_attempt_at: Timestamp,
    /// The provider's id once sent.
    pub provider_message_id: Option<String>,
    /// The last error (redacted by the sender), if any.
    pub last_error: Option<String>,
}

/// The result of one send attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum OutboxOutcome {
    /// The provider accepted it.
    Sent(SendReceipt),
    /// Try again at `at` (backoff, Retry-After).
    Retry {
        /// When.
        at: Timestamp,
        /// Why (no secrets).
        error: String,
    },
    /// Failed for good.
    Failed {
        /// The error class, when the provider gave one.
        class: Option<ErrorClass>,
        /// Why.
        error: String,
    },
    /// The recipient opted out.
    OptedOut {
        /// Why.
        error: String,
    },
    /// The request may have reached the provider.
    Unknown {
        /// Why.
        error: String,
    },
}

/// A stored message.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    /// Row id.
    pub id: i64,
    /// `in` or `out`.
    pub direction: String,
    /// The provider's message id.
    pub provider_message_id: Option<String>,
    /// The conversation, when known.
    pub conversation_id: Option<String>,
    /// The customer's address id.
    pub peer: String,
    /// Inbound: the event JSON; outbound: the message JSON.
    pub body: String,
    /// Outbound: the merged delivery state.
    pub delivery: Option<DeliveryState>,
}

/// Row counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Inbound events.
    pub events: i64,
    /// Dedupe keys.
    pub dedupe_keys: i64,
    /// Messages (both directions).
    pub messages: i64,
    /// Contacts.
    pub contacts: i64,
    /// Routing jobs not yet finished.
    pub routing_jobs: i64,
    /// Timers.
    pub timers: i64,
    /// Outbox jobs (all states).
    pub outbox: i64,
    /// Conversations.
    pub conversations: i64,
    /// Transcript entries.
    pub transcript_entries: i64,
}
