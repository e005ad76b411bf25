//! A real Prometheus, configured from deploy/prometheus, scrapes the real
//! service binaries while real traffic flows: every target is up, every rule
//! loads and evaluates, every dashboard query and every alert operand
//! returns data, and the healthy stack raises no alert.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{json, Value};
use stack_tests::prometheus::{find_tool, test_config, Prometheus};
use stack_tests::promql::{self, Operand};
use stack_tests::{grafana, repo_root, Api, Service, Stack, StackOptions};

/// What `$__rate_interval` becomes: with scrapes every second, a minute
/// holds plenty of samples.
const RATE_INTERVAL: &str = "1m";
/// How long data may take to show up in Prometheus.
const DATA_TIMEOUT: Duration = Duration::from_secs(45);

/// A webhook receiver on loopback that answers 200 and counts requests.
async fn webhook_receiver() -> (SocketAddr, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, received)
}

/// Polls `check` until it returns `Ok(Some)`, or returns its last complaint
/// once `limit` passed.
async fn poll<T, F, Fut>(limit: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let complaint = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "no answer yet".to_owned(),
            Err(complaint) => complaint,
        };
        if Instant::now() > deadline {
            return Err(complaint);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Orders confirmed and rejected for both reasons, a cancellation, a
/// fulfilment, a bad request and a webhook delivery.
async fn drive_traffic(stack: &Stack, receiver: SocketAddr) -> anyhow::Result<()> {
    let api = Api::new(stack.api_url());
    let admin = api.login(&stack.admin_email, &stack.admin_password).await?;
    api.post(
        &admin,
        "/webhooks",
        json!({"url": format!("http://{receiver}/hook"), "events": ["*"],
               "secret": "a-webhook-secret-of-some-length"}),
    )
    .await?
    .expect(StatusCode::CREATED, "register a webhook")?;
    // Three in stock, threshold five: low stock from the start.
    api.product_with_stock(&admin, "PROM-1", 3, 5).await?;
    let customer = api.new_customer().await?;

    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(api.place_order(&customer, &[("PROM-1", 1)]).await?);
    }
    orders.push(api.place_order(&customer, &[("NO-SUCH-SKU", 1)]).await?);
    let mut decided = Vec::new();
    for id in &orders {
        let order = api
            .wait_decided(&customer, *id, Duration::from_secs(30))
            .await?;
        decided.push((order["status"].clone(), order["reason"].clone()));
    }
    assert_eq!(
        decided,
        [
            (json!("confirmed"), Value::Null),
            (json!("confirmed"), Value::Null),
            (json!("confirmed"), Value::Null),
            (json!("rejected"), json!("insufficient_stock")),
            (json!("rejected"), json!("unknown_sku")),
        ],
        "decisions in queue order"
    );
    api.post(
        &customer,
        &format!("/orders/{}/cancel", orders[0]),
        json!({}),
    )
    .await?
    .expect(StatusCode::ACCEPTED, "cancel an order")?;
    api.post(&admin, &format!("/orders/{}/fulfil", orders[1]), json!({}))
        .await?
        .expect(StatusCode::ACCEPTED, "fulfil an order")?;
    let bad = api.post(&customer, "/orders", json!({"items": []})).await?;
    assert!(bad.status.is_client_error(), "an empty order: {bad:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_stack_evaluates_every_rule_and_every_dashboard_query_has_data() {
    // Before anything starts: without prometheus there is nothing to test.
    find_tool("prometheus").unwrap_or_else(|err| panic!("{err:#}"));

    let options = StackOptions::default()
        // The ledger gauges appear at the first reconciliation.
        .env("ORDERFLOW_RECONCILE_INTERVAL_SECONDS", "1")
        .env("ORDERFLOW_WEBHOOK_BACKOFF_MS", "100");
    let stack = Stack::start_with(options).await.unwrap();

    let deploy = repo_root().join("deploy");
    let address = Prometheus::reserve_address().unwrap();
    let targets: BTreeMap<String, Vec<String>> = [
        ("prometheus".to_owned(), vec![address.to_string()]),
        (
            "ingress-api".to_owned(),
            vec![stack.address(Service::IngressApi).to_string()],
        ),
        (
            "order-processor".to_owned(),
            vec![stack.address(Service::OrderProcessor).to_string()],
        ),
        (
            "notifier".to_owned(),
            vec![stack.address(Service::Notifier).to_string()],
        ),
    ]
    .into();
    let config = test_config(&deploy.join("prometheus/prometheus.yml"), &targets).unwrap();
    let prometheus = Prometheus::start(&config, address).await.unwrap();

    let (receiver, webhooks_received) = webhook_receiver().await;
    drive_traffic(&stack, receiver).await.unwrap();
    poll(Duration::from_secs(30), || {
        let received = webhooks_received.load(Ordering::SeqCst);
        async move { Ok((received > 0).then_some(())) }
    })
    .await
    .expect("a webhook delivery");

    // (a) Every configured job has its target, and every target is up.
    let up = poll(DATA_TIMEOUT, || async {
        let active = prometheus.targets().await.map_err(|e| format!("{e:#}"))?;
        let jobs: BTreeSet<&str> = active.iter().map(|t| t.labels["job"].as_str()).collect();
        let expected: BTreeSet<&str> = targets.keys().map(String::as_str).collect();
        if jobs != expected {
            return Err(format!("jobs {jobs:?}, expected {expected:?}"));
        }
        let down: Vec<String> = active
            .iter()
            .filter(|t| t.health != "up")
            .map(|t| {
                format!(
                    "{} {}: {} {}",
                    t.labels["job"], t.scrape_url, t.health, t.last_error
                )
            })
            .collect();
        if down.is_empty() {
            Ok(Some(active.len()))
        } else {
            Err(format!("targets not up: {down:#?}"))
        }
    })
    .await;
    assert_eq!(up, Ok(targets.len()), "every target up");

    // (b) Every alert of alerts.yml is loaded and evaluates without error.
    let alerts_yml: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).unwrap(),
    )
    .unwrap();
    let defined: BTreeSet<String> = alerts_yml["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect();
    let rules = poll(DATA_TIMEOUT, || async {
        let groups = prometheus
            .rule_groups()
            .await
            .map_err(|e| format!("{e:#}"))?;
        let rules: Vec<_> = groups.into_iter().flat_map(|g| g.rules).collect();
        let unhealthy: Vec<String> = rules
            .iter()
            .filter(|r| r.health != "ok" || r.last_error.as_deref().is_some_and(|e| !e.is_empty()))
            .map(|r| format!("{}: {} {:?}", r.name, r.health, r.last_error))
            .collect();
        if unhealthy.is_empty() {
            Ok(Some(rules))
        } else {
            Err(format!("rules not evaluated cleanly: {unhealthy:#?}"))
        }
    })
    .await
    .unwrap_or_else(|complaint| panic!("{complaint}\n{}", prometheus.log()));
    let loaded: BTreeSet<String> = rules
        .iter()
        .filter(|r| r.kind == "alerting")
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(loaded, defined, "the alerts Prometheus loaded");

    // (c) Every dashboard query and (d) every alert operand, without its
    // threshold, returns data.
    let dashboard = grafana::load(&deploy.join("grafana/dashboards/orderflow.json")).unwrap();
    let mut checks: Vec<(String, String)> = Vec::new();
    for query in grafana::queries(&dashboard) {
        let expr = grafana::concrete(&query.expr, RATE_INTERVAL).unwrap();
        checks.push((format!("panel {:?} {}", query.panel, query.ref_id), expr));
    }
    for rule in rules.iter().filter(|r| r.kind == "alerting") {
        for operand in promql::operands(&rule.query) {
            match operand {
                Operand::Query(expr) => checks.push((format!("alert {}", rule.name), expr)),
                // An absent() that would never find its series would fire
                // for ever: its selector must find data on this stack.
                Operand::Absent(selector) => {
                    checks.push((format!("alert {} (absent)", rule.name), selector))
                }
                Operand::Constant(_) => {}
            }
        }
    }
    let mut failures = Vec::new();
    let deadline = Instant::now() + DATA_TIMEOUT;
    for (what, expr) in &checks {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = poll(left, || async {
            match prometheus.query(expr).await {
                Ok(result) if result.has_data() => Ok(Some(())),
                Ok(_) => Err("empty result".to_owned()),
                Err(err) => Err(format!("{err:#}")),
            }
        })
        .await;
        if let Err(why) = outcome {
            failures.push(format!("{what}: {why}\n    {expr}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries returned no data:\n{}\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n"),
        stack.logs()
    );

    // A healthy stack raises nothing, not even a pending alert (an alert
    // pending from before the first scrapes clears at the next evaluation).
    let quiet = poll(Duration::from_secs(15), || async {
        let alerts = prometheus.alerts().await.map_err(|e| format!("{e:#}"))?;
        if alerts.is_empty() {
            Ok(Some(()))
        } else {
            Err(format!("alerts on a healthy stack: {alerts:#?}"))
        }
    })
    .await;
    assert_eq!(quiet, Ok(()));
}

/// The configuration the test runs Prometheus with is itself valid to promtool.
#[test]
fn the_test_configuration_made_from_the_deployed_one_is_valid() -> anyhow::Result<()> {
    let promtool = find_tool("promtool")?;
    let targets: BTreeMap<String, Vec<String>> =
        ["prometheus", "ingress-api", "order-processor", "notifier"]
            .iter()
            .map(|job| ((*job).to_owned(), vec!["127.0.0.1:9".to_owned()]))
            .collect();
    let config = test_config(
        &repo_root().join("deploy/prometheus/prometheus.yml"),
        &targets,
    )?;
    assert_eq!(config["global"]["scrape_interval"], "1s");
    for job in config["scrape_configs"].as_array().context("jobs")? {
        assert!(job.get("dns_sd_configs").is_none(), "{job}");
        assert_eq!(job["static_configs"][0]["targets"][0], "127.0.0.1:9");
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    let output = std::process::Command::new(promtool)
        .args(["check", "config"])
        .arg(&path)
        .output()?;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // A job the test does not know makes the rewrite fail, not silently skip.
    let mut fewer = targets.clone();
    fewer.remove("notifier");
    assert!(test_config(
        &repo_root().join("deploy/prometheus/prometheus.yml"),
        &fewer
    )
    .is_err());
    Ok(())
}
