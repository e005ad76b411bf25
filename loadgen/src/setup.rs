//! Before a run: fresh products with stock, and customers with tokens, all
//! made through the stack's API so they are exactly what real clients make.

use std::time::Duration;

use anyhow::{ensure, Context};
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::args::Workload;

/// Concurrent setup requests.
const SETUP_CONCURRENCY: usize = 16;
/// Every loadgen customer has this password.
const CUSTOMER_PASSWORD: &str = "loadgen-password";

/// The products of one run, in demand order (index 0 is the hottest).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// `LG-<run id>-<n>` for product n.
    pub skus: Vec<String>,
    /// The products' ids, by the same index.
    pub product_ids: Vec<i64>,
    /// Units received into each product before the run.
    pub stock_per_product: i64,
}

/// ingress-api, for setup.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .with_context(|| format!("reach ingress-api at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            // The problem's detail names the cause, a rate limit for one.
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("log in as {email}: {status} {text}");
        }
        let body: Value = response.json().await?;
        Ok(body["access_token"]
            .as_str()
            .context("no access_token in the login answer")?
            .to_owned())
    }

    /// POSTs `body` (as `token`'s user, or anonymously) and insists on `want`.
    pub async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        body: Value,
        want: u16,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.as_u16() == want, "POST {path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A short random id naming one run's products and customers.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Creates the workload's products with `--stock` units each, through the API.
pub async fn products(
    api: &Api,
    admin: &str,
    pool: &PgPool,
    run_id: &str,
    workload: &Workload,
) -> anyhow::Result<Fixture> {
    let skus: Vec<String> = (0..workload.product_count())
        .map(|n| format!("LG-{run_id}-{n:05}"))
        .collect();
    stream::iter(skus.iter().enumerate())
        .map(|(n, sku)| async move {
            api.post(
                Some(admin),
                "/products",
                json!({"sku": sku, "name": format!("loadgen product {n}"), "price_cents": 1999,
                       "category": "loadgen", "low_stock_threshold": 10}),
                201,
            )
            .await?;
            if workload.stock > 0 {
                api.post(
                    Some(admin),
                    "/inventory/receive",
                    json!({"sku": sku, "quantity": workload.stock, "reason": "loadgen"}),
                    200,
                )
                .await?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await
        .context("create the products")?;
    let ids: Vec<(String, i64)> =
        sqlx::query_as("select sku, id from products where sku = any($1)")
            .bind(&skus)
            .fetch_all(pool)
            .await
            .context("read the products back")?;
    let by_sku: std::collections::HashMap<String, i64> = ids.into_iter().collect();
    let product_ids = skus
        .iter()
        .map(|sku| {
            by_sku.get(sku).copied().with_context(|| {
                format!("{sku} is not in the database: is --database-url the stack's database?")
            })
        })
        .collect::<anyhow::Result<Vec<i64>>>()?;
    Ok(Fixture {
        skus,
        product_ids,
        stock_per_product: workload.stock,
    })
}

/// Registers `count` customers and logs each in; returns their tokens.
pub async fn customers(api: &Api, run_id: &str, count: u32) -> anyhow::Result<Vec<String>> {
    stream::iter(0..count)
        .map(|n| async move {
            let email = format!("loadgen-{run_id}-{n}@example.com");
            api.post(
                None,
                "/auth/register",
                json!({"email": email, "password": CUSTOMER_PASSWORD}),
                201,
            )
            .await?;
            api.login(&email, CUSTOMER_PASSWORD).await
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("register the customers")
}
