//! Whole-stack test support: orderflow's real service binaries as child
//! processes, driven from outside the way clients, operators and Prometheus
//! see them.
//!
//! - [`Stack`]: ingress-api, order-processor and notifier started from their
//!   binaries on loopback ports over a fresh database and NATS namespace,
//!   with [`Stack::kill`] (SIGKILL), [`Stack::stop`] (SIGTERM) and
//!   [`Stack::start_service`] for fault tests; each child's log goes to a file
//!   and is printed when a test fails.
//! - [`browser`]: a real headless Chromium through chromedriver (WebDriver),
//!   for the web console's tests.
//! - [`binaries`]: builds the service binaries with cargo in the test's own
//!   profile and finds them.
//! - [`Api`]: a small client of the HTTP API.
//! - [`prometheus`]: a real Prometheus scraping the stack with the deployed
//!   configuration and rules, and its HTTP API.
//! - [`promql`]: the operands of an alert expression without their
//!   thresholds, to check each against live data.
//! - [`grafana`]: the PromQL of a provisioned dashboard.
//! - [`readme`]: what README.md documents, for the deployment file checks.
//! - [`s3`]: a real S3-compatible server (moto) on loopback and the AWS CLI,
//!   for the backup scripts under `deploy/backup`; [`EmptyDatabase`] is a
//!   restore target.
//! - [`dockerfile`]: the stages and instructions of the images' Dockerfile,
//!   for checking it without a Docker engine.
//!
//! The tests need PostgreSQL, NATS with JetStream, and for the Prometheus
//! tests `prometheus` and `promtool` on the PATH: `scripts/dev-services.sh`
//! provides all of them.

pub mod api;
pub mod binaries;
pub mod browser;
pub mod dockerfile;
mod empty_database;
pub mod grafana;
pub mod prometheus;
pub mod promql;
pub mod readme;
pub mod s3;
mod stack;

use std::path::PathBuf;

pub use api::{Answer, Api};
pub use empty_database::EmptyDatabase;
pub use stack::{
    append_to, free_loopback_address, Service, Stack, StackOptions, READY_TIMEOUT, STOP_TIMEOUT,
};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}
