//! Plain HTTP values that cross the connector boundary: requests a connector builds, responses
//! it parses, and webhooks it receives. No I/O here: the transport and the server do that.
//!
//! Requests, responses and webhooks share one JSON shape, which is also the fixture and
//! `switchboard replay` format:
//!
//! ```json
//! {"method": "POST", "url": "https://host/path?query", "headers": [["Name", "value"]], "body": "text"}
//! ```
//!
//! with `"body_base64"` instead of `"body"` for bytes that are not UTF-8, and headers as a list
//! of pairs because names repeat.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A header: name and value. Names compare case-insensitively.
pub type Header = (String, String);

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Parses a method name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A webhook request as the provider sent it: the raw bytes signatures are computed over.
///
/// `url` is the full URL the provider called, scheme and host included: behind a proxy the
/// server rebuilds it from the channel's public base URL, because signatures (Twilio's) cover it.
///
/// ```
/// use switchboard_core::{Method, WebhookRequest};
/// let req = WebhookRequest::new(Method::Post, "https://example.com/hook?x=1")
///     .with_header("Content-Type", "application/x-www-form-urlencoded")
///     .with_body(b"Body=hi&From=%2B1555".to_vec());
/// assert_eq!(req.header("content-type"), Some("application/x-www-form-urlencoded"));
/// assert_eq!(req.form_pairs()[1], ("From".to_string(), "+1555".to_string()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The method.
    pub method: Method,
    /// The full URL the provider called, query included.
    pub url: String,
    /// Headers in the order received.
    pub headers: Vec<Header>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The query parameters of `url`, decoded, in order; empty when the URL has no query or
    /// does not parse.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        match self.url.split_once('?') {
            Some((_, query)) => {
                let query = query.split('#').next().unwrap_or_default();
                decode_form(query.as_bytes())
            }
            None => Vec::new(),
        }
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs, in order, duplicates
    /// kept. Invalid UTF-8 is replaced, never a panic.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        decode_form(&self.body)
    }

    /// The path of `url` (no query), or `None` when the URL does not parse.
    pub fn path(&self) -> Option<String> {
        url::Url::parse(&self.url).ok().map(|u| u.path().to_owned())
    }
}

fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl fmt::Debug for WebhookRequest {
    /// Shows the method, URL, header names and body size: header values may carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &HeaderNames(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

struct HeaderNames<'a>(&'a [Header]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// A request a connector wants sent. It holds no secrets: the transport adds credentials from
/// the channel's outbound auth scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// Headers (content type and the like; never credentials).
    pub headers: Vec<Header>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sets a JSON body and its content type.
    pub fn with_json(mut self, value: &serde_json::Value) -> Self {
        self.headers
            .push(("Content-Type".into(), "application/json".into()));
        self.body = value.to_string().into_bytes();
        self
    }

    /// Sets a form body (`application/x-www-form-urlencoded`) from pairs, in order.
    pub fn with_form<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        self.body = body.into_bytes();
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &HeaderNames(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A provider's answer to an [`HttpRequest`].
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<Header>,
    /// The body (capped in size by the transport).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status and body and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `Retry-After` header as a whole number of seconds (HTTP dates are not used by the
    /// providers we talk to and are ignored).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let secs: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(std::time::Duration::from_secs(secs))
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &HeaderNames(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What the server answers the provider once the webhook's events are durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReply {
    /// The status code.
    pub status: u16,
    /// The content type of `body`, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body, e.g. Meta's `hub.challenge` or Twilio's empty TwiML.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

impl WebhookReply {
    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        Self {
            status: 200,
            content_type: None,
            body: String::new(),
        }
    }

    /// `200 OK` with a body of `content_type`.
    pub fn with_body(content_type: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type: Some(content_type.into()),
            body: body.into(),
        }
    }
}

/// The shared wire shape of the three message types above.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default)]
    headers: Cow<'a, [Header]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

impl<'a> Wire<'a> {
    fn new(headers: &'a [Header], body: &'a [u8]) -> Self {
        let (text, b64) = match std::str::from_utf8(body) {
            Ok(text) => (Some(Cow::Borrowed(text)), None),
            Err(_) => (None, Some(BASE64.encode(body))),
        };
        Self {
            method: None,
            url: None,
            status: None,
            headers: Cow::Borrowed(headers),
            body: text,
            body_base64: b64,
        }
    }

    fn body_bytes<E: serde::de::Error>(&self) -> Result<Vec<u8>, E> {
        match (&self.body, &self.body_base64) {
            (Some(_), Some(_)) => Err(E::custom("give either `body` or `body_base64`, not both")),
            (Some(text), None) => Ok(text.as_bytes().to_vec()),
            (None, Some(b64)) => BASE64
                .decode(b64)
                .map_err(|e| E::custom(format!("`body_base64` is not base64: {e}"))),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn request_parts<E: serde::de::Error>(
        self,
    ) -> Result<(Method, String, Vec<Header>, Vec<u8>), E> {
        let body = self.body_bytes()?;
        let method = self.method.ok_or_else(|| E::missing_field("method"))?;
        let url = self
            .url
            .ok_or_else(|| E::missing_field("url"))?
            .into_owned();
        Ok((method, url, self.headers.into_owned(), body))
    }
}

macro_rules! request_serde {
    ($ty:ident) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut wire = Wire::new(&self.headers, &self.body);
                wire.method = Some(self.method);
                wire.url = Some(Cow::Borrowed(&self.url));
                wire.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let (method, url, headers, body) =
                    Wire::deserialize(deserializer)?.request_parts()?;
                Ok($ty {
                    method,
                    url,
                    headers,
                    body,
                })
            }
        }
    };
}

request_serde!(WebhookRequest);
request_serde!(HttpRequest);

impl Serialize for HttpResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut wire = Wire::new(&self.headers, &self.body);
        wire.status = Some(self.status);
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HttpResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let body = wire.body_bytes()?;
        let status = wire
            .status
            .ok_or_else(|| serde::de::Error::missing_field("status"))?;
        Ok(HttpResponse {
            status,
            headers: wire.headers.into_owned(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_json_uses_text_body_when_utf8_and_base64_otherwise() {
        let req = WebhookRequest::new(Method::Post, "https://h/p?q=1")
            .with_header("X-A", "1")
            .with_header("X-A", "2")
            .with_body(b"hello".to_vec());
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({"method": "POST", "url": "https://h/p?q=1", "headers": [["X-A", "1"], ["X-A", "2"]], "body": "hello"})
        );
        assert_eq!(serde_json::from_value::<WebhookRequest>(v).unwrap(), req);

        let binary = req.with_body(vec![0xff, 0x00, 0x80]);
        let v = serde_json::to_value(&binary).unwrap();
        assert_eq!(v["body_base64"], "/wCA");
        assert_eq!(serde_json::from_value::<WebhookRequest>(v).unwrap(), binary);
    }

    #[test]
    fn request_json_errors_are_typed() {
        let both = json!({"method": "GET", "url": "u", "body": "a", "body_base64": "YQ=="});
        assert!(serde_json::from_value::<WebhookRequest>(both).is_err());
        let bad_b64 = json!({"method": "GET", "url": "u", "body_base64": "***"});
        assert!(serde_json::from_value::<WebhookRequest>(bad_b64).is_err());
        let no_url = json!({"method": "GET"});
        assert!(serde_json::from_value::<WebhookRequest>(no_url).is_err());
        let bad_method = json!({"method": "BREW", "url": "u"});
        assert!(serde_json::from_value::<WebhookRequest>(bad_method).is_err());
    }

    #[test]
    fn debug_output_hides_header_values() {
        let req = WebhookRequest::new(Method::Get, "https://h/")
            .with_header("Authorization", "Basic c2VjcmV0OnNlY3JldA==");
        let shown = format!("{req:?}");
        assert!(shown.contains("Authorization"));
        assert!(!shown.contains("c2VjcmV0"));
    }

    #[test]
    fn form_and_query_pairs_keep_duplicates_and_survive_bad_bytes() {
        let req = WebhookRequest::new(Method::Post, "https://h/p?a=1&a=2#frag")
            .with_body(vec![b'k', b'=', 0xff, b'&', b'k', b'=', b'v']);
        assert_eq!(
            req.query_pairs(),
            vec![("a".into(), "1".into()), ("a".into(), "2".into())]
        );
        let form = req.form_pairs();
        assert_eq!(form.len(), 2);
        assert_eq!(form[1], ("k".into(), "v".into()));
    }
}
