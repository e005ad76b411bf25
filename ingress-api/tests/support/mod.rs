//! A whole orderflow stack in the test process: ingress-api on an ephemeral
//! port and (optionally) an order-processor, over the test's own database and
//! NATS namespace on the real servers.

#![allow(dead_code)]

pub mod console;

use std::time::Duration;

use order_processor::Processor;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    pub ns: TestNamespace,
    pub settings: orderflow_core::settings::Settings,
    shutdown: CancellationToken,
    processor: Option<(Processor, CancellationToken)>,
    notifier: Option<CancellationToken>,
}

impl TestApp {
    /// Ingress and processor.
    pub async fn start() -> Self {
        Self::start_with(&[], true).await
    }

    /// Ingress only, with `overrides` applied to the settings. No rate
    /// limit unless `overrides` sets one: most tests fire many requests as
    /// one user from one address.
    pub async fn start_with(overrides: &[(&str, &str)], with_processor: bool) -> Self {
        testkit::init_logging();
        let db = TestDatabase::create().await.expect("test database");
        let ns = TestNamespace::new();
        let mut vars = vec![
            ("ORDERFLOW_ADMIN_EMAIL", ADMIN_EMAIL),
            ("ORDERFLOW_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("ORDERFLOW_PARTITIONS", "4"),
            ("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "0"),
        ];
        vars.extend_from_slice(overrides);
        let settings = testkit::settings(&db, &ns, &vars);
        let shutdown = CancellationToken::new();
        let app = ingress_api::startup::Application::build(settings.clone(), shutdown.clone())
            .await
            .expect("build ingress-api");
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.serve());
        let mut test_app = Self {
            base,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            db,
            ns,
            settings,
            shutdown,
            processor: None,
            notifier: None,
        };
        test_app.wait_for_admin().await;
        if with_processor {
            test_app.start_processor().await;
        }
        test_app
    }

    pub async fn start_processor(&mut self) {
        let token = CancellationToken::new();
        let processor = Processor::start(self.settings.clone(), token.clone())
            .await
            .expect("start the processor");
        self.processor = Some((processor, token));
    }

    /// Starts a notifier, which records low-stock alerts from the events.
    pub fn start_notifier(&mut self) {
        let token = CancellationToken::new();
        tokio::spawn(notifier::run(self.settings.clone(), token.clone()));
        self.notifier = Some(token);
    }

    pub async fn stop_processor(&mut self) {
        if let Some((processor, token)) = self.processor.take() {
            token.cancel();
            processor.wait().await;
        }
    }

    /// Waits until ingress-api reports the database ready: migrated, with
    /// the configured admin in place.
    async fn wait_for_admin(&self) {
        eventually(
            Duration::from_secs(20),
            "the database to be prepared",
            || async {
                let ready: Value = self
                    .http
                    .get(self.url("/readyz"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (ready["database"] == "up").then_some(())
            },
        )
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Registers a fresh customer and returns (user id, token).
    pub async fn customer(&self) -> (Uuid, String) {
        let email = format!("c-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({"email": email, "password": "customer-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
        (id, self.login(&email, "customer-password").await)
    }

    /// Creates a user with `role` directly in the database and logs in.
    pub async fn user_with_role(&self, role: &str) -> String {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({"email": email, "password": "some-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        sqlx::query("update users set role = $1 where email = $2")
            .bind(role)
            .bind(&email)
            .execute(&self.db.pool)
            .await
            .unwrap();
        self.login(&email, "some-password").await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a product and receives `stock` units into `main`.
    pub async fn product_with_stock(&self, admin: &str, sku: &str, stock: i64, threshold: i64) {
        let response = self
            .post(
                admin,
                "/products",
                json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": 1000,
                       "low_stock_threshold": threshold}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        if stock > 0 {
            let response = self
                .post(
                    admin,
                    "/inventory/receive",
                    json!({"sku": sku, "quantity": stock}),
                )
                .await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{:?}",
                response.text().await
            );
        }
    }

    /// Places an order and returns its id, asserting 202.
    pub async fn place(&self, token: &str, items: Value) -> Uuid {
        let response = self.post(token, "/orders", json!({ "items": items })).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{:?}",
            response.text().await
        );
        let body: Value = response.json().await.unwrap();
        Uuid::parse_str(body["order_id"].as_str().unwrap()).unwrap()
    }

    /// `GET /orders/{id}` as `token`'s user, as JSON.
    pub async fn order(&self, token: &str, id: Uuid) -> Value {
        self.get(token, &format!("/orders/{id}"))
            .await
            .json()
            .await
            .unwrap()
    }

    /// Waits until `count` orders are decided in the database.
    pub async fn wait_decided(&self, count: i64) {
        let pool = self.db.pool.clone();
        eventually(Duration::from_secs(60), "orders to be decided", || {
            let pool = pool.clone();
            async move {
                let decided: i64 =
                    sqlx::query_scalar("select count(*) from orders where status <> 'pending'")
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                (decided >= count).then_some(())
            }
        })
        .await;
    }

    /// (on_hand, reserved) of a sku summed over locations.
    pub async fn stock(&self, sku: &str) -> (i64, i64) {
        sqlx::query_as(
            "select coalesce(sum(s.on_hand), 0)::int8, coalesce(sum(s.reserved), 0)::int8
             from stock_levels s join products p on p.id = s.product_id where p.sku = $1",
        )
        .bind(sku)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// Rows of (product, location) whose stock level differs from its ledger sums.
    pub async fn ledger_drift(&self) -> i64 {
        testkit::ledger_drift(&self.db.pool).await
    }

    /// Messages in the ORDERS stream.
    pub async fn queued(&self) -> u64 {
        let client = async_nats::connect(testkit::nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(self.ns.naming.orders_stream()).await.unwrap();
        stream.info().await.unwrap().state.messages
    }
}

/// Asserts `response` is a problem+json answer with `status`, and returns it.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((_, token)) = &self.processor {
            token.cancel();
        }
        if let Some(token) = &self.notifier {
            token.cancel();
        }
    }
}
