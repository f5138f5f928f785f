//! In-process plumbing between the workers and the API: the event bus the SSE stream reads,
//! and the results of command jobs that API handlers wait for.
//!
//! When several instances share a PostgreSQL store, the bus is also [connected](Bus::connect)
//! to the store's [`Feed`]: what one instance publishes reaches the event streams of all.
//!
//! Both are optimisations over the store, never the record: an event a client missed is in
//! the store (re-read via REST), and a command job whose result does not arrive here in time
//! (another gateway instance ran it, or routing is busy) is still durable and runs; the API
//! then answers 202 with the job id.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_store::Feed;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How many events a slow subscriber may fall behind before it gets `lagged`.
const BUS_CAPACITY: usize = 1024;
/// How long an uncollected command result is kept (its handler may register late).
const RESULT_TTL: Duration = Duration::from_secs(60);

/// One event for the SSE stream.
#[derive(Clone, Debug)]
pub(crate) struct ApiEvent {
    /// The SSE event name (`offer`, `message`, …).
    pub(crate) name: Cow<'static, str>,
    /// The agent it concerns: that agent's tokens and admins see it; `None`: admins only.
    pub(crate) agent: Option<String>,
    /// The JSON data.
    pub(crate) data: Value,
}

/// The event bus (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    sender: broadcast::Sender<Arc<ApiEvent>>,
    /// The queue to the other instances, once [`Bus::connect`]ed.
    remote: Arc<OnceLock<mpsc::Sender<Arc<ApiEvent>>>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUS_CAPACITY).0,
            remote: Arc::new(OnceLock::new()),
        }
    }
}

/// An event as it travels between instances.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<'a> {
    /// The instance that published it (which skips it when it comes back).
    origin: u64,
    name: Cow<'a, str>,
    agent: Option<Cow<'a, str>>,
    data: Value,
}

impl Bus {
    /// Whether anyone listens (events are only built when someone does; always, once
    /// connected to other instances, whose agents may listen).
    pub(crate) fn live(&self) -> bool {
        self.remote.get().is_some() || self.sender.receiver_count() > 0
    }

    /// Publishes to every current subscriber (nothing when there is none), and to the other
    /// instances when connected.
    pub(crate) fn publish(&self, event: ApiEvent) {
        let event = Arc::new(event);
        if let Some(remote) = self.remote.get()
            && remote.try_send(event.clone()).is_err()
        {
            tracing::warn!(event = %event.name, "event feed full: event not sent to the other instances");
        }
        let _ = self.sender.send(event);
    }

    /// Connects the bus to the instances sharing `feed`: events published here are sent to
    /// them, theirs are published here. Spawns the two tasks on the current runtime; a second
    /// call does nothing.
    pub(crate) fn connect(&self, feed: Feed) {
        let (tx, mut rx) = mpsc::channel::<Arc<ApiEvent>>(BUS_CAPACITY);
        if self.remote.set(tx).is_err() {
            return;
        }
        let origin = crate::gateway::workers::jitter_seed();
        let outgoing = feed.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let envelope = Envelope {
                    origin,
                    name: Cow::Borrowed(&event.name),
                    agent: event.agent.as_deref().map(Cow::Borrowed),
                    data: event.data.clone(),
                };
                let sent = match serde_json::to_string(&envelope) {
                    Ok(text) => outgoing.publish(&text).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(error) = sent {
                    tracing::warn!(%error, event = %event.name, "event not sent to the other instances");
                }
            }
        });
        let sender = self.sender.clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match feed.listen().await {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::warn!(error = %e, "event feed: listening failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                loop {
                    let text = match listener.recv().await {
                        Ok(text) => text,
                        Err(e) => {
                            tracing::warn!(error = %e, "event feed: receiving failed; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            break;
                        }
                    };
                    match serde_json::from_str::<Envelope<'_>>(&text) {
                        Ok(envelope) if envelope.origin == origin => {}
                        Ok(envelope) => {
                            let _ = sender.send(Arc::new(ApiEvent {
                                name: Cow::Owned(envelope.name.into_owned()),
                                agent: envelope.agent.map(Cow::into_owned),
                                data: envelope.data,
                            }));
                        }
                        Err(e) => tracing::warn!(error = %e, "event feed: undecodable event"),
                    }
                }
            }
        });
    }

    /// A new subscription, starting now.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<ApiEvent>> {
        self.sender.subscribe()
    }
}

/// What routing did with a command job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CommandOutcome {
    /// Done.
    Ok,
    /// The engine refused the command (its `InputError` text); the state is unchanged.
    Refused(String),
    /// The command was taken but the agent's message was not sent (opt-out, closed window
    /// without a template, …): the reason.
    SendRefused(String),
}

enum Slot {
    Waiting(oneshot::Sender<CommandOutcome>),
    Done(CommandOutcome, Instant),
}

/// Command results by job id: the driver reports, a handler waits.
#[derive(Default)]
pub(crate) struct CommandResults {
    slots: Mutex<HashMap<i64, Slot>>,
}

impl CommandResults {
    /// Waits for job `job`'s result (it may already be there).
    pub(crate) fn register(&self, job: i64) -> oneshot::Receiver<CommandOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut slots) = self.slots.lock() {
            match slots.remove(&job) {
                Some(Slot::Done(outcome, _)) => {
                    let _ = tx.send(outcome);
                }
                _ => {
                    slots.insert(job, Slot::Waiting(tx));
                }
            }
        }
        rx
    }

    /// Stops waiting for `job` (the handler answered 202).
    pub(crate) fn forget(&self, job: i64) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(&job);
        }
    }

    /// Reports job `job`'s committed result.
    pub(crate) fn finish(&self, job: i64, outcome: CommandOutcome) {
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        match slots.remove(&job) {
            Some(Slot::Waiting(tx)) => {
                let _ = tx.send(outcome);
            }
            _ => {
                let now = Instant::now();
                slots.retain(|_, slot| match slot {
                    Slot::Done(_, at) => now.duration_since(*at) < RESULT_TTL,
                    Slot::Waiting(tx) => !tx.is_closed(),
                });
                slots.insert(job, Slot::Done(outcome, now));
            }
        }
    }
}

/// What the workers and the API share.
#[derive(Clone, Default)]
pub(crate) struct Hub {
    /// The event bus.
    pub(crate) bus: Bus,
    /// Command results.
    pub(crate) results: Arc<CommandResults>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[tokio::test]
    async fn a_result_reaches_its_waiter_whichever_comes_first() {
        let results = CommandResults::default();
        let early = results.register(1);
        results.finish(1, CommandOutcome::Ok);
        assert_eq!(early.await.unwrap(), CommandOutcome::Ok);

        // The driver was faster than the handler.
        results.finish(2, CommandOutcome::Refused("no".into()));
        let late = results.register(2);
        assert_eq!(late.await.unwrap(), CommandOutcome::Refused("no".into()));

        // A forgotten job's result is kept only as an orphan.
        let gone = results.register(3);
        results.forget(3);
        drop(gone);
        results.finish(3, CommandOutcome::Ok);
        assert_eq!(results.register(3).await.unwrap(), CommandOutcome::Ok);
    }

    #[tokio::test]
    async fn the_bus_reaches_subscribers_only() {
        let bus = Bus::default();
        assert!(!bus.live());
        bus.publish(ApiEvent {
            name: "offer".into(),
            agent: None,
            data: Value::Null,
        });
        let mut rx = bus.subscribe();
        assert!(bus.live());
        bus.publish(ApiEvent {
            name: "message".into(),
            agent: Some("anna".into()),
            data: Value::Null,
        });
        assert_eq!(rx.recv().await.unwrap().name, "message");
    }
}
