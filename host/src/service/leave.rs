//! Plugins that ask to leave (dr-provision's `Leaving`): the service stops them
//! cleanly and, as `[core.leaving]` says, starts them again after a back-off that
//! doubles for each leave (up to `restart_backoff_max`), or leaves them stopped.
//!
//! A source that leaves is drained and shut down at once, and a new instance takes
//! its place after the back-off. A handler that leaves keeps its place in the route
//! until its new instance is in service (a route never loses its handler, so no
//! message is acknowledged unpublished); without restart, it stays in the route
//! and its leave is only reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::lifecycle::{create_member, pipeline_parts, Role, Running};
use super::pipeline::Source;
use crate::live::events;
use crate::plugins::PluginInfo;

/// A plugin that left, and when it is started again.
pub(crate) struct Left {
    info: PluginInfo,
    due: Instant,
    /// Leaves so far (the back-off doubles with each).
    count: u32,
}

/// Acts on every leave request, then starts every left plugin whose back-off is
/// over.
pub(crate) fn serve(running: &mut Running) {
    let leaving = running.session.config.core.leaving.clone();
    for (name, reason) in crate::live::leaving::take() {
        let Some(member) = running.members.get(&name) else {
            continue;
        };
        if running.left.contains_key(&name) {
            continue;
        }
        events::publish("plugin.left", Some(&name), json!({"reason": reason}));
        let count = running.left_counts.get(&name).copied().unwrap_or(0) + 1;
        running.left_counts.insert(name.clone(), count);
        if let Role::Source(source) = &member.role {
            let source = Arc::clone(source);
            let deadline = Duration::from_secs_f64(running.session.config.core.shutdown_timeout);
            if let Some(p) = running.pipeline.retire_source(&source, deadline) {
                tracing::warn!(plugin = %name, "{p}");
            }
            tracing::info!(plugin = %name, reason, "Plugin left; stopped.");
            crate::metrics::events::plugin_state(&name, "running", 0.0);
        }
        if !leaving.restart {
            tracing::info!(plugin = %name, "core.leaving.restart is off; the plugin stays stopped.");
            if matches!(member.role, Role::Source(_)) {
                running.members.remove(&name);
                running.publish_status();
            }
            continue;
        }
        let backoff = (leaving.restart_backoff * 2f64.powi(count.saturating_sub(1) as i32))
            .min(leaving.restart_backoff_max);
        let wait = Duration::try_from_secs_f64(backoff).unwrap_or(Duration::ZERO);
        tracing::info!(plugin = %name, "Plugin will be started again in {backoff:.1} s.");
        running.left.insert(
            name.clone(),
            Left {
                info: member.info.clone(),
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
        let mut relay = None;
        let new = match create_member(&running.session, &left.info, &mut relay) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(plugin = %name, error = %e, "Cannot start the plugin again; trying later.");
                running.left.insert(
                    name.clone(),
                    Left {
                        due: Instant::now() + Duration::from_secs(1) * (left.count + 1),
                        ..left
                    },
                );
                wake_at(Duration::from_secs(u64::from(left.count + 1)));
                continue;
            }
        };
        let old = running.members.insert(name.clone(), new);
        let (handlers, sources) = pipeline_parts(&running.session, &running.members);
        let starts: Vec<_> = sources.iter().map(|(n, p, _)| (*n, *p)).collect();
        match running
            .pipeline
            .plan(handlers, &starts, &running.session.config.core.route)
        {
            Ok(table) => {
                let old_table = running.pipeline.set_table(table);
                for (n, start, runnable) in sources {
                    if !running.pipeline.has_source(&runnable) {
                        if let Err(e) = running.pipeline.add_source(Source {
                            name: n,
                            start,
                            runnable,
                        }) {
                            tracing::error!(plugin = n, "{e}");
                        }
                    }
                }
                if let Some(old) = old {
                    if let Role::Handler(slot) = &old.role {
                        let slot = Arc::clone(slot);
                        drop(old_table);
                        drop(old);
                        let deadline =
                            Duration::from_secs_f64(running.session.config.core.shutdown_timeout);
                        for p in running.pipeline.retire_handlers(vec![slot], deadline) {
                            tracing::warn!("{p}");
                        }
                    }
                }
                tracing::info!(plugin = %name, "Plugin started again after leaving.");
                events::publish("plugin.restarted", Some(&name), json!({"after": "leave"}));
            }
            Err(e) => tracing::error!(plugin = %name, "Cannot route the restarted plugin: {e}"),
        }
        running.publish_status();
    }
}
