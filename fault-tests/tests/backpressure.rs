//! Backpressure: with the broker gone, ingress-api refuses orders at once
//! with 503 and `Retry-After`, accepts none of them half-way, and takes
//! orders again by itself once the broker is back; with the database gone it
//! keeps accepting, and the orders are decided once it returns.

use std::time::{Duration, Instant};

use fault_tests::load::{place, Answer, Customer};
use fault_tests::{Dependency, FaultStack, Mode};
use stack_tests::{Api, Service, StackOptions};
use uuid::Uuid;

/// The goal for a refusal while the broker is known to be down: well under
/// the publish timeout (2 s).
const FAST_REFUSAL: Duration = Duration::from_millis(300);

struct Client {
    http: reqwest::Client,
    api_url: String,
    customer: Customer,
    lines: Vec<(String, i64)>,
}

impl Client {
    /// Places an order under a fresh key: its answer, its id, how long it took.
    async fn order(&self) -> (Answer, Uuid, Duration) {
        let key = Uuid::new_v4().to_string();
        let started = Instant::now();
        let (answer, _) = place(&self.http, &self.api_url, &self.customer, &key, &self.lines).await;
        (answer, self.customer.order_id(&key), started.elapsed())
    }

    /// Waits until ingress-api says the broker is down.
    async fn wait_broker(&self, up: bool) {
        let url = format!("{}/readyz", self.api_url);
        testkit::eventually(
            Duration::from_secs(30),
            "readyz to follow the broker",
            || async {
                let body: serde_json::Value =
                    self.http.get(&url).send().await.ok()?.json().await.ok()?;
                ((body["broker"] == "up") == up).then_some(())
            },
        )
        .await;
    }

    /// Refused orders while the broker is away: each is 503 with
    /// `Retry-After`, fast. Returns their ids and the slowest answer.
    async fn refused(&self, count: usize) -> (Vec<Uuid>, Duration) {
        let mut ids = Vec::new();
        let mut slowest = Duration::ZERO;
        for _ in 0..count {
            let (answer, id, took) = self.order().await;
            assert!(
                matches!(
                    answer,
                    Answer::Unavailable {
                        retry_after: true,
                        refused: true
                    }
                ),
                "expected 503 with Retry-After, nothing accepted, got {answer:?}"
            );
            ids.push(id);
            slowest = slowest.max(took);
        }
        (ids, slowest)
    }

    /// Waits until an order is accepted again, and returns its id.
    async fn accepted_again(&self) -> Uuid {
        testkit::eventually(
            Duration::from_secs(30),
            "orders to be accepted again",
            || async {
                let (answer, id, _) = self.order().await;
                matches!(answer, Answer::Accepted).then_some(id)
            },
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_broker_orders_are_refused_at_once_and_none_is_accepted_half_way() {
    let mut fs = FaultStack::start(StackOptions::default()).await.unwrap();
    let api = Api::new(fs.stack.api_url());
    let admin = api
        .login(&fs.stack.admin_email, &fs.stack.admin_password)
        .await
        .unwrap();
    api.product_with_stock(&admin, "BP-1", 1000, 0)
        .await
        .unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        api_url: fs.stack.api_url(),
        customer: Customer::register(&api).await.unwrap(),
        lines: vec![("BP-1".to_owned(), 1)],
    };
    let mut accepted = vec![client.accepted_again().await];
    let mut refused = Vec::new();

    // nats-server killed.
    fs.nats.kill();
    client.wait_broker(false).await;
    let (ids, slowest_killed) = client.refused(10).await;
    refused.extend(ids);
    fs.nats.restart().await.unwrap();
    accepted.push(client.accepted_again().await);

    // The link from ingress-api to nats-server dropped.
    fs.set((Service::IngressApi, Dependency::Nats), Mode::Drop);
    client.wait_broker(false).await;
    let (ids, slowest_dropped) = client.refused(10).await;
    refused.extend(ids);
    fs.set((Service::IngressApi, Dependency::Nats), Mode::Pass);
    accepted.push(client.accepted_again().await);
    eprintln!(
        "slowest 503 with nats-server killed: {slowest_killed:?}; with the link dropped: {slowest_dropped:?}"
    );
    assert!(
        slowest_killed < FAST_REFUSAL && slowest_dropped < FAST_REFUSAL,
        "503s took {slowest_killed:?} and {slowest_dropped:?}, not under {FAST_REFUSAL:?}"
    );

    // PostgreSQL killed: orders are still accepted, and decided once it is back.
    fs.postgres.kill();
    for _ in 0..5 {
        let (answer, id, _) = client.order().await;
        assert!(
            matches!(answer, Answer::Accepted),
            "with the database down ingress-api still accepts: {answer:?}"
        );
        accepted.push(id);
    }
    fs.postgres.restart().await.unwrap();

    for id in &accepted {
        let order = api
            .wait_decided(&client.customer.token, *id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(order["status"], "confirmed", "{order}");
    }
    // Everything queued is decided; none of the refused orders is there.
    let present: i64 = sqlx::query_scalar("select count(*) from orders where id = any($1)")
        .bind(&refused)
        .fetch_one(&fs.stack.db.pool)
        .await
        .unwrap();
    assert_eq!(
        present,
        0,
        "{present} of {} refused orders were accepted after all",
        refused.len()
    );
}
