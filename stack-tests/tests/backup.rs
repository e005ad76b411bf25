//! Backups: deploy/backup/pg-backup.sh and pg-restore.sh against a real
//! S3-compatible server (moto on loopback, each test in a bucket of its own)
//! and the test PostgreSQL.
//!
//! - A backup taken while clients are placing orders restores into a
//!   consistent database: ledger equals stock, nothing oversold, every order
//!   decided at most once with ledger rows matching its status, and a state
//!   from the middle of the load (some decisions, fewer than the end's).
//! - Retention goes by the timestamp in the key names, keeps a minimum of
//!   newest backups, and leaves other keys alone.
//! - A backup that fails (no database, a truncated dump) uploads nothing and
//!   prunes nothing.
//! - A restore takes the newest backup or the one named, and refuses a
//!   database that already has tables.
//! - The scripts pass shellcheck as POSIX sh (the image runs busybox sh);
//!   the image recipe passes hadolint and carries the PostgreSQL client of
//!   the compose server's major version.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};
use stack_tests::s3::S3Server;
use stack_tests::{free_loopback_address, Api, EmptyDatabase, Stack};
use testkit::{eventually, TestDatabase};
use tokio::task::JoinSet;

const BACKUP: &str = "deploy/backup/pg-backup.sh";
const RESTORE: &str = "deploy/backup/pg-restore.sh";

/// Products under load, each with a little stock, so some sell out while
/// the load runs and later orders for them are rejected.
const PRODUCTS: usize = 6;
const STOCK_PER_PRODUCT: i64 = 150;
/// Concurrent clients, each a customer of its own.
const CLIENTS: usize = 12;
/// Decisions the source must have made before the backup starts, so the
/// dump is taken mid-load rather than of an empty database.
const DECIDED_BEFORE_BACKUP: i64 = 100;
/// Orders the source must decide beyond what the dump holds before the load
/// stops, so the copy is measurably behind the source.
const DECIDED_AFTER_DUMP: i64 = 50;
const LOAD_DEADLINE: Duration = Duration::from_secs(120);

/// A key name pg-backup writes: `orderflow-YYYYMMDDTHHMMSSZ.dump`.
fn is_backup_name(key: &str, prefix: &str) -> bool {
    let Some(name) = key.strip_prefix(&format!("{prefix}/orderflow-")) else {
        return false;
    };
    let Some(stamp) = name.strip_suffix(".dump") else {
        return false;
    };
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok()
}

/// The key of a backup taken `age` ago.
fn backup_key_aged(prefix: &str, age: chrono::Duration) -> String {
    let taken = chrono::Utc::now() - age;
    format!("{prefix}/orderflow-{}.dump", taken.format("%Y%m%dT%H%M%SZ"))
}

async fn decided_orders(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from orders where status <> 'pending'")
            .fetch_one(pool)
            .await?,
    )
}

async fn connect(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|err| panic!("connect to {url}: {err}"))
}

/// Clients placing one- or two-line orders for random products until told
/// to stop; each returns how many orders it had accepted.
struct Load {
    stop: Arc<AtomicBool>,
    clients: JoinSet<anyhow::Result<u64>>,
}

impl Load {
    fn start(api: &Api, customers: Vec<String>, skus: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let skus = Arc::new(skus);
        let mut clients = JoinSet::new();
        for customer in customers {
            let (api, stop, skus) = (api.clone(), stop.clone(), skus.clone());
            clients.spawn(async move {
                let mut accepted = 0;
                while !stop.load(Ordering::Relaxed) {
                    let items = {
                        let mut rng = rand::thread_rng();
                        let lines = rng.gen_range(1..=2);
                        let first = rng.gen_range(0..skus.len());
                        (0..lines)
                            .map(|line| {
                                let sku = &skus[(first + line) % skus.len()];
                                json!({"sku": sku, "quantity": rng.gen_range(1..=3)})
                            })
                            .collect::<Vec<_>>()
                    };
                    let answer = api
                        .post(&customer, "/orders", json!({ "items": items }))
                        .await?;
                    match answer.status {
                        StatusCode::ACCEPTED => accepted += 1,
                        // A full queue asks the client to come back later.
                        StatusCode::SERVICE_UNAVAILABLE => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        other => anyhow::bail!("an order was answered {other}: {}", answer.body),
                    }
                }
                Ok(accepted)
            });
        }
        Self { stop, clients }
    }

    /// Stops every client and returns the orders accepted in all.
    async fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let mut accepted = 0;
        while let Some(client) = self.clients.join_next().await {
            accepted += client.expect("a load client panicked").unwrap();
        }
        accepted
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_consistent_earlier_database() {
    let s3 = S3Server::start().await.unwrap();
    let bucket = s3.create_bucket("under-load").unwrap();
    let stack = Stack::start().await.unwrap();
    let api = Api::new(stack.api_url());
    let admin = api
        .login(&stack.admin_email, &stack.admin_password)
        .await
        .unwrap();
    let skus: Vec<String> = (0..PRODUCTS).map(|i| format!("BACKUP-{i}")).collect();
    for sku in &skus {
        api.product_with_stock(&admin, sku, STOCK_PER_PRODUCT, 0)
            .await
            .unwrap();
    }
    let mut customers = Vec::new();
    for _ in 0..CLIENTS {
        customers.push(api.new_customer().await.unwrap());
    }
    let source = &stack.db.pool;

    let load = Load::start(&api, customers, skus.clone());
    eventually(LOAD_DEADLINE, "decisions before the backup", || async {
        (decided_orders(source).await.ok()? >= DECIDED_BEFORE_BACKUP).then_some(())
    })
    .await;
    let work_dir = tempfile::tempdir().unwrap();
    let work_path = work_dir.path().to_str().unwrap();
    s3.run_script(
        BACKUP,
        &[],
        &[
            ("DATABASE_URL", &stack.db.url),
            ("BACKUP_S3_BUCKET", &bucket),
            ("BACKUP_WORK_DIR", work_path),
        ],
    )
    .await
    .unwrap()
    .expect_success()
    .unwrap();

    let copy = EmptyDatabase::create().await.unwrap();
    s3.run_script(
        RESTORE,
        &["latest", &copy.url],
        &[
            ("BACKUP_S3_BUCKET", &bucket),
            ("BACKUP_WORK_DIR", work_path),
        ],
    )
    .await
    .unwrap()
    .expect_success()
    .unwrap();
    let copy_pool = connect(&copy.url).await;
    let decided_in_copy = decided_orders(&copy_pool).await.unwrap();

    // The load goes on until the source is clearly past the dump.
    eventually(LOAD_DEADLINE, "the source to pass the dump", || async {
        (decided_orders(source).await.ok()? >= decided_in_copy + DECIDED_AFTER_DUMP).then_some(())
    })
    .await;
    let accepted = load.stop().await as i64;
    // An accepted order may reach the database only when it is decided, so
    // the source is settled once it has decided as many as were accepted.
    let decided_in_source = eventually(LOAD_DEADLINE, "every accepted order decided", || async {
        let decided = decided_orders(source).await.ok()?;
        (decided >= accepted).then_some(decided)
    })
    .await;
    assert_eq!(
        decided_in_source, accepted,
        "the source decided every accepted order once"
    );
    eprintln!("decided: {decided_in_copy} in the copy, {decided_in_source} in the source");

    assert!(
        decided_in_copy >= DECIDED_BEFORE_BACKUP,
        "the copy holds the decisions made before the backup began: {decided_in_copy}"
    );
    assert!(
        decided_in_copy < decided_in_source,
        "the copy ({decided_in_copy} decided) is from the middle of the load, \
         before the source's end ({decided_in_source})"
    );
    let sold_out: i64 = sqlx::query_scalar(
        "select count(*) from stock_levels where on_hand > 0 and on_hand = reserved",
    )
    .fetch_one(source)
    .await
    .unwrap();
    assert!(sold_out > 0, "the load sold some product out in the source");

    assert_consistent(&copy_pool, &skus).await;
    // The copy is a database the services can start on: its migrations are
    // the source's, and applying them again is a no-op.
    orderflow_core::db::MIGRATOR
        .run(&copy_pool)
        .await
        .expect("the copy's migration history matches this build");
    assert!(
        std::fs::read_dir(work_dir.path()).unwrap().next().is_none(),
        "the scripts leave no dump behind in the work directory"
    );
    copy_pool.close().await;
}

/// The invariants a restored copy must hold on its own.
async fn assert_consistent(copy: &PgPool, skus: &[String]) {
    let report = orderflow_core::reconciliation::reconcile(copy)
        .await
        .unwrap();
    assert!(
        report.levels_checked >= skus.len() as i64,
        "the copy has the products' stock levels: {report:?}"
    );
    assert!(
        report.is_clean(),
        "ledger equals stock in the copy: {report:?}"
    );

    let out_of_bounds: i64 = sqlx::query_scalar(
        "select count(*) from stock_levels
         where on_hand < 0 or reserved < 0 or reserved > on_hand",
    )
    .fetch_one(copy)
    .await
    .unwrap();
    assert_eq!(out_of_bounds, 0, "no stock level negative or over-reserved");

    // Per product: confirmed units never exceed what was received, and
    // (with no cancellation or fulfilment in this load) equal what is
    // reserved.
    let products: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "with received as (
             select product_id, sum(on_hand_delta)::int8 units
             from stock_movements where kind = 'receive' group by 1),
         confirmed as (
             select l.sku, sum(l.quantity)::int8 units
             from order_lines l join orders o on o.id = l.order_id
             where o.status = 'confirmed' group by 1),
         reserved as (
             select product_id, sum(reserved)::int8 units from stock_levels group by 1)
         select p.sku, coalesce(r.units, 0), coalesce(c.units, 0), coalesce(s.units, 0)
         from products p
         left join received r on r.product_id = p.id
         left join confirmed c on c.sku = p.sku
         left join reserved s on s.product_id = p.id
         where p.sku = any($1)
         order by p.sku",
    )
    .bind(skus)
    .fetch_all(copy)
    .await
    .unwrap();
    assert_eq!(products.len(), skus.len(), "every product is in the copy");
    for (sku, received, confirmed, reserved) in &products {
        assert_eq!(*received, STOCK_PER_PRODUCT, "{sku}: received stock");
        assert!(
            confirmed <= received,
            "{sku}: {confirmed} units confirmed, only {received} received"
        );
        assert_eq!(confirmed, reserved, "{sku}: confirmed units are reserved");
    }

    // Per order: a confirmed order reserved (in the ledger and in its
    // allocations) exactly its lines' units, once; a rejected or pending
    // one holds nothing. A second decision would double the reservation.
    let (orders, bad_confirmed, bad_other, released): (i64, i64, i64, i64) = sqlx::query_as(
        "with lines as (select order_id, sum(quantity) units from order_lines group by 1),
         reserves as (select order_id, sum(reserved_delta) units from stock_movements
                      where kind = 'reserve' group by 1),
         allocations as (select order_id, sum(quantity) units from order_allocations group by 1)
         select count(*),
                count(*) filter (where o.status = 'confirmed'
                    and (l.units is null or coalesce(r.units, 0) <> l.units
                         or coalesce(a.units, 0) <> l.units)),
                count(*) filter (where o.status <> 'confirmed'
                    and (coalesce(r.units, 0) <> 0 or coalesce(a.units, 0) <> 0)),
                (select count(*) from stock_movements where kind in ('release', 'fulfil'))
         from orders o
         left join lines l on l.order_id = o.id
         left join reserves r on r.order_id = o.id
         left join allocations a on a.order_id = o.id",
    )
    .fetch_one(copy)
    .await
    .unwrap();
    assert!(orders > 0, "the copy holds orders");
    assert_eq!(
        bad_confirmed, 0,
        "confirmed orders whose reservations differ from their lines"
    );
    assert_eq!(
        bad_other, 0,
        "rejected or pending orders holding a reservation"
    );
    assert_eq!(
        released, 0,
        "nothing was released or shipped under this load"
    );
}

/// The keys a test seeds its bucket with before a backup: five backups far
/// older than any retention, one an hour old, and keys pg-backup did not
/// write (under the prefix and elsewhere).
struct SeededBucket {
    name: String,
    old: Vec<String>,
    recent: String,
    foreign: Vec<String>,
}

impl SeededBucket {
    fn create(s3: &S3Server, purpose: &str) -> Self {
        let name = s3.create_bucket(purpose).unwrap();
        let old: Vec<String> = (1..=5)
            .map(|day| format!("orderflow/orderflow-2020010{day}T030405Z.dump"))
            .collect();
        let recent = backup_key_aged("orderflow", chrono::Duration::hours(1));
        let foreign = vec![
            "orderflow/orderflow-latest.dump".to_owned(),
            "orderflow/notes.txt".to_owned(),
            "orderflow/manual/orderflow-20200101T000000Z.dump".to_owned(),
            "elsewhere/orderflow-20200101T000000Z.dump".to_owned(),
        ];
        for key in old.iter().chain([&recent]).chain(&foreign) {
            s3.put(&name, key, b"not a real dump").unwrap();
        }
        Self {
            name,
            old,
            recent,
            foreign,
        }
    }

    fn all(&self) -> BTreeSet<String> {
        self.old
            .iter()
            .chain([&self.recent])
            .chain(&self.foreign)
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_backups_by_key_name_but_keeps_the_newest_and_foreign_keys() {
    let s3 = S3Server::start().await.unwrap();
    let bucket = SeededBucket::create(&s3, "retention");
    let db = TestDatabase::create().await.unwrap();
    let work_dir = tempfile::tempdir().unwrap();

    let run = s3
        .run_script(
            BACKUP,
            &[],
            &[
                ("DATABASE_URL", &db.url),
                ("BACKUP_S3_BUCKET", &bucket.name),
                ("BACKUP_WORK_DIR", work_dir.path().to_str().unwrap()),
                ("BACKUP_RETENTION_DAYS", "1"),
                ("BACKUP_KEEP_MIN", "3"),
            ],
        )
        .await
        .unwrap()
        .expect_success()
        .unwrap();

    let after: BTreeSet<String> = s3.keys(&bucket.name).unwrap().into_iter().collect();
    let seeded = bucket.all();
    let new: Vec<&String> = after.difference(&seeded).collect();
    assert_eq!(new.len(), 1, "one new backup: {after:?}");
    let new = new[0].clone();
    assert!(
        is_backup_name(&new, "orderflow"),
        "the new key {new} is well named"
    );
    assert!(
        run.stderr()
            .contains(&format!("uploaded key=s3://{}/{new} size=", bucket.name)),
        "the log names the key and size:\n{}",
        run.stderr()
    );

    // Keep-minimum 3: the new backup, the hour-old one (also within
    // retention) and the newest old one; the four older are pruned.
    let mut expected: BTreeSet<String> = bucket.foreign.iter().cloned().collect();
    expected.extend([new.clone(), bucket.recent.clone(), bucket.old[4].clone()]);
    assert_eq!(after, expected, "what retention left");

    // --list shows only backups, oldest first, with their sizes.
    let listing = s3
        .run_script(RESTORE, &["--list"], &[("BACKUP_S3_BUCKET", &bucket.name)])
        .await
        .unwrap()
        .expect_success()
        .unwrap()
        .stdout();
    let listed: Vec<&str> = listing
        .lines()
        .skip(1)
        .map(|line| line.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        listed,
        [bucket.old[4].as_str(), bucket.recent.as_str(), new.as_str()],
        "{listing}"
    );
    assert!(
        std::fs::read_dir(work_dir.path()).unwrap().next().is_none(),
        "the local dump is removed after the upload"
    );
}

/// Runs pg-backup with a retention that would prune every seeded backup and
/// asserts it failed and left the bucket as it was.
async fn assert_backup_fails_and_changes_nothing(
    s3: &S3Server,
    bucket: &SeededBucket,
    database_url: &str,
    path: Option<&str>,
    expected_error: &str,
) {
    let work_dir = tempfile::tempdir().unwrap();
    let work_path = work_dir.path().to_str().unwrap();
    let mut env = vec![
        ("DATABASE_URL", database_url),
        ("BACKUP_S3_BUCKET", bucket.name.as_str()),
        ("BACKUP_WORK_DIR", work_path),
        ("BACKUP_RETENTION_DAYS", "0"),
        ("BACKUP_KEEP_MIN", "0"),
    ];
    if let Some(path) = path {
        env.push(("PATH", path));
    }
    let run = s3.run_script(BACKUP, &[], &env).await.unwrap();
    assert!(
        !run.succeeded(),
        "pg-backup exits non-zero:\n{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains(expected_error),
        "pg-backup says {expected_error:?}:\n{}",
        run.stderr()
    );
    let after: BTreeSet<String> = s3.keys(&bucket.name).unwrap().into_iter().collect();
    assert_eq!(after, bucket.all(), "nothing uploaded, nothing pruned");
    assert!(
        std::fs::read_dir(work_dir.path()).unwrap().next().is_none(),
        "the failed dump is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_an_unreachable_database_fails_and_uploads_and_prunes_nothing() {
    let s3 = S3Server::start().await.unwrap();
    let bucket = SeededBucket::create(&s3, "unreachable");
    let nobody = free_loopback_address().unwrap();
    let url = format!("postgres://postgres@{nobody}/orderflow");
    assert_backup_fails_and_changes_nothing(&s3, &bucket, &url, None, "pg_dump failed").await;
}

/// A directory holding a `pg_dump` that runs the real one and then cuts its
/// output file in half, as a full disk or a killed copy might, while still
/// exiting 0.
fn truncating_pg_dump(dir: &Path) -> PathBuf {
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("pg_dump"))
        .find(|path| path.is_file())
        .expect("pg_dump is on the PATH");
    let shim = dir.join("pg_dump");
    std::fs::write(
        &shim,
        format!(
            r#"#!/bin/sh
set -eu
'{}' "$@"
for arg in "$@"; do
  case $arg in --file=*) file=${{arg#--file=}} ;; esac
done
size=$(wc -c <"$file")
head -c $((size / 2)) "$file" >"$file.cut"
mv "$file.cut" "$file"
"#,
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    shim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_dump_is_never_uploaded() {
    let s3 = S3Server::start().await.unwrap();
    let bucket = SeededBucket::create(&s3, "truncated");
    let db = TestDatabase::create().await.unwrap();
    // Enough rows that half the file cuts through table data, past the
    // table of contents that `pg_restore --list` alone would read.
    sqlx::query(
        "insert into orders (id, customer_id, status, request_hash, partition, created_at)
         select gen_random_uuid(), gen_random_uuid(), 'pending', '\\x00', 0, now()
         from generate_series(1, 5000)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let shim_dir = tempfile::tempdir().unwrap();
    truncating_pg_dump(shim_dir.path());
    let mut dirs = vec![shim_dir.path().to_path_buf(), s3.tools_bin().to_path_buf()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    let path = std::env::join_paths(dirs).unwrap();
    let path = path.to_str().unwrap();
    assert_backup_fails_and_changes_nothing(
        &s3,
        &bucket,
        &db.url,
        Some(path),
        "does not read back to its end",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_refuses_a_database_that_already_has_tables() {
    let s3 = S3Server::start().await.unwrap();
    let bucket = s3.create_bucket("refuse").unwrap();
    let source = TestDatabase::create().await.unwrap();
    s3.run_script(
        BACKUP,
        &[],
        &[("DATABASE_URL", &source.url), ("BACKUP_S3_BUCKET", &bucket)],
    )
    .await
    .unwrap()
    .expect_success()
    .unwrap();

    // A live database: migrated, with a product in it.
    let live = TestDatabase::create().await.unwrap();
    sqlx::query("insert into products (sku, name, price_cents) values ('LIVE-1', 'Live', 100)")
        .execute(&live.pool)
        .await
        .unwrap();
    let run = s3
        .run_script(
            RESTORE,
            &["latest", &live.url],
            &[("BACKUP_S3_BUCKET", &bucket)],
        )
        .await
        .unwrap();
    assert!(
        !run.succeeded(),
        "the restore is refused:\n{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("already has") && run.stderr().contains("create database"),
        "the refusal says how to make a fresh database:\n{}",
        run.stderr()
    );
    let products: Vec<String> = sqlx::query_scalar("select sku from products")
        .fetch_all(&live.pool)
        .await
        .unwrap();
    assert_eq!(products, ["LIVE-1"], "the live database is untouched");

    // The same backup goes into an empty database.
    let fresh = EmptyDatabase::create().await.unwrap();
    s3.run_script(
        RESTORE,
        &["latest", &fresh.url],
        &[("BACKUP_S3_BUCKET", &bucket)],
    )
    .await
    .unwrap()
    .expect_success()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_takes_the_newest_backup_or_the_one_named() {
    let s3 = S3Server::start().await.unwrap();
    let bucket = s3.create_bucket("choose").unwrap();
    let source = TestDatabase::create().await.unwrap();
    let backup = || async {
        s3.run_script(
            BACKUP,
            &[],
            &[("DATABASE_URL", &source.url), ("BACKUP_S3_BUCKET", &bucket)],
        )
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    };

    // The first backup, moved to a name from long ago so the second cannot
    // share its second-resolution timestamp.
    backup().await;
    let first = s3.keys(&bucket).unwrap();
    assert_eq!(first.len(), 1);
    let older = "orderflow/orderflow-20200101T000000Z.dump";
    s3.aws(&[
        "s3",
        "mv",
        "--only-show-errors",
        &format!("s3://{bucket}/{}", first[0]),
        &format!("s3://{bucket}/{older}"),
    ])
    .unwrap();
    sqlx::query("insert into products (sku, name, price_cents) values ('NEWER-1', 'Newer', 100)")
        .execute(&source.pool)
        .await
        .unwrap();
    backup().await;

    let skus_after_restoring = |choice: &'static str| {
        let s3 = &s3;
        let bucket = &bucket;
        async move {
            let target = EmptyDatabase::create().await.unwrap();
            s3.run_script(
                RESTORE,
                &[choice, &target.url],
                &[("BACKUP_S3_BUCKET", bucket)],
            )
            .await
            .unwrap()
            .expect_success()
            .unwrap();
            let pool = connect(&target.url).await;
            let skus: Vec<String> = sqlx::query_scalar("select sku from products")
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            skus
        }
    };
    assert_eq!(
        skus_after_restoring("latest").await,
        ["NEWER-1"],
        "latest is the newest backup by its key's timestamp"
    );
    // A name under the prefix, or the full key.
    assert!(skus_after_restoring("orderflow-20200101T000000Z.dump")
        .await
        .is_empty());
    assert!(skus_after_restoring(older).await.is_empty());
}

/// Runs `tool` from the backup tools' virtualenv with `args` from the
/// repository root and asserts it succeeded.
fn lint(tool: &str, args: &[&str]) {
    let bin = stack_tests::s3::tools_bin().unwrap_or_else(|err| panic!("{err:#}"));
    let output = std::process::Command::new(bin.join(tool))
        .args(args)
        .current_dir(stack_tests::repo_root())
        .output()
        .unwrap_or_else(|err| panic!("run {tool}: {err}"));
    assert!(
        output.status.success(),
        "{tool} {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_backup_scripts_pass_shellcheck_as_posix_sh() {
    // The image runs them with busybox sh: no bash features allowed.
    lint("shellcheck", &["--shell=sh", BACKUP, RESTORE]);
    lint("shellcheck", &["scripts/backup-test-tools.sh"]);
}

/// The value of the first instruction `name` in a Dockerfile.
fn instruction<'a>(dockerfile: &'a str, name: &str) -> &'a str {
    dockerfile
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("the recipe has no {name}"))
        .trim()
}

#[test]
fn the_backup_image_recipe_lints_clean_and_matches_the_compose_server() {
    const RECIPE: &str = "deploy/docker/backup.Dockerfile";
    lint("hadolint", &[RECIPE]);
    let root = stack_tests::repo_root();
    let recipe = std::fs::read_to_string(root.join(RECIPE)).unwrap();
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();

    // pg_dump refuses a newer server, so the image's client tools are of
    // the compose server's major version.
    let server_major = compose
        .lines()
        .find_map(|line| line.trim().strip_prefix("image: postgres:"))
        .expect("docker-compose.yml runs a postgres image")
        .split(['.', '-'])
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        instruction(&recipe, "FROM"),
        format!("postgres:{server_major}-alpine"),
        "the image's PostgreSQL client is the server's major version"
    );
    let user = instruction(&recipe, "USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0) && gid.parse::<u32>().is_ok(),
        "a numeric non-root USER, got {user}"
    );
    assert_eq!(instruction(&recipe, "HEALTHCHECK"), "NONE");
    assert_eq!(
        instruction(&recipe, "ENTRYPOINT"),
        r#"["/usr/local/bin/pg-backup"]"#
    );
    for (script, installed) in [
        (BACKUP, "/usr/local/bin/pg-backup"),
        (RESTORE, "/usr/local/bin/pg-restore"),
    ] {
        assert!(
            recipe.lines().any(|line| line.starts_with("COPY")
                && line.ends_with(&format!(" {script} {installed}"))),
            "the recipe installs {script} as {installed}"
        );
        assert!(root.join(script).is_file());
    }
}
