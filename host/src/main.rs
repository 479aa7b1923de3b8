use std::process::ExitCode;

use clap::Parser;
use gordon::cli::{Cli, Command, PluginsCommand};
use gordon::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None | Some(Command::Run) => commands::run::run(&cli.global).map(|()| true),
        Some(Command::Check) => commands::check::run(&cli.global),
        Some(Command::Janitor {
            dry_run, interval, ..
        }) => gordon::janitor::run(&cli.global, *dry_run, *interval),
        Some(Command::Plugins {
            command: PluginsCommand::List { json },
        }) => commands::list::run(&cli.global, *json).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("gordon: {err:#}");
            ExitCode::from(2)
        }
    }
}
