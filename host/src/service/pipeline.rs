//! The running pipeline: router workers per source, started sources, the watchdog
//! over handler calls, and the orderly stop. Used by the service and by the
//! benchmarks alike.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::error::{refuse, IoWhat, StartError, StartResult};
use crate::plugins::handle;
use gordon_plugin_api::channel::bounded;
use gordon_plugin_api::{EventMessage, Phase};

use super::plan::{plan, Plan};
use super::router::{self, HandlerSlot, SourceRoute, Table, WorkerEnd, WorkerState};
use super::watchdog::Watchdog;
use crate::config::RouterConfig;
use crate::metrics::events;

/// A created runnable, ready to be started.
pub struct Source {
    /// Plugin name.
    pub name: &'static str,
    /// Its start phase.
    pub start: Phase,
    /// The runnable (the service keeps a reference, to retire it on reload).
    pub runnable: Arc<handle::Source>,
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
    /// Every source's route, including those being retired by a reload.
    routes: RwLock<Vec<Arc<SourceRoute>>>,
    /// The handlers and plans; replaced whole on reload.
    table: RwLock<Arc<Table>>,
    batch_size: usize,
    queue_capacity: usize,
    per_source: usize,
    pub(crate) workers: Workers,
    outcome: Mutex<Outcome>,
    /// Plugins whose shutdown is running.
    stopping: Mutex<Vec<&'static str>>,
}

impl Shared {
    pub(crate) fn problem(&self, text: String) {
        lock(&self.outcome).problems.push(text);
    }

    /// The routes, now.
    pub(crate) fn routes(&self) -> Vec<Arc<SourceRoute>> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The table, now.
    pub(crate) fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Accepted messages not yet back from cleanup, per source.
    fn unfinished(&self) -> Vec<(&'static str, usize, usize)> {
        self.routes()
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
            .routes()
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
        let handlers = handlers.into_iter().map(Arc::new).collect();
        Pipeline::start_shared(sources, handlers, route, router_cfg, debug)
    }

    /// As [`Pipeline::start`], with handler slots the caller keeps references to.
    ///
    /// # Errors
    /// As [`Pipeline::start`].
    pub fn start_shared(
        sources: Vec<Source>,
        handlers: Vec<Arc<HandlerSlot>>,
        route: &BTreeMap<String, String>,
        router_cfg: &RouterConfig,
        debug: bool,
    ) -> StartResult<Pipeline> {
        for h in &handlers {
            events::plugin_state(h.name, "running", 1.0);
        }
        let per_source = router_cfg
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let starts: Vec<(&'static str, Phase)> =
            sources.iter().map(|s| (s.name, s.start)).collect();
        let table = plan_table(handlers, &starts, route).map_err(StartError::Refused)?;
        let shared = Arc::new(Shared {
            routes: RwLock::new(Vec::new()),
            table: RwLock::new(Arc::new(table)),
            batch_size: router_cfg.batch_size,
            queue_capacity: router_cfg.queue_capacity,
            per_source,
            workers: Workers::default(),
            outcome: Mutex::new(Outcome::default()),
            stopping: Mutex::new(Vec::new()),
        });
        let mut senders = Vec::new();
        for source in sources {
            senders.push(add_route(&shared, source)?);
        }
        let watchdog = Watchdog::start(Arc::clone(&shared))?;
        // Handlers are ready and workers wait: start the sources.
        let pipeline = Pipeline { shared, watchdog };
        for (route, sender) in senders {
            pipeline.start_source(&route, sender, debug)?;
        }
        tracing::info!(
            sources = pipeline.shared.routes().len(),
            handlers = pipeline.shared.table().handlers.len(),
            workers = pipeline.shared.workers.live(),
            "Gordon is running."
        );
        Ok(pipeline)
    }

    fn start_source(
        &self,
        route: &SourceRoute,
        sender: gordon_plugin_api::channel::Sender<EventMessage>,
        debug: bool,
    ) -> StartResult<()> {
        if let Err(e) = route.runnable.start(sender) {
            let msg = format!("plugin `{}` failed to start: {}", route.name, e.message());
            if !debug {
                refuse!("{msg}");
            }
            tracing::warn!("{msg}; continuing without it (core.debug = true)");
            crate::health::report(route.name, format!("failed to start: {}", e.message()));
            events::plugin_state(route.name, "failed", 1.0);
            return Ok(());
        }
        events::plugin_state(route.name, "running", 1.0);
        Ok(())
    }

    /// The handlers and routes now in use.
    pub fn table(&self) -> Arc<Table> {
        self.shared.table()
    }

    /// Plans every source's route over `handlers` (the sources now running plus
    /// `extra`), without changing anything.
    ///
    /// # Errors
    /// A route that loops or leads to a phase no handler serves, naming the source.
    pub fn plan(
        &self,
        handlers: Vec<Arc<HandlerSlot>>,
        sources: &[(&'static str, Phase)],
        route: &BTreeMap<String, String>,
    ) -> Result<Table, String> {
        plan_table(handlers, sources, route)
    }

    /// Puts `table` in use: batches that started before keep the old one to their
    /// end. Returns the old table.
    pub fn set_table(&self, table: Table) -> Arc<Table> {
        let mut slot = self.shared.table.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, Arc::new(table))
    }

    /// Whether `runnable` has a route in the pipeline.
    pub fn has_source(&self, runnable: &Arc<handle::Source>) -> bool {
        self.shared
            .routes()
            .iter()
            .any(|r| Arc::ptr_eq(&r.runnable, runnable))
    }

    /// Adds a source with its queue and workers and starts it (its plan must be in
    /// the table already).
    ///
    /// # Errors
    /// A thread that cannot start, or the source's own failure to start.
    pub fn add_source(&self, source: Source) -> StartResult<()> {
        let (route, sender) = add_route(&self.shared, source)?;
        self.start_source(&route, sender, false)
    }

    /// Stops one source: closes its queue, lets its workers drain what it accepted
    /// (three quarters of `deadline`), shuts it down, and forgets its route.
    /// Returns the problem, if any. Its other instance (a replacement with the same
    /// name) keeps running.
    pub fn retire_source(
        &self,
        runnable: &Arc<handle::Source>,
        deadline: Duration,
    ) -> Option<String> {
        let started = Instant::now();
        let route = self
            .shared
            .routes()
            .into_iter()
            .find(|r| Arc::ptr_eq(&r.runnable, runnable))?;
        route.rx.close();
        let drained = self
            .shared
            .workers
            .wait_route_until(&route, started + deadline.mul_f64(0.75));
        let mut problem = None;
        if !drained {
            let lost = route.rx.len() + route.in_flight.load(Ordering::Relaxed);
            events::messages_abandoned(route.name, lost);
            problem = Some(format!(
                "source `{}`: {lost} accepted message(s) did not finish their route before it was stopped",
                route.name
            ));
        }
        let left = deadline.saturating_sub(started.elapsed());
        let name = route.name;
        let stopping = Arc::clone(&route.runnable);
        if let Some(p) = with_deadline(name, left, move || {
            stopping.shutdown(left).map_err(|e| e.message().into())
        }) {
            problem = Some(problem.map_or(p.clone(), |q| format!("{q}; {p}")));
        }
        self.shared
            .routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| !Arc::ptr_eq(r, &route));
        problem
    }

    /// Shuts down handlers that a new table no longer uses, once no batch holds
    /// them (or `deadline` passes). Returns one problem per handler that failed.
    pub fn retire_handlers(&self, old: Vec<Arc<HandlerSlot>>, deadline: Duration) -> Vec<String> {
        let end = Instant::now() + deadline;
        let mut jobs: Vec<(&'static str, StopFn)> = Vec::new();
        for slot in old {
            // Batches that started on an older table hold it (and so the slot)
            // until they end; the handler is shut down after the last one.
            while Arc::strong_count(&slot.obj) > 1 && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
            let name = slot.name;
            let left = end.saturating_duration_since(Instant::now());
            let obj = Arc::clone(&slot.obj);
            drop(slot);
            jobs.push((
                name,
                Box::new(move || obj.shutdown(left).map_err(|e| e.message().into())),
            ));
        }
        stop_all(jobs, end, &self.shared.stopping)
    }

    /// Blocks until every source has ended and its queue is drained.
    pub fn wait_until_sources_end(&self) {
        while !self
            .shared
            .workers
            .wait_all_until(Instant::now() + Duration::from_secs(3600))
        {}
    }

    /// Waits, using no CPU, for the next thing the main thread must act on: a
    /// stop signal (watched by `signals` since before the sources started), a
    /// reload (SIGHUP or `ctl reload`), a plugin that asks to leave, or every
    /// worker ending (every source finished) or a stop request. With
    /// `sources_may_return` (a source is stopped, and may be started again), the
    /// end of every worker does not wake it.
    pub fn wait_next(
        &self,
        signals: &mut super::signals::Signals,
        sources_may_return: bool,
    ) -> super::signals::Wake {
        use super::signals::Wake;
        let workers = &self.shared.workers;
        signals.next(|| async {
            tokio::select! {
                () = async {
                    if sources_may_return {
                        std::future::pending::<()>().await;
                    }
                    while workers.live() > 0 {
                        workers.notify.notified().await;
                    }
                } => Wake::Ended,
                () = super::signals::stop_request() => Wake::Ended,
                () = crate::live::requests::requested() => Wake::Request,
                () = crate::live::leaving::requested() => Wake::Leave,
            }
        })
    }

    /// After a stop signal: logs it, and makes a second one exit at once (exit
    /// code 3), naming what that abandons.
    pub fn stopping_on(&self, signal: &str) {
        tracing::info!("{signal} received; shutting down (a second signal exits at once).");
        let shared = Arc::clone(&self.shared);
        super::signals::exit_on_next_signal(move || shared.abandon_summary());
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
        let routes = shared.routes();
        for route in &routes {
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
        for route in &routes {
            let runnable = Arc::clone(&route.runnable);
            jobs.push((
                route.name,
                Box::new(move || runnable.shutdown(left(end)).map_err(|e| e.message().into())),
            ));
        }
        for slot in &shared.table().handlers {
            let obj = Arc::clone(&slot.obj);
            jobs.push((
                slot.name,
                Box::new(move || obj.shutdown(left(end)).map_err(|e| e.message().into())),
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
    if jobs.is_empty() {
        return Vec::new();
    }
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

/// Plans each source's route over `handlers`.
fn plan_table(
    handlers: Vec<Arc<HandlerSlot>>,
    sources: &[(&'static str, Phase)],
    route: &BTreeMap<String, String>,
) -> Result<Table, String> {
    let phases: Vec<&str> = handlers.iter().map(|h| h.phase).collect();
    let mut plans: BTreeMap<&'static str, Plan> = BTreeMap::new();
    for (name, start) in sources {
        let planned =
            plan(start.as_str(), route, &phases).map_err(|e| format!("source `{name}`: {e}"))?;
        let stages: Vec<&str> = planned.stages.iter().map(|s| s.phase.as_str()).collect();
        tracing::info!(source = name, route = %format!("{start} -> {} -> cleanup", stages.join(" -> ")), "Route planned.");
        plans.insert(name, planned);
    }
    Ok(Table { handlers, plans })
}

/// Adds `source`'s route (queue and workers); returns it and the sender its
/// `start` gets.
fn add_route(
    shared: &Arc<Shared>,
    source: Source,
) -> StartResult<(
    Arc<SourceRoute>,
    gordon_plugin_api::channel::Sender<EventMessage>,
)> {
    let (tx, rx) = bounded::<EventMessage>(shared.queue_capacity);
    let route = Arc::new(SourceRoute {
        name: source.name,
        runnable: source.runnable,
        start: source.start,
        rx,
        in_flight: Default::default(),
    });
    shared
        .routes
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .push(Arc::clone(&route));
    let workers = if route.runnable.ordered() {
        1
    } else {
        shared.per_source
    };
    for _ in 0..workers {
        spawn_worker(shared, &route, Vec::new())?;
    }
    Ok((route, tx))
}

/// Starts a worker for `route`. It first hands `rejected` (stand-ins of a batch a
/// stuck handler holds, already in phase `drop`) to the source's cleanup.
///
/// # Errors
/// The thread cannot start.
pub(crate) fn spawn_worker(
    shared: &Arc<Shared>,
    route: &Arc<SourceRoute>,
    rejected: Vec<EventMessage>,
) -> StartResult<Arc<WorkerState>> {
    let state = Arc::new(WorkerState::new(Arc::clone(route)));
    shared.workers.add(&state);
    let (thread_shared, thread_state) = (Arc::clone(shared), Arc::clone(&state));
    let spawned = std::thread::Builder::new()
        .name(format!("gordon-router-{}", route.name))
        .spawn(move || {
            let shared = thread_shared;
            let _exit = ExitSignal(Arc::clone(&shared), Arc::clone(&thread_state));
            let route = Arc::clone(&thread_state.route);
            if !rejected.is_empty() {
                router::cleanup(&route, &rejected);
                route.in_flight.fetch_sub(rejected.len(), Ordering::Relaxed);
            }
            let worked = catch_unwind(AssertUnwindSafe(|| {
                router::work(&route, || shared.table(), shared.batch_size, &thread_state)
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

    /// Waits until every worker of `route` has ended or `until` passes; returns
    /// whether all did.
    fn wait_route_until(&self, route: &Arc<SourceRoute>, until: Instant) -> bool {
        self.wait_while(until, |w| Arc::ptr_eq(&w.route, route))
    }

    /// Waits until every worker has ended or `until` passes; returns whether all did.
    fn wait_all_until(&self, until: Instant) -> bool {
        self.wait_while(until, |_| true)
    }

    /// Waits until no live worker is `counted`, or `until` passes; returns
    /// whether none is.
    fn wait_while(&self, until: Instant, counted: impl Fn(&WorkerState) -> bool) -> bool {
        let mut live = lock(&self.live);
        while live.iter().any(|w| counted(w)) {
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
