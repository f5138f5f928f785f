//! Agent and API commands: availability, accept/reject, send, transfer, dismiss, end.

use switchboard_core::{Channel, Content};

use super::flow::{Cx, seconds};
use super::state::{Availability, Phase};
use super::{AgentCommand, IntegrationEvent, OfferKind, TransferTarget};
use crate::ConvId;
use crate::error::InputError;
use crate::timers::TimerKind;
use crate::transcript::{EndReason, Trigger};

fn wrong(command: &'static str, reason: impl Into<String>) -> InputError {
    InputError::WrongState {
        command,
        reason: reason.into(),
    }
}

impl Cx<'_> {
    pub(crate) fn command(&mut self, command: AgentCommand) -> Result<(), InputError> {
        let agent = match &command {
            AgentCommand::SetAvailability { agent, .. }
            | AgentCommand::Accept { agent, .. }
            | AgentCommand::Reject { agent, .. }
            | AgentCommand::Send { agent, .. }
            | AgentCommand::SendCanned { agent, .. }
            | AgentCommand::Transfer { agent, .. }
            | AgentCommand::Dismiss { agent, .. }
            | AgentCommand::End { agent, .. } => agent.clone(),
        };
        if !self.eng.agent_ids.contains(&agent) {
            return Err(InputError::UnknownAgent(agent));
        }
        match command {
            AgentCommand::SetAvailability { availability, .. } => {
                self.set_availability(&agent, availability);
                Ok(())
            }
            AgentCommand::Accept { conversation, .. } => self.accept(&agent, conversation),
            AgentCommand::Reject { conversation, .. } => self.reject(&agent, conversation),
            AgentCommand::Send {
                conversation,
                content,
                tag,
                ..
            } => self.agent_send(&agent, conversation, content, tag),
            AgentCommand::SendCanned {
                conversation,
                canned,
                ..
            } => {
                let text = self.canned(conversation, &canned)?;
                self.agent_send(&agent, conversation, Content::text(text), None)
            }
            AgentCommand::Transfer {
                conversation,
                target,
                ..
            } => self.transfer(&agent, conversation, target),
            AgentCommand::Dismiss { conversation, .. } => {
                self.handling(&agent, conversation, "dismiss")?;
                self.dismiss(conversation);
                Ok(())
            }
            AgentCommand::End {
                conversation,
                dispositions,
                ..
            } => self.agent_end(&agent, conversation, dispositions),
        }
    }

    fn set_availability(&mut self, agent: &str, availability: Availability) {
        self.st
            .agents
            .entry(agent.to_owned())
            .or_default()
            .availability = availability;
        if availability == Availability::Available {
            self.dispatch();
        } else {
            self.withdraw_offers_of(agent);
            self.dispatch();
        }
    }

    /// Checks that `agent` handles the conversation now.
    fn handling(&self, agent: &str, id: ConvId, command: &'static str) -> Result<(), InputError> {
        let conv = self
            .st
            .conversations
            .get(&id)
            .ok_or(InputError::UnknownConversation(id))?;
        if conv.agent.as_deref() != Some(agent) {
            return Err(wrong(command, format!("{agent} does not handle {id}")));
        }
        match conv.phase {
            Phase::Assigned | Phase::AwaitingAgent | Phase::Transferring { .. } => Ok(()),
            _ => Err(wrong(command, format!("{id} is not with an agent"))),
        }
    }

    fn accept(&mut self, agent: &str, id: ConvId) -> Result<(), InputError> {
        let conv = self
            .st
            .conversations
            .get(&id)
            .ok_or(InputError::UnknownConversation(id))?;
        match &conv.phase {
            Phase::Offered { agent: a, since } if a == agent => {
                let since = *since;
                self.cancel_timers(
                    id,
                    &[
                        TimerKind::Offer,
                        TimerKind::Unanswered,
                        TimerKind::PreferredFallback,
                        TimerKind::AssignedQueueWait,
                    ],
                );
                let wait = self.now.checked_duration_since(since).unwrap_or_default();
                let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                let target = u64::from(self.eng.config.defaults.service_level_seconds) * 1000;
                if let Some(key) = self.queue_of(id).map(|q| q.key.clone()) {
                    let m = self.st.metrics.queues.entry(key).or_default();
                    m.answered += 1;
                    m.answered_in_target += u64::from(wait_ms <= target);
                    m.total_wait_ms = m.total_wait_ms.saturating_add(wait_ms);
                    m.max_wait_ms = m.max_wait_ms.max(wait_ms);
                }
                self.assign(id, agent);
                self.out
                    .push(super::Action::Emit(IntegrationEvent::Accepted {
                        conversation: id,
                        agent: agent.to_owned(),
                        wait_ms,
                    }));
                Ok(())
            }
            Phase::AwaitingAgent if conv.agent.as_deref() == Some(agent) => {
                self.cancel_timers(id, &[TimerKind::AssignedAgentWait]);
                self.assign(id, agent);
                Ok(())
            }
            Phase::Transferring {
                offered: Some(a),
                queue,
                account,
                ..
            } if a == agent => {
                let from = conv.agent.clone().unwrap_or_default();
                let (queue, account) = (queue.clone(), account.clone());
                self.release(&from, id);
                self.cancel_timers(id, &[TimerKind::Transfer, TimerKind::Offer]);
                if let Some(conv) = self.st.conversations.get_mut(&id) {
                    if let Some(queue) = queue {
                        conv.queue = Some(queue);
                        conv.queue_account = account.filter(|a| *a != conv.account);
                    }
                    conv.agent = Some(agent.to_owned());
                }
                self.assign(id, agent);
                self.out
                    .push(super::Action::Emit(IntegrationEvent::Transferred {
                        conversation: id,
                        from,
                        to: agent.to_owned(),
                    }));
                Ok(())
            }
            _ => Err(wrong("accept", format!("{id} is not offered to {agent}"))),
        }
    }

    /// The agent now handles the conversation.
    fn assign(&mut self, id: ConvId, agent: &str) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.phase = Phase::Assigned;
        conv.agent = Some(agent.to_owned());
        conv.last_agent = Some(agent.to_owned());
        conv.excluded.clear();
        conv.idle_since = self.now;
        conv.warned = false;
        conv.awaiting_reply = Some(self.now);
        let key = super::flow::contact_key(&conv.account, &conv.customer);
        if let Some(contact) = self.st.contacts.get_mut(&key) {
            contact.last_agent = Some(agent.to_owned());
        }
        let state = self.st.agents.entry(agent.to_owned()).or_default();
        if !state.active.contains(&id) {
            state.active.push(id);
        }
        self.arm_inactivity(id);
        self.arm_response_target(id);
    }

    fn reject(&mut self, agent: &str, id: ConvId) -> Result<(), InputError> {
        let conv = self
            .st
            .conversations
            .get(&id)
            .ok_or(InputError::UnknownConversation(id))?;
        match &conv.phase {
            Phase::Offered { agent: a, .. } if a == agent => {
                self.withdraw_offer(id, false);
                self.dispatch();
                Ok(())
            }
            Phase::Transferring {
                offered: Some(a), ..
            } if a == agent => {
                self.withdraw_offer(id, false);
                self.dispatch();
                Ok(())
            }
            Phase::AwaitingAgent if conv.agent.as_deref() == Some(agent) => {
                self.requeue_to_agents_queue(id);
                Ok(())
            }
            _ => Err(wrong("reject", format!("{id} is not offered to {agent}"))),
        }
    }

    /// The away agent did not take the new message: the conversation goes to their queue and
    /// waits there (wait-for-assigned-queue).
    pub(crate) fn requeue_to_agents_queue(&mut self, id: ConvId) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        let agent = conv.agent.take().unwrap_or_default();
        conv.last_agent = Some(agent.clone());
        let queue = conv.queue.clone();
        let queue_account = conv.queue_account.clone();
        self.release(&agent, id);
        self.cancel_timers(id, &[TimerKind::AssignedAgentWait]);
        self.out.push(super::Action::WithdrawOffer {
            conversation: id,
            agent,
        });
        match queue {
            Some(queue) => self.enqueue(id, queue_account, &queue, true),
            None => self.end(id, EndReason::Failure, Vec::new()),
        }
    }

    fn agent_send(
        &mut self,
        agent: &str,
        id: ConvId,
        content: Content,
        tag: Option<String>,
    ) -> Result<(), InputError> {
        self.handling(agent, id, "send")?;
        let before = self.out.len();
        self.send_agent(id, agent, content, tag);
        let sent = self.out[before..]
            .iter()
            .any(|a| matches!(a, super::Action::Send { .. }));
        if sent {
            let Some(account) = self.account_of(id) else {
                return Ok(());
            };
            let inactivity = account.cfg.timers.interaction_inactivity_minutes;
            if let Some(conv) = self.st.conversations.get_mut(&id) {
                conv.awaiting_reply = None;
            }
            self.cancel_timers(id, &[TimerKind::ResponseTarget]);
            if let Some(m) = inactivity {
                let due = self.now.saturating_add(super::flow::minutes(m));
                self.set_timer(id, TimerKind::InteractionInactivity, due);
            }
        }
        Ok(())
    }

    fn canned(&self, id: ConvId, canned: &str) -> Result<String, InputError> {
        let account = self
            .account_of(id)
            .ok_or(InputError::UnknownConversation(id))?;
        account
            .cfg
            .canned_answers
            .iter()
            .chain(&self.eng.config.canned_answers)
            .find(|c| c.id == canned)
            .map(|c| c.text.clone())
            .ok_or_else(|| InputError::UnknownCannedAnswer(canned.to_owned()))
    }

    fn transfer(
        &mut self,
        agent: &str,
        id: ConvId,
        target: TransferTarget,
    ) -> Result<(), InputError> {
        self.handling(agent, id, "transfer")?;
        let eng = self.eng;
        let account = self
            .account_of(id)
            .ok_or(InputError::UnknownConversation(id))?;
        let conv = self
            .st
            .conversations
            .get(&id)
            .ok_or(InputError::UnknownConversation(id))?;
        if conv.phase != Phase::Assigned {
            return Err(wrong("transfer", format!("{id} is not simply assigned")));
        }
        if !account.cfg.transfer.enabled {
            return Err(InputError::Transfer(format!(
                "transfers are disabled on account `{}`",
                account.cfg.id
            )));
        }
        let due = self
            .now
            .saturating_add(seconds(account.cfg.transfer.timeout_seconds));
        match target {
            TransferTarget::Queue {
                account: target_account,
                queue,
            } => {
                let target_id = target_account.unwrap_or_else(|| conv.account.clone());
                if target_id != conv.account && conv.customer.channel == Channel::WhatsApp {
                    return Err(InputError::Transfer(
                        "WhatsApp conversations can only be transferred to queues of their own channel account".into(),
                    ));
                }
                let target = eng
                    .account(&target_id)
                    .ok_or_else(|| InputError::UnknownAccount(target_id.clone()))?;
                match target.queue(&queue) {
                    Some((_, q)) if q.is_leaf() && q.enabled => {}
                    _ => return Err(InputError::UnknownQueue(queue)),
                }
                if let Some(conv) = self.st.conversations.get_mut(&id) {
                    conv.excluded.clear();
                    conv.phase = Phase::Transferring {
                        queue: Some(queue),
                        account: Some(target_id),
                        offered: None,
                        since: self.now,
                    };
                }
                self.set_timer(id, TimerKind::Transfer, due);
                if !self.st.waiting.contains(&id) {
                    self.st.waiting.push(id);
                }
                self.dispatch();
            }
            TransferTarget::Agent { agent: to } => {
                if !eng.agent_ids.contains(&to) {
                    return Err(InputError::UnknownAgent(to));
                }
                if to == agent {
                    return Err(InputError::Transfer(
                        "an agent cannot transfer to themself".into(),
                    ));
                }
                let concurrency = self
                    .queue_of(id)
                    .map_or(usize::from(eng.config.defaults.concurrency), |q| {
                        q.concurrency
                    });
                let free = self.st.agents.get(&to).is_some_and(|a| {
                    a.availability == Availability::Available && a.active.len() < concurrency
                });
                if !free {
                    return Err(InputError::Transfer(format!(
                        "{to} is not available or has no free slot"
                    )));
                }
                if let Some(conv) = self.st.conversations.get_mut(&id) {
                    conv.excluded.clear();
                    conv.phase = Phase::Transferring {
                        queue: None,
                        account: None,
                        offered: None,
                        since: self.now,
                    };
                }
                self.set_timer(id, TimerKind::Transfer, due);
                self.offer(id, &to, OfferKind::Transfer);
            }
        }
        Ok(())
    }

    /// Dismisses an inactive chat: auto-response, transcript, the agent is freed and the chat
    /// waits in its queue for the customer's reply.
    pub(crate) fn dismiss(&mut self, id: ConvId) {
        self.send_configured(id, |m| m.dismissed_chat.as_ref());
        self.write_transcript(id, Trigger::Dismissed, None, Vec::new());
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        let agent = conv.agent.take();
        if let Some(agent) = &agent {
            conv.last_agent = Some(agent.clone());
        }
        conv.phase = Phase::Dismissed;
        conv.awaiting_reply = None;
        if let Some(agent) = agent {
            self.release(&agent, id);
        }
        self.cancel_timers(
            id,
            &[
                TimerKind::DismissalWarning,
                TimerKind::Dismissal,
                TimerKind::ResponseTarget,
                TimerKind::InteractionInactivity,
            ],
        );
        self.out
            .push(super::Action::Emit(IntegrationEvent::Dismissed {
                conversation: id,
            }));
        self.dispatch();
    }

    fn agent_end(
        &mut self,
        agent: &str,
        id: ConvId,
        dispositions: Vec<String>,
    ) -> Result<(), InputError> {
        let conv = self
            .st
            .conversations
            .get(&id)
            .ok_or(InputError::UnknownConversation(id))?;
        let allowed = conv.agent.as_deref() == Some(agent)
            || (conv.phase == Phase::Dismissed && conv.last_agent.as_deref() == Some(agent));
        if !allowed || matches!(conv.phase, Phase::Offered { .. }) {
            return Err(wrong("end", format!("{agent} does not handle {id}")));
        }
        let account = self
            .account_of(id)
            .ok_or(InputError::UnknownConversation(id))?;
        let rules = &account.cfg.dispositions;
        if rules.mandatory && dispositions.is_empty() {
            return Err(InputError::Disposition(format!(
                "account `{}` requires at least one disposition",
                account.cfg.id
            )));
        }
        let mut chosen = Vec::with_capacity(dispositions.len());
        for d in &dispositions {
            if rules.options.is_empty() {
                chosen.push(d.clone());
                continue;
            }
            match rules
                .options
                .iter()
                .find(|o| o.eq_ignore_ascii_case(d.trim()))
            {
                Some(option) => chosen.push(option.clone()),
                None => {
                    return Err(InputError::Disposition(format!(
                        "`{d}` is not a disposition of account `{}`",
                        account.cfg.id
                    )));
                }
            }
        }
        self.end(id, EndReason::Agent, chosen);
        Ok(())
    }
}
