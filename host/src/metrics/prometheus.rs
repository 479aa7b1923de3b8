//! The Prometheus relay: keeps counters, gauges and latency histograms in memory and
//! serves them in the text exposition format.
//!
//! ```toml
//! [prometheus]
//! listen = "127.0.0.1:9464"   # GET /metrics
//! ```
//!
//! Event names become metric names with `.` replaced by `_`: counters get `_total`,
//! timers become `_seconds` histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use gordon_plugin_api::abi::{MetricEvent, MetricKind};
use serde::Deserialize;

use super::Relay;

/// `[prometheus]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    #[serde(default = "default_listen")]
    listen: String,
}

impl PrometheusConfig {
    /// Checks the table without binding anything.
    ///
    /// # Errors
    /// A `listen` value that is not a `host:port` address.
    pub fn check(&self) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        match self.listen.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "prometheus.listen: `{}` resolves to no address",
                self.listen
            )),
            Err(e) => Err(format!(
                "prometheus.listen: `{}` is not a host:port address: {e}",
                self.listen
            )),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

const BUCKETS: [f64; 12] = [
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Store {
    counters: BTreeMap<(String, Labels), f64>,
    gauges: BTreeMap<(String, Labels), f64>,
    histograms: BTreeMap<(String, Labels), Histogram>,
}

/// Aggregates metric events and serves `/metrics`.
pub struct PrometheusRelay {
    store: Arc<Mutex<Store>>,
    /// The bound address (useful with port 0).
    pub local: SocketAddr,
}

impl PrometheusRelay {
    /// Binds the listener and starts the serving thread.
    ///
    /// # Errors
    /// An address that cannot be bound, naming it.
    pub fn start(cfg: PrometheusConfig) -> Result<Self, String> {
        let listener = TcpListener::bind(&cfg.listen)
            .map_err(|e| format!("prometheus.listen: cannot listen on {}: {e}", cfg.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let store = Arc::new(Mutex::new(Store::default()));
        let served = Arc::clone(&store);
        std::thread::Builder::new()
            .name("gordon-prometheus".into())
            .spawn(move || serve(&listener, &served))
            .map_err(|e| format!("prometheus: cannot start the server thread: {e}"))?;
        tracing::info!(address = %local, "Serving Prometheus metrics on /metrics.");
        Ok(PrometheusRelay { store, local })
    }
}

fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Relay for PrometheusRelay {
    fn emit(&self, e: &MetricEvent<'_>) {
        let mut labels: Labels = e
            .tags
            .iter()
            .map(|t| (t.key.to_string(), t.value.to_string()))
            .collect();
        if !e.plugin.is_empty() && !labels.iter().any(|(k, _)| k == "plugin") {
            labels.push(("plugin".into(), e.plugin.to_string()));
        }
        let name = metric_name(e.name.as_str());
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        match e.kind {
            MetricKind::Incr => *store.counters.entry((name, labels)).or_default() += e.value,
            MetricKind::Set => {
                store.gauges.insert((name, labels), e.value);
            }
            MetricKind::Timer => {
                let h = store.histograms.entry((name, labels)).or_default();
                for (i, b) in BUCKETS.iter().enumerate() {
                    if e.value <= *b {
                        h.counts[i] += 1;
                    }
                }
                h.count += 1;
                h.sum += e.value;
            }
        }
    }
}

fn render_labels(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{}=\"{}\"",
                metric_name(k),
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn render(store: &Store) -> String {
    let mut out = String::new();
    let typed = |out: &mut String, name: &str, kind: &str| {
        if !out.contains(&format!("# TYPE {name} ")) {
            let _ = writeln!(out, "# TYPE {name} {kind}");
        }
    };
    for ((name, labels), v) in &store.counters {
        let name = format!("{name}_total");
        typed(&mut out, &name, "counter");
        let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
    }
    for ((name, labels), v) in &store.gauges {
        typed(&mut out, name, "gauge");
        let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
    }
    for ((name, labels), h) in &store.histograms {
        let name = format!("{name}_seconds");
        typed(&mut out, &name, "histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                render_labels(labels, Some(("le", b.to_string()))),
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            render_labels(labels, Some(("le", "+Inf".into()))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), h.sum);
        let _ = writeln!(
            out,
            "{name}_count{} {}",
            render_labels(labels, None),
            h.count
        );
    }
    out
}

fn serve(listener: &TcpListener, store: &Mutex<Store>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        let (status, body) = if head.starts_with("GET /metrics") {
            (
                "200 OK",
                render(&store.lock().unwrap_or_else(|p| p.into_inner())),
            )
        } else {
            ("404 Not Found", "not found\n".to_owned())
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gordon_plugin_api::abi::Tag;

    #[test]
    fn counters_gauges_and_histograms_render() {
        let relay = PrometheusRelay::start(PrometheusConfig {
            listen: "127.0.0.1:0".into(),
        })
        .unwrap();
        let tags = [Tag {
            key: "phase".into(),
            value: "enrich".into(),
        }];
        for (kind, name, value) in [
            (MetricKind::Incr, "gordon.messages", 3.0),
            (MetricKind::Incr, "gordon.messages", 2.0),
            (MetricKind::Set, "gordon.plugin.state", 1.0),
            (MetricKind::Timer, "gordon.handler.latency", 0.002),
        ] {
            relay.emit(&MetricEvent {
                kind,
                name: name.into(),
                value,
                plugin: "".into(),
                tags: (&tags[..]).into(),
            });
        }
        let text = render(&relay.store.lock().unwrap());
        assert!(
            text.contains("gordon_messages_total{phase=\"enrich\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("gordon_plugin_state{phase=\"enrich\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gordon_handler_latency_seconds_bucket{phase=\"enrich\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gordon_handler_latency_seconds_bucket{phase=\"enrich\",le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("gordon_handler_latency_seconds_count{phase=\"enrich\"} 1"),
            "{text}"
        );
    }
}
