//! The services the host offers every plugin library: log and metric sinks.
//!
//! These functions are called *from* plugin code, through `extern "C"` pointers. A
//! panic must not unwind back into the plugin, so each body is wrapped in
//! `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use abi_stable::prefix_type::WithMetadata;
use gordon_plugin_api::abi::{HostServices, HostServicesRef, LogRecord, MetricEvent};
use tracing::level_filters::LevelFilter;

static SERVICES: OnceLock<HostServicesRef> = OnceLock::new();
static MAX_LEVEL: OnceLock<u8> = OnceLock::new();

/// Sets the most verbose level plugins forward; call before loading libraries.
pub fn set_max_level(level: LevelFilter) {
    let n = match level.into_level() {
        None => 0,
        Some(tracing::Level::ERROR) => 1,
        Some(tracing::Level::WARN) => 2,
        Some(tracing::Level::INFO) => 3,
        Some(tracing::Level::DEBUG) => 4,
        Some(tracing::Level::TRACE) => 5,
    };
    let _ = MAX_LEVEL.set(n);
}

/// The host-services table handed to every library.
pub fn services() -> HostServicesRef {
    *SERVICES.get_or_init(|| {
        let table = HostServices {
            max_log_level: MAX_LEVEL.get().copied().unwrap_or(3),
            log: plugin_log,
            metric: plugin_metric,
        };
        let leaked: &'static WithMetadata<HostServices> =
            Box::leak(Box::new(WithMetadata::new(table)));
        HostServicesRef(leaked.static_as_prefix())
    })
}

extern "C" fn plugin_log(record: &LogRecord<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let plugin = record.plugin.as_str();
        let message = record.message.as_str();
        let module = record.target.as_str();
        match record.level {
            1 => tracing::error!(target: "gordon::plugin", plugin, module, "{message}"),
            2 => tracing::warn!(target: "gordon::plugin", plugin, module, "{message}"),
            3 => tracing::info!(target: "gordon::plugin", plugin, module, "{message}"),
            4 => tracing::debug!(target: "gordon::plugin", plugin, module, "{message}"),
            _ => tracing::trace!(target: "gordon::plugin", plugin, module, "{message}"),
        }
    }));
}

extern "C" fn plugin_metric(event: &MetricEvent<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        crate::metrics::emit_plugin_event(event)
    }));
}
