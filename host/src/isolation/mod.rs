//! Crash isolation: a plugin marked in `core.isolate` runs in a process of its own,
//! started from the host's binary, behind the same handle as an in-process plugin.
//!
//! ```text
//! host: router / pipeline / janitor ─▶ plugins::handle::{Handler, Source, ...}
//!                                          │ in-process: the FFI object
//!                                          │ isolated:   remote::* ─▶ Supervisor
//!                                          ▼                         │ call socket (3)
//! plugin process (gordon __plugin-process): child::Server ◀──────────┤ stream socket (4)
//!   limits ─▶ load the one library ─▶ create ─▶ serve calls ─────────▶ telemetry (5)
//! ```
//!
//! A crash — a signal, an exit, a lost link, a call past its deadline — fails the
//! call in flight with the reason (its messages go back to their source in phase
//! `drop`), and the supervisor starts a new process after a back-off. A plugin that
//! crashes more than `max_crashes` times within `crash_window` is marked failed.

pub mod child;
pub mod limits;
pub mod link;
pub mod process;
pub mod remote;
pub mod supervisor;
pub mod telemetry;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gordon_plugin_api::abi::{
    KIND_AUTHORITY, KIND_DISCOVERY, KIND_MESSAGE_HANDLER, KIND_METRIC_RELAY, KIND_PUBLISHER,
    KIND_RECONCILER, KIND_RUNNABLE,
};
use gordon_plugin_api::PluginError;
use serde::{Deserialize, Serialize};

use crate::config::{CoreConfig, PluginConfig};
use crate::plugins::handle::isolated;
use crate::plugins::handle::Control;
use crate::plugins::instance::{Created, Instance};
use crate::plugins::{intern, PluginInfo};
use link::op;
use supervisor::Supervisor;

/// What a plugin process is told first: which library and plugin, the checks
/// and limits. Sent as JSON, once per process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    /// The library file.
    pub library: String,
    /// The plugin's name.
    pub plugin: String,
    /// Its kind.
    pub kind: String,
    /// `core.plugin_pins`.
    pub pins: BTreeMap<String, String>,
    /// `core.require_pins`.
    pub require_pins: bool,
    /// `core.panic_abort`.
    pub panic_abort: String,
    /// `[core.isolation]` limits.
    pub limits: limits::Limits,
    /// The log directives in force (`[core.logging] level` syntax).
    pub log_level: String,
}

/// How the supervisor treats the process.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Load and create.
    pub start_timeout: Duration,
    /// Calls other than a handler batch.
    pub call_timeout: Duration,
    /// First restart delay.
    pub backoff: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
    /// Crashes allowed within `crash_window`.
    pub max_crashes: u32,
    /// See `max_crashes`.
    pub crash_window: Duration,
    /// `core.debug`: a failed plugin leaves the host running.
    pub debug: bool,
}

/// Everything a supervisor needs to (re)start one isolated plugin.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The plugin's name.
    pub name: &'static str,
    /// The process's set-up.
    pub setup: Setup,
    /// The plugin's configuration, validated once, for every (re)creation.
    pub config_json: String,
    /// Restarts and deadlines.
    pub policy: Policy,
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

impl Spec {
    /// The spec of `info` under `core`.
    pub fn new(info: &PluginInfo, config_json: &str, core: &CoreConfig) -> Spec {
        let iso = &core.isolation;
        Spec {
            name: intern(&info.name),
            setup: Setup {
                library: info.library.display().to_string(),
                plugin: info.name.clone(),
                kind: info.kind.clone(),
                pins: core.plugin_pins.clone(),
                require_pins: core.require_pins,
                panic_abort: core.panic_abort.clone(),
                limits: limits::Limits {
                    memory_limit_mb: iso.memory_limit_mb,
                    cpu_limit_seconds: iso.cpu_limit_seconds,
                    max_open_files: iso.max_open_files,
                    user: iso.user.clone(),
                    group: iso.group.clone(),
                },
                // The directives in force (`GORDON_LOG`, `--verbose` applied), so
                // that the process logs what an in-process plugin would.
                log_level: crate::logging::active()
                    .map_or_else(|| core.logging.level.clone(), |(d, _)| d.to_string()),
            },
            config_json: config_json.to_owned(),
            policy: Policy {
                start_timeout: secs(iso.start_timeout),
                call_timeout: secs(iso.call_timeout),
                backoff: secs(iso.restart_backoff),
                backoff_max: secs(iso.restart_backoff_max),
                max_crashes: iso.max_crashes,
                crash_window: secs(iso.crash_window),
                debug: core.debug,
            },
        }
    }
}

/// Whether `core` isolates the plugin `name`.
pub fn is_isolated(core: &CoreConfig, name: &str) -> bool {
    core.isolate.iter().any(|n| n == name)
}

/// Starts `info` in a process of its own: the process loads the library (with
/// discovery's checks) and validates and creates the plugin with `config`; the
/// instance's handle reaches it there.
///
/// # Errors
/// The process cannot start, refuses the library, or the plugin's
/// `validate_config` or constructor fails (naming the file and key, as in-process).
pub fn start(
    info: &PluginInfo,
    config: &PluginConfig,
    core: &CoreConfig,
    handler_timeout: Duration,
) -> Result<Created, PluginError> {
    let spec = Spec::new(info, config, core);
    let deadline = Some(Instant::now() + spec.policy.start_timeout);
    let (sup, link) = Supervisor::start(spec)?;
    let create = || {
        config.validate_with(|json| {
            link.call(
                op::CREATE,
                |b| b.extend_from_slice(json.as_bytes()),
                deadline,
            )
            .map(drop)
            .map_err(Into::into)
        })
    };
    // A 1.3 library validates in the same call that creates; an older one first.
    let created = if info.fns.create.is_some() {
        create()
    } else {
        validate_on(&link, config, deadline).and_then(|()| create())
    };
    drop(link);
    if let Err(e) = created {
        let _ = sup.stop(Duration::ZERO);
        return Err(e);
    }
    sup.running();
    let control = match info.fns.create {
        Some(_) => isolated::control(remote::Control::new(Arc::clone(&sup))),
        None => Control::absent(intern(&info.api_version)),
    };
    Ok(Created {
        instance: wrap(info, sup, handler_timeout)?,
        control,
    })
}

/// Runs the plugin's `validate_config` in a process of its own (what `gordon
/// check` does for an isolated plugin: a validator that crashes cannot take the
/// check down with it).
///
/// # Errors
/// As [`start`], without creating the plugin.
pub fn validate(
    info: &PluginInfo,
    config: &PluginConfig,
    core: &CoreConfig,
) -> Result<(), PluginError> {
    let spec = Spec::new(info, config, core);
    let deadline = Some(Instant::now() + spec.policy.start_timeout);
    let (sup, link) = Supervisor::start(spec)?;
    let result = validate_on(&link, config, deadline);
    drop(link);
    let _ = sup.stop(Duration::ZERO);
    result
}

fn validate_on(
    link: &supervisor::Link,
    config: &PluginConfig,
    deadline: Option<Instant>,
) -> Result<(), PluginError> {
    config.validate_with(|json| {
        link.call(
            op::VALIDATE,
            |b| b.extend_from_slice(json.as_bytes()),
            deadline,
        )
        .map(drop)
        .map_err(Into::into)
    })
}

fn wrap(
    info: &PluginInfo,
    sup: Arc<Supervisor>,
    handler_timeout: Duration,
) -> Result<Instance, PluginError> {
    Ok(match info.kind.as_str() {
        KIND_MESSAGE_HANDLER => Instance::Handler(isolated::handler(remote::Handler::new(
            sup,
            handler_timeout,
        ))),
        KIND_RUNNABLE => Instance::Runnable(isolated::source(remote::Source::new(sup))),
        KIND_METRIC_RELAY => Instance::Relay(isolated::relay(remote::Relay::new(sup)?)),
        KIND_AUTHORITY => Instance::Authority(isolated::authority(remote::Janitor::authority(sup))),
        KIND_RECONCILER => {
            Instance::Reconciler(isolated::reconciler(remote::Janitor::reconciler(sup)))
        }
        KIND_PUBLISHER => Instance::Publisher(isolated::publisher(remote::Janitor::publisher(sup))),
        KIND_DISCOVERY => {
            let _ = sup.stop(Duration::ZERO);
            return Err(PluginError::new(
                "a discovery plugin cannot run isolated (its watches' channels are not carried over the link); remove it from core.isolate",
            ));
        }
        other => {
            let _ = sup.stop(Duration::ZERO);
            return Err(PluginError::new(format!(
                "kind `{other}` is not supported by this host"
            )));
        }
    })
}
