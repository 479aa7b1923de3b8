//! `audit.log`: an audit log of the host's life. Every host event it selects —
//! a plugin started, stopped, failed, restarted or left, a configuration applied
//! or refused, a message dropped, an action invoked — is appended to a file as
//! one line of JSON (the event object exactly as the host sent it), flushed line
//! by line.
//!
//! It is a runnable only because every plugin has a kind: its `run` produces no
//! messages and waits for shutdown. It selects every host event
//! (`HOST_EVENTS = ["*"]`) and keeps those that `events` names.
//!
//! # Configuration
//!
//! A plugin named `audit.log` gets the `["audit"]` table deep-merged with
//! `["audit.log"]`.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `path` | required | the file the lines are appended to (created if missing); its directory must exist |
//! | `events` | `["*"]` | which events to log: names (`"config.applied"`), prefixes (`"plugin.*"`) or `"*"` |
//!
//! ```toml
//! ["audit.log"]
//! path = "/var/log/gordon/audit.jsonl"
//! events = ["plugin.*", "config.*", "action.invoked"]
//! ```
//!
//! `gordon check` (`validate_config`) checks that the directory of `path` exists
//! and that every pattern is one of the three forms; `gordon check --connect`
//! (`validate_dependencies`) also that the file can be opened for appending. A
//! reload applies both keys live (`apply_config`): a new `path` is opened, and
//! the next event goes there. Write failures are logged (a warning when they
//! start, another when writing works again) and counted in `audit.write_errors`;
//! every line written is counted in `audit.events`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{
    event_matches, tracing, ConfigChange, ConfigKey, HostEvent, Metrics, Plugin, PluginContext,
    PluginError, RunContext, Runnable,
};
use serde::Deserialize;

gordon_plugin_api::export_plugins!(runnable AuditLog);

/// The configuration of `audit.log`: the `["audit"]` table merged with
/// `["audit.log"]`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The file the events are appended to, one JSON object a line (required).
    ///
    /// Created if missing; its directory must exist.
    pub path: PathBuf,
    /// The events to log, as patterns: a name, a prefix ending in `.*`, or `*`.
    ///
    /// The default, `*`, logs every event.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

fn all_events() -> Vec<String> {
    vec!["*".to_owned()]
}

/// Checks one `events` pattern: `*`, a prefix ending in `.*`, or a name.
fn check_pattern(pattern: &str) -> Result<(), PluginError> {
    let name = pattern.strip_suffix(".*").unwrap_or(pattern);
    let ok = pattern == "*"
        || (!name.is_empty()
            && !name.contains('*')
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.chars().any(char::is_whitespace));
    if ok {
        Ok(())
    } else {
        Err(PluginError::new(format!(
            "`events`: {pattern:?} is not an event name, a prefix like \"plugin.*\", or \"*\""
        )))
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Opens the log for appending, creating it if missing.
fn open(path: &Path) -> Result<File, PluginError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            PluginError::new(format!(
                "cannot open audit log {} for appending: {e}",
                path.display()
            ))
        })
}

/// Where the events go and which ones: swapped whole by `apply_config`.
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    file: File,
    patterns: Vec<String>,
    /// Whether the last write failed (so a failing disk logs once, not per event).
    failing: bool,
}

/// `audit.log`: appends the host events it selects to a file, one JSON line each.
#[derive(Debug)]
pub struct AuditLog {
    sink: Mutex<Sink>,
    metrics: Metrics,
}

impl AuditLog {
    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one event as one line, flushed.
    fn write(sink: &mut Sink, event: &HostEvent) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(&event.json)?;
        line.push(b'\n');
        // One write of the whole line: lines of concurrent writers never mix.
        sink.file.write_all(&line)?;
        sink.file.flush()
    }
}

impl Plugin for AuditLog {
    const NAME: &'static str = "audit.log";
    const DESCRIPTION: &'static str = "Appends the host's events to a file as JSON lines";
    type Config = AuditConfig;
    const HOST_EVENTS: &'static [&'static str] = &["*"];

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(config: &AuditConfig) -> Result<(), PluginError> {
        let path = &config.path;
        if path.as_os_str().is_empty() || path.file_name().is_none() {
            return Err(PluginError::new(format!(
                "`path`: {:?} names no file",
                path.display().to_string()
            )));
        }
        let dir = directory(path);
        if !dir.is_dir() {
            return Err(PluginError::new(format!(
                "`path`: the directory {} of audit log {} does not exist",
                dir.display(),
                path.display()
            )));
        }
        if path.is_dir() {
            return Err(PluginError::new(format!(
                "`path`: {} is a directory, not a file",
                path.display()
            )));
        }
        if config.events.is_empty() {
            return Err(PluginError::new(
                "`events` is empty, so nothing would be logged: leave it out to log every event",
            ));
        }
        config.events.iter().try_for_each(|p| check_pattern(p))
    }

    /// Opens the file for appending; a file this check created is removed again.
    fn validate_dependencies(config: &AuditConfig) -> Result<(), PluginError> {
        let existed = config.path.exists();
        open(&config.path)?;
        if !existed {
            let _ = std::fs::remove_file(&config.path);
        }
        Ok(())
    }

    fn new(config: AuditConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let file = open(&config.path)?;
        tracing::info!(path = %config.path.display(), events = ?config.events, "Writing the audit log.");
        Ok(AuditLog {
            sink: Mutex::new(Sink {
                path: config.path,
                file,
                patterns: config.events,
                failing: false,
            }),
            metrics: ctx.metrics(),
        })
    }

    /// Takes the new `events` at once, and opens a new `path` (a file that cannot
    /// be opened fails the reload, and the old one stays in use).
    fn apply_config(&self, config: AuditConfig) -> Result<ConfigChange, PluginError> {
        let same_path = self.sink().path == config.path;
        let file = if same_path {
            None
        } else {
            Some(open(&config.path)?)
        };
        let mut sink = self.sink();
        if let Some(file) = file {
            tracing::info!(from = %sink.path.display(), to = %config.path.display(), "Moving the audit log.");
            sink.file = file;
            sink.path = config.path;
            sink.failing = false;
        }
        if sink.patterns != config.events {
            tracing::info!(events = ?config.events, "Logging other events.");
            sink.patterns = config.events;
        }
        Ok(ConfigChange::Applied)
    }

    fn on_host_event(&self, event: &HostEvent) {
        let mut sink = self.sink();
        if !sink.patterns.iter().any(|p| event_matches(p, &event.name)) {
            return;
        }
        match Self::write(&mut sink, event) {
            Ok(()) => {
                self.metrics.incr("audit.events", 1.0, &[]);
                if sink.failing {
                    sink.failing = false;
                    tracing::info!(path = %sink.path.display(), "Writing the audit log again.");
                }
            }
            Err(error) => {
                self.metrics.incr("audit.write_errors", 1.0, &[]);
                if !sink.failing {
                    sink.failing = true;
                    tracing::warn!(path = %sink.path.display(), %error, event = %event.name, "Cannot write to the audit log; events are lost until it works again.");
                }
            }
        }
    }
}

impl Runnable for AuditLog {
    /// Produces no messages: waits for shutdown.
    async fn run(&self, ctx: RunContext) -> Result<(), PluginError> {
        ctx.shutdown.requested().await;
        Ok(())
    }

    /// Makes sure every line written is on disk.
    async fn shutdown(&self) -> Result<(), PluginError> {
        let sink = self.sink();
        sink.file.sync_data().map_err(|e| {
            PluginError::new(format!(
                "cannot sync audit log {}: {e}",
                sink.path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests;
