//! In-process plumbing between the workers and the API: the event bus the SSE stream reads,
//! and the results of command jobs that API handlers wait for.
//!
//! Both are optimisations over the store, never the record: an event a client missed is in
//! the store (re-read via REST), and a command job whose result does not arrive here in time
//! (another gateway instance ran it, or routing is busy) is still durable and runs; the API
//! then answers 202 with the job id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

/// How many events a slow subscriber may fall behind before it gets `lagged`.
const BUS_CAPACITY: usize = 1024;
/// How long an uncollected command result is kept (its handler may register late).
const RESULT_TTL: Duration = Duration::from_secs(60);

/// One event for the SSE stream.
#[derive(Clone, Debug)]
pub(crate) struct ApiEvent {
    /// The SSE event name (`offer`, `message`, …).
    pub(crate) name: &'static str,
    /// The agent it concerns: that agent's tokens and admins see it; `None`: admins only.
    pub(crate) agent: Option<String>,
    /// The JSON data.
    pub(crate) data: Value,
}

/// The event bus (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    sender: broadcast::Sender<Arc<ApiEvent>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUS_CAPACITY).0,
        }
    }
}

impl Bus {
    /// Whether anyone listens (events are only built when someone does).
    pub(crate) fn live(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Publishes to every current subscriber (nothing when there is none).
    pub(crate) fn publish(&self, event: ApiEvent) {
        let _ = self.sender.send(Arc::new(event));
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
            name: "offer",
            agent: None,
            data: Value::Null,
        });
        let mut rx = bus.subscribe();
        assert!(bus.live());
        bus.publish(ApiEvent {
            name: "message",
            agent: Some("anna".into()),
            data: Value::Null,
        });
        assert_eq!(rx.recv().await.unwrap().name, "message");
    }
}
