//! The schema migrator and database connection options.

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The migrations in `migrations/`, compiled in. Every service applies them at
/// start; sqlx takes a Postgres advisory lock while migrating, so replicas that
/// start together apply each migration once.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A pool that connects on demand, so a service can start (and, for
/// ingress-api, keep accepting orders) while the database is down.
pub fn lazy_pool(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(database_url)
        .context("parse DATABASE_URL")
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("apply migrations")
}
