//! Executes Switchboard connector requests over HTTP.
//!
//! A connector builds an [`HttpRequest`](switchboard_core::HttpRequest) that holds no secrets;
//! the [`Transport`] sends it and returns the [`HttpResponse`](switchboard_core::HttpResponse).
//! On the way it injects the channel's credentials ([`OutboundAuth`](switchboard_core::outbound_auth::OutboundAuth):
//! basic, bearer, custom header, OAuth 2 client credentials with a cached, single-flight
//! refreshed token), enforces the [`EgressPolicy`], applies timeouts and a body cap, and
//! records a redacted [`Trace`] of every exchange.
//!
//! Invariant: **a request reaches only hosts the egress policy allows, at addresses outside
//! the blocked ranges** (loopback, private, link-local, cloud metadata, … — checked on the
//! addresses actually connected to, inside the DNS resolver), and **no secret value leaves the
//! transport except in the credential header of an allowed request**: errors, `Debug` output,
//! traces and logs carry redacted URLs, redacted header values and masked phone numbers.
//! Every [`TransportError`] says whether the request was [not sent](TransportError::not_sent)
//! or its [outcome is unknown](TransportError::outcome_unknown).
//!
//! ```no_run
//! use switchboard_core::outbound_auth::OutboundAuth;
//! use switchboard_core::{HttpRequest, Method, Secrets};
//! use switchboard_transport::{EgressPolicy, Transport};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = Transport::builder()
//!     .egress(EgressPolicy::deny_all().allow_hosts(["api.example.com"])?)
//!     .build()?;
//! let secrets = Secrets::default().with("api_token", "…");
//! let req = HttpRequest::new(Method::Get, "https://api.example.com/v1/ping");
//! let auth = OutboundAuth::Bearer { token: "api_token".into() };
//! match transport.execute(&req, &auth, &secrets).await {
//!     Ok(exchange) => println!("{}", exchange.trace().map(ToString::to_string).unwrap_or_default()),
//!     Err(e) if e.not_sent() => { /* safe to retry */ }
//!     Err(e) if e.outcome_unknown() => { /* do not resend blindly */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```

mod auth;
mod builder;
mod client;
mod egress;
mod error;
mod oauth;
mod trace;

pub use builder::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_MEDIA_BYTES,
    DEFAULT_MEDIA_REDIRECTS, DEFAULT_MEDIA_TIMEOUT, DEFAULT_TIMEOUT, MAX_MEDIA_STEPS,
    TransportBuilder,
};
pub use client::{Exchange, Redirects, Transport};
pub use egress::{
    BlockedRange, DenyRule, EgressConfigError, EgressDenied, EgressPolicy, HostPattern, classify_ip,
};
pub use error::{DownloadError, SendError, TokenFailure, TransportError};
pub use oauth::{Clock, SystemClock};
pub use trace::{
    REDACTED, Trace, is_sensitive_name, mask_phone_numbers, redact_headers, redact_url,
};
