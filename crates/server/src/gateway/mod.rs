//! `switchboard serve`: the gateway. Webhooks in (`/webhooks/{channel_id}`), stored atomically
//! (SQLite group-commits webhooks that arrive together), acknowledged after the commit; the
//! routing driver, the senders and the event deliveries run beside it (see [`workers`]); the
//! agent/admin API is nested under `/api/v1` ([`crate::api`]).

mod driver;
pub(crate) mod events;
mod listener;
pub(crate) mod metrics;
pub(crate) mod plugins;
mod sender;
#[cfg(test)]
mod tests;
pub(crate) mod workers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchboard_core::{ConnectorError, Timestamp, WebhookRequest, receive_webhook};
use switchboard_store::{SqliteOptions, Store};
use tokio::sync::Notify;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::api;
use crate::config::{Channel, Resolved};

/// What the handlers share.
pub(crate) struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) channels: HashMap<String, Arc<Channel>>,
    pub(crate) public_base_url: String,
    /// Woken after each ingest that stored routing work.
    pub(crate) routing_wake: Arc<Notify>,
    /// Woken when the API queued an outbox row directly.
    pub(crate) send_wake: Arc<Notify>,
    /// Request ids of webhooks and API calls.
    pub(crate) next_request: AtomicU64,
    /// The API's bearer tokens.
    pub(crate) tokens: api::auth::Tokens,
    /// The API's event bus and command results (shared with the routing driver).
    pub(crate) hub: api::bus::Hub,
    /// The routing configuration (agents, accounts) the API validates against.
    pub(crate) routing: Arc<switchboard_routing::RoutingConfig>,
    /// The configured agent ids.
    pub(crate) agent_ids: Vec<String>,
    /// The plugins (`None`: plugins are off).
    pub(crate) plugins: Option<Arc<plugins::Plugins>>,
    /// Metrics and per-channel health (`/metrics`, `GET /api/v1/channels`).
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Integration event subscriptions (deliveries queued with the ingest).
    pub(crate) events: events::EventRouter,
}

impl App {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        channels: HashMap<String, Arc<Channel>>,
        public_base_url: String,
    ) -> Self {
        Self {
            store,
            channels,
            public_base_url,
            routing_wake: Arc::new(Notify::new()),
            send_wake: Arc::new(Notify::new()),
            next_request: AtomicU64::new(1),
            tokens: api::auth::Tokens::default(),
            hub: api::bus::Hub::default(),
            routing: Arc::new(switchboard_routing::RoutingConfig::default()),
            agent_ids: Vec::new(),
            plugins: None,
            metrics: Arc::new(metrics::Metrics::new()),
            events: events::EventRouter::default(),
        }
    }

    /// With the integration event subscriptions.
    pub(crate) fn with_events(mut self, events: events::EventRouter) -> Self {
        self.events = events;
        self
    }

    /// With the API's tokens and the routing configuration it checks agents and accounts
    /// against.
    pub(crate) fn with_api(
        mut self,
        tokens: &[crate::config::ResolvedToken],
        routing: &switchboard_routing::RoutingConfig,
    ) -> Self {
        self.tokens = api::auth::Tokens::new(tokens);
        self.agent_ids = routing.agents.iter().map(|a| a.id.clone()).collect();
        self.routing = Arc::new(routing.clone());
        self
    }

    /// With the plugins the admin API manages.
    pub(crate) fn with_plugins(mut self, plugins: Option<Arc<plugins::Plugins>>) -> Self {
        self.plugins = plugins;
        self
    }
}

/// The gateway's routes with the body limit applied before anything else.
/// The agent/admin API is nested under `/api/v1`; its own layer (request ids, JSON errors) is
/// outermost so that it also shapes the limit and timeout layers' answers.
pub(crate) fn router(app: Arc<App>, max_body_bytes: usize, request_timeout: Duration) -> Router {
    Router::new()
        .route("/webhooks/{channel_id}", get(webhook).post(webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::scrape))
        .nest(api::PREFIX, api::routes())
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Outside the limit and timeout layers: their 413 and 408 count as webhook outcomes.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::observe_webhooks,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::layer,
        ))
        .with_state(app)
}

fn status(code: StatusCode) -> Response {
    code.into_response()
}

/// Finds the channel: by id, or for a shared endpoint named after a connector, through the
/// connector's `route()` and the channels' `route_key`.
fn lookup(app: &App, path_id: &str, req: &WebhookRequest) -> Option<Arc<Channel>> {
    if let Some(channel) = app.channels.get(path_id) {
        return Some(channel.clone());
    }
    let shared: Vec<&Arc<Channel>> = app
        .channels
        .values()
        .filter(|c| c.connector_id == path_id)
        .collect();
    let first = shared.first()?;
    let key = first.connector.route(req)?;
    shared
        .into_iter()
        .find(|c| c.route_key.as_deref() == Some(key.0.as_str()))
        .cloned()
}

async fn webhook(
    State(app): State<Arc<App>>,
    Path(path_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = app.next_request.fetch_add(1, Ordering::Relaxed);
    // No URL in the span: query strings carry phone numbers.
    let span = tracing::info_span!("webhook", request_id, channel = %path_id);
    let mut tag = metrics::WebhookTag::default();
    let mut response = handle_webhook(app, &mut tag, path_id, method, uri, headers, body)
        .instrument(span)
        .await;
    response.extensions_mut().insert(tag);
    response
}

async fn handle_webhook(
    app: Arc<App>,
    tag: &mut metrics::WebhookTag,
    path_id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = match method {
        Method::GET => switchboard_core::Method::Get,
        Method::POST => switchboard_core::Method::Post,
        _ => return status(StatusCode::METHOD_NOT_ALLOWED),
    };
    let received = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let url = match switchboard_core::webhook_auth::rebase_url(&received, &app.public_base_url) {
        Ok(url) => url,
        Err(_) => {
            tracing::info!(status = 400, "request URL cannot be rebased");
            return status(StatusCode::BAD_REQUEST);
        }
    };
    let mut req = WebhookRequest::new(method, url).with_body(body.to_vec());
    for (name, value) in &headers {
        // Header values that are not text cannot be part of any signature scheme we check.
        if let Ok(value) = value.to_str() {
            req.headers
                .push((name.as_str().to_owned(), value.to_owned()));
        }
    }

    let Some(channel) = lookup(&app, &path_id, &req) else {
        tracing::info!(status = 404, "unknown channel");
        return status(StatusCode::NOT_FOUND);
    };
    tag.channel = Some(channel.id.clone());
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    // One connector version for the whole webhook, even if a plugin is reloaded meanwhile.
    let connector = channel.current();
    let started = std::time::Instant::now();
    let parsed = receive_webhook(
        connector.as_ref(),
        &channel.ctx,
        &channel.secrets,
        &req,
        now,
    );
    app.metrics
        .connector_webhook(&channel.connector_id, started.elapsed());
    let outcome = match parsed {
        Ok(outcome) => outcome,
        Err(ConnectorError::InvalidSignature { reason }) => {
            // The reason is for the operator's log only; the caller learns nothing.
            tracing::warn!(status = 401, %reason, "webhook authentication failed");
            return status(StatusCode::UNAUTHORIZED);
        }
        Err(ConnectorError::Config { field, reason }) => {
            tracing::error!(status = 500, %field, %reason, "channel misconfigured");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(e) => {
            tracing::info!(status = 400, error = %e, "webhook rejected");
            return status(StatusCode::BAD_REQUEST);
        }
    };

    for item in &outcome.skipped {
        // Acknowledged with the rest of the batch but not stored: say so. Reasons may quote
        // payload values, so phone numbers are masked.
        tracing::warn!(
            path = %item.path,
            reason = %switchboard_transport::mask_phone_numbers(&item.reason),
            "webhook item produced no event"
        );
    }
    if !outcome.events.is_empty() {
        let deliveries = app
            .events
            .ingest_deliveries(&channel.id, &outcome.events, now);
        let stored = app
            .store
            .ingest_with_events(&channel.id, &outcome.events, &deliveries, now)
            .await;
        match stored {
            Ok(result) => {
                tracing::info!(
                    status = outcome.reply.status,
                    stored = result.stored,
                    duplicates = result.duplicates,
                    "webhook stored"
                );
                tag.outcome = Some(if result.stored > 0 {
                    metrics::WebhookOutcome::Stored
                } else {
                    metrics::WebhookOutcome::Duplicate
                });
                if result.stored > 0 {
                    app.routing_wake.notify_one();
                    api::publish::statuses(&app.store, &app.hub.bus, &channel.id, &outcome.events);
                }
            }
            Err(e) => {
                tracing::error!(status = 503, error = %e, "store failed: the provider will retry");
                let mut response = status(StatusCode::SERVICE_UNAVAILABLE);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
        }
    } else {
        tracing::info!(
            status = outcome.reply.status,
            "webhook answered (no events)"
        );
    }
    reply(outcome.reply)
}

fn reply(reply: switchboard_core::WebhookReply) -> Response {
    let code = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (code, reply.body).into_response();
    if let Some(content_type) = reply
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}

/// Runs the gateway until the process is stopped.
pub(crate) async fn serve(mut config: Resolved) -> anyhow::Result<()> {
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    // Plugins before anything listens: a channel whose plugin is refused stops the start.
    let (settings, pending) = (config.plugins.clone(), config.plugin_channels.clone());
    let (plugins, plugin_channels) =
        tokio::task::spawn_blocking(move || plugins::start(&settings, &pending))
            .await
            .context("loading the plugins")??;
    config.channels.extend(plugin_channels);
    let options = SqliteOptions {
        synchronous: config.synchronous,
        ..SqliteOptions::default()
    };
    let store = switchboard_store::open(&config.store_url, options)
        .await
        .context("opening the store")?;
    tracing::info!(backend = store.backend(), "store ready");

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local: SocketAddr = listener.local_addr().context("reading the bound address")?;
    if config.channels.is_empty() {
        tracing::info!(
            "no channel configured: add one with a config file (`switchboard serve --config switchboard.toml`) containing \
             [[channels]] id = \"wa-main\", connector = \"twilio\", settings = {{ account_sid = \"AC…\", from = \"+1…\" }}, \
             secrets = {{ auth_token = \"env:TWILIO_AUTH_TOKEN\" }}; its webhook URL is then {}/webhooks/wa-main",
            config.public_base_url.trim_end_matches('/')
        );
    }
    let app = Arc::new(
        App::new(
            store.clone(),
            config.channels.clone(),
            config.public_base_url.clone(),
        )
        .with_api(&config.api_tokens, &config.routing)
        .with_plugins(plugins.clone())
        .with_events(config.events.clone()),
    );
    // Several instances on one PostgreSQL store: agents see every instance's events.
    if let Some(feed) = switchboard_store::Feed::open(&config.store_url)
        .await
        .context("opening the event feed")?
    {
        app.hub.bus.connect(feed);
        tracing::info!("event stream shared with the other instances (LISTEN/NOTIFY)");
    }
    if let (Some(plugins), Some(every)) = (plugins, config.plugins.watch) {
        plugins::watch(plugins, every);
    }
    workers::spawn(&app, &config).context("starting the workers")?;
    let routes = router(
        app,
        config.limits.max_body_bytes,
        Duration::from_secs(config.limits.request_timeout_secs),
    );
    // The line tests and operators read to learn the port (with `listen = "127.0.0.1:0"`).
    tracing::info!(%local, "listening");
    println!("switchboard listening on http://{local}");
    listener::serve(
        listener,
        routes,
        Duration::from_secs(config.limits.request_timeout_secs),
    )
    .await;
    Ok(())
}
