//! `POST /auth/register`, `POST /auth/login`, and the admin created at start.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::Role;
use orderflow_core::limits::{MAX_EMAIL_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{login_throttle, password};
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

/// A user as admins see them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserDetail {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// Whether the user may sign in; a deactivated user's tokens are refused.
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<UserDetail> for UserView {
    fn from(user: UserDetail) -> Self {
        UserView {
            id: user.id,
            email: user.email,
            role: user.role,
        }
    }
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
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Creates an active user; 409 when the email is taken. `email` must come
/// from [`parse_email`] and `password` must have passed [`check_password`].
pub async fn create_user(
    pool: &PgPool,
    email: &str,
    password: &str,
    role: Role,
) -> ApiResult<UserDetail> {
    let hash = password::hash(password.to_owned()).await?;
    let id = Uuid::now_v7();
    let (active, created_at): (bool, DateTime<Utc>) = sqlx::query_as(
        "insert into users (id, email, password_hash, role) values ($1, $2, $3, $4)
         returning active, created_at",
    )
    .bind(id)
    .bind(email)
    .bind(&hash)
    .bind(role.as_str())
    .fetch_one(pool)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
            ApiError::Conflict("an account with this email already exists".into())
        }
        _ => err.into(),
    })?;
    Ok(UserDetail {
        id,
        email: email.to_owned(),
        role,
        active,
        created_at,
    })
}

/// A token for `user` at `token_version`, as login and password changes
/// answer it.
pub fn token_response(
    state: &AppState,
    user: Uuid,
    role: Role,
    token_version: i32,
) -> ApiResult<TokenResponse> {
    let access_token = state.tokens.issue_with_version(user, role, token_version)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
    })
}

/// Exchange email and password for an access token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem),
              (status = 429, description = "Too many failed logins for this email", body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> ApiResult<Json<TokenResponse>> {
    let user = check_credentials(&state, &credentials).await?;
    Ok(Json(token_response(
        &state,
        user.id,
        user.role,
        user.token_version,
    )?))
}

/// Who a correct email and password belong to.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub id: Uuid,
    pub role: Role,
    /// The user's current token version, to issue a token at.
    pub token_version: i32,
}

/// Checks an email and password as every sign-in does (`POST /auth/login`
/// and the web console): throttled per email, 401 for a wrong pair or a
/// deactivated account, without telling whether the email exists.
pub async fn check_credentials(state: &AppState, credentials: &Credentials) -> ApiResult<SignedIn> {
    let email = credentials.email.trim().to_lowercase();
    // No account has such an email or password: refused before they cost
    // a hash or a row of the throttle.
    if credentials.password.len() > MAX_PASSWORD_LEN * 4 || email.len() > MAX_EMAIL_LEN {
        return Err(ApiError::Unauthorized("wrong email or password"));
    }
    login_throttle::check(&state.pool, &email).await?;
    let row: Option<(Uuid, String, String, bool, i32)> = sqlx::query_as(
        "select id, password_hash, role, active, token_version from users where email = $1",
    )
    .bind(&email)
    .fetch_optional(&state.pool)
    .await?;
    let stored = row.as_ref().map(|r| r.1.clone());
    let matches = password::verify(credentials.password.clone(), stored).await?;
    let Some((id, _, role, active, token_version)) = row.filter(|_| matches) else {
        login_throttle::record_failure(&state.pool, &email).await?;
        return Err(ApiError::Unauthorized("wrong email or password"));
    };
    login_throttle::clear(&state.pool, &email).await?;
    if !active {
        return Err(ApiError::Unauthorized("this account is deactivated"));
    }
    let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("stored role: {e}"))?;
    Ok(SignedIn {
        id,
        role,
        token_version,
    })
}

/// Makes sure the configured admin exists, is active, is an admin and has
/// the configured password: the environment is the source of truth for
/// this one account. A password or role it has to put back revokes the
/// account's older tokens, like any other change of either; a restart that
/// finds everything as configured changes nothing, so it revokes nothing.
pub async fn ensure_admin(pool: &PgPool, email: &str, password: &str) -> anyhow::Result<()> {
    let email =
        parse_email(email).map_err(|e| anyhow::anyhow!("ORDERFLOW_ADMIN_EMAIL {}", e.message))?;
    check_password(password)
        .map_err(|e| anyhow::anyhow!("ORDERFLOW_ADMIN_PASSWORD {}", e.message))?;
    let existing: Option<(String, String, bool)> =
        sqlx::query_as("select password_hash, role, active from users where email = $1")
            .bind(&email)
            .fetch_optional(pool)
            .await?;
    let Some((stored, role, active)) = existing else {
        // Replicas starting together may race here; the first insert wins
        // and the others, configured alike, have nothing to add.
        let hash = password::hash(password.to_owned()).await?;
        sqlx::query(
            "insert into users (id, email, password_hash, role) values ($1, $2, $3, 'admin')
             on conflict (email) do nothing",
        )
        .bind(Uuid::now_v7())
        .bind(&email)
        .bind(&hash)
        .execute(pool)
        .await?;
        tracing::info!(%email, "admin account created");
        return Ok(());
    };
    let password_current = password::verify(password.to_owned(), Some(stored)).await?;
    if password_current && role == Role::Admin.as_str() && active {
        tracing::info!(%email, "admin account as configured");
        return Ok(());
    }
    let new_hash = if password_current {
        None
    } else {
        Some(password::hash(password.to_owned()).await?)
    };
    sqlx::query(
        "update users
            set password_hash = coalesce($2, password_hash), role = 'admin', active = true,
                token_version = token_version
                    + case when $2 is not null or role <> 'admin' then 1 else 0 end
          where email = $1",
    )
    .bind(&email)
    .bind(new_hash)
    .execute(pool)
    .await?;
    tracing::info!(%email, "admin account restored to its configuration");
    Ok(())
}
