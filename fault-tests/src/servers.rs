//! A private PostgreSQL and a private nats-server, each on a free loopback
//! port with its data in a temporary directory, that a test may kill with
//! SIGKILL and start again on the same data and port. The machine's shared
//! servers (5432, 4222) are never touched.
//!
//! PostgreSQL runs with `fsync=off`: a SIGKILL ends the processes, not the
//! machine, so everything PostgreSQL wrote is still in the kernel's page
//! cache when it restarts, and crash recovery replays the WAL exactly as it
//! would with fsync on. fsync only matters for a power loss, which a process
//! test cannot simulate anyway; leaving it off keeps the suite from waiting
//! on the disk of a machine other builds share.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use stack_tests::free_loopback_address;

/// PostgreSQL's programs when nothing else is found.
pub const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";
/// nats-server when nothing else is found.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// PostgreSQL's program directory: `ORDERFLOW_POSTGRES_BIN`, else the newest
/// Debian installation under /usr/lib/postgresql, else [`POSTGRES_BIN`].
pub fn postgres_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("ORDERFLOW_POSTGRES_BIN") {
        return PathBuf::from(dir);
    }
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    installed.sort();
    installed
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| PathBuf::from(POSTGRES_BIN))
}

/// nats-server: `ORDERFLOW_NATS_SERVER`, else [`NATS_SERVER`] when it exists,
/// else the one on the PATH.
pub fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("ORDERFLOW_NATS_SERVER") {
        return PathBuf::from(path);
    }
    if Path::new(NATS_SERVER).exists() {
        PathBuf::from(NATS_SERVER)
    } else {
        PathBuf::from("nats-server")
    }
}
/// How long a server may take to accept connections after it was started.
pub const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process in a process group of its own, so a SIGKILL reaches it
/// and every child it forked (PostgreSQL's backends), as a crash of the
/// machine's service would.
struct Process {
    child: Child,
}

impl Process {
    fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let log = stack_tests::append_to(log)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("start {command:?}"))?;
        Ok(Self { child })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn kill(mut self) {
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Waits until something accepts TCP connections at `address`.
async fn wait_listening(
    address: SocketAddr,
    what: &str,
    process: &mut Process,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + SERVER_READY_TIMEOUT;
    loop {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        if !process.running() {
            bail!("{what} exited at start:\n{}", tail(log));
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on {address} in time:\n{}", tail(log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// PostgreSQL refuses to run as root: when the tests do, its programs run
/// as the `postgres` account, which owns the cluster's directory.
fn postgres_account() -> anyhow::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return Ok(None);
    }
    let id = |flag: &str| -> anyhow::Result<u32> {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .context("run id")?;
        if !output.status.success() {
            bail!("running as root and there is no postgres account to run PostgreSQL as");
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// `program` from PostgreSQL's directory, as the account that owns the cluster.
fn postgres_command(program: &str, account: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(postgres_bin().join(program));
    if let Some((uid, gid)) = account {
        command.uid(uid).gid(gid);
    }
    command
}

/// A PostgreSQL cluster of the test's own.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    address: SocketAddr,
    process: Option<Process>,
    account: Option<(u32, u32)>,
}

impl PrivatePostgres {
    /// Creates a cluster (trust authentication, user `postgres`) and starts it.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("orderflow-faults-pg-")
            .tempdir()
            .context("create PostgreSQL's directory")?;
        let account = postgres_account()?;
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("give PostgreSQL's directory to postgres")?;
        }
        let output = postgres_command("initdb", account)
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .context("run initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let mut postgres = Self {
            address: free_loopback_address()?,
            dir,
            process: None,
            account,
        };
        postgres.restart().await?;
        Ok(postgres)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`, the admin connection.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@{}/postgres", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Kills the postmaster and every backend with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same data and port (crash recovery
    /// runs first when it was killed) and waits until it listens.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let mut command = postgres_command("postgres", self.account);
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.address.port().to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ]);
        let mut process = Process::spawn(command, &self.log())?;
        wait_listening(self.address, "postgres", &mut process, &self.log()).await?;
        self.process = Some(process);
        // Listening comes before recovery ends: wait until a query runs.
        let url = self.admin_url();
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                if sqlx::query("select 1").execute(&mut conn).await.is_ok() {
                    let _ = conn.close().await;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres did not take queries in time:\n{}",
                    tail(&self.log())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JetStream nats-server of the test's own: alone, or one node of a
/// cluster of the test's own ([`PrivateNats::cluster`]).
pub struct PrivateNats {
    dir: tempfile::TempDir,
    address: SocketAddr,
    cluster: Option<ClusterNode>,
    process: Option<Process>,
}

/// A node's place in its cluster.
struct ClusterNode {
    /// The server name, which JetStream reports as a stream's leader.
    name: String,
    /// Where the node listens for the other nodes' routes.
    route_address: SocketAddr,
    /// The other nodes' route addresses.
    peers: Vec<SocketAddr>,
}

impl PrivateNats {
    pub async fn start() -> anyhow::Result<Self> {
        let mut nats = Self::new(None)?;
        nats.restart().await?;
        Ok(nats)
    }

    /// A JetStream cluster of `nodes` servers named `n0`, `n1`, ..., routed to
    /// each other, all started, and ready once JetStream has a meta leader.
    pub async fn cluster(nodes: usize) -> anyhow::Result<Vec<Self>> {
        let routes: Vec<SocketAddr> = (0..nodes)
            .map(|_| free_loopback_address())
            .collect::<anyhow::Result<_>>()?;
        let mut cluster = Vec::with_capacity(nodes);
        for (i, route_address) in routes.iter().enumerate() {
            cluster.push(Self::new(Some(ClusterNode {
                name: format!("n{i}"),
                route_address: *route_address,
                peers: routes
                    .iter()
                    .copied()
                    .filter(|r| r != route_address)
                    .collect(),
            }))?);
        }
        // All at once: a node's JetStream waits for the others.
        for node in &mut cluster {
            node.spawn()?;
        }
        for node in &mut cluster {
            node.wait_ready().await?;
        }
        Ok(cluster)
    }

    fn new(cluster: Option<ClusterNode>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("orderflow-faults-nats-")
            .tempdir()
            .context("create nats-server's directory")?;
        Ok(Self {
            address: free_loopback_address()?,
            dir,
            cluster,
            process: None,
        })
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The server name: `n<i>` in a cluster.
    pub fn name(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.name.as_str())
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same store and port and waits until
    /// JetStream answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_ready().await
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.kill();
        let mut command = Command::new(nats_server());
        match &self.cluster {
            None => {
                command
                    .args([
                        "-js",
                        "-a",
                        "127.0.0.1",
                        "-p",
                        &self.address.port().to_string(),
                    ])
                    .arg("-sd")
                    .arg(self.dir.path().join("store"));
            }
            Some(node) => {
                let config = self.dir.path().join("nats.conf");
                std::fs::write(&config, self.cluster_config(node))
                    .context("write the node's configuration")?;
                command.arg("-c").arg(config);
            }
        }
        self.process = Some(Process::spawn(command, &self.log())?);
        Ok(())
    }

    /// The node's configuration, the shape of deploy/k8s/base/nats.yaml's on
    /// loopback ports.
    fn cluster_config(&self, node: &ClusterNode) -> String {
        let routes: Vec<String> = node
            .peers
            .iter()
            .map(|peer| format!("    nats-route://{peer}"))
            .collect();
        format!(
            "server_name: {name}\n\
             listen: {address}\n\
             jetstream {{\n  store_dir: \"{store}\"\n}}\n\
             cluster {{\n  name: orderflow-test\n  listen: {route}\n  routes: [\n{routes}\n  ]\n}}\n",
            name = node.name,
            address = self.address,
            store = self.dir.path().join("store").display(),
            route = node.route_address,
            routes = routes.join("\n"),
        )
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let log = self.log();
        let process = self.process.as_mut().context("the server is not started")?;
        wait_listening(self.address, "nats-server", process, &log).await?;
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            if jetstream_answers(&self.url()).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("JetStream did not answer in time:\n{}", tail(&self.log()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether the server at `url` answers a JetStream account request without
/// an error: a plain TCP accept comes before JetStream has recovered its
/// streams, and a cluster node answers "temporarily unavailable" until the
/// nodes have elected a meta leader.
async fn jetstream_answers(url: &str) -> anyhow::Result<()> {
    let client = tokio::time::timeout(Duration::from_secs(2), async_nats::connect(url)).await??;
    // The raw request: the client's typed account info does not parse 2.9's
    // reply.
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        client.request("$JS.API.INFO", "".into()),
    )
    .await;
    drop(client);
    let reply = answer??;
    let body: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    if !body["error"].is_null() {
        bail!("JetStream answered {}", body["error"]);
    }
    Ok(())
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}
