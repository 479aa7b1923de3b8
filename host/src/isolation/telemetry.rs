//! A plugin process's logs and metrics, forwarded to the host.
//!
//! In the process, a `tracing` layer and a metric relay write frames on the
//! telemetry socket; in the host, one thread per process reads them and logs or
//! relays each as if the plugin ran in-process (`plugin=` names it either way).

use std::fmt::Write as _;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};

use gordon_plugin_api::abi::MetricEvent;
use gordon_plugin_api::wire;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer as _;

use super::link::{op, Frame};

/// Host side: reads `sock` until the process closes it, on a thread of its own.
pub fn forward(plugin: &'static str, mut sock: UnixStream) {
    let spawned = std::thread::Builder::new()
        .name(format!("gordon-telemetry-{plugin}"))
        .spawn(move || {
            let mut frame = Frame::default();
            while let Ok(operation) = frame.recv(&mut sock) {
                match operation {
                    op::LOG => log(plugin, frame.body()),
                    op::METRIC => {
                        if let Ok((metric, _)) = wire::get_metric(frame.body()) {
                            metric.as_event(crate::metrics::emit_plugin_event);
                        }
                    }
                    op::LEAVE => {
                        if let Ok(reason) = wire::Reader::new(frame.body()).str() {
                            crate::live::leaving::request(plugin, reason);
                        }
                    }
                    _ => {}
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(plugin, error = %e, "Cannot forward the plugin process's logs.");
    }
}

fn log(plugin: &'static str, body: &[u8]) {
    let mut r = wire::Reader::new(body);
    let (Ok(level), Ok(from), Ok(module), Ok(message)) = (r.u8(), r.str(), r.str(), r.str()) else {
        return;
    };
    let from = if from.is_empty() { plugin } else { from };
    match level {
        1 => tracing::error!(target: "gordon::plugin", plugin = from, module, "{message}"),
        2 => tracing::warn!(target: "gordon::plugin", plugin = from, module, "{message}"),
        3 => tracing::info!(target: "gordon::plugin", plugin = from, module, "{message}"),
        4 => tracing::debug!(target: "gordon::plugin", plugin = from, module, "{message}"),
        _ => tracing::trace!(target: "gordon::plugin", plugin = from, module, "{message}"),
    }
}

/// Process side: the telemetry socket, shared by every thread that logs.
struct Out {
    sock: Mutex<(UnixStream, Frame)>,
}

static OUT: OnceLock<Out> = OnceLock::new();

fn send(operation: u8, body: impl FnOnce(&mut Vec<u8>)) {
    if let Some(out) = OUT.get() {
        let mut guard = out.sock.lock().unwrap_or_else(|p| p.into_inner());
        let (sock, frame) = &mut *guard;
        body(frame.start(operation));
        // The host is gone if this fails; the process ends when its call socket
        // says so.
        let _ = frame.send(sock);
    }
}

/// Process side: sends every log event `directives` allow and every metric event
/// to the host over `sock`. The plugin's lines were decided by its own directive
/// in `hostlink::plugin_log`, as in the host's process; the host logs what
/// arrives without deciding again.
pub fn install(sock: UnixStream, directives: &crate::logging::Directives) {
    let _ = OUT.set(Out {
        sock: Mutex::new((sock, Frame::default())),
    });
    let _ = if directives.is_plain() {
        tracing_subscriber::registry()
            .with(directives.default_level())
            .with(Layer)
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(Layer.with_filter(directives.host_filter()))
            .try_init()
    };
    crate::metrics::install(Box::new(Relay));
    crate::live::leaving::forward_to(leave);
}

/// Process side: the plugin asked to leave; the host decides.
pub fn leave(_plugin: &str, reason: &str) {
    send(op::LEAVE, |b| wire::put_str(b, reason));
}

struct Layer;

#[derive(Default)]
struct Fields {
    message: String,
    plugin: String,
    module: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "plugin" => self.plugin.push_str(value),
            "module" => self.module.push_str(value),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "plugin" => {
                let _ = write!(self.plugin, "{value:?}");
            }
            "module" => {
                let _ = write!(self.module, "{value:?}");
            }
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => 1,
            tracing::Level::WARN => 2,
            tracing::Level::INFO => 3,
            tracing::Level::DEBUG => 4,
            tracing::Level::TRACE => 5,
        };
        if f.module.is_empty() {
            f.module.push_str(meta.target());
        }
        f.message.push_str(&f.rest);
        send(op::LOG, |b| {
            wire::put_u8(b, level);
            wire::put_str(b, &f.plugin);
            wire::put_str(b, &f.module);
            wire::put_str(b, &f.message);
        });
    }
}

struct Relay;

impl crate::metrics::Relay for Relay {
    fn emit(&self, event: &MetricEvent<'_>) {
        send(op::METRIC, |b| wire::put_metric(b, event));
    }
}
