//! The scripted conversation. Each step acts (a customer writes, the agent calls the API) and
//! then waits for the evidence that the gateway did its part: a request the provider simulator
//! received, an event on the agent's stream, or an API answer. Steps print one numbered line
//! each: `who → whom  what (evidence)`.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::agent::{AgentApi, EventStream};
use super::simulator::{Api, Recorded, Simulator};
use super::{SMS_CHANNEL, STEP_TIMEOUT};

/// The WhatsApp customer: WhatsApp id (no `+`) and profile name.
const MARIA: (&str, &str) = ("15551230001", "Maria");
/// The SMS customer.
const SMS_CUSTOMER: &str = "+15557770002";

/// Runs the script: a WhatsApp conversation from greeting to transcript, then an SMS one
/// routed by keyword. Returns the ids of the conversations it had.
pub(crate) async fn run(simulator: &Simulator, anna: &AgentApi) -> anyhow::Result<Vec<String>> {
    let mut s = Script {
        simulator,
        anna,
        events: EventStream::default(),
        step: 0,
        seen_requests: 0,
    };
    s.say(
        "anna → gateway",
        "signs in: opens her event stream (GET /api/v1/events), sets herself available (PUT /api/v1/agents/anna/state)",
    );
    s.events = s.check(anna.open_events().await)?;
    s.check(anna.set_available().await)?;
    let whatsapp = s.whatsapp().await?;
    let sms = s.sms().await?;
    Ok(vec![whatsapp, sms])
}

/// The script's progress: the step number, and how much of the simulator's record and the
/// event stream earlier steps consumed.
struct Script<'a> {
    simulator: &'a Simulator,
    anna: &'a AgentApi,
    events: EventStream,
    step: usize,
    seen_requests: usize,
}

impl Script<'_> {
    /// WhatsApp (Meta Cloud API): greeting, menu, routing, offer, accept, replies with
    /// delivery statuses, end, transcript.
    async fn whatsapp(&mut self) -> anyhow::Result<String> {
        let (maria, name) = MARIA;
        self.customer_whatsapp("hi").await?;

        let greeting = self
            .provider_request("the greeting reached the Graph API", |r| {
                r.api == Api::Graph && r.to == maria
            })
            .await?;
        self.say(
            "gateway → customer",
            format!(
                "greeting {:?}  (Graph API send seen at the simulator)",
                greeting.text
            ),
        );
        let menu = self
            .provider_request("the menu reached the Graph API", |r| {
                r.api == Api::Graph && r.to == maria
            })
            .await?;
        self.say(
            "gateway → customer",
            "menu  (Graph API send seen at the simulator):",
        );
        self.detail(&menu.text);
        self.ensure(
            menu.text.contains("2. Support"),
            format!("the menu does not offer \"2. Support\": {:?}", menu.text),
        )?;

        self.customer_whatsapp("2").await?;
        let offer = self
            .event("offer", "anna was offered the conversation", |d| {
                d["queue"] == "support"
            })
            .await?;
        let id = text(&offer["conversation"]).to_owned();
        let conversation = self.check(self.anna.conversation(&id).await)?;
        self.say(
            "gateway",
            format!(
                "routes {id} to queue \"{}\"  (GET /api/v1/conversations/{id})",
                text(&conversation["conversation"]["queue"])
            ),
        );
        self.say(
            "gateway → anna",
            format!("offers {id}  (event `offer` on anna's stream)"),
        );

        self.accept(&id).await?;

        let question = "My order #1042 has not arrived yet.";
        self.customer_whatsapp(question).await?;
        self.event(
            "message",
            "anna's stream showed the customer's message",
            |d| d["direction"] == "in" && d["content"]["text"] == question,
        )
        .await?;
        self.say(
            "gateway → anna",
            format!("{name}'s message  (event `message` on anna's stream)"),
        );

        let reply = "Hi Maria, this is Anna. Your order ships today; tracking follows here.";
        self.check(self.anna.send_text(&id, reply).await)?;
        self.say(
            "anna → customer",
            format!("{reply:?}  (POST /api/v1/conversations/{id}/messages)"),
        );
        let sent = self
            .provider_request("anna's reply reached the Graph API", |r| {
                r.api == Api::Graph && r.text == reply
            })
            .await?;
        self.say(
            "gateway → Meta",
            format!(
                "{}  to={}  auth={} ok  → {}  (seen at the simulator)",
                sent.request_line,
                sent.to,
                sent.auth_scheme,
                sent.message_id.as_deref().unwrap_or("?")
            ),
        );
        self.ensure(
            sent.to == maria,
            format!("the reply went to {} instead of {maria}", sent.to),
        )?;
        let statuses = self.delivered(&id, &sent, "read").await?;
        self.say(
            "Meta → gateway",
            format!(
                "status webhooks (signed X-Hub-Signature-256): {}  (events `status`; GET …/{id} shows read)",
                arrows(&statuses)
            ),
        );

        self.check(self.anna.end(&id, &["Resolved"]).await)?;
        let ended = self
            .event("conversation_ended", "the conversation ended", |d| {
                d["conversation"] == id.as_str()
            })
            .await?;
        self.say(
            "anna → gateway",
            format!(
                "ends {id} with disposition \"Resolved\"  (POST …/{id}/end; event `conversation_ended`, reason {})",
                text(&ended["reason"])
            ),
        );
        let goodbye = self
            .provider_request("the chat-ended message reached the Graph API", |r| {
                r.api == Api::Graph && r.to == maria
            })
            .await?;
        self.say(
            "gateway → customer",
            format!("{:?}  (Graph API send seen at the simulator)", goodbye.text),
        );

        let transcript = self.check(self.anna.transcript(&id).await)?;
        self.say(
            "anna → gateway",
            format!("transcript of {id}  (GET /api/v1/conversations/{id}/transcript):"),
        );
        self.print_transcript(&transcript);
        Ok(id)
    }

    /// SMS (Twilio): a keyword in the first text skips the menu; anna answers by SMS.
    async fn sms(&mut self) -> anyhow::Result<String> {
        let question = "What is the price of the premium plan?";
        let answer = self
            .simulator
            .sms_customer_writes(SMS_CUSTOMER, question)
            .await?;
        self.say(
            "customer → SMS",
            format!(
                "{SMS_CUSTOMER} texts {question:?}  (Twilio webhook, signed X-Twilio-Signature: {})",
                answer.status
            ),
        );
        self.ensure(answer.status == 200, "the gateway refused the webhook")?;
        let greeting = self
            .provider_request("the SMS greeting reached Twilio's API", |r| {
                r.api == Api::Twilio && r.to == SMS_CUSTOMER
            })
            .await?;
        self.say(
            "gateway → customer",
            format!(
                "greeting {:?}  (Twilio Messages API, auth={} ok, seen at the simulator)",
                greeting.text, greeting.auth_scheme
            ),
        );
        let offer = self
            .event(
                "offer",
                "the SMS conversation was offered from `sales`",
                |d| d["queue"] == "sales",
            )
            .await?;
        let id = text(&offer["conversation"]).to_owned();
        let conversation = self.check(self.anna.conversation(&id).await)?;
        self.ensure(
            conversation["conversation"]["channel_id"] == SMS_CHANNEL,
            format!("{id} is not on the SMS channel: {conversation}"),
        )?;
        self.say(
            "gateway → anna",
            format!(
                "keyword \"price\" routes {id} straight to queue \"{}\", no menu; offered to anna  (event `offer`)",
                text(&conversation["conversation"]["queue"])
            ),
        );
        self.accept(&id).await?;

        let reply = "Premium is $20 a month, first month free. Shall I upgrade you?";
        self.check(self.anna.send_text(&id, reply).await)?;
        self.say(
            "anna → customer",
            format!("{reply:?}  (POST /api/v1/conversations/{id}/messages)"),
        );
        let sent = self
            .provider_request("anna's SMS reached Twilio's API", |r| {
                r.api == Api::Twilio && r.text == reply
            })
            .await?;
        self.say(
            "gateway → Twilio",
            format!(
                "{}  to={}  auth={} ok  → {}  (seen at the simulator)",
                sent.request_line,
                sent.to,
                sent.auth_scheme,
                sent.message_id.as_deref().unwrap_or("?")
            ),
        );
        let statuses = self.delivered(&id, &sent, "delivered").await?;
        self.say(
            "Twilio → gateway",
            format!(
                "status callbacks (signed X-Twilio-Signature): {}  (events `status`; GET …/{id} shows delivered)",
                arrows(&statuses)
            ),
        );
        Ok(id)
    }

    /// The customer on WhatsApp writes `message` (a webhook signed as Meta signs).
    async fn customer_whatsapp(&mut self, message: &str) -> anyhow::Result<()> {
        let (wa_id, name) = MARIA;
        let answer = self
            .simulator
            .whatsapp_customer_writes(wa_id, name, message)
            .await?;
        self.say(
            "customer → WhatsApp",
            format!(
                "{name} (+{wa_id}) writes {message:?}  (Meta webhook, signed X-Hub-Signature-256: {})",
                answer.status
            ),
        );
        self.ensure(answer.status == 200, "the gateway refused the webhook")
    }

    /// anna accepts conversation `id`; the API then shows it assigned to her.
    async fn accept(&mut self, id: &str) -> anyhow::Result<()> {
        self.check(self.anna.accept(id).await)?;
        let anna = self.anna;
        self.wait("the conversation is assigned to anna", || async move {
            let found = anna.conversation(id).await?;
            let c = &found["conversation"];
            Ok((c["state"] == "assigned" && c["agent"] == anna.agent.as_str()).then_some(()))
        })
        .await?;
        self.say(
            "anna → gateway",
            format!("accepts {id}  (POST /api/v1/conversations/{id}/accept; now assigned to anna)"),
        );
        Ok(())
    }

    /// Waits until the API shows `sent`'s delivery state at `target`; returns the status words
    /// the event stream carried for it, in order (the stream may have missed some).
    async fn delivered(
        &mut self,
        id: &str,
        sent: &Recorded,
        target: &str,
    ) -> anyhow::Result<Vec<String>> {
        let provider_id = sent.message_id.clone().unwrap_or_default();
        let anna = self.anna;
        let awaited = format!("the API shows the message {target}");
        self.wait(&awaited, || {
            let provider_id = provider_id.clone();
            async move {
                let found = anna.conversation(id).await?;
                let reached = found["messages"].as_array().into_iter().flatten().any(|m| {
                    m["provider_message_id"] == provider_id.as_str()
                        && m["delivery"]["status"] == target
                });
                Ok(reached.then_some(()))
            }
        })
        .await?;
        // The stream's `status` events for it, published after each webhook's commit. They
        // are a live view, not the record: a status that arrived before the send's receipt
        // was recorded is merged then, without an event. So wait only briefly for them.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let words = status_words(&self.events, &provider_id);
            if words.last().is_some_and(|w| w == target) || Instant::now() > deadline {
                return Ok(words);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // --- Evidence ------------------------------------------------------------------------

    /// Waits for the next request at the simulator (after those earlier steps consumed) that
    /// `matches`; fails if its credentials were refused.
    async fn provider_request(
        &mut self,
        awaited: &str,
        matches: impl Fn(&Recorded) -> bool,
    ) -> anyhow::Result<Recorded> {
        let simulator = self.simulator;
        let seen = self.seen_requests;
        let (index, request) = self
            .wait(awaited, || {
                let found = simulator
                    .requests()
                    .into_iter()
                    .enumerate()
                    .skip(seen)
                    .find(|(_, r)| matches(r));
                async move { Ok(found) }
            })
            .await?;
        self.seen_requests = index + 1;
        self.ensure(
            request.authorized,
            format!(
                "the simulator refused the credentials of {}",
                request.request_line
            ),
        )?;
        Ok(request)
    }

    /// Waits for an event named `name` on anna's stream whose data `matches`.
    async fn event(
        &self,
        name: &str,
        awaited: &str,
        matches: impl Fn(&Value) -> bool + Copy,
    ) -> anyhow::Result<Value> {
        let events = self.events.clone();
        let found = self
            .wait(awaited, || {
                let found = events.find(name, matches);
                async move { found }
            })
            .await?;
        Ok(found.data)
    }

    /// Polls `check` until it returns `Some`, for at most [`STEP_TIMEOUT`]. On timeout the
    /// error names the step being worked on and what it waited for.
    async fn wait<T, F, Fut>(&self, awaited: &str, mut check: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut last_error = None;
        loop {
            match check().await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                // A read may fail while the gateway catches up; keep it for the report.
                Err(e) => last_error = Some(e),
            }
            if Instant::now() > deadline {
                let why = last_error
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default();
                bail!(
                    "step {}: no evidence within {} s that {awaited}{why}",
                    self.step + 1,
                    STEP_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // --- Output --------------------------------------------------------------------------

    /// Prints the next step's line.
    fn say(&mut self, who: &str, what: impl std::fmt::Display) {
        self.step += 1;
        println!("{:>3}. {who:<20} {what}", self.step);
    }

    /// Prints indented detail lines under the last step.
    fn detail(&self, text: impl std::fmt::Display) {
        for line in text.to_string().lines() {
            println!("{:>26}{line}", "");
        }
    }

    /// Fails the step being worked on with `what` unless `ok`.
    fn ensure(&self, ok: bool, what: impl std::fmt::Display) -> anyhow::Result<()> {
        if !ok {
            bail!("step {}: {what}", self.step + 1);
        }
        Ok(())
    }

    /// Names the step being worked on in an error.
    fn check<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        result.with_context(|| format!("step {}", self.step + 1))
    }

    /// Prints a transcript's entries (`who: text`) and its CRM copies.
    fn print_transcript(&self, transcript: &Value) {
        for entry in transcript["entries"].as_array().into_iter().flatten() {
            let who = match (text(&entry["from"]["type"]), text(&entry["from"]["id"])) {
                (party, "") => party.to_owned(),
                (party, id) => format!("{party} {id}"),
            };
            let content = match entry["content"]["text"].as_str() {
                Some(text) => text.replace('\n', " / "),
                None => entry["content"].to_string(),
            };
            self.detail(format!("{who:>10}: {content}"));
        }
        let writes = transcript["writes"].as_array().map_or(0, Vec::len);
        self.detail(format!(
            "(state {}, end reason {}; {writes} cop{} written for the CRM)",
            text(&transcript["state"]),
            text(&transcript["end_reason"]),
            if writes == 1 { "y" } else { "ies" }
        ));
    }
}

/// A JSON string's text, or "" when it is not a string.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `sent → delivered → read`, or a note when the stream carried none.
fn arrows(words: &[String]) -> String {
    if words.is_empty() {
        "(no `status` event on the stream)".to_owned()
    } else {
        words.join(" → ")
    }
}

/// The delivery statuses the stream carried for provider message `provider_id`, in order,
/// without repeats.
fn status_words(events: &EventStream, provider_id: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for event in events.received() {
        if event.event == "status" && event.data["provider_message_id"] == provider_id {
            let word = text(&event.data["delivery"]["status"]).to_owned();
            if !word.is_empty() && words.last() != Some(&word) {
                words.push(word);
            }
        }
    }
    words
}
