//! Delivery statuses and their monotonic, order-independent merge.
//!
//! Providers deliver status callbacks late, twice and out of order. [`DeliveryState`] is a join
//! semilattice: merging is commutative, associative and idempotent, so every permutation of the
//! same set of updates, duplicates included, converges to one state.
//!
//! The order used by the merge is
//! `accepted < queued < sent < undelivered < failed < delivered < read`.
//! A failure beats any progress short of delivery and is terminal for it; proof of delivery
//! (`delivered`, `read`) beats a failure, because the recipient has the message. A failure that
//! arrives after delivery is kept in [`DeliveryState::failure`] for audit.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ProviderError;

/// A delivery status as a provider reports it, normalized.
///
/// JSON: a lowercase string. Statuses this version does not know are kept as
/// [`DeliveryStatus::Unknown`] with the provider's word and never change a merged state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// The provider accepted the request.
    Accepted,
    /// Queued at the provider.
    Queued,
    /// Handed to the carrier or channel.
    Sent,
    /// On the recipient's device.
    Delivered,
    /// Read by the recipient.
    Read,
    /// The carrier or channel could not deliver it.
    Undelivered,
    /// Sending failed.
    Failed,
    /// A status this version does not know, with the provider's word for it.
    Unknown(String),
}

impl DeliveryStatus {
    /// The position in the merge order; `None` for unknown statuses.
    fn rank(&self) -> Option<u8> {
        Some(match self {
            DeliveryStatus::Accepted => 1,
            DeliveryStatus::Queued => 2,
            DeliveryStatus::Sent => 3,
            DeliveryStatus::Undelivered => 4,
            DeliveryStatus::Failed => 5,
            DeliveryStatus::Delivered => 6,
            DeliveryStatus::Read => 7,
            DeliveryStatus::Unknown(_) => return None,
        })
    }

    /// Whether this status reports a failure to deliver.
    pub fn is_failure(&self) -> bool {
        matches!(self, DeliveryStatus::Failed | DeliveryStatus::Undelivered)
    }

    /// The stable lowercase name.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Accepted => "accepted",
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Undelivered => "undelivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Unknown(word) => word,
        }
    }
}

impl From<String> for DeliveryStatus {
    fn from(word: String) -> Self {
        match word.as_str() {
            "accepted" => DeliveryStatus::Accepted,
            "queued" => DeliveryStatus::Queued,
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "undelivered" => DeliveryStatus::Undelivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Unknown(word),
        }
    }
}

impl From<DeliveryStatus> for String {
    fn from(status: DeliveryStatus) -> Self {
        status.as_str().to_owned()
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure seen for a message: its status and the provider's error, when one was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusFailure {
    /// `failed` or `undelivered`.
    pub status: DeliveryStatus,
    /// The provider's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProviderError>,
}

impl StatusFailure {
    /// The total order that picks one failure deterministically among several.
    fn cmp_key(&self, other: &Self) -> Ordering {
        self.status.rank().cmp(&other.status.rank()).then_with(|| {
            let key = |f: &StatusFailure| {
                f.error.as_ref().map(|e| {
                    (
                        e.class,
                        e.provider_code.clone(),
                        e.message.clone(),
                        e.retry_after,
                    )
                })
            };
            key(self).cmp(&key(other))
        })
    }
}

/// The merged delivery state of one outbound message.
///
/// ```
/// use switchboard_core::{DeliveryState, DeliveryStatus};
/// let mut state = DeliveryState::default();
/// state.apply(&DeliveryStatus::Read, None);
/// state.apply(&DeliveryStatus::Sent, None); // late and out of order: ignored
/// assert_eq!(state.status, DeliveryStatus::Read);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// The furthest status reached in the merge order.
    pub status: DeliveryStatus,
    /// The most severe failure reported, kept even when delivery was later (or earlier) proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<StatusFailure>,
}

impl Default for DeliveryState {
    /// A message the provider has accepted and nothing more is known of.
    fn default() -> Self {
        Self {
            status: DeliveryStatus::Accepted,
            failure: None,
        }
    }
}

impl DeliveryState {
    /// A state whose only knowledge is `status`.
    pub fn new(status: DeliveryStatus) -> Self {
        let mut state = Self::default();
        state.apply(&status, None);
        state
    }

    /// Merges one status update. Unknown statuses change nothing.
    pub fn apply(&mut self, status: &DeliveryStatus, error: Option<&ProviderError>) {
        let Some(rank) = status.rank() else { return };
        if Some(rank) > self.status.rank() {
            self.status = status.clone();
        }
        if status.is_failure() {
            let candidate = StatusFailure {
                status: status.clone(),
                error: error.cloned(),
            };
            let replace = match &self.failure {
                None => true,
                Some(current) => candidate.cmp_key(current) == Ordering::Greater,
            };
            if replace {
                self.failure = Some(candidate);
            }
        }
    }

    /// Merges another state into this one (the join of the two).
    pub fn merge(&mut self, other: &DeliveryState) {
        self.apply(&other.status, None);
        if let Some(failure) = &other.failure {
            self.apply(&failure.status, failure.error.as_ref());
        }
    }

    /// Whether no later status can change [`Self::status`].
    pub fn is_final(&self) -> bool {
        self.status == DeliveryStatus::Read
    }
}

#[cfg(test)]
mod tests;
