//! Revoked access tokens, checked in memory on every request.
//!
//! Each token carries the user's `token_version` (claim `ver`). Deactivating
//! a user, changing their role or their password bumps the version in the
//! database, and a token is refused when its user is deactivated or its
//! version is older than the user's current one.
//!
//! Checking that against the database on every request would make every
//! route, `POST /orders` included, depend on the database. Instead each
//! replica keeps [`Revocations`], a map of the users whose tokens may be
//! refused (deactivated, or with a version above 0):
//!
//! - At start (and until it succeeds) it loads every such user.
//! - Then every [`REFRESH_INTERVAL`] it reads the rows whose `updated_at`
//!   moved since its last read, less [`REFRESH_OVERLAP`]. A trigger moves
//!   `updated_at` on every update of a user.
//! - Changes made through this replica are applied to its map at once.
//!
//! So a change made through one replica reaches the others within about one
//! interval (1 s, plus the query's time). While the database is unreachable
//! the last map stays in force: revoked tokens stay refused and everything
//! else keeps working. A replica that starts while the database is down has
//! no map yet and refuses only on signature and expiry until its first load.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

/// How often a replica reads the users changed since its last read. It is
/// the longest a change made through another replica takes to apply here
/// (plus the query's own time).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How far before its last read a refresh looks again. A row's `updated_at`
/// is set when it is written, not when it commits: a change that committed
/// after a read, with an `updated_at` before it, is still found as long as it
/// committed within this margin. Changes to users are single short
/// transactions, far within it.
pub const REFRESH_OVERLAP: Duration = Duration::from_secs(5);

/// Longest one refresh may take before it counts as failed.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// What decides whether a user's tokens still work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Whether the user may sign in; a deactivated user's tokens all fail.
    pub active: bool,
    /// Tokens issued at an older version fail.
    pub token_version: i32,
    /// When the row last changed; an older reading never replaces a newer one.
    pub updated_at: DateTime<Utc>,
}

impl Standing {
    /// Whether no token of this user is refused, so it need not be kept.
    fn unrestricted(&self) -> bool {
        self.active && self.token_version == 0
    }
}

/// The users whose tokens may be refused, shared by every request of a
/// replica. Cloning shares the same map.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    /// User id to standing, for restricted users only.
    users: Arc<RwLock<HashMap<Uuid, Standing>>>,
}

impl Revocations {
    /// Whether a token of `user` issued at `token_version` must be refused.
    /// A user the map does not know has never been restricted (or the
    /// database has not been read yet): their tokens stand.
    pub fn refuses(&self, user: Uuid, token_version: i32) -> bool {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users
            .get(&user)
            .is_some_and(|standing| !standing.active || token_version < standing.token_version)
    }

    /// Records what the database says of `user`, unless a newer reading is
    /// already known: a refresh that read a row just before this replica
    /// changed it must not undo the change.
    pub fn apply(&self, user: Uuid, standing: Standing) {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        if users
            .get(&user)
            .is_some_and(|known| known.updated_at > standing.updated_at)
        {
            return;
        }
        if standing.unrestricted() {
            users.remove(&user);
        } else {
            users.insert(user, standing);
        }
    }

    /// How many users are restricted, for logs.
    pub fn len(&self) -> usize {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no user is restricted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the map current from the database until `shutdown`: a full load
    /// first (retried each interval until the database answers), then the
    /// changed rows every interval. Failures keep the last map.
    pub fn spawn_refresher(
        &self,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let revocations = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(REFRESH_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The database's clock when the last successful read began.
            let mut last_read: Option<DateTime<Utc>> = None;
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = interval.tick() => {}
                }
                let attempt =
                    tokio::time::timeout(REFRESH_TIMEOUT, revocations.refresh(&pool, last_read))
                        .await
                        .map_err(|_| anyhow::anyhow!("timed out after {REFRESH_TIMEOUT:?}"))
                        .and_then(|result| result);
                match attempt {
                    Ok(read_at) => {
                        if last_read.is_none() {
                            info!(restricted = revocations.len(), "token revocations loaded");
                        } else if failing {
                            info!("token revocations refreshing again");
                        }
                        last_read = Some(read_at);
                        failing = false;
                    }
                    // Said once per outage, not every second of it.
                    Err(err) if !failing => {
                        failing = true;
                        warn!(
                            err = format!("{err:#}"),
                            "cannot refresh token revocations; the last known ones stay in force"
                        );
                    }
                    Err(err) => debug!(err = format!("{err:#}"), "token revocations not refreshed"),
                }
            }
        })
    }

    /// One read: everything restricted when `last_read` is `None`, else the
    /// rows changed since `last_read` less the overlap. Returns the
    /// database's clock from before the read, the next read's starting point.
    async fn refresh(
        &self,
        pool: &PgPool,
        last_read: Option<DateTime<Utc>>,
    ) -> anyhow::Result<DateTime<Utc>> {
        let read_at: DateTime<Utc> = sqlx::query_scalar("select clock_timestamp()")
            .fetch_one(pool)
            .await?;
        let rows: Vec<(Uuid, bool, i32, DateTime<Utc>)> = match last_read {
            None => {
                sqlx::query_as(
                    "select id, active, token_version, updated_at from users
                     where not active or token_version > 0",
                )
                .fetch_all(pool)
                .await?
            }
            Some(last_read) => {
                let overlap = chrono::Duration::from_std(REFRESH_OVERLAP)?;
                sqlx::query_as(
                    "select id, active, token_version, updated_at from users
                     where updated_at > $1 order by updated_at",
                )
                .bind(last_read - overlap)
                .fetch_all(pool)
                .await?
            }
        };
        for (id, active, token_version, updated_at) in rows {
            self.apply(
                id,
                Standing {
                    active,
                    token_version,
                    updated_at,
                },
            );
        }
        Ok(read_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(active: bool, token_version: i32, at_seconds: i64) -> Standing {
        Standing {
            active,
            token_version,
            updated_at: DateTime::from_timestamp(at_seconds, 0).unwrap(),
        }
    }

    #[test]
    fn an_unknown_user_is_not_refused_and_a_deactivated_one_is_at_any_version() {
        let revocations = Revocations::default();
        let user = Uuid::now_v7();
        assert!(!revocations.refuses(user, 0));
        revocations.apply(user, standing(false, 1, 10));
        assert!(revocations.refuses(user, 0));
        assert!(revocations.refuses(user, 1));
    }

    #[test]
    fn only_tokens_older_than_the_current_version_are_refused() {
        let revocations = Revocations::default();
        let user = Uuid::now_v7();
        revocations.apply(user, standing(true, 2, 10));
        assert!(revocations.refuses(user, 1));
        assert!(!revocations.refuses(user, 2));
    }

    #[test]
    fn an_older_reading_never_replaces_a_newer_one() {
        let revocations = Revocations::default();
        let user = Uuid::now_v7();
        revocations.apply(user, standing(false, 1, 20));
        revocations.apply(user, standing(true, 0, 10));
        assert!(revocations.refuses(user, 0));
        assert_eq!(revocations.len(), 1);
    }

    #[test]
    fn a_user_back_to_active_at_version_zero_is_forgotten() {
        let revocations = Revocations::default();
        let user = Uuid::now_v7();
        revocations.apply(user, standing(true, 0, 10));
        assert!(revocations.is_empty());
        revocations.apply(user, standing(true, 3, 20));
        assert_eq!(revocations.len(), 1);
    }
}
