//! Agent commands: queued as durable routing jobs, then answered with their real outcome when
//! routing reports it quickly, else `202 {"job": id}` (the job still runs).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_routing::{AgentCommand, ConvId, Input};
use switchboard_store::RoutingJobKind;

use super::bus::CommandOutcome;
use super::errors::ApiError;
use crate::gateway::App;
use crate::gateway::workers::now;

/// How long a handler waits for routing's answer before answering 202.
pub(crate) const WAIT: Duration = Duration::from_secs(2);

/// Parses a conversation id from a path; an id that is not `conv_N` is simply not found.
pub(crate) fn conversation_id(text: &str) -> Result<ConvId, ApiError> {
    ConvId::try_from(text.to_owned())
        .map_err(|_| ApiError::not_found(format!("no conversation `{text}`")))
}

/// Queues `command`, wakes routing, and answers with its outcome:
/// 200 `{"job", "result": "ok"}`, 409 `refused` / `send_refused`, or 202
/// `{"job", "result": "pending"}` when routing has not answered within [`WAIT`].
pub(crate) async fn run(app: &Arc<App>, command: AgentCommand) -> Result<Response, ApiError> {
    let payload = serde_json::to_string(&Input::Agent(command)).map_err(|e| {
        tracing::error!(error = %e, "command did not serialize");
        ApiError::internal()
    })?;
    let job = app
        .store
        .enqueue_routing_job(RoutingJobKind::Command, &payload, now())
        .await
        .map_err(ApiError::store)?;
    let waiting = app.hub.results.register(job);
    app.routing_wake.notify_one();
    match tokio::time::timeout(WAIT, waiting).await {
        Ok(Ok(CommandOutcome::Ok)) => {
            Ok((StatusCode::OK, Json(json!({"job": job, "result": "ok"}))).into_response())
        }
        Ok(Ok(CommandOutcome::Refused(reason))) => Err(ApiError::conflict("refused", reason)),
        Ok(Ok(CommandOutcome::SendRefused(reason))) => {
            Err(ApiError::conflict("send_refused", reason))
        }
        Ok(Err(_)) | Err(_) => {
            app.hub.results.forget(job);
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"job": job, "result": "pending"})),
            )
                .into_response())
        }
    }
}
