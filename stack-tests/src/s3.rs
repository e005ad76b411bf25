//! A real S3-compatible server on loopback for the backup tests: moto in
//! server mode, with the AWS CLI to look into its buckets. Both come from the
//! virtualenv `scripts/backup-test-tools.sh` makes under `target/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};

use crate::{append_to, free_loopback_address, repo_root};

/// How long moto may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The access key, secret and region every test client uses; moto accepts
/// any.
const ACCESS_KEY: &str = "orderflow-test";
const SECRET_KEY: &str = "orderflow-test-secret";
const REGION: &str = "us-east-1";

/// The virtualenv's bin directory (moto_server, aws, shellcheck, hadolint),
/// made once per process by `scripts/backup-test-tools.sh`, which also
/// serialises parallel processes.
pub fn tools_bin() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| install_tools().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(|err| anyhow!(err))
}

fn install_tools() -> anyhow::Result<PathBuf> {
    let script = repo_root().join("scripts/backup-test-tools.sh");
    let output = Command::new(&script)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let bin = String::from_utf8(output.stdout)?.trim().to_owned();
    Ok(PathBuf::from(bin))
}

/// A moto S3 server of the test's own, killed when it drops.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    bin: PathBuf,
    child: Child,
    log_dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts moto on a free loopback port and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = tools_bin()?;
        let address = free_loopback_address()?;
        let log_dir = tempfile::Builder::new()
            .prefix("orderflow-s3-")
            .tempdir()
            .context("create the moto log directory")?;
        let log = append_to(&log_dir.path().join("moto.log"))?;
        let child = Command::new(bin.join("moto_server"))
            .args([
                "-H",
                &address.ip().to_string(),
                "-p",
                &address.port().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("start moto_server")?;
        let mut server = Self {
            endpoint: format!("http://{address}"),
            bin,
            child,
            log_dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto_server exited ({status})\n{}", self.log());
            }
            if http.get(&self.endpoint).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto_server did not answer within {START_TIMEOUT:?}\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// moto's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("moto.log")).unwrap_or_default()
    }

    /// The bin directory holding `aws`, to put first on a script's PATH.
    pub fn tools_bin(&self) -> &Path {
        &self.bin
    }

    /// The environment an S3 client needs to reach this server, with
    /// nothing from the developer's own AWS configuration.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let path = match std::env::var_os("PATH") {
            Some(path) => {
                let mut dirs = vec![self.bin.clone()];
                dirs.extend(std::env::split_paths(&path));
                std::env::join_paths(dirs)
                    .expect("PATH entries join")
                    .to_string_lossy()
                    .into_owned()
            }
            None => self.bin.to_string_lossy().into_owned(),
        };
        [
            ("PATH", path.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("BACKUP_S3_ENDPOINT", self.endpoint.as_str()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// A command with the client environment and nothing else of the
    /// developer's AWS or backup settings.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("AWS_") || name.starts_with("BACKUP_") || name == "DATABASE_URL" {
                command.env_remove(name);
            }
        }
        command.envs(self.client_env()).stdin(Stdio::null());
        command
    }

    /// Runs the AWS CLI against this server and returns its stdout.
    pub fn aws(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command(self.bin.join("aws"))
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .output()
            .context("run aws")?;
        ensure!(
            output.status.success(),
            "aws {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Creates a bucket named `orderflow-<purpose>-<unique>`, so tests run
    /// in parallel each in a bucket of its own.
    pub fn create_bucket(&self, purpose: &str) -> anyhow::Result<String> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("orderflow-{purpose}-{}", &unique[..12]);
        self.aws(&["s3api", "create-bucket", "--bucket", &name])?;
        Ok(name)
    }

    /// Stores `body` at `key` in `bucket`.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> anyhow::Result<()> {
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), body)?;
        let path = file.path().to_string_lossy().into_owned();
        self.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            bucket,
            "--key",
            key,
            "--body",
            &path,
        ])?;
        Ok(())
    }

    /// Every key in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> anyhow::Result<Vec<String>> {
        let listing = self.aws(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--query",
            "Contents[].Key",
            "--output",
            "json",
        ])?;
        let keys: Option<Vec<String>> =
            serde_json::from_str(&listing).context("parse the bucket listing")?;
        let mut keys = keys.unwrap_or_default();
        keys.sort();
        Ok(keys)
    }

    /// Runs `script` (a path under the repository) with `args`, the client
    /// environment and `env`, and returns what it did. Asynchronous, so load
    /// running on the same runtime carries on meanwhile.
    pub async fn run_script(
        &self,
        script: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<ScriptRun> {
        let path = repo_root().join(script);
        let mut command = self.command(&path);
        command.args(args).envs(env.iter().copied());
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .with_context(|| format!("run {}", path.display()))?;
        Ok(ScriptRun {
            name: script.to_owned(),
            output,
        })
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("==== moto's log ====\n{}", self.log());
        }
    }
}

/// One run of a backup script.
#[derive(Debug)]
pub struct ScriptRun {
    name: String,
    pub output: Output,
}

impl ScriptRun {
    /// Whether the script exited 0.
    pub fn succeeded(&self) -> bool {
        self.output.status.success()
    }

    /// Its standard error, where the scripts log.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Its standard output.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Fails unless the script exited 0, with everything it said.
    pub fn expect_success(self) -> anyhow::Result<Self> {
        ensure!(
            self.succeeded(),
            "{} failed ({}):\n{}{}",
            self.name,
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        Ok(self)
    }
}
