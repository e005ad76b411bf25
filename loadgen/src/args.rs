//! The command line: what to drive, with what demand, how hard, for how long.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Load generator and benchmark for orderflow, with invariant checks";

const LONG_ABOUT: &str = "\
Load generator and benchmark for orderflow, with invariant checks.

Each run creates fresh products (skus LG-<run>-<n>) with stock, registers customers, places orders with \
POST /orders, waits until every accepted order is decided, then checks the invariants against the \
database and prints throughput, outcomes and latency percentiles.

`run` drives the orderflow stack (ingress-api, JetStream, order-processor; start it with \
scripts/start-stack.sh). `baseline` drives the per-order locking design a plain synchronous API uses: \
loadgen serves it in-process on a port of its own, and each POST /orders is one transaction that locks \
the product's stock rows, decides, writes the order, its lines, allocations and ledger rows, updates \
stock and commits, all in the stack's database. `compare` runs the baseline and then the stack with the \
same workload on fresh products and prints the ratio. All three need the stack's ingress-api, which \
creates the products, the stock and the customers.

Open loop (--rate): order i is due at start + i/rate, whatever the server does; its latencies are \
measured from that scheduled time, so a stalled server cannot hide its stall (no coordinated omission). \
Closed loop (no --rate): --connections workers each place their next order as soon as the previous \
one is answered, which finds the maximum rate; latency is then measured from the actual send.

`send to decision` runs from an order's scheduled send until its decision could be known: for the stack, \
when its order.confirmed or order.rejected event reaches loadgen's NATS subscription (published after \
the commit); for the baseline, when its answer arrives (sent after the commit). `send to decided_at` \
runs to the decided_at the database holds, on the database's clock (run loadgen on the database's \
machine or with synchronised clocks): for the stack the start of the batch transaction, before its \
locks and commit, so it reads low. Throughput counts accepted orders from the first scheduled send \
to the last answer (accepted/s) and to the last decided_at (decided/s).

The stack's ingress-api must run without its per-client rate limit: loadgen sends thousands of requests \
a second as a few customers from one address, and a limited ingress-api answers most of them 429. \
scripts/start-stack.sh starts it with ORDERFLOW_RATE_LIMIT_PER_CLIENT=0 unless the variable is set; \
elsewhere set ORDERFLOW_RATE_LIMIT_PER_CLIENT=0 in ingress-api's environment. Tokens live \
ORDERFLOW_JWT_TTL_SECONDS (15 minutes by default) and loadgen logs in once, so longer runs need a longer \
lifetime.

Exit status: 0 when every invariant holds, 1 when any invariant is broken (the failed checks are \
printed), 2 when the run could not be made (stack unreachable, bad arguments, nothing accepted).";

#[derive(Parser, Debug)]
#[command(name = "loadgen", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Drive the orderflow stack: ingress-api, JetStream, order-processor.
    Run(RunArgs),
    /// Drive the per-order locking baseline, served in-process, on the same database.
    Baseline(RunArgs),
    /// Run the baseline, then the stack, with the same workload; print both and the ratio.
    Compare(RunArgs),
}

/// Everything one run needs; `compare` uses the same values for both runs.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub workload: Workload,
    #[command(flatten)]
    pub drive: Drive,
    #[command(flatten)]
    pub baseline: BaselineOptions,
    /// Write the full report (every figure, every check, the arguments) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Where the stack and its database are.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Target")]
pub struct Target {
    /// ingress-api base URL: products, stock and customers are created through it, and `run`
    /// places orders with it.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// The stack's database, read to wait for decisions and check the invariants; the baseline
    /// writes its orders there too.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/orderflow"
    )]
    pub database_url: String,
    /// NATS, where `run` watches the decision events to time each decision.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The stack's ORDERFLOW_NAMESPACE (prefix of its subjects), empty for none.
    #[arg(long, env = "ORDERFLOW_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// An admin (or manager) account, to create products and receive stock.
    #[arg(
        long,
        env = "ORDERFLOW_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    pub admin_email: String,
    #[arg(
        long,
        env = "ORDERFLOW_ADMIN_PASSWORD",
        default_value = "change-me-now",
        hide_env_values = true
    )]
    pub admin_password: String,
}

/// The demand: which products orders name, and how many units.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Workload")]
pub struct Workload {
    /// Which products orders name: `hot` every order for one product (a flash sale; --products
    /// and --lines are then 1), `uniform` over --products, `zipf` over --products with exponent
    /// --zipf-s (product 0 the most popular).
    #[arg(long, value_enum, default_value_t = Shape::Hot)]
    pub shape: Shape,
    /// Products to create for uniform and zipf demand.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub products: u32,
    /// Zipf exponent: 0 is uniform, 1 the classic popularity curve, larger is more skewed.
    #[arg(long, default_value_t = 1.0)]
    pub zipf_s: f64,
    /// Lines per order, each for a different product drawn from the shape (multi-product
    /// orders lock every product they name).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub lines: u32,
    /// Units on each line.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub quantity: i64,
    /// Units of stock received for each product before the run; orders beyond it are rejected
    /// with insufficient_stock.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
    pub stock: i64,
    /// Customers to register; orders go round-robin over their tokens.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub customers: u32,
    /// Seed of the demand: the same seed gives the same orders in the same sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl Workload {
    /// Products the shape draws from.
    pub fn product_count(&self) -> usize {
        match self.shape {
            Shape::Hot => 1,
            Shape::Uniform | Shape::Zipf => self.products as usize,
        }
    }

    /// Refuses combinations that cannot be built.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.zipf_s.is_finite() && self.zipf_s >= 0.0,
            "--zipf-s must be a finite number >= 0"
        );
        anyhow::ensure!(
            self.lines as usize <= self.product_count(),
            "--lines {} needs at least as many products, and the {} shape has {}",
            self.lines,
            self.shape.as_str(),
            self.product_count()
        );
        Ok(())
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Hot,
    Uniform,
    Zipf,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Hot => "hot",
            Shape::Uniform => "uniform",
            Shape::Zipf => "zipf",
        }
    }
}

/// How hard and for how long.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Drive")]
pub struct Drive {
    /// Open loop: orders per second, each sent at its scheduled time whether or not earlier
    /// ones were answered. Without it the run is closed-loop over --connections.
    #[arg(long, conflicts_with = "connections")]
    pub rate: Option<f64>,
    /// Closed loop: concurrent connections, each sending its next order when the last is
    /// answered.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Orders to place (default 20000 when --duration is not given).
    #[arg(long, conflicts_with = "duration")]
    pub orders: Option<u64>,
    /// Seconds to place orders for, instead of --orders.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Open loop: most requests in flight at once, and so most connections. A due order waits
    /// for a slot but keeps its scheduled time, so the wait counts in its latency. Unbounded,
    /// every slowdown of the server made the client open hundreds of new connections at once,
    /// which cost the server more than the orders did.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,
    /// Seconds before one POST /orders counts as failed (timeout).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub request_timeout: f64,
    /// Seconds to wait, after the last order is answered, for every accepted order to be
    /// decided; an order still undecided then breaks the invariants.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub decision_timeout: f64,
}

/// How long, or how many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Orders(u64),
    Duration(Duration),
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loop {
    Open { rate: f64, max_in_flight: usize },
    Closed { connections: usize },
}

impl Drive {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(rate) = self.rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of orders per second"
            );
        }
        if let Some(seconds) = self.duration {
            anyhow::ensure!(
                seconds.is_finite() && seconds > 0.0,
                "--duration must be a positive number of seconds"
            );
        }
        anyhow::ensure!(
            self.request_timeout.is_finite() && self.request_timeout > 0.0,
            "--request-timeout must be positive"
        );
        anyhow::ensure!(
            self.decision_timeout.is_finite() && self.decision_timeout >= 0.0,
            "--decision-timeout must be >= 0"
        );
        Ok(())
    }

    pub fn limit(&self) -> Limit {
        match (self.orders, self.duration) {
            (Some(orders), _) => Limit::Orders(orders),
            (None, Some(seconds)) => Limit::Duration(Duration::from_secs_f64(seconds)),
            (None, None) => Limit::Orders(20_000),
        }
    }

    pub fn mode(&self) -> Loop {
        match self.rate {
            Some(rate) => Loop::Open {
                rate,
                max_in_flight: self.max_in_flight as usize,
            },
            None => Loop::Closed {
                connections: self.connections as usize,
            },
        }
    }
}

/// The in-process baseline server.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Baseline")]
pub struct BaselineOptions {
    /// Where the baseline's POST /orders listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub baseline_addr: SocketAddr,
    /// Database connections of the baseline's pool: at most this many order transactions at once
    /// (a typical API pool; the hot product's orders queue on its row lock whatever the size).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub baseline_pool: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_rate_makes_the_run_open_loop_and_connections_conflict_with_it() {
        let cli = Cli::try_parse_from(["loadgen", "run", "--rate", "500", "--duration", "10"])
            .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(
            args.drive.mode(),
            Loop::Open {
                rate: 500.0,
                max_in_flight: 512
            }
        );
        assert_eq!(args.drive.limit(), Limit::Duration(Duration::from_secs(10)));
        assert!(
            Cli::try_parse_from(["loadgen", "run", "--rate", "5", "--connections", "8"]).is_err()
        );
    }

    #[test]
    fn the_hot_shape_has_one_product_and_refuses_more_lines() {
        let cli = Cli::try_parse_from(["loadgen", "run", "--lines", "3"]).expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(args.workload.product_count(), 1);
        assert!(args.workload.validate().is_err());
        let cli = Cli::try_parse_from(["loadgen", "run", "--shape", "zipf", "--lines", "3"])
            .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(args.workload.product_count(), 1000);
        args.workload.validate().expect("valid");
    }
}
