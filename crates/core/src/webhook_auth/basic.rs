//! [`WebhookAuth::Basic`](super::WebhookAuth::Basic) and
//! [`WebhookAuth::HeaderToken`](super::WebhookAuth::HeaderToken): shared credentials, compared
//! in constant time (lengths included).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::common::{self, malformed};
use super::{AuthError, Verified};
use crate::{SecretName, SecretStore, WebhookRequest};

const AUTHORIZATION: &str = "Authorization";

/// `Authorization: Basic base64(user:password)`.
pub(super) fn verify_basic(
    username: &str,
    password: &SecretName,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
) -> Result<Verified, AuthError> {
    let expected_password = common::secret(secrets, password)?;
    let value = common::required_header(req, AUTHORIZATION)?;
    let (scheme, credentials) = value
        .split_once(' ')
        .ok_or_else(|| malformed(AUTHORIZATION, "expected `Basic <credentials>`"))?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(malformed(AUTHORIZATION, "expected the Basic scheme"));
    }
    let decoded = STANDARD
        .decode(credentials.trim_start_matches(' '))
        .map_err(|_| malformed(AUTHORIZATION, "the credentials are not base64"))?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| malformed(AUTHORIZATION, "the credentials have no `:`"))?;
    let (given_user, given_password) = (&decoded[..colon], &decoded[colon + 1..]);
    // Both comparisons always run: which one failed must not show in the timing.
    let ok = common::ct_eq_secret(given_user, username.as_bytes())
        & common::ct_eq_secret(given_password, expected_password);
    if bool::from(ok) {
        Ok(Verified::Authentic)
    } else {
        Err(AuthError::Mismatch)
    }
}

/// A shared token, the whole value of header `header`.
pub(super) fn verify_header_token(
    header: &str,
    token: &SecretName,
    secrets: &dyn SecretStore,
    req: &WebhookRequest,
) -> Result<Verified, AuthError> {
    let expected = common::secret(secrets, token)?;
    let given = common::required_header(req, header)?;
    if bool::from(common::ct_eq_secret(given.as_bytes(), expected)) {
        Ok(Verified::Authentic)
    } else {
        Err(AuthError::Mismatch)
    }
}
