//! The service binaries, built by cargo before the first test uses them.
//!
//! Cargo hands an integration test `CARGO_BIN_EXE_<name>` only for its own
//! package's binaries, so these tests ask cargo to build the services' binaries
//! (`cargo build --bins -p ingress-api -p order-processor -p notifier`) in the
//! profile the test itself was built in, and take the executables' paths from
//! cargo's own report of what it built. Cargo checks freshness, so a binary is
//! never stale and a fresh one costs a second. Test processes running in
//! parallel (nextest runs one process per test) take turns through a file
//! lock; within a process the result is kept.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use nix::fcntl::{Flock, FlockArg};
use serde::Deserialize;

/// The packages whose binaries (each of the package's name) make the stack.
pub const SERVICE_PACKAGES: [&str; 3] = ["ingress-api", "order-processor", "notifier"];

/// Paths of the built service binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    paths: HashMap<String, PathBuf>,
}

impl Binaries {
    /// Builds the service binaries once per process (and waits for any other
    /// test process building them) and returns their paths.
    pub fn get() -> anyhow::Result<Self> {
        static BUILT: OnceLock<Result<Binaries, String>> = OnceLock::new();
        BUILT
            .get_or_init(|| build().map_err(|err| format!("{err:#}")))
            .clone()
            .map_err(|err| anyhow!(err))
    }

    /// The executable of `name` (`ingress-api`, `order-processor`, `notifier`).
    pub fn path(&self, name: &str) -> anyhow::Result<&Path> {
        self.paths
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| anyhow!("cargo built no binary named {name}"))
    }
}

/// The cargo profile the running test executable was built with, from where
/// cargo put it: `<target>/<profile dir>/deps/<test>-<hash>`, where the dev
/// profile's directory is `debug`.
pub fn profile_of(test_exe: &Path) -> anyhow::Result<String> {
    let deps = test_exe
        .parent()
        .filter(|dir| dir.file_name().is_some_and(|name| name == "deps"))
        .with_context(|| format!("{} is not in a cargo deps directory", test_exe.display()))?;
    let profile_dir = deps
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .with_context(|| format!("no profile directory above {}", deps.display()))?;
    Ok(match profile_dir {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    })
}

/// The cargo that is running these tests, else the one that built them, else
/// `cargo` from the PATH.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// Whether cargo or nextest set `name` for the test process, describing
/// this package and this run rather than the build the developer asked
/// for. Build scripts (ring's, for one) declare variables such as
/// `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR` with `rerun-if-env-changed`,
/// so passing them on to the nested cargo would make it rebuild half the
/// dependency tree, and the next ordinary build rebuild it back. The
/// variables that configure cargo (`CARGO_HOME`, `CARGO_TARGET_DIR`,
/// `CARGO_PROFILE_*`, ...) are kept.
fn is_test_runner_variable(name: &str) -> bool {
    name == "CARGO"
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || name.starts_with("NEXTEST")
        || name.starts_with("__NEXTEST")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// One line of `cargo build --message-format=json`; only artifacts matter.
#[derive(Debug, Deserialize)]
struct CargoMessage {
    reason: String,
    target: Option<CargoTarget>,
    executable: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct CargoTarget {
    name: String,
    kind: Vec<String>,
}

fn build() -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe().context("find the test executable")?;
    let profile = profile_of(&exe)?;
    let lock_path = exe
        .parent()
        .and_then(Path::parent)
        .context("the test executable's profile directory")?
        .join("stack-tests-build.lock");
    let lock_file = File::create(&lock_path)
        .with_context(|| format!("create the build lock {}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow!("lock {}: {errno}", lock_path.display()))?;

    let mut command = Command::new(cargo());
    for (name, _) in std::env::vars_os() {
        if is_test_runner_variable(&name.to_string_lossy()) {
            command.env_remove(name);
        }
    }
    command
        .current_dir(crate::repo_root())
        .args([
            "build",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--profile", &profile]);
    for package in SERVICE_PACKAGES {
        command.args(["-p", package]);
    }
    // testkit has no binaries, but selecting it turns on the dependency
    // features it needs (libc's, through nix), which every test build of
    // the workspace has on. Without it these binaries' whole dependency tree
    // would be built a second time, with other features, next to the
    // tests' own.
    command.args(["-p", "testkit"]);
    let _ = writeln!(
        std::io::stderr(),
        "stack-tests: building the service binaries: {command:?}"
    );
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut paths = HashMap::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<CargoMessage>(line) else {
            continue;
        };
        if message.reason != "compiler-artifact" {
            continue;
        }
        if let (Some(target), Some(executable)) = (message.target, message.executable) {
            if target.kind.iter().any(|kind| kind == "bin") {
                paths.insert(target.name, executable);
            }
        }
    }
    for package in SERVICE_PACKAGES {
        if !paths.contains_key(package) {
            bail!("{command:?} reported no {package} executable");
        }
    }
    Ok(Binaries { paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_read_from_the_directory_cargo_built_the_test_in() {
        let profile = |path: &str| profile_of(Path::new(path)).unwrap();
        assert_eq!(profile("/w/target/debug/deps/prometheus-0123abcd"), "dev");
        assert_eq!(
            profile("/w/target/release/deps/prometheus-0123abcd"),
            "release"
        );
        assert_eq!(
            profile("/w/target/x86_64-unknown-linux-gnu/ci/deps/prometheus-0123abcd"),
            "ci"
        );
        assert!(profile_of(Path::new("/usr/bin/prometheus")).is_err());
    }

    #[test]
    fn what_the_test_runner_set_is_not_passed_on_and_cargo_settings_are() {
        for name in [
            "CARGO_PKG_NAME",
            "CARGO_MANIFEST_DIR",
            "NEXTEST_RUN_ID",
            "OUT_DIR",
        ] {
            assert!(is_test_runner_variable(name), "{name}");
        }
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_DEV_DEBUG",
            "RUSTFLAGS",
        ] {
            assert!(!is_test_runner_variable(name), "{name}");
        }
    }
}
