//! What WhatsApp and Messenger share: they are both Graph API products.
//!
//! * **Settings.** `base_url` (default `https://graph.facebook.com`, tests point it at a mock)
//!   and `graph_version` (default [`DEFAULT_GRAPH_VERSION`]); requests go to
//!   `{base_url}/{graph_version}/{path}`.
//! * **Auth.** Webhooks carry `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, body)>`
//!   and subscribe with the GET `hub.verify_token` handshake; both are checked by the host from
//!   the declared [`WebhookAuth`], never here. Requests carry `Authorization: Bearer
//!   <access_token>`, added by the transport from the declared [`OutboundAuth`].
//! * **Errors.** Graph answers failures with
//!   `{"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}`.
//!   They are classified on `code` (and `error_subcode`) through a per-product table;
//!   codes the table does not know fall back on the HTTP status: 429 is throttled (with
//!   `Retry-After`), 5xx and `is_transient` retryable, 401/403 auth, any other status
//!   permanent. A 5xx is retryable whatever its code (throttling codes stay throttled).
//! * **Skipped items.** One malformed item of a batch must not cost the others, and some
//!   items carry nothing an event can hold (echoes): both connectors list such items in the
//!   outcome's [`skipped`](switchboard_core::WebhookOutcome::skipped) next to the events.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Visitor};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    ChannelContext, ConnectorError, ErrorClass, HttpRequest, HttpResponse, MediaSource, MediaStep,
    Method, ProviderError, SecretName, SkippedItem, Timestamp, WebhookOutcome,
};

/// The Graph API version used when a channel does not set `graph_version`.
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";

/// The Graph API host used when a channel does not set `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";

/// Where a channel's Graph requests go: `{base_url}/{version}/…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Graph<'a> {
    base_url: &'a str,
    version: &'a str,
}

impl<'a> Graph<'a> {
    /// Reads and checks `base_url` and `graph_version`.
    pub(crate) fn from_ctx(ctx: &'a ChannelContext) -> Result<Self, ConnectorError> {
        let base_url = ctx
            .optional_setting("base_url")?
            .unwrap_or(DEFAULT_BASE_URL)
            .trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://"))
            || base_url.contains(['?', '#'])
        {
            return Err(ConnectorError::config(
                "base_url",
                "must be an http(s) URL without query, e.g. https://graph.facebook.com",
            ));
        }
        let version = ctx
            .optional_setting("graph_version")?
            .unwrap_or(DEFAULT_GRAPH_VERSION);
        if !is_graph_version(version) {
            return Err(ConnectorError::config(
                "graph_version",
                "must look like v25.0",
            ));
        }
        Ok(Self { base_url, version })
    }

    /// `{base_url}/{version}/{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        let mut url =
            String::with_capacity(self.base_url.len() + self.version.len() + path.len() + 2);
        url.push_str(self.base_url);
        url.push('/');
        url.push_str(self.version);
        url.push('/');
        url.push_str(path);
        url
    }
}

/// `v<digits>.<digits>`.
fn is_graph_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// A Graph id used as a URL path segment (phone number id, page id, media id): digits and
/// letters only, so a setting can never rewrite the request path.
pub(crate) fn path_id<'a>(field: &str, id: &'a str) -> Result<&'a str, ConnectorError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(ConnectorError::config(
            field,
            "must be a Graph id (letters and digits)",
        ))
    }
}

/// The webhook scheme of every Meta channel: `X-Hub-Signature-256` over the raw body with the
/// app secret, and the GET handshake with the verify token.
pub(crate) fn webhook_auth() -> WebhookAuth {
    WebhookAuth::HmacSha256Header {
        header: "X-Hub-Signature-256".into(),
        prefix: "sha256=".into(),
        secret: SecretName::new("app_secret"),
        verify_token: Some(SecretName::new("verify_token")),
    }
}

/// `Authorization: Bearer <access_token>`.
pub(crate) fn outbound_auth() -> OutboundAuth {
    OutboundAuth::Bearer {
        token: SecretName::new("access_token"),
    }
}

/// Refuses what is not a webhook delivery: the GET handshake is answered by the host's
/// webhook auth before a connector is asked, and Meta only ever POSTs deliveries.
pub(crate) fn require_post(method: Method) -> Result<(), ConnectorError> {
    match method {
        Method::Post => Ok(()),
        Method::Get => Err(ConnectorError::unsupported(
            "GET is the subscription handshake, answered by the host's webhook auth",
        )),
        other => Err(ConnectorError::unsupported(format!(
            "{other} webhooks (Meta only POSTs deliveries)"
        ))),
    }
}

/// The outcome a parser fills in, item by item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WebhookReport {
    /// The events, the reply and the skipped items.
    pub(crate) outcome: WebhookOutcome,
}

impl WebhookReport {
    pub(crate) fn new() -> Self {
        Self {
            outcome: WebhookOutcome::ok(Vec::new()),
        }
    }

    pub(crate) fn skip(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.outcome.skipped.push(SkippedItem {
            path: path.into(),
            reason: reason.into(),
        });
    }
}

/// A JSON parse error as a short reason (serde_json's message names line and column).
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    e.to_string()
}

/// A Unix time in seconds or milliseconds, as a JSON number or a numeric string. Meta sends
/// seconds as strings on WhatsApp, milliseconds as numbers on Messenger, and occasionally the
/// other; anything unreadable is `None` rather than a failure of the item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UnixTime(pub(crate) Option<i64>);

impl UnixTime {
    /// Values at or above 10^12 are milliseconds (year 33658 in seconds), below are seconds.
    pub(crate) fn timestamp(self) -> Option<Timestamp> {
        let value = self.0?;
        Some(if value.unsigned_abs() >= 1_000_000_000_000 {
            Timestamp::from_unix_millis(value)
        } else {
            Timestamp::from_unix_seconds(value)
        })
    }
}

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnixTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Unix time")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UnixTime, E> {
                Ok(UnixTime(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UnixTime, E> {
                Ok(UnixTime(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<UnixTime, E> {
                // Saturating float-to-int conversion; NaN becomes 0, which is still a time.
                Ok(UnixTime(v.is_finite().then_some(v as i64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UnixTime, E> {
                Ok(UnixTime(v.trim().parse().ok()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<UnixTime, E> {
                Ok(UnixTime(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<UnixTime, E> {
                Ok(UnixTime(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The first element of a JSON array, the rest skipped without being decoded: what `route()`
/// needs from `entry[0]` and `changes[0]`.
pub(crate) struct First<T>(pub(crate) Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// The JSON type a lenient value had instead of the expected one, e.g. `"a number"`.
pub(crate) type WrongType = &'static str;

/// Consumes whatever the visitor was given and names its JSON type: how the lenient wrappers
/// below turn a value of the wrong type into a per-item error instead of failing the body.
macro_rules! wrong_type_visits {
    ($value:ty, $wrap:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok(($wrap)("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok(($wrap)("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok(($wrap)("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok(($wrap)("a number"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok(($wrap)("null"))
        }
    };
}

/// Drains a JSON array that has the wrong place in the tree.
fn drain_seq<'de, A: de::SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<de::IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Drains a JSON object that has the wrong place in the tree.
fn drain_map<'de, A: de::MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map
        .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
        .is_some()
    {}
    Ok(())
}

/// A JSON object decoded as `T`, or the type the value had instead. The body is decoded in one
/// pass, and one entry of the wrong type costs only itself. `T`'s own fields must be lenient
/// too for that to hold below it.
pub(crate) struct Obj<T>(pub(crate) Result<T, WrongType>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Ok(t)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                drain_seq(seq)?;
                Ok(Obj(Err("an array")))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(Err("a string")))
            }
            wrong_type_visits!(Obj<T>, |t| Obj(Err(t)));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON array decoded as `Vec<T>`, or the type the value had instead.
pub(crate) struct Arr<T>(pub(crate) Result<Vec<T>, WrongType>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Arr<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Arr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Arr<T>, A::Error> {
                // Webhook arrays are short: start at 4 rather than growing from 1.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Arr(Ok(items)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Arr<T>, A::Error> {
                drain_map(map)?;
                Ok(Arr(Err("an object")))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Arr<T>, E> {
                Ok(Arr(Err("a string")))
            }
            wrong_type_visits!(Arr<T>, |t| Arr(Err(t)));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON string, borrowed when it has no escapes, or the type the value had instead.
pub(crate) struct Str<'a>(pub(crate) Result<Cow<'a, str>, WrongType>);

impl<'a> Str<'a> {
    /// The string when it is one and not empty.
    pub(crate) fn non_empty(&self) -> Option<&str> {
        self.0.as_deref().ok().filter(|s| !s.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Ok(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Ok(Cow::Owned(v.to_owned()))))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Str<'de>, A::Error> {
                drain_seq(seq)?;
                Ok(Str(Err("an array")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Str<'de>, A::Error> {
                drain_map(map)?;
                Ok(Str(Err("an object")))
            }
            wrong_type_visits!(Str<'de>, |t| Str(Err(t)));
        }
        d.deserialize_any(V)
    }
}

/// Whether a WhatsApp user id is a `wa_id` (digits) rather than a business-scoped user id
/// (`US.13491208655302741918`).
pub(crate) fn is_wa_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// A Graph error body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphError<'a> {
    #[serde(default, borrow)]
    pub(crate) message: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) code: Option<i64>,
    #[serde(default)]
    pub(crate) error_subcode: Option<i64>,
    #[serde(default, borrow)]
    pub(crate) error_user_msg: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) error_data: Option<ErrorData<'a>>,
    #[serde(default)]
    pub(crate) is_transient: Option<bool>,
    #[serde(default, borrow)]
    pub(crate) fbtrace_id: Option<Cow<'a, str>>,
    /// WhatsApp status and message errors carry `title` instead of `message`.
    #[serde(default, borrow)]
    pub(crate) title: Option<Cow<'a, str>>,
}

/// `error_data`: WhatsApp puts the useful sentence in `details`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorData<'a> {
    #[serde(default, borrow)]
    pub(crate) details: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorEnvelope<'a> {
    #[serde(borrow)]
    error: GraphError<'a>,
}

/// A per-product table from Graph `code` and `error_subcode` to a class; `None` for codes it
/// does not know.
pub(crate) type Classify = fn(i64, Option<i64>) -> Option<ErrorClass>;

impl GraphError<'_> {
    /// The message for humans: the error's message or title, its details when they add
    /// something, the subcode and Meta's trace id for support requests.
    pub(crate) fn describe(&self) -> String {
        let main = self
            .message
            .as_deref()
            .or(self.title.as_deref())
            .unwrap_or("Graph API error");
        let mut text = main.to_owned();
        let details = self
            .error_data
            .as_ref()
            .and_then(|d| d.details.as_deref())
            .or(self.error_user_msg.as_deref());
        if let Some(details) = details.filter(|d| !d.is_empty() && *d != main) {
            text.push_str(": ");
            text.push_str(details);
        }
        if let Some(sub) = self.error_subcode {
            text.push_str(&format!(" (subcode {sub})"));
        }
        if let Some(trace) = &self.fbtrace_id {
            text.push_str(&format!(" [fbtrace_id {trace}]"));
        }
        text
    }

    /// This error as a [`ProviderError`]; `fallback` classifies codes the table does not know.
    pub(crate) fn to_provider_error(
        &self,
        classify: Classify,
        fallback: ErrorClass,
    ) -> ProviderError {
        let class = self
            .code
            .and_then(|code| classify(code, self.error_subcode))
            .unwrap_or(fallback);
        let mut e = ProviderError::new(class, self.describe());
        if let Some(code) = self.code {
            e = e.with_code(code.to_string());
        }
        e
    }
}

/// Classifies a failed Graph response (any non-2xx, or a 2xx carrying an `error` object).
pub(crate) fn provider_error(resp: &HttpResponse, classify: Classify) -> ProviderError {
    let by_status = match resp.status {
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Retryable,
        401 | 403 => ErrorClass::Auth,
        _ => ErrorClass::Permanent,
    };
    let mut e = match serde_json::from_slice::<ErrorEnvelope<'_>>(&resp.body) {
        Ok(envelope) => {
            let fallback = if envelope.error.is_transient == Some(true) {
                ErrorClass::Retryable
            } else {
                by_status
            };
            envelope.error.to_provider_error(classify, fallback)
        }
        Err(_) => ProviderError::new(
            by_status,
            format!("HTTP {} without a Graph error body", resp.status),
        ),
    };
    // A server error is worth retrying whatever its code says, unless it says slow down.
    if resp.status >= 500 && e.class != ErrorClass::Throttled {
        e.class = ErrorClass::Retryable;
    }
    if e.class.is_retryable()
        && let Some(wait) = resp.retry_after()
    {
        e = e.with_retry_after(wait);
    }
    e
}

/// A receipt-less success: the body of a 2xx did not name the new message. The provider may
/// have accepted it, so this is permanent (a retry could send it twice).
pub(crate) fn missing_id(resp: &HttpResponse, what: &str) -> ProviderError {
    ProviderError::new(
        ErrorClass::Permanent,
        format!(
            "HTTP {} answer without {what}; the message may have been sent, not retrying",
            resp.status
        ),
    )
}

/// Whether a 2xx body is in fact a Graph error (`{"error": {…}}`).
pub(crate) fn has_error_object(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(default, borrow)]
        error: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_slice::<Probe<'_>>(body).is_ok_and(|p| p.error.is_some())
}

/// The answer to `GET /{media-id}`.
#[derive(Deserialize)]
struct MediaInfo<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

/// Graph's two-step media download: `GET {base}/{version}/{media_id}` answers JSON whose `url`
/// is then fetched (the transport adds the bearer token to both). URL sources are fetched
/// directly.
///
/// A step is recognized by its response: the lookup answers JSON with a `url` and the media's
/// own `id`; anything else is the media itself. A failed lookup (an expired id answers 400 or
/// 404) is reported as [`ConnectorError::Malformed`] with Graph's message.
pub(crate) fn media_step(
    ctx: &ChannelContext,
    source: &MediaSource,
    previous: Option<&HttpResponse>,
) -> Result<MediaStep, ConnectorError> {
    let media_id = match source {
        MediaSource::Url(url) => {
            return Ok(match previous {
                None => MediaStep::Fetch(HttpRequest::new(Method::Get, url)),
                Some(_) => MediaStep::Done,
            });
        }
        MediaSource::ProviderId(id) => path_id("media id", id)
            .map_err(|_| ConnectorError::malformed("a media id is letters and digits"))?,
    };
    let Some(previous) = previous else {
        let graph = Graph::from_ctx(ctx)?;
        return Ok(MediaStep::Fetch(HttpRequest::new(
            Method::Get,
            graph.url(media_id),
        )));
    };
    if !previous.is_success() {
        let e = provider_error(previous, |_, _| None);
        return Err(ConnectorError::malformed(format!(
            "media lookup answered HTTP {}: {}",
            previous.status, e.message
        )));
    }
    match serde_json::from_slice::<MediaInfo<'_>>(&previous.body) {
        Ok(info) if info.id.as_deref() == Some(media_id) => {
            if !(info.url.starts_with("https://") || info.url.starts_with("http://")) {
                return Err(ConnectorError::malformed(
                    "media lookup answered a url that is not http(s)",
                ));
            }
            Ok(MediaStep::Fetch(HttpRequest::new(
                Method::Get,
                info.url.into_owned(),
            )))
        }
        _ => Ok(MediaStep::Done),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn settings_default_and_validate() {
        let ctx = ChannelContext::new("c");
        let g = Graph::from_ctx(&ctx).unwrap();
        assert_eq!(
            g.url("123/messages"),
            "https://graph.facebook.com/v25.0/123/messages"
        );
        let ctx = ChannelContext::new("c")
            .with_setting("base_url", "http://127.0.0.1:9999/")
            .with_setting("graph_version", "v23.0");
        assert_eq!(
            Graph::from_ctx(&ctx).unwrap().url("x"),
            "http://127.0.0.1:9999/v23.0/x"
        );
        for bad in ["23.0", "v23", "vx.0", "v23.0/../"] {
            let ctx = ChannelContext::new("c").with_setting("graph_version", bad);
            assert!(Graph::from_ctx(&ctx).is_err(), "{bad}");
        }
        let ctx = ChannelContext::new("c").with_setting("base_url", "ftp://x");
        assert!(Graph::from_ctx(&ctx).is_err());
        assert!(path_id("phone_number_id", "12/../me").is_err());
    }

    #[test]
    fn unix_time_reads_seconds_millis_and_strings() {
        let t: UnixTime = serde_json::from_str("\"1697043223\"").unwrap();
        assert_eq!(t.timestamp().unwrap().unix_seconds(), 1_697_043_223);
        let t: UnixTime = serde_json::from_str("1459991487970").unwrap();
        assert_eq!(t.timestamp().unwrap().unix_millis(), 1_459_991_487_970);
        let t: UnixTime = serde_json::from_str("\"soon\"").unwrap();
        assert_eq!(t.timestamp(), None);
        let t: UnixTime = serde_json::from_str("1e300").unwrap();
        assert!(t.timestamp().is_some());
    }

    #[test]
    fn unknown_codes_fall_back_on_status_and_keep_retry_after() {
        let mut resp = HttpResponse::new(429, "{}");
        resp.headers.push(("Retry-After".into(), "7".into()));
        let e = provider_error(&resp, |_, _| None);
        assert_eq!(e.class, ErrorClass::Throttled);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        let e = provider_error(&HttpResponse::new(503, "<html>"), |_, _| None);
        assert_eq!(e.class, ErrorClass::Retryable);
        let body = r#"{"error":{"message":"m","code":1,"is_transient":true}}"#;
        let e = provider_error(&HttpResponse::new(400, body), |_, _| None);
        assert_eq!(e.class, ErrorClass::Retryable);
        assert_eq!(e.provider_code.as_deref(), Some("1"));
    }
}
