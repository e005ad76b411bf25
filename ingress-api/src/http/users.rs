//! `POST /auth/register`, `POST /auth/login`, and the admin created at start.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use orderflow_core::domain::Role;
use orderflow_core::limits::{MAX_EMAIL_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::password;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::json_body::JsonBody;
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// A normalised email: trimmed, lower case, one `@` with text on both sides.
pub fn parse_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL_LEN
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        });
    if valid {
        Ok(email)
    } else {
        Err(FieldError::new(
            "email",
            format!("must be an email address of at most {MAX_EMAIL_LEN} characters"),
        )
        .with_limit(MAX_EMAIL_LEN as i64))
    }
}

pub fn check_password(raw: &str) -> Result<(), FieldError> {
    let length = raw.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        )
        .with_limit(MIN_PASSWORD_LEN as i64));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(FieldError::new(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        )
        .with_limit(MAX_PASSWORD_LEN as i64));
    }
    Ok(())
}

/// Create a customer account.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses((status = 201, body = UserView), (status = 409, description = "Email taken", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let email = parse_email(&credentials.email);
    let password_ok = check_password(&credentials.password);
    let errors: Vec<FieldError> = [email.clone().err(), password_ok.err()]
        .into_iter()
        .flatten()
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let user = create_user(
        &state.pool,
        &email.expect("checked"),
        &credentials.password,
        Role::Customer,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn create_user(
    pool: &PgPool,
    email: &str,
    password: &str,
    role: Role,
) -> ApiResult<UserView> {
    let hash = password::hash(password.to_owned()).await?;
    let id = Uuid::now_v7();
    sqlx::query("insert into users (id, email, password_hash, role) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(email)
        .bind(&hash)
        .bind(role.as_str())
        .execute(pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
                ApiError::Conflict("an account with this email already exists".into())
            }
            _ => err.into(),
        })?;
    Ok(UserView {
        id,
        email: email.to_owned(),
        role,
    })
}

/// Exchange email and password for an access token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> ApiResult<Json<TokenResponse>> {
    if credentials.password.len() > MAX_PASSWORD_LEN * 4 {
        return Err(ApiError::Unauthorized("wrong email or password"));
    }
    let email = credentials.email.trim().to_lowercase();
    let row: Option<(Uuid, String, String, bool)> =
        sqlx::query_as("select id, password_hash, role, active from users where email = $1")
            .bind(&email)
            .fetch_optional(&state.pool)
            .await?;
    let stored = row.as_ref().map(|r| r.1.clone());
    let matches = password::verify(credentials.password, stored).await?;
    let Some((id, _, role, active)) = row.filter(|_| matches) else {
        return Err(ApiError::Unauthorized("wrong email or password"));
    };
    if !active {
        return Err(ApiError::Unauthorized("this account is deactivated"));
    }
    let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("stored role: {e}"))?;
    let access_token = state.tokens.issue(id, role)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
    }))
}

/// Makes sure the configured admin exists, is active, is an admin and has
/// the configured password: the environment is the source of truth for
/// this one account.
pub async fn ensure_admin(pool: &PgPool, email: &str, password: &str) -> anyhow::Result<()> {
    let email =
        parse_email(email).map_err(|e| anyhow::anyhow!("ORDERFLOW_ADMIN_EMAIL {}", e.message))?;
    check_password(password)
        .map_err(|e| anyhow::anyhow!("ORDERFLOW_ADMIN_PASSWORD {}", e.message))?;
    let hash = password::hash(password.to_owned()).await?;
    sqlx::query(
        "insert into users (id, email, password_hash, role) values ($1, $2, $3, 'admin')
         on conflict (email) do update
            set password_hash = excluded.password_hash, role = 'admin', active = true, updated_at = now()",
    )
    .bind(Uuid::now_v7())
    .bind(&email)
    .bind(&hash)
    .execute(pool)
    .await?;
    tracing::info!(%email, "admin account ensured");
    Ok(())
}
