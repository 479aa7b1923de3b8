//! The running pipeline: router workers per source, started sources, and the
//! orderly stop. Used by the service and by the benchmarks alike.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use gordon_plugin_api::abi::RunnableBox;
use gordon_plugin_api::channel::bounded;
use gordon_plugin_api::{EventMessage, Phase};

use super::plan::plan;
use super::router::{self, HandlerSlot, SourceRoute};
use crate::config::RouterConfig;
use crate::metrics::events;

/// A created runnable, ready to be started.
pub struct Source {
    /// Plugin name.
    pub name: &'static str,
    /// Its start phase.
    pub start: Phase,
    /// The runnable.
    pub runnable: RunnableBox,
}

/// Router workers and sources, running.
pub struct Pipeline {
    routes: Vec<Arc<SourceRoute>>,
    handlers: Arc<Vec<HandlerSlot>>,
    workers: Arc<Workers>,
}

impl Pipeline {
    /// Plans each source's route, starts its workers, then starts the sources.
    ///
    /// # Errors
    /// A looping route, a thread that cannot start, or a source that fails to start
    /// (unless `debug`).
    pub fn start(
        sources: Vec<Source>,
        handlers: Vec<HandlerSlot>,
        route: &BTreeMap<String, String>,
        router_cfg: &RouterConfig,
        debug: bool,
    ) -> anyhow::Result<Pipeline> {
        let handlers = Arc::new(handlers);
        let phases: Vec<&str> = handlers.iter().map(|h| h.phase).collect();
        for h in handlers.iter() {
            events::plugin_state(h.name, "running", 1.0);
        }
        let per_source = router_cfg
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let workers = Arc::new(Workers::new(per_source * sources.len()));
        let mut routes = Vec::new();
        let mut senders = Vec::new();
        for Source {
            name,
            start,
            runnable,
        } in sources
        {
            let plan = plan(start.as_str(), route, &phases).map_err(anyhow::Error::msg)?;
            if let Some(phase) = plan.unroutable {
                tracing::warn!(source = name, %phase, "core.route sends messages to a phase no active plugin handles; they will go to cleanup.");
            }
            let stages: Vec<&str> = plan.stages.iter().map(|s| s.phase.as_str()).collect();
            tracing::info!(source = name, route = %format!("{start} -> {} -> cleanup", stages.join(" -> ")), "Route planned.");
            let (tx, rx) = bounded::<EventMessage>(router_cfg.queue_capacity);
            let route = Arc::new(SourceRoute {
                name,
                runnable: Arc::new(runnable),
                start,
                plan,
                rx,
            });
            for i in 0..per_source {
                let (route, handlers) = (Arc::clone(&route), Arc::clone(&handlers));
                let exit = ExitSignal(Arc::clone(&workers));
                let batch = router_cfg.batch_size;
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
                if !debug {
                    bail!("{msg}");
                }
                tracing::warn!("{msg}; continuing without it (core.debug = true)");
            }
            events::plugin_state(route.name, "running", 1.0);
        }
        tracing::info!(
            sources = routes.len(),
            handlers = handlers.len(),
            workers = workers.total,
            "Gordon is running."
        );
        Ok(Pipeline {
            routes,
            handlers,
            workers,
        })
    }

    /// Blocks until every source has ended and its queue is drained.
    pub fn wait_until_sources_end(&self) {
        while !self.workers.wait_all(Duration::from_secs(3600)) {}
    }

    /// Waits for SIGINT/SIGTERM or for every worker to end (every source finished).
    /// Waiting uses no CPU.
    ///
    /// # Errors
    /// The signal handlers cannot be installed.
    pub fn wait_for_stop(&self) -> anyhow::Result<()> {
        let workers = &self.workers;
        let all_ended = || async {
            while workers.ended() < workers.total {
                workers.notify.notified().await;
            }
        };
        match super::signals::wait_for_signal_or(all_ended)? {
            Some(signal) => tracing::info!("{signal} received; shutting down."),
            None => tracing::info!("Every source has ended; shutting down."),
        }
        Ok(())
    }

    /// Closes intake, drains, and shuts every plugin down, each with `deadline`.
    pub fn shutdown(self, deadline: Duration) {
        let (routes, handlers, workers) = (&self.routes, &self.handlers, &self.workers);
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
            with_deadline(route.name, deadline, move || {
                runnable
                    .shutdown(ms)
                    .into_result()
                    .map_err(|e| e.message.into())
            });
            events::plugin_state(route.name, "running", 0.0);
        }
        for (index, h) in handlers.iter().enumerate() {
            let handlers = Arc::clone(handlers);
            with_deadline(h.name, deadline, move || {
                handlers[index]
                    .obj
                    .shutdown(ms)
                    .into_result()
                    .map_err(|e| e.message.into())
            });
            events::plugin_state(h.name, "running", 0.0);
        }
    }
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
        Workers {
            done: Mutex::new(0),
            changed: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            total,
        }
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

/// Runs a plugin's shutdown on its own thread; names the plugin if it errs or is
/// still running at the deadline (the thread is then abandoned: the library is never
/// unloaded, so its code stays valid).
pub fn with_deadline(
    name: &'static str,
    deadline: Duration,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("gordon-stop-{name}"))
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        tracing::error!(
            plugin = name,
            "Cannot start a thread to shut the plugin down."
        );
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
