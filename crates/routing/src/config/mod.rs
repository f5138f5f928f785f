//! The routing configuration: channel accounts, queue trees, agents, messages, timers, hours.
//!
//! Every struct here is plain serde data (TOML- and JSON-friendly, `snake_case` keys). Load it,
//! then call [`RoutingConfig::validate`], which reports *every* problem with the path of the field
//! and the reason, or [`crate::Engine::new`], which validates and compiles it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::{Capabilities, Channel, ContentKind, SupportLevel, Template, WindowPolicy};

use crate::hours::HoursConfig;

/// The whole routing configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Settings shared by every account unless overridden.
    #[serde(default)]
    pub defaults: Defaults,
    /// The agents who can be assigned to leaf queues.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Named contact lists (addresses' `id`s), used by account whitelists.
    #[serde(default)]
    pub contact_lists: BTreeMap<String, Vec<String>>,
    /// Canned answers available on every account.
    #[serde(default)]
    pub canned_answers: Vec<CannedAnswer>,
    /// One entry per connector channel account.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
}

/// Global defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Chat concurrency: how many conversations an agent handles at once (queues may override).
    pub concurrency: u16,
    /// Service-level target: a conversation counts as answered in time when an agent accepts it
    /// within this many seconds of entering the queue.
    pub service_level_seconds: u32,
    /// Words a customer sends to end the chat (case-insensitive).
    pub exit_words: Vec<String>,
    /// Words a customer sends to go up one menu level (case-insensitive).
    pub back_words: Vec<String>,
    /// Treat a message whose whole text is a protected SMS word (STOP, START, HELP…) as that
    /// command, on every channel.
    pub text_commands: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            concurrency: 3,
            service_level_seconds: 60,
            exit_words: vec!["EXIT".into()],
            back_words: vec!["BACK".into()],
            text_commands: true,
        }
    }
}

/// An agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's id, used in commands and actions.
    pub id: String,
    /// The name shown to customers ("Anna has joined the chat").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A canned answer agents can send by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedAnswer {
    /// The id agents pick it by.
    pub id: String,
    /// The text (≤ 918 characters).
    pub text: String,
}

/// One channel account: a connector channel (a WhatsApp number, an SMS sender, a page).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The account id, as the gateway names the channel.
    pub id: String,
    /// The channel the account is on.
    pub channel: Channel,
    /// What the channel supports, as its connector declares; a default per channel when absent
    /// (WhatsApp: 24 h window with templates; Messenger: 24 h, `HUMAN_AGENT` 7 days; others: no
    /// window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Copy the queue tree of this other account; the copy replaces this account's `queues`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_queues_from: Option<String>,
    /// The queue tree. Top-level entries are the first menu (one per language when
    /// multi-language).
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Customer-facing messages.
    #[serde(default)]
    pub messages: Messages,
    /// Per-language overrides of `messages`, keyed by a top-level queue's `language`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub localized_messages: BTreeMap<String, Messages>,
    /// Timers.
    #[serde(default)]
    pub timers: Timers,
    /// Operation hours; always open when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HoursConfig>,
    /// Only contacts on these lists may start a conversation.
    #[serde(default)]
    pub whitelist: Whitelist,
    /// Wrap-up reasons.
    #[serde(default)]
    pub dispositions: Dispositions,
    /// Canned answers of this account (blended with the global ones; local wins on the same id).
    #[serde(default)]
    pub canned_answers: Vec<CannedAnswer>,
    /// Transfers.
    #[serde(default)]
    pub transfer: TransferConfig,
    /// The approved template sent instead of agent free text once the 24 h window has closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recontact_template: Option<Template>,
    /// What happens when a conversation has waited for its agent and then its queue in vain.
    #[serde(default)]
    pub fallback: FallbackRoute,
}

impl AccountConfig {
    /// The account's capabilities: the configured ones, or the channel's defaults.
    pub fn effective_capabilities(&self) -> Capabilities {
        if let Some(caps) = &self.capabilities {
            return caps.clone();
        }
        let window = match self.channel {
            Channel::WhatsApp => WindowPolicy::whatsapp(),
            Channel::Messenger | Channel::Instagram => WindowPolicy::messenger(),
            _ => WindowPolicy::None,
        };
        let mut caps = Capabilities::new(4096, window);
        for kind in [
            ContentKind::Template,
            ContentKind::Media(switchboard_core::MediaKind::Image),
            ContentKind::Media(switchboard_core::MediaKind::Video),
            ContentKind::Media(switchboard_core::MediaKind::Document),
            ContentKind::Media(switchboard_core::MediaKind::Audio),
            ContentKind::Location,
            ContentKind::Buttons,
            ContentKind::List,
        ] {
            caps = caps.with(kind, SupportLevel::Full);
        }
        caps
    }
}

/// A node of the queue tree. A queue with children is a menu level; a queue without children
/// is a leaf and holds agents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Unique within the account; used in transfers, metrics and actions.
    pub id: String,
    /// The title shown in the menu; the customer may type it instead of the number.
    pub name: String,
    /// Menu keywords, separated by commas or spaces: a customer whose message contains one while
    /// choosing a queue goes straight here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keywords: String,
    /// Leave out of the menu; still reachable by keyword and transfer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hidden: bool,
    /// Queue priority: agents in several queues get conversations from higher values first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// Concurrency target for this queue; the global default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u16>,
    /// The language of this top-level queue (multi-language trees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// How agents of this leaf are chosen.
    #[serde(default)]
    pub assignment: AssignmentMode,
    /// Preferred-agent routing.
    #[serde(default)]
    pub preferred_agent: PreferredAgent,
    /// Agents of this leaf queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<QueueAgent>,
    /// Child queues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueConfig>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

impl QueueConfig {
    /// Whether this queue is a leaf (holds agents, no children).
    pub fn is_leaf(&self) -> bool {
        self.queues.is_empty()
    }

    /// Whether this queue can take conversations: a leaf with an agent, or a menu with an
    /// enabled child.
    pub fn is_enabled(&self) -> bool {
        if self.is_leaf() {
            !self.agents.is_empty()
        } else {
            self.queues.iter().any(QueueConfig::is_enabled)
        }
    }

    /// The keywords, split on commas and whitespace, without empty entries.
    pub fn keyword_list(&self) -> impl Iterator<Item = &str> {
        self.keywords
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
    }
}

/// An agent's membership of a leaf queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueAgent {
    /// The agent id.
    pub agent: String,
    /// Skill proficiency, 1 (lowest) to 20; higher is offered first.
    #[serde(default = "default_proficiency")]
    pub proficiency: u8,
    /// Cascade group (cascade mode): group 1 is tried first, then 2, …
    #[serde(default = "default_group")]
    pub group: u8,
    /// Share of conversations (percent mode); the shares of a queue add up to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

fn default_proficiency() -> u8 {
    1
}

fn default_group() -> u8 {
    1
}

/// How a leaf queue chooses among eligible agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Cascade groups in order; within a group, highest proficiency first.
    #[default]
    Cascade,
    /// Each agent gets their configured share of conversations over time (smooth weighted
    /// round robin, deterministic).
    Percent,
}

/// Preferred-agent routing of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreferredAgent {
    /// Whose history picks the preferred agent.
    pub mode: PreferredMode,
    /// What happens when the preferred agent cannot take the conversation.
    pub focus_lock: FocusLock,
    /// With [`FocusLock::WhenOffline`]: minutes to wait for the preferred agent (1–10080).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_minutes: Option<u32>,
}

/// Whose preferred agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferredMode {
    /// No preferred agent.
    #[default]
    Off,
    /// The agent who last handled this conversation (case).
    PerCase,
    /// The agent who last handled any conversation of this contact.
    PerCustomer,
}

/// What happens when the preferred agent cannot take the conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocusLock {
    /// Route to another agent at once.
    #[default]
    WhenAvailable,
    /// Wait up to `fallback_minutes` for the preferred agent, then route to another agent.
    WhenOffline,
}

/// Customer-facing messages; each ≤ 918 characters. An absent message is not sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Messages {
    /// Sent on first contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Do not send the greeting outside operation hours.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_greeting_after_hours: bool,
    /// Sent on first contact outside operation hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_hours_greeting: Option<String>,
    /// The menu prompt; the numbered options are appended ("1. Sales").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub menu_prompt: Option<String>,
    /// Sent before the menu again when a reply matches no option.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_choice: Option<String>,
    /// Sent shortly before an inactive chat is dismissed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dismissal_warning: Option<String>,
    /// Sent when an inactive chat is dismissed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dismissed_chat: Option<String>,
    /// Sent when the chat ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_ended: Option<String>,
    /// Sent to a contact on no whitelist before the interaction closes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whitelist_rejection: Option<String>,
    /// The answer to HELP / INFO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_reply: Option<String>,
}

/// Timers of an account. Minutes are 1–10080; seconds are 1–2147483. `None` disables a timer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timers {
    /// How long a customer may stay choosing a queue before the chat expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_selecting_minutes: Option<u32>,
    /// How long an unanswered chat stays in queue during operation hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unanswered_minutes: Option<u32>,
    /// How long an unanswered chat stays in queue outside operation hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unanswered_after_hours_minutes: Option<u32>,
    /// Customer inactivity that ends a chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_timeout_minutes: Option<u32>,
    /// Inactivity dismissal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactivity: Option<Inactivity>,
    /// The time an agent has to reply to a customer message before it counts as a breach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_target_minutes: Option<u32>,
    /// Closes the interaction ("Closed for inactivity") this long after the last agent message
    /// when the customer has not answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction_inactivity_minutes: Option<u32>,
    /// How long a new message waits for its away agent.
    pub wait_for_assigned_agent_seconds: u32,
    /// Then how long it waits for an agent of that agent's queue.
    pub wait_for_assigned_queue_seconds: u32,
    /// How long an agent has to accept an offer before RONA.
    pub offer_timeout_seconds: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            queue_selecting_minutes: None,
            unanswered_minutes: None,
            unanswered_after_hours_minutes: None,
            chat_timeout_minutes: None,
            inactivity: None,
            response_target_minutes: None,
            interaction_inactivity_minutes: None,
            wait_for_assigned_agent_seconds: 10,
            wait_for_assigned_queue_seconds: 10,
            offer_timeout_seconds: 30,
        }
    }
}

/// Inactivity dismissal settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inactivity {
    /// Minutes of customer inactivity before dismissal (≤ the chat timeout).
    pub dismiss_after_minutes: u32,
    /// Who dismisses.
    #[serde(default)]
    pub method: DismissalMethod,
    /// Minutes before dismissal the warning is sent; no warning when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_minutes: Option<u32>,
}

/// How inactive chats are dismissed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DismissalMethod {
    /// The agent is offered to dismiss the chat.
    Manual,
    /// The engine dismisses it: the chat goes back to its queue until the customer replies.
    #[default]
    Auto,
}

/// A whitelist: only contacts on one of the lists may start conversations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Whitelist {
    /// Whether the whitelist applies.
    pub enabled: bool,
    /// Names of `contact_lists`.
    pub lists: Vec<String>,
}

/// Wrap-up reasons of an account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dispositions {
    /// An agent must choose at least one when ending.
    pub mandatory: bool,
    /// The reasons agents choose from.
    pub options: Vec<String>,
}

/// Transfer settings of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// Whether agents may transfer.
    pub enabled: bool,
    /// Seconds a transfer waits to be accepted before it fails back to the transferring agent.
    pub timeout_seconds: u32,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_seconds: 60,
        }
    }
}

/// Where a conversation goes after waiting in vain for its agent and then the agent's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FallbackRoute {
    /// Stay in the queue like any new conversation (the unanswered expiration applies).
    #[default]
    KeepWaiting,
    /// Move to another leaf queue of the same account.
    Queue {
        /// The queue id.
        queue: String,
    },
    /// End the conversation (expired in queue).
    Close,
}

/// SMS command words no queue may be named after.
pub const PROTECTED_WORDS: [&str; 11] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "START",
    "YES",
    "UNSTOP",
    "HELP",
    "INFO",
];

/// The longest customer-facing message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 918;

impl RoutingConfig {
    /// Parses JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Replaces `to`'s queue tree with a copy of `from`'s ("Copy Queue From"). Returns `false`
    /// when either account does not exist.
    pub fn copy_queues(&mut self, from: &str, to: &str) -> bool {
        let Some(source) = self.accounts.iter().find(|a| a.id == from) else {
            return false;
        };
        let queues = source.queues.clone();
        match self.accounts.iter_mut().find(|a| a.id == to) {
            Some(target) => {
                target.queues = queues;
                true
            }
            None => false,
        }
    }

    /// Applies every account's `copy_queues_from`, following chains; leaves invalid references
    /// (unknown account, cycle) for [`RoutingConfig::validate`] to report.
    pub fn resolve_copies(&mut self) {
        for index in 0..self.accounts.len() {
            let mut source = self.accounts[index].copy_queues_from.clone();
            let mut seen = vec![self.accounts[index].id.clone()];
            while let Some(from) = source {
                if seen.contains(&from) {
                    break;
                }
                let Some(found) = self.accounts.iter().find(|a| a.id == from) else {
                    break;
                };
                if found.copy_queues_from.is_none() {
                    let queues = found.queues.clone();
                    self.accounts[index].queues = queues;
                    break;
                }
                seen.push(from);
                source = found.copy_queues_from.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests;
