//! [`WasmConnector`]: a loaded plugin version behind the core [`Connector`] trait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    ChannelContext, ChannelKey, Connector, ConnectorError, ConnectorInfo, ErrorClass, HttpRequest,
    HttpResponse, MediaSource, MediaStep, Method, OutboundMessage, ProviderError, SendReceipt,
    WebhookOutcome, WebhookRequest,
};
use wasmtime::{Store, Trap};

use crate::LoadError;
use crate::bindings::v0_2::switchboard::connector::types as wit;
use crate::bindings::{Guest, Instance, Pre};
use crate::error::{CallError, FailureCause, PluginError};
use crate::host::{EffectiveLimits, HostInner};
use crate::imports::{HostState, Services, Shared};
use crate::manifest::{Capabilities, Manifest};

/// How a plugin's calls get their instance.
///
/// The default, [`InstancePolicy::Fresh`], is what the plugin-host design asks for: every call
/// runs in a new instance, so nothing a call leaves in the guest's memory (a parsed webhook, a
/// phone number, a corrupted allocator after a caught bug) can reach the next call, whichever
/// channel or tenant it is for. [`InstancePolicy::Warm`] trades that isolation for speed and
/// is opt-in per plugin: see its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstancePolicy {
    /// A fresh instance (store, memory, globals) per call; dropped after it.
    #[default]
    Fresh,
    /// Reuse instances across calls: up to `max_idle` idle instances are kept, each serves at
    /// most `max_calls` calls and is then dropped, and any trap (panic, deadline, memory cap)
    /// or failed instantiation drops it at once, so the next call starts fresh. A plugin's
    /// global state (statics, its heap, the connector built on first call) lives on between
    /// the calls one instance serves; calls in parallel take different instances. Only for
    /// plugins the operator trusts not to carry data from one call into another: one
    /// plugin's calls may serve different channels and tenants.
    Warm {
        /// Idle instances kept (more concurrent calls instantiate fresh ones, kept up to this).
        max_idle: u16,
        /// Calls one instance serves before it is retired.
        max_calls: u32,
    },
}

impl InstancePolicy {
    /// `Warm` with 4 idle instances of at most 1000 calls each.
    pub const fn warm() -> Self {
        InstancePolicy::Warm {
            max_idle: 4,
            max_calls: 1000,
        }
    }
}

/// A live instance and its store.
struct Live {
    store: Store<HostState>,
    instance: Instance,
    calls: u32,
}

#[derive(Default)]
struct BreakerState {
    consecutive: u32,
    traps: u64,
    calls: u64,
    open_until: Option<Instant>,
}

/// A plugin's trap counters and circuit state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginHealth {
    /// Calls made (including refused ones).
    pub calls: u64,
    /// Traps since load.
    pub traps: u64,
    /// Traps since the last successful call.
    pub consecutive_traps: u32,
    /// Whether the circuit is open (calls refused until the cool-down ends).
    pub circuit_open: bool,
    /// Time spent in calls since load, instantiation included; over `calls`, the mean
    /// latency of a call.
    pub busy: Duration,
}

/// A loaded plugin version: the core [`Connector`] trait over a WebAssembly component.
///
/// Every call runs in a fresh instance (from the version's `InstancePre`, on the pooling
/// allocator; or a reused one under the opt-in [`InstancePolicy::Warm`]) with the plugin's
/// deadline and memory cap, after the input cap is checked. A trap fails that call only, with
/// an error naming the plugin, version, export and cause; consecutive traps open a circuit.
/// Denied capabilities (an egress host or secret that was not granted, a webhook-auth scheme
/// other than the manifest's, an `http` or `hmac` import use outside the grants) are errors
/// naming what was denied, and nothing is sent.
pub struct WasmConnector {
    host: Arc<HostInner>,
    pre: Pre,
    manifest: Manifest,
    info: ConnectorInfo,
    granted: Capabilities,
    limits: EffectiveLimits,
    label: Arc<str>,
    shared: Arc<Shared>,
    breaker: Mutex<BreakerState>,
    /// Nanoseconds spent in calls ([`PluginHealth::busy`]).
    busy_nanos: AtomicU64,
    policy: InstancePolicy,
    warm: Mutex<Vec<Live>>,
}

impl std::fmt::Debug for WasmConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmConnector")
            .field("id", &self.manifest.id)
            .field("version", &self.manifest.version)
            .field("granted", &self.granted)
            .field("limits", &self.limits)
            .field("world", &self.pre.world())
            .field("policy", &self.policy)
            .field("services", &self.shared.services)
            .finish()
    }
}

impl WasmConnector {
    pub(crate) fn new(
        host: Arc<HostInner>,
        manifest: Manifest,
        pre: Pre,
        grants: &Capabilities,
    ) -> Result<Self, LoadError> {
        let config = &host.config;
        let deadline = manifest
            .limits
            .deadline_ms
            .map_or(config.default_deadline, |ms| {
                Duration::from_millis(ms.into())
            })
            .min(config.max_deadline);
        let tick = config.epoch_tick.max(Duration::from_micros(100));
        let deadline_ticks = u64::try_from(deadline.as_nanos().div_ceil(tick.as_nanos()))
            .unwrap_or(u64::MAX - 1)
            + 1;
        let limits = EffectiveLimits {
            deadline,
            deadline_ticks,
            memory: manifest
                .limits
                .memory_mib
                .map_or(config.default_memory, |mib| (mib as usize) << 20)
                .min(config.max_memory),
            max_input: manifest
                .limits
                .max_input_kib
                .map_or(config.default_max_input, |kib| (kib as usize) << 10),
            max_output: config.max_output,
        };
        let granted = manifest.capabilities.intersect(grants);
        let label: Arc<str> = format!("{} {}", manifest.id, manifest.version).into();
        let shared = Arc::new(Shared {
            label: label.clone(),
            id: manifest.id.clone(),
            version: manifest.version.clone(),
            declared: manifest.capabilities.clone(),
            granted: granted.clone(),
            services: Services::default(),
            max_log_lines: config.max_log_lines,
            max_io: config.max_output,
        });
        let mut connector = WasmConnector {
            host,
            pre,
            info: ConnectorInfo {
                id: manifest.id.clone(),
                version: manifest.version.clone(),
                display_name: manifest.id.clone(),
                channels: Vec::new(),
                egress_hosts: Vec::new(),
            },
            manifest,
            granted,
            limits,
            label,
            shared,
            breaker: Mutex::new(BreakerState::default()),
            busy_nanos: AtomicU64::new(0),
            policy: InstancePolicy::Fresh,
            warm: Mutex::new(Vec::new()),
        };

        // The smoke check: a first call, and the plugin must be who the manifest says.
        let invalid = |reason: String, m: &Manifest| LoadError::Invalid {
            id: m.id.clone(),
            version: m.version.clone(),
            reason,
        };
        let json = connector
            .call("info", None, 0, |g, s| g.call_info(s))
            .map_err(|e| invalid(e.cause.to_string(), &connector.manifest))?;
        let mut info: ConnectorInfo = connector
            .json_out(&json)
            .map_err(|cause| invalid(format!("info: {cause}"), &connector.manifest))?;
        if info.id != connector.manifest.id {
            return Err(invalid(
                format!(
                    "info reports id `{}`, the manifest says `{}`",
                    info.id, connector.manifest.id
                ),
                &connector.manifest,
            ));
        }
        info.version = connector.manifest.version.clone();
        info.egress_hosts = connector.granted.egress_hosts.clone();
        connector.info = info;
        Ok(connector)
    }

    /// Lends the plugin's gated imports the embedder's secret store (`hmac`) and HTTP
    /// client (`http`). They serve only what the plugin declares and the operator granted.
    pub fn with_services(mut self, services: Services) -> Self {
        let mut shared = (*self.shared).clone();
        shared.services = services;
        self.shared = Arc::new(shared);
        self.lock_warm().clear();
        self
    }

    /// Sets how calls get their instance (default [`InstancePolicy::Fresh`]; read
    /// [`InstancePolicy::Warm`]'s isolation trade-off before opting in).
    pub fn with_instance_policy(mut self, policy: InstancePolicy) -> Self {
        self.policy = policy;
        self.lock_warm().clear();
        self
    }

    /// How calls get their instance.
    pub fn instance_policy(&self) -> InstancePolicy {
        self.policy
    }

    /// The `switchboard:connector` world version the component was built against.
    pub fn world(&self) -> &'static str {
        self.pre.world()
    }

    /// The manifest it was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Declared ∧ granted: the capabilities it runs with.
    pub fn granted(&self) -> &Capabilities {
        &self.granted
    }

    /// The limits it runs under.
    pub fn limits(&self) -> EffectiveLimits {
        self.limits
    }

    /// Trap counters and circuit state.
    pub fn health(&self) -> PluginHealth {
        let state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        PluginHealth {
            calls: state.calls,
            traps: state.traps,
            consecutive_traps: state.consecutive,
            circuit_open: state.open_until.is_some_and(|t| t > Instant::now()),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
        }
    }

    fn error(&self, export: &'static str, cause: FailureCause) -> PluginError {
        PluginError {
            plugin: self.manifest.id.clone(),
            version: self.manifest.version.clone(),
            export,
            cause,
        }
    }

    fn lock_warm(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        self.warm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new store and instance under the plugin's limits.
    fn instantiate(&self) -> Result<Live, (Store<HostState>, wasmtime::Error)> {
        let mut store = Store::new(
            &self.host.engine,
            HostState::new(self.shared.clone(), self.limits.memory),
        );
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.limits.deadline_ticks);
        match self.pre.instantiate(&mut store) {
            Ok(instance) => Ok(Live {
                store,
                instance,
                calls: 0,
            }),
            Err(e) => Err((store, e)),
        }
    }

    /// Runs one export under the plugin's limits, in a fresh instance or, with
    /// [`InstancePolicy::Warm`], a reused one. `channel` is the call's channel (for `hmac`
    /// and channel credentials on `http`).
    fn call<R>(
        &self,
        export: &'static str,
        channel: Option<&str>,
        input_len: usize,
        f: impl FnOnce(Guest<'_>, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let started = Instant::now();
        let result = self.call_timed(export, channel, input_len, f);
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(spent, Ordering::Relaxed);
        result
    }

    /// [`Self::call`] without the timing.
    fn call_timed<R>(
        &self,
        export: &'static str,
        channel: Option<&str>,
        input_len: usize,
        f: impl FnOnce(Guest<'_>, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.admit(export)?;
        if input_len > self.limits.max_input {
            return Err(self.error(
                export,
                FailureCause::InputTooLarge(input_len, self.limits.max_input),
            ));
        }
        let reused = match self.policy {
            InstancePolicy::Fresh => None,
            InstancePolicy::Warm { .. } => self.lock_warm().pop(),
        };
        let mut live = match reused {
            Some(live) => live,
            None => match self.instantiate() {
                Ok(live) => live,
                Err((store, e)) => {
                    if store.data().limiter.hit {
                        return Err(self.trapped(export, &store, &e));
                    }
                    return Err(self.error(export, FailureCause::Instantiate(format!("{e:#}"))));
                }
            },
        };
        live.store.data_mut().begin(channel, self.limits.deadline);
        live.store.set_epoch_deadline(self.limits.deadline_ticks);
        live.calls += 1;
        let result = f(live.instance.guest(), &mut live.store);
        match result {
            Ok(value) => {
                self.record(false);
                let denied = live.store.data_mut().denied.take();
                self.release(live);
                match denied {
                    // Not a trap: the plugin asked for something it may not have; the call
                    // fails whatever the plugin made of the refusal.
                    Some(what) => Err(self.error(export, FailureCause::Denied(what))),
                    None => Ok(value),
                }
            }
            Err(e) => {
                let err = self.trapped(export, &live.store, &e);
                self.record(true);
                tracing::warn!(plugin = &*self.label, error = %err.with_hint(), "plugin call failed");
                // A trapped instance cannot be entered again: dropped here.
                Err(err)
            }
        }
    }

    /// Puts a healthy instance back in the warm pool, or drops it.
    fn release(&self, live: Live) {
        if let InstancePolicy::Warm {
            max_idle,
            max_calls,
        } = self.policy
            && live.calls < max_calls
        {
            let mut idle = self.lock_warm();
            if idle.len() < usize::from(max_idle) {
                idle.push(live);
            }
        }
    }

    /// The cause of a failed call, from the store's record of it.
    fn trapped(
        &self,
        export: &'static str,
        store: &Store<HostState>,
        e: &wasmtime::Error,
    ) -> PluginError {
        let state = store.data();
        let cause = if state.limiter.hit {
            FailureCause::MemoryCap(self.limits.memory)
        } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            FailureCause::Deadline(self.limits.deadline)
        } else if let Some(panic) = &state.panic {
            FailureCause::Panic(panic.clone())
        } else {
            FailureCause::Trap(format!("{e:#}"))
        };
        self.error(export, cause)
    }

    fn admit(&self, export: &'static str) -> Result<(), PluginError> {
        let mut state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        state.calls += 1;
        if let Some(until) = state.open_until {
            let now = Instant::now();
            if until > now {
                let cause = FailureCause::CircuitOpen {
                    traps: state.consecutive,
                    retry_in: until - now,
                };
                drop(state);
                return Err(self.error(export, cause));
            }
            // Half-open: this call is the trial; others wait for its outcome.
            state.open_until = Some(now + self.host.config.breaker_cooldown);
        }
        Ok(())
    }

    fn record(&self, trapped: bool) {
        let mut state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        if !trapped {
            state.consecutive = 0;
            state.open_until = None;
            return;
        }
        state.traps += 1;
        state.consecutive += 1;
        if state.consecutive >= self.host.config.breaker_traps {
            state.open_until = Some(Instant::now() + self.host.config.breaker_cooldown);
            tracing::error!(
                plugin = &*self.label,
                consecutive_traps = state.consecutive,
                cooldown_ms = self.host.config.breaker_cooldown.as_millis() as u64,
                "plugin circuit-broken after repeated traps"
            );
        }
    }

    fn check_output(&self, len: usize) -> Result<(), FailureCause> {
        if len > self.limits.max_output {
            return Err(FailureCause::OutputTooLarge(len, self.limits.max_output));
        }
        Ok(())
    }

    fn json_out<T: serde::de::DeserializeOwned>(&self, json: &str) -> Result<T, FailureCause> {
        self.check_output(json.len())?;
        serde_json::from_str(json).map_err(|e| FailureCause::InvalidOutput(e.to_string()))
    }

    /// A `parse-webhook` outcome: [`crate::decode`]'s tag-first path, else core's serde.
    fn outcome_out(&self, json: &str) -> Result<WebhookOutcome, FailureCause> {
        self.check_output(json.len())?;
        crate::decode::outcome(json).map_err(|e| FailureCause::InvalidOutput(e.to_string()))
    }

    fn request_out(&self, req: wit::HttpRequest) -> Result<HttpRequest, FailureCause> {
        let size = req.url.len()
            + req.body.len()
            + req
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        self.check_output(size)?;
        let host = url::Url::parse(&req.url)
            .map_err(|e| FailureCause::InvalidOutput(format!("request URL: {e}")))?
            .host_str()
            .map(str::to_owned)
            .ok_or_else(|| FailureCause::InvalidOutput("request URL has no host".into()))?;
        if !self.granted.allows_host(&host) {
            return Err(FailureCause::Denied(format!(
                "egress host `{host}` is not granted to this plugin"
            )));
        }
        Ok(HttpRequest {
            method: method_in(req.method),
            url: req.url,
            headers: req.headers,
            body: req.body,
        })
    }

    fn check_secret(&self, name: &str) -> Result<(), FailureCause> {
        if self.granted.allows_secret(name) {
            Ok(())
        } else {
            Err(FailureCause::Denied(format!(
                "secret `{name}` is not granted to this plugin"
            )))
        }
    }

    fn check_webhook_auth(&self, json: &str) -> Result<WebhookAuth, FailureCause> {
        let value: serde_json::Value = self.json_out(json)?;
        let scheme = value
            .get("scheme")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_owned();
        if scheme != self.manifest.webhook_auth {
            return Err(FailureCause::Denied(format!(
                "webhook auth scheme `{scheme}`; the manifest declares `{}`",
                self.manifest.webhook_auth
            )));
        }
        let auth: WebhookAuth = serde_json::from_value(value)
            .map_err(|e| FailureCause::InvalidOutput(e.to_string()))?;
        match &auth {
            WebhookAuth::None => {}
            WebhookAuth::HmacSha256Header {
                secret,
                verify_token,
                ..
            } => {
                self.check_secret(secret.as_str())?;
                if let Some(token) = verify_token {
                    self.check_secret(token.as_str())?;
                }
            }
            WebhookAuth::Twilio { auth_token } => self.check_secret(auth_token.as_str())?,
            WebhookAuth::Sinch { secret, .. }
            | WebhookAuth::StandardWebhooks { secret, .. }
            | WebhookAuth::VonageJwt { secret, .. } => {
                self.check_secret(secret.as_str())?;
            }
            WebhookAuth::TelnyxEd25519 { public_key, .. } => {
                self.check_secret(public_key.as_str())?;
            }
            WebhookAuth::Basic { password, .. } => self.check_secret(password.as_str())?,
            WebhookAuth::HeaderToken { token, .. } => self.check_secret(token.as_str())?,
            // A scheme newer than this host: it cannot check which secrets it names.
            _ => {
                return Err(FailureCause::Denied(format!(
                    "webhook auth scheme `{scheme}` is unknown to this host"
                )));
            }
        }
        Ok(auth)
    }

    fn check_outbound_auth(&self, json: &str) -> Result<OutboundAuth, FailureCause> {
        let auth: OutboundAuth = self.json_out(json)?;
        match &auth {
            OutboundAuth::None => {}
            OutboundAuth::Basic { password, .. } => self.check_secret(password.as_str())?,
            OutboundAuth::Bearer { token } => self.check_secret(token.as_str())?,
            OutboundAuth::Header { value, .. } => self.check_secret(value.as_str())?,
            OutboundAuth::OAuth2ClientCredentials {
                token_url,
                client_secret,
                ..
            } => {
                self.check_secret(client_secret.as_str())?;
                let host = url::Url::parse(token_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                if !self.granted.allows_host(&host) {
                    return Err(FailureCause::Denied(format!(
                        "OAuth 2 token host `{host}` is not granted to this plugin"
                    )));
                }
            }
            _ => {
                return Err(FailureCause::Denied(
                    "an outbound auth scheme unknown to this host".into(),
                ));
            }
        }
        Ok(auth)
    }

    /// Creates a fresh instance under the plugin's limits and drops it: the fixed cost every
    /// call pays (for benchmarks and health checks).
    pub fn instantiate_only(&self) -> Result<(), PluginError> {
        self.call("instantiate", None, 0, |_, _| Ok(()))
    }

    /// Calls `route` with `req` `times` times on one instance and returns the time the calls
    /// took (instantiation excluded): the cost of a call into a warm instance, for benchmarks.
    /// The host itself never reuses instances.
    pub fn time_warm_route_calls(
        &self,
        req: &WebhookRequest,
        times: u64,
    ) -> Result<Duration, PluginError> {
        let wreq = webhook_out(req);
        self.call("route", None, req.body.len(), |g, s| {
            let start = Instant::now();
            let ticks = self.limits.deadline_ticks;
            for i in 0..times {
                if i % 1024 == 0 {
                    // A benchmark's many calls may take longer than one call's deadline.
                    s.set_epoch_deadline(ticks);
                }
                g.call_route(&mut *s, &wreq)?;
            }
            Ok(start.elapsed())
        })
    }

    /// Calls `parse-webhook` `times` times on one instance, decoding each outcome as
    /// [`Connector::parse_webhook`] does, and returns the time the calls took (instantiation
    /// and the first call excluded): the steady-state cost of the parse itself, to tell it
    /// from what a fresh instance adds, for benchmarks. The host itself never reuses
    /// instances.
    pub fn time_warm_parse_calls(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
        times: u64,
    ) -> Result<Duration, PluginError> {
        const EXPORT: &str = "parse-webhook";
        let wctx = context_out(ctx);
        let wreq = webhook_out(req);
        let elapsed = self.call(EXPORT, Some(&ctx.channel_id), req.body.len(), |g, s| {
            let ticks = self.limits.deadline_ticks;
            let once = |s: &mut Store<HostState>| -> wasmtime::Result<()> {
                let json = g
                    .call_parse_webhook(&mut *s, &wctx, &wreq)?
                    .map_err(|e| wasmtime::format_err!("{}", error_in(e)))?;
                let outcome = self
                    .outcome_out(&json)
                    .map_err(|e| wasmtime::format_err!("{e}"))?;
                std::hint::black_box(outcome);
                Ok(())
            };
            s.set_epoch_deadline(ticks);
            once(s)?;
            let start = Instant::now();
            for _ in 0..times {
                // Many calls take longer than one call's deadline: each gets its own.
                s.set_epoch_deadline(ticks);
                once(s)?;
            }
            Ok(start.elapsed())
        })?;
        Ok(elapsed)
    }

    /// [`Connector::webhook_auth`], telling the connector's errors from the plugin's.
    pub fn call_webhook_auth(
        &self,
        ctx: &ChannelContext,
    ) -> Result<WebhookAuth, CallError<ConnectorError>> {
        const EXPORT: &str = "webhook-auth";
        let wctx = context_out(ctx);
        let json = self
            .call(
                EXPORT,
                Some(&ctx.channel_id),
                wctx.settings.len(),
                |g, s| g.call_webhook_auth(s, &wctx),
            )
            .map_err(CallError::Plugin)?
            .map_err(|e| CallError::Connector(error_in(e)))?;
        self.check_webhook_auth(&json)
            .map_err(|cause| CallError::Plugin(self.error(EXPORT, cause)))
    }

    /// [`Connector::outbound_auth`], telling the connector's errors from the plugin's.
    pub fn call_outbound_auth(
        &self,
        ctx: &ChannelContext,
    ) -> Result<OutboundAuth, CallError<ConnectorError>> {
        const EXPORT: &str = "outbound-auth";
        let wctx = context_out(ctx);
        let json = self
            .call(
                EXPORT,
                Some(&ctx.channel_id),
                wctx.settings.len(),
                |g, s| g.call_outbound_auth(s, &wctx),
            )
            .map_err(CallError::Plugin)?
            .map_err(|e| CallError::Connector(error_in(e)))?;
        self.check_outbound_auth(&json)
            .map_err(|cause| CallError::Plugin(self.error(EXPORT, cause)))
    }

    /// [`Connector::route`], telling a missing key from a failed call.
    pub fn call_route(&self, req: &WebhookRequest) -> Result<Option<ChannelKey>, PluginError> {
        const EXPORT: &str = "route";
        let wreq = webhook_out(req);
        let key = self.call(EXPORT, None, req.body.len() + req.url.len(), |g, s| {
            g.call_route(s, &wreq)
        })?;
        if let Some(key) = &key {
            self.check_output(key.len())
                .map_err(|cause| self.error(EXPORT, cause))?;
        }
        Ok(key.map(ChannelKey))
    }

    /// [`Connector::parse_webhook`], telling the connector's errors from the plugin's.
    pub fn call_parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, CallError<ConnectorError>> {
        const EXPORT: &str = "parse-webhook";
        let wctx = context_out(ctx);
        let wreq = webhook_out(req);
        let input = req.body.len() + req.url.len() + wctx.settings.len();
        let json = self
            .call(EXPORT, Some(&ctx.channel_id), input, |g, s| {
                g.call_parse_webhook(s, &wctx, &wreq)
            })
            .map_err(CallError::Plugin)?
            .map_err(|e| CallError::Connector(error_in(e)))?;
        self.outcome_out(&json)
            .map_err(|cause| CallError::Plugin(self.error(EXPORT, cause)))
    }

    /// [`Connector::build_send`], telling the connector's errors from the plugin's.
    pub fn call_build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, CallError<ConnectorError>> {
        const EXPORT: &str = "build-send";
        let wctx = context_out(ctx);
        let wmsg = to_json(msg);
        let req = self
            .call(
                EXPORT,
                Some(&ctx.channel_id),
                wmsg.len() + wctx.settings.len(),
                |g, s| g.call_build_send(s, &wctx, &wmsg),
            )
            .map_err(CallError::Plugin)?
            .map_err(|e| CallError::Connector(error_in(e)))?;
        self.request_out(req)
            .map_err(|cause| CallError::Plugin(self.error(EXPORT, cause)))
    }

    /// [`Connector::parse_send_response`], telling the provider's errors from the plugin's.
    pub fn call_parse_send_response(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, CallError<ProviderError>> {
        const EXPORT: &str = "parse-send-response";
        let wctx = context_out(ctx);
        let wmsg = to_json(msg);
        let wresp = response_out(resp);
        let input = wmsg.len() + resp.body.len() + wctx.settings.len();
        let json = self
            .call(EXPORT, Some(&ctx.channel_id), input, |g, s| {
                g.call_parse_send_response(s, &wctx, &wmsg, &wresp)
            })
            .map_err(CallError::Plugin)?
            .map_err(|e| CallError::Connector(provider_error_in(e)))?;
        self.json_out(&json)
            .map_err(|cause| CallError::Plugin(self.error(EXPORT, cause)))
    }

    /// [`Connector::media_step`], telling the connector's errors from the plugin's.
    pub fn call_media_step(
        &self,
        ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, CallError<ConnectorError>> {
        const EXPORT: &str = "media-step";
        let wctx = context_out(ctx);
        let wsource = match source {
            MediaSource::Url(url) => wit::MediaSource::Url(url.clone()),
            MediaSource::ProviderId(id) => wit::MediaSource::ProviderId(id.clone()),
            #[allow(unreachable_patterns, reason = "MediaSource may grow")]
            _ => {
                return Err(CallError::Connector(ConnectorError::unsupported(
                    "a media source unknown to this host",
                )));
            }
        };
        let wprev = previous.map(response_out);
        let input = wctx.settings.len() + previous.map_or(0, |r| r.body.len());
        let step = self
            .call(EXPORT, Some(&ctx.channel_id), input, |g, s| {
                g.call_media_step(s, &wctx, &wsource, wprev.as_ref())
            })
            .map_err(CallError::Plugin)?
            .map_err(|e| CallError::Connector(error_in(e)))?;
        match step {
            wit::NextMediaStep::Done => Ok(MediaStep::Done),
            wit::NextMediaStep::Fetch(req) => self
                .request_out(req)
                .map(MediaStep::Fetch)
                .map_err(|cause| CallError::Plugin(self.error(EXPORT, cause))),
        }
    }
}

fn flatten<T>(r: Result<T, CallError<ConnectorError>>) -> Result<T, ConnectorError> {
    r.map_err(|e| match e {
        CallError::Connector(e) => e,
        CallError::Plugin(e) => e.into(),
    })
}

impl Connector for WasmConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        flatten(self.call_webhook_auth(ctx))
    }

    fn outbound_auth(&self, ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        flatten(self.call_outbound_auth(ctx))
    }

    /// A failed call (trap, limit) routes nowhere: `None`, and the failure is logged.
    fn route(&self, req: &WebhookRequest) -> Option<ChannelKey> {
        self.call_route(req).unwrap_or(None)
    }

    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        flatten(self.call_parse_webhook(ctx, req))
    }

    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        flatten(self.call_build_send(ctx, msg))
    }

    fn parse_send_response(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        self.call_parse_send_response(ctx, msg, resp)
            .map_err(|e| match e {
                CallError::Connector(e) => e,
                CallError::Plugin(e) => e.into(),
            })
    }

    fn media_step(
        &self,
        ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, ConnectorError> {
        flatten(self.call_media_step(ctx, source, previous))
    }
}

// ---- conversions between the core's types and the world's ----

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Core types serialize infallibly (string keys only).
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn method_in(m: wit::Method) -> Method {
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

fn context_out(ctx: &ChannelContext) -> wit::ChannelContext {
    wit::ChannelContext {
        channel_id: ctx.channel_id.clone(),
        settings: if ctx.settings.is_empty() {
            String::new()
        } else {
            to_json(&ctx.settings)
        },
        extensions: String::new(),
    }
}

fn webhook_out(req: &WebhookRequest) -> wit::WebhookRequest {
    wit::WebhookRequest {
        method: method_out(req.method),
        url: req.url.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        extensions: String::new(),
    }
}

fn response_out(resp: &HttpResponse) -> wit::HttpResponse {
    wit::HttpResponse {
        status: resp.status,
        headers: resp.headers.clone(),
        body: resp.body.clone(),
        extensions: String::new(),
    }
}

fn error_in(e: wit::ConnectorError) -> ConnectorError {
    match e {
        wit::ConnectorError::InvalidSignature(reason) => ConnectorError::invalid_signature(reason),
        wit::ConnectorError::Malformed(reason) => ConnectorError::malformed(reason),
        wit::ConnectorError::Unsupported(what) => ConnectorError::unsupported(what),
        wit::ConnectorError::Config(c) => ConnectorError::config(c.field, c.reason),
    }
}

fn provider_error_in(e: wit::ProviderError) -> ProviderError {
    let class = match e.class {
        wit::ErrorClass::Retryable => ErrorClass::Retryable,
        wit::ErrorClass::Throttled => ErrorClass::Throttled,
        wit::ErrorClass::Permanent => ErrorClass::Permanent,
        wit::ErrorClass::Auth => ErrorClass::Auth,
        wit::ErrorClass::OptedOut => ErrorClass::OptedOut,
        wit::ErrorClass::WindowClosed => ErrorClass::WindowClosed,
        wit::ErrorClass::TemplateInvalid => ErrorClass::TemplateInvalid,
        wit::ErrorClass::InvalidRecipient => ErrorClass::InvalidRecipient,
        wit::ErrorClass::Unsupported => ErrorClass::Unsupported,
    };
    let mut out = ProviderError::new(class, e.message);
    out.provider_code = e.provider_code;
    out.retry_after = e.retry_after_secs.map(Duration::from_secs);
    out
}
