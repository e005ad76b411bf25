//! API fuzzing in the suite: scripts/api-fuzz.sh (schemathesis against a
//! private ingress-api built from this tree) with a few examples per
//! operation, so a 5xx or an answer the OpenAPI document does not declare
//! fails CI. The script's own default runs more; see the README's "Bad input".

use std::process::Command;

use stack_tests::binaries::Binaries;
use stack_tests::repo_root;

/// Examples per operation in CI: every phase (boundary and negative cases,
/// random ones, operations chained through the document's links) runs in
/// about ten seconds on an idle machine.
const EXAMPLES: &str = "5";

#[test]
fn generated_requests_get_no_server_error_and_only_documented_answers() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!(
            "\n*** SKIPPED: python3 is not installed, so schemathesis cannot run and \
             the API was NOT fuzzed. Install python3 (with venv) to run this test. ***\n"
        );
        return;
    }
    let binaries = Binaries::get().unwrap_or_else(|err| panic!("{err:#}"));
    let output = Command::new(repo_root().join("scripts/api-fuzz.sh"))
        .current_dir(repo_root())
        .env(
            "INGRESS_API_BIN",
            binaries.path("ingress-api").expect("ingress-api was built"),
        )
        .env("API_FUZZ_EXAMPLES", EXAMPLES)
        .env("API_FUZZ_ADMIN_DATABASE_URL", testkit::admin_database_url())
        .output()
        .expect("scripts/api-fuzz.sh runs");
    assert!(
        output.status.success(),
        "scripts/api-fuzz.sh failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
