//! `ferry`: send files to Ferry's browsers, or receive theirs, from a terminal.

use std::process::ExitCode;

use clap::Parser;
use ferry_cli::args::Cli;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferry: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let interrupt = stop.clone();
        tokio::spawn(async move {
            // The first Ctrl-C stops cleanly (the peer is told); a second one does not wait.
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        match ferry_cli::run(cli, stop).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("ferry: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
