//! Switchboard: one contract for customer-messaging providers.
//!
//! This facade re-exports the pieces an integrator uses: the contract and message model (from
//! `switchboard-core`, also re-exported at the root), the built-in connectors and the HTTP
//! executor, each behind a feature.
//!
//! | feature | what it adds |
//! |---|---|
//! | `transport` (default) | `transport`: runs connector requests with credentials, timeouts, an egress policy |
//! | `twilio` | `providers::twilio`: Twilio WhatsApp, SMS/MMS and Messaging Services |
//! | `meta` | `providers::meta`: Meta WhatsApp Cloud API and Facebook Messenger |
//! | `all-connectors` | every built-in connector |
//!
//! ```
//! use switchboard::{Address, Channel, Content, OutboundMessage};
//! let msg = OutboundMessage::new("k1", Address::phone(Channel::Sms, "+14155550100"), Content::text("hi"));
//! assert_eq!(msg.to.channel, Channel::Sms);
//! ```

pub use switchboard_core as core;
pub use switchboard_core::*;
#[cfg(any(feature = "twilio", feature = "meta"))]
pub use switchboard_providers as providers;
#[cfg(feature = "transport")]
pub use switchboard_transport as transport;
