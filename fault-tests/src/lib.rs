//! Fault injection: orderflow's whole stack over a private PostgreSQL and a
//! private nats-server, with every service reaching each of them through a
//! switchable TCP proxy, so a test can crash any process and cut, slow or
//! stall any link while orders flow, then prove nothing accepted was lost or
//! decided twice.
//!
//! - [`servers`]: the private PostgreSQL and nats-server, killed with SIGKILL
//!   and restarted on the same data and port.
//! - [`proxy`]: the TCP proxy (pass, delay, stall, drop).
//! - [`harness`]: the stack, its servers and its proxies together.
//! - [`load`]: the open-loop stream of orders and what each was answered.
//! - [`webhook`]: a webhook endpoint counting deliveries per event id.
//! - [`storm`]: the fault schedule, the drain, the checks and the table.
//!
//! It is a crate of its own rather than a part of stack-tests because it
//! reuses loadgen's invariant checks, and loadgen's tests already depend on
//! stack-tests: stack-tests depending on loadgen would make a cycle.

pub mod harness;
pub mod load;
pub mod proxy;
pub mod servers;
pub mod storm;
pub mod webhook;

pub use harness::{Dependency, FaultStack};
pub use proxy::Mode;
