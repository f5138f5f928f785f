//! Secret values and the names connectors use to refer to them.
//!
//! Connectors never hold secret values: they name secrets (`"app_secret"`) in their auth schemes
//! and the host resolves the names from the channel's configuration.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// A secret value (token, password, signing key). `Debug` prints `Secret([REDACTED])`; there is
/// no `Display` and no `Serialize`, so it cannot reach a log or a JSON document by accident.
///
/// ```
/// use switchboard_core::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value, for the one place that must use it (signing, an auth header).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// The name of a secret in a channel's configuration, e.g. `app_secret`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretName(pub String);

impl SecretName {
    /// A secret name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SecretName {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

/// Where the host looks secrets up by name.
pub trait SecretStore {
    /// The secret called `name`, if configured.
    fn secret(&self, name: &SecretName) -> Option<&Secret>;
}

/// A map of named secrets: the simplest [`SecretStore`].
///
/// ```
/// use switchboard_core::{SecretName, SecretStore, Secrets};
/// let secrets = Secrets::default().with("auth_token", "12345");
/// assert!(secrets.secret(&SecretName::new("auth_token")).is_some());
/// assert!(format!("{secrets:?}").contains("auth_token"));
/// assert!(!format!("{secrets:?}").contains("12345"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Secrets(BTreeMap<SecretName, Secret>);

impl Secrets {
    /// Adds a secret.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(SecretName::new(name), Secret::new(value));
        self
    }

    /// Adds or replaces a secret.
    pub fn insert(&mut self, name: SecretName, value: Secret) {
        self.0.insert(name, value);
    }

    /// The names of the secrets held.
    pub fn names(&self) -> impl Iterator<Item = &SecretName> {
        self.0.keys()
    }
}

impl SecretStore for Secrets {
    fn secret(&self, name: &SecretName) -> Option<&Secret> {
        self.0.get(name)
    }
}
