//! The guest side of Switchboard plugins: one macro, [`export_connector!`], turns any type
//! implementing [`switchboard_core::Connector`] into a WebAssembly component of the
//! `switchboard:connector@0.2.0` world (`wit/connector.wit`).
//!
//! Invariant: the connector's own code is unchanged. The same pure-Rust connector compiles
//! natively and as a plugin; this crate only converts between the core types and the world's
//! types (JSON in the core's serde shapes for the rich ones) and forwards panics, time and
//! randomness to the host, because std's clock and random source panic on
//! `wasm32-unknown-unknown` and a panic there is otherwise a bare `unreachable` trap.
//!
//! ```text
//! // src/lib.rs of a plugin crate (crate-type = ["cdylib"])
//! switchboard_plugin_sdk::export_connector!(my_provider::MyConnector);
//! // or, with a constructor instead of `Default`:
//! switchboard_plugin_sdk::export_connector!(my_provider::MyConnector = my_provider::MyConnector::new("x"));
//! ```
//!
//! Host capabilities: [`log`], [`now`] and [`fill_random`] always work; [`hmac`] (a MAC with
//! a secret the plugin names but never reads) and [`http_send`] (a request through the host)
//! work only when the manifest declares them and the operator grants them — otherwise they
//! return [`HostError::Denied`] and the host fails the call naming what was denied. Connectors
//! are sans-IO: return requests from `build_send`/`media_step` wherever the contract can
//! express them, and keep [`http_send`] for what it cannot (a token exchange or an upload
//! whose answer the plugin needs before it can answer itself).
//!
//! Build it with `switchboard_plugin_host::build::build_plugin` (cargo for
//! `wasm32-unknown-unknown` by whichever route the machine offers, then `wit-component` makes
//! the component); `plugins/meta-whatsapp` is a complete example.

// The generated export macro names this crate by its extern name, from inside and outside.
extern crate self as switchboard_plugin_sdk;

use std::sync::Once;

use switchboard_core::{
    ChannelContext, Connector, ConnectorError, ErrorClass, HttpRequest, HttpResponse, MediaSource,
    MediaStep, Method, OutboundMessage, ProviderError, Timestamp, WebhookRequest,
};

#[doc(hidden)]
pub mod __private {
    //! Used by the expansion of [`export_connector!`](crate::export_connector); not public API.
    pub use wit_bindgen;

    /// The bindings of the `switchboard:connector@0.2.0` world.
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../../wit/connector.wit",
            world: "connector",
            pub_export_macro: true,
            export_macro_name: "__export_world",
            runtime_path: "switchboard_plugin_sdk::__private::wit_bindgen::rt",
        });
    }

    pub use crate::{Adapter, ExportedConnector};
}

use __private::bindings::exports::switchboard::connector::plugin as wit_plugin;
use __private::bindings::switchboard::connector::{
    clock, hmac as wit_hmac, http as wit_http, log as wit_log, random, types as wit,
};

/// Exports a connector type as the plugin's component.
///
/// `export_connector!(Type)` builds the connector with `Type::default()`;
/// `export_connector!(Type = expr)` builds it with `expr`. The connector is built once per
/// instance, on the first call (the host uses a fresh instance per call).
#[macro_export]
macro_rules! export_connector {
    ($ty:ty) => {
        $crate::export_connector!($ty = <$ty as ::core::default::Default>::default());
    };
    ($ty:ty = $make:expr) => {
        const _: () = {
            struct __SwitchboardExport;
            impl $crate::__private::ExportedConnector for __SwitchboardExport {
                type Connector = $ty;
                fn connector() -> &'static $ty {
                    static CONNECTOR: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();
                    CONNECTOR.get_or_init(|| {
                        $crate::install_panic_hook();
                        $make
                    })
                }
            }
            type __SwitchboardAdapter = $crate::__private::Adapter<__SwitchboardExport>;
            $crate::__private::bindings::__export_world!(
                __SwitchboardAdapter with_types_in $crate::__private::bindings
            );
        };
    };
}

/// Gives the exported component its connector. Implemented by [`export_connector!`].
pub trait ExportedConnector: 'static {
    /// The connector type.
    type Connector: Connector + 'static;
    /// The instance's connector, built on first use.
    fn connector() -> &'static Self::Connector;
}

/// Implements the world's exports over an [`ExportedConnector`]. Used by [`export_connector!`].
pub struct Adapter<E>(std::marker::PhantomData<E>);

static PANIC_HOOK: Once = Once::new();

/// Installs a panic hook that sends the panic message and location through the host's `log`
/// (at level `error`, starting with `panicked at`) before the guest traps, so the host's
/// error shows "panicked at src/lib.rs:42:5: …" instead of "unreachable executed".
/// [`export_connector!`] installs it; calling it again does nothing.
pub fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            let text = match info.location() {
                Some(at) => format!(
                    "panicked at {}:{}:{}: {message}",
                    at.file(),
                    at.line(),
                    at.column()
                ),
                None => format!("panicked: {message}"),
            };
            log(Level::Error, &text);
        }));
    });
}

/// A log level, for [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure.
    Error,
}

/// Logs through the host, which attributes the line to the plugin. Outside wasm32 (native
/// builds of a plugin crate, e.g. its unit tests) it writes to stderr.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit_log::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = wit_log::log;
        eprintln!("[{level:?}] {message}");
    }
}

/// The current time from the host's clock (std's clock panics on `wasm32-unknown-unknown`).
/// Outside wasm32 it reads the system clock.
pub fn now() -> Timestamp {
    #[cfg(target_arch = "wasm32")]
    {
        let t = clock::now();
        Timestamp::from_unix_seconds(t.seconds)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = clock::now;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// Fills `buf` with cryptographically secure random bytes from the host (std has no random
/// source on `wasm32-unknown-unknown`). Outside wasm32 this is not available and panics.
pub fn fill_random(buf: &mut [u8]) {
    #[cfg(target_arch = "wasm32")]
    for chunk in buf.chunks_mut(4096) {
        // `chunk.len()` is at most 4096, so the cast cannot truncate.
        let bytes = random::fill(chunk.len() as u32);
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (random::fill, buf);
        panic!("switchboard_plugin_sdk::fill_random is only available inside a plugin");
    }
}

/// Why a gated host capability ([`hmac`], [`http_send`]) did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// Not declared in the manifest and granted by the operator (the message says what).
    /// Nothing was sent, no secret was read, and the host fails the current call with this
    /// denial whatever the plugin returns.
    Denied(String),
    /// Granted, but the host cannot serve it (no client or secret configured, the secret is
    /// not set for this channel, no channel in this call, a limit); also outside a plugin.
    Unavailable(String),
    /// The request went out, or may have, and failed.
    Failed(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Denied(m) => write!(f, "denied: {m}"),
            HostError::Unavailable(m) => write!(f, "unavailable: {m}"),
            HostError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<HostError> for ConnectorError {
    /// A host capability that did not work is a configuration problem of the channel or the
    /// grants: [`ConnectorError::Config`] with the field `host capability`.
    fn from(e: HostError) -> Self {
        ConnectorError::config("host capability", e.to_string())
    }
}

/// An HMAC hash function, for [`hmac`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacAlgorithm {
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// Which credentials the host adds to a request sent with [`http_send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestAuth {
    /// None: the request goes as built.
    None,
    /// The channel's outbound auth scheme, injected by the host's transport.
    Channel,
}

#[cfg(target_arch = "wasm32")]
fn host_error_in(e: wit::HostError) -> HostError {
    match e {
        wit::HostError::Denied(m) => HostError::Denied(m),
        wit::HostError::Unavailable(m) => HostError::Unavailable(m),
        wit::HostError::Failed(m) => HostError::Failed(m),
    }
}

/// The MAC of `data` keyed with the current channel's secret `secret_name`, computed by the
/// host: the plugin never sees the secret. The name must be declared in `plugin.toml`
/// (`capabilities.secrets`) and granted. Outside wasm32: [`HostError::Unavailable`].
pub fn hmac(
    secret_name: &str,
    algorithm: HmacAlgorithm,
    data: &[u8],
) -> Result<Vec<u8>, HostError> {
    #[cfg(target_arch = "wasm32")]
    {
        let algorithm = match algorithm {
            HmacAlgorithm::Sha1 => wit::HmacAlgorithm::Sha1,
            HmacAlgorithm::Sha256 => wit::HmacAlgorithm::Sha256,
            HmacAlgorithm::Sha512 => wit::HmacAlgorithm::Sha512,
        };
        wit_hmac::sign(secret_name, algorithm, data).map_err(host_error_in)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (wit_hmac::sign, secret_name, algorithm, data);
        Err(HostError::Unavailable(
            "hmac is only available inside a plugin".into(),
        ))
    }
}

/// Sends `req` through the host and returns the response (any status). Needs `http = true`
/// in `plugin.toml`, granted, and the URL's host among the declared and granted egress hosts;
/// the call's remaining deadline is the timeout. For I/O the sans-IO contract cannot express
/// only (see the crate docs). Outside wasm32: [`HostError::Unavailable`].
pub fn http_send(req: &HttpRequest, auth: RequestAuth) -> Result<HttpResponse, HostError> {
    #[cfg(target_arch = "wasm32")]
    {
        let auth = match auth {
            RequestAuth::None => wit::RequestAuth::None,
            RequestAuth::Channel => wit::RequestAuth::Channel,
        };
        wit_http::send(&request_out(req.clone()), auth)
            .map(response_in)
            .map_err(host_error_in)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (wit_http::send, req, auth);
        Err(HostError::Unavailable(
            "http is only available inside a plugin".into(),
        ))
    }
}

// ---- conversions between the world's types and the core's ----

fn method_in(m: wit::Method) -> Method {
    match m {
        wit::Method::Get => Method::Get,
        wit::Method::Post => Method::Post,
        wit::Method::Put => Method::Put,
        wit::Method::Patch => Method::Patch,
        wit::Method::Delete => Method::Delete,
    }
}

fn method_out(m: Method) -> wit::Method {
    match m {
        Method::Get => wit::Method::Get,
        Method::Post => wit::Method::Post,
        Method::Put => wit::Method::Put,
        Method::Patch => wit::Method::Patch,
        Method::Delete => wit::Method::Delete,
    }
}

fn context_in(ctx: wit::ChannelContext) -> Result<ChannelContext, wit::ConnectorError> {
    let settings = if ctx.settings.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_str(&ctx.settings).map_err(|e| {
            wit::ConnectorError::Config(wit::ConfigError {
                field: "settings".into(),
                reason: format!("not a JSON object: {e}"),
            })
        })?
    };
    Ok(ChannelContext {
        channel_id: ctx.channel_id,
        settings,
    })
}

fn webhook_in(req: wit::WebhookRequest) -> WebhookRequest {
    WebhookRequest {
        method: method_in(req.method),
        url: req.url,
        headers: req.headers,
        body: req.body,
    }
}

fn response_in(resp: wit::HttpResponse) -> HttpResponse {
    HttpResponse {
        status: resp.status,
        headers: resp.headers,
        body: resp.body,
    }
}

fn request_out(req: HttpRequest) -> wit::HttpRequest {
    wit::HttpRequest {
        method: method_out(req.method),
        url: req.url,
        headers: req.headers,
        body: req.body,
        extensions: String::new(),
    }
}

fn error_out(e: ConnectorError) -> wit::ConnectorError {
    match e {
        ConnectorError::InvalidSignature { reason } => {
            wit::ConnectorError::InvalidSignature(reason)
        }
        ConnectorError::Malformed { reason } => wit::ConnectorError::Malformed(reason),
        ConnectorError::Unsupported { what } => wit::ConnectorError::Unsupported(what),
        ConnectorError::Config { field, reason } => {
            wit::ConnectorError::Config(wit::ConfigError { field, reason })
        }
        // A variant added to core after this world version: keep its message.
        other => wit::ConnectorError::Malformed(other.to_string()),
    }
}

fn class_out(class: ErrorClass) -> wit::ErrorClass {
    match class {
        ErrorClass::Retryable => wit::ErrorClass::Retryable,
        ErrorClass::Throttled => wit::ErrorClass::Throttled,
        ErrorClass::Permanent => wit::ErrorClass::Permanent,
        ErrorClass::Auth => wit::ErrorClass::Auth,
        ErrorClass::OptedOut => wit::ErrorClass::OptedOut,
        ErrorClass::WindowClosed => wit::ErrorClass::WindowClosed,
        ErrorClass::TemplateInvalid => wit::ErrorClass::TemplateInvalid,
        ErrorClass::InvalidRecipient => wit::ErrorClass::InvalidRecipient,
        ErrorClass::Unsupported => wit::ErrorClass::Unsupported,
        // A class added to core after this world version: never retried blindly.
        _ => wit::ErrorClass::Permanent,
    }
}

fn provider_error_out(e: ProviderError) -> wit::ProviderError {
    wit::ProviderError {
        class: class_out(e.class),
        provider_code: e.provider_code,
        message: e.message,
        retry_after_secs: e.retry_after.map(|d| d.as_secs()),
        extensions: String::new(),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // The core types serialize infallibly (string keys, no non-finite floats from parsing);
    // should one ever fail, the host sees invalid JSON and reports a plugin error.
    serde_json::to_string(value).unwrap_or_default()
}

fn json_in<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, wit::ConnectorError> {
    serde_json::from_str(json)
        .map_err(|e| wit::ConnectorError::Malformed(format!("{what} from the host: {e}")))
}

impl<E: ExportedConnector> wit_plugin::Guest for Adapter<E> {
    fn info() -> String {
        to_json(E::connector().info())
    }

    fn webhook_auth(ctx: wit::ChannelContext) -> Result<String, wit::ConnectorError> {
        let ctx = context_in(ctx)?;
        E::connector()
            .webhook_auth(&ctx)
            .map(|auth| to_json(&auth))
            .map_err(error_out)
    }

    fn outbound_auth(ctx: wit::ChannelContext) -> Result<String, wit::ConnectorError> {
        let ctx = context_in(ctx)?;
        E::connector()
            .outbound_auth(&ctx)
            .map(|auth| to_json(&auth))
            .map_err(error_out)
    }

    fn route(req: wit::WebhookRequest) -> Option<String> {
        E::connector().route(&webhook_in(req)).map(|key| key.0)
    }

    fn parse_webhook(
        ctx: wit::ChannelContext,
        req: wit::WebhookRequest,
    ) -> Result<String, wit::ConnectorError> {
        let ctx = context_in(ctx)?;
        E::connector()
            .parse_webhook(&ctx, &webhook_in(req))
            .map(|outcome| to_json(&outcome))
            .map_err(error_out)
    }

    fn build_send(
        ctx: wit::ChannelContext,
        msg: String,
    ) -> Result<wit::HttpRequest, wit::ConnectorError> {
        let ctx = context_in(ctx)?;
        let msg: OutboundMessage = json_in("outbound message", &msg)?;
        E::connector()
            .build_send(&ctx, &msg)
            .map(request_out)
            .map_err(error_out)
    }

    fn parse_send_response(
        ctx: wit::ChannelContext,
        msg: String,
        resp: wit::HttpResponse,
    ) -> Result<String, wit::ProviderError> {
        let bad_input = |e: wit::ConnectorError| wit::ProviderError {
            class: wit::ErrorClass::Permanent,
            provider_code: None,
            message: match e {
                wit::ConnectorError::InvalidSignature(m)
                | wit::ConnectorError::Malformed(m)
                | wit::ConnectorError::Unsupported(m) => m,
                wit::ConnectorError::Config(c) => format!("{}: {}", c.field, c.reason),
            },
            retry_after_secs: None,
            extensions: String::new(),
        };
        let ctx = context_in(ctx).map_err(bad_input)?;
        let msg: OutboundMessage = json_in("outbound message", &msg).map_err(bad_input)?;
        E::connector()
            .parse_send_response(&ctx, &msg, &response_in(resp))
            .map(|receipt| to_json(&receipt))
            .map_err(provider_error_out)
    }

    fn media_step(
        ctx: wit::ChannelContext,
        source: wit::MediaSource,
        previous: Option<wit::HttpResponse>,
    ) -> Result<wit::NextMediaStep, wit::ConnectorError> {
        let ctx = context_in(ctx)?;
        let source = match source {
            wit::MediaSource::Url(url) => MediaSource::Url(url),
            wit::MediaSource::ProviderId(id) => MediaSource::ProviderId(id),
        };
        let previous = previous.map(response_in);
        match E::connector().media_step(&ctx, &source, previous.as_ref()) {
            Ok(MediaStep::Fetch(req)) => Ok(wit::NextMediaStep::Fetch(request_out(req))),
            Ok(MediaStep::Done) => Ok(wit::NextMediaStep::Done),
            Err(e) => Err(error_out(e)),
        }
    }
}
