//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What `gordon --version` prints: the host's version, the plugin-api it was
/// built with and the plugin libraries it loads.
pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let api = crate::plugins::loader::host_api_version();
        let minor = api.split('.').nth(1).unwrap_or("0");
        format!(
            "{}\nplugin-api {api}: loads plugin libraries built against plugin-api 1.0 up to 1.{minor}; a library built against another major version, or whose interface types differ in layout, is refused before any of its code runs",
            env!("CARGO_PKG_VERSION")
        )
    })
}

/// gordon: event-driven DNS registration, driven by dynamic-library plugins.
#[derive(Debug, Parser)]
#[command(name = "gordon", version, long_version = long_version(), about)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do (default: run the service).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by every command.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Directory holding gordon.toml and gordon-user.toml.
    #[arg(short = 'c', long = "config-root", global = true, default_value = ".")]
    pub config_root: PathBuf,
    /// Log at debug level and print full reports (e.g. type layout mismatches).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Run,
    /// Load configuration and plugins, validate every active plugin's configuration,
    /// routes and relays, start nothing; print every problem and exit 1 if there is
    /// any error. Whatever `run` (or `janitor`) would refuse at start, this refuses.
    Check {
        /// Check the janitor's files (gordon-janitor.toml + gordon-janitor-user.toml)
        /// instead of the service's.
        #[arg(long)]
        janitor: bool,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
        /// Also run each plugin's `validate_dependencies` (plugin-api 1.3+): can
        /// it reach its server, read its files? Creates no plugin.
        #[arg(long)]
        connect: bool,
    },
    /// Run the janitor: authority -> reconciler -> publisher, reading
    /// gordon-janitor.toml (+ gordon-janitor-user.toml).
    Janitor {
        /// Print the plan (additions and deletions per zone) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// One run, then exit (the default).
        #[arg(long, conflicts_with = "interval")]
        once: bool,
        /// Run every SECS seconds until SIGINT/SIGTERM.
        #[arg(long, value_name = "SECS")]
        interval: Option<f64>,
        /// Publish a plan even when it updates or deletes more than the change
        /// threshold of a zone's owned record sets (without it, such a run is
        /// refused: the plan is printed and nothing is published).
        #[arg(long)]
        force: bool,
        /// The change threshold: the most a plan may update and delete, in percent
        /// of a zone's owned record sets.
        #[arg(long, value_name = "PCT", default_value_t = 30.0, value_parser = percent)]
        max_change_percent: f64,
        /// Zones with fewer owned record sets than this are not held to the
        /// change threshold.
        #[arg(long, value_name = "N", default_value_t = 10)]
        min_owned_records: u64,
    },
    /// Ask a running `gordon run` over its control socket.
    Ctl {
        /// The control socket (default: the configuration's `core.control.socket`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// What to ask.
        #[command(subcommand)]
        command: CtlCommand,
    },
    /// On a node: run each service's health check and report it up or down
    /// through the discovery plugin (reads gordon-report.toml +
    /// gordon-report-user.toml); every service is reported down on SIGTERM.
    Report,
    /// The process an isolated plugin runs in; started by the host, not by hand.
    #[command(name = "__plugin-process", hide = true)]
    PluginProcess {
        /// The plugin.
        #[arg(long)]
        plugin: String,
        /// The host's pid (the process exits if its parent is another).
        #[arg(long)]
        host_pid: u32,
    },
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Manpage,
    /// Inspect installed plugins.
    Plugins {
        /// What to do with them.
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

/// `gordon plugins ...`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List every plugin found in the plugin directories and every refused library.
    List {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What one plugin offers — kind, phase, versions, actions, host events —
    /// read from its library without creating it.
    Info {
        /// The plugin.
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Install a library: checked as discovery checks it, copied into the first
    /// plugin directory with mode 0644; prints its `core.plugin_pins` line.
    Add {
        /// The library file.
        file: PathBuf,
    },
    /// Remove the library that provides a plugin (refused while any of its
    /// plugins is in core.plugins).
    Rm {
        /// A plugin of the library.
        name: String,
    },
    /// Create a plugin crate that builds outside gordon's sources, around the
    /// packaged SDK (gordon-plugin-api-X.crate, unpacked into its vendor/).
    New {
        /// The plugin's name, PACKAGE.PLUGIN (e.g. acme.ttl).
        name: String,
        /// Where to create the crate (default: ./PACKAGE-PLUGIN).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The packaged SDK (default: the one installed beside gordon).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// `gordon ctl ...`.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Every plugin's state (isolated ones: pid and restarts), the sources'
    /// queues, the configuration generation and the host's health.
    Status {
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Reloads the configuration: validated whole first (on any error nothing
    /// changes and every problem is listed), then only what changed changes.
    Reload {
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Takes a plugin out of service, or puts it back: a source stops taking
    /// events (what it accepted finishes its route); a handler keeps its place in
    /// the route and fails every message (its source rejects them, NATS
    /// redelivers) until it is started again.
    Plugin {
        /// `stop` or `start`.
        #[arg(value_parser = ["stop", "start"])]
        op: String,
        /// The plugin.
        name: String,
        /// Print the answer as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Runs a plugin's action on the live instance, e.g. `gordon ctl action
    /// dns.rfc2136 probe`. Parameters are `key=value` words, checked against the
    /// action's declaration (`gordon plugins list --json` shows them).
    Action {
        /// The plugin.
        plugin: String,
        /// The action.
        action: String,
        /// Its parameters, `key=value`.
        params: Vec<String>,
        /// Print the answer as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// A live view, refreshed every second: per phase and plugin the message
    /// rate, totals and drops; every plugin's state and restarts; the queues.
    /// `q` quits.
    Top {
        /// Seconds between refreshes.
        #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = refresh)]
        interval: f64,
    },
}

/// Parses a refresh interval: 0.1 to 3600 seconds.
fn refresh(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(s) if (0.1..=3600.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "{raw:?} is not a number of seconds from 0.1 to 3600"
        )),
    }
}

/// Parses a percentage: a number from 0 to 100.
fn percent(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{raw:?} is not a percentage from 0 to 100")),
    }
}
