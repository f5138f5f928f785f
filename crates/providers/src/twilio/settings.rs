//! The channel settings of a Twilio channel, read and checked from a [`ChannelContext`] (the
//! table is in the module docs of `twilio`).
//!
//! Secrets, by name: `auth_token` (webhook signatures, always; sending without an API key) and
//! `api_key_secret` (sending with `api_key_sid`).

use switchboard_core::{ChannelContext, ConnectorError};

/// The secret holding the account's auth token.
pub(super) const AUTH_TOKEN: &str = "auth_token";
/// The secret holding the API key's secret.
pub(super) const API_KEY_SECRET: &str = "api_key_secret";
/// The production API base.
pub(super) const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// What a send needs.
#[derive(Debug)]
pub(super) struct SendSettings<'a> {
    /// `AC…`.
    pub(super) account_sid: &'a str,
    /// The default sender.
    pub(super) from: Option<&'a str>,
    /// The WhatsApp sender, when it differs from `from`.
    pub(super) whatsapp_from: Option<&'a str>,
    /// `MG…`.
    pub(super) messaging_service_sid: Option<&'a str>,
    /// `StatusCallback`.
    pub(super) status_callback_url: Option<&'a str>,
    /// `ValidityPeriod`, seconds.
    pub(super) validity_period: Option<u32>,
    /// The API base, without a trailing slash.
    pub(super) base_url: String,
}

impl<'a> SendSettings<'a> {
    /// Reads and checks every setting a send uses.
    pub(super) fn read(ctx: &'a ChannelContext) -> Result<Self, ConnectorError> {
        let account_sid = account_sid(ctx)?;
        let from = ctx.optional_setting("from")?;
        let whatsapp_from = ctx.optional_setting("whatsapp_from")?;
        let messaging_service_sid = ctx.optional_setting("messaging_service_sid")?;
        if let Some(sid) = messaging_service_sid {
            check_sid("messaging_service_sid", sid, "MG")?;
        }
        if from.is_none() && whatsapp_from.is_none() && messaging_service_sid.is_none() {
            return Err(ConnectorError::config(
                "from",
                "is required unless `messaging_service_sid` is set",
            ));
        }
        let status_callback_url = ctx.optional_setting("status_callback_url")?;
        if let Some(url) = status_callback_url {
            check_http_url("status_callback_url", url)?;
        }
        Ok(Self {
            account_sid,
            from,
            whatsapp_from,
            messaging_service_sid,
            status_callback_url,
            validity_period: validity_period(ctx)?,
            base_url: base_url(ctx)?,
        })
    }
}

/// The account SID, checked.
pub(super) fn account_sid(ctx: &ChannelContext) -> Result<&str, ConnectorError> {
    let sid = ctx.setting("account_sid")?;
    check_sid("account_sid", sid, "AC")?;
    Ok(sid)
}

/// The API key SID, checked, when set.
pub(super) fn api_key_sid(ctx: &ChannelContext) -> Result<Option<&str>, ConnectorError> {
    let sid = ctx.optional_setting("api_key_sid")?;
    if let Some(sid) = sid {
        check_sid("api_key_sid", sid, "SK")?;
    }
    Ok(sid)
}

/// Whether STOP/START keywords on WhatsApp emit consent events (default: no).
pub(super) fn whatsapp_opt_out_keywords(ctx: &ChannelContext) -> Result<bool, ConnectorError> {
    const FIELD: &str = "whatsapp_opt_out_keywords";
    match ctx.settings.get(FIELD) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(serde_json::Value::String(s)) if s == "true" => Ok(true),
        Some(serde_json::Value::String(s)) if s == "false" => Ok(false),
        Some(_) => Err(ConnectorError::config(FIELD, "must be true or false")),
    }
}

/// The API base URL: `base_url`, or the `region`/`edge` host, or production.
pub(super) fn base_url(ctx: &ChannelContext) -> Result<String, ConnectorError> {
    if let Some(url) = ctx.optional_setting("base_url")? {
        check_http_url("base_url", url)?;
        if url.contains(['?', '#']) {
            return Err(ConnectorError::config(
                "base_url",
                "must not have a query or fragment",
            ));
        }
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let region = ctx.optional_setting("region")?;
    let edge = ctx.optional_setting("edge")?;
    for (field, value) in [("region", region), ("edge", edge)] {
        if let Some(value) = value {
            let valid = value.len() <= 32
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(ConnectorError::config(
                    field,
                    "must be lowercase letters, digits and dashes (e.g. `ie1`, `dublin`)",
                ));
            }
        }
    }
    Ok(match (edge, region) {
        (Some(edge), region) => {
            format!("https://api.{edge}.{}.twilio.com", region.unwrap_or("us1"))
        }
        (None, Some(region)) => format!("https://api.{region}.twilio.com"),
        (None, None) => DEFAULT_BASE_URL.to_owned(),
    })
}

fn validity_period(ctx: &ChannelContext) -> Result<Option<u32>, ConnectorError> {
    const FIELD: &str = "validity_period";
    let value = match ctx.settings.get(FIELD) {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(secs @ 1..=36_000) => Ok(u32::try_from(secs).ok()),
        _ => Err(ConnectorError::config(
            FIELD,
            "must be a whole number of seconds from 1 to 36000",
        )),
    }
}

/// A Twilio SID: a two-letter prefix and 32 hexadecimal digits.
pub(super) fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

fn check_sid(field: &str, value: &str, prefix: &str) -> Result<(), ConnectorError> {
    if is_sid(value, prefix) {
        Ok(())
    } else {
        Err(ConnectorError::config(
            field,
            format!("must be `{prefix}` followed by 32 hexadecimal digits"),
        ))
    }
}

fn check_http_url(field: &str, value: &str) -> Result<(), ConnectorError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => Ok(()),
        Ok(_) => Err(ConnectorError::config(field, "must be an http(s) URL")),
        Err(e) => Err(ConnectorError::config(field, format!("is not a URL: {e}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    const AC: &str = "AC00000000000000000000000000000000";

    #[test]
    fn config_errors_name_the_field() {
        let field = |ctx: &ChannelContext| match SendSettings::read(ctx) {
            Err(ConnectorError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(&ChannelContext::new("c")), "account_sid");
        let ctx = ChannelContext::new("c").with_setting("account_sid", "AC123");
        assert_eq!(field(&ctx), "account_sid");
        let ctx = ChannelContext::new("c").with_setting("account_sid", AC);
        assert_eq!(field(&ctx), "from");
        let ctx = ctx.with_setting("messaging_service_sid", "MGnope");
        assert_eq!(field(&ctx), "messaging_service_sid");
        let ctx = ChannelContext::new("c")
            .with_setting("account_sid", AC)
            .with_setting("from", "+1")
            .with_setting("base_url", "ftp://x");
        assert_eq!(field(&ctx), "base_url");
        let ctx = ChannelContext::new("c")
            .with_setting("account_sid", AC)
            .with_setting("from", "+1")
            .with_setting("validity_period", "0");
        assert_eq!(field(&ctx), "validity_period");
    }

    #[test]
    fn base_url_from_region_and_edge() {
        let ctx = ChannelContext::new("c");
        assert_eq!(base_url(&ctx).unwrap(), DEFAULT_BASE_URL);
        let ctx = ChannelContext::new("c").with_setting("edge", "dublin");
        assert_eq!(base_url(&ctx).unwrap(), "https://api.dublin.us1.twilio.com");
        let ctx = ctx.with_setting("region", "ie1");
        assert_eq!(base_url(&ctx).unwrap(), "https://api.dublin.ie1.twilio.com");
        let ctx = ChannelContext::new("c").with_setting("base_url", "http://127.0.0.1:8080/");
        assert_eq!(base_url(&ctx).unwrap(), "http://127.0.0.1:8080");
        let ctx = ChannelContext::new("c").with_setting("region", "../evil");
        assert!(base_url(&ctx).is_err());
    }
}
