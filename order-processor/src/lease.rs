//! Partition ownership: at most one live worker per partition across all
//! replicas, with takeover when a worker's replica dies.
//!
//! A replica owns a partition while it holds the session-level advisory lock
//! `(LEASE_LOCK_CLASS, partition)` on its lease connection. When the replica
//! dies, PostgreSQL ends the session and releases the lock, and another
//! replica's next attempt takes it. Each takeover bumps the partition's epoch
//! in `partition_leases`; batches commit only under the epoch they started
//! with (see `batch::fence`), so a stalled former owner can never write.
//!
//! The same connection holds a shared lock on one membership key for as long
//! as it lives, so the holders of that lock are the live replicas: each
//! replica counts them to work out its fair share (see `share`).

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The first key of the partition advisory locks; the partition is the second.
/// Public so that queries over `pg_locks` (tests, an operator's) can find them.
pub const LEASE_LOCK_CLASS: i32 = 0x4f46_5031; // "OFP1"

/// The first key of the membership advisory lock, held shared by every live
/// replica; its second key is always [`MEMBERSHIP_KEY`]. A class of its own,
/// so it can never be mistaken for a partition's lock.
const MEMBERSHIP_LOCK_CLASS: i32 = 0x4f46_5032; // "OFP2"
const MEMBERSHIP_KEY: i32 = 0;

/// The connection that holds this replica's partition locks.
pub struct LeaseConnection {
    conn: PgConnection,
}

impl LeaseConnection {
    /// Opens the connection and joins the live replicas; `holder` names it
    /// in `pg_stat_activity`, so an operator can see which replica holds
    /// which partitions.
    pub async fn open(database_url: &str, holder: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = database_url.parse().context("parse DATABASE_URL")?;
        let name = format!("orderflow-lease {holder}");
        let mut conn = PgConnection::connect_with(&options.application_name(&name))
            .await
            .context("open the lease connection")?;
        // Shared holders never block each other; only a session holding the
        // key exclusively (nothing in orderflow does) could refuse it.
        let joined: bool = sqlx::query_scalar("select pg_try_advisory_lock_shared($1, $2)")
            .bind(MEMBERSHIP_LOCK_CLASS)
            .bind(MEMBERSHIP_KEY)
            .fetch_one(&mut conn)
            .await
            .context("join the live replicas")?;
        anyhow::ensure!(
            joined,
            "another session holds the membership lock exclusively"
        );
        Ok(Self { conn })
    }

    /// How many replicas are live, this one included: the sessions holding
    /// the membership lock. Advisory locks are per database, and `pg_locks`
    /// shows every database's, so only this database's count; `objsubid = 2`
    /// marks a lock taken with two int4 keys.
    pub async fn live_replicas(&mut self) -> anyhow::Result<usize> {
        let replicas: i64 = sqlx::query_scalar(
            "select count(*) from pg_locks
             where locktype = 'advisory' and granted and mode = 'ShareLock'
               and database = (select oid from pg_database where datname = current_database())
               and classid = ($1::int4)::oid and objid = ($2::int4)::oid and objsubid = 2",
        )
        .bind(MEMBERSHIP_LOCK_CLASS)
        .bind(MEMBERSHIP_KEY)
        .fetch_one(&mut self.conn)
        .await
        .context("count the live replicas")?;
        Ok(usize::try_from(replicas).unwrap_or(0))
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
