//! The moving parts shared by every input: timers, sending, transcripts, queueing, offers,
//! dispatch and the end of a conversation.

use std::cmp::Reverse;
use std::time::Duration;

use switchboard_core::{Address, Content, OutboundMessage, Timestamp, WindowDecision};

use super::compiled::{Account, Compiled, Queue};
use super::state::{Availability, Phase, State};
use super::{Action, IntegrationEvent, OfferKind, Sender};
use crate::ConvId;
use crate::assignment::{self, Candidate};
use crate::config::{AssignmentMode, FocusLock, PreferredMode};
use crate::timers::{TimerId, TimerKind};
use crate::transcript::{EndReason, Party, TranscriptEntry, TranscriptWrite, Trigger};

/// The 7-day compliance expiry.
pub(crate) const COMPLIANCE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The disposition of conversations closed by the interaction inactivity timeout.
pub(crate) const CLOSED_FOR_INACTIVITY: &str = "Closed for inactivity";

/// One input being handled.
pub(crate) struct Cx<'a> {
    pub(crate) eng: &'a Compiled,
    pub(crate) st: &'a mut State,
    pub(crate) now: Timestamp,
    pub(crate) out: &'a mut Vec<Action>,
}

pub(crate) fn minutes(m: u32) -> Duration {
    Duration::from_secs(u64::from(m) * 60)
}

pub(crate) fn seconds(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

pub(crate) fn contact_key(account: &str, customer: &Address) -> String {
    format!("{account}/{}", customer.id)
}

impl<'a> Cx<'a> {
    // ---- lookups -------------------------------------------------------------------------

    /// The conversation's own account.
    pub(crate) fn account_of(&self, id: ConvId) -> Option<&'a Account> {
        let eng = self.eng;
        let conv = self.st.conversations.get(&id)?;
        eng.account(&conv.account)
    }

    /// The conversation's current leaf queue (possibly in another account after a transfer).
    pub(crate) fn queue_of(&self, id: ConvId) -> Option<&'a Queue> {
        let eng = self.eng;
        let conv = self.st.conversations.get(&id)?;
        let account = eng.account(conv.queue_account.as_deref().unwrap_or(&conv.account))?;
        account.queue(conv.queue.as_deref()?).map(|(_, q)| q)
    }

    fn is_eligible(&self, agent: &str, concurrency: usize) -> bool {
        self.st.agents.get(agent).is_some_and(|a| {
            a.availability == Availability::Available && a.active.len() < concurrency
        })
    }

    // ---- timers --------------------------------------------------------------------------

    pub(crate) fn set_timer(&mut self, id: ConvId, kind: TimerKind, due: Timestamp) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        match conv.timers.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = due,
            None => conv.timers.push((kind, due)),
        }
        self.out.push(Action::StartTimer {
            id: TimerId {
                conversation: id,
                kind,
            },
            due,
        });
    }

    pub(crate) fn cancel_timers(&mut self, id: ConvId, kinds: &[TimerKind]) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.timers.retain(|(kind, _)| {
            if kinds.contains(kind) {
                self.out.push(Action::CancelTimer {
                    id: TimerId {
                        conversation: id,
                        kind: *kind,
                    },
                });
                false
            } else {
                true
            }
        });
    }

    /// (Re)arms the inactivity timers from the conversation's `idle_since`.
    pub(crate) fn arm_inactivity(&mut self, id: ConvId) {
        let Some(account) = self.account_of(id) else {
            return;
        };
        let Some(conv) = self.st.conversations.get(&id) else {
            return;
        };
        let base = conv.idle_since;
        let timers = &account.cfg.timers;
        if let Some(inactivity) = timers.inactivity {
            let dismiss = minutes(inactivity.dismiss_after_minutes);
            if let Some(warning) = inactivity.warning_minutes {
                let lead = minutes(warning);
                self.set_timer(
                    id,
                    TimerKind::DismissalWarning,
                    base.saturating_add(dismiss.saturating_sub(lead)),
                );
            }
            self.set_timer(id, TimerKind::Dismissal, base.saturating_add(dismiss));
        }
        if let Some(timeout) = timers.chat_timeout_minutes {
            self.set_timer(
                id,
                TimerKind::ChatTimeout,
                base.saturating_add(minutes(timeout)),
            );
        }
    }

    /// Timers that only run while an agent handles the conversation.
    pub(crate) const HANDLING_TIMERS: [TimerKind; 5] = [
        TimerKind::DismissalWarning,
        TimerKind::Dismissal,
        TimerKind::ChatTimeout,
        TimerKind::ResponseTarget,
        TimerKind::InteractionInactivity,
    ];

    // ---- messages and transcripts --------------------------------------------------------

    pub(crate) fn transcript(&mut self, id: ConvId, from: Party, content: Content) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.entries += 1;
        self.out.push(Action::AppendTranscript {
            conversation: id,
            entry: TranscriptEntry {
                at: self.now,
                from,
                content,
            },
        });
    }

    pub(crate) fn write_transcript(
        &mut self,
        id: ConvId,
        trigger: Trigger,
        reason: Option<EndReason>,
        dispositions: Vec<String>,
    ) {
        let Some(conv) = self.st.conversations.get(&id) else {
            return;
        };
        self.out.push(Action::WriteTranscript(TranscriptWrite {
            conversation: id,
            account: conv.account.clone(),
            trigger,
            entries: conv.entries,
            language: conv.language.clone(),
            queue: conv.queue.clone(),
            agent: conv.agent.clone().or_else(|| conv.last_agent.clone()),
            reason,
            comment: reason.map(|r| r.comment().to_owned()),
            dispositions,
        }));
    }

    fn next_key(&mut self) -> String {
        let key = format!("msg_{}", self.st.next_message);
        self.st.next_message += 1;
        key
    }

    /// Sends a system message to a conversation's customer (or to `to` outside one). Nothing
    /// is sent to an opted-out contact; a closed window refuses it (no template stands in for
    /// system messages).
    pub(crate) fn send_system(
        &mut self,
        conversation: Option<ConvId>,
        account: &Account,
        to: &Address,
        text: String,
        ignore_opt_out: bool,
    ) {
        let contact = self.st.contacts.get(&contact_key(&account.cfg.id, to));
        if !ignore_opt_out && contact.is_some_and(|c| c.opted_out) {
            return;
        }
        let last_inbound = contact.and_then(|c| c.last_inbound);
        let content = Content::text(text);
        match account
            .caps
            .window_decision(last_inbound, self.now, &content, None)
        {
            WindowDecision::FreeForm => {
                let key = self.next_key();
                if let Some(id) = conversation {
                    self.transcript(id, Party::System, content.clone());
                }
                self.out.push(Action::Send {
                    conversation,
                    account: account.cfg.id.clone(),
                    sender: Sender::System,
                    message: OutboundMessage::new(key, to.clone(), content),
                    recontact_template: false,
                });
            }
            WindowDecision::TemplateRequired => self.out.push(Action::SendRefused {
                conversation,
                sender: Sender::System,
                reason: "the customer-service window is closed; system messages are not sent as templates".into(),
            }),
            WindowDecision::Reject { reason } => self.out.push(Action::SendRefused {
                conversation,
                sender: Sender::System,
                reason,
            }),
        }
    }

    /// Sends a configured message of the conversation's account, in its language.
    pub(crate) fn send_configured(
        &mut self,
        id: ConvId,
        pick: impl Fn(&crate::config::Messages) -> Option<&String>,
    ) {
        let Some(account) = self.account_of(id) else {
            return;
        };
        let Some(conv) = self.st.conversations.get(&id) else {
            return;
        };
        let Some(text) = account.message(conv.language.as_deref(), pick) else {
            return;
        };
        let to = conv.customer.clone();
        self.send_system(Some(id), account, &to, text, false);
    }

    /// Sends an agent's message: window decision, re-contact template, opt-out.
    pub(crate) fn send_agent(
        &mut self,
        id: ConvId,
        agent: &str,
        content: Content,
        tag: Option<String>,
    ) {
        let Some(account) = self.account_of(id) else {
            return;
        };
        let Some(conv) = self.st.conversations.get(&id) else {
            return;
        };
        let to = conv.customer.clone();
        let sender = Sender::Agent(agent.to_owned());
        let contact = self.st.contacts.get(&contact_key(&account.cfg.id, &to));
        if contact.is_some_and(|c| c.opted_out) {
            self.out.push(Action::SendRefused {
                conversation: Some(id),
                sender,
                reason:
                    "the contact opted out (STOP); nothing is sent until they opt back in (START)"
                        .into(),
            });
            return;
        }
        let last_inbound = contact.and_then(|c| c.last_inbound);
        let decision =
            account
                .caps
                .window_decision(last_inbound, self.now, &content, tag.as_deref());
        let (content, recontact_template) = match decision {
            WindowDecision::FreeForm => (content, false),
            WindowDecision::TemplateRequired => match &account.cfg.recontact_template {
                Some(template) => (Content::Template(template.clone()), true),
                None => {
                    let since = last_inbound.map_or("never".to_owned(), |t| t.to_string());
                    self.out.push(Action::SendRefused {
                        conversation: Some(id),
                        sender,
                        reason: format!(
                            "the customer-service window is closed (customer last wrote: {since}); \
                             only an approved template can be sent and the account has no re-contact template"
                        ),
                    });
                    return;
                }
            },
            WindowDecision::Reject { reason } => {
                self.out.push(Action::SendRefused {
                    conversation: Some(id),
                    sender,
                    reason,
                });
                return;
            }
        };
        let key = self.next_key();
        self.transcript(id, Party::Agent(agent.to_owned()), content.clone());
        let mut message = OutboundMessage::new(key, to, content);
        message.tag = tag;
        self.out.push(Action::Send {
            conversation: Some(id),
            account: account.cfg.id.clone(),
            sender,
            message,
            recontact_template,
        });
    }

    // ---- queueing ------------------------------------------------------------------------

    fn unwait(&mut self, id: ConvId) {
        self.st.waiting.retain(|w| *w != id);
    }

    fn wait(&mut self, id: ConvId) {
        if !self.st.waiting.contains(&id) {
            self.st.waiting.push(id);
        }
    }

    /// Puts the conversation into leaf `queue` of `queue_account` (its own when `None`).
    pub(crate) fn enqueue(
        &mut self,
        id: ConvId,
        queue_account: Option<String>,
        queue_id: &str,
        returning: bool,
    ) {
        let eng = self.eng;
        let Some(conv) = self.st.conversations.get(&id) else {
            return;
        };
        let Some(own) = eng.account(&conv.account) else {
            return;
        };
        let Some(account) = eng.account(queue_account.as_deref().unwrap_or(&conv.account)) else {
            return;
        };
        let Some((_, queue)) = account.queue(queue_id) else {
            return;
        };
        let contact_agent = self
            .st
            .contacts
            .get(&contact_key(&conv.account, &conv.customer))
            .and_then(|c| c.last_agent.clone());
        let prefer = match queue.preferred.mode {
            PreferredMode::Off => None,
            PreferredMode::PerCase => conv.last_agent.clone(),
            PreferredMode::PerCustomer => contact_agent,
        }
        .filter(|a| queue.members.iter().any(|m| &m.agent == a));
        let after_hours = !own.is_open(self.now);
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.queue = Some(queue.id.clone());
        conv.queue_account = queue_account.filter(|a| *a != conv.account);
        conv.agent = None;
        conv.excluded.clear();
        conv.phase = Phase::Queued {
            since: self.now,
            prefer: prefer.clone(),
            returning,
        };
        self.cancel_timers(id, &[TimerKind::QueueSelecting]);
        self.cancel_timers(id, &Self::HANDLING_TIMERS);
        let timers = &own.cfg.timers;
        let expiry = if after_hours {
            timers
                .unanswered_after_hours_minutes
                .or(timers.unanswered_minutes)
        } else {
            timers.unanswered_minutes
        };
        match expiry {
            Some(m) => self.set_timer(
                id,
                TimerKind::Unanswered,
                self.now.saturating_add(minutes(m)),
            ),
            None => self.cancel_timers(id, &[TimerKind::Unanswered]),
        }
        if returning {
            let wait = seconds(timers.wait_for_assigned_queue_seconds);
            self.set_timer(
                id,
                TimerKind::AssignedQueueWait,
                self.now.saturating_add(wait),
            );
        } else {
            self.cancel_timers(id, &[TimerKind::AssignedQueueWait]);
        }
        self.cancel_timers(id, &[TimerKind::PreferredFallback]);
        if let Some(p) = &prefer
            && queue.preferred.focus_lock == FocusLock::WhenOffline
            && !self.is_eligible(p, queue.concurrency)
        {
            let wait = minutes(queue.preferred.fallback_minutes.unwrap_or(1));
            self.set_timer(
                id,
                TimerKind::PreferredFallback,
                self.now.saturating_add(wait),
            );
        }
        self.st
            .metrics
            .queues
            .entry(queue.key.clone())
            .or_default()
            .entered += 1;
        self.out.push(Action::Emit(IntegrationEvent::Queued {
            conversation: id,
            queue: queue.id.clone(),
        }));
        self.wait(id);
        self.dispatch();
    }

    /// Offers waiting conversations to eligible agents: higher queue priority first, then the
    /// longest waiting.
    pub(crate) fn dispatch(&mut self) {
        if self.st.waiting.is_empty()
            || !self
                .st
                .agents
                .values()
                .any(|a| a.availability == Availability::Available)
        {
            return;
        }
        let mut order = Vec::with_capacity(self.st.waiting.len());
        for &id in &self.st.waiting {
            let Some(conv) = self.st.conversations.get(&id) else {
                continue;
            };
            let since = match &conv.phase {
                Phase::Queued { since, .. } | Phase::Transferring { since, .. } => *since,
                _ => continue,
            };
            let priority = self.queue_of_target(id).map_or(0, |q| q.priority);
            order.push((Reverse(priority), since, id));
        }
        order.sort_unstable();
        for (_, _, id) in order {
            if let Some(agent) = self.select(id) {
                let kind = match self.st.conversations.get(&id).map(|c| &c.phase) {
                    Some(Phase::Transferring { .. }) => OfferKind::Transfer,
                    _ => OfferKind::Queue,
                };
                self.offer(id, &agent, kind);
            }
        }
    }

    /// The queue a waiting conversation waits in (the target queue of a transfer).
    fn queue_of_target(&self, id: ConvId) -> Option<&'a Queue> {
        let eng = self.eng;
        let conv = self.st.conversations.get(&id)?;
        if let Phase::Transferring {
            queue: Some(queue),
            account,
            ..
        } = &conv.phase
        {
            let account = eng.account(account.as_deref().unwrap_or(&conv.account))?;
            return account.queue(queue).map(|(_, q)| q);
        }
        self.queue_of(id)
    }

    /// The agent a waiting conversation should be offered to now, if any.
    fn select(&mut self, id: ConvId) -> Option<String> {
        let queue = self.queue_of_target(id)?;
        let conv = self.st.conversations.get(&id)?;
        let (prefer, transferring_from) = match &conv.phase {
            Phase::Queued { prefer, .. } => (prefer.as_deref(), None),
            Phase::Transferring { .. } => (None, conv.agent.as_deref()),
            _ => return None,
        };
        let hold = conv.timer(TimerKind::PreferredFallback).is_some();
        let eligible = |agent: &str| {
            !conv.excluded.iter().any(|e| e == agent)
                && transferring_from != Some(agent)
                && self.is_eligible(agent, queue.concurrency)
        };
        if let Some(p) = prefer {
            if eligible(p) {
                return Some(p.to_owned());
            }
            if hold {
                return None;
            }
        }
        let candidates: Vec<Candidate> = queue
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| eligible(&m.agent))
            .map(|(member, m)| {
                let state = self.st.agents.get(&m.agent);
                Candidate {
                    member,
                    proficiency: m.proficiency,
                    group: m.group,
                    percent: m.percent.unwrap_or(0),
                    active: state.map_or(0, |s| s.active.len()),
                    last_assigned: state.and_then(|s| s.last_assigned),
                }
            })
            .collect();
        let member = match queue.assignment {
            AssignmentMode::Cascade => assignment::cascade(&candidates)?,
            AssignmentMode::Percent => {
                let counters = self
                    .st
                    .percent_counters
                    .entry(queue.key.clone())
                    .or_default();
                assignment::percent(&candidates, counters, queue.members.len())?
            }
        };
        Some(queue.members[member].agent.clone())
    }

    /// Offers a waiting conversation to `agent`.
    pub(crate) fn offer(&mut self, id: ConvId, agent: &str, kind: OfferKind) {
        let Some(account) = self.account_of(id) else {
            return;
        };
        let due = self
            .now
            .saturating_add(seconds(account.cfg.timers.offer_timeout_seconds));
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        let queue = match &mut conv.phase {
            Phase::Queued { since, .. } => {
                let since = *since;
                conv.phase = Phase::Offered {
                    agent: agent.to_owned(),
                    since,
                };
                conv.queue.clone()
            }
            Phase::Transferring { offered, queue, .. } => {
                *offered = Some(agent.to_owned());
                queue.clone()
            }
            _ => return,
        };
        let state = self.st.agents.entry(agent.to_owned()).or_default();
        state.active.push(id);
        state.last_assigned = Some(self.now);
        self.unwait(id);
        self.set_timer(id, TimerKind::Offer, due);
        self.out.push(Action::Offer {
            conversation: id,
            agent: agent.to_owned(),
            queue,
            kind,
            expires_at: due,
        });
    }

    /// Frees the agent's slot for this conversation.
    pub(crate) fn release(&mut self, agent: &str, id: ConvId) {
        if let Some(state) = self.st.agents.get_mut(agent) {
            state.active.retain(|a| *a != id);
        }
    }

    /// Takes back the outstanding offer of a conversation (queue or transfer offer), putting the
    /// conversation back to waiting. `lapsed` puts the agent in RONA.
    pub(crate) fn withdraw_offer(&mut self, id: ConvId, lapsed: bool) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        let agent = match &mut conv.phase {
            Phase::Offered { agent, since } => {
                let agent = agent.clone();
                conv.phase = Phase::Queued {
                    since: *since,
                    prefer: None,
                    returning: false,
                };
                agent
            }
            Phase::Transferring { offered, .. } => match offered.take() {
                Some(agent) => agent,
                None => return,
            },
            _ => return,
        };
        conv.excluded.push(agent.clone());
        let transfer_to_agent = matches!(conv.phase, Phase::Transferring { queue: None, .. });
        self.release(&agent, id);
        self.cancel_timers(id, &[TimerKind::Offer]);
        self.out.push(Action::WithdrawOffer {
            conversation: id,
            agent: agent.clone(),
        });
        if lapsed {
            if let Some(key) = self.queue_of_target(id).map(|q| q.key.clone()) {
                self.st.metrics.queues.entry(key).or_default().rona += 1;
            }
            self.set_rona(&agent);
        }
        if transfer_to_agent {
            self.transfer_failed(id);
        } else {
            self.wait(id);
        }
    }

    /// Puts an agent in RONA and takes back their other outstanding offers.
    fn set_rona(&mut self, agent: &str) {
        let state = self.st.agents.entry(agent.to_owned()).or_default();
        state.availability = Availability::Rona;
        self.out
            .push(Action::Emit(IntegrationEvent::AgentAvailability {
                agent: agent.to_owned(),
                availability: Availability::Rona,
            }));
        self.withdraw_offers_of(agent);
    }

    /// Takes back every outstanding queue or transfer offer made to `agent` (no RONA).
    pub(crate) fn withdraw_offers_of(&mut self, agent: &str) {
        let pending: Vec<ConvId> = self
            .st
            .agents
            .get(agent)
            .map(|a| a.active.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|id| {
                self.st
                    .conversations
                    .get(id)
                    .is_some_and(|c| match &c.phase {
                        Phase::Offered { agent: a, .. } => a == agent,
                        Phase::Transferring { offered, .. } => offered.as_deref() == Some(agent),
                        _ => false,
                    })
            })
            .collect();
        for id in pending {
            self.withdraw_offer(id, false);
        }
    }

    /// A transfer did not complete: the conversation stays with the transferring agent.
    pub(crate) fn transfer_failed(&mut self, id: ConvId) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        if let Phase::Transferring {
            offered: Some(agent),
            ..
        } = &conv.phase
        {
            let agent = agent.clone();
            conv.excluded.push(agent.clone());
            self.release(&agent, id);
            self.out.push(Action::WithdrawOffer {
                conversation: id,
                agent,
            });
        }
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.phase = Phase::Assigned;
        conv.excluded.clear();
        let agent = conv.agent.clone().unwrap_or_default();
        self.unwait(id);
        self.cancel_timers(id, &[TimerKind::Transfer, TimerKind::Offer]);
        self.out
            .push(Action::Emit(IntegrationEvent::TransferFailed {
                conversation: id,
                agent,
            }));
    }

    // ---- the end -------------------------------------------------------------------------

    /// Ends a conversation: auto-response, transcript, close; it leaves the state.
    pub(crate) fn end(&mut self, id: ConvId, reason: EndReason, dispositions: Vec<String>) {
        let Some(conv) = self.st.conversations.get(&id) else {
            return;
        };
        let kinds: Vec<TimerKind> = conv.timers.iter().map(|(k, _)| *k).collect();
        let handler = conv.agent.clone();
        let offered = match &conv.phase {
            Phase::Offered { agent, .. } => Some(agent.clone()),
            Phase::Transferring { offered, .. } => offered.clone(),
            _ => None,
        };
        let waiting = matches!(
            conv.phase,
            Phase::Queued { .. } | Phase::Offered { .. } | Phase::Selecting { .. }
        );
        let key = contact_key(&conv.account, &conv.customer);
        self.cancel_timers(id, &kinds);
        if let Some(agent) = &offered {
            self.release(agent, id);
            self.out.push(Action::WithdrawOffer {
                conversation: id,
                agent: agent.clone(),
            });
        }
        if let Some(agent) = &handler {
            self.release(agent, id);
        }
        self.unwait(id);
        if !matches!(reason, EndReason::NotWhitelisted | EndReason::Failure) {
            self.send_configured(id, |m| m.chat_ended.as_ref());
        }
        if waiting && let Some(q) = self.queue_of(id).map(|q| q.key.clone()) {
            self.st.metrics.queues.entry(q).or_default().abandoned += 1;
        }
        self.write_transcript(id, Trigger::Ended, Some(reason), dispositions.clone());
        self.out.push(Action::Close {
            conversation: id,
            reason,
            dispositions,
        });
        self.out.push(Action::Emit(IntegrationEvent::Ended {
            conversation: id,
            reason,
        }));
        if let Some(conv) = self.st.conversations.remove(&id)
            && let Some(contact) = self.st.contacts.get_mut(&key)
        {
            contact.open = None;
            if let Some(agent) = conv.agent.or(conv.last_agent) {
                contact.last_agent = Some(agent);
            }
        }
        self.st.metrics.conversations_ended += 1;
        self.dispatch();
    }
}
