//! Integration tests of `switchboard-core`: the webhook-authentication catalogue against the
//! providers' official test vectors, edge cases, and property tests.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

mod basic;
mod garbage;
mod meta;
mod sinch;
mod standard;
mod support;
mod twilio;
