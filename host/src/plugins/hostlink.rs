//! The services the host offers every plugin library: log and metric sinks, the
//! host's health, and a plugin's request to leave.
//!
//! These functions are called *from* plugin code, through `extern "C"` pointers. A
//! panic must not unwind back into the plugin, so each body is wrapped in
//! `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use abi_stable::prefix_type::WithMetadata;
use abi_stable::std_types::RStr;
use abi_stable::std_types::RString;
use gordon_plugin_api::abi::{v1_1, v1_2, HostServices, HostServicesRef, LogRecord, MetricEvent};
use tracing::Level;

use crate::logging::{Directives, PluginFilter};

static MAX_LEVEL: OnceLock<u8> = OnceLock::new();

/// Which plugin lines are logged, when the directives name plugins or modules;
/// `None` (one level for everything) leaves it to the subscriber's filter.
static FILTER: OnceLock<Option<PluginFilter>> = OnceLock::new();

/// Sets what plugins forward: every line up to the most verbose level any
/// directive allows (a library has one filter for all its plugins and modules);
/// [`plugin_log`] then drops what the line's own directive does not allow. Call
/// before loading libraries; the first call wins.
pub fn set_log_directives(directives: &Directives) {
    let n = match directives.max_level().into_level() {
        None => 0,
        Some(Level::ERROR) => 1,
        Some(Level::WARN) => 2,
        Some(Level::INFO) => 3,
        Some(Level::DEBUG) => 4,
        Some(Level::TRACE) => 5,
    };
    if MAX_LEVEL.set(n).is_ok() {
        let _ = FILTER.set(directives.plugin_filter());
    }
}

/// The host-services table handed to libraries built against this host's minor
/// version (or a later one).
pub fn services() -> HostServicesRef {
    static SERVICES: OnceLock<HostServicesRef> = OnceLock::new();
    *SERVICES.get_or_init(|| {
        let table = HostServices {
            max_log_level: max_level(),
            log: plugin_log,
            metric: plugin_metric,
            health: plugin_health,
            leave: plugin_leave,
        };
        let leaked: &'static WithMetadata<HostServices> =
            Box::leak(Box::new(WithMetadata::new(table)));
        HostServicesRef(leaked.static_as_prefix())
    })
}

/// The same services, as the table 1.2 libraries know (no `leave`).
pub fn services_v1_2() -> v1_2::HostServicesRef {
    static SERVICES: OnceLock<v1_2::HostServicesRef> = OnceLock::new();
    *SERVICES.get_or_init(|| {
        let table = v1_2::HostServices {
            max_log_level: max_level(),
            log: plugin_log,
            metric: plugin_metric,
            health: plugin_health,
        };
        let leaked: &'static WithMetadata<v1_2::HostServices> =
            Box::leak(Box::new(WithMetadata::new(table)));
        v1_2::HostServicesRef(leaked.static_as_prefix())
    })
}

/// The same services, as the table 1.0 and 1.1 libraries know (no `health`).
pub fn services_v1_1() -> v1_1::HostServicesRef {
    static SERVICES: OnceLock<v1_1::HostServicesRef> = OnceLock::new();
    *SERVICES.get_or_init(|| {
        let table = v1_1::HostServices {
            max_log_level: max_level(),
            log: plugin_log,
            metric: plugin_metric,
        };
        let leaked: &'static WithMetadata<v1_1::HostServices> =
            Box::leak(Box::new(WithMetadata::new(table)));
        v1_1::HostServicesRef(leaked.static_as_prefix())
    })
}

fn max_level() -> u8 {
    MAX_LEVEL.get().copied().unwrap_or(3)
}

extern "C" fn plugin_log(record: &LogRecord<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let plugin = record.plugin.as_str();
        let message = record.message.as_str();
        let module = record.target.as_str();
        let level = match record.level {
            1 => Level::ERROR,
            2 => Level::WARN,
            3 => Level::INFO,
            4 => Level::DEBUG,
            _ => Level::TRACE,
        };
        if let Some(Some(filter)) = FILTER.get() {
            if !filter.enabled(plugin, module, level) {
                return;
            }
        }
        match level {
            Level::ERROR => tracing::error!(target: "gordon::plugin", plugin, module, "{message}"),
            Level::WARN => tracing::warn!(target: "gordon::plugin", plugin, module, "{message}"),
            Level::INFO => tracing::info!(target: "gordon::plugin", plugin, module, "{message}"),
            Level::DEBUG => tracing::debug!(target: "gordon::plugin", plugin, module, "{message}"),
            Level::TRACE => tracing::trace!(target: "gordon::plugin", plugin, module, "{message}"),
        }
    }));
}

extern "C" fn plugin_metric(event: &MetricEvent<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        crate::metrics::emit_plugin_event(event)
    }));
}

extern "C" fn plugin_health() -> RString {
    catch_unwind(|| crate::health::to_json().to_string())
        .unwrap_or_else(|_| r#"{"healthy":false,"problems":["health report failed"]}"#.to_owned())
        .into()
}

extern "C" fn plugin_leave(plugin: RStr<'_>, reason: RStr<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        crate::live::leaving::request(plugin.as_str(), reason.as_str());
    }));
}
