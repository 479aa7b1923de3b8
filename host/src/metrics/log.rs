//! The default relay: each metric event becomes a debug-level log line.

use gordon_plugin_api::abi::{MetricEvent, MetricKind};

use super::Relay;

/// Writes each event to the log at debug level.
pub struct LogRelay;

impl Relay for LogRelay {
    fn emit(&self, e: &MetricEvent<'_>) {
        if !tracing::enabled!(target: "gordon::metrics", tracing::Level::DEBUG) {
            return;
        }
        let kind = match e.kind {
            MetricKind::Incr => "incr",
            MetricKind::Timer => "timer",
            MetricKind::Set => "set",
        };
        let tags: Vec<String> = e
            .tags
            .iter()
            .map(|t| format!("{}={}", t.key, t.value))
            .collect();
        tracing::debug!(
            target: "gordon::metrics",
            metric = %e.name,
            kind,
            value = e.value,
            plugin = %e.plugin,
            tags = %tags.join(","),
            "Metric."
        );
    }
}
