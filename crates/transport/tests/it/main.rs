//! Integration tests of the transport against wiremock servers on 127.0.0.1 with a real
//! reqwest client. Only loopback addresses are ever connected to.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

mod auth;
mod common;
mod egress;
mod limits;
mod oauth;
mod redaction;
mod redirects;
mod send;
