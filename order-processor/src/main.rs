//! The order-processor binary. `order-processor` decides orders until
//! SIGTERM, finishing the batches in hand; `order-processor healthcheck`
//! asks the running processor's `/healthz` (on `ORDERFLOW_METRICS_ADDR`) and
//! exits 0 on 200, for container healthchecks. Settings come from the
//! environment, logs go to stdout; everything else is in the library.

use std::process::ExitCode;

use orderflow_core::settings::Settings;
use orderflow_core::{health_probe, otel, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

/// mimalloc rather than the system allocator: request handling allocates
/// and frees many small objects across threads, where glibc's malloc spent
/// a quarter of ingress-api's time under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(Settings::from_env()?),
        // No runtime, logging or connection of the service's own: the probe
        // only needs the address `/healthz` is served on.
        Some("healthcheck") => Ok(health_probe::run(
            Settings::from_env().map(|settings| order_processor::metrics_addr(&settings)),
        )),
        Some(other) => {
            eprintln!(
                "unknown command {other:?}; use `order-processor [serve]` or `order-processor healthcheck`"
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// Decides orders until SIGINT or SIGTERM.
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
    let result = order_processor::run(settings, shutdown).await;
    // The last spans go out after the last batch, whatever the outcome.
    let _ = tokio::task::spawn_blocking(otel::shutdown).await;
    result?;
    Ok(ExitCode::SUCCESS)
}
