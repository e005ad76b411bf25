//! The binary's contract: help that explains itself, and exit statuses a
//! script can rely on.

use std::process::Command;

fn loadgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen")
}

#[test]
fn help_explains_the_commands_the_loops_and_the_exit_statuses() {
    let output = loadgen(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "run",
        "baseline",
        "compare",
        "Open loop",
        "Closed loop",
        "Exit status",
        "ORDERFLOW_RATE_LIMIT_PER_CLIENT=0",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let output = loadgen(&["run", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--shape",
        "--products",
        "--zipf-s",
        "--lines",
        "--rate",
        "--connections",
        "--orders",
        "--duration",
        "--json",
        "--baseline-pool",
        "--decision-timeout",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}:\n{help}");
    }
}

#[test]
fn a_run_that_cannot_reach_the_stack_exits_with_status_two() {
    let output = loadgen(&["run", "--base-url", "http://127.0.0.1:1", "--orders", "10"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("is the stack running"), "{stderr}");
}

#[test]
fn impossible_arguments_are_refused_before_anything_runs() {
    let output = loadgen(&["run", "--rate", "100", "--connections", "4"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error status");
    let output = loadgen(&[
        "run",
        "--shape",
        "hot",
        "--lines",
        "2",
        "--base-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("--lines 2"));
}
