//! The ingress-api binary. `ingress-api` serves the API until SIGTERM,
//! finishing requests in flight; `ingress-api reconcile` proves every stock
//! level against the ledger, prints any drift and exits non-zero if there is
//! some; `ingress-api healthcheck` asks the running API's `/healthz` and
//! exits 0 on 200, for container healthchecks. Settings come from the
//! environment, logs go to stdout; everything else is in the library.

use std::process::ExitCode;

use orderflow_core::settings::Settings;
use orderflow_core::{health_probe, otel, reconciliation, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

/// mimalloc rather than the system allocator: request handling allocates
/// and frees many small objects across threads, where glibc's malloc spent
/// a quarter of ingress-api's time under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(Settings::from_env()?),
        Some("reconcile") => reconcile(Settings::from_env()?),
        // No runtime, logging or connection of the service's own: the probe
        // only needs the address the API listens on.
        Some("healthcheck") => Ok(health_probe::run(
            Settings::from_env().map(|settings| settings.http_addr),
        )),
        Some(other) => {
            eprintln!(
                "unknown command {other:?}; use `ingress-api [serve]`, `ingress-api reconcile` or `ingress-api healthcheck`"
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// Serves the API until SIGINT or SIGTERM.
#[tokio::main]
async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    // Held to the end, so the last lines are written before the process exits.
    let (log_writer, _log_guard) = telemetry::stdout_log_writer();
    telemetry::init_logging(settings.log_format, log_writer);
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown::signalled().await;
        on_signal.cancel();
    });
    let result = ingress_api::startup::run(settings, shutdown).await;
    // The last spans go out after the last request, whatever the outcome.
    let _ = tokio::task::spawn_blocking(otel::shutdown).await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the reconciliation report as JSON; exit code 1 when stock drifted.
#[tokio::main]
async fn reconcile(settings: Settings) -> anyhow::Result<ExitCode> {
    let pool = sqlx::PgPool::connect(&settings.database_url).await?;
    let report = reconciliation::reconcile(&pool).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
