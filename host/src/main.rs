use std::process::ExitCode;

use clap::Parser;
use gordon::cli::{Cli, Command, PluginsCommand};
use gordon::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Exit codes: 0 clean; 1 `check` found errors or a janitor run failed; 2 could
    // not start (or a command failed); 3 the service ran but did not stop cleanly.
    let result: anyhow::Result<u8> = match &cli.command {
        None | Some(Command::Run) => {
            commands::run::run(&cli.global).map(|clean| if clean { 0 } else { 3 })
        }
        Some(Command::Check { janitor, json }) => {
            commands::check::run(&cli.global, *janitor, *json).map(|ok| u8::from(!ok))
        }
        Some(Command::Janitor {
            dry_run, interval, ..
        }) => gordon::janitor::run(&cli.global, *dry_run, *interval).map(|ok| u8::from(!ok)),
        Some(Command::Plugins {
            command: PluginsCommand::List { json },
        }) => commands::list::run(&cli.global, *json).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("gordon: {err:#}");
            ExitCode::from(2)
        }
    }
}
