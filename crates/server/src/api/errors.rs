//! The API's error answers: `{"error": {"code": "not_found", "message": "…"}}` with a stable
//! snake_case code, and body/query/path extractors whose rejections answer the same way.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use switchboard_store::StoreError;

/// An error answer of the API.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The stable code.
    pub(crate) code: &'static str,
    /// A human explanation (never a secret).
    pub(crate) message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401: no token, or not a configured one.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the token may not do this.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400: the request is malformed or names something that cannot be used.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 409 with a specific code (`refused`, `send_refused`, `opted_out`, …).
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A store failure: 503 `store_unavailable` when it is about reaching the database (retry),
    /// 500 `internal` otherwise. The detail goes to the log, not to the caller.
    pub(crate) fn store(error: StoreError) -> Self {
        if error.is_unavailable() || matches!(error, StoreError::Conflict(_)) {
            tracing::warn!(error = %error, "store unavailable");
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store is unavailable; retry later",
            )
        } else {
            tracing::error!(error = %error, "store failure");
            Self::internal()
        }
    }

    /// 500.
    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (see the gateway log)",
        )
    }

    /// The code for an error status that no handler described (axum's own, the body limit,
    /// the timeout).
    pub(crate) fn code_for(status: StatusCode) -> &'static str {
        match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::SERVICE_UNAVAILABLE => "store_unavailable",
            _ if status.is_server_error() => "internal",
            _ => "invalid_request",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// Rewrites an error answer that is not JSON yet (axum's 404/405, the body limit's 413, the
/// timeout's 408) into the API's error shape; other answers pass unchanged.
pub(crate) fn normalize(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let mut fixed = ApiError::new(status, ApiError::code_for(status), message).into_response();
    // Keep what the layer said (e.g. `Allow` on a 405).
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

/// A JSON body; an empty body is `T::default()`. Malformed JSON answers 400 `invalid_request`
/// naming the problem; a body over the limit 413 `payload_too_large`.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                ApiError::new(e.status(), ApiError::code_for(e.status()), e.body_text())
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
    }
}

/// Query parameters; a bad one answers 400 `invalid_request`.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|e: QueryRejection| ApiError::invalid(e.body_text()))
    }
}

/// Path parameters; a bad one answers 400 `invalid_request`.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Self(p))
            .map_err(|e: PathRejection| ApiError::invalid(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_errors_get_the_json_shape_and_keep_their_headers() {
        let mut plain = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
        plain
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        let fixed = normalize(plain);
        assert_eq!(fixed.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(fixed.headers()[header::ALLOW], "GET");
        assert_eq!(fixed.headers()[header::CONTENT_TYPE], "application/json");
        let ok = normalize((StatusCode::OK, "fine").into_response());
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn store_errors_say_unavailable_or_internal_without_detail() {
        let e = ApiError::store(StoreError::Unavailable("disk /secret/path full".into()));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
        );
        assert!(!e.message.contains("secret"));
        let e = ApiError::store(StoreError::Query("syntax".into()));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
    }
}
