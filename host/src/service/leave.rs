//! Taking plugins out of service and putting them back: `gordon ctl plugin
//! stop|start NAME`, and plugins that ask to leave (dr-provision's `Leaving`),
//! which the service stops cleanly and, as `[core.leaving]` says, starts again
//! after a back-off that doubles with each leave (up to `restart_backoff_max`),
//! or leaves stopped.
//!
//! A stopped source is drained (what it accepted finishes its route) and shut
//! down. A stopped handler is shut down once no batch holds it, and a stand-in
//! keeps its place in the route, failing every message with the reason: its
//! source rejects them (NATS redelivers), so nothing is acknowledged unpublished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::lifecycle::{create_member, pipeline_parts, Role, Running};
use super::pipeline::Source;
use super::router::HandlerSlot;
use crate::live::events;
use crate::plugins::handle::Handler;

/// A plugin that left, and when it is started again.
pub(crate) struct Left {
    due: Instant,
    /// Leaves so far (the back-off doubles with each).
    count: u32,
}

fn deadline(running: &Running) -> Duration {
    Duration::from_secs_f64(running.session.config.core.shutdown_timeout)
}

/// `ctl plugin stop NAME`.
pub(crate) fn stop(running: &mut Running, name: &str) -> Value {
    match take_out_of_service(running, name, "stopped by the operator") {
        Ok(()) => json!({"ok": true, "message": format!("plugin `{name}` stopped")}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

/// `ctl plugin start NAME`.
pub(crate) fn start(running: &mut Running, name: &str) -> Value {
    running.left.remove(name);
    match put_in_service(running, name) {
        Ok(()) => json!({"ok": true, "message": format!("plugin `{name}` started")}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

/// Stops `name` cleanly and records it as stopped.
fn take_out_of_service(running: &mut Running, name: &str, why: &str) -> Result<(), String> {
    if running.stopped.contains_key(name) {
        return Err(format!("plugin `{name}` is already stopped"));
    }
    let member = running
        .members
        .get(name)
        .ok_or_else(|| format!("no running plugin `{name}`"))?;
    let info = member.info.clone();
    match &member.role {
        Role::Source(source) => {
            let source = Arc::clone(source);
            if let Some(p) = running.pipeline.retire_source(&source, deadline(running)) {
                tracing::warn!(plugin = name, "{p}");
            }
            running.members.remove(name);
        }
        Role::Handler(slot) => {
            let stand_in = Arc::new(HandlerSlot {
                name: slot.name,
                phase: slot.phase,
                obj: Arc::new(Handler::stopped(format!(
                    "plugin `{name}` is stopped ({why})"
                ))),
                timeout: slot.timeout,
            });
            let old = Arc::clone(slot);
            if let Some(m) = running.members.get_mut(name) {
                m.role = Role::Handler(stand_in);
                // The stopped instance gets no more events or actions.
                m.events = None;
                m.control = Arc::new(crate::plugins::handle::Control::absent(""));
                m.supervisor = None;
            }
            reroute(running)?;
            for p in running
                .pipeline
                .retire_handlers(vec![old], deadline(running))
            {
                tracing::warn!(plugin = name, "{p}");
            }
        }
        Role::Other => {
            return Err(format!(
                "plugin `{name}` is neither a source nor a handler; only those can be stopped"
            ))
        }
    }
    tracing::info!(plugin = name, why, "Plugin stopped.");
    crate::metrics::events::plugin_state(name, "running", 0.0);
    running
        .stopped
        .insert(name.to_owned(), (info, why.to_owned()));
    running.publish_status();
    Ok(())
}

/// Creates a stopped plugin again from the configuration in use and puts it in
/// the route.
fn put_in_service(running: &mut Running, name: &str) -> Result<(), String> {
    let (info, why) = running
        .stopped
        .remove(name)
        .ok_or_else(|| format!("plugin `{name}` is not stopped"))?;
    let mut relay = None;
    let new = match create_member(&running.session, &info, &mut relay) {
        Ok(m) => m,
        Err(e) => {
            running.stopped.insert(name.to_owned(), (info.clone(), why));
            return Err(info.problem(&e));
        }
    };
    running.members.insert(name.to_owned(), new);
    reroute(running)?;
    tracing::info!(plugin = name, "Plugin started again.");
    running.publish_status();
    Ok(())
}

/// Puts the members' handlers and routes in use, and starts any member source
/// that has no route yet.
fn reroute(running: &mut Running) -> Result<(), String> {
    let (handlers, sources) = pipeline_parts(&running.session, &running.members);
    let starts: Vec<_> = sources.iter().map(|(n, p, _)| (*n, *p)).collect();
    let table = running
        .pipeline
        .plan(handlers, &starts, &running.session.config.core.route)?;
    drop(running.pipeline.set_table(table));
    for (name, start, runnable) in sources {
        if !running.pipeline.has_source(&runnable) {
            running
                .pipeline
                .add_source(Source {
                    name,
                    start,
                    runnable,
                })
                .map_err(|e| format!("source `{name}`: {e}"))?;
        }
    }
    Ok(())
}

/// Acts on every leave request, then starts every left plugin whose back-off is
/// over.
pub(crate) fn serve(running: &mut Running) {
    let leaving = running.session.config.core.leaving.clone();
    for (name, reason) in crate::live::leaving::take() {
        if !running.members.contains_key(&name) || running.stopped.contains_key(&name) {
            continue;
        }
        events::publish("plugin.left", Some(&name), json!({"reason": reason}));
        if let Err(e) = take_out_of_service(running, &name, &format!("it left: {reason}")) {
            tracing::warn!(plugin = %name, "{e}");
            continue;
        }
        let count = running.left_counts.get(&name).copied().unwrap_or(0) + 1;
        running.left_counts.insert(name.clone(), count);
        if !leaving.restart {
            tracing::info!(plugin = %name, "core.leaving.restart is off; the plugin stays stopped (`gordon ctl plugin start` starts it).");
            continue;
        }
        let backoff = (leaving.restart_backoff * 2f64.powi(count.saturating_sub(1) as i32))
            .min(leaving.restart_backoff_max);
        let wait = Duration::try_from_secs_f64(backoff).unwrap_or(Duration::ZERO);
        tracing::info!(plugin = %name, "Plugin will be started again in {backoff:.1} s.");
        running.left.insert(
            name.clone(),
            Left {
                due: Instant::now() + wait,
                count,
            },
        );
        wake_at(wait);
    }
    restart_due(running);
}

/// Wakes the main thread after `wait`, to start what is due.
fn wake_at(wait: Duration) {
    let _ = std::thread::Builder::new()
        .name("gordon-leave-timer".into())
        .spawn(move || {
            std::thread::sleep(wait);
            crate::live::leaving::wake_up();
        });
}

/// Starts again every left plugin whose back-off is over.
fn restart_due(running: &mut Running) {
    let now = Instant::now();
    let due: Vec<String> = running
        .left
        .iter()
        .filter(|(_, l)| l.due <= now)
        .map(|(n, _)| n.clone())
        .collect();
    for name in due {
        let Some(left) = running.left.remove(&name) else {
            continue;
        };
        match put_in_service(running, &name) {
            Ok(()) => {
                tracing::info!(plugin = %name, "Plugin started again after leaving.");
                events::publish("plugin.restarted", Some(&name), json!({"after": "leave"}));
            }
            Err(e) => {
                if !running.stopped.contains_key(&name) {
                    continue; // started by the operator meanwhile
                }
                let retry = Duration::from_secs(u64::from(left.count.min(60)));
                tracing::error!(plugin = %name, error = %e, "Cannot start the plugin again; retrying in {} s.", retry.as_secs());
                running.left.insert(
                    name,
                    Left {
                        due: Instant::now() + retry,
                        count: left.count,
                    },
                );
                wake_at(retry);
            }
        }
    }
}
