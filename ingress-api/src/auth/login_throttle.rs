//! Login throttling against password guessing: after
//! [`MAX_LOGIN_FAILURES`] failed logins for one email within
//! [`LOGIN_FAILURE_WINDOW_SECONDS`] of the first, every login of that email
//! is refused with 429 until the window has passed, whether its password is
//! right or not; a successful login clears the count.
//!
//! The counts are rows of `login_failures`, not memory of each replica: a
//! guesser spread over N replicas by the balancer would otherwise get N
//! times the attempts, and a restart would forgive them. Login reads the
//! user from the database anyway, so the throttle adds no dependency, only
//! a cheap keyed read and, on failure, a write. Emails are counted whether
//! an account has them or not, so a refusal says nothing about which
//! accounts exist; rows are deleted once their window has passed, so
//! guesses at made-up emails cannot grow the table beyond what one window
//! of failures holds.
//!
//! Counting is per email, not per address: it protects one account against
//! guesses from anywhere. Guessing across many accounts from one address is
//! the per-client rate limit's job. The price is that anyone can lock an
//! account out of logging in for the window by failing on purpose; its
//! existing tokens keep working meanwhile.

use orderflow_core::limits::{LOGIN_FAILURE_WINDOW_SECONDS, MAX_LOGIN_FAILURES};
use orderflow_core::metric_names;
use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};

/// Refuses with 429 and `Retry-After` when `email` has failed too often in
/// its current window.
pub async fn check(pool: &PgPool, email: &str) -> ApiResult<()> {
    let remaining: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from (window_started_at + make_interval(secs => $2) - now()))::float8
           from login_failures
          where email = $1 and failures >= $3
            and window_started_at > now() - make_interval(secs => $2)",
    )
    .bind(email)
    .bind(LOGIN_FAILURE_WINDOW_SECONDS as f64)
    .bind(MAX_LOGIN_FAILURES)
    .fetch_optional(pool)
    .await?;
    let Some(remaining) = remaining else {
        return Ok(());
    };
    metrics::counter!(metric_names::LOGIN_THROTTLED).increment(1);
    let retry_after_seconds = (remaining.ceil() as u64).max(1);
    Err(ApiError::TooManyRequests {
        detail: format!(
            "more than {MAX_LOGIN_FAILURES} failed logins for this email in {} minutes; \
             retry after {retry_after_seconds} s",
            LOGIN_FAILURE_WINDOW_SECONDS / 60
        ),
        retry_after_seconds,
    })
}

/// Counts a failed login of `email`: opens a window at the first failure,
/// or when the last window has passed. Deletes the rows of passed windows.
pub async fn record_failure(pool: &PgPool, email: &str) -> ApiResult<()> {
    sqlx::query(
        "insert into login_failures (email, failures, window_started_at)
         values ($1, 1, now())
         on conflict on constraint login_failures_pkey do update set
             failures = case when login_failures.window_started_at
                                  <= now() - make_interval(secs => $2)
                             then 1 else login_failures.failures + 1 end,
             window_started_at = case when login_failures.window_started_at
                                           <= now() - make_interval(secs => $2)
                                      then now() else login_failures.window_started_at end",
    )
    .bind(email)
    .bind(LOGIN_FAILURE_WINDOW_SECONDS as f64)
    .execute(pool)
    .await?;
    sqlx::query(
        "delete from login_failures where window_started_at <= now() - make_interval(secs => $1)",
    )
    .bind(LOGIN_FAILURE_WINDOW_SECONDS as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the failures of `email` after a successful login.
pub async fn clear(pool: &PgPool, email: &str) -> ApiResult<()> {
    sqlx::query("delete from login_failures where email = $1")
        .bind(email)
        .execute(pool)
        .await?;
    Ok(())
}
