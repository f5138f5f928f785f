//! Turns what the workers did into API events and command results.
//!
//! The routing driver opens a [`Step`] per batch, tells it about each job before and after the
//! engine handled it, and calls [`Step::flush`] only after the batch committed: nothing is
//! announced that the store does not hold. Ingest announces delivery statuses with
//! [`statuses`] after its commit.

use std::sync::Arc;

use serde_json::json;
use switchboard_core::{Content, InboundEvent};
use switchboard_routing::transcript::Party;
use switchboard_routing::{
    Action, AgentCommand, ConvId, Input, InputError, IntegrationEvent, Phase, State,
};
use switchboard_store::{MessageLink, RoutingJob, RoutingJobKind, Store};

use super::bus::{ApiEvent, Bus, CommandOutcome, Hub};

/// The agent a conversation's events go to: the one handling it, else the one it is offered
/// to.
pub(crate) fn audience(state: &State, conversation: ConvId) -> Option<String> {
    let conv = state.conversation(conversation)?;
    if let Some(agent) = &conv.agent {
        return Some(agent.clone());
    }
    match &conv.phase {
        Phase::Offered { agent, .. } => Some(agent.clone()),
        Phase::Transferring {
            offered: Some(agent),
            ..
        } => Some(agent.clone()),
        _ => None,
    }
}

fn command_parts(command: &AgentCommand) -> (&'static str, &str, Option<ConvId>) {
    match command {
        AgentCommand::SetAvailability { agent, .. } => ("set_availability", agent, None),
        AgentCommand::Accept {
            agent,
            conversation,
        } => ("accept", agent, Some(*conversation)),
        AgentCommand::Reject {
            agent,
            conversation,
        } => ("reject", agent, Some(*conversation)),
        AgentCommand::Send {
            agent,
            conversation,
            ..
        } => ("send", agent, Some(*conversation)),
        AgentCommand::SendCanned {
            agent,
            conversation,
            ..
        } => ("send_canned", agent, Some(*conversation)),
        AgentCommand::Transfer {
            agent,
            conversation,
            ..
        } => ("transfer", agent, Some(*conversation)),
        AgentCommand::Dismiss {
            agent,
            conversation,
        } => ("dismiss", agent, Some(*conversation)),
        AgentCommand::End {
            agent,
            conversation,
            ..
        } => ("end", agent, Some(*conversation)),
    }
}

/// What a job was about, taken before the engine consumed its input.
pub(crate) struct Before {
    /// The conversation the input concerns, and who had it then.
    conversation: Option<(ConvId, Option<String>)>,
    /// A command: its name, agent, and whether it sends a message.
    command: Option<(&'static str, String, Option<ConvId>)>,
    /// An inbound message: account, provider id, sender id, content (content only when
    /// someone listens).
    inbound: Option<(String, String, String, Option<Content>)>,
}

/// The events and results of one routing batch.
pub(crate) struct Step {
    hub: Hub,
    live: bool,
    events: Vec<ApiEvent>,
    results: Vec<(i64, CommandOutcome)>,
}

impl Step {
    /// A new batch.
    pub(crate) fn new(hub: &Hub) -> Self {
        Self {
            hub: hub.clone(),
            live: hub.bus.live(),
            events: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Notes what `input` is about, before the engine handles it.
    pub(crate) fn before(&self, state: &State, input: &Input) -> Before {
        let mut before = Before {
            conversation: None,
            command: None,
            inbound: None,
        };
        let conversation = match input {
            Input::Agent(command) => {
                let (name, agent, conversation) = command_parts(command);
                before.command = Some((name, agent.to_owned(), conversation));
                conversation
            }
            Input::Timer { id } => Some(id.conversation),
            Input::SendFailed { conversation, .. } => Some(*conversation),
            Input::Inbound { account, event } => {
                let InboundEvent::Message(message) = event else {
                    return before;
                };
                before.inbound = Some((
                    account.clone(),
                    message.id.clone(),
                    message.from.id.clone(),
                    self.live.then(|| message.content.clone()),
                ));
                state
                    .contacts
                    .get(&format!("{account}/{}", message.from.id))
                    .and_then(|c| c.open)
            }
        };
        before.conversation = conversation.map(|c| (c, audience(state, c)));
        before
    }

    /// The engine refused the input of `job`.
    pub(crate) fn refused(&mut self, job: &RoutingJob, before: &Before, error: &InputError) {
        if job.kind != RoutingJobKind::Command {
            return;
        }
        self.results
            .push((job.id, CommandOutcome::Refused(error.to_string())));
        if let Some((name, agent, conversation)) = &before.command {
            self.events.push(ApiEvent {
                name: "command_refused".into(),
                agent: Some(agent.clone()).filter(|a| !a.is_empty()),
                data: json!({
                    "job": job.id, "command": name, "agent": agent,
                    "conversation": conversation, "reason": error.to_string(),
                }),
            });
        }
    }

    /// The engine handled the input of `job` with `actions` (`state` is the state after).
    /// Returns the link of an inbound message to its conversation, for the commit.
    pub(crate) fn handled(
        &mut self,
        job: &RoutingJob,
        before: &Before,
        actions: &[Action],
        state: &State,
    ) -> Option<MessageLink> {
        let link = before
            .inbound
            .as_ref()
            .and_then(|(account, id, from, content)| {
                let conversation = actions
                    .iter()
                    .find_map(|a| match a {
                        Action::AppendTranscript {
                            conversation,
                            entry,
                        } if entry.from == Party::Customer => Some(*conversation),
                        _ => None,
                    })
                    .or_else(|| {
                        state
                            .contacts
                            .get(&format!("{account}/{from}"))
                            .and_then(|c| c.open)
                    })?;
                if self.live {
                    self.events.push(ApiEvent {
                        name: "message".into(),
                        agent: audience(state, conversation),
                        data: json!({
                            "conversation": conversation, "direction": "in", "channel": account,
                            "provider_message_id": id, "from": from, "content": content,
                        }),
                    });
                }
                Some(MessageLink {
                    channel_id: account.clone(),
                    provider_message_id: id.clone(),
                    conversation_id: conversation.to_string(),
                })
            });

        let mut send_refused = None;
        for action in actions {
            if let Action::SendRefused { sender, reason, .. } = action
                && matches!(sender, switchboard_routing::Sender::Agent(_))
            {
                send_refused = Some(reason.clone());
            }
            if self.live {
                self.event(before, action, state);
            }
        }
        if job.kind == RoutingJobKind::Command {
            let sends = matches!(&before.command, Some((name, ..)) if name.starts_with("send"));
            let outcome = match send_refused {
                Some(reason) if sends => CommandOutcome::SendRefused(reason),
                _ => CommandOutcome::Ok,
            };
            self.results.push((job.id, outcome));
        }
        link
    }

    fn event(&mut self, before: &Before, action: &Action, state: &State) {
        // Who had the conversation before this input (it may have left the state since).
        let had = |conversation: ConvId| {
            audience(state, conversation).or_else(|| match &before.conversation {
                Some((c, agent)) if *c == conversation => agent.clone(),
                _ => None,
            })
        };
        let (name, agent, data) = match action {
            Action::Offer {
                conversation,
                agent,
                queue,
                kind,
                expires_at,
            } => (
                "offer",
                Some(agent.clone()),
                json!({"conversation": conversation, "agent": agent, "queue": queue,
                       "kind": kind, "expires_at": expires_at}),
            ),
            Action::WithdrawOffer {
                conversation,
                agent,
            } => (
                "offer_withdrawn",
                Some(agent.clone()),
                json!({"conversation": conversation, "agent": agent}),
            ),
            Action::Send {
                conversation: Some(conversation),
                account,
                sender,
                message,
                recontact_template,
            } => (
                "message",
                had(*conversation),
                json!({"conversation": conversation, "direction": "out", "channel": account,
                       "sender": sender, "idempotency_key": message.idempotency_key,
                       "content": message.content, "recontact_template": recontact_template}),
            ),
            Action::SendRefused {
                conversation,
                sender,
                reason,
            } => (
                "send_refused",
                match sender {
                    switchboard_routing::Sender::Agent(agent) => Some(agent.clone()),
                    switchboard_routing::Sender::System => conversation.and_then(had),
                },
                json!({"conversation": conversation, "sender": sender, "reason": reason}),
            ),
            Action::Close {
                conversation,
                reason,
                dispositions,
            } => {
                let agent = had(*conversation);
                (
                    "conversation_ended",
                    agent.clone(),
                    json!({"conversation": conversation, "reason": reason, "agent": agent,
                           "dispositions": dispositions}),
                )
            }
            Action::Emit(IntegrationEvent::AgentAvailability {
                agent,
                availability,
            }) => (
                "agent_state",
                Some(agent.clone()),
                json!({"agent": agent, "availability": availability}),
            ),
            _ => return,
        };
        self.events.push(ApiEvent {
            name: name.into(),
            agent,
            data,
        });
    }

    /// Announces the batch: call after its commit succeeded.
    pub(crate) fn flush(self) {
        for event in self.events {
            self.hub.bus.publish(event);
        }
        for (job, outcome) in self.results {
            self.hub.results.finish(job, outcome);
        }
    }
}

/// After an ingest commit: announces the delivery statuses among `events` (with the merged
/// state and the conversation's agent), in a task so the webhook's answer does not wait.
pub(crate) fn statuses(
    store: &Arc<dyn Store>,
    bus: &Bus,
    channel_id: &str,
    events: &[InboundEvent],
) {
    if !bus.live() {
        return;
    }
    let ids: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            InboundEvent::Status(status) => Some(status.message_id.clone()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return;
    }
    let (store, bus, channel) = (store.clone(), bus.clone(), channel_id.to_owned());
    tokio::spawn(async move {
        for id in ids {
            let message = match store.message_by_provider_id(&channel, &id).await {
                Ok(Some(message)) if message.direction == "out" => message,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "status event: message lookup failed");
                    continue;
                }
            };
            let agent = match &message.conversation_id {
                Some(conversation) => match store.conversation(conversation).await {
                    Ok(found) => found.and_then(|c| c.agent),
                    Err(_) => None,
                },
                None => None,
            };
            bus.publish(ApiEvent {
                name: "status".into(),
                agent,
                data: json!({
                    "message_id": message.outbox_id, "channel": channel,
                    "conversation": message.conversation_id,
                    "provider_message_id": id, "delivery": message.delivery,
                    "state": message.outbox_state,
                }),
            });
        }
    });
}
