//! What the engine can count as it routes: service level, response-time breaches, queue waits,
//! per-queue counts. Part of [`crate::State`], so it persists with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters since the state was created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Per queue, keyed `account/queue`.
    pub queues: BTreeMap<String, QueueMetrics>,
    /// Agent replies later than the response-time target.
    pub response_target_breaches: u64,
    /// Conversations started.
    pub conversations_started: u64,
    /// Conversations ended.
    pub conversations_ended: u64,
}

/// Counters of one leaf queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMetrics {
    /// Conversations that entered the queue.
    pub entered: u64,
    /// Conversations an agent accepted.
    pub answered: u64,
    /// Of those, accepted within the service-level target.
    pub answered_in_target: u64,
    /// Ended while waiting: expired, customer left, fallback close.
    pub abandoned: u64,
    /// Offers not accepted in time (RONA).
    pub rona: u64,
    /// Sum of waits until accepted, in milliseconds.
    pub total_wait_ms: u64,
    /// The longest wait until accepted, in milliseconds.
    pub max_wait_ms: u64,
}

impl QueueMetrics {
    /// Share of answered conversations accepted within the target, 0.0–1.0 (1.0 when none yet).
    pub fn service_level(&self) -> f64 {
        if self.answered == 0 {
            1.0
        } else {
            self.answered_in_target as f64 / self.answered as f64
        }
    }

    /// Average wait until accepted, in milliseconds.
    pub fn average_wait_ms(&self) -> u64 {
        self.total_wait_ms.checked_div(self.answered).unwrap_or(0)
    }
}
