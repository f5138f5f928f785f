//! Timer firings.

use super::flow::{CLOSED_FOR_INACTIVITY, Cx};
use super::state::Phase;
use super::{Action, IntegrationEvent};
use crate::config::{DismissalMethod, FallbackRoute};
use crate::timers::{TimerId, TimerKind};
use crate::transcript::{EndReason, Trigger};

impl Cx<'_> {
    /// A timer is due. Stale firings (timer gone, or restarted for later) are ignored.
    pub(crate) fn timer(&mut self, id: TimerId) {
        let TimerId { conversation, kind } = id;
        let Some(conv) = self.st.conversations.get_mut(&conversation) else {
            return;
        };
        match conv.timer(kind) {
            Some(due) if due <= self.now => {}
            _ => return,
        }
        conv.timers.retain(|(k, _)| *k != kind);
        let phase = conv.phase.clone();
        let agent = conv.agent.clone();
        let warned = conv.warned;
        let id = conversation;
        match (kind, phase) {
            (TimerKind::QueueSelecting, Phase::Selecting { .. }) => {
                self.end(id, EndReason::ExpiredInQueue, Vec::new());
            }
            (TimerKind::Unanswered, Phase::Queued { .. } | Phase::Offered { .. }) => {
                self.end(id, EndReason::ExpiredInQueue, Vec::new());
            }
            (TimerKind::Offer, Phase::Offered { .. } | Phase::Transferring { .. }) => {
                self.withdraw_offer(id, true);
                self.dispatch();
            }
            (TimerKind::AssignedAgentWait, Phase::AwaitingAgent) => {
                self.requeue_to_agents_queue(id)
            }
            (TimerKind::AssignedQueueWait, Phase::Queued { .. }) => self.fallback(id),
            (TimerKind::PreferredFallback, Phase::Queued { .. }) => {
                if let Some(conv) = self.st.conversations.get_mut(&id)
                    && let Phase::Queued { prefer, .. } = &mut conv.phase
                {
                    *prefer = None;
                }
                self.dispatch();
            }
            (TimerKind::DismissalWarning, Phase::Assigned) if !warned => {
                if let Some(conv) = self.st.conversations.get_mut(&id) {
                    conv.warned = true;
                }
                self.send_configured(id, |m| m.dismissal_warning.as_ref());
                self.write_transcript(id, Trigger::DismissalWarning, None, Vec::new());
            }
            (TimerKind::Dismissal, Phase::Assigned) => {
                let method = self
                    .account_of(id)
                    .and_then(|a| a.cfg.timers.inactivity)
                    .map(|i| i.method)
                    .unwrap_or_default();
                match method {
                    DismissalMethod::Auto => self.dismiss(id),
                    DismissalMethod::Manual => {
                        self.out
                            .push(Action::Emit(IntegrationEvent::DismissalSuggested {
                                conversation: id,
                                agent: agent.unwrap_or_default(),
                            }));
                    }
                }
            }
            (TimerKind::ChatTimeout, _) | (TimerKind::Compliance, _) => {
                self.end(id, EndReason::Timeout, Vec::new());
            }
            (
                TimerKind::ResponseTarget,
                Phase::Assigned | Phase::AwaitingAgent | Phase::Transferring { .. },
            ) => {
                self.st.metrics.response_target_breaches += 1;
                self.out
                    .push(Action::Emit(IntegrationEvent::ResponseTargetBreached {
                        conversation: id,
                        agent: agent.unwrap_or_default(),
                    }));
            }
            (TimerKind::InteractionInactivity, _) => {
                self.end(
                    id,
                    EndReason::Timeout,
                    vec![CLOSED_FOR_INACTIVITY.to_owned()],
                );
            }
            (TimerKind::Transfer, Phase::Transferring { .. }) => self.transfer_failed(id),
            _ => {}
        }
    }

    /// Waited for the agent, then the agent's queue: follow the account's fallback route.
    fn fallback(&mut self, id: crate::ConvId) {
        let Some(account) = self.account_of(id) else {
            return;
        };
        match &account.cfg.fallback {
            FallbackRoute::KeepWaiting => {
                if let Some(conv) = self.st.conversations.get_mut(&id)
                    && let Phase::Queued { returning, .. } = &mut conv.phase
                {
                    *returning = false;
                }
            }
            FallbackRoute::Queue { queue } => self.enqueue(id, None, queue, false),
            FallbackRoute::Close => self.end(id, EndReason::ExpiredInQueue, Vec::new()),
        }
    }
}
