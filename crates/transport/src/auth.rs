//! Credentials: from an [`OutboundAuth`] scheme and a [`SecretStore`] to one header.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use switchboard_core::outbound_auth::{OutboundAuth, TokenKey};
use switchboard_core::{Secret, SecretName, SecretStore};

use crate::error::TransportError;

/// One credential header, ready to add to a request. `Debug` shows the name only.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
    /// For OAuth 2: the token's cache key and generation, to invalidate it on a 401.
    pub(crate) token: Option<(TokenKey, u64)>,
}

impl Credential {
    /// A credential header; the value is marked sensitive (hyper keeps it out of HPACK tables
    /// and debug output).
    pub(crate) fn new(name: HeaderName, value: &str) -> Result<Self, TransportError> {
        let mut value =
            HeaderValue::from_str(value).map_err(|_| TransportError::InvalidHeader {
                name: name.as_str().to_owned(),
            })?;
        value.set_sensitive(true);
        Ok(Self {
            name,
            value,
            token: None,
        })
    }

    /// `Authorization: Bearer <token>`.
    pub(crate) fn bearer(token: &Secret) -> Result<Self, TransportError> {
        Self::new(AUTHORIZATION, &format!("Bearer {}", token.expose()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a scheme needs before a request can go.
pub(crate) enum Plan {
    /// No credentials.
    None,
    /// A header known now.
    Static(Credential),
    /// A bearer token from the cache (or the token endpoint).
    OAuth2 {
        key: TokenKey,
        client_secret: Secret,
    },
}

fn secret(secrets: &dyn SecretStore, name: &SecretName) -> Result<Secret, TransportError> {
    secrets
        .secret(name)
        .cloned()
        .ok_or_else(|| TransportError::MissingSecret { name: name.clone() })
}

/// Reads the secrets `auth` names.
pub(crate) fn plan(auth: &OutboundAuth, secrets: &dyn SecretStore) -> Result<Plan, TransportError> {
    Ok(match auth {
        OutboundAuth::None => Plan::None,
        OutboundAuth::Basic { username, password } => {
            let password = secret(secrets, password)?;
            let encoded = BASE64.encode(format!("{username}:{}", password.expose()));
            Plan::Static(Credential::new(AUTHORIZATION, &format!("Basic {encoded}"))?)
        }
        OutboundAuth::Bearer { token } => {
            Plan::Static(Credential::bearer(&secret(secrets, token)?)?)
        }
        OutboundAuth::Header { name, value } => {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| TransportError::InvalidHeader { name: name.clone() })?;
            Plan::Static(Credential::new(header, secret(secrets, value)?.expose())?)
        }
        OutboundAuth::OAuth2ClientCredentials { client_secret, .. } => Plan::OAuth2 {
            key: TokenKey::from_auth(auth).ok_or(TransportError::UnsupportedAuth)?,
            client_secret: secret(secrets, client_secret)?,
        },
        _ => return Err(TransportError::UnsupportedAuth),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use switchboard_core::Secrets;

    use super::*;

    #[test]
    fn plans_each_scheme_and_names_missing_secrets() {
        let secrets = Secrets::default()
            .with("pw", "hunter2")
            .with("bad", "a\r\nb");
        let Plan::Static(c) = plan(
            &OutboundAuth::Basic {
                username: "AC1".into(),
                password: "pw".into(),
            },
            &secrets,
        )
        .unwrap() else {
            panic!("basic is static")
        };
        assert_eq!(c.name, AUTHORIZATION);
        assert_eq!(c.value.to_str().unwrap(), "Basic QUMxOmh1bnRlcjI=");
        assert!(c.value.is_sensitive());
        assert!(!format!("{c:?}").contains("QUMx"));

        let err = plan(
            &OutboundAuth::Bearer {
                token: "nope".into(),
            },
            &secrets,
        )
        .err()
        .unwrap();
        assert!(matches!(&err, TransportError::MissingSecret { name } if name.as_str() == "nope"));
        assert!(err.not_sent());

        let err = plan(
            &OutboundAuth::Header {
                name: "bad name".into(),
                value: "pw".into(),
            },
            &secrets,
        )
        .err()
        .unwrap();
        assert!(matches!(err, TransportError::InvalidHeader { .. }));
        let err = plan(
            &OutboundAuth::Bearer {
                token: "bad".into(),
            },
            &secrets,
        )
        .err()
        .unwrap();
        assert!(!format!("{err} {err:?}").contains("a\r\nb"));
        assert!(matches!(
            plan(&OutboundAuth::None, &secrets).unwrap(),
            Plan::None
        ));
    }
}
