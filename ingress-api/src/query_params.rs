//! `QueryParams<T>`: the query string extractor. Unlike axum's `Query`, a
//! malformed parameter (say `limit=ten` or `active=maybe`) is a refused field
//! answered as problem+json like any other, not a plain-text 400.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // PostgreSQL text cannot hold NUL; refused here rather than failing
        // the query that would bind it.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::field(
                "query",
                "must not contain the NUL character (%00)",
            ));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(params)| QueryParams(params))
            .map_err(|rejection| ApiError::field("query", rejection.body_text()))
    }
}
