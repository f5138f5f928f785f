//! `/api/v1/messages`: proactive sends (a template to a contact, outside any conversation)
//! and the state of any queued message.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{Address, AddressKind, Content, OutboundMessage};
use switchboard_store::NewOutbox;

use super::auth::Principal;
use super::errors::{ApiError, ApiPath, JsonBody};
use super::routing_state;
use crate::gateway::App;
use crate::gateway::workers::now;

/// The longest `Idempotency-Key` accepted.
const MAX_KEY: usize = 128;

/// `POST /messages` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    channel: Option<String>,
    to: Option<String>,
    content: Option<Content>,
}

/// A phone number typed with symbols (`+1 (415) 523-8886`) as E.164 (`+14155238886`); `None`
/// when `text` is not a phone number.
pub(crate) fn e164(text: &str) -> Option<String> {
    let text = text.trim();
    let symbols_ok = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.' | ' '));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let plus_first = !text.contains('+') || text.starts_with('+');
    (symbols_ok && plus_first && (7..=15).contains(&digits.len())).then(|| format!("+{digits}"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    match headers.get("idempotency-key") {
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|k| {
                    !k.is_empty() && k.len() <= MAX_KEY && k.chars().all(|c| c.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "`Idempotency-Key` must be 1 to {MAX_KEY} visible ASCII characters"
                    ))
                })?;
            Ok(format!("api:{key}"))
        }
        None => {
            let mut hasher = std::hash::RandomState::new().build_hasher();
            hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            hasher.write_i64(now().unix_millis());
            Ok(format!("api:gen-{:016x}", hasher.finish()))
        }
    }
}

/// The recipient's address: a known contact's (by its address or the phone number typed),
/// else a phone number on the channel's routing account channel (or its connector's first).
async fn recipient(app: &App, channel_id: &str, to: &str) -> Result<Address, ApiError> {
    let phone = e164(to);
    for candidate in std::iter::once(to).chain(phone.as_deref()) {
        if let Some(contact) = app
            .store
            .contact(channel_id, candidate)
            .await
            .map_err(ApiError::store)?
        {
            return serde_json::from_str(&contact.address_json).map_err(|e| {
                tracing::error!(error = %e, "stored contact address does not decode");
                ApiError::internal()
            });
        }
    }
    let phone = phone.ok_or_else(|| {
        ApiError::invalid(
            "`to` is neither a phone number nor the address of a known contact of this channel",
        )
    })?;
    let kind = match app.routing.accounts.iter().find(|a| a.id == channel_id) {
        Some(account) => account.channel.clone(),
        None => app
            .channels
            .get(channel_id)
            .and_then(|c| {
                c.connector
                    .info()
                    .channels
                    .first()
                    .map(|s| s.channel.clone())
            })
            .ok_or_else(|| ApiError::invalid("the channel's connector serves no channel"))?,
    };
    Ok(Address::new(kind, AddressKind::Phone, phone))
}

/// `POST /messages`: queues a template for a contact; `202 {"id", "idempotency_key",
/// "created"}`. The same `Idempotency-Key` again returns the first message's id.
pub(crate) async fn send(
    State(app): State<Arc<App>>,
    _principal: Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SendBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let channel_id = body
        .channel
        .ok_or_else(|| ApiError::invalid("`channel` is required"))?;
    if !app.channels.contains_key(&channel_id) {
        return Err(ApiError::invalid(format!("unknown channel `{channel_id}`")));
    }
    let to = body
        .to
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("`to` is required (an address id or a phone number)"))?;
    let content = match body.content {
        Some(content @ Content::Template(_)) => content,
        Some(_) => {
            return Err(ApiError::invalid(
                "proactive messages are templates: `content` must be {\"type\":\"template\",…} \
                 (free text goes in a conversation, inside the customer-service window)",
            ));
        }
        None => return Err(ApiError::invalid("`content` is required (a template)")),
    };
    let key = idempotency_key(&headers)?;
    let address = recipient(&app, &channel_id, &to).await?;
    let state = routing_state(&app).await?;
    if state
        .contacts
        .get(&format!("{channel_id}/{}", address.id))
        .is_some_and(|c| c.opted_out)
    {
        return Err(ApiError::conflict(
            "opted_out",
            "the contact opted out on this channel; nothing was queued",
        ));
    }
    let out = NewOutbox {
        channel_id,
        conversation_id: None,
        message: OutboundMessage::new(key.clone(), address, content),
    };
    let queued = app
        .store
        .enqueue_outbox(&out, now())
        .await
        .map_err(ApiError::store)?;
    if queued.created {
        app.send_wake.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": queued.id, "idempotency_key": key, "created": queued.created})),
    ))
}

/// `GET /messages/{id}`: a queued message's outbox state, merged delivery state and provider
/// id. Agent tokens see messages of their conversations and proactive ones.
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let row_id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no message `{id}`")))?;
    let row = app
        .store
        .outbox_message(row_id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no message `{id}`")))?;
    if let (Some(me), Some(conversation)) = (principal.agent(), &row.job.conversation_id) {
        let agent = app
            .store
            .conversation(conversation)
            .await
            .map_err(ApiError::store)?
            .and_then(|c| c.agent);
        if agent.as_deref() != Some(me) {
            return Err(ApiError::forbidden(
                "the message belongs to a conversation of another agent",
            ));
        }
    }
    let job = &row.job;
    Ok(Json(json!({
        "id": job.id,
        "channel": job.channel_id,
        "conversation": job.conversation_id,
        "to": job.message.to,
        "content": job.message.content,
        "idempotency_key": job.message.idempotency_key,
        "state": job.state,
        "attempts": job.attempts,
        "provider_message_id": job.provider_message_id,
        "delivery": row.delivery,
        "last_error": job.last_error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_with_symbols_become_e164() {
        assert_eq!(e164("+1 (415) 523-8886").as_deref(), Some("+14155238886"));
        assert_eq!(e164("14155238886").as_deref(), Some("+14155238886"));
        assert_eq!(e164("415.523.8886").as_deref(), Some("+4155238886"));
        assert_eq!(e164("1-415-5+23"), None, "a plus inside");
        assert_eq!(e164("12345"), None, "too short");
        assert_eq!(e164("2450123456789012"), None, "too long");
        assert_eq!(e164("psid_2450"), None);
    }
}
