//! A small client of ingress-api's HTTP API, for driving a [`crate::Stack`]
//! from outside as clients do.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// The API at one base URL.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// An answer: its status and its body as JSON (`null` when it has none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// Fails unless the status is `expected`, naming what was asked.
    pub fn expect(self, expected: StatusCode, what: &str) -> anyhow::Result<Value> {
        ensure!(
            self.status == expected,
            "{what}: expected {expected}, got {} {}",
            self.status,
            self.body
        );
        Ok(self.body)
    }
}

impl Api {
    /// The API at `base` (`http://127.0.0.1:<port>`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("build an HTTP client"),
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    /// `GET path`.
    pub async fn get(&self, token: &str, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, Some(token), None).await
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let body = self
            .send(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await?
            .expect(StatusCode::OK, &format!("log in as {email}"))?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("the login answer has no access_token")
    }

    /// Registers a new customer and returns their token.
    pub async fn new_customer(&self) -> anyhow::Result<String> {
        let email = format!("customer-{}@example.com", Uuid::new_v4().simple());
        let password = "customer-password";
        self.send(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await?
        .expect(StatusCode::CREATED, "register a customer")?;
        self.login(&email, password).await
    }

    /// Creates a product (as a manager or admin) and receives `stock` units
    /// of it into the default location.
    pub async fn product_with_stock(
        &self,
        manager: &str,
        sku: &str,
        stock: i64,
        low_stock_threshold: i64,
    ) -> anyhow::Result<()> {
        self.post(
            manager,
            "/products",
            json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": 1000,
                   "low_stock_threshold": low_stock_threshold}),
        )
        .await?
        .expect(StatusCode::CREATED, &format!("create product {sku}"))?;
        if stock > 0 {
            self.post(
                manager,
                "/inventory/receive",
                json!({"sku": sku, "quantity": stock}),
            )
            .await?
            .expect(StatusCode::OK, &format!("receive {stock} of {sku}"))?;
        }
        Ok(())
    }

    /// Places an order of `(sku, quantity)` lines and returns its id.
    pub async fn place_order(&self, customer: &str, lines: &[(&str, i64)]) -> anyhow::Result<Uuid> {
        let items: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        let body = self
            .post(customer, "/orders", json!({ "items": items }))
            .await?
            .expect(StatusCode::ACCEPTED, "place an order")?;
        let id = body["order_id"].as_str().context("no order_id")?;
        Ok(Uuid::parse_str(id)?)
    }

    /// Waits until the order is no longer `pending` and returns it.
    pub async fn wait_decided(
        &self,
        token: &str,
        id: Uuid,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let order = self
                .get(token, &format!("/orders/{id}"))
                .await?
                .expect(StatusCode::OK, "read an order")?;
            if order["status"] != "pending" {
                return Ok(order);
            }
            if Instant::now() > deadline {
                bail!("order {id} still pending after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
