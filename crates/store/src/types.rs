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
    /// A message of a conversation failed for good (payload: [`SendFailure`] JSON), written
    /// by [`crate::Store::finish_outbox`] with the failure.
    SendFailed,
}

impl RoutingJobKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RoutingJobKind::Inbound => "inbound",
            RoutingJobKind::Timer => "timer",
            RoutingJobKind::Command => "command",
            RoutingJobKind::SendFailed => "send_failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "inbound" => RoutingJobKind::Inbound,
            "timer" => RoutingJobKind::Timer,
            "command" => RoutingJobKind::Command,
            "send_failed" => RoutingJobKind::SendFailed,
            _ => return None,
        })
    }
}

/// The payload of a [`RoutingJobKind::SendFailed`] job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFailure {
    /// The conversation (`conv_N`).
    pub conversation: String,
    /// Whether retrying cannot help (invalid recipient, opted out, refused content); `false`
    /// when the gateway gave up on a retryable error.
    pub permanent: bool,
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
    /// Inbound messages routed into a conversation: their `conversation_id` is set.
    pub message_links: Vec<MessageLink>,
    /// Integration-event deliveries the step's actions caused.
    pub event_deliveries: Vec<crate::NewEventDelivery>,
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
    /// Not attempted (a per-recipient rate limit): pending again at `at`, and the claim's
    /// attempt is not counted.
    Defer {
        /// When.
        at: Timestamp,
    },
    /// Send `message` instead, now (the re-contact template after the provider reported the
    /// customer-service window closed). The row keeps its id and idempotency key.
    Rewrite {
        /// The replacement.
        message: Box<OutboundMessage>,
        /// Why the first form was refused.
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

/// Links an inbound message (stored by `ingest` without a conversation) to the conversation
/// routing put it in; part of a [`RoutingCommit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageLink {
    /// The channel the message came in on.
    pub channel_id: String,
    /// The provider's id of the inbound message.
    pub provider_message_id: String,
    /// `conv_N`.
    pub conversation_id: String,
}

/// Which conversations [`crate::Store::conversations`] lists: every given field must match.
/// Newest first (by `opened_at`, then id), `limit` at a time, continuing after `cursor`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    /// `open`, `queued`, `assigned`, `dismissed` or `ended`.
    pub state: Option<String>,
    /// The queue.
    pub queue: Option<String>,
    /// The channel.
    pub channel_id: Option<String>,
    /// The agent.
    pub agent: Option<String>,
    /// At most this many rows (the store caps it at 500; 0 means 50).
    pub limit: u32,
    /// Rows strictly after this position in the order (from [`ConversationPage::next`]).
    pub cursor: Option<ConversationCursor>,
}

/// A position in the conversation order: the last row of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationCursor {
    /// Its `opened_at` (unix milliseconds).
    pub opened_at: i64,
    /// Its id.
    pub id: String,
}

/// A page of conversations.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationPage {
    /// The rows, newest first.
    pub conversations: Vec<ConversationRecord>,
    /// Where the next page starts, when there may be one.
    pub next: Option<ConversationCursor>,
}

/// A conversation's summary row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConversationRecord {
    /// `conv_N`.
    pub id: String,
    /// The channel.
    pub channel_id: String,
    /// The customer's address id.
    pub customer: String,
    /// `open`, `queued`, `assigned`, `dismissed` or `ended`.
    pub state: String,
    /// The queue.
    pub queue: Option<String>,
    /// The agent.
    pub agent: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// When it opened.
    pub opened_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it ended.
    pub closed_at: Option<Timestamp>,
}

/// One message of a conversation (or one sent outside any).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMessage {
    /// Row id.
    pub id: i64,
    /// The channel.
    pub channel_id: String,
    /// `in` or `out`.
    pub direction: String,
    /// The provider's message id (outbound: once accepted).
    pub provider_message_id: Option<String>,
    /// The conversation, when known.
    pub conversation_id: Option<String>,
    /// Outbound: its outbox row.
    pub outbox_id: Option<i64>,
    /// The customer's address id.
    pub peer: String,
    /// Inbound: the event JSON; outbound: the message JSON.
    pub body: String,
    /// Outbound: the merged delivery state.
    pub delivery: Option<DeliveryState>,
    /// Outbound: where its outbox row is.
    pub outbox_state: Option<OutboxState>,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// A contact found by [`crate::Store::search_contacts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    /// The channel.
    pub channel_id: String,
    /// The provider-native address id (E.164, WhatsApp id, PSID).
    pub address: String,
    /// The full core `Address` JSON.
    pub address_json: String,
    /// The profile name the provider reported.
    pub profile_name: Option<String>,
    /// First message.
    pub first_seen_at: Timestamp,
    /// Last message.
    pub last_inbound_at: Timestamp,
}

/// A conversation's transcript as stored: its entries and the copies written for the CRM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TranscriptRecord {
    /// Entry JSONs (routing `TranscriptEntry`), in order.
    pub entries: Vec<String>,
    /// Written copies (routing `TranscriptWrite` JSON) with when, in order.
    pub writes: Vec<(Timestamp, String)>,
}

/// An outbox row with what is known of its delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    /// The outbox row.
    pub job: OutboxJob,
    /// The merged delivery state, once the provider accepted it.
    pub delivery: Option<DeliveryState>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What [`crate::Store::enqueue_outbox`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The outbox row id.
    pub id: i64,
    /// `false` when a row with the same channel and idempotency key was already there (its id
    /// is returned; nothing was written).
    pub created: bool,
}
