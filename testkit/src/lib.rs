//! Test support shared by the services' integration tests.
//!
//! - [`TestDatabase`]: a fresh, migrated PostgreSQL database per test, dropped
//!   when the test ends, so tests run in parallel without seeing each other.
//! - [`TestNamespace`]: a unique NATS namespace per test (its own streams and
//!   subject prefix), deleted when the test ends.
//! - [`settings`]: service settings pointing at both.
//! - [`eventually`]: poll a condition with a deadline instead of sleeping.
//! - [`ledger_drift`], [`wait_for_empty_outbox`]: the checks every pipeline
//!   test ends with.
//!
//! The servers default to the machine's shared PostgreSQL and NATS; set
//! `ORDERFLOW_TEST_DATABASE_URL` (an admin connection, database `postgres`)
//! and `ORDERFLOW_TEST_NATS_URL` to use others.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use orderflow_core::naming::Naming;
use orderflow_core::settings::Settings;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// The admin connection tests create their databases through.
pub fn admin_database_url() -> String {
    std::env::var("ORDERFLOW_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The NATS server tests use.
pub fn nats_url() -> String {
    std::env::var("ORDERFLOW_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Sends log lines to the test's output when `TEST_LOG` is set; otherwise the
/// tests stay quiet.
pub fn init_logging() {
    use orderflow_core::settings::LogFormat;
    use orderflow_core::telemetry::init_logging;
    if std::env::var_os("TEST_LOG").is_some() {
        init_logging(LogFormat::Pretty, std::io::stdout);
    } else {
        init_logging(LogFormat::Pretty, std::io::sink);
    }
}

fn unique_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A migrated database of the test's own.
pub struct TestDatabase {
    /// The database's name, `orderflow_test_<12 hex>`.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
    /// A pool on it for the test's own queries.
    pub pool: PgPool,
    /// The admin connection it was created through, and is dropped through.
    admin_url: String,
}

impl TestDatabase {
    /// Creates and migrates a fresh database.
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_on(&admin_database_url()).await
    }

    /// Creates and migrates a fresh database on the server of `admin_url`
    /// (an admin connection, database `postgres`), for tests that run a
    /// server of their own.
    pub async fn create_on(admin_url: &str) -> anyhow::Result<Self> {
        let admin_url = admin_url.to_owned();
        let name = format!("orderflow_test_{}", unique_suffix());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connect to {admin_url}"))?;
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .context("create test database")?;
        admin.close().await.ok();
        let url = database_url_for(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .context("connect to the test database")?;
        orderflow_core::db::MIGRATOR
            .run(&pool)
            .await
            .context("migrate the test database")?;
        Ok(Self {
            name,
            url,
            pool,
            admin_url,
        })
    }
}

/// `admin_url` with its database name replaced by `name`.
pub fn database_url_for(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let base = match base.rfind('/') {
        Some(slash) if base[..slash].contains("//") && slash > base.find("//").unwrap() + 1 => {
            &base[..slash]
        }
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        drop_database(&self.admin_url, &self.name);
    }
}

/// Drops database `name` through `admin_url`, for a `Drop` impl: drop runs
/// inside the test's runtime, which cannot be blocked on, so a thread with a
/// runtime of its own does the clean-up. Failures are ignored.
pub fn drop_database(admin_url: &str, name: &str) {
    let (admin_url, name) = (admin_url.to_owned(), name.to_owned());
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a clean-up runtime");
        runtime.block_on(async move {
            if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                let _ = admin
                    .execute(format!("drop database if exists {name} with (force)").as_str())
                    .await;
            }
        });
    })
    .join();
}

/// A NATS namespace of the test's own; its streams are deleted when it drops.
pub struct TestNamespace {
    /// `t<12 hex>`.
    pub namespace: String,
    /// Names under it.
    pub naming: Naming,
    /// The server its streams are deleted from.
    nats_url: String,
}

impl TestNamespace {
    pub fn new() -> Self {
        Self::on(&nats_url())
    }

    /// A namespace on the server at `url`, for tests that run a server of
    /// their own.
    pub fn on(url: &str) -> Self {
        let namespace = format!("t{}", unique_suffix());
        let naming = Naming::new(&namespace).expect("a valid namespace");
        Self {
            namespace,
            naming,
            nats_url: url.to_owned(),
        }
    }
}

impl Default for TestNamespace {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let streams = [
            self.naming.orders_stream(),
            self.naming.events_stream(),
            self.naming.dead_orders_stream(),
        ];
        let url = self.nats_url.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a clean-up runtime");
            runtime.block_on(async move {
                if let Ok(client) = async_nats::connect(&url).await {
                    let js = async_nats::jetstream::new(client.clone());
                    for stream in streams {
                        let _ = js.delete_stream(&stream).await;
                    }
                    let _ = client.drain().await;
                }
            });
        })
        .join();
    }
}

/// Settings for a service under test: the test's database and namespace, the
/// test NATS server, an ephemeral HTTP port, `overrides` last.
pub fn settings(db: &TestDatabase, ns: &TestNamespace, overrides: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("NATS_URL".to_owned(), nats_url()),
        ("ORDERFLOW_NAMESPACE".to_owned(), ns.namespace.clone()),
        ("ORDERFLOW_HTTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "ORDERFLOW_METRICS_ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("ORDERFLOW_LOG_FORMAT".to_owned(), "pretty".to_owned()),
    ]);
    for (key, value) in overrides {
        vars.insert((*key).to_owned(), (*value).to_owned());
    }
    Settings::from_lookup(|name| vars.get(name).cloned()).expect("valid test settings")
}

/// The same settings as environment variables, for starting a service binary.
pub fn env_vars(
    db: &TestDatabase,
    ns: &TestNamespace,
    overrides: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut vars = vec![
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("NATS_URL".to_owned(), nats_url()),
        ("ORDERFLOW_NAMESPACE".to_owned(), ns.namespace.clone()),
        (
            "ORDERFLOW_METRICS_ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("ORDERFLOW_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    for (key, value) in overrides {
        vars.push(((*key).to_owned(), (*value).to_owned()));
    }
    vars
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `limit`.
/// Tests wait with this, never with a bare sleep.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many (product, location) stock levels differ from the sums of their
/// ledger rows: the reconciliation query. Zero when stock is true.
pub async fn ledger_drift(pool: &PgPool) -> i64 {
    let report = orderflow_core::reconciliation::reconcile(pool)
        .await
        .expect("run the reconciliation query");
    report.drift.len() as i64
}

/// Waits until the outbox relay has published every event.
pub async fn wait_for_empty_outbox(pool: &PgPool) {
    eventually(Duration::from_secs(30), "the outbox to drain", || async {
        let left: i64 = sqlx::query_scalar("select count(*) from outbox")
            .fetch_one(pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
}

/// Runs one of the workspace's binaries (`env!("CARGO_BIN_EXE_<name>")`) with
/// `args` and only `env` in its environment, besides a database and a broker
/// at closed ports: for subcommands that must not need either. Panics if the
/// run takes longer than 20 s (it hung).
pub async fn run_without_dependencies(
    binary: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> std::process::Output {
    use std::process::Stdio;
    let run = tokio::process::Command::new(binary)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/orderflow")
        .env("NATS_URL", "nats://127.0.0.1:1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap_or_else(|_| panic!("{binary} {args:?} hung"))
        .unwrap_or_else(|err| panic!("run {binary}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            database_url_for("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url_for("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(database_url_for("postgres://h", "x"), "postgres://h/x");
    }
}
