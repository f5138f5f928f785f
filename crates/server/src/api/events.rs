//! `GET /api/v1/events`: server-sent events. An agent token receives the events of its own
//! agent; an admin token receives all. The stream starts with `ready`; a comment line is sent
//! every 15 s to keep proxies from closing it; a subscriber that fell behind gets `lagged`
//! (it missed `missed` events: re-read what it shows via REST).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Principal;
use crate::gateway::App;

/// Keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// The SSE handler.
pub(crate) async fn stream(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = app.hub.bus.subscribe();
    tracing::info!(token = %principal.name, "event stream opened");
    let ready = json!({"agent": principal.agent(), "admin": principal.is_admin()});
    let state = (receiver, principal, Some(ready));
    let events = futures_util::stream::unfold(state, |(mut rx, principal, ready)| async move {
        if let Some(ready) = ready {
            return Some((Ok(event("ready", &ready)), (rx, principal, None)));
        }
        loop {
            match rx.recv().await {
                Ok(ev) if principal.sees(ev.agent.as_deref()) => {
                    return Some((Ok(event(&ev.name, &ev.data)), (rx, principal, None)));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    let data = json!({
                        "missed": missed,
                        "hint": "events were dropped for this slow stream: re-read conversations via REST",
                    });
                    return Some((Ok(event("lagged", &data)), (rx, principal, None)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}
