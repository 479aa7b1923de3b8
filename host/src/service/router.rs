//! The phase router: worker threads that move batches of messages along a route.
//!
//! Each source has a bounded queue and its own workers. A worker takes whatever is
//! waiting (up to `batch_size`), runs the batch through every stage of the source's
//! plan, and hands the batch back to the source for cleanup. Batches form by
//! themselves under load and shrink to one message when traffic is light, so
//! throughput and latency do not have to be traded by configuration.
//!
//! **Invariant:** a message that a handler fails (error or caught panic) is moved to
//! phase `drop`, gets the reason appended to its history, skips the rest of the
//! route and goes back to its source's cleanup, which rejects it. It never stops the
//! router, and it never holds up the other messages of its batch.
//!
//! **Invariant:** every handler call has a deadline. A worker records, per batch, a
//! stand-in of each message (its id, action and source token; no allocation) and,
//! per call, which handler it is in and until when. The watchdog (`watchdog.rs`)
//! finds a call past its deadline, takes the stand-ins, and replaces the worker: the
//! new one first hands the stand-ins to the source's cleanup in phase `drop` (so they
//! are rejected, and redelivered where the source can), then routes on. The stuck
//! thread is abandoned; should the call ever return, it drops its batch untouched.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gordon_plugin_api::channel::{Receiver, Recv};
use gordon_plugin_api::{now_ns, EventMessage, Phase, PluginError};

use crate::plugins::handle::{Handler, Source};

use super::plan::Plan;
use crate::metrics::events;

/// The name the router signs history entries with.
pub const ROUTER: &str = "router";

/// A created handler and its (interned) plugin name.
pub struct HandlerSlot {
    /// Plugin name.
    pub name: &'static str,
    /// The phase it handles.
    pub phase: &'static str,
    /// The handler (shared by the slots of successive tables when only its
    /// timeout changes).
    pub obj: Arc<Handler>,
    /// How long one call (one batch) may take.
    pub timeout: Duration,
}

/// The handlers and every source's route, replaced as a whole on reload. A
/// worker reads it once per batch, so a batch runs on one table from start to end
/// and a change takes effect between batches.
#[derive(Default)]
pub struct Table {
    /// The handlers; a plan's stages index into this list.
    pub handlers: Vec<Arc<HandlerSlot>>,
    /// Each source's route, by source name.
    pub plans: BTreeMap<&'static str, Plan>,
}

/// Everything the workers of one source need.
pub struct SourceRoute {
    /// Plugin name of the source.
    pub name: &'static str,
    /// The source (for cleanup).
    pub runnable: Arc<Source>,
    /// Its start phase.
    pub start: Phase,
    /// Its queue.
    pub rx: Receiver<EventMessage>,
    /// Messages taken from the queue and not yet back from cleanup.
    pub in_flight: AtomicUsize,
}

/// What one worker is doing, shared with the watchdog.
pub struct WorkerState {
    /// The route (source) the worker serves.
    pub route: Arc<SourceRoute>,
    call: Mutex<Call>,
}

#[derive(Default)]
struct Call {
    /// The stage being called and when its deadline passes.
    busy: Option<(usize, Instant)>,
    /// The table the batch runs on.
    table: Option<Arc<Table>>,
    /// Set by the watchdog: the worker has been replaced and must leave its batch.
    abandoned: bool,
    /// A stand-in for every message of the batch being routed.
    stand_ins: Vec<EventMessage>,
}

/// A call the watchdog found past its deadline.
pub struct Overdue {
    /// Index into the route's stages.
    pub stage: usize,
    /// The table the batch ran on.
    pub table: Arc<Table>,
    /// Stand-ins for the messages the stuck worker holds.
    pub stand_ins: Vec<EventMessage>,
}

impl WorkerState {
    /// A worker for route `route`, idle.
    pub fn new(route: Arc<SourceRoute>) -> Self {
        WorkerState {
            route,
            call: Mutex::new(Call::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Call> {
        self.call.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin_batch(&self, batch: &[EventMessage], table: &Arc<Table>) {
        let mut call = self.lock();
        call.table = Some(Arc::clone(table));
        call.stand_ins.clear();
        call.stand_ins
            .extend(batch.iter().map(EventMessage::stand_in));
    }

    fn begin_call(&self, stage: usize, deadline: Instant) {
        self.lock().busy = Some((stage, deadline));
    }

    /// Ends a call; false when the watchdog gave the batch up meanwhile.
    fn end_call(&self) -> bool {
        let mut call = self.lock();
        call.busy = None;
        !call.abandoned
    }

    /// Whether the watchdog has replaced this worker.
    pub fn is_abandoned(&self) -> bool {
        self.lock().abandoned
    }

    /// When the current call's deadline passes, if a call is running.
    pub fn deadline(&self) -> Option<Instant> {
        let call = self.lock();
        call.busy
            .filter(|_| !call.abandoned)
            .map(|(_, deadline)| deadline)
    }

    /// Gives the worker up if its call is past its deadline at `now`: from here on
    /// the worker will not touch its batch, and the stand-ins are the caller's.
    pub fn take_overdue(&self, now: Instant) -> Option<Overdue> {
        let mut call = self.lock();
        match call.busy {
            Some((stage, deadline)) if !call.abandoned && deadline <= now => {
                call.abandoned = true;
                Some(Overdue {
                    stage,
                    table: call.table.clone().unwrap_or_default(),
                    stand_ins: std::mem::take(&mut call.stand_ins),
                })
            }
            _ => None,
        }
    }
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEnd {
    /// The source's stream ended and its queue is empty.
    Drained,
    /// A handler call outlived its deadline and the watchdog replaced the worker.
    Abandoned,
}

/// Runs one worker until the source's stream ends (all senders gone, or the queue
/// closed) and its queue is empty, or until the watchdog gives it up.
pub fn work(
    route: &SourceRoute,
    table: impl Fn() -> Arc<Table>,
    batch_size: usize,
    state: &WorkerState,
) -> WorkerEnd {
    // Grows to `batch_size` under load; no up-front allocation of a huge batch.
    let mut batch = Vec::with_capacity(batch_size.min(1024));
    let mut failed = Vec::new();
    while route.rx.recv_batch(&mut batch, batch_size, None) != Recv::Ended {
        let n = batch.len();
        events::queue_depth(route.name, route.rx.len());
        route.in_flight.fetch_add(n, Ordering::Relaxed);
        let table = table();
        let routed = route_batch(route, &table, &mut batch, &mut failed, state);
        drop(table);
        if !routed {
            tracing::warn!(
                source = route.name,
                messages = n,
                "A handler returned after its deadline; its batch had already been rejected, dropping it."
            );
            return WorkerEnd::Abandoned;
        }
        route.in_flight.fetch_sub(n, Ordering::Relaxed);
        batch.clear();
    }
    WorkerEnd::Drained
}

/// Routes one batch through every stage, then hands it to the source's cleanup.
/// Returns false, having done nothing more with the batch, when a handler call
/// returned after the watchdog had given the batch up.
pub fn route_batch(
    route: &SourceRoute,
    table: &Arc<Table>,
    batch: &mut Vec<EventMessage>,
    failed: &mut Vec<EventMessage>,
    state: &WorkerState,
) -> bool {
    events::messages_entered(route.start, batch.len());
    state.begin_batch(batch, table);
    let Some(plan) = table.plans.get(route.name) else {
        // Every running source is planned; a source being retired keeps its plan
        // until its queue is drained. Never acknowledge what was not routed.
        let why = PluginError::new(format!("source `{}` has no route", route.name));
        let reasons = vec![Some(why); batch.len()];
        split_failed(batch, reasons, ROUTER, failed);
        batch.append(failed);
        cleanup(route, batch);
        return true;
    };
    for (index, stage) in plan.stages.iter().enumerate() {
        if batch.is_empty() {
            break;
        }
        let handler = &table.handlers[stage.handler];
        let now = now_ns();
        for msg in batch.iter_mut() {
            msg.update_phase_at(stage.phase, ROUTER, now);
        }
        let started = Instant::now();
        state.begin_call(
            index,
            started + handler.timeout + handler.obj.watchdog_grace(),
        );
        let failures = handler.obj.handle_batch(batch);
        if !state.end_call() {
            return false;
        }
        events::stage_done(stage.phase, handler.name, batch.len(), started.elapsed());
        if !failures.is_empty() {
            let mut reasons: Vec<Option<PluginError>> = vec![None; batch.len()];
            for (index, error) in failures {
                if let Some(slot) = reasons.get_mut(index) {
                    *slot = Some(error);
                }
            }
            let dropped = split_failed(batch, reasons, handler.name, failed);
            events::messages_dropped(stage.phase, handler.name, dropped);
        }
    }
    let now = now_ns();
    for msg in batch.iter_mut() {
        msg.update_phase_at(Phase::CLEANUP, ROUTER, now);
    }
    batch.append(failed);
    cleanup(route, batch);
    true
}

/// Hands messages back to their source (which acknowledges those in `cleanup` and
/// rejects those in `drop`).
pub fn cleanup(route: &SourceRoute, batch: &[EventMessage]) {
    let started = Instant::now();
    if let Err(error) = route.runnable.cleanup(batch) {
        tracing::error!(source = route.name, %error, "Cleanup failed.");
    }
    events::stage_done(Phase::CLEANUP, route.name, batch.len(), started.elapsed());
}

/// Marks stand-ins of messages a stuck handler holds as dropped, with the reason.
pub fn mark_dropped(stand_ins: &mut [EventMessage], reason: &str) {
    for msg in stand_ins {
        msg.update_phase(Phase::DROP, ROUTER);
        msg.append_to_history(reason, ROUTER);
    }
}

/// Moves the failed messages of `batch` to `failed`, marking each `drop` with its
/// reason; keeps the order of the rest. Returns how many failed.
fn split_failed(
    batch: &mut Vec<EventMessage>,
    mut reasons: Vec<Option<PluginError>>,
    plugin: &'static str,
    failed: &mut Vec<EventMessage>,
) -> usize {
    let before = failed.len();
    let all = std::mem::take(batch);
    for (msg, reason) in all.into_iter().zip(reasons.iter_mut()) {
        match reason.take() {
            None => batch.push(msg),
            Some(err) => {
                let mut msg = msg;
                let what = if err.is_panic() { "panicked" } else { "failed" };
                tracing::warn!(
                    msg_id = %msg.msg_id(),
                    plugin,
                    phase = %msg.phase(),
                    error = %err.message(),
                    "Dropping message: handler {what}."
                );
                if crate::live::events::wanted("message.dropped") {
                    crate::live::events::publish(
                        "message.dropped",
                        Some(plugin),
                        serde_json::json!({
                            "msg_id": msg.msg_id().to_string(),
                            "phase": msg.phase().as_str(),
                            "reason": err.message(),
                        }),
                    );
                }
                msg.update_phase(Phase::DROP, ROUTER);
                msg.append_to_history(format!("{plugin} {what}: {}", err.message()), ROUTER);
                failed.push(msg);
            }
        }
    }
    failed.len() - before
}
