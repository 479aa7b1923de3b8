//! The metric events of the host, one function each.
//!
//! | event | kind | labels |
//! |---|---|---|
//! | `gordon.messages` | counter: messages entering a phase | `phase` |
//! | `gordon.messages.dropped` | counter: messages a handler failed | `phase`, `plugin` |
//! | `gordon.handler.timeouts` | counter: handler calls that did not return within their deadline | `phase`, `plugin` |
//! | `gordon.messages.abandoned` | counter: accepted messages a stop abandoned (not routed) | `plugin` (the source) |
//! | `gordon.handler.latency` | timer: seconds per message, averaged over a batch | `phase`, `plugin` |
//! | `gordon.plugin.state` | gauge: 1 running, 0 stopped | `plugin`, `state` |
//! | `gordon.plugin.restarts` | counter: restarts of an isolated plugin's process after a crash | `plugin` |
//! | `gordon.queue.depth` | gauge: messages waiting in a source's queue | `source` |
//!
//! Each is also listed in [`METRICS`] with what it measures, which relays that
//! describe their metrics show (Prometheus `# HELP`); one missing there is
//! described by its name.

use std::time::Duration;

use gordon_plugin_api::abi::{MetricEvent, MetricKind, Tag};
use gordon_plugin_api::Phase;

fn emit(kind: MetricKind, name: &str, value: f64, tags: &[Tag<'_>]) {
    super::relay().emit(&MetricEvent {
        kind,
        name: name.into(),
        value,
        plugin: "".into(),
        tags: tags.into(),
    });
}

fn tag<'a>(key: &'static str, value: &'a str) -> Tag<'a> {
    Tag {
        key: key.into(),
        value: value.into(),
    }
}

/// Every host metric: event name, kind, and what it measures.
pub const METRICS: &[(&str, MetricKind, &str)] = &[
    (
        "gordon.messages",
        MetricKind::Incr,
        "Messages that entered a phase (a source's start phase, then each stage of its route).",
    ),
    (
        "gordon.messages.dropped",
        MetricKind::Incr,
        "Messages a handler failed (error, panic or missed deadline); they go back to their source in phase drop.",
    ),
    (
        "gordon.handler.timeouts",
        MetricKind::Incr,
        "Handler calls that did not return within their deadline (their batch is rejected, their worker replaced).",
    ),
    (
        "gordon.messages.abandoned",
        MetricKind::Incr,
        "Accepted messages a stop abandoned before they finished their route, per source.",
    ),
    (
        "gordon.handler.latency",
        MetricKind::Timer,
        "Seconds a handler (or a source's cleanup) took per message, averaged over each batch.",
    ),
    (
        "gordon.plugin.state",
        MetricKind::Set,
        "1 while a plugin is in the state of the label (running, failed, stuck), 0 once it left it.",
    ),
    (
        "gordon.plugin.restarts",
        MetricKind::Incr,
        "Restarts of an isolated plugin's process after it crashed, exited, or missed a call's deadline.",
    ),
    (
        "gordon.queue.depth",
        MetricKind::Set,
        "Messages waiting in a source's bounded queue for a router worker.",
    ),
    (
        "gordon.janitor.run-ended",
        MetricKind::Incr,
        "Janitor runs that ended, by status (ok, failed, refused).",
    ),
    (
        "gordon.janitor.zones",
        MetricKind::Incr,
        "Zones janitor runs compared.",
    ),
    (
        "gordon.janitor.changes",
        MetricKind::Incr,
        "Corrections janitor runs planned.",
    ),
    (
        "gordon.janitor.published",
        MetricKind::Incr,
        "Corrections janitor runs published.",
    ),
    (
        "gordon.janitor.last-success",
        MetricKind::Set,
        "When the last janitor run (not a dry run) succeeded, in seconds since the Unix epoch.",
    ),
];

/// What the host metric `name` measures, if [`METRICS`] lists it.
pub fn help(name: &str) -> Option<&'static str> {
    METRICS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, help)| *help)
}

/// Messages entered `phase` (a source's start phase).
pub fn messages_entered(phase: Phase, n: usize) {
    emit(
        MetricKind::Incr,
        "gordon.messages",
        n as f64,
        &[tag("phase", phase.as_str())],
    );
}

/// A handler (or a source's cleanup) handled `n` messages in `elapsed`.
pub fn stage_done(phase: Phase, plugin: &'static str, n: usize, elapsed: Duration) {
    if n == 0 {
        return;
    }
    crate::control::tally::handled(phase.as_str(), plugin, n, elapsed);
    if phase != Phase::CLEANUP {
        emit(
            MetricKind::Incr,
            "gordon.messages",
            n as f64,
            &[tag("phase", phase.as_str())],
        );
    }
    emit(
        MetricKind::Timer,
        "gordon.handler.latency",
        elapsed.as_secs_f64() / n as f64,
        &[tag("phase", phase.as_str()), tag("plugin", plugin)],
    );
}

/// A handler failed `n` messages.
pub fn messages_dropped(phase: Phase, plugin: &'static str, n: usize) {
    crate::control::tally::dropped(phase.as_str(), plugin, n);
    emit(
        MetricKind::Incr,
        "gordon.messages.dropped",
        n as f64,
        &[tag("phase", phase.as_str()), tag("plugin", plugin)],
    );
}

/// A handler call did not return within its deadline.
pub fn handler_timeout(phase: Phase, plugin: &str) {
    emit(
        MetricKind::Incr,
        "gordon.handler.timeouts",
        1.0,
        &[tag("phase", phase.as_str()), tag("plugin", plugin)],
    );
}

/// A stop abandoned `n` accepted messages of source `plugin`.
pub fn messages_abandoned(plugin: &str, n: usize) {
    emit(
        MetricKind::Incr,
        "gordon.messages.abandoned",
        n as f64,
        &[tag("plugin", plugin)],
    );
}

/// `depth` messages wait in the queue of source `source`.
pub fn queue_depth(source: &str, depth: usize) {
    emit(
        MetricKind::Set,
        "gordon.queue.depth",
        depth as f64,
        &[tag("source", source)],
    );
}

/// An isolated plugin's process was restarted after a crash.
pub fn plugin_restarted(plugin: &str) {
    crate::live::events::publish("plugin.restarted", Some(plugin), serde_json::Value::Null);
    emit(
        MetricKind::Incr,
        "gordon.plugin.restarts",
        1.0,
        &[tag("plugin", plugin)],
    );
}

/// A host event for `plugin` was dropped: its queue was full.
pub fn host_event_dropped(plugin: &str) {
    emit(
        MetricKind::Incr,
        "gordon.host_events.dropped",
        1.0,
        &[tag("plugin", plugin)],
    );
}

/// A plugin changed state (`running`, `stopped`, `failed`): a metric, and the
/// host event `plugin.started`, `plugin.stopped`, `plugin.failed` or
/// `plugin.stuck`.
pub fn plugin_state(plugin: &str, state: &str, value: f64) {
    let event = match (state, value > 0.0) {
        ("running", true) => Some("plugin.started"),
        ("running", false) => Some("plugin.stopped"),
        ("failed", true) => Some("plugin.failed"),
        ("stuck", true) => Some("plugin.stuck"),
        _ => None,
    };
    if let Some(event) = event {
        crate::live::events::publish(event, Some(plugin), serde_json::Value::Null);
    }
    emit(
        MetricKind::Set,
        "gordon.plugin.state",
        value,
        &[tag("plugin", plugin), tag("state", state)],
    );
}

/// A janitor run ended: `gordon.janitor.run-ended{status, dry_run}` (counter, 1;
/// `status` is `ok`, `failed` or `refused`), and its counts as values:
/// `gordon.janitor.zones`, `gordon.janitor.changes` (the plan) and
/// `gordon.janitor.published` (counters, `dry_run`).
pub fn janitor_run_ended(status: &str, dry_run: bool, zones: u64, changes: u64, published: u64) {
    let dry = tag("dry_run", if dry_run { "true" } else { "false" });
    emit(
        MetricKind::Incr,
        "gordon.janitor.run-ended",
        1.0,
        &[tag("status", status), dry],
    );
    for (name, n) in [
        ("gordon.janitor.zones", zones),
        ("gordon.janitor.changes", changes),
        ("gordon.janitor.published", published),
    ] {
        emit(MetricKind::Incr, name, n as f64, &[dry]);
    }
}

/// A janitor run (not a dry run) succeeded at `unix_seconds`:
/// `gordon.janitor.last-success` (gauge, seconds since the Unix epoch).
pub fn janitor_last_success(unix_seconds: f64) {
    emit(
        MetricKind::Set,
        "gordon.janitor.last-success",
        unix_seconds,
        &[],
    );
}
