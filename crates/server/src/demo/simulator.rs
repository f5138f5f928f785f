//! The provider simulator: a local HTTP server that answers like the two providers the built-in
//! connectors talk to, and plays their customers.
//!
//! - **Meta WhatsApp Cloud API**: `POST /{version}/{phone_number_id}/messages` with
//!   `Authorization: Bearer {access_token}` answers
//!   `{"messaging_product":"whatsapp","contacts":[…],"messages":[{"id":"wamid.…"}]}`; a wrong
//!   token gets Graph error 190 (HTTP 401). After each accepted send it calls the channel's
//!   webhook URL with the statuses `sent`, `delivered` and `read`, signed the way Meta signs
//!   (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`).
//! - **Twilio Programmable Messaging**: `POST /2010-04-01/Accounts/{sid}/Messages.json` (a form)
//!   with HTTP Basic `{sid}:{auth_token}` answers 201 with the Message JSON (`sid`,
//!   `status: "queued"`, …); bad credentials get error 20003 (HTTP 401). When the form has a
//!   `StatusCallback`, it calls it with `sent` then `delivered`, signed the way Twilio signs
//!   (`X-Twilio-Signature`: base64 HMAC-SHA1(auth token, URL + sorted name/value pairs)).
//! - **Customers**: [`Simulator::whatsapp_customer_writes`] and [`Simulator::sms_customer_writes`]
//!   send signed inbound webhooks, as the providers do when a customer writes.
//!
//! Every request the provider APIs receive is recorded ([`Simulator::requests`]), whether its
//! credentials were right or not. Two extra routes help exploring by hand:
//! `GET /simulator/requests` (the record as JSON) and `POST /simulator/whatsapp`
//! (`{"from": "15551230001", "name": "Maria", "text": "hi"}`: a customer writes).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};

/// The pause between two status callbacks of one message, so they arrive in order and a
/// reader can watch them progress.
const STATUS_PAUSE: Duration = Duration::from_millis(150);

/// How long the simulator waits for the gateway to answer a webhook (Twilio's default).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// The Meta WhatsApp Cloud API account the simulator plays.
#[derive(Clone, Debug)]
pub(crate) struct MetaAccount {
    /// The WhatsApp Business Account id (`entry[].id` of webhooks).
    pub(crate) waba_id: String,
    /// The business phone number's id: the send path and `metadata.phone_number_id`.
    pub(crate) phone_number_id: String,
    /// The business phone number, as Meta shows it (`metadata.display_phone_number`).
    pub(crate) display_phone_number: String,
    /// The bearer token sends must carry.
    pub(crate) access_token: String,
    /// The app secret that signs webhooks.
    pub(crate) app_secret: String,
}

/// The Twilio account the simulator plays.
#[derive(Clone, Debug)]
pub(crate) struct TwilioAccount {
    /// `AC…`: in the API path and the Basic user name.
    pub(crate) account_sid: String,
    /// The Basic password; it also signs webhooks.
    pub(crate) auth_token: String,
    /// The Twilio phone number customers text.
    pub(crate) number: String,
}

/// Which provider API a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Api {
    /// The Meta Graph API (WhatsApp Cloud API).
    Graph,
    /// Twilio's Messages API.
    Twilio,
}

/// One request a provider API received.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Recorded {
    /// Which API.
    pub(crate) api: Api,
    /// `POST /v25.0/…/messages`.
    pub(crate) request_line: String,
    /// Whether the credentials were the account's.
    pub(crate) authorized: bool,
    /// The credential scheme seen (`Bearer`, `Basic`, or `none`).
    pub(crate) auth_scheme: String,
    /// The recipient (`to`, `To`).
    pub(crate) to: String,
    /// The text sent (`text.body`, `Body`), or the message type when it is not text.
    pub(crate) text: String,
    /// The id the provider gave the message (absent when refused).
    pub(crate) message_id: Option<String>,
}

/// Where the gateway receives this account's webhooks (known once the gateway is configured).
#[derive(Clone, Debug)]
pub(crate) struct GatewayWebhooks {
    /// The Meta app's callback URL (Meta calls one URL per app).
    pub(crate) whatsapp_url: String,
    /// The Twilio number's incoming-message URL.
    pub(crate) sms_url: String,
}

/// The simulator's shared state.
struct Sim {
    meta: MetaAccount,
    twilio: TwilioAccount,
    webhooks: OnceLock<GatewayWebhooks>,
    requests: Mutex<Vec<Recorded>>,
    next_id: AtomicU64,
    client: reqwest::Client,
}

/// A running simulator.
#[derive(Clone)]
pub(crate) struct Simulator {
    sim: Arc<Sim>,
    addr: SocketAddr,
}

/// What the gateway answered to a webhook.
#[derive(Clone, Debug)]
pub(crate) struct WebhookAnswer {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The provider's id of the message the customer sent.
    pub(crate) message_id: String,
}

impl Simulator {
    /// Starts the simulator on a free loopback port.
    pub(crate) async fn start(
        meta: MetaAccount,
        twilio: TwilioAccount,
        client: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let sim = Arc::new(Sim {
            meta,
            twilio,
            webhooks: OnceLock::new(),
            requests: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            client,
        });
        let routes = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(graph_send))
            .route(
                "/2010-04-01/Accounts/{account_sid}/Messages.json",
                post(twilio_send),
            )
            .route("/simulator/requests", get(list_requests))
            .route("/simulator/whatsapp", post(customer_from_curl))
            .with_state(sim.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the provider simulator")?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, routes).await {
                eprintln!("provider simulator stopped: {e}");
            }
        });
        Ok(Self { sim, addr })
    }

    /// `http://127.0.0.1:{port}`: the `base_url` of both channels.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Tells the simulator where the gateway's webhooks are (once, before any traffic).
    pub(crate) fn connect(&self, webhooks: GatewayWebhooks) {
        // A second call would mean a second gateway; the first wins.
        let _ = self.sim.webhooks.set(webhooks);
    }

    /// Every request the provider APIs received so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.sim.requests_snapshot()
    }

    /// A WhatsApp user writes to the business number: Meta's signed `messages` webhook.
    pub(crate) async fn whatsapp_customer_writes(
        &self,
        wa_id: &str,
        name: &str,
        text: &str,
    ) -> anyhow::Result<WebhookAnswer> {
        self.sim.whatsapp_customer_writes(wa_id, name, text).await
    }

    /// Someone texts the Twilio number: Twilio's signed incoming-message webhook.
    pub(crate) async fn sms_customer_writes(
        &self,
        phone: &str,
        text: &str,
    ) -> anyhow::Result<WebhookAnswer> {
        let sim = &self.sim;
        let url = sim.webhooks()?.sms_url;
        let sid = format!("SM{:032x}", sim.next());
        let params = [
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("ToCity", "SAN FRANCISCO"),
            ("FromZip", "94105"),
            ("SmsSid", sid.as_str()),
            ("FromState", "CA"),
            ("SmsStatus", "received"),
            ("FromCity", "SAN FRANCISCO"),
            ("Body", text),
            ("FromCountry", "US"),
            ("To", sim.twilio.number.as_str()),
            ("ToZip", "94105"),
            ("NumSegments", "1"),
            ("MessageSid", sid.as_str()),
            ("AccountSid", sim.twilio.account_sid.as_str()),
            ("From", phone),
            ("ApiVersion", "2010-04-01"),
        ];
        let status = sim.post_twilio_form(&url, &params).await?;
        Ok(WebhookAnswer {
            status,
            message_id: sid,
        })
    }
}

impl Sim {
    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn webhooks(&self) -> anyhow::Result<GatewayWebhooks> {
        match self.webhooks.get() {
            Some(webhooks) => Ok(webhooks.clone()),
            None => bail!("the simulator does not know the gateway's webhook URLs yet"),
        }
    }

    fn record(&self, recorded: Recorded) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(recorded);
        }
    }

    fn requests_snapshot(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The `messages` change of a WhatsApp Business Account webhook, wrapped as Meta sends it.
    fn whatsapp_envelope(&self, value_items: Value) -> Value {
        let mut value = json!({
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.meta.display_phone_number,
                "phone_number_id": self.meta.phone_number_id,
            },
        });
        if let (Some(value), Some(items)) = (value.as_object_mut(), value_items.as_object()) {
            value.extend(items.clone());
        }
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": self.meta.waba_id,
                "changes": [{ "value": value, "field": "messages" }],
            }],
        })
    }

    async fn whatsapp_customer_writes(
        &self,
        wa_id: &str,
        name: &str,
        text: &str,
    ) -> anyhow::Result<WebhookAnswer> {
        let message_id = format!("wamid.IN{:024X}", self.next());
        let body = self.whatsapp_envelope(json!({
            "contacts": [{ "profile": { "name": name }, "wa_id": wa_id }],
            "messages": [{
                "from": wa_id,
                "id": message_id,
                "timestamp": unix_seconds(),
                "text": { "body": text },
                "type": "text",
            }],
        }));
        let status = self.post_meta_webhook(&body).await?;
        Ok(WebhookAnswer { status, message_id })
    }

    /// POSTs a WhatsApp webhook body to the gateway, signed with the app secret.
    async fn post_meta_webhook(&self, body: &Value) -> anyhow::Result<u16> {
        let url = self.webhooks()?.whatsapp_url;
        // Meta signs the exact bytes it sends; so do we (serialize once, sign, send those).
        let bytes = serde_json::to_vec(body).context("serializing a webhook")?;
        let signature = format!("sha256={}", meta_signature(&self.meta.app_secret, &bytes)?);
        let response = self
            .client
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(bytes)
            .timeout(WEBHOOK_TIMEOUT)
            .send()
            .await
            .with_context(|| format!("calling the gateway's webhook {url}"))?;
        Ok(response.status().as_u16())
    }

    /// POSTs a Twilio webhook form to `url`, signed with the auth token.
    async fn post_twilio_form(&self, url: &str, params: &[(&str, &str)]) -> anyhow::Result<u16> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let signature = twilio_signature(&self.twilio.auth_token, url, params)?;
        let response = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .timeout(WEBHOOK_TIMEOUT)
            .send()
            .await
            .with_context(|| format!("calling the gateway's webhook {url}"))?;
        Ok(response.status().as_u16())
    }

    /// Meta's status webhooks for one sent message: `sent`, `delivered`, then `read` (the
    /// simulated customer reads everything at once).
    async fn whatsapp_statuses(self: Arc<Self>, message_id: String, recipient: String) {
        for status in ["sent", "delivered", "read"] {
            tokio::time::sleep(STATUS_PAUSE).await;
            let mut item = json!({
                "id": message_id,
                "status": status,
                "timestamp": unix_seconds(),
                "recipient_id": recipient,
            });
            if status != "read"
                && let Some(item) = item.as_object_mut()
            {
                // Meta adds the conversation and pricing to sent and delivered statuses.
                item.insert(
                    "conversation".into(),
                    json!({ "id": format!("CONVERSATION{}", recipient), "origin": { "type": "service" } }),
                );
                item.insert(
                    "pricing".into(),
                    json!({ "billable": false, "pricing_model": "PMP", "category": "service" }),
                );
            }
            let body = self.whatsapp_envelope(json!({ "statuses": [item] }));
            match self.post_meta_webhook(&body).await {
                Ok(200) => {}
                Ok(other) => eprintln!("simulator: the gateway answered {other} to a status"),
                Err(e) => eprintln!("simulator: status webhook failed: {e:#}"),
            }
        }
    }

    /// Twilio's status callbacks for one SMS: `sent`, then `delivered`.
    async fn twilio_statuses(self: Arc<Self>, callback: String, sid: String, to: String) {
        for status in ["sent", "delivered"] {
            tokio::time::sleep(STATUS_PAUSE).await;
            let params = [
                ("SmsSid", sid.as_str()),
                ("SmsStatus", status),
                ("MessageStatus", status),
                ("To", to.as_str()),
                ("MessageSid", sid.as_str()),
                ("AccountSid", self.twilio.account_sid.as_str()),
                ("From", self.twilio.number.as_str()),
                ("ApiVersion", "2010-04-01"),
            ];
            match self.post_twilio_form(&callback, &params).await {
                Ok(200) => {}
                Ok(other) => eprintln!("simulator: the gateway answered {other} to a status"),
                Err(e) => eprintln!("simulator: status callback failed: {e:#}"),
            }
        }
    }
}

/// `POST /{version}/{phone_number_id}/messages`: the WhatsApp Cloud API send.
async fn graph_send(
    State(sim): State<Arc<Sim>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header_text(&headers, header::AUTHORIZATION.as_str());
    let authorized = authorization.strip_prefix("Bearer ") == Some(sim.meta.access_token.as_str());
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = message["to"].as_str().unwrap_or_default().to_owned();
    let text = match message["type"].as_str() {
        Some("text") => message["text"]["body"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Some(other) => format!("({other})"),
        None => "(no type)".to_owned(),
    };
    let mut recorded = Recorded {
        api: Api::Graph,
        request_line: format!("POST /{version}/{phone_number_id}/messages"),
        authorized,
        auth_scheme: scheme(&authorization),
        to: to.clone(),
        text,
        message_id: None,
    };
    if !authorized {
        sim.record(recorded);
        let error = json!({"error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException", "code": 190, "fbtrace_id": "ASimulatorTrace"
        }});
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    if phone_number_id != sim.meta.phone_number_id || message["messaging_product"] != "whatsapp" {
        sim.record(recorded);
        let error = json!({"error": {
            "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
            "fbtrace_id": "ASimulatorTrace"
        }});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let id = format!("wamid.OUT{:024X}", sim.next());
    recorded.message_id = Some(id.clone());
    sim.record(recorded);
    tokio::spawn(sim.clone().whatsapp_statuses(id.clone(), to.clone()));
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": id }],
    });
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// `POST /2010-04-01/Accounts/{sid}/Messages.json`: Twilio's Messages API.
async fn twilio_send(
    State(sim): State<Arc<Sim>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header_text(&headers, header::AUTHORIZATION.as_str());
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        sim.twilio.account_sid, sim.twilio.auth_token
    ));
    let authorized = account_sid == sim.twilio.account_sid
        && authorization.strip_prefix("Basic ") == Some(expected.as_str());
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (to, from, text, callback) = (
        field("To"),
        field("From"),
        field("Body"),
        field("StatusCallback"),
    );
    let mut recorded = Recorded {
        api: Api::Twilio,
        request_line: format!("POST /2010-04-01/Accounts/{account_sid}/Messages.json"),
        authorized,
        auth_scheme: scheme(&authorization),
        to: to.clone(),
        text: text.clone(),
        message_id: None,
    };
    if !authorized {
        sim.record(recorded);
        let error = json!({
            "code": 20003, "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    let sid = format!("SM{:032x}", sim.next());
    recorded.message_id = Some(sid.clone());
    sim.record(recorded);
    if !callback.is_empty() {
        tokio::spawn(
            sim.clone()
                .twilio_statuses(callback, sid.clone(), to.clone()),
        );
    }
    let answer = json!({
        "account_sid": sim.twilio.account_sid, "api_version": "2010-04-01", "body": text,
        "date_created": null, "date_sent": null, "date_updated": null,
        "direction": "outbound-api", "error_code": null, "error_message": null,
        "from": from, "messaging_service_sid": null, "num_media": "0", "num_segments": "1",
        "price": null, "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", sim.twilio.account_sid),
    });
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `GET /simulator/requests`.
async fn list_requests(State(sim): State<Arc<Sim>>) -> Response {
    axum::Json(sim.requests_snapshot()).into_response()
}

/// `POST /simulator/whatsapp {"from", "name", "text"}`: a WhatsApp customer writes.
async fn customer_from_curl(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected JSON {\"from\", \"name\", \"text\"}\n",
        )
            .into_response();
    };
    let from = input["from"].as_str().unwrap_or("15551230001");
    let name = input["name"].as_str().unwrap_or("Customer");
    let Some(text) = input["text"].as_str() else {
        return (StatusCode::BAD_REQUEST, "`text` is required\n").into_response();
    };
    match sim.whatsapp_customer_writes(from, name, text).await {
        Ok(answer) => axum::Json(json!({
            "gateway_status": answer.status, "message_id": answer.message_id
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e:#}\n")).into_response(),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The credential scheme of an `Authorization` value, never the credential.
fn scheme(authorization: &str) -> String {
    match authorization.split_once(' ') {
        Some((scheme, _)) => scheme.to_owned(),
        None if authorization.is_empty() => "none".to_owned(),
        None => "unknown".to_owned(),
    }
}

fn unix_seconds() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string()
}

/// Meta's webhook signature: lowercase hex HMAC-SHA256 of the raw body, keyed by the app secret.
pub(crate) fn meta_signature(app_secret: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| anyhow::anyhow!("the app secret is unusable as an HMAC key"))?;
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Twilio's webhook signature: base64 HMAC-SHA1 over the full URL followed by every parameter
/// name and value, sorted by name (then value), with no separators; keyed by the auth token.
pub(crate) fn twilio_signature(
    auth_token: &str,
    url: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut sorted = params.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .map_err(|_| anyhow::anyhow!("the auth token is unusable as an HMAC key"))?;
    mac.update(data.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_published_vectors() {
        // providers.md §2.6 M1 and §1.6 T1.
        assert_eq!(
            meta_signature("TEST_APP_SECRET", b"test").unwrap(),
            "0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"
        );
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            )
            .unwrap(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }
}
