//! The scripted agent's side of the demo: a small client of the gateway's agent API
//! (`/api/v1`, bearer token), written the way an agent desktop or a CRM integration would use
//! it. Every call is plain HTTP + JSON; errors come back as `{"error":{"code","message"}}`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};

/// How long one API call may take (the event stream has no limit).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One agent's API session.
#[derive(Clone)]
pub(crate) struct AgentApi {
    client: reqwest::Client,
    /// `http://127.0.0.1:{port}/api/v1`.
    base: String,
    token: String,
    /// The agent id (`anna`).
    pub(crate) agent: String,
}

/// One server-sent event of `GET /api/v1/events`.
#[derive(Clone, Debug)]
pub(crate) struct StreamEvent {
    /// The `event:` field (`offer`, `message`, `status`, `conversation_ended`, …).
    pub(crate) event: String,
    /// The `data:` field, as JSON (`Null` when it is not JSON).
    pub(crate) data: Value,
}

/// The event stream, read in the background; [`EventStream::received`] is what arrived so far.
#[derive(Clone, Default)]
pub(crate) struct EventStream {
    events: Arc<Mutex<Vec<StreamEvent>>>,
    closed: Arc<Mutex<Option<String>>>,
}

impl EventStream {
    /// Every event received so far, in order.
    pub(crate) fn received(&self) -> Vec<StreamEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The first event named `event` whose data satisfies `matches`.
    pub(crate) fn find(
        &self,
        event: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Option<StreamEvent>> {
        let found = self
            .received()
            .into_iter()
            .find(|e| e.event == event && matches(&e.data));
        if found.is_none()
            && let Ok(closed) = self.closed.lock()
            && let Some(reason) = closed.as_ref()
        {
            bail!("the event stream closed: {reason}");
        }
        Ok(found)
    }
}

impl AgentApi {
    /// A session for `agent` with its bearer token, against the gateway at `gateway_url`.
    pub(crate) fn new(
        client: reqwest::Client,
        gateway_url: &str,
        agent: &str,
        token: &str,
    ) -> Self {
        Self {
            client,
            base: format!("{}/api/v1", gateway_url.trim_end_matches('/')),
            token: token.to_owned(),
            agent: agent.to_owned(),
        }
    }

    /// Sends one request; a non-2xx answer becomes an error quoting the API's error code and
    /// message.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .client
            .request(method.clone(), &url)
            .timeout(CALL_TIMEOUT)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let code = value["error"]["code"].as_str().unwrap_or("?");
            let message = value["error"]["message"].as_str().unwrap_or_default();
            return Err(anyhow!(
                "{method} {path} answered {status}: {code}: {message}"
            ));
        }
        Ok(value)
    }

    /// `PUT /agents/{id}/state {"availability": "available"}`.
    pub(crate) async fn set_available(&self) -> anyhow::Result<Value> {
        let path = format!("/agents/{}/state", self.agent);
        self.call(
            Method::PUT,
            &path,
            Some(json!({"availability": "available"})),
        )
        .await
    }

    /// `GET /conversations/{id}`.
    pub(crate) async fn conversation(&self, id: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, &format!("/conversations/{id}"), None)
            .await
    }

    /// `POST /conversations/{id}/accept`.
    pub(crate) async fn accept(&self, id: &str) -> anyhow::Result<Value> {
        self.call(Method::POST, &format!("/conversations/{id}/accept"), None)
            .await
    }

    /// `POST /conversations/{id}/messages` with core `Content` JSON (`{"type":"text","text":…}`).
    pub(crate) async fn send_text(&self, id: &str, text: &str) -> anyhow::Result<Value> {
        let body = json!({"content": {"type": "text", "text": text}});
        self.call(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            Some(body),
        )
        .await
    }

    /// `POST /conversations/{id}/end {"dispositions": […]}`.
    pub(crate) async fn end(&self, id: &str, dispositions: &[&str]) -> anyhow::Result<Value> {
        let body = json!({"dispositions": dispositions});
        self.call(
            Method::POST,
            &format!("/conversations/{id}/end"),
            Some(body),
        )
        .await
    }

    /// `GET /conversations/{id}/transcript`.
    pub(crate) async fn transcript(&self, id: &str) -> anyhow::Result<Value> {
        self.call(
            Method::GET,
            &format!("/conversations/{id}/transcript"),
            None,
        )
        .await
    }

    /// Opens `GET /events` (server-sent events) and reads it in the background.
    pub(crate) async fn open_events(&self) -> anyhow::Result<EventStream> {
        let response = self
            .client
            .get(format!("{}/events", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .context("GET /events")?;
        if !response.status().is_success() {
            bail!("GET /events answered {}", response.status());
        }
        let stream = EventStream::default();
        tokio::spawn(read_events(response, stream.clone()));
        Ok(stream)
    }
}

/// Reads `text/event-stream` chunks: `event:` and `data:` lines, an empty line ends an event.
async fn read_events(mut response: reqwest::Response, stream: EventStream) {
    let mut pending = String::new();
    let (mut event, mut data) = (String::new(), String::new());
    let reason = loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break "the gateway ended it".to_owned(),
            Err(e) => break e.to_string(),
        };
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() || !event.is_empty() {
                    let parsed = serde_json::from_str(&data).unwrap_or(Value::Null);
                    let name = if event.is_empty() { "message" } else { &event };
                    if let Ok(mut events) = stream.events.lock() {
                        events.push(StreamEvent {
                            event: name.to_owned(),
                            data: parsed,
                        });
                    }
                }
                event.clear();
                data.clear();
            } else if let Some(value) = line.strip_prefix("event:") {
                event = value.trim_start().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            // `id:`, `retry:` and `:` comments (keep-alives) are not needed here.
        }
    };
    if let Ok(mut closed) = stream.closed.lock() {
        *closed = Some(reason);
    }
}
