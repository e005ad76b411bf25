//! An open-loop stream of `POST /orders` from several customers over several
//! products, recording what every request was answered.
//!
//! Every order carries an `Idempotency-Key`, so its id is known before the
//! answer (ingress-api derives it from the customer and the key): an order
//! answered 503 can be looked for afterwards, and must not exist.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The namespace ingress-api derives order ids from `Idempotency-Key`s in.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_772d_6964_656d_706f);

/// How long one request may take before it counts as unanswered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered customer.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Uuid,
    pub token: String,
}

impl Customer {
    /// Registers and logs in a new customer.
    pub async fn register(api: &stack_tests::Api) -> anyhow::Result<Self> {
        let email = format!("faults-{}@example.com", Uuid::new_v4().simple());
        let password = "faults-password";
        let body = api
            .send(
                reqwest::Method::POST,
                "/auth/register",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await?
            .expect(StatusCode::CREATED, "register a customer")?;
        let id = body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .context("the registration has no id")?;
        let token = api.login(&email, password).await?;
        Ok(Self { id, token })
    }

    /// The id ingress-api gives this customer's order placed with `key`.
    pub fn order_id(&self, key: &str) -> Uuid {
        Uuid::new_v5(
            &IDEMPOTENCY_NAMESPACE,
            format!("{}:{key}", self.id).as_bytes(),
        )
    }
}

/// How one request was answered.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 202: a promise.
    Accepted,
    /// 503, with whether it carried `Retry-After` and whether it said that
    /// nothing was accepted (rather than that the queue did not confirm the
    /// order in time, which it may still have taken).
    Unavailable { retry_after: bool, refused: bool },
    /// Anything else, or no answer (the API was down, or too slow).
    Other(String),
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Sent {
    pub order_id: Uuid,
    /// When it was due, from the start of the run.
    pub due: Duration,
    pub answer: Answer,
    /// How long the answer took.
    pub took: Duration,
}

/// Everything a run sent.
#[derive(Debug, Default, Clone)]
pub struct Record {
    pub sent: Vec<Sent>,
    /// 202 answers whose order id was not the one derived from the key.
    pub unexpected_ids: Vec<Uuid>,
}

impl Record {
    pub fn accepted(&self) -> impl Iterator<Item = &Sent> {
        self.sent
            .iter()
            .filter(|s| matches!(s.answer, Answer::Accepted))
    }

    pub fn unavailable(&self) -> impl Iterator<Item = &Sent> {
        self.sent
            .iter()
            .filter(|s| matches!(s.answer, Answer::Unavailable { .. }))
    }

    pub fn other(&self) -> impl Iterator<Item = &Sent> {
        self.sent
            .iter()
            .filter(|s| matches!(s.answer, Answer::Other(_)))
    }
}

/// Places one order with an idempotency key and records the answer.
pub async fn place(
    http: &reqwest::Client,
    api_url: &str,
    customer: &Customer,
    key: &str,
    lines: &[(String, i64)],
) -> (Answer, Option<Uuid>) {
    let items: Vec<Value> = lines
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    let response = http
        .post(format!("{api_url}/orders"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", key)
        .json(&json!({ "items": items }))
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(err) => return (Answer::Other(short_error(&err)), None),
    };
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        StatusCode::ACCEPTED => {
            let id = body["order_id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok());
            (Answer::Accepted, id)
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            let refused = body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("nothing was accepted"));
            (
                Answer::Unavailable {
                    retry_after,
                    refused,
                },
                None,
            )
        }
        other => (Answer::Other(format!("{other}")), None),
    }
}

fn short_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".into()
    } else if err.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// The orders' shape: who orders what.
#[derive(Debug, Clone)]
pub struct Demand {
    pub customers: Vec<Customer>,
    pub skus: Vec<String>,
    /// Orders a second.
    pub rate: u32,
}

impl Demand {
    /// The lines of order `n`: one or two products, 1 to 3 units each,
    /// spread deterministically.
    pub fn lines(&self, n: u64) -> Vec<(String, i64)> {
        let products = self.skus.len() as u64;
        let first = (n.wrapping_mul(2_654_435_761) >> 7) % products;
        let quantity = 1 + (n % 3) as i64;
        let mut lines = vec![(self.skus[first as usize].clone(), quantity)];
        if n % 4 == 0 && products > 1 {
            let second = (first + 1 + (n / 4) % (products - 1)) % products;
            lines.push((self.skus[second as usize].clone(), 1));
        }
        lines
    }
}

/// A stream of orders running in the background until [`Load::stop`].
pub struct Load {
    stop: watch::Sender<bool>,
    task: JoinHandle<Record>,
    record: Arc<Mutex<Record>>,
}

impl Load {
    /// Starts sending `demand.rate` orders a second to `api_url`, each under
    /// the key `<run>-<n>`.
    pub fn start(api_url: String, demand: Demand) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let record = Arc::new(Mutex::new(Record::default()));
        let shared = record.clone();
        let run = Uuid::new_v4().simple().to_string()[..8].to_owned();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("an HTTP client");
            let started = Instant::now();
            let period = Duration::from_secs_f64(1.0 / f64::from(demand.rate.max(1)));
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut requests = Vec::new();
            let demand = Arc::new(demand);
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                let due = started.elapsed();
                let customer = demand.customers[(n as usize) % demand.customers.len()].clone();
                let lines = demand.lines(n);
                let key = format!("{run}-{n}");
                let (http, api_url, shared) = (http.clone(), api_url.clone(), shared.clone());
                requests.push(tokio::spawn(async move {
                    let asked = Instant::now();
                    let (answer, returned) = place(&http, &api_url, &customer, &key, &lines).await;
                    let order_id = customer.order_id(&key);
                    let mut record = shared.lock().unwrap();
                    if let Some(returned) = returned {
                        if returned != order_id {
                            record.unexpected_ids.push(returned);
                        }
                    }
                    record.sent.push(Sent {
                        order_id,
                        due,
                        answer,
                        took: asked.elapsed(),
                    });
                }));
                n += 1;
            }
            for request in requests {
                let _ = request.await;
            }
            let record = shared.lock().unwrap().clone();
            record
        });
        Self { stop, task, record }
    }

    /// How many requests have been answered so far, and how many of those
    /// were accepted.
    pub fn progress(&self) -> (usize, usize) {
        let record = self.record.lock().unwrap();
        (record.sent.len(), record.accepted().count())
    }

    /// Stops sending, waits for the answers in flight, and returns them all.
    pub async fn stop(self) -> Record {
        self.stop.send_replace(true);
        self.task.await.expect("the load task")
    }
}
