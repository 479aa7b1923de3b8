//! The running pipeline: router workers per source, started sources, the watchdog
//! over handler calls, and the orderly stop. Used by the service and by the
//! benchmarks alike.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{refuse, IoWhat, StartError, StartResult};
use crate::plugins::handle;
use gordon_plugin_api::channel::bounded;
use gordon_plugin_api::{EventMessage, Phase};

use super::plan::plan;
use super::router::{self, HandlerSlot, SourceRoute, WorkerEnd, WorkerState};
use super::watchdog::Watchdog;
use crate::config::RouterConfig;
use crate::metrics::events;

/// A created runnable, ready to be started.
pub struct Source {
    /// Plugin name.
    pub name: &'static str,
    /// Its start phase.
    pub start: Phase,
    /// The runnable.
    pub runnable: handle::Source,
}

/// How a run ended: clean, or the problems that make it not (each one line, naming
/// the plugin or source and how many messages).
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Messages lost or abandoned, plugins that failed or overran, workers that
    /// panicked.
    pub problems: Vec<String>,
}

impl Outcome {
    /// Whether nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the workers, the watchdog and the stop share.
pub(crate) struct Shared {
    pub(crate) routes: Vec<Arc<SourceRoute>>,
    pub(crate) handlers: Arc<Vec<HandlerSlot>>,
    batch_size: usize,
    pub(crate) workers: Workers,
    outcome: Mutex<Outcome>,
    /// Plugins whose shutdown is running.
    stopping: Mutex<Vec<&'static str>>,
}

impl Shared {
    pub(crate) fn problem(&self, text: String) {
        lock(&self.outcome).problems.push(text);
    }

    /// Accepted messages not yet back from cleanup, per source.
    fn unfinished(&self) -> Vec<(&'static str, usize, usize)> {
        self.routes
            .iter()
            .map(|r| (r.name, r.rx.len(), r.in_flight.load(Ordering::Relaxed)))
            .filter(|(_, queued, flying)| queued + flying > 0)
            .collect()
    }

    /// One line saying what an immediate exit now would abandon.
    pub(crate) fn abandon_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .unfinished()
            .into_iter()
            .map(|(name, queued, flying)| {
                format!("{queued} queued and {flying} in-flight message(s) of `{name}`")
            })
            .collect();
        let stopping = lock(&self.stopping);
        if !stopping.is_empty() {
            parts.push(format!("plugins still stopping: {}", stopping.join(", ")));
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join("; ")
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Router workers and sources, running.
pub struct Pipeline {
    shared: Arc<Shared>,
    watchdog: Option<Watchdog>,
}

/// A view of a running pipeline's queues, for the control socket.
#[derive(Clone)]
pub struct Probe(Arc<Shared>);

impl Probe {
    /// Per source: its name, messages queued, messages in flight.
    pub fn sources(&self) -> Vec<(&'static str, usize, usize)> {
        self.0
            .routes
            .iter()
            .map(|r| (r.name, r.rx.len(), r.in_flight.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Pipeline {
    /// A view of the queues that lives as long as the caller keeps it.
    pub fn probe(&self) -> Probe {
        Probe(Arc::clone(&self.shared))
    }

    /// Plans each source's route, starts its workers and the watchdog, then starts
    /// the sources.
    ///
    /// # Errors
    /// A route that loops or leads to a phase no handler serves, a thread that
    /// cannot start, or a source that fails to start (unless `debug`).
    pub fn start(
        sources: Vec<Source>,
        handlers: Vec<HandlerSlot>,
        route: &BTreeMap<String, String>,
        router_cfg: &RouterConfig,
        debug: bool,
    ) -> StartResult<Pipeline> {
        let phases: Vec<&str> = handlers.iter().map(|h| h.phase).collect();
        for h in &handlers {
            events::plugin_state(h.name, "running", 1.0);
        }
        let per_source = router_cfg
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let mut routes = Vec::new();
        let mut senders = Vec::new();
        for Source {
            name,
            start,
            runnable,
        } in sources
        {
            let plan = plan(start.as_str(), route, &phases)
                .map_err(|e| StartError::Refused(format!("source `{name}`: {e}")))?;
            let stages: Vec<&str> = plan.stages.iter().map(|s| s.phase.as_str()).collect();
            tracing::info!(source = name, route = %format!("{start} -> {} -> cleanup", stages.join(" -> ")), "Route planned.");
            let (tx, rx) = bounded::<EventMessage>(router_cfg.queue_capacity);
            routes.push(Arc::new(SourceRoute {
                name,
                runnable: Arc::new(runnable),
                start,
                plan,
                rx,
                in_flight: Default::default(),
            }));
            senders.push(tx);
        }
        let shared = Arc::new(Shared {
            routes,
            handlers: Arc::new(handlers),
            batch_size: router_cfg.batch_size,
            workers: Workers::default(),
            outcome: Mutex::new(Outcome::default()),
            stopping: Mutex::new(Vec::new()),
        });
        for index in 0..shared.routes.len() {
            for _ in 0..per_source {
                spawn_worker(&shared, index, Vec::new())?;
            }
        }
        let watchdog = Watchdog::start(Arc::clone(&shared))?;
        // Handlers are ready and workers wait: start the sources.
        for (route, sender) in shared.routes.iter().zip(senders) {
            if let Err(e) = route.runnable.start(sender) {
                let msg = format!("plugin `{}` failed to start: {}", route.name, e.message());
                if !debug {
                    refuse!("{msg}");
                }
                tracing::warn!("{msg}; continuing without it (core.debug = true)");
                crate::health::report(route.name, format!("failed to start: {}", e.message()));
                events::plugin_state(route.name, "failed", 1.0);
                continue;
            }
            events::plugin_state(route.name, "running", 1.0);
        }
        tracing::info!(
            sources = shared.routes.len(),
            handlers = shared.handlers.len(),
            workers = shared.workers.live(),
            "Gordon is running."
        );
        Ok(Pipeline { shared, watchdog })
    }

    /// Blocks until every source has ended and its queue is drained.
    pub fn wait_until_sources_end(&self) {
        while !self
            .shared
            .workers
            .wait_all_until(Instant::now() + Duration::from_secs(3600))
        {}
    }

    /// Waits for SIGINT/SIGTERM (watched by `signals` since before the sources
    /// started) or for every worker to end (every source finished). Waiting uses no
    /// CPU. After a signal, a second one exits the process at once (exit code 3),
    /// naming what that abandons.
    ///
    /// # Errors
    /// None today; kept for the callers' `?`.
    pub fn wait_for_stop(&self, signals: &mut super::signals::Signals) -> StartResult<()> {
        let workers = &self.shared.workers;
        let all_ended = || async {
            tokio::select! {
                () = async {
                    while workers.live() > 0 {
                        workers.notify.notified().await;
                    }
                } => {}
                () = super::signals::stop_request() => {}
            }
        };
        match signals.wait_or(all_ended) {
            Some(signal) => {
                tracing::info!("{signal} received; shutting down (a second signal exits at once).");
                let shared = Arc::clone(&self.shared);
                super::signals::exit_on_next_signal(move || shared.abandon_summary());
            }
            None => match super::signals::stop_requested() {
                Some(why) => tracing::error!("{why}; shutting down."),
                None => tracing::info!("Every source has ended; shutting down."),
            },
        }
        Ok(())
    }

    /// Closes intake, drains, and shuts every plugin down, all within `deadline`:
    /// draining may use three quarters of it, and every plugin's shutdown runs at
    /// once, in parallel, until the deadline. Returns how the run ended.
    pub fn shutdown(mut self, deadline: Duration) -> Outcome {
        let shared = &self.shared;
        let started = Instant::now();
        let end = started + deadline;
        if let Some(why) = super::signals::stop_requested() {
            shared.problem(why);
        }
        for route in &shared.routes {
            route.rx.close();
        }
        let drained = shared
            .workers
            .wait_all_until(started + deadline.mul_f64(0.75));
        for (name, queued, flying) in shared.unfinished() {
            let lost = queued + flying;
            events::messages_abandoned(name, lost);
            let text = if drained {
                // Every worker ended, yet some batches never came back: a worker
                // panicked holding them.
                format!("source `{name}`: {lost} accepted message(s) lost with a panicked router worker")
            } else {
                format!(
                    "source `{name}`: {lost} accepted message(s) did not finish their route before the shutdown deadline ({:.1} s): {queued} queued, {flying} in flight",
                    deadline.as_secs_f64()
                )
            };
            tracing::error!("{text}");
            shared.problem(text);
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.stop();
        }
        let mut jobs: Vec<(&'static str, StopFn)> = Vec::new();
        let left = |end: Instant| end.saturating_duration_since(Instant::now());
        for route in &shared.routes {
            let runnable = Arc::clone(&route.runnable);
            jobs.push((
                route.name,
                Box::new(move || runnable.shutdown(left(end)).map_err(|e| e.message().into())),
            ));
        }
        for index in 0..shared.handlers.len() {
            let handlers = Arc::clone(&shared.handlers);
            jobs.push((
                handlers[index].name,
                Box::new(move || {
                    handlers[index]
                        .obj
                        .shutdown(left(end))
                        .map_err(|e| e.message().into())
                }),
            ));
        }
        for problem in stop_all(jobs, end, &shared.stopping) {
            shared.problem(problem);
        }
        let outcome = lock(&shared.outcome).clone();
        outcome
    }
}

/// A plugin's shutdown call.
pub type StopFn = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Runs every shutdown at once, each on its own thread, and waits for them until
/// `end`. Returns one problem per plugin that failed or was still running at `end`
/// (its thread is then abandoned: libraries are never unloaded, so its code stays
/// valid). `stopping` lists the plugins not finished yet, for a second signal's
/// report.
pub fn stop_all(
    jobs: Vec<(&'static str, StopFn)>,
    end: Instant,
    stopping: &Mutex<Vec<&'static str>>,
) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    let mut problems = Vec::new();
    lock(stopping).extend(jobs.iter().map(|(name, _)| *name));
    tracing::info!(
        "Stopping plugins: {} (deadline in {:.1} s).",
        lock(stopping).join(", "),
        end.saturating_duration_since(Instant::now()).as_secs_f64()
    );
    for (name, job) in jobs {
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gordon-stop-{name}"))
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(job))
                    .unwrap_or_else(|_| Err("shutdown panicked".into()));
                let _ = tx.send((name, result));
            });
        if spawned.is_err() {
            lock(stopping).retain(|n| *n != name);
            problems.push(format!(
                "plugin `{name}`: cannot start a thread to shut it down"
            ));
        }
    }
    drop(tx);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((name, result)) => {
                lock(stopping).retain(|n| *n != name);
                match result {
                    Ok(()) => tracing::debug!(plugin = name, "Plugin shut down."),
                    Err(error) => {
                        tracing::error!(plugin = name, %error, "Plugin shutdown failed.");
                        problems.push(format!("plugin `{name}`: {error}"));
                    }
                }
                events::plugin_state(name, "running", 0.0);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for name in lock(stopping).drain(..) {
                    tracing::error!(
                        plugin = name,
                        "Plugin did not shut down before the shutdown deadline; abandoning it."
                    );
                    problems.push(format!(
                        "plugin `{name}` did not shut down before the shutdown deadline"
                    ));
                }
                break;
            }
        }
    }
    problems
}

/// Starts a worker for route `index`. It first hands `rejected` (stand-ins of a
/// batch a stuck handler holds, already in phase `drop`) to the source's cleanup.
///
/// # Errors
/// The thread cannot start.
pub(crate) fn spawn_worker(
    shared: &Arc<Shared>,
    index: usize,
    rejected: Vec<EventMessage>,
) -> StartResult<Arc<WorkerState>> {
    let state = Arc::new(WorkerState::new(index));
    shared.workers.add(&state);
    let (thread_shared, thread_state) = (Arc::clone(shared), Arc::clone(&state));
    let spawned = std::thread::Builder::new()
        .name(format!("gordon-router-{index}"))
        .spawn(move || {
            let shared = thread_shared;
            let _exit = ExitSignal(Arc::clone(&shared), Arc::clone(&thread_state));
            let route = &shared.routes[index];
            if !rejected.is_empty() {
                router::cleanup(route, &rejected);
                route.in_flight.fetch_sub(rejected.len(), Ordering::Relaxed);
            }
            let worked = catch_unwind(AssertUnwindSafe(|| {
                router::work(route, &shared.handlers, shared.batch_size, &thread_state)
            }));
            match worked {
                Ok(WorkerEnd::Drained | WorkerEnd::Abandoned) => {}
                Err(payload) => {
                    let why = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    let text = format!(
                        "source `{}`: a router worker panicked ({why}); its batch is lost",
                        route.name
                    );
                    tracing::error!("{text}");
                    shared.problem(text);
                }
            }
        });
    if let Err(e) = spawned {
        shared.workers.remove(&state);
        return Err(e).what("cannot start a router thread");
    }
    Ok(state)
}

/// The live router workers. A worker the watchdog gave up no longer counts.
#[derive(Default)]
pub(crate) struct Workers {
    live: Mutex<Vec<Arc<WorkerState>>>,
    changed: Condvar,
    notify: tokio::sync::Notify,
}

impl Workers {
    fn add(&self, state: &Arc<WorkerState>) {
        lock(&self.live).push(Arc::clone(state));
    }

    pub(crate) fn remove(&self, state: &Arc<WorkerState>) {
        lock(&self.live).retain(|w| !Arc::ptr_eq(w, state));
        self.changed.notify_all();
        self.notify.notify_one();
    }

    pub(crate) fn live(&self) -> usize {
        lock(&self.live).len()
    }

    /// The live workers' states.
    pub(crate) fn snapshot(&self) -> Vec<Arc<WorkerState>> {
        lock(&self.live).clone()
    }

    /// Waits until every worker has ended or `until` passes; returns whether all did.
    fn wait_all_until(&self, until: Instant) -> bool {
        let mut live = lock(&self.live);
        while !live.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            live = self
                .changed
                .wait_timeout(live, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Takes a worker off the live list when its thread ends, even if it unwound —
/// unless the watchdog already did (a replaced worker).
struct ExitSignal(Arc<Shared>, Arc<WorkerState>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        if !self.1.is_abandoned() {
            self.0.workers.remove(&self.1);
        }
    }
}

/// Runs a plugin's shutdown on its own thread; names the plugin if it errs or is
/// still running at the deadline (the thread is then abandoned: the library is never
/// unloaded, so its code stays valid). Returns the problem, if any.
pub fn with_deadline(
    name: &'static str,
    deadline: Duration,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Option<String> {
    let stopping = Mutex::new(Vec::new());
    stop_all(
        vec![(name, Box::new(f))],
        Instant::now() + deadline,
        &stopping,
    )
    .into_iter()
    .next()
}
