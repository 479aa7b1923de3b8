use std::process::ExitCode;

use clap::Parser;
use gordon::cli::{Cli, Command, CtlCommand, PluginsCommand};
use gordon::commands;

fn main() -> ExitCode {
    gordon::service::signals::ignore_sighup();
    let cli = Cli::parse();
    if let Some(Command::PluginProcess { plugin, host_pid }) = &cli.command {
        return ExitCode::from(gordon::isolation::child::main(plugin, *host_pid));
    }
    // Exit codes: 0 clean; 1 `check` found errors or a janitor run failed; 2 could
    // not start (or a command failed); 3 the service ran but did not stop cleanly.
    let result: anyhow::Result<u8> = match &cli.command {
        None | Some(Command::Run) => {
            commands::run::run(&cli.global).map(|clean| if clean { 0 } else { 3 })
        }
        Some(Command::Completions { shell }) => commands::docs::completions(*shell).map(|()| 0),
        Some(Command::Manpage) => commands::docs::manpage().map(|()| 0),
        Some(Command::Report) => {
            gordon::discovery::report::run(&cli.global).map(|clean| if clean { 0 } else { 3 })
        }
        Some(Command::Check {
            janitor,
            json,
            connect,
        }) => commands::check::run(&cli.global, *janitor, *json, *connect).map(|ok| u8::from(!ok)),
        Some(Command::Janitor {
            dry_run,
            interval,
            force,
            max_change_percent,
            min_owned_records,
            ..
        }) => {
            let opts = gordon::janitor::Options {
                dry_run: *dry_run,
                interval: *interval,
                force: *force,
                threshold: gordon::janitor::safety::Threshold {
                    max_change_percent: *max_change_percent,
                    min_owned: *min_owned_records,
                },
            };
            gordon::janitor::run(&cli.global, &opts)
                .map(|ok| u8::from(!ok))
                .map_err(anyhow::Error::from)
        }
        Some(Command::PluginProcess { .. }) => unreachable!("handled above"),
        Some(Command::Ctl {
            socket,
            command: CtlCommand::Status { json },
        }) => gordon::control::client::status(&cli.global, socket.as_deref(), *json).map(|()| 0),
        Some(Command::Ctl {
            socket,
            command: CtlCommand::Plugin { op, name, json },
        }) => gordon::control::client::plugin(&cli.global, socket.as_deref(), op, name, *json)
            .map(|()| 0),
        Some(Command::Ctl {
            socket,
            command: CtlCommand::Reload { json },
        }) => gordon::control::client::reload(&cli.global, socket.as_deref(), *json).map(|()| 0),
        Some(Command::Ctl {
            socket,
            command:
                CtlCommand::Action {
                    plugin,
                    action,
                    params,
                    json,
                },
        }) => gordon::control::client::action(
            &cli.global,
            socket.as_deref(),
            plugin,
            action,
            params,
            *json,
        )
        .map(|()| 0),
        Some(Command::Ctl {
            socket,
            command: CtlCommand::Top { interval },
        }) => gordon::control::top::run(
            &cli.global,
            socket.as_deref(),
            std::time::Duration::from_secs_f64(*interval),
        )
        .map(|()| 0),
        Some(Command::Plugins {
            command: PluginsCommand::List { json },
        }) => commands::list::run(&cli.global, *json).map(|()| 0),
        Some(Command::Plugins {
            command: PluginsCommand::Info { name, json },
        }) => commands::manage::info(&cli.global, name, *json).map(|()| 0),
        Some(Command::Plugins {
            command: PluginsCommand::Add { file },
        }) => commands::manage::add(&cli.global, file).map(|()| 0),
        Some(Command::Plugins {
            command: PluginsCommand::Rm { name },
        }) => commands::manage::rm(&cli.global, name).map(|()| 0),
        Some(Command::Plugins {
            command: PluginsCommand::New { name, dir, sdk },
        }) => commands::scaffold::run(name, dir.as_deref(), sdk.as_deref()).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("gordon: {err:#}");
            ExitCode::from(2)
        }
    }
}
