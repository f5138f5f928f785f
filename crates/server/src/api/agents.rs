//! `/api/v1/agents`: the agents' routing states, and changing one's availability.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_routing::{AgentCommand, Availability};

use super::auth::Principal;
use super::commands;
use super::errors::{ApiError, ApiPath, JsonBody};
use super::routing_state;
use crate::gateway::App;

/// `GET /agents`: every configured agent's availability and active conversations (an agent
/// token sees itself only).
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let state = routing_state(&app).await?;
    let agents: Vec<Value> = app
        .routing
        .agents
        .iter()
        .filter(|a| principal.sees(Some(&a.id)))
        .map(|a| {
            let live = state.agent(&a.id);
            json!({
                "id": a.id,
                "name": a.name,
                "availability": live.availability,
                "active": live.active,
                "last_assigned": live.last_assigned,
            })
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `PUT /agents/{id}/state` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateBody {
    availability: Option<Availability>,
}

/// `PUT /agents/{id}/state`: `available` (also clears RONA), `away`, `offline`.
pub(crate) async fn set_state(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<StateBody>,
) -> Result<Response, ApiError> {
    if !app.agent_ids.contains(&id) {
        return Err(ApiError::not_found(format!("no agent `{id}`")));
    }
    let agent = principal.acting_as(Some(&id), &app.agent_ids)?;
    let availability = match body.availability {
        Some(Availability::Rona) => {
            return Err(ApiError::invalid(
                "`rona` is set by routing when an offer lapses; set `available` to clear it",
            ));
        }
        Some(a) => a,
        None => {
            return Err(ApiError::invalid(
                "`availability` is required: `available`, `away` or `offline`",
            ));
        }
    };
    commands::run(
        &app,
        AgentCommand::SetAvailability {
            agent,
            availability,
        },
    )
    .await
}
