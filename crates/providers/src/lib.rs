//! Switchboard's built-in connectors.
//!
//! Each connector implements [`switchboard_core::Connector`]: pure functions over bytes that
//! parse webhooks and build requests, with no I/O, so they also compile to WebAssembly. Each
//! lives behind a cargo feature of the same name.
//!
//! ```
//! let ids: Vec<&str> = switchboard_providers::builtin_ids().collect();
//! for id in &ids {
//!     assert!(switchboard_providers::builtin(id).is_some());
//! }
//! ```

use std::sync::Arc;

use switchboard_core::Connector;

#[cfg(feature = "meta")]
pub mod meta;
#[cfg(feature = "twilio")]
pub mod twilio;

/// A constructor of a built-in connector.
type Constructor = fn() -> Arc<dyn Connector>;

/// Every built-in connector compiled in, by id.
const BUILTINS: &[(&str, Constructor)] = &[
    // One line per connector: (id, constructor).
    #[cfg(feature = "twilio")]
    ("twilio", || Arc::new(twilio::TwilioConnector::new())),
    #[cfg(feature = "meta")]
    ("meta-whatsapp", || Arc::new(meta::WhatsAppConnector::new())),
    #[cfg(feature = "meta")]
    ("meta-messenger", || {
        Arc::new(meta::MessengerConnector::new())
    }),
];

/// The ids of the built-in connectors compiled in.
pub fn builtin_ids() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(id, _)| *id)
}

/// A built-in connector by id, e.g. `"twilio"`.
pub fn builtin(id: &str) -> Option<Arc<dyn Connector>> {
    BUILTINS
        .iter()
        .find(|(builtin_id, _)| *builtin_id == id)
        .map(|(_, make)| make())
}
