use std::process::ExitCode;

use clap::Parser;
use touchpoint::cli::{self, Cli, Command};
use touchpoint::client::resolve_socket;
use touchpoint::output::{EXIT_FAILED, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to a file: the TUI owns the screen, and the subcommands' output
    // is for people and scripts.
    touchpoint::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("touchpoint: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match cli.command {
        None => {
            let socket = resolve_socket(cli.socket.as_deref());
            match runtime.block_on(touchpoint::tui::run(socket, cli.readonly, !cli.no_mouse)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("touchpoint: {e:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Some(Command::Demo(args)) => {
            match runtime.block_on(touchpoint::demo::run(args, !cli.no_mouse)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("touchpoint demo: {e:#}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Some(Command::Simulate(args)) => match runtime.block_on(touchpoint::simulate::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("touchpoint simulate: {e:#}");
                ExitCode::from(EXIT_FAILED)
            }
        },
        Some(Command::Policy(args)) => ExitCode::from(touchpoint::policy_check::run(args)),
        Some(command) => runtime.block_on(cli::run(cli.socket, cli.readonly, command)),
    }
}
