//! Transcripts: every message of a conversation, and the moments they are written to the CRM.
//!
//! The engine keeps no message bodies in its state (one open conversation stays well under
//! 2 KB). Instead it emits [`Action::AppendTranscript`] for every
//! message — customer, agent and system, media included as references — and
//! [`Action::WriteTranscript`] at the moments the CRM gets a copy:
//! dismissal warning, dismissal, and the end of the conversation with its [`EndReason`]. The
//! driver stores the entries; [`TranscriptLog`] assembles full transcripts from the actions
//! (the `simulate` tool and the tests use it).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use switchboard_core::{Content, Timestamp};

use crate::{Action, ConvId};

/// Who wrote a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// The customer.
    Customer,
    /// An agent, by id.
    Agent(String),
    /// The system: greetings, menus, auto-responses.
    System,
}

/// One message of a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub from: Party,
    /// What, media as references (URL or provider id), never bytes.
    pub content: Content,
}

/// Why a conversation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The agent ended it.
    Agent,
    /// The customer ended it (EXIT, STOP).
    Customer,
    /// Inactivity: chat timeout, interaction inactivity, the 7-day compliance expiry.
    Timeout,
    /// Expired while choosing a queue or waiting in one.
    ExpiredInQueue,
    /// It could not go on: no route, or messages to the customer fail permanently.
    Failure,
    /// The contact is on no whitelist.
    NotWhitelisted,
}

impl EndReason {
    /// The CRM comment for this reason.
    pub fn comment(self) -> &'static str {
        match self {
            EndReason::Agent => "Chat session ended by the agent",
            EndReason::Customer => "Chat session ended by the consumer",
            EndReason::Timeout => "Chat session ended due to timeout",
            EndReason::ExpiredInQueue => "Chat session ended due to expiration in queue",
            EndReason::Failure => "Chat session ended due to failure",
            EndReason::NotWhitelisted => "Chat session rejected: contact not on the whitelist",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.comment())
    }
}

/// Why a transcript is written now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The dismissal warning was sent.
    DismissalWarning,
    /// The chat was dismissed.
    Dismissed,
    /// The conversation ended.
    Ended,
}

/// A transcript write: which conversation, why now, and the first `entries` entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptWrite {
    /// The conversation (the chat id).
    pub conversation: ConvId,
    /// The channel account.
    pub account: String,
    /// Why now.
    pub trigger: Trigger,
    /// How many entries the transcript has at this point.
    pub entries: u32,
    /// The conversation language, when a language queue was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The last queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The handling agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// With [`Trigger::Ended`]: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
    /// The CRM comment for the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Dispositions (wrap-up reasons).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dispositions: Vec<String>,
}

/// A full transcript as the CRM receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The write this transcript belongs to.
    #[serde(flatten)]
    pub write: TranscriptWrite,
    /// The messages.
    pub messages: Vec<TranscriptEntry>,
}

/// Assembles transcripts from the engine's actions (what a driver's store does).
#[derive(Clone, Debug, Default)]
pub struct TranscriptLog {
    entries: BTreeMap<ConvId, Vec<TranscriptEntry>>,
}

impl TranscriptLog {
    /// Takes one action; returns the full transcript when the action writes one.
    pub fn observe(&mut self, action: &Action) -> Option<Transcript> {
        match action {
            Action::AppendTranscript {
                conversation,
                entry,
            } => {
                self.entries
                    .entry(*conversation)
                    .or_default()
                    .push(entry.clone());
                None
            }
            Action::WriteTranscript(write) => {
                let all = self.entries.get(&write.conversation);
                let messages = all
                    .map(|e| e.iter().take(write.entries as usize).cloned().collect())
                    .unwrap_or_default();
                if write.trigger == Trigger::Ended {
                    self.entries.remove(&write.conversation);
                }
                Some(Transcript {
                    write: write.clone(),
                    messages,
                })
            }
            _ => None,
        }
    }
}
