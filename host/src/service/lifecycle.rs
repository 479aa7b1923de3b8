//! Building the running service from a loaded session, and taking it down.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use gordon_plugin_api::abi::{RelayBox, RunnableBox};
use gordon_plugin_api::channel::bounded;
use gordon_plugin_api::{EventMessage, Phase};

use super::plan::plan;
use super::router::{self, HandlerSlot, SourceRoute};
use crate::metrics::{self, events};
use crate::plugins::instance::{self, Instance};
use crate::plugins::PluginInfo;
use crate::session::Session;

/// A plugin name that lives as long as the process (it is signed into histories).
fn intern(name: &str) -> &'static str {
    Phase::intern(name).as_str()
}

struct Built {
    handlers: Vec<HandlerSlot>,
    sources: Vec<(&'static str, Phase, RunnableBox)>,
    relay: Option<(&'static str, RelayBox)>,
}

/// Validates and creates every active plugin; with `core.debug`, a plugin that
/// fails is skipped with a warning, otherwise start-up stops naming it.
fn build(session: &Session) -> anyhow::Result<Built> {
    let debug = session.config.core.debug;
    let mut built = Built { handlers: Vec::new(), sources: Vec::new(), relay: None };
    let mut errors = Vec::new();
    for info in &session.active {
        let cfg = session.plugin_config_json(info);
        let created = instance::validate(info, &cfg).and_then(|()| instance::instantiate(info, &cfg));
        match created {
            Ok(Instance::Handler(obj)) => built.handlers.push(HandlerSlot { name: intern(&info.name), obj }),
            Ok(Instance::Runnable(obj)) => {
                built.sources.push((intern(&info.name), Phase::intern(&info.phase), obj));
            }
            Ok(Instance::Relay(obj)) => {
                if session.config.core.metrics == info.name {
                    built.relay = Some((intern(&info.name), obj));
                } else {
                    tracing::warn!(plugin = %info.name, "Metric relay is active but core.metrics does not name it; ignoring it.");
                }
            }
            Err(e) => errors.push(failure(info, &e.to_string())),
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
        bail!("{} plugin(s) could not be started", errors.len());
    }
    Ok(built)
}

fn failure(info: &PluginInfo, error: &str) -> String {
    format!("plugin `{}` ({}): {error}", info.name, info.library.display())
}

/// Chooses the metric relay named by `core.metrics`.
fn install_relay(session: &Session, plugin: Option<(&'static str, RelayBox)>) -> anyhow::Result<()> {
    let table = |name: &str| {
        crate::config::toml_to_json(session.config.table.get(name).unwrap_or(&toml::Value::Table(toml::Table::new())))
    };
    let relay: Box<dyn metrics::Relay> = match session.config.core.metrics.as_str() {
        "log" => Box::new(metrics::log::LogRelay),
        "ffwd" => {
            let cfg = serde_json::from_value(table("ffwd")).context("invalid [ffwd] table")?;
            Box::new(metrics::ffwd::FfwdRelay::new(cfg).map_err(anyhow::Error::msg)?)
        }
        "prometheus" => {
            let cfg = serde_json::from_value(table("prometheus")).context("invalid [prometheus] table")?;
            Box::new(metrics::prometheus::PrometheusRelay::start(cfg).map_err(anyhow::Error::msg)?)
        }
        name => match plugin {
            Some((_, obj)) => Box::new(metrics::PluginRelay { obj }),
            None => bail!(
                "core.metrics: `{name}` is neither log, ffwd, prometheus nor an active metric-relay plugin"
            ),
        },
    };
    metrics::install(relay);
    Ok(())
}

/// Runs the service until a signal, or until every source has ended.
///
/// # Errors
/// A plugin or relay that cannot be started (unless `core.debug`), or a bad route.
pub fn run(session: Session) -> anyhow::Result<()> {
    let core = session.config.core.clone();
    let built = build(&session)?;
    install_relay(&session, built.relay)?;
    if built.sources.is_empty() {
        bail!("no runnable plugin is active: nothing would produce messages (check core.plugins)");
    }
    let handlers = Arc::new(built.handlers);
    // Handler phases by handler index (handlers were pushed in `active` order).
    let phases_by_index: Vec<&str> = handlers
        .iter()
        .map(|h| {
            session.active.iter().find(|i| i.name == h.name).map_or("", |i| i.phase.as_str())
        })
        .collect();
    for h in handlers.iter() {
        events::plugin_state(h.name, "running", 1.0);
    }

    let workers = core.router.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    });
    let total = workers * built.sources.len();
    let exits = Arc::new(Workers::new(total));
    let mut routes = Vec::new();
    let mut senders = Vec::new();
    for (name, start, runnable) in built.sources {
        let plan = plan(start.as_str(), &core.route, &phases_by_index).map_err(anyhow::Error::msg)?;
        if let Some(phase) = plan.unroutable {
            tracing::warn!(source = name, %phase, "core.route sends messages to a phase no active plugin handles; they will go to cleanup.");
        }
        let stages: Vec<&str> = plan.stages.iter().map(|s| s.phase.as_str()).collect();
        tracing::info!(source = name, route = %format!("{start} -> {} -> cleanup", stages.join(" -> ")), "Route planned.");
        let (tx, rx) = bounded::<EventMessage>(core.router.queue_capacity);
        let route = Arc::new(SourceRoute { name, runnable: Arc::new(runnable), start, plan, rx });
        for i in 0..workers {
            let (route, handlers) = (Arc::clone(&route), Arc::clone(&handlers));
            let exit = ExitSignal(Arc::clone(&exits));
            let batch = core.router.batch_size;
            std::thread::Builder::new()
                .name(format!("gordon-router-{i}"))
                .spawn(move || {
                    let _exit = exit;
                    router::work(&route, &handlers, batch);
                })
                .context("cannot start a router thread")?;
        }
        routes.push(route);
        senders.push(tx);
    }

    // Handlers are ready and workers wait: start the sources.
    for (route, sender) in routes.iter().zip(senders) {
        if let Err(e) = route.runnable.start(sender).into_result() {
            let msg = format!("plugin `{}` failed to start: {}", route.name, e.message);
            if !core.debug {
                bail!("{msg}");
            }
            tracing::warn!("{msg}; continuing without it (core.debug = true)");
        }
        events::plugin_state(route.name, "running", 1.0);
    }
    tracing::info!(sources = routes.len(), handlers = handlers.len(), workers = total, "Gordon is running.");

    wait_for_stop(&exits)?;
    shutdown(&routes, &handlers, &exits, Duration::from_secs_f64(core.shutdown_timeout));
    Ok(())
}

/// Counts router workers that have ended.
pub struct Workers {
    done: Mutex<usize>,
    changed: Condvar,
    notify: tokio::sync::Notify,
    total: usize,
}

impl Workers {
    fn new(total: usize) -> Self {
        Workers { done: Mutex::new(0), changed: Condvar::new(), notify: tokio::sync::Notify::new(), total }
    }

    fn ended(&self) -> usize {
        *self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every worker has ended or `deadline` passes; returns whether all did.
    fn wait_all(&self, deadline: Duration) -> bool {
        let guard = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, deadline, |done| *done < self.total)
            .unwrap_or_else(|p| p.into_inner());
        *guard >= self.total
    }
}

/// Marks a worker ended when dropped, even if the worker unwound.
struct ExitSignal(Arc<Workers>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        *self.0.done.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.changed.notify_all();
        self.0.notify.notify_one();
    }
}

/// Waits for SIGINT/SIGTERM or for every worker to end (every source finished).
/// Waiting uses no CPU.
fn wait_for_stop(workers: &Workers) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        loop {
            if workers.ended() >= workers.total {
                tracing::info!("Every source has ended; shutting down.");
                return Ok(());
            }
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received; shutting down."); return Ok(()); }
                _ = int.recv() => { tracing::info!("SIGINT received; shutting down."); return Ok(()); }
                _ = workers.notify.notified() => {}
            }
        }
    })
}

/// Closes intake, drains, and shuts every plugin down, each with `deadline`.
fn shutdown(routes: &[Arc<SourceRoute>], handlers: &Arc<Vec<HandlerSlot>>, workers: &Workers, deadline: Duration) {
    for route in routes {
        route.rx.close();
    }
    if !workers.wait_all(deadline) {
        let queued: usize = routes.iter().map(|r| r.rx.len()).sum();
        tracing::error!(
            queued,
            workers_busy = workers.total - workers.ended(),
            "In-flight messages did not finish their route within {:.1} s.",
            deadline.as_secs_f64()
        );
    }
    let ms = deadline.as_millis() as u64;
    for route in routes {
        let runnable = Arc::clone(&route.runnable);
        with_deadline(route.name, deadline, move || runnable.shutdown(ms).into_result().map_err(|e| e.message.into()));
        events::plugin_state(route.name, "running", 0.0);
    }
    for (index, h) in handlers.iter().enumerate() {
        let handlers = Arc::clone(handlers);
        with_deadline(h.name, deadline, move || {
            handlers[index].obj.shutdown(ms).into_result().map_err(|e| e.message.into())
        });
        events::plugin_state(h.name, "running", 0.0);
    }
    metrics::relay().cleanup();
    tracing::info!("Gordon stopped.");
}

/// Runs a plugin's shutdown on its own thread; names the plugin if it errs or is
/// still running at the deadline (the thread is then abandoned: the library is never
/// unloaded, so its code stays valid).
fn with_deadline(
    name: &'static str,
    deadline: Duration,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name(format!("gordon-stop-{name}")).spawn(move || {
        let _ = tx.send(f());
    });
    if spawned.is_err() {
        tracing::error!(plugin = name, "Cannot start a thread to shut the plugin down.");
        return;
    }
    match rx.recv_timeout(deadline) {
        Ok(Ok(())) => tracing::debug!(plugin = name, "Plugin shut down."),
        Ok(Err(error)) => tracing::warn!(plugin = name, %error, "Plugin shutdown failed."),
        Err(_) => tracing::error!(
            plugin = name,
            "Plugin did not shut down within {:.1} s; abandoning it.",
            deadline.as_secs_f64()
        ),
    }
}
