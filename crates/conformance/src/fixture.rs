//! The fixture format: one JSON file per case. See `fixtures/README.md` for the prose version.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchboard_core::{
    ChannelContext, ErrorClass, HttpRequest, HttpResponse, InboundEvent, OutboundMessage, Secret,
    SecretName, Secrets, SendReceipt, Timestamp, WebhookReply, WebhookRequest,
};

/// Why a fixture, channel file or secret could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path} is not a valid {what}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A secret reference could not be resolved.
    #[error("secret `{name}`: {reason}")]
    Secret {
        /// The secret's name.
        name: String,
        /// Why (never the value).
        reason: String,
    },
}

/// A channel as configured for a case or for `switchboard replay`: id, non-secret settings and
/// secret references.
///
/// ```json
/// {"channel_id": "wa-main", "settings": {"phone_number_id": "123"}, "secrets": {"app_secret": "env:META_APP_SECRET"}}
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// The channel's id.
    pub channel_id: String,
    /// Non-secret settings.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Secret references by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
}

impl ChannelSpec {
    /// The connector's view of the channel.
    pub fn context(&self) -> ChannelContext {
        ChannelContext {
            channel_id: self.channel_id.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Resolves every secret reference.
    pub fn resolve_secrets(&self) -> Result<Secrets, FixtureError> {
        let mut secrets = Secrets::default();
        for (name, reference) in &self.secrets {
            secrets.insert(SecretName::new(name.clone()), reference.resolve(name)?);
        }
        Ok(secrets)
    }

    /// Loads a channel file: a bare spec, or a case file whose `channel` is used.
    pub fn load(path: &Path) -> Result<Self, FixtureError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum SpecOrCase {
            Spec(ChannelSpec),
            Case { channel: ChannelSpec },
        }
        let text = read(path)?;
        let parsed: SpecOrCase = parse(path, &text, "channel file")?;
        Ok(match parsed {
            SpecOrCase::Spec(spec) | SpecOrCase::Case { channel: spec } => spec,
        })
    }
}

/// Where a secret's value comes from: `env:NAME`, `file:PATH` (trailing newline trimmed) or
/// `value:LITERAL` (fixtures and tests only; never put a real secret in a file).
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
    /// A literal value.
    Value(Secret),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
            SecretRef::Value(_) => f.write_str("value:[REDACTED]"),
        }
    }
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if let Some(name) = text.strip_prefix("env:") {
            Ok(SecretRef::Env(name.to_owned()))
        } else if let Some(path) = text.strip_prefix("file:") {
            Ok(SecretRef::File(PathBuf::from(path)))
        } else if let Some(value) = text.strip_prefix("value:") {
            Ok(SecretRef::Value(Secret::new(value)))
        } else {
            Err("a secret reference starts with `env:`, `file:` or `value:`".to_owned())
        }
    }
}

impl SecretRef {
    /// Reads the value.
    pub fn resolve(&self, name: &str) -> Result<Secret, FixtureError> {
        let fail = |reason: String| FixtureError::Secret {
            name: name.to_owned(),
            reason,
        };
        match self {
            SecretRef::Env(var) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| fail(format!("environment variable `{var}` is not set"))),
            SecretRef::File(path) => fs::read_to_string(path)
                .map(|text| Secret::new(text.trim_end_matches(['\r', '\n'])))
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display()))),
            SecretRef::Value(secret) => Ok(secret.clone()),
        }
    }
}

/// One fixture file.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// What the case shows.
    pub description: String,
    /// Where the payload comes from (provider docs, official SDK test, redacted capture).
    pub source: String,
    /// The id of the connector the case is for.
    pub connector: String,
    /// The channel.
    pub channel: ChannelSpec,
    /// The clock for replay windows; the real clock when absent.
    #[serde(default)]
    pub now: Option<Timestamp>,
    /// What is checked.
    #[serde(flatten)]
    pub kind: CaseKind,
}

/// The three kinds of case. Each gives exactly one of its `expect…` fields.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaseKind {
    /// A webhook and what it must produce.
    Webhook {
        /// The request as the provider sent it.
        request: WebhookRequest,
        /// The events and reply it must produce.
        #[serde(default)]
        expect: Option<WebhookOutcomeSpec>,
        /// Or the error it must produce.
        #[serde(default)]
        expect_error: Option<ExpectedError>,
    },
    /// A message and the request it must build.
    Send {
        /// The message.
        message: OutboundMessage,
        /// The request it must build.
        #[serde(default)]
        expect_request: Option<HttpRequest>,
        /// Or the error it must produce.
        #[serde(default)]
        expect_error: Option<ExpectedError>,
    },
    /// A provider's answer and what it must be read as.
    SendResponse {
        /// The message that was sent.
        message: OutboundMessage,
        /// The provider's answer.
        response: HttpResponse,
        /// The receipt it must yield.
        #[serde(default)]
        expect_receipt: Option<SendReceipt>,
        /// Or the classified error.
        #[serde(default)]
        expect_provider_error: Option<ExpectedProviderError>,
    },
}

/// Events and reply, as in the fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookOutcomeSpec {
    /// The events, in order.
    pub events: Vec<InboundEvent>,
    /// The reply.
    pub reply: WebhookReply,
}

/// A connector error a case expects.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedError {
    /// `invalid_signature`, `malformed`, `unsupported` or `config`.
    pub kind: String,
    /// A substring of the error message.
    #[serde(default)]
    pub contains: Option<String>,
}

/// A provider error's class and code.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedProviderError {
    /// The class.
    pub class: ErrorClass,
    /// The provider's code, when the case checks it.
    #[serde(default)]
    pub provider_code: Option<String>,
    /// The Retry-After, in seconds, when the case checks it.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

/// Loads every `.json` case under `dir`, recursively, sorted by path.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Case)>, FixtureError> {
    let mut paths = Vec::new();
    collect_json(dir, &mut paths)?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = read(&path)?;
            let case = parse(&path, &text, "fixture case")?;
            Ok((path, case))
        })
        .collect()
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FixtureError> {
    let read_err = |source| FixtureError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads a request file for `switchboard replay`: a bare request, or a case whose `request` is
/// used.
pub fn load_request(path: &Path) -> Result<WebhookRequest, FixtureError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum RequestOrCase {
        Case { request: WebhookRequest },
        Request(WebhookRequest),
    }
    let text = read(path)?;
    let parsed: RequestOrCase = parse(path, &text, "request file")?;
    Ok(match parsed {
        RequestOrCase::Request(req) | RequestOrCase::Case { request: req } => req,
    })
}

fn read(path: &Path) -> Result<String, FixtureError> {
    fs::read_to_string(path).map_err(|source| FixtureError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    what: &'static str,
) -> Result<T, FixtureError> {
    serde_json::from_str(text).map_err(|source| FixtureError::Parse {
        path: path.to_owned(),
        what,
        source,
    })
}
