//! Building the running service from a loaded session, running it (reloads and
//! plugins that leave included), and taking it down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{refuse, StartError, StartResult};
use gordon_plugin_api::Phase;

use super::pipeline::{Outcome, Pipeline, Source};
use super::router::HandlerSlot;
use super::signals::Wake;
use crate::config::CoreConfig;
use crate::control::status::Live;
use crate::live::events::Subscription;
use crate::live::requests::Command;
use crate::metrics;
use crate::plugins::handle::{self, Control, Relay};
use crate::plugins::instance::{self, Instance};
use crate::plugins::{intern, PluginInfo};
use crate::session::Session;

/// The metric relay `core.metrics` names, once created.
pub(crate) type RelaySlot = Option<(&'static str, Relay)>;

/// A source as the pipeline takes it: name, start phase, handle.
pub(crate) type SourcePart = (&'static str, Phase, Arc<handle::Source>);

/// What a running plugin is to the service.
pub(crate) enum Role {
    /// A phase handler, in the pipeline's table.
    Handler(Arc<HandlerSlot>),
    /// An event source, with its route.
    Source(Arc<handle::Source>),
    /// The metric relay, or a plugin the service does not run (janitor kinds).
    Other,
}

/// One created plugin of the running service.
pub(crate) struct Member {
    /// Its catalog entry.
    pub info: PluginInfo,
    /// The configuration it runs with (JSON).
    pub config_json: String,
    /// Whether it runs in a process of its own.
    pub isolated: bool,
    /// Its live controls.
    pub control: Arc<Control>,
    /// Its host-event subscription.
    pub events: Option<Arc<Subscription>>,
    /// Its process's supervisor, when isolated.
    pub supervisor: Option<Arc<crate::isolation::supervisor::Supervisor>>,
    /// What it is to the pipeline.
    pub role: Role,
    /// The clusters it watches (a discovery plugin), as `[core.discovery]` gave
    /// them when it was created.
    pub watch: Option<crate::config::WatchConfig>,
}

/// A handler's per-call deadline under `core`.
pub(crate) fn handler_timeout(core: &CoreConfig, name: &str) -> Duration {
    Duration::try_from_secs_f64(
        core.handler_timeouts
            .get(name)
            .copied()
            .unwrap_or(core.handler_timeout),
    )
    .unwrap_or(Duration::MAX)
}

/// Creates one plugin as a member, with its handle placed for the pipeline
/// (`relay` receives the metric relay `core.metrics` names).
pub(crate) fn create_member(
    session: &Session,
    info: &PluginInfo,
    relay: &mut Option<(&'static str, Relay)>,
) -> Result<Member, gordon_plugin_api::PluginError> {
    let core = &session.config.core;
    let cfg = session.plugin_config_json(info);
    let created = instance::start(info, &cfg, core)?;
    let control = Arc::new(created.control);
    let name = intern(&info.name);
    let supervisor = created.instance.supervisor();
    let role = match created.instance {
        Instance::Handler(obj) => Role::Handler(Arc::new(HandlerSlot {
            name,
            phase: intern(&info.phase),
            obj: Arc::new(obj),
            timeout: handler_timeout(core, &info.name),
        })),
        Instance::Runnable(runnable) => Role::Source(Arc::new(runnable)),
        Instance::Relay(obj) => {
            if core.metrics == info.name {
                *relay = Some((name, obj));
            } else {
                tracing::warn!(plugin = %info.name, "Metric relay is active but core.metrics does not name it; ignoring it.");
            }
            Role::Other
        }
        Instance::Discovery(d) => match core.discovery.get(&info.name) {
            Some(watch) => Role::Source(Arc::new(handle::Source::host(Box::new(
                crate::discovery::watch::Watch::new(name, d, watch.clusters.clone()),
            )))),
            None => {
                tracing::warn!(plugin = %info.name, "Discovery plugin is active but [core.discovery] gives it no clusters to watch; ignoring it.");
                Role::Other
            }
        },
        _ => {
            tracing::warn!(plugin = %info.name, kind = %info.kind, "Janitor plugin is active in the service; ignoring it (it runs under `gordon janitor`).");
            Role::Other
        }
    };
    Ok(Member {
        events: crate::live::events::subscribe(name, &info.definition.events, Arc::clone(&control))
            .map(Arc::new),
        config_json: cfg.to_string(),
        isolated: crate::isolation::is_isolated(core, &info.name),
        info: info.clone(),
        control,
        supervisor,
        role,
        watch: core.discovery.get(&info.name).cloned(),
    })
}

/// Validates and creates every active plugin; with `core.debug`, a plugin that
/// fails is skipped with a warning, otherwise start-up stops naming it.
fn build(session: &Session) -> StartResult<(BTreeMap<String, Member>, RelaySlot)> {
    let debug = session.config.core.debug;
    let mut members = BTreeMap::new();
    let mut relay = None;
    let mut errors = Vec::new();
    for info in &session.active {
        match create_member(session, info, &mut relay) {
            Ok(m) => {
                members.insert(info.name.clone(), m);
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
    Ok((members, relay))
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

/// The running service: its configuration, its plugins, its pipeline.
pub(crate) struct Running {
    /// The configuration and catalog in use.
    pub session: Session,
    /// Every created plugin, by name.
    pub members: BTreeMap<String, Member>,
    /// The pipeline.
    pub pipeline: Pipeline,
    /// What the control socket shows.
    pub live: Arc<Mutex<Live>>,
    /// `-v`: discovery on reload reports as at start.
    pub verbose: bool,
    /// Plugins that left and wait to be started again, with when.
    pub left: BTreeMap<String, super::leave::Left>,
    /// How often each plugin has left (its back-off doubles with each).
    pub left_counts: BTreeMap<String, u32>,
    /// Plugins out of service (`ctl plugin stop`, or left), with why.
    pub stopped: BTreeMap<String, (PluginInfo, String)>,
}

impl Running {
    /// Shows the members in `ctl status`.
    pub fn publish_status(&self) {
        let mut plugins: Vec<_> = self
            .members
            .values()
            .map(|m| {
                let stopped = self.stopped.get(&m.info.name).map(|(_, why)| why.clone());
                crate::control::status::Plugin {
                    name: m.info.name.clone(),
                    kind: m.info.kind.clone(),
                    phase: m.info.phase.clone(),
                    supervisor: m.supervisor.clone().filter(|_| stopped.is_none()),
                    control: Arc::clone(&m.control),
                    actions: m.info.definition.actions.clone(),
                    events: m.events.clone(),
                    stopped,
                }
            })
            .collect();
        // Stopped sources have no member: they are shown from what they were.
        for (name, (info, why)) in &self.stopped {
            if !self.members.contains_key(name) {
                plugins.push(crate::control::status::Plugin {
                    name: name.clone(),
                    kind: info.kind.clone(),
                    phase: info.phase.clone(),
                    supervisor: None,
                    control: Arc::new(Control::absent("")),
                    actions: Vec::new(),
                    events: None,
                    stopped: Some(why.clone()),
                });
            }
        }
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.plugins = plugins;
        live.files = self.session.config.files.clone();
    }
}

/// The phase a source's messages start in: a runnable's own, `consume` for a
/// discovery watch.
pub(crate) fn source_start(info: &PluginInfo) -> Phase {
    if info.kind == gordon_plugin_api::abi::KIND_DISCOVERY {
        Phase::new("consume")
    } else {
        Phase::intern(&info.phase)
    }
}

/// Whether `info` runs as a source under `core`: a runnable, or a discovery
/// plugin with clusters to watch.
pub(crate) fn is_source(info: &PluginInfo, core: &CoreConfig) -> bool {
    info.kind == gordon_plugin_api::abi::KIND_RUNNABLE
        || (info.kind == gordon_plugin_api::abi::KIND_DISCOVERY
            && core.discovery.contains_key(&info.name))
}

/// The pipeline's inputs out of the members, in `core.plugins` order.
pub(crate) fn pipeline_parts(
    session: &Session,
    members: &BTreeMap<String, Member>,
) -> (Vec<Arc<HandlerSlot>>, Vec<SourcePart>) {
    let mut handlers = Vec::new();
    let mut sources = Vec::new();
    for info in &session.active {
        match members.get(&info.name).map(|m| &m.role) {
            Some(Role::Handler(slot)) => handlers.push(Arc::clone(slot)),
            Some(Role::Source(s)) => {
                sources.push((intern(&info.name), source_start(info), Arc::clone(s)));
            }
            _ => {}
        }
    }
    (handlers, sources)
}

/// Runs the service until a signal, or until every source has ended, and says how
/// it ended. SIGHUP and `gordon ctl reload` reload the configuration meanwhile.
///
/// # Errors
/// A plugin or relay that cannot be started (unless `core.debug`), or a route that
/// leads to a phase no created handler serves (a handler that failed to start
/// under `core.debug`): its messages would otherwise be acknowledged unpublished.
pub fn run(session: Session, verbose: bool) -> StartResult<Outcome> {
    let core = session.config.core.clone();
    let (members, relay) = build(&session)?;
    let live = Arc::new(Mutex::new(Live::new(
        session.config.files.clone(),
        Vec::new(),
    )));
    install_relay(&session, relay)?;
    let (handlers, sources) = pipeline_parts(&session, &members);
    if sources.is_empty() {
        refuse!(
            "no runnable plugin is active: nothing would produce messages (check core.plugins)"
        );
    }
    // Watch for signals before any source accepts work: a SIGTERM that lands while
    // sources start must drain what they accepted, not kill the process.
    let mut signals = super::signals::Signals::install()?;
    let pipeline = Pipeline::start_shared(
        sources
            .into_iter()
            .map(|(name, start, runnable)| Source {
                name,
                start,
                runnable,
            })
            .collect(),
        handlers,
        &core.route,
        &core.router,
        core.debug,
    )?;
    live.lock().unwrap_or_else(|p| p.into_inner()).queues = Some(pipeline.probe());
    let mut running = Running {
        session,
        members,
        pipeline,
        live: Arc::clone(&live),
        verbose,
        left: BTreeMap::new(),
        left_counts: BTreeMap::new(),
        stopped: BTreeMap::new(),
    };
    running.publish_status();
    let control = core
        .control
        .enabled
        .then(|| crate::control::server::start(&running.session.config.control_socket(), live))
        .flatten();
    super::notify::notify("READY=1");
    loop {
        let may_return = running
            .stopped
            .values()
            .any(|(info, _)| info.kind == gordon_plugin_api::abi::KIND_RUNNABLE);
        match running.pipeline.wait_next(&mut signals, may_return) {
            Wake::Signal(signal) => {
                running.pipeline.stopping_on(signal);
                break;
            }
            Wake::Ended => {
                match super::signals::stop_requested() {
                    Some(why) => tracing::error!("{why}; shutting down."),
                    None => tracing::info!("Every source has ended; shutting down."),
                }
                break;
            }
            Wake::Reload => super::reload::on_sighup(&mut running),
            Wake::Request => {
                for (command, reply) in crate::live::requests::take() {
                    let answer = match command {
                        Command::Reload => super::reload::answer(&mut running),
                        Command::Stop(name) => super::leave::stop(&mut running, &name),
                        Command::Start(name) => super::leave::start(&mut running, &name),
                    };
                    let _ = reply.try_send(answer);
                }
            }
            Wake::Leave => super::leave::serve(&mut running),
        }
    }
    super::notify::notify("STOPPING=1");
    let shutdown = Duration::from_secs_f64(running.session.config.core.shutdown_timeout);
    let outcome = running.pipeline.shutdown(shutdown);
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
