//! A webhook's parameters, from a form body, a GET query or a JSON body, duplicates kept.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_core::{ConnectorError, Extensions, Method, WebhookRequest};

/// The parameters of one webhook, in the order received.
#[derive(Debug, Default)]
pub(super) struct Params {
    /// Name/value pairs; a repeated name appears once per value.
    pairs: Vec<(String, String)>,
    /// JSON-body members that are not scalars (objects, arrays of objects), kept as they are.
    structured: Vec<(String, Value)>,
}

impl Params {
    /// Reads the parameters of `req`: the query of a GET, the JSON object of a JSON body
    /// (`Content-Type: …json`, or a `bodySHA256` query parameter when there is no content
    /// type), the form pairs of anything else. Invalid UTF-8 in a form is replaced, never an
    /// error; a JSON body that is not one object is [`ConnectorError::Malformed`].
    pub(super) fn from_request(req: &WebhookRequest) -> Result<Self, ConnectorError> {
        if req.method == Method::Get {
            return Ok(Self {
                pairs: req.query_pairs(),
                structured: Vec::new(),
            });
        }
        let is_json = match req.header("content-type") {
            Some(ct) => ct.to_ascii_lowercase().contains("json"),
            None => req.query_pairs().iter().any(|(k, _)| k == "bodySHA256"),
        };
        if is_json {
            Self::from_json(&req.body)
        } else {
            Ok(Self {
                pairs: req.form_pairs(),
                structured: Vec::new(),
            })
        }
    }

    fn from_json(body: &[u8]) -> Result<Self, ConnectorError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ConnectorError::malformed(format!("JSON body: {e}")))?;
        let Value::Object(members) = value else {
            return Err(ConnectorError::malformed("JSON body is not an object"));
        };
        let mut params = Self::default();
        for (name, value) in members {
            match value {
                Value::Array(items) if items.iter().all(is_scalar) => {
                    for item in items {
                        params.pairs.push((name.clone(), scalar_text(item)));
                    }
                }
                value if is_scalar(&value) => params.pairs.push((name, scalar_text(value))),
                value => params.structured.push((name, value)),
            }
        }
        Ok(params)
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` when it is not blank.
    pub(super) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The first non-blank value among `names`.
    pub(super) fn first_of(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.non_empty(n))
    }

    /// All pairs, in order.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The parameters not `consumed` by the normalized fields, as extensions: one value as a
    /// string, repeated values as an array of strings (a consumed name that was repeated is kept
    /// too, so no value is lost), JSON members that are not scalars as they are.
    pub(super) fn extensions(&self, consumed: impl Fn(&str) -> bool) -> Extensions {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (name, _) in &self.pairs {
            *counts.entry(name.as_str()).or_default() += 1;
        }
        let mut out = Extensions::new();
        for (name, value) in &self.pairs {
            if consumed(name) && counts.get(name.as_str()).is_some_and(|&n| n == 1) {
                continue;
            }
            match out.get_mut(name.as_str()) {
                None => {
                    out.insert(name.clone(), Value::String(value.clone()));
                }
                Some(Value::Array(values)) => values.push(Value::String(value.clone())),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, Value::String(value.clone())]);
                }
            }
        }
        for (name, value) in &self.structured {
            out.entry(name.clone()).or_insert_with(|| value.clone());
        }
        out
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

fn scalar_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_kept_as_arrays() {
        let req = WebhookRequest::new(Method::Post, "https://h/")
            .with_body("Body=a&Body=b&X=1&X=2&X=3&Y=".as_bytes().to_vec());
        let params = Params::from_request(&req).unwrap();
        assert_eq!(params.get("Body"), Some("a"));
        assert_eq!(params.non_empty("Y"), None);
        let ext = params.extensions(|n| n == "Body" || n == "Y");
        assert_eq!(ext["Body"], json!(["a", "b"]));
        assert_eq!(ext["X"], json!(["1", "2", "3"]));
        assert!(!ext.contains_key("Y"));
    }

    #[test]
    fn json_bodies_flatten_scalars_and_keep_structures() {
        let req = WebhookRequest::new(Method::Post, "https://h/?bodySHA256=00").with_body(
            br#"{"MessageSid":"SM1","NumMedia":0,"Flag":true,"Tags":["a","b"],"Meta":{"k":1}}"#
                .to_vec(),
        );
        let params = Params::from_request(&req).unwrap();
        assert_eq!(params.get("NumMedia"), Some("0"));
        assert_eq!(params.get("Flag"), Some("true"));
        let ext = params.extensions(|n| n == "MessageSid");
        assert_eq!(ext["Tags"], json!(["a", "b"]));
        assert_eq!(ext["Meta"], json!({"k": 1}));
        let deep = WebhookRequest::new(Method::Post, "https://h/")
            .with_header("Content-Type", "application/json")
            .with_body("[".repeat(10_000).into_bytes());
        assert!(matches!(
            Params::from_request(&deep),
            Err(ConnectorError::Malformed { .. })
        ));
    }

    #[test]
    fn get_reads_the_query() {
        let req = WebhookRequest::new(Method::Get, "https://h/hook?Body=hi&From=%2B1");
        let params = Params::from_request(&req).unwrap();
        assert_eq!(params.get("From"), Some("+1"));
    }
}
