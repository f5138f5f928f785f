//! The agent/admin API under `/api/v1` (bearer tokens; documented in `docs/api.md`).
//!
//! Reads come from the store; commands (accept, reply, transfer, …) are queued as durable
//! routing jobs and answered with routing's outcome when it arrives within a moment
//! ([`commands`]); the event stream ([`events`]) is fed by the routing driver and ingest
//! through an in-process bus ([`bus`]). Every answer carries `x-request-id`; every error is
//! `{"error": {"code", "message"}}` ([`errors`]).

pub(crate) mod agents;
pub(crate) mod auth;
pub(crate) mod bus;
pub(crate) mod channels;
pub(crate) mod commands;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod messages;
pub(crate) mod plugins;
pub(crate) mod publish;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use switchboard_routing::State as RoutingState;
use tracing::Instrument;

use self::errors::ApiError;
use crate::gateway::App;

/// The path prefix.
pub(crate) const PREFIX: &str = "/api/v1";

/// The API's routes (nested under [`PREFIX`] by the gateway's router).
pub(crate) fn routes() -> Router<Arc<App>> {
    use self::conversations as c;
    Router::new()
        .route("/conversations", get(c::list))
        .route("/conversations/{id}", get(c::get))
        .route("/conversations/{id}/messages", post(c::reply))
        .route("/conversations/{id}/accept", post(c::accept))
        .route("/conversations/{id}/reject", post(c::reject))
        .route("/conversations/{id}/transfer", post(c::transfer))
        .route("/conversations/{id}/end", post(c::end))
        .route("/conversations/{id}/dismiss", post(c::dismiss))
        .route("/conversations/{id}/transcript", get(c::transcript))
        .route("/agents", get(agents::list))
        .route("/agents/{id}/state", put(agents::set_state))
        .route("/messages", post(messages::send))
        .route("/messages/{id}", get(messages::get))
        .route("/contacts", get(contacts::search))
        .route("/events", get(events::stream))
        .route("/channels", get(channels::list))
        .route("/plugins", get(plugins::list))
        .route("/plugins/load", post(plugins::load))
        .route("/plugins/{id}/reload", post(plugins::reload))
        .route("/plugins/{id}/rollback", post(plugins::rollback))
        .route("/plugins/{id}/unload", post(plugins::unload))
        .fallback(|| async { ApiError::not_found("no such API route") })
}

/// The routing engine's current state (empty before the first commit).
pub(crate) async fn routing_state(app: &App) -> Result<RoutingState, ApiError> {
    match app.store.routing_state().await.map_err(ApiError::store)? {
        Some(row) => serde_json::from_str(&row.state).map_err(|e| {
            tracing::error!(error = %e, "stored routing state does not decode");
            ApiError::internal()
        }),
        None => Ok(RoutingState::new()),
    }
}

/// The outermost layer for `/api/…` requests: a request id (shared counter with the webhooks)
/// in the span and the `x-request-id` header, one log line per request (path only: queries
/// carry phone numbers), and every error answer in the JSON shape — including those of the
/// body limit and timeout layers and axum's own. Other paths pass through.
pub(crate) async fn layer(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let request_id = app.next_request.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "api",
        request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let response = async {
        let response = next.run(request).await;
        let response = errors::normalize(response);
        tracing::info!(status = response.status().as_u16(), "api request");
        response
    }
    .instrument(span)
    .await;
    let mut response = response.into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
