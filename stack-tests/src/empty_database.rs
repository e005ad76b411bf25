//! An empty database (not migrated) on the test server: a restore target,
//! since a restore must refuse a database that already has tables.

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// A fresh database with nothing in it, dropped when it drops.
pub struct EmptyDatabase {
    /// `orderflow_restore_<12 hex>`.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
    admin_url: String,
}

impl EmptyDatabase {
    /// Creates it through the test server's admin connection.
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = testkit::admin_database_url();
        let unique = Uuid::new_v4().simple().to_string();
        let name = format!("orderflow_restore_{}", &unique[..12]);
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connect to {admin_url}"))?;
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .context("create the empty database")?;
        admin.close().await.ok();
        Ok(Self {
            url: testkit::database_url_for(&admin_url, &name),
            name,
            admin_url,
        })
    }
}

impl Drop for EmptyDatabase {
    fn drop(&mut self) {
        testkit::drop_database(&self.admin_url, &self.name);
    }
}
