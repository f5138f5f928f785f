//! The conversation engine behind every channel: queues, menus, assignment, timers,
//! transcripts. Sans-IO and deterministic.
//!
//! [`Engine::handle`] takes the [`State`], one [`Input`] (a normalized inbound event of a channel
//! account, an agent command, a due timer) and the current time, updates the state and returns
//! [`Action`]s for the driver (send, offer, start/cancel timer, write transcript, close, emit).
//!
//! Invariant: the engine performs no I/O, never reads a clock (time is an argument), and uses no
//! randomness (percent allocation is a deterministic weighted round robin kept in the state).
//! The same configuration, state and inputs always give the same actions, so every rule is
//! unit-testable and a production timeline can be replayed.
//!
//! ```
//! use switchboard_core::{Address, Channel, Content, Extensions, InboundEvent, InboundMessage, Timestamp};
//! use switchboard_routing::{Action, Engine, Input, RoutingConfig, State};
//!
//! let config: RoutingConfig = serde_json::from_value(serde_json::json!({
//!     "agents": [{"id": "anna"}],
//!     "accounts": [{
//!         "id": "wa", "channel": "whatsapp",
//!         "messages": {"greeting": "Hello!"},
//!         "queues": [{"id": "support", "name": "Support", "agents": [{"agent": "anna"}]}]
//!     }]
//! })).unwrap();
//! let engine = Engine::new(config).unwrap();
//! let mut state = State::new();
//! let now = Timestamp::from_unix_seconds(1_700_000_000);
//! let hello = InboundEvent::Message(InboundMessage {
//!     id: "wamid.1".into(),
//!     from: Address::new(Channel::WhatsApp, switchboard_core::AddressKind::WhatsAppId, "15551234"),
//!     to: Address::new(Channel::WhatsApp, switchboard_core::AddressKind::ProviderAccount, "1"),
//!     timestamp: None,
//!     content: Content::text("hi"),
//!     profile_name: None,
//!     reply_to: None,
//!     extensions: Extensions::new(),
//! });
//! let actions = engine.handle(&mut state, Input::Inbound { account: "wa".into(), event: hello }, now).unwrap();
//! assert!(actions.iter().any(|a| matches!(a, Action::Send { .. })));
//! assert_eq!(state.conversations.len(), 1);
//! ```
//!
#![doc = include_str!("../ROUTING.md")]

pub mod assignment;
pub mod config;
mod engine;
pub mod error;
pub mod hours;
pub mod menu;
pub mod metrics;
pub mod scenario;
pub mod timers;
pub mod transcript;
mod validate;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use config::RoutingConfig;
pub use engine::{
    Action, AgentCommand, AgentState, Availability, Contact, Conversation, Engine, Input,
    IntegrationEvent, OfferKind, Phase, Sender, State, TransferTarget,
};
pub use error::{InputError, ValidationError, ValidationErrors};
pub use timers::{TimerId, TimerKind};
pub use transcript::EndReason;
pub use validate::{MINUTES, PROFICIENCY, SECONDS};

/// A conversation id. JSON and display: `"conv_12"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConvId(pub u64);

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conv_{}", self.0)
    }
}

impl From<ConvId> for String {
    fn from(id: ConvId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for ConvId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.strip_prefix("conv_")
            .and_then(|n| n.parse().ok())
            .map(ConvId)
            .ok_or_else(|| format!("`{text}` is not a conversation id `conv_N`"))
    }
}
