//! OTLP export: one order's spans from ingress-api, the processor's decision,
//! the outbox relay, the notifier and its webhook request, all in the
//! client's trace and linked parent to child, received by an OTLP/HTTP
//! receiver in the test. A test binary of its own, because the tracer
//! provider and the log subscriber are installed once per process.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use orderflow_core::otel;
use orderflow_core::settings::LogFormat;
use prost::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;
use uuid::Uuid;

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// An OTLP/HTTP receiver for traces (protobuf) on an ephemeral port.
async fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let keep = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let keep = keep.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut keep = keep.lock().unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(text)
                        .unwrap_or_default();
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        keep.push(Received {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex::encode(span.trace_id),
                            span_id: hex::encode(span.span_id),
                            parent_span_id: hex::encode(span.parent_span_id),
                            attributes: span
                                .attributes
                                .into_iter()
                                .filter_map(|a| Some((a.key, text(a.value?.value.as_ref()?))))
                                .collect(),
                        });
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, spans)
}

fn text(value: &AnyValue) -> String {
    match value {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// A webhook receiver that answers 200 to everything.
async fn webhook_receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Everything logged, for the test to read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits until the spans received satisfy `found`, flushing the exporter
/// between looks.
async fn wait_for_spans<T>(
    spans: &Spans,
    what: &str,
    found: impl Fn(&[Received]) -> Option<T>,
) -> T {
    testkit::eventually(Duration::from_secs(30), what, || {
        let spans = spans.clone();
        let found = &found;
        async move {
            tokio::task::spawn_blocking(otel::flush).await.unwrap();
            let spans = spans.lock().unwrap().clone();
            found(&spans)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_exported_as_one_trace_from_the_request_to_the_webhook() {
    let (endpoint, spans) = receiver().await;
    std::env::set_var("RUST_LOG", "info");
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_SERVICE_NAME", "orderflow-under-test");
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let captured = Captured::default();
    let writer = captured.clone();
    orderflow_core::telemetry::init_logging(LogFormat::Json, move || writer.clone());
    assert!(otel::enabled(), "the endpoint turns export on");

    let mut app = TestApp::start().await;
    app.start_notifier();
    let admin = app.admin_token().await;
    let manager = app.user_with_role("manager").await;
    let hook = app
        .post(
            &manager,
            "/webhooks",
            json!({"url": webhook_receiver().await, "events": ["order.confirmed"],
                   "secret": "a-secret-of-enough-length"}),
        )
        .await;
    assert_eq!(hook.status(), StatusCode::CREATED);
    app.product_with_stock(&admin, "OTLP-1", 5, 0).await;
    let (_, token) = app.customer().await;

    let trace_id = Uuid::new_v4().simple().to_string();
    let client_span = Uuid::new_v4().simple().to_string()[..16].to_owned();
    let placed = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .header("x-request-id", "otlp-req-1")
        .json(&json!({"items": [{"sku": "OTLP-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::ACCEPTED);
    let body: Value = placed.json().await.unwrap();
    let order_id = body["order_id"].as_str().unwrap().to_owned();

    // The whole chain, each span the child of the one before it.
    let names = [
        "POST /orders",
        "order.decide",
        "event.publish",
        "event.handle",
        "webhook.send",
    ];
    let chain = wait_for_spans(&spans, "the order's five spans", |spans| {
        let mut chain: Vec<Received> = Vec::new();
        let mut parent = client_span.clone();
        for name in names {
            let span = spans
                .iter()
                .find(|s| s.trace_id == trace_id && s.name == name && s.parent_span_id == parent)?;
            parent = span.span_id.clone();
            chain.push(span.clone());
        }
        Some(chain)
    })
    .await;
    assert!(chain.iter().all(|s| s.service == "orderflow-under-test"));
    assert_eq!(chain[0].attributes["http.route"], "/orders");
    assert_eq!(chain[0].attributes["http.response.status_code"], "202");
    assert_eq!(chain[0].attributes["request_id"], "otlp-req-1");
    assert_eq!(chain[1].attributes["order_id"], order_id);
    assert_eq!(chain[1].attributes["outcome"], "confirmed");
    assert_eq!(chain[1].attributes["request_id"], "otlp-req-1");
    assert_eq!(chain[3].attributes["event_type"], "order.confirmed");
    assert_eq!(chain[3].attributes["order_id"], order_id);
    let exported = spans.lock().unwrap().clone();
    assert!(
        exported
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .all(|s| names.contains(&s.name.as_str())),
        "only the spans meant for export are exported"
    );

    // Without a traceparent the request starts a trace, and the trace id in
    // its log line is the one exported.
    let placed = app
        .post(
            &token,
            "/orders",
            json!({"items": [{"sku": "OTLP-1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(placed.status(), StatusCode::ACCEPTED);
    let second: Value = placed.json().await.unwrap();
    let second = second["order_id"].as_str().unwrap().to_owned();
    let logged = testkit::eventually(Duration::from_secs(10), "the second request's line", || {
        let captured = captured.clone();
        let second = second.clone();
        async move {
            let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|l| l["target"] == "orderflow::request" && l["order_id"] == second.as_str())
        }
    })
    .await;
    let logged_trace = logged["trace_id"].as_str().unwrap().to_owned();
    wait_for_spans(
        &spans,
        "the second order's decision in the logged trace",
        |spans| {
            let request = spans
                .iter()
                .find(|s| s.name == "POST /orders" && s.trace_id == logged_trace)?;
            assert_eq!(
                request.parent_span_id, "",
                "a new trace starts at the request"
            );
            spans
                .iter()
                .find(|s| {
                    s.name == "order.decide"
                        && s.parent_span_id == request.span_id
                        && s.attributes.get("order_id") == Some(&second)
                })
                .map(|_| ())
        },
    )
    .await;
}
