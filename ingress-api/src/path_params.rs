//! `PathParams<T>`: the path parameter extractor. Unlike axum's `Path`, a
//! segment that cannot be what the route expects (an order id that is not a
//! UUID, bytes that are not UTF-8) is answered as problem+json, and as 404:
//! such a path names nothing this API has, like any other unknown path. So
//! does a segment with the NUL character (`%00`), which nothing stored can
//! hold.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.path().contains("%00") {
            return Err(ApiError::NotFound("resource"));
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}
