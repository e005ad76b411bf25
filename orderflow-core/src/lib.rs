//! The orderflow contract, shared by every service.
//!
//! - [`limits`]: the input limits the API enforces, one constant each.
//! - [`domain`]: parsed domain types (`Sku`, `Quantity`, `Role`, order status and reasons).
//! - [`partition`]: the stable hash that maps an order to its partition.
//! - [`naming`]: stream, subject and consumer names, under an optional namespace.
//! - [`command`]: the commands queued on the ORDERS stream.
//! - [`event`]: the events published on the EVENTS stream.
//! - [`dead_letter`]: order commands the processor gave up on, and why.
//! - [`settings`]: configuration from the environment.
//! - [`telemetry`]: logging and the Prometheus recorder.
//! - [`trace_context`]: W3C `traceparent` and request ids, and how they travel in NATS headers.
//! - [`otel`]: OpenTelemetry export of traces over OTLP/HTTP when an endpoint is configured.
//! - [`metric_names`]: every Prometheus metric name, in one place.
//! - [`db`]: the migrator and the connection pool options.
//! - [`broker`]: the NATS connection and idempotent stream provisioning.
//! - [`reconciliation`]: proving stock levels equal their ledger sums.
//! - [`shutdown`]: the SIGINT/SIGTERM signal services stop on.
//! - [`health_probe`]: the `healthcheck` subcommand's `GET /healthz` against a service's own listener.
//!
//! No HTTP framework and no long-lived pool live here: this crate only says what
//! the messages, names and settings are.

pub mod broker;
pub mod command;
pub mod db;
pub mod dead_letter;
pub mod domain;
pub mod event;
pub mod health_probe;
pub mod limits;
pub mod listener;
pub mod metric_names;
pub mod naming;
pub mod otel;
pub mod partition;
pub mod reconciliation;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;
