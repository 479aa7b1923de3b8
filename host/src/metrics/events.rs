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
pub fn stage_done(phase: Phase, plugin: &str, n: usize, elapsed: Duration) {
    if n == 0 {
        return;
    }
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
pub fn messages_dropped(phase: Phase, plugin: &str, n: usize) {
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

/// A plugin changed state (`running`, `stopped`, `failed`).
pub fn plugin_state(plugin: &str, state: &str, value: f64) {
    emit(
        MetricKind::Set,
        "gordon.plugin.state",
        value,
        &[tag("plugin", plugin), tag("state", state)],
    );
}
