//! The connector contract of Switchboard, with no I/O.
//!
//! This crate defines what every messaging connector speaks: the message model
//! ([`Address`], [`Content`], [`InboundEvent`], [`OutboundMessage`]), the delivery-status
//! state machine ([`DeliveryState`]), the error taxonomy ([`ProviderError`],
//! [`ConnectorError`]), channel [`Capabilities`] with the customer-service window, the
//! [`Connector`] and [`SessionConnector`] traits, and the catalogues of webhook
//! authentication ([`webhook_auth`]) and outbound authentication ([`outbound_auth`]).
//!
//! Invariant: nothing here performs I/O, reads a clock or the environment. The crate
//! compiles for `wasm32-unknown-unknown`, so a connector written against it runs natively
//! or as a WebAssembly plugin without change. Time always comes in as an argument.
//!
//! ```
//! use switchboard_core::{Address, Channel, Content, OutboundMessage};
//!
//! let msg = OutboundMessage::new(
//!     "order-42-confirmation",
//!     Address::phone(Channel::WhatsApp, "+14155550100"),
//!     Content::text("Your order has shipped."),
//! );
//! let json = serde_json::to_string(&msg).unwrap();
//! assert!(json.contains(r#""type":"text""#));
//! ```

mod address;
mod capabilities;
mod connector;
mod content;
mod error;
mod event;
mod http;
mod outbound;
pub mod outbound_auth;
mod secret;
mod serde_secs;
pub mod sms;
mod status;
mod timestamp;
pub mod webhook_auth;

pub use address::{Address, AddressKind, Channel};
pub use capabilities::{
    Capabilities, ContentKind, MediaLimit, SupportLevel, WindowDecision, WindowPolicy,
};
pub use connector::{
    BoxFuture, ChannelContext, ChannelKey, ChannelSupport, Connector, ConnectorInfo, EventSink,
    MediaStep, SessionConnector, SinkError, SkippedItem, WebhookOutcome, receive_webhook,
};
pub use content::{
    ContactCard, Content, Interactive, InteractiveAction, ListRow, ListSection, Location, Media,
    MediaKind, MediaSource, ReplyButton, SelectedReply, Template, TemplateButton, TemplateHeader,
    TemplateParameter, TemplateValue,
};
pub use error::{ConnectorError, ErrorClass, ProviderError};
pub use event::{
    Consent, DedupeKey, EventKind, InboundEvent, InboundMessage, Reaction, StatusUpdate,
    StatusWatermark,
};
pub use http::{Header, HttpRequest, HttpResponse, Method, WebhookReply, WebhookRequest};
pub use outbound::{CLIENT_REFERENCE, OutboundMessage, SendReceipt};
pub use secret::{Secret, SecretName, SecretStore, Secrets};
pub use status::{DeliveryState, DeliveryStatus, StatusFailure};
pub use timestamp::Timestamp;

/// Open-ended provider extras carried next to normalized fields, keyed by a provider-chosen name.
///
/// Unknown provider fields end up here instead of being dropped or failing a parse.
pub type Extensions = std::collections::BTreeMap<String, serde_json::Value>;
