use std::process::ExitCode;

use clap::Parser;
use loadgen::args::Cli;

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
