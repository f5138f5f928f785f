//! A plugin built directly against the frozen `switchboard:connector@0.1.0` world
//! (`wit/v0.1.0/connector.wit`), as plugins were before 0.2.0 added the gated `http` and
//! `hmac` imports: the host links both worlds, so it must keep loading and serving this one.
//! `parse-webhook` echoes the body as the reply and logs it; `build-send` posts to
//! `api.example.com`.

wit_bindgen::generate!({ path: "../../wit/v0.1.0/connector.wit", world: "connector" });

use switchboard::connector::log::log;
use switchboard::connector::types::{
    ChannelContext, ConnectorError, HttpRequest, HttpResponse, Level, MediaSource, Method,
    NextMediaStep, ProviderError, WebhookRequest,
};

struct Legacy;

impl exports::switchboard::connector::plugin::Guest for Legacy {
    fn info() -> String {
        r#"{"id":"legacy","version":"0.1.0","display_name":"Legacy 0.1.0 plugin","channels":[],"egress_hosts":[]}"#.into()
    }
    fn webhook_auth(_: ChannelContext) -> Result<String, ConnectorError> {
        Ok(r#"{"scheme":"none"}"#.into())
    }
    fn outbound_auth(_: ChannelContext) -> Result<String, ConnectorError> {
        Ok(r#"{"scheme":"none"}"#.into())
    }
    fn route(_: WebhookRequest) -> Option<String> {
        None
    }
    fn parse_webhook(_: ChannelContext, req: WebhookRequest) -> Result<String, ConnectorError> {
        let body = String::from_utf8_lossy(&req.body).into_owned();
        log(Level::Info, &format!("legacy got {} bytes", body.len()));
        let reply = serde_escape(&body);
        Ok(format!(
            r#"{{"events":[],"reply":{{"status":200,"content_type":"text/plain","body":"{reply}"}}}}"#
        ))
    }
    fn build_send(_: ChannelContext, _: String) -> Result<HttpRequest, ConnectorError> {
        Ok(HttpRequest {
            method: Method::Post,
            url: "https://api.example.com/legacy".into(),
            headers: Vec::new(),
            body: Vec::new(),
            extensions: String::new(),
        })
    }
    fn parse_send_response(
        _: ChannelContext,
        _: String,
        _: HttpResponse,
    ) -> Result<String, ProviderError> {
        Ok(r#"{"provider_message_id":"legacy-1","status":"accepted"}"#.into())
    }
    fn media_step(
        _: ChannelContext,
        _: MediaSource,
        _: Option<HttpResponse>,
    ) -> Result<NextMediaStep, ConnectorError> {
        Ok(NextMediaStep::Done)
    }
}

/// Escapes `s` for a JSON string literal.
fn serde_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

export!(Legacy);
