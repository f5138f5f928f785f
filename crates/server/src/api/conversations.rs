//! `/api/v1/conversations`: list, one conversation with its messages, its transcript, and the
//! agent commands on it (accept, reject, reply, transfer, end, dismiss).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{Content, InboundEvent, OutboundMessage};
use switchboard_routing::{AgentCommand, ConvId, TransferTarget};
use switchboard_store::{
    ConversationCursor, ConversationFilter, ConversationRecord, StoredMessage,
};

use super::auth::Principal;
use super::commands::{self, conversation_id};
use super::errors::{ApiError, ApiPath, ApiQuery, JsonBody};
use super::publish::audience;
use super::routing_state;
use crate::gateway::App;

/// `GET /conversations` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    state: Option<String>,
    queue: Option<String>,
    channel: Option<String>,
    agent: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_cursor(text: &str) -> Result<ConversationCursor, ApiError> {
    text.split_once('.')
        .and_then(|(at, id)| {
            Some(ConversationCursor {
                opened_at: at.parse().ok()?,
                id: id.to_owned(),
            })
        })
        .ok_or_else(|| ApiError::invalid("`cursor` is not one this API returned"))
}

/// `GET /conversations`: newest first; agent tokens see their own (assigned) conversations.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = match (principal.agent(), query.agent) {
        (Some(me), Some(asked)) if asked != me => {
            return Err(ApiError::forbidden(
                "an agent token lists only its own conversations",
            ));
        }
        (Some(me), _) => Some(me.to_owned()),
        (None, asked) => asked,
    };
    if query.limit == Some(0) || query.limit.is_some_and(|l| l > 500) {
        return Err(ApiError::invalid("`limit` must be 1 to 500"));
    }
    let filter = ConversationFilter {
        state: query.state,
        queue: query.queue,
        channel_id: query.channel,
        agent,
        limit: query.limit.unwrap_or(50),
        cursor: query.cursor.as_deref().map(parse_cursor).transpose()?,
    };
    let page = app
        .store
        .conversations(&filter)
        .await
        .map_err(ApiError::store)?;
    Ok(Json(json!({
        "conversations": page.conversations,
        "next_cursor": page.next.map(|c| format!("{}.{}", c.opened_at, c.id)),
    })))
}

/// Loads a conversation the caller may see: admins any; an agent one it handles or is
/// offered (403 otherwise). Also returns its live routing phase, when it is open.
async fn visible(
    app: &App,
    principal: &Principal,
    id: &str,
) -> Result<(ConversationRecord, Value), ApiError> {
    let conv = conversation_id(id)?;
    let record = app
        .store
        .conversation(id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation `{id}`")))?;
    let state = routing_state(app).await?;
    let phase = state
        .conversation(conv)
        .map(|c| serde_json::to_value(&c.phase).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if let Some(me) = principal.agent() {
        let live = audience(&state, conv);
        if record.agent.as_deref() != Some(me) && live.as_deref() != Some(me) {
            return Err(ApiError::forbidden(format!(
                "conversation `{id}` is not handled by or offered to this agent"
            )));
        }
    }
    Ok((record, phase))
}

/// One message as the API shows it.
pub(crate) fn message_json(message: &StoredMessage) -> Value {
    let (content, peer_field, tag): (Option<Content>, &str, Option<String>) =
        if message.direction == "in" {
            let content = match serde_json::from_str::<InboundEvent>(&message.body) {
                Ok(InboundEvent::Message(m)) => Some(m.content),
                _ => None,
            };
            (content, "from", None)
        } else {
            match serde_json::from_str::<OutboundMessage>(&message.body) {
                Ok(m) => (Some(m.content), "to", m.tag),
                Err(_) => (None, "to", None),
            }
        };
    let mut value = json!({
        "id": message.id,
        "direction": message.direction,
        "channel": message.channel_id,
        "conversation": message.conversation_id,
        peer_field: message.peer,
        "content": content,
        "provider_message_id": message.provider_message_id,
        "created_at": message.created_at,
    });
    if message.direction == "out" {
        value["outbox_id"] = json!(message.outbox_id);
        value["state"] = json!(message.outbox_state);
        value["delivery"] = json!(message.delivery);
        if let Some(tag) = tag {
            value["tag"] = json!(tag);
        }
    }
    value
}

/// `GET /conversations/{id}`: the summary, the live routing phase and the messages in order.
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, phase) = visible(&app, &principal, &id).await?;
    let messages = app
        .store
        .conversation_messages(&id)
        .await
        .map_err(ApiError::store)?;
    let mut summary = serde_json::to_value(&record).unwrap_or(Value::Null);
    summary["phase"] = phase;
    Ok(Json(json!({
        "conversation": summary,
        "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
    })))
}

/// `GET /conversations/{id}/transcript`: the entries so far and the copies written for the
/// CRM (at the dismissal warning, dismissal, end).
pub(crate) async fn transcript(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, _) = visible(&app, &principal, &id).await?;
    let stored = app.store.transcript(&id).await.map_err(ApiError::store)?;
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let writes: Vec<Value> = stored
        .writes
        .iter()
        .map(|(at, body)| {
            let mut write = parse(body);
            write["written_at"] = json!(at);
            write
        })
        .collect();
    Ok(Json(json!({
        "conversation": record.id,
        "state": record.state,
        "end_reason": record.end_reason,
        "entries": stored.entries.iter().map(|e| parse(e)).collect::<Vec<_>>(),
        "writes": writes,
    })))
}

/// The conversation a command targets: it must exist (404).
async fn target(app: &App, id: &str) -> Result<ConvId, ApiError> {
    let conv = conversation_id(id)?;
    app.store
        .conversation(id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation `{id}`")))?;
    Ok(conv)
}

/// A body with only the acting agent (admins must give it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentBody {
    agent: Option<String>,
}

/// `POST /conversations/{id}/messages` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyBody {
    agent: Option<String>,
    content: Option<Content>,
    tag: Option<String>,
}

/// `POST /conversations/{id}/transfer` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferBody {
    agent: Option<String>,
    target: Option<TransferTarget>,
}

/// `POST /conversations/{id}/end` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndBody {
    agent: Option<String>,
    #[serde(default)]
    dispositions: Vec<String>,
}

macro_rules! simple_command {
    ($(#[$doc:meta])* $name:ident, $variant:ident) => {
        $(#[$doc])*
        pub(crate) async fn $name(
            State(app): State<Arc<App>>,
            principal: Principal,
            ApiPath(id): ApiPath<String>,
            JsonBody(body): JsonBody<AgentBody>,
        ) -> Result<Response, ApiError> {
            let agent = principal.acting_as(body.agent.as_deref(), &app.agent_ids)?;
            let conversation = target(&app, &id).await?;
            commands::run(&app, AgentCommand::$variant { agent, conversation }).await
        }
    };
}

simple_command!(
    /// `POST /conversations/{id}/accept`: accept the offer.
    accept,
    Accept
);
simple_command!(
    /// `POST /conversations/{id}/reject`: reject the offer (back to the queue).
    reject,
    Reject
);
simple_command!(
    /// `POST /conversations/{id}/dismiss`: dismiss an inactive chat.
    dismiss,
    Dismiss
);

/// `POST /conversations/{id}/messages`: the agent's reply.
pub(crate) async fn reply(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<ReplyBody>,
) -> Result<Response, ApiError> {
    let agent = principal.acting_as(body.agent.as_deref(), &app.agent_ids)?;
    let content = body
        .content
        .ok_or_else(|| ApiError::invalid("`content` is required (core Content JSON)"))?;
    let conversation = target(&app, &id).await?;
    commands::run(
        &app,
        AgentCommand::Send {
            agent,
            conversation,
            content,
            tag: body.tag,
        },
    )
    .await
}

/// `POST /conversations/{id}/transfer`.
pub(crate) async fn transfer(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<TransferBody>,
) -> Result<Response, ApiError> {
    let agent = principal.acting_as(body.agent.as_deref(), &app.agent_ids)?;
    let target_to = body.target.ok_or_else(|| {
        ApiError::invalid("`target` is required: {\"type\":\"queue\",\"queue\":…} or {\"type\":\"agent\",\"agent\":…}")
    })?;
    let conversation = target(&app, &id).await?;
    commands::run(
        &app,
        AgentCommand::Transfer {
            agent,
            conversation,
            target: target_to,
        },
    )
    .await
}

/// `POST /conversations/{id}/end`.
pub(crate) async fn end(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<EndBody>,
) -> Result<Response, ApiError> {
    let agent = principal.acting_as(body.agent.as_deref(), &app.agent_ids)?;
    let conversation = target(&app, &id).await?;
    commands::run(
        &app,
        AgentCommand::End {
            agent,
            conversation,
            dispositions: body.dispositions,
        },
    )
    .await
}
