//! Scenarios: a configuration plus a timeline of customer messages, agent commands and clock
//! advances, run through the engine with a simulated clock. `switchboard simulate` and the tests
//! use it; the format is documented in `docs/scenarios.md`.
//!
//! [`Simulator`] is the reference driver: it keeps the timers the engine starts, fires them in
//! due order when the clock advances, and assembles transcripts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_core::{
    Address, AddressKind, Channel, Consent, Content, Extensions, InboundEvent, InboundMessage,
    Timestamp,
};

use crate::transcript::{Transcript, TranscriptLog};
use crate::{Action, AgentCommand, ConvId, Engine, Input, RoutingConfig, State, TimerId};

/// A scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The clock at the first step (RFC 3339).
    pub start: Timestamp,
    /// The routing configuration.
    pub config: RoutingConfig,
    /// The timeline.
    pub steps: Vec<Step>,
}

/// One step of a timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    /// A customer message.
    Customer {
        /// The customer's address id (a phone number, a WhatsApp id).
        from: String,
        /// The account; the first account when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// Text of the message (or use `content`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Any content (media, replies).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
    },
    /// A connector-reported opt-out (or opt-in with `opt_in: true`).
    Consent {
        /// The customer.
        from: String,
        /// The account; the first when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// Opt in instead of out.
        #[serde(default)]
        opt_in: bool,
    },
    /// An agent command (the fields of [`AgentCommand`], tagged by `command`).
    Agent(AgentCommand),
    /// Move the clock forward, firing due timers on the way.
    Advance {
        /// Seconds.
        #[serde(default)]
        seconds: u64,
        /// Minutes.
        #[serde(default)]
        minutes: u64,
        /// Hours.
        #[serde(default)]
        hours: u64,
    },
    /// Report a permanent delivery failure for a conversation.
    SendFailed {
        /// The conversation.
        conversation: ConvId,
    },
}

/// One line of output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The clock.
    pub at: Timestamp,
    /// The step (0-based) that caused it.
    pub step: usize,
    /// What happened.
    #[serde(flatten)]
    pub what: LineKind,
}

/// What a line reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "lines are printed and dropped one by one"
)]
pub enum LineKind {
    /// An action of the engine.
    Action(Action),
    /// The engine refused an input.
    Error(String),
    /// A full transcript, assembled when the engine writes one.
    Transcript(Transcript),
}

/// A driver with a simulated clock.
#[derive(Debug)]
pub struct Simulator {
    /// The engine.
    pub engine: Engine,
    /// The state.
    pub state: State,
    /// The clock.
    pub now: Timestamp,
    /// Running timers.
    pub timers: BTreeMap<TimerId, Timestamp>,
    transcripts: TranscriptLog,
}

impl Simulator {
    /// A simulator at `start` with an empty state.
    pub fn new(engine: Engine, start: Timestamp) -> Self {
        Self {
            engine,
            state: State::new(),
            now: start,
            timers: BTreeMap::new(),
            transcripts: TranscriptLog::default(),
        }
    }

    /// Handles one input now; records timers; returns the output lines.
    pub fn input(&mut self, input: Input, step: usize) -> Vec<Line> {
        match self.engine.handle(&mut self.state, input, self.now) {
            Ok(actions) => self.observe(actions, step),
            Err(e) => vec![Line {
                at: self.now,
                step,
                what: LineKind::Error(e.to_string()),
            }],
        }
    }

    fn observe(&mut self, actions: Vec<Action>, step: usize) -> Vec<Line> {
        let mut lines = Vec::with_capacity(actions.len());
        for action in actions {
            match &action {
                Action::StartTimer { id, due } => {
                    self.timers.insert(*id, *due);
                }
                Action::CancelTimer { id } => {
                    self.timers.remove(id);
                }
                _ => {}
            }
            let transcript = self.transcripts.observe(&action);
            lines.push(Line {
                at: self.now,
                step,
                what: LineKind::Action(action),
            });
            if let Some(t) = transcript {
                lines.push(Line {
                    at: self.now,
                    step,
                    what: LineKind::Transcript(t),
                });
            }
        }
        lines
    }

    /// Advances the clock to `until`, firing every timer due on the way in due order.
    pub fn advance_to(&mut self, until: Timestamp, step: usize) -> Vec<Line> {
        let mut lines = Vec::new();
        loop {
            let next = self
                .timers
                .iter()
                .filter(|(_, due)| **due <= until)
                .min_by_key(|(id, due)| (**due, **id))
                .map(|(id, due)| (*id, *due));
            let Some((id, due)) = next else { break };
            self.timers.remove(&id);
            self.now = self.now.max(due);
            lines.extend(self.input(Input::Timer { id }, step));
        }
        self.now = self.now.max(until);
        lines
    }
}

/// Builds a customer address on an account's channel.
pub fn customer_address(channel: &Channel, id: &str) -> Address {
    let kind = match channel {
        Channel::Sms => AddressKind::Phone,
        Channel::WhatsApp => AddressKind::WhatsAppId,
        Channel::Messenger | Channel::Instagram => AddressKind::PageScopedId,
        _ => AddressKind::Other,
    };
    Address::new(channel.clone(), kind, id)
}

/// A customer message event.
pub fn message(channel: &Channel, from: &str, id: String, content: Content) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        id,
        from: customer_address(channel, from),
        to: Address::new(channel.clone(), AddressKind::ProviderAccount, "business"),
        timestamp: None,
        content,
        profile_name: None,
        reply_to: None,
        extensions: Extensions::new(),
    })
}

impl Scenario {
    /// Runs the scenario. Fails only when the configuration is invalid.
    pub fn run(&self) -> Result<Vec<Line>, crate::ValidationErrors> {
        let engine = Engine::new(self.config.clone())?;
        let mut sim = Simulator::new(engine, self.start);
        let mut lines = Vec::new();
        for (step, s) in self.steps.iter().enumerate() {
            match s {
                Step::Customer {
                    from,
                    account,
                    text,
                    content,
                } => {
                    let Some((account, channel)) = self.account(account.as_deref()) else {
                        lines.push(self.error(&sim, step, "unknown account"));
                        continue;
                    };
                    let content = content
                        .clone()
                        .unwrap_or_else(|| Content::text(text.clone().unwrap_or_default()));
                    let event = message(&channel, from, format!("in_{step}"), content);
                    lines.extend(sim.input(Input::Inbound { account, event }, step));
                }
                Step::Consent {
                    from,
                    account,
                    opt_in,
                } => {
                    let Some((account, channel)) = self.account(account.as_deref()) else {
                        lines.push(self.error(&sim, step, "unknown account"));
                        continue;
                    };
                    let consent = Consent {
                        id: format!("consent_{step}"),
                        from: customer_address(&channel, from),
                        to: None,
                        keyword: None,
                        timestamp: None,
                    };
                    let event = if *opt_in {
                        InboundEvent::OptIn(consent)
                    } else {
                        InboundEvent::OptOut(consent)
                    };
                    lines.extend(sim.input(Input::Inbound { account, event }, step));
                }
                Step::Agent(command) => {
                    lines.extend(sim.input(Input::Agent(command.clone()), step));
                }
                Step::Advance {
                    seconds,
                    minutes,
                    hours,
                } => {
                    let total = seconds + minutes * 60 + hours * 3600;
                    let until = sim.now.saturating_add(Duration::from_secs(total));
                    lines.extend(sim.advance_to(until, step));
                }
                Step::SendFailed { conversation } => {
                    let input = Input::SendFailed {
                        conversation: *conversation,
                        permanent: true,
                    };
                    lines.extend(sim.input(input, step));
                }
            }
        }
        Ok(lines)
    }

    fn account(&self, id: Option<&str>) -> Option<(String, Channel)> {
        let account = match id {
            Some(id) => self.config.accounts.iter().find(|a| a.id == id)?,
            None => self.config.accounts.first()?,
        };
        Some((account.id.clone(), account.channel.clone()))
    }

    fn error(&self, sim: &Simulator, step: usize, text: &str) -> Line {
        Line {
            at: sim.now,
            step,
            what: LineKind::Error(text.to_owned()),
        }
    }
}
