//! loadgen: places orders for one hot product against a running orderflow
//! (ingress-api, order-processor, PostgreSQL, NATS), closed-loop with N
//! connections, waits until every accepted order is decided, then prints
//! throughput, `POST /orders` latency percentiles and the invariant checks.
//! It exits non-zero if any invariant breaks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use serde_json::{json, Value};
use sqlx::PgPool;

#[derive(Parser, Debug)]
#[command(about = "Flash-sale load on one hot product, with invariant checks")]
struct Args {
    /// ingress-api base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The stack's database, read to check the invariants.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/orderflow"
    )]
    database_url: String,
    #[arg(
        long,
        env = "ORDERFLOW_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    admin_email: String,
    #[arg(
        long,
        env = "ORDERFLOW_ADMIN_PASSWORD",
        default_value = "change-me-now"
    )]
    admin_password: String,
    /// Orders to place.
    #[arg(long, default_value_t = 20_000)]
    orders: usize,
    /// Concurrent connections placing orders.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Units of the hot product in stock; the rest of the orders are rejected.
    #[arg(long, default_value_t = 5_000)]
    stock: i64,
    /// Customers the orders are spread over.
    #[arg(long, default_value_t = 16)]
    customers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let pool = PgPool::connect(&args.database_url)
        .await
        .context("connect to the database")?;
    let api = Api {
        http: http.clone(),
        base: args.base_url.clone(),
    };

    let admin = api.login(&args.admin_email, &args.admin_password).await?;
    let sku = format!("HOT-{}", uuid::Uuid::new_v4().simple());
    api.post(Some(&admin), "/products", json!({"sku": sku, "name": "Flash sale item", "price_cents": 1999, "low_stock_threshold": 10}), 201).await?;
    api.post(
        Some(&admin),
        "/inventory/receive",
        json!({"sku": sku, "quantity": args.stock}),
        200,
    )
    .await?;
    let mut tokens = Vec::new();
    for _ in 0..args.customers {
        let email = format!("load-{}@example.com", uuid::Uuid::new_v4().simple());
        api.post(
            None,
            "/auth/register",
            json!({"email": email, "password": "load-password"}),
            201,
        )
        .await?;
        tokens.push(api.login(&email, "load-password").await?);
    }
    println!(
        "placing {} orders for {sku} ({} in stock) over {} connections",
        args.orders, args.stock, args.connections
    );

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..args.connections).map(|_| {
        let (api, next, tokens, sku) = (api.clone(), next.clone(), tokens.clone(), sku.clone());
        let total = args.orders;
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refused = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (latencies, refused);
                }
                let sent = Instant::now();
                let response = api
                    .http
                    .post(format!("{}/orders", api.base))
                    .bearer_auth(&tokens[i % tokens.len()])
                    .json(&json!({"items": [{"sku": sku, "quantity": 1}]}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 202 => latencies.push(sent.elapsed()),
                    _ => refused += 1,
                }
            }
        })
    });
    let mut latencies = Vec::new();
    let mut refused = 0;
    for worker in futures::future::join_all(workers).await {
        let (l, r) = worker?;
        latencies.extend(l);
        refused += r;
    }
    let sending = started.elapsed();
    let accepted = latencies.len() as i64;

    // Wait for every accepted order to be decided.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let decided: i64 = sqlx::query_scalar(
            "select count(*) from orders o join order_lines l on l.order_id = o.id
             where l.sku = $1 and o.status <> 'pending'",
        )
        .bind(&sku)
        .fetch_one(&pool)
        .await?;
        if decided >= accepted {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {decided} of {accepted} orders decided after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_decided = started.elapsed();
    let (confirmed, rejected, first, last): (i64, i64, f64, f64) = sqlx::query_as(
        "select count(*) filter (where o.status = 'confirmed'), count(*) filter (where o.status = 'rejected'),
                extract(epoch from min(o.created_at))::float8, extract(epoch from max(o.decided_at))::float8
         from orders o join order_lines l on l.order_id = o.id where l.sku = $1",
    )
    .bind(&sku)
    .fetch_one(&pool)
    .await?;
    let (on_hand, reserved): (i64, i64) = sqlx::query_as(
        "select sum(s.on_hand)::int8, sum(s.reserved)::int8 from stock_levels s
         join products p on p.id = s.product_id where p.sku = $1",
    )
    .bind(&sku)
    .fetch_one(&pool)
    .await?;
    let drift: i64 = sqlx::query_scalar(
        "select count(*) from stock_levels s join products p on p.id = s.product_id
         left join (select product_id, location_id, sum(on_hand_delta) h, sum(reserved_delta) r
                    from stock_movements group by 1, 2) m using (product_id, location_id)
         where p.sku = $1 and (s.on_hand <> coalesce(m.h, 0) or s.reserved <> coalesce(m.r, 0))",
    )
    .bind(&sku)
    .fetch_one(&pool)
    .await?;

    latencies.sort();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    let decision_window = (last - first).max(1e-9);
    println!(
        "accepted        {accepted} ({refused} refused) in {:.2} s: {:.0} orders/s",
        sending.as_secs_f64(),
        accepted as f64 / sending.as_secs_f64()
    );
    println!(
        "decided         {} in {:.2} s from first acceptance to last decision: {:.0} orders/s",
        confirmed + rejected,
        decision_window,
        (confirmed + rejected) as f64 / decision_window
    );
    println!(
        "wall clock      {:.2} s until every order was seen decided",
        all_decided.as_secs_f64()
    );
    println!("outcomes        {confirmed} confirmed, {rejected} rejected (insufficient_stock)");
    println!(
        "POST /orders    p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        percentile(1.0)
    );
    println!("stock           on_hand {on_hand} reserved {reserved}; ledger drift rows {drift}");

    ensure!(
        confirmed + rejected == accepted,
        "decided {} of {accepted} accepted orders",
        confirmed + rejected
    );
    ensure!(
        confirmed == args.stock.min(accepted),
        "oversold or undersold: {confirmed} confirmed for {} units",
        args.stock
    );
    ensure!(
        reserved == confirmed && on_hand == args.stock,
        "stock levels disagree with the outcomes"
    );
    ensure!(drift == 0, "the ledger does not sum to the stock levels");
    println!(
        "invariants      ok: no oversell, every accepted order decided once, ledger equals stock"
    );
    Ok(())
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let body: Value = self
            .http
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?
            .error_for_status()
            .context("log in")?
            .json()
            .await?;
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// POSTs `body` (as `token`'s user, or anonymously) and insists on `want`.
    async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        body: Value,
        want: u16,
    ) -> anyhow::Result<()> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        ensure!(
            response.status().as_u16() == want,
            "{path}: {} {}",
            response.status(),
            response.text().await?
        );
        Ok(())
    }
}
