//! `/api/v1/contacts`: search contacts by any part of their number.
//!
//! The rule ([`switchboard_store::Store::search_contacts`]): a contact matches when its address
//! or profile name contains the query as typed (case-insensitive), or, when the query has
//! digits, when its address with the phone symbols `+ ( ) - .` and spaces removed contains the
//! query's digits. `+1 (415) 523-8886` is found by `523-88`, `4155238886`, `(415)`, `+1415`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Principal;
use super::errors::{ApiError, ApiQuery};
use crate::gateway::App;

/// `GET /contacts` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    limit: Option<u32>,
}

/// `GET /contacts?q=…`: most recently active first.
pub(crate) async fn search(
    State(app): State<Arc<App>>,
    _principal: Principal,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Err(ApiError::invalid(
            "`q` is required (a part of a number or a name)",
        ));
    }
    if q.chars().count() > 64 {
        return Err(ApiError::invalid("`q` is at most 64 characters"));
    }
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::invalid("`limit` must be 1 to 500"));
    }
    let found = app
        .store
        .search_contacts(q, limit)
        .await
        .map_err(ApiError::store)?;
    let contacts: Vec<Value> = found
        .iter()
        .map(|c| {
            json!({
                "channel": c.channel_id,
                "address": serde_json::from_str::<Value>(&c.address_json).unwrap_or(Value::Null),
                "profile_name": c.profile_name,
                "first_seen_at": c.first_seen_at,
                "last_inbound_at": c.last_inbound_at,
            })
        })
        .collect();
    Ok(Json(json!({ "contacts": contacts })))
}
