//! The storm: orders flow while faults are injected on a schedule; then
//! everything is healed, the queue drains, and every promise is checked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use loadgen::invariants::{Check, RunOrders};
use loadgen::setup::Fixture;
use serde_json::{json, Value};
use stack_tests::{Api, Service};
use uuid::Uuid;

use crate::harness::{Dependency, FaultStack, Link};
use crate::load::{Customer, Demand, Load, Record};
use crate::proxy::Mode;
use crate::webhook::WebhookReceiver;

/// Added latency of a delay fault.
pub const DELAY: Duration = Duration::from_millis(250);
/// How long, once healed, every accepted order may take to be decided and
/// every decision to reach the notifier and the webhook.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// One fault, injected then healed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL a service, then start it again.
    Kill(Service),
    /// SIGTERM a service, wait for it to exit, start it again.
    Restart(Service),
    /// SIGKILL nats-server, then start it again on the same store.
    KillNats,
    /// SIGKILL PostgreSQL (every backend), then start it again.
    KillPostgres,
    /// The proxy of a link delays, stalls or drops, then passes again.
    Network(Link, Mode),
}

impl Fault {
    /// The row of the summary table this fault is counted in.
    pub fn kind(&self) -> String {
        match self {
            Fault::Kill(service) => format!("kill -9 {service}"),
            Fault::Restart(service) => format!("SIGTERM {service}"),
            Fault::KillNats => "kill -9 nats-server".into(),
            Fault::KillPostgres => "kill -9 postgres".into(),
            Fault::Network(_, Mode::Delay(_)) => "proxy delay".into(),
            Fault::Network(_, Mode::Stall) => "proxy stall".into(),
            Fault::Network(_, Mode::Drop) => "proxy drop".into(),
            Fault::Network(_, Mode::Pass) => "proxy pass".into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Network((service, dependency), _) => {
                write!(f, "{} {service}->{dependency}", self.kind())
            }
            _ => f.write_str(&self.kind()),
        }
    }
}

/// One of every fault kind, the network ones each on another link.
pub fn every_fault() -> Vec<Fault> {
    use Dependency::{Nats, Postgres};
    use Service::{IngressApi, Notifier, OrderProcessor};
    vec![
        Fault::Kill(OrderProcessor),
        Fault::Network((OrderProcessor, Postgres), Mode::Delay(DELAY)),
        Fault::KillNats,
        Fault::Network((IngressApi, Nats), Mode::Stall),
        Fault::Kill(Notifier),
        Fault::Network((OrderProcessor, Nats), Mode::Drop),
        Fault::KillPostgres,
        Fault::Network((Notifier, Nats), Mode::Delay(DELAY)),
        Fault::Kill(IngressApi),
        Fault::Network((Notifier, Postgres), Mode::Stall),
        Fault::Network((IngressApi, Postgres), Mode::Drop),
        Fault::Network((OrderProcessor, Postgres), Mode::Stall),
        Fault::Network((IngressApi, Nats), Mode::Drop),
        Fault::Network((OrderProcessor, Nats), Mode::Stall),
    ]
}

/// A rolling restart: every service in turn, with SIGTERM.
pub fn rolling_restart() -> Vec<Fault> {
    Service::ALL.iter().map(|s| Fault::Restart(*s)).collect()
}

/// How a storm runs.
#[derive(Debug, Clone)]
pub struct StormPlan {
    /// Faults in order; the list repeats until `duration` has passed, and
    /// runs once in full at least.
    pub faults: Vec<Fault>,
    /// How long orders flow while faults are injected.
    pub duration: Duration,
    /// How long each fault is held before it is healed.
    pub hold: Duration,
    /// The calm between a heal and the next fault.
    pub calm: Duration,
    /// Orders a second.
    pub rate: u32,
    pub customers: usize,
    pub products: usize,
}

/// What a storm did and found.
pub struct StormReport {
    /// Fault kind → times injected.
    pub injected: BTreeMap<String, u32>,
    pub record: Record,
    pub decided: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub checks: Vec<Check>,
    pub elapsed: Duration,
}

impl StormReport {
    /// Whether every check holds.
    pub fn holds(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && loadgen::invariants::all_hold(&self.checks)
    }

    /// The summary table and every check.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let accepted = self.record.accepted().count();
        let unavailable = self.record.unavailable().count();
        let other = self.record.other().count();
        let _ = writeln!(out, "| fault | injected |\n|---|---|");
        for (kind, count) in &self.injected {
            let _ = writeln!(out, "| {kind} | {count} |");
        }
        let _ = writeln!(
            out,
            "\n| sent | accepted (202) | decided | lost | duplicated | 503 | no answer / other |\n|---|---|---|---|---|---|---|"
        );
        let _ = writeln!(
            out,
            "| {} | {accepted} | {} | {} | {} | {unavailable} | {other} |",
            self.record.sent.len(),
            self.decided,
            self.lost,
            self.duplicated
        );
        let _ = writeln!(out, "\nchecks ({:.0?}):", self.elapsed);
        for check in &self.checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {}: {}", check.name, check.detail);
        }
        out
    }
}

/// The products and customers of a storm, and the webhook watching it.
pub struct Setup {
    pub fixture: Fixture,
    pub customers: Vec<Customer>,
    pub webhook: WebhookReceiver,
    pub admin: String,
}

/// Creates `products` products with `stock` units each, `customers`
/// customers, and a webhook for the decision events.
pub async fn set_up(
    fs: &FaultStack,
    products: usize,
    stock: i64,
    customers: usize,
) -> anyhow::Result<Setup> {
    let api = Api::new(fs.stack.api_url());
    let admin = api
        .login(&fs.stack.admin_email, &fs.stack.admin_password)
        .await?;
    let run = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let skus: Vec<String> = (0..products).map(|n| format!("F-{run}-{n}")).collect();
    for sku in &skus {
        api.product_with_stock(&admin, sku, stock, 0).await?;
    }
    let product_ids: Vec<i64> = {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("select sku, id from products where sku = any($1)")
                .bind(&skus)
                .fetch_all(&fs.stack.db.pool)
                .await?;
        let by_sku: HashMap<String, i64> = rows.into_iter().collect();
        skus.iter().map(|sku| by_sku[sku]).collect()
    };
    let mut registered = Vec::new();
    for _ in 0..customers {
        registered.push(Customer::register(&api).await?);
    }
    let webhook = WebhookReceiver::start().await?;
    api.post(
        &admin,
        "/webhooks",
        json!({"url": webhook.url(), "events": ["order.confirmed", "order.rejected"],
               "secret": "fault-injection-webhook-secret-0123456789"}),
    )
    .await?
    .expect(reqwest::StatusCode::CREATED, "register the webhook")?;
    Ok(Setup {
        fixture: Fixture {
            skus,
            product_ids,
            stock_per_product: stock,
        },
        customers: registered,
        webhook,
        admin,
    })
}

/// Injects `fault`, holds it for `hold`, and heals it: a killed or stopped
/// process is started again and awaited ready, a proxy passes again.
pub async fn inject(fs: &mut FaultStack, fault: Fault, hold: Duration) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(service) => {
            fs.stack.kill(service)?;
            tokio::time::sleep(hold).await;
            fs.stack.start_service(service).await?;
        }
        Fault::Restart(service) => {
            fs.stack.stop(service).await?;
            fs.stack.start_service(service).await?;
        }
        Fault::KillNats => {
            fs.nats.kill();
            tokio::time::sleep(hold).await;
            fs.nats.restart().await?;
        }
        Fault::KillPostgres => {
            fs.postgres.kill();
            tokio::time::sleep(hold).await;
            fs.postgres.restart().await?;
        }
        Fault::Network(link, mode) => {
            fs.set(link, mode);
            tokio::time::sleep(hold).await;
            fs.set(link, Mode::Pass);
        }
    }
    Ok(())
}

/// Runs the storm of `plan` on `fs` and checks everything.
pub async fn run(fs: &mut FaultStack, plan: &StormPlan) -> anyhow::Result<StormReport> {
    let started = Instant::now();
    // Demand outruns stock by about a third, so some orders are rejected
    // for stock and the oversell checks bite.
    // A heal takes about two seconds besides the hold (a restart, a
    // readiness wait).
    let one_pass = plan.faults.len() as f64 * (plan.hold + plan.calm).as_secs_f64() + 2.0;
    let expected_seconds = plan.duration.as_secs_f64().max(one_pass);
    let expected_orders = f64::from(plan.rate) * expected_seconds;
    let units = expected_orders * 2.25;
    let stock = ((units * 0.7) / plan.products as f64).ceil().max(5.0) as i64;
    let setup = set_up(fs, plan.products, stock, plan.customers).await?;
    let demand = Demand {
        customers: setup.customers.clone(),
        skus: setup.fixture.skus.clone(),
        rate: plan.rate,
    };
    let load = Load::start(fs.stack.api_url(), demand);
    let mut injected: BTreeMap<String, u32> = BTreeMap::new();
    let storm_started = Instant::now();
    let mut next = 0;
    while next < plan.faults.len() || storm_started.elapsed() < plan.duration {
        let fault = plan.faults[next % plan.faults.len()];
        tokio::time::sleep(plan.calm).await;
        eprintln!(
            "fault-tests: {:>6.1?} {fault} (sent, accepted so far: {:?})",
            storm_started.elapsed(),
            load.progress()
        );
        inject(fs, fault, plan.hold)
            .await
            .with_context(|| format!("inject and heal {fault}"))?;
        *injected.entry(fault.kind()).or_default() += 1;
        next += 1;
    }
    tokio::time::sleep(plan.calm).await;
    let record = load.stop().await;
    fs.heal_network();
    let mut report = check(fs, &setup, record, injected).await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Waits for every accepted order's decision, its event and its webhook, and
/// checks every promise.
pub async fn check(
    fs: &FaultStack,
    setup: &Setup,
    record: Record,
    injected: BTreeMap<String, u32>,
) -> anyhow::Result<StormReport> {
    let pool = &fs.stack.db.pool;
    let accepted: Vec<loadgen::driver::Accepted> = record
        .accepted()
        .map(|s| loadgen::driver::Accepted {
            order_id: s.order_id,
            due: s.due,
            answered: s.due + s.took,
        })
        .collect();
    let accepted_ids: Vec<Uuid> = accepted.iter().map(|a| a.order_id).collect();
    let mut run_orders = RunOrders::load(&fs.stack.db.url, &accepted, 0.0).await?;
    run_orders.wait_for_decisions(DRAIN_TIMEOUT).await?;
    let mut checks = run_orders.check(&setup.fixture).await?;
    run_orders.close().await;

    let decided: i64 = sqlx::query_scalar(
        "select count(*) from orders where id = any($1) and status <> 'pending'",
    )
    .bind(&accepted_ids)
    .fetch_one(pool)
    .await?;
    let lost = accepted_ids.len() as u64 - decided as u64;
    checks.push(Check {
        name: "202 answers carry the id derived from the key",
        ok: record.unexpected_ids.is_empty(),
        detail: format!(
            "{} accepted orders had another id",
            record.unexpected_ids.len()
        ),
    });

    // Nothing half-accepted: an order refused with 503 does not exist. A 503
    // that says the queue did not confirm the order in time promises
    // nothing either way; such orders are decided like any other (the stock
    // checks above cover every order naming the products).
    let refused: Vec<Uuid> = record
        .unavailable()
        .filter(|s| {
            matches!(
                s.answer,
                crate::load::Answer::Unavailable { refused: true, .. }
            )
        })
        .map(|s| s.order_id)
        .collect();
    let unconfirmed: Vec<Uuid> = record
        .unavailable()
        .filter(|s| {
            matches!(
                s.answer,
                crate::load::Answer::Unavailable { refused: false, .. }
            )
        })
        .map(|s| s.order_id)
        .collect();
    let unconfirmed_present: i64 =
        sqlx::query_scalar("select count(*) from orders where id = any($1)")
            .bind(&unconfirmed)
            .fetch_one(pool)
            .await?;
    let refused_but_present: i64 =
        sqlx::query_scalar("select count(*) from orders where id = any($1)")
            .bind(&refused)
            .fetch_one(pool)
            .await?;
    checks.push(Check {
        name: "nothing refused with 503 was accepted",
        ok: refused_but_present == 0,
        detail: format!(
            "{refused_but_present} of {} refused orders exist; of {} answered 503 as \
             unconfirmed, {unconfirmed_present} were taken after all",
            refused.len(),
            unconfirmed.len()
        ),
    });
    let without_retry_after = record
        .unavailable()
        .filter(|s| {
            matches!(
                s.answer,
                crate::load::Answer::Unavailable {
                    retry_after: false,
                    ..
                }
            )
        })
        .count();
    checks.push(Check {
        name: "every 503 carries Retry-After",
        ok: without_retry_after == 0,
        detail: format!("{without_retry_after} without it"),
    });

    // Reservations applied once: no order reserves more than its lines.
    let over_reserved: i64 = sqlx::query_scalar(
        "with lines as (select order_id, sum(quantity) units from order_lines
                        where order_id = any($1) group by 1),
              reserves as (select order_id, sum(reserved_delta) units, count(*) rows
                           from stock_movements where kind = 'reserve' and order_id = any($1)
                           group by 1)
         select count(*) from reserves r join lines l using (order_id) where r.units > l.units",
    )
    .bind(&accepted_ids)
    .fetch_one(pool)
    .await?;
    let drift = testkit::ledger_drift(pool).await;
    checks.push(Check {
        name: "reconciliation: ledger equals stock levels",
        ok: drift == 0,
        detail: format!("{drift} stock levels drift from the ledger"),
    });
    let negative: i64 = sqlx::query_scalar(
        "select count(*) from stock_levels where on_hand < 0 or reserved < 0 or reserved > on_hand",
    )
    .fetch_one(pool)
    .await?;
    checks.push(Check {
        name: "stock never negative",
        ok: negative == 0,
        detail: format!("{negative} stock levels out of bounds"),
    });

    // The decision events: exactly one per accepted order, of its outcome.
    testkit::wait_for_empty_outbox(pool).await;
    let events = decision_events(fs).await?;
    let statuses: HashMap<Uuid, String> =
        sqlx::query_as::<_, (Uuid, String)>("select id, status from orders where id = any($1)")
            .bind(&accepted_ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let mut by_order: HashMap<Uuid, HashSet<(Uuid, String)>> = HashMap::new();
    for event in &events {
        by_order
            .entry(event.order_id)
            .or_default()
            .insert((event.event_id, event.kind.clone()));
    }
    let mut without_event = 0;
    let mut doubled_events = 0;
    let mut wrong_kind = 0;
    for id in &accepted_ids {
        match by_order.get(id) {
            None => without_event += 1,
            Some(set) if set.len() > 1 => doubled_events += 1,
            Some(set) => {
                let (_, kind) = set.iter().next().expect("one event");
                if statuses.get(id).map(|s| format!("order.{s}")) != Some(kind.clone()) {
                    wrong_kind += 1;
                }
            }
        }
    }
    checks.push(Check {
        name: "one decision event id per accepted order",
        ok: without_event == 0 && doubled_events == 0 && wrong_kind == 0,
        detail: format!(
            "{} decision messages; {without_event} orders without one, {doubled_events} with \
             more than one event id, {wrong_kind} whose event disagrees with the order",
            events.len()
        ),
    });
    let duplicated = over_reserved as u64 + doubled_events;

    // Every decision event reached the notifier, which acted on it once.
    let event_ids: Vec<Uuid> = {
        let mut ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let handled = wait_count(
        pool,
        "select count(*) from processed_events where event_id = any($1)",
        &event_ids,
    )
    .await?;
    checks.push(Check {
        name: "every decision event handled by the notifier",
        ok: handled == event_ids.len() as i64,
        detail: format!("{handled} of {} in processed_events", event_ids.len()),
    });
    let wanted: HashSet<Uuid> = event_ids.iter().copied().collect();
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let deliveries = loop {
        let deliveries = setup.webhook.deliveries();
        if wanted.iter().all(|id| deliveries.contains_key(id)) || Instant::now() > deadline {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let undelivered = wanted
        .iter()
        .filter(|id| !deliveries.contains_key(id))
        .count();
    let redelivered = deliveries.values().filter(|n| **n > 1).count();
    let unknown = deliveries.keys().filter(|id| !wanted.contains(id)).count();
    checks.push(Check {
        name: "every decision event delivered to the webhook",
        ok: undelivered == 0 && unknown == 0,
        detail: format!(
            "{} delivered, {undelivered} never, {unknown} unknown event ids; \
             {redelivered} delivered more than once (same event id, so the receiver drops them)",
            deliveries.len()
        ),
    });
    let acted_twice: i64 = sqlx::query_scalar(
        "select count(*) from (select event_id from webhook_deliveries
                               where event_id = any($1) group by webhook_id, event_id
                               having count(*) > 1) d",
    )
    .bind(&event_ids)
    .fetch_one(pool)
    .await?;
    checks.push(Check {
        name: "no event acted on twice",
        ok: acted_twice == 0,
        detail: format!("{acted_twice} events with more than one webhook delivery row"),
    });
    let _ = &setup.admin;
    if !loadgen::invariants::all_hold(&checks) {
        eprintln!("{}", sessions(pool).await);
    }
    Ok(StormReport {
        injected,
        decided: decided as u64,
        lost,
        duplicated,
        record,
        checks,
        elapsed: Duration::ZERO,
    })
}

/// Polls a count over `ids` until it stops growing short of all of them.
async fn wait_count(pool: &sqlx::PgPool, query: &str, ids: &[Uuid]) -> anyhow::Result<i64> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let count: i64 = sqlx::query_scalar(query).bind(ids).fetch_one(pool).await?;
        if count == ids.len() as i64 || Instant::now() > deadline {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One decision event as stored in EVENTS.
#[derive(Debug, Clone)]
pub struct DecisionEvent {
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub kind: String,
}

/// Every `order.confirmed` and `order.rejected` message in the EVENTS
/// stream, read straight from the private server.
pub async fn decision_events(fs: &FaultStack) -> anyhow::Result<Vec<DecisionEvent>> {
    use async_nats::jetstream::consumer::{pull, DeliverPolicy};
    let client = async_nats::connect(fs.nats.url()).await?;
    let js = async_nats::jetstream::new(client.clone());
    let naming = &fs.stack.ns.naming;
    let mut stream = js.get_stream(naming.events_stream()).await?;
    let info = stream.info().await?;
    let total = info.state.messages;
    let mut events = Vec::new();
    if total > 0 {
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                filter_subject: naming.event_subject("order.*"),
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        while let Some(message) = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .context("read the EVENTS stream")?
        {
            let message = message?;
            let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            let kind = body["type"].as_str().unwrap_or_default().to_owned();
            if kind == "order.confirmed" || kind == "order.rejected" {
                let parse = |v: &Value| v.as_str().and_then(|s| Uuid::parse_str(s).ok());
                if let (Some(event_id), Some(order_id)) =
                    (parse(&body["event_id"]), parse(&body["order_id"]))
                {
                    events.push(DecisionEvent {
                        event_id,
                        order_id,
                        kind,
                    });
                }
            }
            let pending = message.info().map(|i| i.pending).unwrap_or(0);
            if pending == 0 {
                break;
            }
        }
    }
    drop(client);
    Ok(events)
}

/// One row of `pg_stat_activity`: client, state, wait, query, seconds in state.
type Session = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
);

/// The database sessions of the stack, for a failure report: what each
/// holds or waits for.
pub async fn sessions(pool: &sqlx::PgPool) -> String {
    let rows: Vec<Session> = sqlx::query_as(
        "select client_addr::text, state, wait_event_type || ':' || wait_event, left(query, 100),
                    extract(epoch from now() - state_change)::float8
             from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let mut out =
        String::from("database sessions (client, state, wait, query, seconds in state):\n");
    for row in rows {
        let _ = writeln!(out, "  {row:?}");
    }
    out
}
