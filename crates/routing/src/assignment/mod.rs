//! Choosing an agent among the eligible members of a leaf queue.
//!
//! Eligibility (available, under the queue's concurrency target, not excluded) is decided by the
//! engine; this module only orders the eligible candidates.

use switchboard_core::Timestamp;

/// An eligible agent of a leaf queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The agent's position among the queue's members (stable: it indexes percent counters).
    pub member: usize,
    /// Proficiency; higher first.
    pub proficiency: u8,
    /// Cascade group; lower first.
    pub group: u8,
    /// Percent share (percent mode).
    pub percent: u8,
    /// Conversations the agent has now (offered or assigned).
    pub active: usize,
    /// When the agent last got a conversation; `None` (never) counts as longest idle.
    pub last_assigned: Option<Timestamp>,
}

/// Cascade: the lowest group with an eligible agent; in it, highest proficiency, then fewest
/// conversations, then longest idle, then configuration order. Returns a member index.
pub fn cascade(candidates: &[Candidate]) -> Option<usize> {
    candidates
        .iter()
        .min_by(|a, b| {
            a.group
                .cmp(&b.group)
                .then(b.proficiency.cmp(&a.proficiency))
                .then(a.active.cmp(&b.active))
                .then(a.last_assigned.cmp(&b.last_assigned))
                .then(a.member.cmp(&b.member))
        })
        .map(|c| c.member)
}

/// Percent allocation by smooth weighted round robin over the eligible candidates: each pick
/// adds every candidate's share to its counter, takes the largest counter and subtracts the
/// total from it. Over time each agent gets their share of the conversations they were
/// eligible for, with no randomness. `counters` has one entry per member of the queue.
pub fn percent(candidates: &[Candidate], counters: &mut Vec<i64>, members: usize) -> Option<usize> {
    if counters.len() != members {
        counters.resize(members, 0);
    }
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for c in candidates {
        let weight = i64::from(c.percent);
        counters[c.member] += weight;
        total += weight;
        if best.is_none_or(|b| counters[c.member] > counters[b]) {
            best = Some(c.member);
        }
    }
    let best = best?;
    counters[best] -= total;
    Some(best)
}

#[cfg(test)]
mod tests;
