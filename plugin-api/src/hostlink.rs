//! The plugin library's link to the host: logging and metrics.
//!
//! Each plugin library carries its own copy of `tracing`, so events a plugin logs
//! would go nowhere. When the host initialises the library, this module installs a
//! `tracing` subscriber *inside the library* that forwards every event, tagged with
//! the plugin's name, through the host-services table into the host's log.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::OnceLock;

use abi_stable::std_types::RSlice;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::abi::{HostServicesRef, LogRecord, MetricEvent, MetricKind, Tag};

static HOST: OnceLock<HostServicesRef> = OnceLock::new();
static DEFAULT_PLUGIN: OnceLock<&'static str> = OnceLock::new();

thread_local! {
    static CURRENT: Cell<Option<&'static str>> = const { Cell::new(None) };
    // Set while an event is being handed to the host. When the plugin is linked into
    // the host statically (tests, benchmarks), both share one `tracing`, and the
    // host's re-emitted event would otherwise come straight back here.
    static FORWARDING: Cell<bool> = const { Cell::new(false) };
}

/// Records which plugin runs on this thread (plugin runtime threads, and the host
/// thread for the length of a call into the plugin).
pub(crate) fn set_current_plugin(name: &'static str) -> Option<&'static str> {
    CURRENT.with(|c| c.replace(Some(name)))
}

pub(crate) fn restore_current_plugin(prev: Option<&'static str>) {
    CURRENT.with(|c| c.set(prev));
}

fn current_plugin() -> &'static str {
    CURRENT
        .with(|c| c.get())
        .or_else(|| DEFAULT_PLUGIN.get().copied())
        .unwrap_or("plugin")
}

/// Installs the host's services; the first call wins.
pub(crate) fn install(host: HostServicesRef, default_plugin: &'static str) {
    if HOST.set(host).is_err() {
        return;
    }
    let _ = DEFAULT_PLUGIN.set(default_plugin);
    let level = match host.max_log_level() {
        0 => tracing_subscriber::filter::LevelFilter::OFF,
        1 => tracing_subscriber::filter::LevelFilter::ERROR,
        2 => tracing_subscriber::filter::LevelFilter::WARN,
        3 => tracing_subscriber::filter::LevelFilter::INFO,
        4 => tracing_subscriber::filter::LevelFilter::DEBUG,
        _ => tracing_subscriber::filter::LevelFilter::TRACE,
    };
    let subscriber = tracing_subscriber::registry().with(Forward.with_filter(level));
    // A vendor may have installed its own subscriber; theirs wins.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The host's health JSON, if the library is attached to a host that reports it.
pub(crate) fn health_json() -> Option<String> {
    let health = HOST.get()?.health()?;
    Some(health().into_string())
}

/// Asks the host to stop `plugin`; false when the host is older than 1.3 (or
/// there is no host).
pub(crate) fn leave(plugin: &str, reason: &str) -> bool {
    match HOST.get().and_then(|h| h.leave()) {
        Some(leave) => {
            leave(plugin.into(), reason.into());
            true
        }
        None => false,
    }
}

/// Sends a metric event to the host, if the library is attached to one.
pub(crate) fn metric(plugin: &str, kind: MetricKind, name: &str, value: f64, tags: &[Tag<'_>]) {
    if let Some(host) = HOST.get() {
        let event = MetricEvent {
            kind,
            name: name.into(),
            value,
            plugin: plugin.into(),
            tags: RSlice::from_slice(tags),
        };
        (host.metric())(&event);
    }
}

/// Replaces the library's panic hook (its own copy of std has its own hook): a panic
/// in plugin code becomes one error line in the host's log, tagged with the plugin,
/// instead of a backtrace on stderr. The panic is still caught at the boundary.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic payload");
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()));
        let text = format!("Plugin panicked{}: {what}", location.unwrap_or_default());
        match HOST.get() {
            Some(host) => {
                let record = LogRecord {
                    level: 1,
                    plugin: current_plugin().into(),
                    target: "panic".into(),
                    message: text.as_str().into(),
                };
                (host.log())(&record);
            }
            None => eprintln!("{}: {text}", current_plugin()),
        }
    }));
}

/// Numeric level of the host-services ABI.
pub(crate) fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(host) = HOST.get() else { return };
        if FORWARDING.with(|f| f.replace(true)) {
            return;
        }
        let mut text = MessageVisitor(String::new(), String::new());
        event.record(&mut text);
        let MessageVisitor(mut message, fields) = text;
        message.push_str(&fields);
        let meta = event.metadata();
        let record = LogRecord {
            level: level_number(meta.level()),
            plugin: current_plugin().into(),
            target: meta.target().into(),
            message: message.as_str().into(),
        };
        (host.log())(&record);
        FORWARDING.with(|f| f.set(false));
    }
}

struct MessageVisitor(String, String);

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.1, " {}={:?}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={:?}", field.name(), value);
        }
    }
}
