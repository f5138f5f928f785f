//! The engine: `(state, input, now) → (state, actions)`.
//!
//! Call order: build an [`Engine`] from a validated configuration once; keep a [`State`]
//! (persist it between calls, it is serde); for every input call [`Engine::handle`] with the
//! current time, then execute the returned [`Action`]s in order (send, offer, start or cancel
//! timers, write transcripts). Feed due timers back as [`Input::Timer`]. The engine never reads
//! a clock, performs no I/O and uses no randomness: the same inputs at the same times give the
//! same actions.

mod agent;
mod compiled;
mod customer;
mod fire;
mod flow;
mod state;

use serde::{Deserialize, Serialize};
use switchboard_core::{Address, Content, InboundEvent, OutboundMessage, Timestamp};

use self::compiled::Compiled;
pub use self::state::{AgentState, Availability, Contact, Conversation, Phase, State};
use crate::ConvId;
use crate::config::RoutingConfig;
use crate::error::{InputError, ValidationErrors};
use crate::timers::TimerId;
#[cfg(test)]
use crate::transcript::Trigger;
use crate::transcript::{EndReason, TranscriptEntry, TranscriptWrite};

/// The routing engine for one configuration. Immutable: all change lives in [`State`].
#[derive(Clone, Debug)]
pub struct Engine {
    compiled: Compiled,
}

/// One input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "inbound messages are the common case; boxing would allocate for each"
)]
pub enum Input {
    /// A normalized event from the connector of a channel account.
    Inbound {
        /// The channel account id.
        account: String,
        /// The event.
        event: InboundEvent,
    },
    /// A command from an agent desktop or the API.
    Agent(AgentCommand),
    /// A timer is due.
    Timer {
        /// The timer.
        id: TimerId,
    },
    /// The gateway could not deliver a message of a conversation.
    SendFailed {
        /// The conversation.
        conversation: ConvId,
        /// Whether retrying cannot help (invalid recipient, blocked): ends the conversation.
        permanent: bool,
    },
}

/// A command from an agent (or the API on an agent's behalf).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "commands are short-lived values handled once; boxing content buys nothing"
)]
pub enum AgentCommand {
    /// Change availability; `available` also clears RONA.
    SetAvailability {
        /// The agent.
        agent: String,
        /// The new state.
        availability: Availability,
    },
    /// Accept an offer.
    Accept {
        /// The agent.
        agent: String,
        /// The conversation offered.
        conversation: ConvId,
    },
    /// Reject an offer: the conversation goes back to its queue.
    Reject {
        /// The agent.
        agent: String,
        /// The conversation offered.
        conversation: ConvId,
    },
    /// Send a message to the customer.
    Send {
        /// The agent.
        agent: String,
        /// The conversation.
        conversation: ConvId,
        /// What to send.
        content: Content,
        /// A window-extending tag (Messenger `HUMAN_AGENT`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// Send a canned answer (account answers first, then global ones).
    SendCanned {
        /// The agent.
        agent: String,
        /// The conversation.
        conversation: ConvId,
        /// The canned answer id.
        canned: String,
    },
    /// Transfer to a queue or an agent.
    Transfer {
        /// The transferring agent.
        agent: String,
        /// The conversation.
        conversation: ConvId,
        /// Where to.
        target: TransferTarget,
    },
    /// Dismiss an inactive chat (manual dismissal).
    Dismiss {
        /// The agent.
        agent: String,
        /// The conversation.
        conversation: ConvId,
    },
    /// End the conversation with dispositions.
    End {
        /// The agent.
        agent: String,
        /// The conversation.
        conversation: ConvId,
        /// Wrap-up reasons (mandatory when the account says so).
        #[serde(default)]
        dispositions: Vec<String>,
    },
}

/// Where a transfer goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransferTarget {
    /// A leaf queue; of another account only for non-WhatsApp conversations.
    Queue {
        /// The account of the queue; the conversation's own when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// The queue id.
        queue: String,
    },
    /// An agent.
    Agent {
        /// The agent id.
        agent: String,
    },
}

/// Who a message is sent as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Sender {
    /// The system (greeting, menu, auto-responses).
    System,
    /// An agent.
    Agent(String),
}

/// Why an offer is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// A conversation from the queue.
    Queue,
    /// A new message in the agent's own conversation while the agent was away.
    Returning,
    /// A transfer from another agent.
    Transfer,
}

/// What the driver must do. Execute in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "sends are the common action; boxing them would allocate for each"
)]
pub enum Action {
    /// Send a message on the account's channel.
    Send {
        /// The conversation, when the message belongs to one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation: Option<ConvId>,
        /// The channel account.
        account: String,
        /// Who it is from.
        sender: Sender,
        /// The message (the idempotency key is stable for this state and input).
        message: OutboundMessage,
        /// The agent's free text was replaced by the account's re-contact template because the
        /// customer-service window had closed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recontact_template: bool,
    },
    /// A message was not sent; the reason is for the agent or the operator.
    SendRefused {
        /// The conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation: Option<ConvId>,
        /// Who tried to send.
        sender: Sender,
        /// Why not.
        reason: String,
    },
    /// Offer a conversation to an agent; accept or reject before `expires_at`.
    Offer {
        /// The conversation.
        conversation: ConvId,
        /// The agent.
        agent: String,
        /// The queue it comes from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// Why.
        kind: OfferKind,
        /// When the offer lapses.
        expires_at: Timestamp,
    },
    /// Take back an offer (it lapsed, or the conversation moved on).
    WithdrawOffer {
        /// The conversation.
        conversation: ConvId,
        /// The agent.
        agent: String,
    },
    /// Start (or restart) a timer; fire it as [`Input::Timer`] at `due`.
    StartTimer {
        /// The timer.
        id: TimerId,
        /// When it is due.
        due: Timestamp,
    },
    /// Cancel a timer.
    CancelTimer {
        /// The timer.
        id: TimerId,
    },
    /// Append a message to a conversation's transcript.
    AppendTranscript {
        /// The conversation.
        conversation: ConvId,
        /// The message.
        entry: TranscriptEntry,
    },
    /// Write the transcript (so far) to the CRM.
    WriteTranscript(TranscriptWrite),
    /// The conversation is closed; it leaves the state.
    Close {
        /// The conversation.
        conversation: ConvId,
        /// Why.
        reason: EndReason,
        /// Dispositions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dispositions: Vec<String>,
    },
    /// Tell integrations (CRM, dashboards, webhooks) something happened.
    Emit(IntegrationEvent),
}

/// Events for integrations and dashboards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IntegrationEvent {
    /// A contact wrote and a conversation started.
    ConversationStarted {
        /// The conversation.
        conversation: ConvId,
        /// The account.
        account: String,
        /// The customer.
        customer: Address,
        /// Outside operation hours.
        after_hours: bool,
    },
    /// The conversation entered a leaf queue.
    Queued {
        /// The conversation.
        conversation: ConvId,
        /// The queue.
        queue: String,
    },
    /// An agent accepted.
    Accepted {
        /// The conversation.
        conversation: ConvId,
        /// The agent.
        agent: String,
        /// Milliseconds waited in queue.
        wait_ms: u64,
    },
    /// An agent's availability changed by the engine (RONA).
    AgentAvailability {
        /// The agent.
        agent: String,
        /// The new state.
        availability: Availability,
    },
    /// The agent has not replied within the response-time target.
    ResponseTargetBreached {
        /// The conversation.
        conversation: ConvId,
        /// The agent.
        agent: String,
    },
    /// Manual dismissal: the agent is offered to dismiss the inactive chat.
    DismissalSuggested {
        /// The conversation.
        conversation: ConvId,
        /// The agent.
        agent: String,
    },
    /// The chat was dismissed and waits for the customer.
    Dismissed {
        /// The conversation.
        conversation: ConvId,
    },
    /// A transfer completed.
    Transferred {
        /// The conversation.
        conversation: ConvId,
        /// The previous agent.
        from: String,
        /// The new agent.
        to: String,
    },
    /// A transfer was not accepted; the conversation stays with the transferring agent.
    TransferFailed {
        /// The conversation.
        conversation: ConvId,
        /// The transferring agent, who keeps it.
        agent: String,
    },
    /// The contact opted out on this account.
    OptedOut {
        /// The account.
        account: String,
        /// The customer.
        customer: Address,
    },
    /// The contact opted back in.
    OptedIn {
        /// The account.
        account: String,
        /// The customer.
        customer: Address,
    },
    /// A conversation ended.
    Ended {
        /// The conversation.
        conversation: ConvId,
        /// Why.
        reason: EndReason,
    },
}

impl Engine {
    /// Validates the configuration (every problem at once) and compiles it.
    pub fn new(config: RoutingConfig) -> Result<Self, ValidationErrors> {
        config.validate()?;
        let mut resolved = config;
        resolved.resolve_copies();
        Ok(Self {
            compiled: Compiled::new(resolved),
        })
    }

    /// The (resolved) configuration.
    pub fn config(&self) -> &RoutingConfig {
        &self.compiled.config
    }

    /// Handles one input at `now`, appending actions to `out`. On error the state is unchanged
    /// and nothing is appended.
    pub fn handle_into(
        &self,
        state: &mut State,
        input: Input,
        now: Timestamp,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let mut cx = flow::Cx {
            eng: &self.compiled,
            st: state,
            now,
            out,
        };
        match input {
            Input::Inbound { account, event } => cx.inbound(&account, event),
            Input::Agent(command) => cx.command(command),
            Input::Timer { id } => {
                cx.timer(id);
                Ok(())
            }
            Input::SendFailed {
                conversation,
                permanent,
            } => {
                if permanent && cx.st.conversations.contains_key(&conversation) {
                    cx.end(conversation, EndReason::Failure, Vec::new());
                }
                Ok(())
            }
        }
    }

    /// Handles one input at `now` and returns the actions.
    pub fn handle(
        &self,
        state: &mut State,
        input: Input,
        now: Timestamp,
    ) -> Result<Vec<Action>, InputError> {
        let mut out = Vec::new();
        self.handle_into(state, input, now, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
