//! A plugin built against `switchboard:connector@9.0.0`, a world version no host supports.

wit_bindgen::generate!({ path: "wit", world: "connector" });

struct Future;

impl exports::switchboard::connector::plugin::Guest for Future {
    fn info() -> String {
        r#"{"id":"future","version":"0.1.0","display_name":"Future","channels":[],"egress_hosts":[]}"#.into()
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
    fn parse_webhook(_: ChannelContext, _: WebhookRequest) -> Result<String, ConnectorError> {
        Err(ConnectorError::Unsupported("everything".into()))
    }
    fn build_send(_: ChannelContext, _: String) -> Result<HttpRequest, ConnectorError> {
        Err(ConnectorError::Unsupported("everything".into()))
    }
    fn parse_send_response(
        _: ChannelContext,
        _: String,
        _: HttpResponse,
    ) -> Result<String, ProviderError> {
        Ok("{}".into())
    }
    fn media_step(
        _: ChannelContext,
        _: MediaSource,
        _: Option<HttpResponse>,
    ) -> Result<NextMediaStep, ConnectorError> {
        Ok(NextMediaStep::Done)
    }
}

use switchboard::connector::types::{
    ChannelContext, ConnectorError, HttpRequest, HttpResponse, MediaSource, NextMediaStep,
    ProviderError, WebhookRequest,
};

export!(Future);
