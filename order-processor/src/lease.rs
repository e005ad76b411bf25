//! Partition ownership: at most one live worker per partition across all
//! replicas, with takeover when a worker's replica dies.
//!
//! A replica owns a partition while it holds the session-level advisory lock
//! `(LEASE_LOCK_CLASS, partition)` on its lease connection. When the replica
//! dies, PostgreSQL ends the session and releases the lock, and another
//! replica's next attempt takes it. Each takeover bumps the partition's epoch
//! in `partition_leases`; batches commit only under the epoch they started
//! with (see `batch::fence`), so a stalled former owner can never write.

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The first key of the partition advisory locks; the partition is the second.
const LEASE_LOCK_CLASS: i32 = 0x4f46_5031; // "OFP1"

/// The connection that holds this replica's partition locks.
pub struct LeaseConnection {
    conn: PgConnection,
}

impl LeaseConnection {
    /// Opens the connection; `holder` names it in `pg_stat_activity`, so an
    /// operator can see which replica holds which partitions.
    pub async fn open(database_url: &str, holder: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = database_url.parse().context("parse DATABASE_URL")?;
        let name = format!("orderflow-lease {holder}");
        let conn = PgConnection::connect_with(&options.application_name(&name))
            .await
            .context("open the lease connection")?;
        Ok(Self { conn })
    }

    /// Takes the partition's lock if nobody holds it.
    pub async fn try_acquire(&mut self, partition: u16) -> anyhow::Result<bool> {
        sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
            .bind(LEASE_LOCK_CLASS)
            .bind(i32::from(partition))
            .fetch_one(&mut self.conn)
            .await
            .context("try the partition lock")
    }

    /// Gives the partition up, so another replica can take it at once.
    pub async fn release(&mut self, partition: u16) -> anyhow::Result<()> {
        sqlx::query("select pg_advisory_unlock($1, $2)")
            .bind(LEASE_LOCK_CLASS)
            .bind(i32::from(partition))
            .execute(&mut self.conn)
            .await
            .context("release the partition lock")?;
        Ok(())
    }

    /// Whether the session, and with it every lock it holds, is still alive.
    pub async fn is_alive(&mut self) -> bool {
        self.conn.ping().await.is_ok()
    }
}

/// Records a takeover of `partition` by `holder` and returns the new epoch.
pub async fn bump_epoch(pool: &PgPool, partition: u16, holder: &str) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "insert into partition_leases (partition, epoch, holder, acquired_at)
         values ($1, 1, $2, now())
         on conflict (partition) do update
            set epoch = partition_leases.epoch + 1, holder = excluded.holder,
                acquired_at = now(), updated_at = now()
         returning epoch",
    )
    .bind(i32::from(partition))
    .bind(holder)
    .fetch_one(pool)
    .await
    .context("bump the partition epoch")
}
