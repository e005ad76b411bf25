//! The order-processor: finishes the batches in hand on SIGTERM. Settings come from
//! the environment, logs go to stdout; everything else is in the library.

use orderflow_core::settings::Settings;
use orderflow_core::{otel, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

/// mimalloc rather than the system allocator: request handling allocates
/// and frees many small objects across threads, where glibc's malloc spent
/// a quarter of ingress-api's time under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    telemetry::init_logging(settings.log_format, std::io::stdout);
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown::signalled().await;
        on_signal.cancel();
    });
    let result = order_processor::run(settings, shutdown).await;
    // The last spans go out after the last batch, whatever the outcome.
    let _ = tokio::task::spawn_blocking(otel::shutdown).await;
    result
}
