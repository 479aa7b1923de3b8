//! Building the running service from a loaded session, and taking it down.

use std::time::Duration;

use crate::error::{refuse, StartError, StartResult};
use gordon_plugin_api::Phase;

use super::pipeline::{Outcome, Pipeline, Source};
use super::router::HandlerSlot;
use crate::metrics;
use crate::plugins::handle::Relay;
use crate::plugins::instance::{self, Instance};
use crate::plugins::intern;
use crate::session::Session;

struct Built {
    handlers: Vec<HandlerSlot>,
    sources: Vec<Source>,
    relay: Option<(&'static str, Relay)>,
    /// Every created plugin, for the control socket.
    created: Vec<crate::control::status::Plugin>,
}

/// Validates and creates every active plugin; with `core.debug`, a plugin that
/// fails is skipped with a warning, otherwise start-up stops naming it.
fn build(session: &Session) -> StartResult<Built> {
    let debug = session.config.core.debug;
    let mut built = Built {
        handlers: Vec::new(),
        sources: Vec::new(),
        relay: None,
        created: Vec::new(),
    };
    let mut errors = Vec::new();
    for info in &session.active {
        let cfg = session.plugin_config_json(info);
        let created = instance::start(info, &cfg, &session.config.core);
        if let Ok(instance) = &created {
            built.created.push(crate::control::status::Plugin {
                name: info.name.clone(),
                kind: info.kind.clone(),
                phase: info.phase.clone(),
                supervisor: instance.supervisor(),
            });
        }
        match created {
            Ok(Instance::Handler(obj)) => built.handlers.push(HandlerSlot {
                name: intern(&info.name),
                phase: intern(&info.phase),
                obj,
                timeout: Duration::from_secs_f64(
                    session
                        .config
                        .core
                        .handler_timeouts
                        .get(&info.name)
                        .copied()
                        .unwrap_or(session.config.core.handler_timeout),
                ),
            }),
            Ok(Instance::Runnable(runnable)) => built.sources.push(Source {
                name: intern(&info.name),
                start: Phase::intern(&info.phase),
                runnable,
            }),
            Ok(Instance::Relay(obj)) => {
                if session.config.core.metrics == info.name {
                    built.relay = Some((intern(&info.name), obj));
                } else {
                    tracing::warn!(plugin = %info.name, "Metric relay is active but core.metrics does not name it; ignoring it.");
                }
            }
            Ok(_) => {
                tracing::warn!(plugin = %info.name, kind = %info.kind, "Janitor plugin is active in the service; ignoring it (it runs under `gordon janitor`).")
            }
            Err(e) => {
                crate::health::report(&info.name, format!("failed to start: {e}"));
                errors.push(info.problem(&e));
            }
        }
    }
    for e in &errors {
        if debug {
            tracing::warn!("{e}; continuing without it (core.debug = true)");
        } else {
            tracing::error!("{e}");
        }
    }
    if !errors.is_empty() && !debug {
        refuse!("{} plugin(s) could not be started", errors.len());
    }
    Ok(built)
}

/// Chooses the metric relay named by `core.metrics`.
pub(crate) fn install_relay(
    session: &Session,
    plugin: Option<(&'static str, Relay)>,
) -> StartResult<()> {
    let table = |name: &str| session.config.table_json(name);
    let relay: Box<dyn metrics::Relay> = match session.config.core.metrics.as_str() {
        "log" => Box::new(metrics::log::LogRelay),
        "ffwd" => {
            let cfg = serde_json::from_value(table("ffwd")).map_err(|e| StartError::Refused(format!("invalid [ffwd] table: {e}")))?;
            Box::new(metrics::ffwd::FfwdRelay::new(cfg).map_err(StartError::Refused)?)
        }
        "prometheus" => {
            let cfg = serde_json::from_value(table("prometheus")).map_err(|e| StartError::Refused(format!("invalid [prometheus] table: {e}")))?;
            Box::new(metrics::prometheus::PrometheusRelay::start(cfg).map_err(StartError::Refused)?)
        }
        name => match plugin {
            Some((_, obj)) => Box::new(metrics::PluginRelay { obj }),
            None => refuse!(
                "core.metrics: `{name}` is neither log, ffwd, prometheus nor an active metric-relay plugin"
            ),
        },
    };
    metrics::install(relay);
    Ok(())
}

/// Runs the service until a signal, or until every source has ended, and says how
/// it ended.
///
/// # Errors
/// A plugin or relay that cannot be started (unless `core.debug`), or a route that
/// leads to a phase no created handler serves (a handler that failed to start
/// under `core.debug`): its messages would otherwise be acknowledged unpublished.
pub fn run(session: Session) -> StartResult<Outcome> {
    let core = session.config.core.clone();
    let mut built = build(&session)?;
    let live = std::sync::Arc::new(std::sync::Mutex::new(crate::control::status::Live::new(
        session.config.files.clone(),
        std::mem::take(&mut built.created),
    )));
    install_relay(&session, built.relay)?;
    if built.sources.is_empty() {
        refuse!(
            "no runnable plugin is active: nothing would produce messages (check core.plugins)"
        );
    }
    // Watch for signals before any source accepts work: a SIGTERM that lands while
    // sources start must drain what they accepted, not kill the process.
    let mut signals = super::signals::Signals::install()?;
    let pipeline = Pipeline::start(
        built.sources,
        built.handlers,
        &core.route,
        &core.router,
        core.debug,
    )?;
    live.lock().unwrap_or_else(|p| p.into_inner()).queues = Some(pipeline.probe());
    let control = core
        .control
        .enabled
        .then(|| crate::control::server::start(&session.config.control_socket(), live))
        .flatten();
    super::notify::notify("READY=1");
    pipeline.wait_for_stop(&mut signals)?;
    super::notify::notify("STOPPING=1");
    let outcome = pipeline.shutdown(Duration::from_secs_f64(core.shutdown_timeout));
    drop(control);
    metrics::relay().cleanup();
    if outcome.is_clean() {
        tracing::info!("Gordon stopped.");
    } else {
        for problem in &outcome.problems {
            tracing::error!("{problem}");
        }
        tracing::error!(
            problems = outcome.problems.len(),
            "Gordon stopped, but not cleanly."
        );
    }
    Ok(outcome)
}
