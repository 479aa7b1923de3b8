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

use std::sync::Arc;
use std::time::Instant;

use abi_stable::std_types::{RSlice, RSliceMut};
use gordon_plugin_api::abi::{HandlerBox, RunnableBox};
use gordon_plugin_api::channel::{Receiver, Recv};
use gordon_plugin_api::{now_ns, EventMessage, FfiError, Phase};

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
    /// The handler.
    pub obj: HandlerBox,
}

/// Everything the workers of one source need.
pub struct SourceRoute {
    /// Plugin name of the source.
    pub name: &'static str,
    /// The source (for cleanup).
    pub runnable: Arc<RunnableBox>,
    /// Its start phase.
    pub start: Phase,
    /// Its route.
    pub plan: Plan,
    /// Its queue.
    pub rx: Receiver<EventMessage>,
}

/// Runs one worker until the source's stream ends (all senders gone, or the queue
/// closed) and its queue is empty.
pub fn work(route: &SourceRoute, handlers: &[HandlerSlot], batch_size: usize) {
    let mut batch = Vec::with_capacity(batch_size);
    let mut failed = Vec::new();
    while route.rx.recv_batch(&mut batch, batch_size, None) != Recv::Ended {
        route_batch(route, handlers, &mut batch, &mut failed);
        batch.clear();
    }
}

/// Routes one batch through every stage, then hands it to the source's cleanup.
pub fn route_batch(
    route: &SourceRoute,
    handlers: &[HandlerSlot],
    batch: &mut Vec<EventMessage>,
    failed: &mut Vec<EventMessage>,
) {
    events::messages_entered(route.start, batch.len());
    for stage in &route.plan.stages {
        if batch.is_empty() {
            break;
        }
        let handler = &handlers[stage.handler];
        let now = now_ns();
        for msg in batch.iter_mut() {
            msg.update_phase_at(stage.phase, ROUTER, now);
        }
        let started = Instant::now();
        let failures = handler.obj.handle_batch(RSliceMut::from_mut_slice(batch));
        events::stage_done(stage.phase, handler.name, batch.len(), started.elapsed());
        if !failures.is_empty() {
            let mut reasons: Vec<Option<FfiError>> = vec![None; batch.len()];
            for f in failures {
                if let Some(slot) = reasons.get_mut(f.index as usize) {
                    *slot = Some(f.error);
                }
            }
            let dropped = split_failed(batch, reasons, handler.name, failed);
            events::messages_dropped(stage.phase, handler.name, dropped);
        }
    }
    if let Some(phase) = route.plan.unroutable {
        if !batch.is_empty() {
            tracing::warn!(
                source = route.name,
                %phase,
                count = batch.len(),
                "No handler serves this phase; sending messages to cleanup."
            );
            events::messages_unroutable(phase, batch.len());
            for msg in batch.iter_mut() {
                msg.append_to_history(
                    format!("No handler for phase {phase}; sent to cleanup"),
                    ROUTER,
                );
            }
        }
    }
    let now = now_ns();
    for msg in batch.iter_mut() {
        msg.update_phase_at(Phase::CLEANUP, ROUTER, now);
    }
    batch.append(failed);
    let started = Instant::now();
    if let Err(error) = route
        .runnable
        .cleanup(RSlice::from_slice(batch))
        .into_result()
    {
        tracing::error!(source = route.name, error = %error.message, "Cleanup failed.");
    }
    events::stage_done(Phase::CLEANUP, route.name, batch.len(), started.elapsed());
}

/// Moves the failed messages of `batch` to `failed`, marking each `drop` with its
/// reason; keeps the order of the rest. Returns how many failed.
fn split_failed(
    batch: &mut Vec<EventMessage>,
    mut reasons: Vec<Option<FfiError>>,
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
                let what = if err.panicked { "panicked" } else { "failed" };
                tracing::warn!(
                    msg_id = %msg.msg_id(),
                    plugin,
                    phase = %msg.phase(),
                    error = %err.message,
                    "Dropping message: handler {what}."
                );
                msg.update_phase(Phase::DROP, ROUTER);
                msg.append_to_history(format!("{plugin} {what}: {}", err.message), ROUTER);
                failed.push(msg);
            }
        }
    }
    failed.len() - before
}
