//! A real Prometheus for tests: its configuration made from the deployed
//! `deploy/prometheus/prometheus.yml` with the test's loopback targets, the
//! server started as a child process, and its HTTP API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::stack::{append_to, free_loopback_address};

/// How often the test Prometheus scrapes and evaluates rules.
pub const TEST_INTERVAL: &str = "1s";

/// Finds `name` (`prometheus`, `promtool`) on the PATH, or says how to get it.
pub fn find_tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "`{name}` is not on the PATH; scripts/dev-services.sh installs it \
                 (Debian's prometheus package), then run the tests again"
            )
        })
}

/// The deployed Prometheus configuration, rewritten for a test: the same jobs
/// and metrics paths, each job's service discovery replaced by the loopback
/// addresses in `targets` (job name to `host:port`s), scrapes and rule
/// evaluation every [`TEST_INTERVAL`], and `rule_files` pointing at the rules
/// the deployed configuration names, by absolute path.
///
/// Fails when a job of the deployed file has no targets in `targets` or the
/// other way round, so the test and the deployment cannot drift apart.
pub fn test_config(
    deployed: &Path,
    targets: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(deployed)
        .with_context(|| format!("read {}", deployed.display()))?;
    let mut config: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("parse {} as YAML", deployed.display()))?;
    let base = deployed
        .parent()
        .context("the configuration's directory")?
        .canonicalize()?;

    let global = config
        .as_object_mut()
        .context("the configuration is not a mapping")?
        .entry("global")
        .or_insert_with(|| json!({}));
    let global = global.as_object_mut().context("global is not a mapping")?;
    global.insert("scrape_interval".into(), json!(TEST_INTERVAL));
    global.insert("evaluation_interval".into(), json!(TEST_INTERVAL));
    global.insert("scrape_timeout".into(), json!(TEST_INTERVAL));

    // Relative rule files are relative to the configuration file, as
    // Prometheus reads them.
    let rule_files: Vec<Value> = config["rule_files"]
        .as_array()
        .context("the deployed configuration names no rule_files")?
        .iter()
        .map(|file| {
            let file = file.as_str().context("a rule file is not a string")?;
            let path = base.join(file);
            ensure!(
                path.is_file(),
                "rule file {} does not exist",
                path.display()
            );
            Ok(json!(path.to_string_lossy()))
        })
        .collect::<anyhow::Result<_>>()?;
    config["rule_files"] = Value::Array(rule_files);

    let jobs = config["scrape_configs"]
        .as_array_mut()
        .context("the deployed configuration has no scrape_configs")?;
    let mut seen = Vec::new();
    for job in jobs.iter_mut() {
        let job = job
            .as_object_mut()
            .context("a scrape config is not a mapping")?;
        let name = job
            .get("job_name")
            .and_then(Value::as_str)
            .context("a scrape config has no job_name")?
            .to_owned();
        let addresses = targets
            .get(&name)
            .with_context(|| format!("the test has no targets for job {name:?}"))?;
        job.retain(|key, _| !key.ends_with("_sd_configs") && key != "static_configs");
        job.insert("static_configs".into(), json!([{ "targets": addresses }]));
        seen.push(name);
    }
    for name in targets.keys() {
        ensure!(
            seen.contains(name),
            "job {name:?} is not in {}",
            deployed.display()
        );
    }
    Ok(config)
}

/// A Prometheus server of the test's own, killed when it drops.
pub struct Prometheus {
    /// Where it listens.
    pub address: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
    http: reqwest::Client,
}

impl Prometheus {
    /// The address a Prometheus started next will listen on, so its own
    /// scrape job can be configured before it starts.
    pub fn reserve_address() -> anyhow::Result<SocketAddr> {
        free_loopback_address()
    }

    /// Starts `prometheus` with `config` on `address`, with an empty TSDB
    /// in a temporary directory, and waits until it is ready.
    pub async fn start(config: &Value, address: SocketAddr) -> anyhow::Result<Self> {
        let binary = find_tool("prometheus")?;
        let dir = tempfile::Builder::new()
            .prefix("orderflow-prometheus-")
            .tempdir()?;
        let config_path = dir.path().join("prometheus.yml");
        // JSON is YAML, so the rewritten configuration is written as is.
        std::fs::write(&config_path, serde_json::to_vec_pretty(config)?)?;
        let log = append_to(&dir.path().join("prometheus.log"))?;
        let mut command = Command::new(&binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let child = command
            .spawn()
            .with_context(|| format!("start {command:?}"))?;
        let mut prometheus = Self {
            address,
            dir,
            child,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        prometheus.wait_ready(Duration::from_secs(30)).await?;
        Ok(prometheus)
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("prometheus exited ({status})\n{}", self.log());
            }
            let ready = self
                .http
                .get(self.url("/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("prometheus was not ready within {limit:?}\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://<address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Prometheus's own log.
    pub fn log(&self) -> String {
        let path = self.dir.path().join("prometheus.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        format!("==== {} ====\n{text}", path.display())
    }

    /// GETs an API path and returns its `data`, or the API's error.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body: ApiResponse = response
            .json()
            .await
            .with_context(|| format!("GET {path}: {status}, not JSON"))?;
        if body.status != "success" {
            bail!(
                "GET {path} {query:?}: {status}, {}: {}",
                body.error_type.unwrap_or_default(),
                body.error.unwrap_or_default()
            );
        }
        Ok(body.data)
    }

    /// Evaluates `expr` now: the result of `/api/v1/query`.
    pub async fn query(&self, expr: &str) -> anyhow::Result<QueryResult> {
        let data = self.api("/api/v1/query", &[("query", expr)]).await?;
        Ok(serde_json::from_value(data)?)
    }

    /// The active targets of `/api/v1/targets`.
    pub async fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let data = self.api("/api/v1/targets", &[("state", "active")]).await?;
        Ok(serde_json::from_value(data["activeTargets"].clone())?)
    }

    /// The rule groups of `/api/v1/rules`.
    pub async fn rule_groups(&self) -> anyhow::Result<Vec<RuleGroup>> {
        let data = self.api("/api/v1/rules", &[]).await?;
        Ok(serde_json::from_value(data["groups"].clone())?)
    }

    /// The pending and firing alerts of `/api/v1/alerts`.
    pub async fn alerts(&self) -> anyhow::Result<Vec<Alert>> {
        let data = self.api("/api/v1/alerts", &[]).await?;
        Ok(serde_json::from_value(data["alerts"].clone())?)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
    }
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Value,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// What `/api/v1/query` answered.
#[derive(Debug, Deserialize)]
pub struct QueryResult {
    /// `vector`, `scalar`, `matrix` or `string`.
    #[serde(rename = "resultType")]
    pub result_type: String,
    /// A list of samples for a vector; `[time, "value"]` for a scalar.
    pub result: Value,
}

impl QueryResult {
    /// Whether anything came back: a scalar always does, a vector when it
    /// has a sample.
    pub fn has_data(&self) -> bool {
        match self.result_type.as_str() {
            "scalar" | "string" => true,
            _ => self.result.as_array().is_some_and(|r| !r.is_empty()),
        }
    }
}

/// One scrape target.
#[derive(Debug, Deserialize)]
pub struct Target {
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "scrapeUrl")]
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    #[serde(rename = "lastError")]
    pub last_error: String,
}

/// One rule group.
#[derive(Debug, Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
}

/// One rule of a group.
#[derive(Debug, Deserialize)]
pub struct Rule {
    pub name: String,
    pub query: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    #[serde(default, rename = "lastError")]
    pub last_error: Option<String>,
    /// `alerting` or `recording`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One pending or firing alert.
#[derive(Debug, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    pub value: String,
}
