//! The whole stack as child processes: ingress-api, order-processor and
//! notifier, started from their real binaries on loopback ports, over the
//! test's own database and NATS namespace.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use testkit::{TestDatabase, TestNamespace};
use uuid::Uuid;

use crate::binaries::Binaries;

/// How long a service may take to become ready after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    IngressApi,
    OrderProcessor,
    Notifier,
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Service; 3] = [
        Service::IngressApi,
        Service::OrderProcessor,
        Service::Notifier,
    ];

    /// The binary's (and the package's) name; also the Prometheus job name.
    pub fn name(self) -> &'static str {
        match self {
            Service::IngressApi => "ingress-api",
            Service::OrderProcessor => "order-processor",
            Service::Notifier => "notifier",
        }
    }

    /// The variable that sets where the service listens.
    fn address_variable(self) -> &'static str {
        match self {
            Service::IngressApi => "ORDERFLOW_HTTP_ADDR",
            Service::OrderProcessor | Service::Notifier => "ORDERFLOW_METRICS_ADDR",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to start a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// `ORDERFLOW_PARTITIONS`, the same for every service.
    pub partitions: u16,
    /// More environment for every service, applied last.
    pub env: Vec<(String, String)>,
    /// The services started (and awaited) by [`Stack::start_with`].
    pub services: Vec<Service>,
    /// More environment for one service, applied after [`StackOptions::env`]:
    /// a fault test points each service at its own proxies this way.
    pub service_env: Vec<(Service, String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            partitions: 4,
            env: Vec::new(),
            services: Service::ALL.to_vec(),
            service_env: Vec::new(),
        }
    }
}

impl StackOptions {
    /// Adds one environment variable for every service.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds one environment variable for `service` only.
    pub fn service_env(mut self, service: Service, name: &str, value: &str) -> Self {
        self.service_env
            .push((service, name.to_owned(), value.to_owned()));
        self
    }
}

/// A running stack. Every child is killed when it drops; if the test is
/// panicking then, each child's log is printed.
pub struct Stack {
    /// The stack's database, dropped after the children are gone.
    pub db: TestDatabase,
    /// The stack's NATS namespace.
    pub ns: TestNamespace,
    /// The admin account every service is given.
    pub admin_email: String,
    /// Its password.
    pub admin_password: String,
    options: StackOptions,
    binaries: Binaries,
    /// Logs, one file per service, kept across restarts.
    log_dir: tempfile::TempDir,
    /// Each service's listening address, fixed for the stack's life so a
    /// restarted service is found where it was (and Prometheus keeps
    /// scraping it).
    addresses: BTreeMap<Service, SocketAddr>,
    children: BTreeMap<Service, Child>,
    http: reqwest::Client,
}

impl Stack {
    /// All three services, each ready.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(StackOptions::default()).await
    }

    /// The services of `options`, each ready.
    pub async fn start_with(options: StackOptions) -> anyhow::Result<Self> {
        let db = TestDatabase::create().await?;
        Self::start_on(options, db, TestNamespace::new()).await
    }

    /// The services of `options` over a database and namespace the test made
    /// (on servers of its own, say), each ready.
    pub async fn start_on(
        options: StackOptions,
        db: TestDatabase,
        ns: TestNamespace,
    ) -> anyhow::Result<Self> {
        let binaries = Binaries::get()?;
        let log_dir = tempfile::Builder::new()
            .prefix("orderflow-stack-")
            .tempdir()
            .context("create the log directory")?;
        let mut addresses = BTreeMap::new();
        for service in Service::ALL {
            addresses.insert(service, free_loopback_address()?);
        }
        let mut stack = Self {
            db,
            admin_email: format!("admin-{}@example.com", ns.namespace),
            admin_password: format!("admin-{}", Uuid::new_v4().simple()),
            ns,
            options,
            binaries,
            log_dir,
            addresses,
            children: BTreeMap::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        for service in stack.options.services.clone() {
            stack.start_service(service).await?;
        }
        Ok(stack)
    }

    /// Where `service` listens: the API for ingress-api, `/metrics` and
    /// `/healthz` for the others.
    pub fn address(&self, service: Service) -> SocketAddr {
        self.addresses[&service]
    }

    /// `http://<address>` of `service`.
    pub fn base_url(&self, service: Service) -> String {
        format!("http://{}", self.address(service))
    }

    /// The API's base URL.
    pub fn api_url(&self) -> String {
        self.base_url(Service::IngressApi)
    }

    /// The file `service` logs to (stdout and stderr, every run appended).
    pub fn log_path(&self, service: Service) -> PathBuf {
        self.log_dir.path().join(format!("{service}.log"))
    }

    /// The environment `service` is started with.
    pub fn env_for(&self, service: Service) -> Vec<(String, String)> {
        let partitions = self.options.partitions.to_string();
        let address = self.address(service).to_string();
        let mut overrides: Vec<(&str, &str)> = vec![
            (service.address_variable(), &address),
            ("ORDERFLOW_PARTITIONS", &partitions),
            ("ORDERFLOW_ADMIN_EMAIL", &self.admin_email),
            ("ORDERFLOW_ADMIN_PASSWORD", &self.admin_password),
            // The tests (loadgen's among them) drive the stack as a few
            // users from one address; a test of the limit sets its own.
            ("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "0"),
        ];
        let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
        overrides.push(("RUST_LOG", &rust_log));
        for (name, value) in &self.options.env {
            overrides.push((name, value));
        }
        for (_, name, value) in self
            .options
            .service_env
            .iter()
            .filter(|(only, ..)| *only == service)
        {
            overrides.push((name, value));
        }
        testkit::env_vars(&self.db, &self.ns, &overrides)
    }

    /// Starts `service` (again) and waits until it is ready.
    pub async fn start_service(&mut self, service: Service) -> anyhow::Result<()> {
        self.spawn(service)?;
        self.wait_ready(service, READY_TIMEOUT).await
    }

    /// Starts `service` without waiting for it; see [`Stack::wait_ready`].
    pub fn spawn(&mut self, service: Service) -> anyhow::Result<()> {
        if self.is_running(service) {
            bail!("{service} is already running");
        }
        let mut log = append_to(&self.log_path(service))?;
        writeln!(log, "---- stack-tests: starting {service} ----")?;
        let mut command = Command::new(self.binaries.path(service.name())?);
        // Nothing from the developer's shell (an SMTP host, another
        // database) reaches the services: only what the stack sets.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("ORDERFLOW_") || name == "DATABASE_URL" || name == "NATS_URL" {
                command.env_remove(name);
            }
        }
        command
            .envs(self.env_for(service))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let child = command
            .spawn()
            .with_context(|| format!("start {service} ({command:?})"))?;
        self.children.insert(service, child);
        Ok(())
    }

    /// Whether `service`'s process is running (started and not exited).
    pub fn is_running(&mut self, service: Service) -> bool {
        match self.children.get_mut(&service) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills `service` with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self, service: Service) -> anyhow::Result<()> {
        let mut child = self
            .children
            .remove(&service)
            .with_context(|| format!("{service} is not running"))?;
        // An already exited child cannot be killed; reaping it is enough.
        let _ = child.kill();
        child
            .wait()
            .with_context(|| format!("reap {service} after SIGKILL"))?;
        Ok(())
    }

    /// Stops `service` with SIGTERM, as an orchestrator would, and waits for
    /// it to exit; SIGKILL after [`STOP_TIMEOUT`].
    pub async fn stop(&mut self, service: Service) -> anyhow::Result<()> {
        let mut child = self
            .children
            .remove(&service)
            .with_context(|| format!("{service} is not running"))?;
        let pid = Pid::from_raw(i32::try_from(child.id())?);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{service} did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed\n{}",
                    self.log_tail(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `service` is ready, or fails with its log when it exits or
    /// `limit` passes. ingress-api is ready when `/readyz` answers 200 with
    /// the database `up` (migrated, admin in place); the processor when it
    /// answers `/healthz` and owns a partition; the notifier when it answers
    /// `/healthz`.
    pub async fn wait_ready(&mut self, service: Service, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_running(service) {
                bail!(
                    "{service} exited before it was ready\n{}",
                    self.log_tail(service)
                );
            }
            if self.probe(service).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{service} was not ready within {limit:?}\n{}",
                    self.log_tail(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn probe(&self, service: Service) -> bool {
        let base = self.base_url(service);
        match service {
            Service::IngressApi => {
                let Ok(response) = self.http.get(format!("{base}/readyz")).send().await else {
                    return false;
                };
                if !response.status().is_success() {
                    return false;
                }
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                body["database"] == "up"
            }
            Service::OrderProcessor => {
                let healthy = self
                    .http
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                healthy
                    && self.metrics(service).await.is_ok_and(|text| {
                        text.lines().any(|line| {
                            line.starts_with("orderflow_partition_owned{") && line.ends_with(" 1")
                        })
                    })
            }
            Service::Notifier => self
                .http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
        }
    }

    /// `service`'s `/metrics` text.
    pub async fn metrics(&self, service: Service) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base_url(service));
        let response = self.http.get(&url).send().await?.error_for_status()?;
        Ok(response.text().await?)
    }

    /// The last lines of `service`'s log, headed by its path.
    pub fn log_tail(&self, service: Service) -> String {
        const LINES: usize = 60;
        let path = self.log_path(service);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
        format!("==== last {LINES} lines of {} ====\n{tail}", path.display())
    }

    /// Every service's log tail, for a failure report.
    pub fn logs(&self) -> String {
        Service::ALL
            .iter()
            .filter(|service| self.log_path(**service).exists())
            .map(|service| self.log_tail(*service))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Where the logs are; kept only while the stack lives.
    pub fn log_dir(&self) -> &Path {
        self.log_dir.path()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() || std::env::var_os("TEST_LOG").is_some() {
            let _ = writeln!(std::io::stderr(), "{}", self.logs());
        }
    }
}

/// A loopback address with a port free right now. The port is released
/// before the service binds it; another process taking it in between makes
/// that service fail to start, with its log saying so.
pub fn free_loopback_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?)
}

/// Opens `path` for appending, creating it.
pub fn append_to(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}
