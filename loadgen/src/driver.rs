//! Places the orders: open loop on a schedule, or closed loop over N
//! connections, against either system's `POST /orders`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

use crate::args::{Limit, Loop};
use crate::demand::Demand;
use crate::report::LatencyHistogram;
use crate::schedule::Schedule;

/// Where orders go, as whom, and what they name.
#[derive(Clone)]
pub struct Load {
    pub client: reqwest::Client,
    /// The full `POST /orders` URL.
    pub url: String,
    /// Bearer tokens; order i goes as customer `i % tokens.len()`.
    pub tokens: Arc<Vec<String>>,
    /// The fixture's skus, indexed like the demand's products.
    pub skus: Arc<Vec<String>>,
    pub demand: Arc<Demand>,
}

/// An HTTP client for placing orders: HTTP/1.1 keep-alive, no Nagle delay,
/// and a connection pool large enough for every request in flight.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()?)
}

/// An order the system accepted, and when it was due.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub order_id: Uuid,
    /// When the order was scheduled (open loop) or sent (closed loop), from
    /// the start of the run.
    pub due: Duration,
    /// When its answer arrived, from the start of the run.
    pub answered: Duration,
}

/// What the driver saw.
#[derive(Debug)]
pub struct Driven {
    /// The moment order 0 was due: the origin of `Accepted::due`.
    pub origin: Instant,
    /// The same moment as a Unix time in seconds, to compare with the
    /// database's timestamps.
    pub started_at_unix: f64,
    pub sent: u64,
    pub accepted: Vec<Accepted>,
    pub failed: BTreeMap<String, u64>,
    pub post_latency: LatencyHistogram,
    /// Open loop: how far behind its schedule the sender was.
    pub sender_lag: Option<LatencyHistogram>,
    /// When the last answer came, from the start.
    pub last_answer: Duration,
}

/// One request's fate.
struct Answer {
    due: Duration,
    answered: Duration,
    lag: Option<Duration>,
    result: Result<Uuid, &'static str>,
}

/// Places orders under `mode` until `limit`.
pub async fn drive(load: Load, mode: Loop, limit: Limit) -> Driven {
    let (answers, received) = mpsc::unbounded_channel();
    let start = Instant::now();
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let open = matches!(mode, Loop::Open { .. });
    let collector = tokio::spawn(collect(received, open, start));
    match mode {
        Loop::Open {
            rate,
            max_in_flight,
        } => {
            let schedule = match limit {
                Limit::Orders(n) => Schedule::new(rate, n),
                Limit::Duration(d) => Schedule::for_duration(rate, d),
            };
            open_loop(&load, schedule, max_in_flight, start, answers).await;
        }
        Loop::Closed { connections } => {
            closed_loop(&load, connections, limit, start, answers).await;
        }
    }
    let mut driven = collector.await.expect("the collector does not panic");
    driven.started_at_unix = started_at_unix;
    driven
}

/// Sends order i at `start + schedule.due(i)`, without waiting for earlier
/// answers. When every in-flight slot is taken the due orders wait for one,
/// keeping their scheduled times (see [`crate::schedule`]).
async fn open_loop(
    load: &Load,
    schedule: Schedule,
    max_in_flight: usize,
    start: Instant,
    answers: mpsc::UnboundedSender<Answer>,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut sent = 0;
    while sent < schedule.orders() {
        let due = schedule.due_by(start.elapsed(), sent);
        if due.is_empty() {
            tokio::time::sleep_until((start + schedule.due(sent)).into()).await;
            continue;
        }
        for index in due {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let scheduled = schedule.due(index);
            let lag = start.elapsed().saturating_sub(scheduled);
            let (load, answers) = (load.clone(), answers.clone());
            tokio::spawn(async move {
                let result = place(&load, index).await;
                let _ = answers.send(Answer {
                    due: scheduled,
                    answered: start.elapsed(),
                    lag: Some(lag),
                    result,
                });
                drop(slot);
            });
            sent = index + 1;
        }
    }
    // Every spawned request holds a slot until it has reported: wait for all.
    let _ = slots
        .acquire_many(max_in_flight as u32)
        .await
        .expect("the semaphore is never closed");
}

/// `connections` workers, each placing its next order when the last one is
/// answered.
async fn closed_loop(
    load: &Load,
    connections: usize,
    limit: Limit,
    start: Instant,
    answers: mpsc::UnboundedSender<Answer>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (load, answers, next) = (load.clone(), answers.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let sent = start.elapsed();
                    match limit {
                        Limit::Orders(n) if index >= n => return,
                        Limit::Duration(d) if sent >= d => return,
                        _ => {}
                    }
                    let result = place(&load, index).await;
                    let _ = answers.send(Answer {
                        due: sent,
                        answered: start.elapsed(),
                        lag: None,
                        result,
                    });
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker does not panic");
    }
}

#[derive(Deserialize)]
struct Placed {
    order_id: Uuid,
}

/// Places order `index`; the order id, or why it failed.
async fn place(load: &Load, index: u64) -> Result<Uuid, &'static str> {
    let lines = load.demand.order(index);
    let body = Demand::body(&lines, &load.skus);
    let token = &load.tokens[(index % load.tokens.len() as u64) as usize];
    let response = load
        .client
        .post(&load.url)
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(failure)?;
    let status = response.status();
    // The body is read either way, so the connection can be reused.
    let bytes = response.bytes().await.map_err(failure)?;
    if !status.is_success() {
        return Err(status_name(status.as_u16()));
    }
    serde_json::from_slice::<Placed>(&bytes)
        .map(|placed| placed.order_id)
        .map_err(|_| "no_order_id")
}

fn failure(err: reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "error"
    }
}

/// `http_<status>` as a static name for the statuses an order can get.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "http_400",
        401 => "http_401",
        403 => "http_403",
        404 => "http_404",
        409 => "http_409",
        413 => "http_413",
        422 => "http_422",
        429 => "http_429",
        500 => "http_500",
        502 => "http_502",
        503 => "http_503",
        504 => "http_504",
        _ => "http_other",
    }
}

async fn collect(
    mut received: mpsc::UnboundedReceiver<Answer>,
    open: bool,
    origin: Instant,
) -> Driven {
    let mut driven = Driven {
        origin,
        started_at_unix: 0.0,
        sent: 0,
        accepted: Vec::new(),
        failed: BTreeMap::new(),
        post_latency: LatencyHistogram::default(),
        sender_lag: open.then(LatencyHistogram::default),
        last_answer: Duration::ZERO,
    };
    while let Some(answer) = received.recv().await {
        driven.sent += 1;
        driven.last_answer = driven.last_answer.max(answer.answered);
        if let (Some(lag), Some(histogram)) = (answer.lag, driven.sender_lag.as_mut()) {
            histogram.record(lag);
        }
        match answer.result {
            Ok(order_id) => {
                driven
                    .post_latency
                    .record(answer.answered.saturating_sub(answer.due));
                driven.accepted.push(Accepted {
                    order_id,
                    due: answer.due,
                    answered: answer.answered,
                });
            }
            Err(kind) => *driven.failed.entry(kind.to_owned()).or_default() += 1,
        }
    }
    driven
}
