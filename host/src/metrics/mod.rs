//! Metrics: one relay, chosen by `core.metrics`, receives every metric event the
//! router and the plugins emit.
//!
//! Call sites never build metric events by hand: the router uses the functions in
//! [`events`], so names and labels stay the same whichever relay is chosen.

pub mod events;
pub mod ffwd;
pub mod log;
pub mod prometheus;

use std::sync::OnceLock;

use gordon_plugin_api::abi::{MetricEvent, RelayBox};

/// Where metric events go.
pub trait Relay: Send + Sync {
    /// Relays one event.
    fn emit(&self, event: &MetricEvent<'_>);
    /// Flushes at shutdown.
    fn cleanup(&self) {}
}

static RELAY: OnceLock<Box<dyn Relay>> = OnceLock::new();

/// Installs the relay; the first call wins.
pub fn install(relay: Box<dyn Relay>) {
    let _ = RELAY.set(relay);
}

/// The installed relay, or the log relay.
pub fn relay() -> &'static dyn Relay {
    RELAY.get_or_init(|| Box::new(log::LogRelay)).as_ref()
}

/// A metric event from a plugin, through the host-services table.
pub fn emit_plugin_event(event: &MetricEvent<'_>) {
    relay().emit(event);
}

/// A metric-relay plugin used as the host's relay.
pub struct PluginRelay {
    /// The plugin.
    pub obj: RelayBox,
}

impl Relay for PluginRelay {
    fn emit(&self, event: &MetricEvent<'_>) {
        self.obj.emit(event);
    }
    fn cleanup(&self) {
        if let Err(e) = self.obj.cleanup(5_000).into_result() {
            tracing::warn!(error = %e.message, "Metric relay plugin cleanup failed.");
        }
    }
}
