//! Logging and metrics set-up, shared by the three services.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

use crate::metric_names;
use crate::settings::LogFormat;

/// Installs the global log subscriber writing to `sink`. `RUST_LOG` filters
/// (default `info`). Calling it twice keeps the first subscriber, so tests
/// that start several services in one process can all call it. When
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are exported too ([`crate::otel`]);
/// call [`crate::otel::shutdown`] at exit to send the last of them.
pub fn init_logging<W>(format: LogFormat, sink: W)
where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // With an OTLP endpoint configured, the spans meant for export go there too.
    let (export, installed) = match crate::otel::export() {
        Some(export) => {
            let (layer, installed) = export.into_parts();
            (Some(layer), Some(installed))
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(filter).with(export);
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(sink),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_writer(sink)).try_init(),
    };
    if let Some(installed) = installed {
        crate::otel::activate(installed, result.is_ok());
    }
}

/// Where a service's log lines go: stdout, written by a thread of its own.
///
/// Under load ingress-api writes a line per request and the notifier one per
/// event, thousands a second. Written straight to stdout, each line was a
/// `write` system call made under stdout's lock on a runtime thread, about an
/// eighth of ingress-api's time per order (BENCHMARKS.md). Here the runtime
/// threads only format the line and queue it; the writer thread writes what
/// has queued through one buffer and flushes whenever the queue runs dry, so
/// lines still appear at once when the service is quiet. The queue never
/// drops a line: when it is full (the disk or the pipe cannot keep up),
/// logging waits, as it did before. The queue holds 16,384 lines, a second's
/// worth at full load: its slots are allocated up front, and the library's
/// default of 128,000 cost 4 MiB of resident memory per service.
///
/// Keep the guard until the service exits: dropping it writes out what is
/// still queued.
pub fn stdout_log_writer() -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(16 * 1024)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ))
}

/// The process-wide Prometheus recorder, installed on first use. Histogram
/// buckets are chosen for what each one measures rather than left at the
/// defaults, which suit none of them.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let http = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let batch_size = [
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 300.0, 400.0, 512.0, 768.0, 1024.0,
                2048.0,
            ];
            let commit = [
                0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ];
            let webhook = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(metric_names::DECISION_LATENCY.into()),
                    &latency,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::HTTP_LATENCY.into()),
                        &http,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::BATCH_SIZE.into()),
                        &batch_size,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::BATCH_COMMIT.into()),
                        &commit,
                    )
                })
                .and_then(|b| {
                    // A webhook answers in milliseconds or hangs until the
                    // delivery timeout (10 s by default).
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::WEBHOOK_REQUEST_DURATION.into()),
                        &webhook,
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle_out = handle.handle();
            // A second recorder (tests running several services in one process)
            // is not an error: the first one serves everyone.
            let _ = metrics::set_global_recorder(handle);
            handle_out
        })
        .clone()
}
