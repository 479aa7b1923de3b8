//! Metrics: one relay, chosen by `core.metrics`, receives every metric event the
//! router and the plugins emit.

use std::sync::OnceLock;

use gordon_plugin_api::abi::{MetricEvent, MetricKind};

/// Where metric events go.
pub trait Relay: Send + Sync {
    /// Relays one event.
    fn emit(&self, event: &MetricEvent<'_>);
    /// Flushes at shutdown.
    fn cleanup(&self) {}
}

/// Writes each event to the log at debug level (the default relay).
pub struct LogRelay;

impl Relay for LogRelay {
    fn emit(&self, e: &MetricEvent<'_>) {
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

static RELAY: OnceLock<Box<dyn Relay>> = OnceLock::new();

/// Installs the relay; the first call wins.
pub fn install(relay: Box<dyn Relay>) {
    let _ = RELAY.set(relay);
}

/// The installed relay, or the log relay.
pub fn relay() -> &'static dyn Relay {
    RELAY.get_or_init(|| Box::new(LogRelay)).as_ref()
}

/// A metric event from a plugin, through the host-services table.
pub fn emit_plugin_event(event: &MetricEvent<'_>) {
    relay().emit(event);
}
