use std::process::ExitCode;

use clap::Parser;
use loadgen::args::Cli;

/// mimalloc rather than the system allocator: request handling allocates
/// and frees many small objects across threads, where glibc's malloc spent
/// a quarter of ingress-api's time under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match loadgen::execute(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loadgen: INVARIANT BROKEN: see the FAILED checks above");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::from(2)
        }
    }
}
