//! Bearer tokens. Each configured token is kept only as its SHA-256 digest; a presented token
//! is hashed and compared with every configured digest in constant time (no early exit, so
//! the time does not tell which token, or how much of one, matched). Tokens are never logged:
//! [`Principal`] carries the token's name and role only.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::errors::ApiError;
use crate::config::{ApiRole, ResolvedToken};
use crate::gateway::App;

/// The configured tokens, as digests.
#[derive(Default)]
pub(crate) struct Tokens {
    entries: Vec<Entry>,
}

struct Entry {
    digest: [u8; 32],
    principal: Principal,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e.principal.name.as_str())
            .collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// From the checked configuration.
    pub(crate) fn new(tokens: &[ResolvedToken]) -> Self {
        Self {
            entries: tokens
                .iter()
                .map(|t| Entry {
                    digest: digest(t.token.expose().as_bytes()),
                    principal: Principal {
                        name: t.name.clone(),
                        role: t.role.clone(),
                    },
                })
                .collect(),
        }
    }

    /// The principal a presented token belongs to.
    pub(crate) fn find(&self, presented: &str) -> Option<Principal> {
        let given = digest(presented.as_bytes());
        let mut found: u32 = u32::MAX;
        for (i, entry) in self.entries.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let hit = entry.digest.ct_eq(&given);
            found = u32::conditional_select(&found, &index, hit);
        }
        self.entries
            .get(usize::try_from(found).ok()?)
            .map(|e| e.principal.clone())
    }
}

/// Who is calling: a token's name and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The token's name (for logs).
    pub(crate) name: String,
    /// What it may do.
    pub(crate) role: ApiRole,
}

impl Principal {
    /// Whether this is an admin token.
    pub(crate) fn is_admin(&self) -> bool {
        self.role == ApiRole::Admin
    }

    /// The agent id of an agent token.
    pub(crate) fn agent(&self) -> Option<&str> {
        match &self.role {
            ApiRole::Agent(agent) => Some(agent),
            ApiRole::Admin => None,
        }
    }

    /// Whether this token may see what concerns `agent` (admins see everything).
    pub(crate) fn sees(&self, agent: Option<&str>) -> bool {
        match &self.role {
            ApiRole::Admin => true,
            ApiRole::Agent(me) => agent == Some(me.as_str()),
        }
    }

    /// The agent a command acts as: an agent token acts as itself (naming another agent is
    /// 403); an admin token must name one (`agent` in the body) that is configured.
    pub(crate) fn acting_as(
        &self,
        requested: Option<&str>,
        configured: &[String],
    ) -> Result<String, ApiError> {
        match (&self.role, requested) {
            (ApiRole::Agent(me), None) => Ok(me.clone()),
            (ApiRole::Agent(me), Some(other)) if other == me => Ok(me.clone()),
            (ApiRole::Agent(_), Some(_)) => Err(ApiError::forbidden(
                "an agent token acts only as its own agent",
            )),
            (ApiRole::Admin, None) => Err(ApiError::invalid(
                "an admin token must say which agent acts: give `agent` in the body",
            )),
            (ApiRole::Admin, Some(agent)) if configured.iter().any(|a| a == agent) => {
                Ok(agent.to_owned())
            }
            (ApiRole::Admin, Some(agent)) => {
                Err(ApiError::invalid(format!("unknown agent `{agent}`")))
            }
        }
    }
}

impl FromRequestParts<Arc<App>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing bearer token (Authorization: Bearer …)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
        let principal = app
            .tokens
            .find(token)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        tracing::debug!(token = %principal.name, "api caller");
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&[
            ResolvedToken {
                name: "anna's desktop".into(),
                role: ApiRole::Agent("anna".into()),
                token: switchboard_core::Secret::new("sbt_anna_0123456789abcdef"),
            },
            ResolvedToken {
                name: "ops".into(),
                role: ApiRole::Admin,
                token: switchboard_core::Secret::new("sbt_admin_0123456789abcdef"),
            },
        ])
    }

    #[test]
    fn tokens_are_found_exactly() {
        let tokens = tokens();
        assert_eq!(
            tokens.find("sbt_anna_0123456789abcdef").unwrap().agent(),
            Some("anna")
        );
        assert!(
            tokens
                .find("sbt_admin_0123456789abcdef")
                .unwrap()
                .is_admin()
        );
        for wrong in [
            "",
            "sbt_anna_0123456789abcde",
            "sbt_anna_0123456789abcdef ",
            "SBT_ANNA_0123456789ABCDEF",
        ] {
            assert!(tokens.find(wrong).is_none(), "{wrong:?}");
        }
        assert!(Tokens::default().find("anything").is_none());
    }

    #[test]
    fn debug_shows_names_never_tokens() {
        let text = format!("{:?}", tokens());
        assert!(text.contains("anna's desktop"), "{text}");
        assert!(!text.contains("0123456789"), "{text}");
    }

    #[test]
    fn agents_act_only_as_themselves_and_admins_name_a_configured_agent() {
        let configured = vec!["anna".to_owned(), "ben".to_owned()];
        let tokens = tokens();
        let anna = tokens.find("sbt_anna_0123456789abcdef").unwrap();
        let admin = tokens.find("sbt_admin_0123456789abcdef").unwrap();
        assert_eq!(anna.acting_as(None, &configured).unwrap(), "anna");
        assert_eq!(anna.acting_as(Some("anna"), &configured).unwrap(), "anna");
        assert_eq!(
            anna.acting_as(Some("ben"), &configured).unwrap_err().code,
            "forbidden"
        );
        assert_eq!(admin.acting_as(Some("ben"), &configured).unwrap(), "ben");
        assert_eq!(
            admin.acting_as(None, &configured).unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(
            admin.acting_as(Some("zoe"), &configured).unwrap_err().code,
            "invalid_request"
        );
        assert!(anna.sees(Some("anna")) && !anna.sees(Some("ben")) && !anna.sees(None));
        assert!(admin.sees(None));
    }
}
