//! The watchdog over handler calls: a call past its deadline costs its batch (the
//! messages are rejected to their source) and its worker (replaced), never the
//! route.
//!
//! It sleeps until the earliest deadline of a running call, and when no call is
//! running, for a quarter of the shortest handler timeout (any call that starts
//! meanwhile cannot expire sooner): an idle host wakes it a few times a minute. At
//! each wake-up it also sets the sources' queue-depth gauges.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{IoWhat, StartResult};

use super::pipeline::{spawn_worker, Shared};
use super::router::{mark_dropped, Overdue, WorkerState};
use crate::metrics::events;

/// Workers of one route the watchdog may replace over a run; past it a stuck call
/// still has its batch rejected, but the route runs on with fewer workers (each
/// stuck call pins a thread, and a handler that hangs every call would otherwise
/// grow threads without bound).
const MAX_STUCK_PER_ROUTE: usize = 64;

/// The running watchdog.
pub(crate) struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    /// Starts watching (a reload may add handlers to a host that had none).
    ///
    /// # Errors
    /// The thread cannot start.
    pub(crate) fn start(shared: Arc<Shared>) -> StartResult<Option<Watchdog>> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("gordon-watchdog".into())
            .spawn(move || watch(&shared, &flag))
            .what("cannot start the watchdog thread")?;
        Ok(Some(Watchdog { stop, thread }))
    }

    /// Stops watching.
    pub(crate) fn stop(self) {
        let (flag, cvar) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        let _ = self.thread.join();
    }
}

/// How long the watchdog sleeps when no call runs: a quarter of the shortest
/// handler timeout, at most a second.
fn idle_tick(shared: &Shared) -> Duration {
    shared
        .table()
        .handlers
        .iter()
        .map(|h| h.timeout / 4)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .min(Duration::from_secs(1))
}

fn watch(shared: &Arc<Shared>, stop: &(Mutex<bool>, Condvar)) {
    let mut stuck: HashMap<&'static str, usize> = HashMap::new();
    loop {
        // The queue-depth gauges are refreshed by the workers once per batch; these
        // wake-ups keep them current while every worker of a route is busy.
        for route in &shared.routes() {
            events::queue_depth(route.name, route.rx.len());
        }
        let idle_tick = idle_tick(shared);
        let now = Instant::now();
        let mut wake = now + idle_tick;
        for worker in shared.workers.snapshot() {
            if let Some(overdue) = worker.take_overdue(now) {
                give_up(shared, &worker, overdue, &mut stuck);
            } else if let Some(deadline) = worker.deadline() {
                wake = wake.min(deadline);
            }
        }
        let (flag, cvar) = stop;
        let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let left = wake.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stopped = cvar
                .wait_timeout(stopped, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if *stopped {
            return;
        }
    }
}

/// Rejects the stand-ins of a stuck call's batch and replaces its worker.
fn give_up(
    shared: &Arc<Shared>,
    worker: &Arc<WorkerState>,
    overdue: Overdue,
    stuck: &mut HashMap<&'static str, usize>,
) {
    let route = &worker.route;
    let table = &overdue.table;
    let Some(stage) = table
        .plans
        .get(route.name)
        .and_then(|plan| plan.stages.get(overdue.stage))
        .copied()
    else {
        return;
    };
    let handler = &table.handlers[stage.handler];
    let mut stand_ins = overdue.stand_ins;
    let reason = format!(
        "plugin {} did not return within {} s",
        handler.name,
        handler.timeout.as_secs_f64()
    );
    tracing::error!(
        plugin = handler.name,
        phase = %stage.phase,
        source = route.name,
        messages = stand_ins.len(),
        "{reason}; rejecting its batch and replacing the worker."
    );
    events::handler_timeout(stage.phase, handler.name);
    events::messages_dropped(stage.phase, handler.name, stand_ins.len());
    events::plugin_state(handler.name, "stuck", 1.0);
    crate::health::report(
        handler.name,
        format!("did not return within {} s", handler.timeout.as_secs_f64()),
    );
    shared.problem(format!(
        "{reason} (phase {}, source `{}`): {} message(s) rejected",
        stage.phase,
        route.name,
        stand_ins.len()
    ));
    mark_dropped(&mut stand_ins, &reason);
    let count = stuck.entry(route.name).or_default();
    *count += 1;
    if *count > MAX_STUCK_PER_ROUTE {
        tracing::error!(
            source = route.name,
            "{} calls of this route are stuck; not replacing more workers.",
            *count - 1
        );
        shared.workers.remove(worker);
        // Still reject the batch, on a thread of its own.
        let route = Arc::clone(route);
        let _ = std::thread::Builder::new()
            .name("gordon-reject".into())
            .spawn(move || {
                super::router::cleanup(&route, &stand_ins);
                route
                    .in_flight
                    .fetch_sub(stand_ins.len(), std::sync::atomic::Ordering::Relaxed);
            });
        return;
    }
    // The replacement counts as live before the abandoned worker stops counting, so
    // the live count never touches zero (which would read as "every source ended").
    if let Err(e) = spawn_worker(shared, route, stand_ins) {
        tracing::error!(source = route.name, "cannot replace a stuck worker: {e:#}");
    }
    shared.workers.remove(worker);
}
