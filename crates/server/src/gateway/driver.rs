//! The routing driver: fires due timers into routing jobs, claims jobs with a lease, runs the
//! engine on the stored state, and commits the new state with everything its actions produced
//! (outbox rows, timers, conversation rows, transcripts) in one transaction, guarded by the
//! state's version.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::InboundEvent;
use switchboard_routing::transcript::{Transcript, TranscriptEntry, TranscriptWrite, Trigger};
use switchboard_routing::{Action, Engine, Input, IntegrationEvent, State, TimerId};
use switchboard_store::{
    ConversationUpdate, NewOutbox, RoutingCommit, RoutingJob, RoutingJobKind, SendFailure, Store,
    StoreError, TimerChange,
};
use tokio::sync::Notify;

use super::events::{CONVERSATION_ASSIGNED, CONVERSATION_ENDED, EventRouter};
use super::workers::{IDLE_POLL, jitter_seed, now};
use crate::api::bus::Hub;
use crate::api::publish::Step;

const ROUTING_BATCH: u32 = 128;

pub(crate) struct RoutingDriver {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Engine,
    pub(crate) worker: String,
    pub(crate) lease: Duration,
    pub(crate) wake: Arc<Notify>,
    pub(crate) send_wake: Arc<Notify>,
    /// The API's event bus and command results: told what each batch did, after its commit.
    pub(crate) hub: Hub,
    /// Integration event subscriptions: deliveries queued in the step's commit.
    pub(crate) events: EventRouter,
}

/// An integration event a routing action causes, turned into deliveries before the commit.
enum Emitted {
    Assigned {
        conversation: String,
        agent: String,
        previous_agent: Option<String>,
        wait_ms: Option<u64>,
    },
    Ended(TranscriptWrite),
}

impl RoutingDriver {
    pub(crate) async fn run(self) {
        loop {
            match self.step().await {
                Ok(0) => {
                    let _ = tokio::time::timeout(IDLE_POLL, self.wake.notified()).await;
                }
                Ok(_) => {}
                // Another instance committed first: re-read the state and retry the same jobs
                // (the claim takes them back) at once, after a short jitter so that instances
                // racing for the state do not stay in step.
                Err(StoreError::Conflict(e)) => {
                    tracing::debug!(error = %e, "routing step lost to another instance; retrying");
                    tokio::time::sleep(Duration::from_millis(jitter_seed() % 20)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "routing step failed; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }

    /// One step: due timers, then one batch of jobs. Returns how many jobs it handled.
    async fn step(&self) -> Result<usize, StoreError> {
        let now = now();
        self.store.fire_due_timers(now, ROUTING_BATCH).await?;
        let jobs = self
            .store
            .claim_routing_jobs(&self.worker, now, self.lease, ROUTING_BATCH)
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let stored = self.store.routing_state().await?;
        let (base_version, mut state) = match stored {
            Some(row) => (row.version, serde_json::from_str::<State>(&row.state)?),
            None => (0, State::new()),
        };
        let mut commit = RoutingCommit {
            worker: self.worker.clone(),
            base_version,
            state: String::new(),
            done_jobs: Vec::with_capacity(jobs.len()),
            outbox: Vec::new(),
            timers: Vec::new(),
            conversations: Vec::new(),
            transcript_entries: Vec::new(),
            transcripts: Vec::new(),
            message_links: Vec::new(),
            event_deliveries: Vec::new(),
            now,
        };
        let mut emitted = Vec::new();
        let mut step = Step::new(&self.hub);
        let mut actions = Vec::new();
        for job in &jobs {
            commit.done_jobs.push(job.id);
            let Some(input) = self.input(job) else {
                continue;
            };
            let before = step.before(&state, &input);
            actions.clear();
            if let Err(e) = self
                .engine
                .handle_into(&mut state, input, now, &mut actions)
            {
                tracing::info!(job = job.id, error = %e, "routing refused an input");
                step.refused(job, &before, &e);
                continue;
            }
            if let Some(link) = step.handled(job, &before, &actions, &state) {
                commit.message_links.push(link);
            }
            for action in actions.drain(..) {
                emitted.extend(emitted_by(&action));
                apply(&mut commit, action)?;
            }
        }
        commit.state = serde_json::to_string(&state)?;
        self.queue_events(&mut commit, emitted).await?;
        let queued = commit.outbox.len();
        self.store.commit_routing(&commit).await?;
        step.flush();
        if queued > 0 {
            self.send_wake.notify_one();
        }
        Ok(jobs.len())
    }

    /// Adds the deliveries of the step's integration events to the commit. A
    /// `conversation.ended` carries the whole transcript: the entries stored by earlier
    /// commits and this step's (the state's version guard makes the read consistent with the
    /// commit: a concurrent commit would make this one conflict).
    async fn queue_events(
        &self,
        commit: &mut RoutingCommit,
        emitted: Vec<Emitted>,
    ) -> Result<(), StoreError> {
        for event in emitted {
            let (event_type, conversation) = match &event {
                Emitted::Assigned { conversation, .. } => (CONVERSATION_ASSIGNED, conversation),
                Emitted::Ended(write) => (CONVERSATION_ENDED, &write.conversation.to_string()),
            };
            if !self.events.wants(event_type) {
                continue;
            }
            let conversation = conversation.clone();
            // The channel and customer: stored, or created in this very step.
            let (channel_id, customer) = match self.store.conversation(&conversation).await? {
                Some(row) => (Some(row.channel_id), Some(row.customer)),
                None => commit
                    .conversations
                    .iter()
                    .find(|c| c.id == conversation && c.channel_id.is_some())
                    .map_or((None, None), |c| (c.channel_id.clone(), c.customer.clone())),
            };
            let data = match event {
                Emitted::Assigned {
                    conversation,
                    agent,
                    previous_agent,
                    wait_ms,
                } => serde_json::json!({
                    "conversation": conversation,
                    "channel_id": channel_id,
                    "customer": customer,
                    "agent": agent,
                    "previous_agent": previous_agent,
                    "wait_ms": wait_ms,
                }),
                Emitted::Ended(write) => {
                    let mut entries = self.store.transcript(&conversation).await?.entries;
                    entries.extend(
                        commit
                            .transcript_entries
                            .iter()
                            .filter(|(c, _)| *c == conversation)
                            .map(|(_, entry)| entry.clone()),
                    );
                    entries.truncate(usize::try_from(write.entries).unwrap_or(usize::MAX));
                    let messages = entries
                        .iter()
                        .map(|entry| serde_json::from_str::<TranscriptEntry>(entry))
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut data = serde_json::to_value(Transcript { write, messages })?;
                    if let Some(object) = data.as_object_mut() {
                        object.insert("channel_id".into(), channel_id.into());
                        object.insert("customer".into(), customer.into());
                    }
                    data
                }
            };
            commit
                .event_deliveries
                .extend(self.events.deliveries(event_type, data, commit.now));
        }
        Ok(())
    }

    /// The engine input of a job; `None` (the job is dropped with a log line) when it is not
    /// one the engine takes.
    fn input(&self, job: &RoutingJob) -> Option<Input> {
        let parsed = match job.kind {
            RoutingJobKind::Inbound => {
                let account = job.channel_id.clone()?;
                if !self
                    .engine
                    .config()
                    .accounts
                    .iter()
                    .any(|a| a.id == account)
                {
                    // A channel without routing: events are stored, nothing is routed.
                    return None;
                }
                serde_json::from_str::<InboundEvent>(&job.payload)
                    .map(|event| Input::Inbound { account, event })
            }
            RoutingJobKind::Timer => {
                serde_json::from_str::<TimerId>(&job.payload).map(|id| Input::Timer { id })
            }
            RoutingJobKind::Command => serde_json::from_str::<Input>(&job.payload),
            RoutingJobKind::SendFailed => serde_json::from_str::<SendFailure>(&job.payload)
                .and_then(|failure| {
                    Ok(Input::SendFailed {
                        conversation: serde_json::from_value(serde_json::Value::String(
                            failure.conversation,
                        ))?,
                        permanent: failure.permanent,
                    })
                }),
        };
        match parsed {
            Ok(input) => Some(input),
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "undecodable routing job dropped");
                None
            }
        }
    }
}

/// The integration event an action causes, if it is one subscriptions may want.
fn emitted_by(action: &Action) -> Option<Emitted> {
    match action {
        Action::Emit(IntegrationEvent::Accepted {
            conversation,
            agent,
            wait_ms,
        }) => Some(Emitted::Assigned {
            conversation: conversation.to_string(),
            agent: agent.clone(),
            previous_agent: None,
            wait_ms: Some(*wait_ms),
        }),
        Action::Emit(IntegrationEvent::Transferred {
            conversation,
            from,
            to,
        }) => Some(Emitted::Assigned {
            conversation: conversation.to_string(),
            agent: to.clone(),
            previous_agent: Some(from.clone()),
            wait_ms: None,
        }),
        Action::WriteTranscript(write) if write.trigger == Trigger::Ended => {
            Some(Emitted::Ended(write.clone()))
        }
        _ => None,
    }
}

fn conversation(id: impl ToString) -> ConversationUpdate {
    ConversationUpdate {
        id: id.to_string(),
        channel_id: None,
        customer: None,
        state: None,
        queue: None,
        agent: None,
        end_reason: None,
    }
}

fn word<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Adds what one engine action asks for to the commit.
fn apply(commit: &mut RoutingCommit, action: Action) -> Result<(), StoreError> {
    match action {
        Action::Send {
            conversation,
            account,
            message,
            ..
        } => commit.outbox.push(NewOutbox {
            channel_id: account,
            conversation_id: conversation.map(|c| c.to_string()),
            message,
        }),
        Action::StartTimer { id, due } => commit.timers.push(TimerChange::Start {
            key: id.to_string(),
            payload: serde_json::to_string(&id)?,
            due,
        }),
        Action::CancelTimer { id } => commit.timers.push(TimerChange::Cancel {
            key: id.to_string(),
        }),
        Action::AppendTranscript {
            conversation,
            entry,
        } => commit
            .transcript_entries
            .push((conversation.to_string(), serde_json::to_string(&entry)?)),
        Action::WriteTranscript(write) => commit.transcripts.push((
            write.conversation.to_string(),
            serde_json::to_string(&write)?,
        )),
        Action::Close {
            conversation: id,
            reason,
            ..
        } => commit.conversations.push(ConversationUpdate {
            state: Some("ended".into()),
            end_reason: word(&reason),
            ..conversation(id)
        }),
        Action::Emit(event) => match event {
            IntegrationEvent::ConversationStarted {
                conversation: id,
                account,
                customer,
                ..
            } => commit.conversations.push(ConversationUpdate {
                channel_id: Some(account),
                customer: Some(customer.id),
                state: Some("open".into()),
                ..conversation(id)
            }),
            IntegrationEvent::Queued {
                conversation: id,
                queue,
            } => commit.conversations.push(ConversationUpdate {
                state: Some("queued".into()),
                queue: Some(queue),
                ..conversation(id)
            }),
            IntegrationEvent::Accepted {
                conversation: id,
                agent,
                ..
            }
            | IntegrationEvent::Transferred {
                conversation: id,
                to: agent,
                ..
            } => commit.conversations.push(ConversationUpdate {
                state: Some("assigned".into()),
                agent: Some(agent),
                ..conversation(id)
            }),
            IntegrationEvent::Dismissed { conversation: id } => {
                commit.conversations.push(ConversationUpdate {
                    state: Some("dismissed".into()),
                    ..conversation(id)
                })
            }
            other => tracing::debug!(event = ?word(&other), "integration event"),
        },
        // Offers and refusals reach agents through the API's event stream (`Step`).
        other => tracing::debug!(action = ?std::mem::discriminant(&other), "routing action"),
    }
    Ok(())
}
