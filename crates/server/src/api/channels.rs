//! `GET /api/v1/channels` (admin tokens only): each channel's health as this instance saw it
//! since it started — credential state, the last failed send (masked), the last accepted send,
//! and counts of webhooks and sends ([`crate::gateway::metrics::ChannelStatus`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth::Principal;
use super::errors::ApiError;
use crate::gateway::App;

/// `GET /channels`: every configured channel, sorted by id.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    if !principal.is_admin() {
        return Err(ApiError::forbidden("channel health needs an admin token"));
    }
    let mut ids: Vec<&String> = app.channels.keys().collect();
    ids.sort();
    let channels: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| {
            let channel = app.channels.get(id)?;
            let status = app.metrics.channel(id);
            Some(json!({
                "id": id,
                "connector": channel.connector_id,
                "credentials": status.credentials,
                "last_error": status.last_error,
                "last_success_at": status.last_success_at,
                "sends": status.sends,
                "webhooks": status.webhooks,
            }))
        })
        .collect();
    Ok(Json(json!({ "channels": channels })))
}
