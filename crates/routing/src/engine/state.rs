//! The engine's persistent state. Everything here is serde: the driver stores it between inputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::{Address, Timestamp};

use crate::ConvId;
use crate::metrics::Metrics;
use crate::timers::TimerKind;

/// All routing state: open conversations, contacts, agents, counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The next conversation number.
    pub next_conversation: u64,
    /// The next outbound message number (idempotency keys `msg_N`).
    pub next_message: u64,
    /// Open conversations.
    pub conversations: BTreeMap<ConvId, Conversation>,
    /// Contacts, keyed `account/address id`.
    pub contacts: BTreeMap<String, Contact>,
    /// Agents that have appeared in commands; the others are offline.
    pub agents: BTreeMap<String, AgentState>,
    /// Conversations waiting for an agent, in arrival order.
    pub waiting: Vec<ConvId>,
    /// Percent-allocation counters per queue (`account/queue`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub percent_counters: BTreeMap<String, Vec<i64>>,
    /// Counters.
    pub metrics: Metrics,
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The open conversation, if any.
    pub fn conversation(&self, id: ConvId) -> Option<&Conversation> {
        self.conversations.get(&id)
    }

    /// An agent's state (offline when never seen).
    pub fn agent(&self, id: &str) -> AgentState {
        self.agents.get(id).cloned().unwrap_or_default()
    }
}

/// A contact: one customer address on one channel account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Outbound is stopped (STOP family) until an opt-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opted_out: bool,
    /// When the customer last wrote (opens the customer-service window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound: Option<Timestamp>,
    /// The agent who last handled the contact (per-customer preferred agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_agent: Option<String>,
    /// The open conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<ConvId>,
}

/// An agent's routing state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Availability.
    pub availability: Availability,
    /// Conversations offered to or handled by the agent: what counts against concurrency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ConvId>,
    /// When the agent last got a conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_assigned: Option<Timestamp>,
}

/// An agent's availability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Gets offers.
    Available,
    /// Paused: no offers; keeps their conversations.
    Away,
    /// Logged out.
    #[default]
    Offline,
    /// Redirected on no answer: an offer lapsed. No offers until set available again.
    Rona,
}

/// One open conversation. Small by design: no message bodies (see [`crate::transcript`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The channel account.
    pub account: String,
    /// The customer.
    pub customer: Address,
    /// Where the conversation is.
    pub phase: Phase,
    /// The chosen language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The leaf queue, once chosen (the last one after a transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The account of `queue` when it is not the conversation's own (a transfer across
    /// accounts, never for WhatsApp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_account: Option<String>,
    /// The agent handling it (assigned, or away with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent who last handled it (per-case preferred agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_agent: Option<String>,
    /// When it started.
    pub started: Timestamp,
    /// When the customer last wrote.
    pub last_customer: Timestamp,
    /// The start of the current customer inactivity (last customer message or acceptance).
    pub idle_since: Timestamp,
    /// The first customer message the agent has not answered yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_reply: Option<Timestamp>,
    /// Started outside operation hours.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_hours: bool,
    /// Running timers and when they are due.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<(TimerKind, Timestamp)>,
    /// Agents who rejected or let lapse an offer during the current wait.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// Transcript entries so far.
    pub entries: u32,
    /// The dismissal warning was sent for the current inactivity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warned: bool,
}

impl Conversation {
    /// When a timer of this kind is due, if running.
    pub fn timer(&self, kind: TimerKind) -> Option<Timestamp> {
        self.timers
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, due)| *due)
    }
}

/// Where a conversation is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Choosing a queue in the menu, at `menu` (the top level when `None`).
    Selecting {
        /// The current menu node (queue id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        menu: Option<String>,
    },
    /// Waiting in `queue` for an agent.
    Queued {
        /// When it entered the queue.
        since: Timestamp,
        /// Offer to this agent first (preferred agent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefer: Option<String>,
        /// Waiting after its agent did not take a new message (wait-for-assigned-queue).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        returning: bool,
    },
    /// Offered to an agent from the queue.
    Offered {
        /// The agent.
        agent: String,
        /// When it entered the queue.
        since: Timestamp,
    },
    /// Handled by `agent`.
    Assigned,
    /// A new message waits for the away agent to accept.
    AwaitingAgent,
    /// Being transferred; the current agent keeps it until someone accepts.
    Transferring {
        /// The target queue (leaf id, in `account`), or none for a transfer to an agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// The account of the target queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// The agent it is offered to now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offered: Option<String>,
        /// When the transfer started.
        since: Timestamp,
    },
    /// Dismissed for inactivity: back in its queue, routed again when the customer replies.
    Dismissed,
}
