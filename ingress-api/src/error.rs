//! The one error type of the HTTP layer, answered as RFC 9457
//! `application/problem+json`. Database and internal errors are logged and
//! never echoed to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One refused field: where it is, what is wrong, and the limit it crossed.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// JSON path of the field, for example `items[2].quantity`.
    pub field: String,
    /// What the field must be.
    pub message: String,
    /// The limit crossed, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            limit: None,
        }
    }

    pub fn with_limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The refused fields, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    UnprocessableIdempotencyKey(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("your role may not do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// Too many requests: the per-client rate limit or the login throttle.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_seconds: u64,
    },
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_seconds: u32,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A single refused field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// A single refused field with the limit it crossed.
    pub fn field_limit(field: impl Into<String>, message: impl Into<String>, limit: i64) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message).with_limit(limit)])
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::UnprocessableIdempotencyKey(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(err) if database_unreachable(err) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "/problems/malformed-json",
            ApiError::Validation(_) => "/problems/validation",
            ApiError::UnprocessableIdempotencyKey(_) => "/problems/idempotency-key-reused",
            ApiError::Unauthorized(_) => "/problems/unauthorized",
            ApiError::Forbidden => "/problems/forbidden",
            ApiError::NotFound(_) => "/problems/not-found",
            ApiError::Conflict(_) => "/problems/conflict",
            ApiError::PayloadTooLarge { .. } => "/problems/payload-too-large",
            ApiError::UnsupportedMediaType => "/problems/unsupported-media-type",
            ApiError::TooManyRequests { .. } => "/problems/too-many-requests",
            ApiError::Unavailable { .. } => "/problems/unavailable",
            ApiError::Database(err) if database_unreachable(err) => "/problems/unavailable",
            ApiError::Database(_) | ApiError::Internal(_) => "/problems/internal",
        }
    }
}

impl ApiError {
    /// What the caller is told: the error itself, or for database and
    /// internal errors a generic sentence, the error being logged here
    /// instead of echoed.
    pub fn public_detail(&self) -> String {
        match self {
            ApiError::Database(err) if database_unreachable(err) => {
                tracing::warn!(%err, "database unavailable");
                "the database is unavailable; try again shortly".to_owned()
            }
            ApiError::Database(err) => {
                tracing::error!(%err, "database error");
                "an internal error occurred".to_owned()
            }
            ApiError::Internal(err) => {
                tracing::error!(err = format!("{err:#}"), "internal error");
                "an internal error occurred".to_owned()
            }
            ApiError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    }
}

/// Whether a database error means "not reachable now" rather than a bug.
pub fn database_unreachable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|code| {
        // 08: connection exceptions; 57P: the server is shutting down or
        // restarting; 55000: the database is not accepting connections yet.
        code.starts_with("08") || code.starts_with("57P") || code == "55000"
    }))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.public_detail();
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let errors = match self {
            ApiError::Validation(ref errors) => errors.clone(),
            ApiError::PayloadTooLarge { limit } => {
                vec![FieldError::new("body", "is too large").with_limit(limit as i64)]
            }
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: self.kind().to_owned(),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            ApiError::TooManyRequests {
                retry_after_seconds,
                ..
            } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_seconds.max(1)),
                );
            }
            ApiError::Database(ref err) if database_unreachable(err) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(2u32));
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
