//! What one call's store holds, and the host imports a plugin calls: `log`, `clock`,
//! `random` (always), `http` and `hmac` (world 0.2.0, declared ∧ granted only).
//!
//! The gated imports never hand the plugin a secret and never send a request the grants do
//! not cover: the check happens here, before anything leaves, and a denial is both returned to
//! the guest (`host-error.denied`) and recorded, so the export call then fails with
//! [`FailureCause::Denied`](crate::FailureCause::Denied) naming the capability.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use switchboard_core::{HttpRequest, HttpResponse, Secret, SecretName};
use wasmtime::ResourceLimiter;

use crate::bindings::v0_2::switchboard::connector::types as wit;
use crate::bindings::v0_2::switchboard::connector::{hmac as wit_hmac, http as wit_http};
use crate::bindings::{v0_1, v0_2};
use crate::manifest::Capabilities;

/// Largest `random.fill` request.
const MAX_RANDOM: u32 = 4096;
/// Longest log line kept.
const MAX_LOG_LINE: usize = 4096;
/// `http.send` calls one export call may make.
pub(crate) const MAX_HTTP_CALLS: u32 = 8;

/// Resolves the secrets a plugin's `hmac` import names, per channel. The embedder (the gateway)
/// implements it over its channel configuration; the value never enters the plugin.
pub trait PluginSecrets: Send + Sync {
    /// The value of secret `name` for channel `channel_id`, `None` when the channel does not
    /// set it. Called only for names the plugin declares and the operator granted.
    fn secret(&self, channel_id: &str, name: &SecretName) -> Option<Secret>;
}

/// A closure is a secret source: `|channel_id, name| lookup(channel_id, name)`.
impl<F> PluginSecrets for F
where
    F: Fn(&str, &SecretName) -> Option<Secret> + Send + Sync,
{
    fn secret(&self, channel_id: &str, name: &SecretName) -> Option<Secret> {
        self(channel_id, name)
    }
}

/// Who is asking, for a [`PluginHttp`] request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCall {
    /// The plugin id.
    pub plugin: String,
    /// The plugin version.
    pub version: String,
    /// The channel of the export call, `None` for `info` and `route`.
    pub channel_id: Option<String>,
    /// Whether to add the channel's outbound credentials (its `outbound-auth` scheme).
    pub channel_auth: bool,
    /// What is left of the export call's deadline: the request's timeout.
    pub timeout: Duration,
}

/// Why a [`PluginHttp`] request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFailure {
    /// Refused before anything was sent: the embedder's egress policy (e.g. the host
    /// resolved to a private address), missing credentials.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Sent, or possibly sent, then failed (timeout, connection reset, response too large).
    #[error("failed: {0}")]
    Failed(String),
}

/// Runs the requests a plugin sends through its `http` import. The embedder implements it
/// over its transport (credentials by the channel's scheme, egress policy with the
/// private-address block, timeouts, response cap). The plugin host has already checked that
/// the plugin declares and was granted `http` and the URL's host.
pub trait PluginHttp: Send + Sync {
    /// Sends `req` (blocking: plugin calls are synchronous) and returns the response, whatever
    /// its status.
    fn send(&self, call: &HttpCall, req: HttpRequest) -> Result<HttpResponse, HttpFailure>;
}

/// A closure is an HTTP client: `|call, request| transport.send_blocking(call, request)`.
impl<F> PluginHttp for F
where
    F: Fn(&HttpCall, HttpRequest) -> Result<HttpResponse, HttpFailure> + Send + Sync,
{
    fn send(&self, call: &HttpCall, req: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        self(call, req)
    }
}

/// What the embedder lends a plugin's gated imports. Without them `http` and `hmac` answer
/// `unavailable` even when granted.
#[derive(Clone, Default)]
pub struct Services {
    /// Secret values for `hmac`.
    pub secrets: Option<Arc<dyn PluginSecrets>>,
    /// The HTTP client for `http`.
    pub http: Option<Arc<dyn PluginHttp>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("secrets", &self.secrets.is_some())
            .field("http", &self.http.is_some())
            .finish()
    }
}

/// Caps a store's memory; remembers when the cap was hit so the trap can say so.
pub(crate) struct Limiter {
    pub(crate) cap: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory cap of {} bytes exceeded (asked for {desired})",
                self.cap
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

/// What every call of one loaded plugin shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// `"<id> <version>"`, for logs.
    pub(crate) label: Arc<str>,
    pub(crate) id: String,
    pub(crate) version: String,
    /// What the manifest declares (to tell "not declared" from "not granted").
    pub(crate) declared: Capabilities,
    /// Declared ∧ granted.
    pub(crate) granted: Capabilities,
    pub(crate) services: Services,
    pub(crate) max_log_lines: u32,
    /// Cap on `hmac` data and `http` bodies, both ways.
    pub(crate) max_io: usize,
}

/// One store's state: the limiter, what the guest logged, and the current call's context.
/// A warm instance keeps its store across calls; [`HostState::begin`] resets the per-call part.
pub(crate) struct HostState {
    pub(crate) limiter: Limiter,
    pub(crate) shared: Arc<Shared>,
    log_lines: u32,
    pub(crate) panic: Option<String>,
    /// The first capability denied during this call.
    pub(crate) denied: Option<String>,
    channel: Option<String>,
    http_calls: u32,
    started: Instant,
    deadline: Duration,
}

impl HostState {
    pub(crate) fn new(shared: Arc<Shared>, memory_cap: usize) -> Self {
        HostState {
            limiter: Limiter {
                cap: memory_cap,
                hit: false,
            },
            shared,
            log_lines: 0,
            panic: None,
            denied: None,
            channel: None,
            http_calls: 0,
            started: Instant::now(),
            deadline: Duration::ZERO,
        }
    }

    /// Resets the per-call state for a call on `channel` with `deadline`.
    pub(crate) fn begin(&mut self, channel: Option<&str>, deadline: Duration) {
        self.limiter.hit = false;
        self.log_lines = 0;
        self.panic = None;
        self.denied = None;
        self.channel = channel.map(str::to_owned);
        self.http_calls = 0;
        self.started = Instant::now();
        self.deadline = deadline;
    }

    fn deny(&mut self, what: String) -> wit::HostError {
        tracing::warn!(plugin = &*self.shared.label, denied = %what, "plugin used a capability it was not granted");
        if self.denied.is_none() {
            self.denied = Some(what.clone());
        }
        wit::HostError::Denied(what)
    }

    /// "declared but not granted" or "not declared in its manifest", for denial messages.
    fn why_not(&self, declared: bool) -> &'static str {
        if declared {
            "declared but not granted by the operator"
        } else {
            "not declared in the plugin's manifest"
        }
    }

    fn log_line(&mut self, level: wit::Level, mut message: String) {
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if level == wit::Level::Error && message.starts_with("panicked") {
            self.panic = Some(message.clone());
        }
        if self.log_lines >= self.shared.max_log_lines {
            return;
        }
        self.log_lines += 1;
        let plugin = &*self.shared.label;
        match level {
            wit::Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            wit::Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            wit::Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            wit::Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            wit::Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }

    fn hmac_sign(
        &mut self,
        secret_name: String,
        algorithm: wit::HmacAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, wit::HostError> {
        if !self.shared.granted.allows_secret(&secret_name) {
            let why = self.why_not(self.shared.declared.allows_secret(&secret_name));
            return Err(self.deny(format!("hmac: secret `{secret_name}` is {why}")));
        }
        if data.len() > self.shared.max_io {
            return Err(wit::HostError::Unavailable(format!(
                "hmac: {} bytes of data exceed the {}-byte cap",
                data.len(),
                self.shared.max_io
            )));
        }
        let Some(channel) = self.channel.as_deref() else {
            return Err(wit::HostError::Unavailable(
                "hmac: this call has no channel (info, route): secrets are per channel".into(),
            ));
        };
        let Some(secrets) = &self.shared.services.secrets else {
            return Err(wit::HostError::Unavailable(
                "hmac: this host has no secret store configured".into(),
            ));
        };
        let Some(secret) = secrets.secret(channel, &SecretName::new(secret_name.as_str())) else {
            return Err(wit::HostError::Unavailable(format!(
                "hmac: channel `{channel}` does not set secret `{secret_name}`"
            )));
        };
        let key = secret.expose().as_bytes();
        // HMAC takes keys of any length: `new_from_slice` cannot fail.
        let mac = match algorithm {
            wit::HmacAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, data),
            wit::HmacAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, data),
            wit::HmacAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, data),
        };
        mac.ok_or_else(|| wit::HostError::Unavailable("hmac: key rejected".into()))
    }

    fn http_send(
        &mut self,
        req: wit::HttpRequest,
        auth: wit::RequestAuth,
    ) -> Result<wit::HttpResponse, wit::HostError> {
        if !self.shared.granted.http {
            let why = self.why_not(self.shared.declared.http);
            return Err(self.deny(format!("http: capability `http` is {why}")));
        }
        let host = url::Url::parse(&req.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        let Some(host) = host else {
            return Err(wit::HostError::Unavailable(format!(
                "http: `{}` is not an absolute URL with a host",
                req.url
            )));
        };
        if !self.shared.granted.allows_host(&host) {
            let why = self.why_not(self.shared.declared.allows_host(&host));
            return Err(self.deny(format!("http: egress host `{host}` is {why}")));
        }
        if auth == wit::RequestAuth::Channel && self.channel.is_none() {
            return Err(wit::HostError::Unavailable(
                "http: this call has no channel (info, route), so no channel credentials".into(),
            ));
        }
        if self.http_calls >= MAX_HTTP_CALLS {
            return Err(wit::HostError::Unavailable(format!(
                "http: at most {MAX_HTTP_CALLS} requests per call"
            )));
        }
        if req.body.len() > self.shared.max_io {
            return Err(wit::HostError::Unavailable(format!(
                "http: a {}-byte body exceeds the {}-byte cap",
                req.body.len(),
                self.shared.max_io
            )));
        }
        let Some(client) = self.shared.services.http.clone() else {
            return Err(wit::HostError::Unavailable(
                "http: this host has no HTTP client configured".into(),
            ));
        };
        let timeout = self.deadline.saturating_sub(self.started.elapsed());
        if timeout.is_zero() {
            return Err(wit::HostError::Unavailable(
                "http: the call's deadline has passed".into(),
            ));
        }
        self.http_calls += 1;
        let call = HttpCall {
            plugin: self.shared.id.clone(),
            version: self.shared.version.clone(),
            channel_id: self.channel.clone(),
            channel_auth: auth == wit::RequestAuth::Channel,
            timeout,
        };
        let core_req = HttpRequest {
            method: crate::connector::method_in(req.method),
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        tracing::debug!(plugin = &*self.shared.label, host = %host, "plugin http request");
        match client.send(&call, core_req) {
            Ok(resp) if resp.body.len() > self.shared.max_io => {
                Err(wit::HostError::Failed(format!(
                    "http: the {}-byte response exceeds the {}-byte cap",
                    resp.body.len(),
                    self.shared.max_io
                )))
            }
            Ok(resp) => Ok(wit::HttpResponse {
                status: resp.status,
                headers: resp.headers,
                body: resp.body,
                extensions: String::new(),
            }),
            Err(HttpFailure::NotSent(why)) => Err(wit::HostError::Unavailable(format!(
                "http: not sent: {why}"
            ))),
            Err(HttpFailure::Failed(why)) => Err(wit::HostError::Failed(format!("http: {why}"))),
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m.finalize().into_bytes().to_vec())
}

fn clock_now() -> wit::Instant {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    wit::Instant {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanoseconds: since.subsec_nanos(),
    }
}

fn random_fill(len: u32) -> wasmtime::Result<Vec<u8>> {
    if len > MAX_RANDOM {
        wasmtime::bail!("random.fill asked for {len} bytes; at most {MAX_RANDOM} per call");
    }
    let mut buf = vec![0; len as usize];
    getrandom::fill(&mut buf)
        .map_err(|e| wasmtime::format_err!("no random source on the host: {e}"))?;
    Ok(buf)
}

/// `log`, `clock` and `random` for one world version (the types are shared).
macro_rules! always_available {
    ($v:ident) => {
        impl $v::switchboard::connector::log::Host for HostState {
            fn log(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
                self.log_line(level, message);
                Ok(())
            }
        }

        impl $v::switchboard::connector::clock::Host for HostState {
            fn now(&mut self) -> wasmtime::Result<wit::Instant> {
                Ok(clock_now())
            }
        }

        impl $v::switchboard::connector::random::Host for HostState {
            fn fill(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
                random_fill(len)
            }
        }
    };
}

always_available!(v0_1);
always_available!(v0_2);

impl wit::Host for HostState {}

impl wit_hmac::Host for HostState {
    fn sign(
        &mut self,
        secret_name: String,
        algorithm: wit::HmacAlgorithm,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, wit::HostError>> {
        Ok(self.hmac_sign(secret_name, algorithm, &data))
    }
}

impl wit_http::Host for HostState {
    fn send(
        &mut self,
        req: wit::HttpRequest,
        auth: wit::RequestAuth,
    ) -> wasmtime::Result<Result<wit::HttpResponse, wit::HostError>> {
        Ok(self.http_send(req, auth))
    }
}
