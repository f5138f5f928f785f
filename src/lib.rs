//! Switchboard: one contract for customer-messaging providers.
//!
//! This facade re-exports the pieces an integrator uses. The contract and message model come
//! from [`core`]; the HTTP executor from [`transport`] (feature `transport`, on by default).
//!
//! | feature | what it adds |
//! |---|---|
//! | `transport` (default) | [`transport`]: runs connector requests with credentials, timeouts and an egress policy |
//! | `all-connectors` | every built-in connector |

pub use switchboard_core as core;
pub use switchboard_core::*;
#[cfg(feature = "transport")]
pub use switchboard_transport as transport;
