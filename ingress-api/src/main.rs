//! The ingress-api: finishes requests in flight on SIGTERM. Settings come from
//! the environment, logs go to stdout; everything else is in the library.

use orderflow_core::settings::Settings;
use orderflow_core::{shutdown, telemetry};
use tokio_util::sync::CancellationToken;

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
    ingress_api::startup::run(settings, shutdown).await
}
