//! OpenTelemetry export of traces over OTLP/HTTP, when an endpoint is
//! configured.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Then [`crate::telemetry::init_logging`]
//! adds a `tracing-opentelemetry` layer that exports the spans with target
//! [`SPAN_TARGET`], and nothing else, through a batch span processor. The
//! standard variables apply: `OTEL_SERVICE_NAME` (default: the binary's
//! name), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! Services create their spans only when [`enabled`] says so, so the hot
//! paths pay nothing while export is off; [`adopt`] links a span to the
//! remote parent from a message's headers and answers the context to pass
//! on, with or without export, so the trace id logged is always the one
//! exported.
//!
//! The exporter posts protobuf with the workspace's reqwest client, driven by
//! a small runtime on a thread of its own: the SDK's batch processor runs on
//! its own thread and blocks on each export, so the requests cannot depend on
//! the service's runtime (which may be shutting down when the last spans are
//! flushed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, TraceContextExt, TraceFlags, TraceId as OtelTraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, Filtered};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::trace_context::{SpanId, TraceContext, TraceId};

/// The target of the spans that are exported. Only spans with this target
/// are: a request, a decision, a relay publish, an event handled, a webhook
/// sent; the services' other spans stay local.
pub const SPAN_TARGET: &str = "orderflow::trace";

/// The generic endpoint variable; `/v1/traces` is appended to it.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The traces endpoint variable, used as it is.
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The service name variable.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

/// Whether spans are exported: an endpoint is configured and the layer is
/// installed. Cheap; check it before creating a span on a hot path.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The export layer, filtered to [`SPAN_TARGET`].
pub type ExportLayer<S> = Filtered<
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    tracing_subscriber::filter::FilterFn,
    S,
>;

/// The layer and the provider it feeds, before it is installed.
pub struct Export<S> {
    pub layer: ExportLayer<S>,
    provider: SdkTracerProvider,
}

fn is_exported(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == SPAN_TARGET
}

/// Whether the environment asks for export.
pub fn configured() -> bool {
    [ENDPOINT_ENV, TRACES_ENDPOINT_ENV]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// The service name: `OTEL_SERVICE_NAME`, else the binary's file name.
pub fn service_name() -> String {
    std::env::var(SERVICE_NAME_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::current_exe()
                .ok()?
                .file_stem()?
                .to_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "orderflow".to_owned())
}

/// Builds the export layer when the environment configures an endpoint.
/// A bad configuration is reported on stderr (logging is not up yet) and
/// export stays off; it never stops a service.
pub fn export<S>() -> Option<Export<S>>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if !configured() {
        return None;
    }
    match build() {
        Ok(provider) => {
            let tracer = provider.tracer("orderflow");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_filter(filter_fn(is_exported as fn(&tracing::Metadata<'_>) -> bool));
            Some(Export { layer, provider })
        }
        Err(err) => {
            eprintln!("OpenTelemetry export is off: {err}");
            None
        }
    }
}

impl<S> Export<S> {
    /// Splits off the layer; [`activate`] takes the rest once the layer is
    /// installed.
    pub fn into_parts(self) -> (ExportLayer<S>, Installed) {
        (self.layer, Installed(self.provider))
    }
}

/// The provider of a layer that was built; export starts when it is passed
/// to [`activate`].
pub struct Installed(SdkTracerProvider);

/// Turns export on after the layer was installed as part of the global
/// subscriber; when it was not (a subscriber was there already), the
/// provider is dropped and export stays as it was.
pub fn activate(installed: Installed, layer_is_global: bool) {
    if layer_is_global {
        *PROVIDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(installed.0);
        ENABLED.store(true, Ordering::Relaxed);
    } else {
        let _ = installed.0.shutdown();
    }
}

/// Exports the spans still buffered and stops export. Services call it last,
/// after their work has stopped; it blocks for at most the export timeout.
pub fn shutdown() {
    ENABLED.store(false, Ordering::Relaxed);
    let provider = PROVIDER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(provider) = provider {
        if let Err(err) = provider.force_flush() {
            eprintln!("OpenTelemetry: could not flush the last spans: {err}");
        }
        let _ = provider.shutdown();
    }
}

/// Exports the spans buffered so far without stopping export.
pub fn flush() {
    let provider = PROVIDER.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(provider) = provider {
        let _ = provider.force_flush();
    }
}

fn build() -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(ExportClient::start()?)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name())
                .build(),
        )
        .build())
}

/// The workspace's reqwest client on a one-thread runtime of its own.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn start() -> anyhow::Result<Self> {
        static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
        let runtime = match RUNTIME.get() {
            Some(handle) => handle.clone(),
            None => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let handle = runtime.handle().clone();
                // The thread parks in the runtime for the life of the
                // process; it only ever runs export requests.
                std::thread::Builder::new()
                    .name("otlp-export".into())
                    .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
                RUNTIME.get_or_init(|| handle).clone()
            }
        };
        let client = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?;
        Ok(Self { client, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut answer = Response::builder().status(response.status().as_u16());
            for (name, value) in response.headers() {
                answer = answer.header(name.as_str(), value.as_bytes());
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

/// Links `span` (created with target [`SPAN_TARGET`], or `Span::none()` when
/// export is off) to `parent`, the remote context a message or request
/// carried, and answers the context to pass on from here.
///
/// While the span is exported, the answer is the span's own context, so the
/// next hop's spans become its children; the trace id is the parent's, or a
/// new one the SDK chose when there is no parent. Otherwise the answer is a
/// child of `parent`, or a new root.
pub fn adopt(span: &tracing::Span, parent: Option<&TraceContext>) -> TraceContext {
    if enabled() && !span.is_disabled() {
        if let Some(parent) = parent {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(
                SpanContext::new(
                    OtelTraceId::from_bytes(parent.trace_id.to_bytes()),
                    opentelemetry::trace::SpanId::from_bytes(parent.parent_id.to_bytes()),
                    TraceFlags::new(parent.flags),
                    true,
                    TraceState::NONE,
                ),
            ));
        }
        let context = span.context();
        let own = context.span().span_context().clone();
        if let (Some(trace_id), Some(span_id)) = (
            TraceId::from_bytes(own.trace_id().to_bytes()),
            SpanId::from_bytes(own.span_id().to_bytes()),
        ) {
            return TraceContext {
                trace_id,
                parent_id: span_id,
                flags: own.trace_flags().to_u8(),
            };
        }
    }
    match parent {
        Some(parent) => parent.child(),
        None => TraceContext::new_root(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_export_a_hop_passes_on_a_child_of_its_parent_or_a_new_trace() {
        let parent =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let passed = adopt(&tracing::Span::none(), Some(&parent));
        assert_eq!(passed.trace_id, parent.trace_id);
        assert_eq!(
            passed.flags, parent.flags,
            "an unsampled trace stays unsampled"
        );
        assert_ne!(passed.parent_id, parent.parent_id);
        let root = adopt(&tracing::Span::none(), None);
        assert_ne!(root.trace_id, parent.trace_id);
        assert!(root.sampled());
    }
}
