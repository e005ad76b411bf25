//! loadgen: the load generator and benchmark of orderflow.
//!
//! One run sets up fresh products and customers, places orders, waits until
//! every accepted order is decided, and checks the invariants; `compare` does
//! it for the per-order baseline and for the stack, one after the other.
//!
//! - [`args`]: the command line.
//! - [`setup`]: products, stock and customers, through the stack's API.
//! - [`demand`]: which products each order names (hot, uniform, zipf; one or
//!   more lines), deterministic per seed.
//! - [`schedule`]: when each order is due in an open-loop run.
//! - [`driver`]: places the orders, open loop or closed loop.
//! - [`baseline`]: the per-order locking design, served in-process.
//! - [`events`]: when the stack's decision events arrive.
//! - [`invariants`]: waits for the decisions and checks the invariants.
//! - [`report`]: histograms, the report, the table.

pub mod args;
pub mod baseline;
pub mod demand;
pub mod driver;
pub mod events;
pub mod invariants;
pub mod report;
pub mod schedule;
pub mod setup;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::args::{Command, Limit, Loop, RunArgs, Shape};
use crate::baseline::BaselineServer;
use crate::demand::Demand;
use crate::driver::Load;
use crate::events::DecisionWatch;
use crate::invariants::RunOrders;
use crate::report::{Comparison, DriveReport, LatencyHistogram, Report, WorkloadReport};
use crate::setup::Api;

/// How long to wait, once the database holds every decision, for the last
/// decision events (the outbox relay publishes them just after the commit).
const EVENT_GRACE: Duration = Duration::from_secs(30);

/// Which design takes the orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// The stack: ingress-api, JetStream, the batching order-processor.
    Orderflow,
    /// One transaction per order, in-process ([`baseline`]).
    Baseline,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Orderflow => "orderflow",
            System::Baseline => "baseline",
        }
    }
}

/// Runs the command; `Ok(false)` when an invariant broke.
pub async fn execute(cli: args::Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Run(args) => single(System::Orderflow, &args).await,
        Command::Baseline(args) => single(System::Baseline, &args).await,
        Command::Compare(args) => compare(&args).await,
    }
}

async fn single(system: System, args: &RunArgs) -> anyhow::Result<bool> {
    let session = Session::open(args).await?;
    let report = run(system, args, &session).await?;
    print!("{}", report.render());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(report.invariants_hold)
}

/// The baseline first: it leaves no work behind, where the stack's notifier
/// and outbox relay are still busy for a moment after its last decision.
async fn compare(args: &RunArgs) -> anyhow::Result<bool> {
    let session = Session::open(args).await?;
    let baseline = run(System::Baseline, args, &session).await?;
    print!("{}", baseline.render());
    println!();
    let orderflow = run(System::Orderflow, args, &session).await?;
    print!("{}", orderflow.render());
    println!();
    let comparison = Comparison::new(baseline, orderflow);
    print!("{}", comparison.render());
    if let Some(path) = &args.json {
        write_json(path, &comparison)?;
    }
    Ok(comparison.baseline.invariants_hold && comparison.orderflow.invariants_hold)
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), value)
        .with_context(|| format!("write {}", path.display()))?;
    eprintln!("report written to {}", path.display());
    Ok(())
}

/// What every run of one invocation shares: the API, the admin, the
/// database, and the customers.
struct Session {
    api: Api,
    admin: String,
    pool: PgPool,
    tokens: Arc<Vec<String>>,
}

impl Session {
    async fn open(args: &RunArgs) -> anyhow::Result<Self> {
        args.workload.validate()?;
        args.drive.validate()?;
        let api = Api::new(&args.target.base_url)?;
        let admin = api
            .login(&args.target.admin_email, &args.target.admin_password)
            .await
            .context("log in as the admin (is the stack running? see scripts/start-stack.sh)")?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&args.target.database_url)
            .await
            .context("connect to the database")?;
        let tokens = setup::customers(&api, &setup::run_id(), args.workload.customers).await?;
        Ok(Self {
            api,
            admin,
            pool,
            tokens: Arc::new(tokens),
        })
    }
}

/// One run against `system`: set up, drive, wait, check.
async fn run(system: System, args: &RunArgs, session: &Session) -> anyhow::Result<Report> {
    let run_id = setup::run_id();
    let workload = &args.workload;
    eprintln!(
        "{}: creating {} product(s) with {} units each (run {run_id})",
        system.as_str(),
        workload.product_count(),
        workload.stock
    );
    let fixture = setup::products(
        &session.api,
        &session.admin,
        &session.pool,
        &run_id,
        workload,
    )
    .await?;

    let server = match system {
        System::Orderflow => None,
        System::Baseline => {
            let pool = PgPoolOptions::new()
                .max_connections(args.baseline.baseline_pool)
                .connect(&args.target.database_url)
                .await
                .context("connect the baseline to the database")?;
            Some(BaselineServer::start(pool, args.baseline.baseline_addr).await?)
        }
    };
    let url = match &server {
        Some(server) => server.orders_url(),
        None => format!("{}/orders", session.api.base()),
    };
    let mode = args.drive.mode();
    let limit = args.drive.limit();
    eprintln!(
        "{}: placing orders at {url}, {}, {}",
        system.as_str(),
        match mode {
            Loop::Open { rate, .. } => format!("open loop at {rate}/s"),
            Loop::Closed { connections } => format!("closed loop over {connections} connections"),
        },
        match limit {
            Limit::Orders(n) => format!("{n} orders"),
            Limit::Duration(d) => format!("for {:.1} s", d.as_secs_f64()),
        }
    );
    let load = Load {
        client: driver::client(Duration::from_secs_f64(args.drive.request_timeout))?,
        url,
        tokens: session.tokens.clone(),
        skus: Arc::new(fixture.skus.clone()),
        demand: Arc::new(Demand::new(workload)),
    };
    let watch = match system {
        System::Orderflow => Some(
            DecisionWatch::start(&args.target.nats_url, &args.target.namespace)
                .await
                .context("watch the decision events")?,
        ),
        System::Baseline => None,
    };
    let driven = driver::drive(load, mode, limit).await;
    if let Some(server) = server {
        server.stop().await?;
    }
    ensure!(
        !driven.accepted.is_empty(),
        "{}: no order was accepted ({} sent, failures {:?})",
        system.as_str(),
        driven.sent,
        driven.failed
    );

    let accepted_ids: Vec<uuid::Uuid> = driven.accepted.iter().map(|a| a.order_id).collect();
    if let Some(watch) = &watch {
        eprintln!(
            "{}: {} orders accepted; waiting for their decision events",
            system.as_str(),
            accepted_ids.len()
        );
        // Falls through to the database on a timeout, which then says which
        // orders are undecided.
        watch
            .wait_for(
                &accepted_ids,
                Duration::from_secs_f64(args.drive.decision_timeout),
            )
            .await;
    }
    let mut orders = RunOrders::load(
        &args.target.database_url,
        &driven.accepted,
        driven.started_at_unix,
    )
    .await?;
    eprintln!(
        "{}: {} orders accepted; waiting for every decision",
        system.as_str(),
        driven.accepted.len()
    );
    let undecided = orders
        .wait_for_decisions(Duration::from_secs_f64(args.drive.decision_timeout))
        .await?;
    if undecided > 0 {
        eprintln!(
            "{}: {undecided} orders still undecided after {} s",
            system.as_str(),
            args.drive.decision_timeout
        );
    }
    let decisions = orders.decisions().await?;
    let invariants = orders.check(&fixture).await?;
    orders.close().await;

    // Send to decision: to the decision event (the stack) or to the answer
    // (the baseline decides before it answers).
    let mut send_to_decision = LatencyHistogram::default();
    let decision_source = match watch {
        Some(watch) => {
            let seen = watch.finish(&accepted_ids, EVENT_GRACE).await;
            for accepted in &driven.accepted {
                if let Some(arrived) = seen.get(&accepted.order_id) {
                    send_to_decision
                        .record(arrived.saturating_duration_since(driven.origin + accepted.due));
                }
            }
            "events"
        }
        None => {
            for accepted in &driven.accepted {
                send_to_decision.record(accepted.answered.saturating_sub(accepted.due));
            }
            "answers"
        }
    };

    let sending_seconds = driven.last_answer.as_secs_f64();
    let decision_seconds = decisions
        .last_decided_unix
        .map_or(0.0, |last| last - driven.started_at_unix);
    let per_second = |n: u64, seconds: f64| {
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    };
    Ok(Report {
        system: system.as_str(),
        run_id,
        started_at_unix: driven.started_at_unix,
        workload: WorkloadReport {
            shape: workload.shape.as_str(),
            products: workload.product_count(),
            zipf_s: (workload.shape == Shape::Zipf).then_some(workload.zipf_s),
            lines: workload.lines,
            quantity: workload.quantity,
            stock_per_product: workload.stock,
            customers: workload.customers,
            seed: workload.seed,
        },
        drive: match mode {
            Loop::Open {
                rate,
                max_in_flight,
            } => DriveReport {
                mode: "open",
                rate: Some(rate),
                connections: None,
                max_in_flight: Some(max_in_flight),
                orders: args.drive.orders,
                duration_seconds: args.drive.duration,
            },
            Loop::Closed { connections } => DriveReport {
                mode: "closed",
                rate: None,
                connections: Some(connections),
                max_in_flight: None,
                orders: args.drive.orders,
                duration_seconds: args.drive.duration,
            },
        },
        sent: driven.sent,
        accepted: driven.accepted.len() as u64,
        failed: driven.failed,
        sending_seconds,
        accepted_per_second: per_second(driven.accepted.len() as u64, sending_seconds),
        decided: decisions.decided,
        confirmed: decisions.confirmed,
        rejected: decisions.rejected,
        decision_seconds,
        decided_per_second: per_second(decisions.decided, decision_seconds),
        post_orders_ms: driven.post_latency.summary(),
        decisions_observed: send_to_decision.count(),
        send_to_decision_ms: send_to_decision.summary(),
        decision_source,
        send_to_decided_at_ms: decisions.send_to_decided_at.summary(),
        sender_lag_ms: driven.sender_lag.map(|h| h.summary()),
        invariants_hold: invariants::all_hold(&invariants),
        invariants,
    })
}
