//! `JsonBody<T>`: the request body extractor. Unlike axum's `Json` it answers
//! every refusal as problem+json and names the offending field by its path.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use orderflow_core::limits::MAX_BODY_BYTES;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        decode(&bytes).map(JsonBody)
    }
}

/// The raw bytes of a JSON request body, for handlers that decode it through
/// a pure function of their own: the content type is checked and the body
/// read within [`MAX_BODY_BYTES`], nothing more.
pub struct JsonBytes(pub Bytes);

impl<S> FromRequest<S> for JsonBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|_| ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            })
    }
}

/// Decodes JSON, telling a syntax error (400) from a well-formed body of the
/// wrong shape (422, with the field's path). A string holding the NUL
/// character is refused (422): PostgreSQL text cannot store it.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if contains_escaped_nul(bytes) {
        return Err(ApiError::field(
            "body",
            "must not contain the NUL character (\\u0000)",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_data() {
                // The root, or an unknown key that is the empty string (its
                // path prints as nothing), is the body as a whole.
                let field = if path == "." || path.is_empty() {
                    "body".to_owned()
                } else {
                    path
                };
                Err(ApiError::Validation(vec![FieldError::new(
                    field,
                    inner.to_string(),
                )]))
            } else {
                Err(ApiError::MalformedJson(inner.to_string()))
            }
        }
    }
}

/// Whether a JSON text has a `\u0000` escape in it. JSON cannot carry a raw
/// NUL in a string, so the escape is the only way one arrives; an escaped
/// backslash before `u0000` is skipped as the escape it is.
pub fn contains_escaped_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}
