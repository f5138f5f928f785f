//! Meta's Graph API connectors: `meta-whatsapp` ([`WhatsAppConnector`], the WhatsApp Cloud
//! API) and `meta-messenger` ([`MessengerConnector`], Facebook Messenger).
//!
//! Both are sans-IO: they parse webhook bodies and build requests; the host verifies webhooks
//! from the declared scheme and the transport runs requests with the declared credentials.
//!
//! # What the two share ([`graph`])
//!
//! * Channel settings `graph_version` (default [`DEFAULT_GRAPH_VERSION`]) and `base_url`
//!   (default [`DEFAULT_BASE_URL`]); requests go to `{base_url}/{graph_version}/…`.
//! * Webhook auth `WebhookAuth::HmacSha256Header`: `X-Hub-Signature-256: sha256=<hex>` over
//!   the raw body with the `app_secret` secret, and the GET `hub.verify_token` handshake with
//!   the `verify_token` secret. Both are checked by the host (`webhook_auth::verify`); the
//!   connectors never see a GET, and `parse_webhook` of one is `ConnectorError::Unsupported`.
//! * Outbound auth `Bearer` with the `access_token` secret.
//! * Graph error bodies
//!   (`{"error":{"message","type","code","error_subcode","error_data","fbtrace_id"}}`)
//!   classified on `code` and `error_subcode` by a per-product table, then on the HTTP status:
//!   429 throttled with `Retry-After`, 5xx (and `is_transient`) retryable, 401/403 auth, other
//!   statuses permanent. A 5xx is retryable whatever its code. A 2xx answer that does not name
//!   the new message is permanent: the message may have been sent, and a retry could send it
//!   twice.
//! * Batch isolation: a body that is not JSON, or not of the product's `object`, is
//!   malformed; below that, every entry, change and item is decoded on its own, and one that is
//!   malformed produces no event while the others still do. The outcome's `skipped` list says
//!   what produced no event, and why.
//!
//! The per-product mapping decisions are documented on each connector's module.

pub mod graph;
pub mod messenger;
pub mod whatsapp;

pub use graph::{DEFAULT_BASE_URL, DEFAULT_GRAPH_VERSION};
pub use messenger::MessengerConnector;
pub use whatsapp::WhatsAppConnector;
