//! The Prometheus relay: aggregates metric events in memory and serves them, with
//! the host's health, on one HTTP listener.
//!
//! ```toml
//! [prometheus]
//! listen = "127.0.0.1:9464"   # GET /metrics (text format 0.0.4), GET /healthz
//! ```
//!
//! Names follow Prometheus' conventions:
//!
//! - a host event keeps its name, `.` and `-` becoming `_` (`gordon.queue.depth` is
//!   `gordon_queue_depth`); a plugin's event is prefixed `gordon_plugin_` and gets
//!   the label `plugin` (`zonefile.writes` of `dns.zonefile` is
//!   `gordon_plugin_zonefile_writes_total{plugin="dns.zonefile",...}`);
//! - counters end in `_total`; timers are histograms in seconds ending in one
//!   `_seconds` (`zonefile.write_seconds` is `gordon_plugin_zonefile_write_seconds`),
//!   with buckets from 10 µs to 60 s; gauges keep their name;
//! - every family has `# HELP` (host metrics from [`super::events::METRICS`]) and
//!   `# TYPE`; `gordon_build_info{version, plugin_api} 1` says what runs.
//!
//! An event that would give a family a second type (or a plugin's event that would
//! land in a host family) is dropped, with one warning per family.
//!
//! `/healthz` answers `{"healthy", "problems"}` from [`crate::health`]: 200, or 503
//! once a plugin failed or a handler missed its deadline.
//!
//! The listener runs hyper on a runtime of its own thread: every connection is a
//! task, with a header read timeout and a bounded lifetime, so an idle or slow
//! client holds up nobody else's scrape.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gordon_plugin_api::abi::{MetricEvent, MetricKind};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus::core::Collector;
use prometheus::proto::{Metric, MetricFamily};
use prometheus::{CounterVec, Encoder as _, GaugeVec, HistogramOpts, HistogramVec, Opts};
use serde::Deserialize;

use super::{events, Relay};

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

/// Histogram buckets, in seconds: from a trivial handler's per-message time to a
/// DNS update that went through its retries.
pub const BUCKETS: [f64; 17] = [
    1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection is served (keep-alive included) before it is closed
/// after its current request; a client that does not read its response is cut
/// off then too.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Connections served at once; more are closed as they are accepted.
const MAX_CONNECTIONS: usize = 256;

/// The vectors of one family, one per set of label names (plugins do not always
/// tag an event the same way).
enum Vecs {
    Counter(Vec<(Vec<String>, CounterVec)>),
    Gauge(Vec<(Vec<String>, GaugeVec)>),
    Histogram(Vec<(Vec<String>, HistogramVec)>),
}

struct Family {
    help: String,
    /// Whether host events (rather than plugins') feed it.
    host: bool,
    vecs: Vecs,
}

impl Family {
    fn new(kind: MetricKind, help: String, host: bool) -> Self {
        let vecs = match kind {
            MetricKind::Incr => Vecs::Counter(Vec::new()),
            MetricKind::Set => Vecs::Gauge(Vec::new()),
            MetricKind::Timer => Vecs::Histogram(Vec::new()),
        };
        Family { help, host, vecs }
    }

    fn kind(&self) -> MetricKind {
        match self.vecs {
            Vecs::Counter(_) => MetricKind::Incr,
            Vecs::Gauge(_) => MetricKind::Set,
            Vecs::Histogram(_) => MetricKind::Timer,
        }
    }

    /// Records `value` if the family has a vector for these label names.
    fn record(&self, names: &[String], values: &[&str], value: f64) -> Option<()> {
        fn find<'v, V>(vecs: &'v [(Vec<String>, V)], names: &[String]) -> Option<&'v V> {
            vecs.iter().find(|(n, _)| n == names).map(|(_, v)| v)
        }
        match &self.vecs {
            Vecs::Counter(v) => find(v, names)?
                .get_metric_with_label_values(values)
                .ok()?
                .inc_by(value),
            Vecs::Gauge(v) => find(v, names)?
                .get_metric_with_label_values(values)
                .ok()?
                .set(value),
            Vecs::Histogram(v) => find(v, names)?
                .get_metric_with_label_values(values)
                .ok()?
                .observe(value),
        }
        Some(())
    }

    fn add_vec(&mut self, name: &str, names: &[String]) -> prometheus::Result<()> {
        let labels: Vec<&str> = names.iter().map(String::as_str).collect();
        let opts = Opts::new(name, self.help.as_str());
        match &mut self.vecs {
            Vecs::Counter(v) => v.push((names.to_vec(), CounterVec::new(opts, &labels)?)),
            Vecs::Gauge(v) => v.push((names.to_vec(), GaugeVec::new(opts, &labels)?)),
            Vecs::Histogram(v) => v.push((
                names.to_vec(),
                HistogramVec::new(HistogramOpts::from(opts).buckets(BUCKETS.to_vec()), &labels)?,
            )),
        }
        Ok(())
    }

    /// The family's series, all label sets together, in a stable order.
    fn gather(&self, name: &str) -> Option<MetricFamily> {
        let collected: Vec<MetricFamily> = match &self.vecs {
            Vecs::Counter(v) => v.iter().flat_map(|(_, v)| v.collect()).collect(),
            Vecs::Gauge(v) => v.iter().flat_map(|(_, v)| v.collect()).collect(),
            Vecs::Histogram(v) => v.iter().flat_map(|(_, v)| v.collect()).collect(),
        };
        let mut merged: Option<MetricFamily> = None;
        let mut metrics: Vec<Metric> = Vec::new();
        for mut mf in collected {
            metrics.extend(mf.take_metric());
            merged.get_or_insert(mf);
        }
        let mut mf = merged.filter(|_| !metrics.is_empty())?;
        let key = |m: &Metric| -> Vec<(String, String)> {
            m.get_label()
                .iter()
                .map(|l| (l.name().to_owned(), l.value().to_owned()))
                .collect()
        };
        metrics.sort_by_cached_key(key);
        mf.set_name(name.to_owned());
        mf.set_help(self.help.clone());
        mf.set_metric(metrics);
        Some(mf)
    }
}

#[derive(Default)]
struct Families {
    by_name: BTreeMap<String, Family>,
}

/// What the relay and its listener share.
#[derive(Default)]
struct Store {
    families: RwLock<Families>,
    /// Families already warned about, so a bad event is logged once.
    warned: Mutex<BTreeSet<String>>,
}

impl Store {
    fn with_host_families() -> Self {
        let store = Store::default();
        {
            let mut families = store.families.write().unwrap_or_else(|p| p.into_inner());
            for (event, kind, help) in events::METRICS {
                let name = family_name(event, false, *kind);
                families
                    .by_name
                    .insert(name, Family::new(*kind, (*help).to_owned(), true));
            }
            let build = "gordon_build_info".to_owned();
            let mut info = Family::new(
                MetricKind::Set,
                "Always 1: the version of this gordon host and of the plugin-api it speaks.".into(),
                true,
            );
            let names = ["plugin_api".to_owned(), "version".to_owned()];
            let values = [
                crate::plugins::loader::host_api_version(),
                env!("CARGO_PKG_VERSION"),
            ];
            if info.add_vec(&build, &names).is_ok() {
                info.record(&names, &values, 1.0);
            }
            families.by_name.insert(build, info);
        }
        store
    }

    fn warn_once(&self, name: &str, why: impl FnOnce() -> String) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert(name.to_owned()) {
            tracing::warn!(metric = name, "{}; dropping such events.", why());
        }
    }

    fn record(&self, e: &MetricEvent<'_>) {
        let host = e.plugin.is_empty();
        let event = e.name.as_str();
        let value = e.value;
        let valid = match e.kind {
            MetricKind::Set => true,
            MetricKind::Incr | MetricKind::Timer => value.is_finite() && value >= 0.0,
        };
        let name = family_name(event, !host, e.kind);
        if !valid {
            return self.warn_once(&name, || {
                format!("metric event `{event}` has the value {value}, which its type cannot take")
            });
        }
        let mut labels: BTreeMap<String, &str> = BTreeMap::new();
        for t in e.tags.iter() {
            labels
                .entry(label_name(t.key.as_str()))
                .or_insert(t.value.as_str());
        }
        if !host {
            labels
                .entry("plugin".to_owned())
                .or_insert(e.plugin.as_str());
        }
        let names: Vec<String> = labels.keys().cloned().collect();
        let values: Vec<&str> = labels.values().copied().collect();
        {
            let families = self.families.read().unwrap_or_else(|p| p.into_inner());
            if let Some(family) = families.by_name.get(&name) {
                if family.kind() == e.kind
                    && family.host == host
                    && family.record(&names, &values, value).is_some()
                {
                    return;
                }
            }
        }
        let mut families = self.families.write().unwrap_or_else(|p| p.into_inner());
        let family = families.by_name.entry(name.clone()).or_insert_with(|| {
            let help = match events::help(event) {
                Some(help) if host => help.to_owned(),
                _ if host => format!("The gordon host's metric {event}."),
                _ => format!("The metric {event} of a gordon plugin (label plugin)."),
            };
            Family::new(e.kind, help, host)
        });
        if family.kind() != e.kind || family.host != host {
            let (kind, owner) = (family.kind(), family.host);
            drop(families);
            return self.warn_once(&name, || {
                format!(
                    "metric event `{event}` ({:?}, {}) would share the family {name} with {:?} events of {}",
                    e.kind,
                    if host { "host" } else { "plugin" },
                    kind,
                    if owner { "the host" } else { "plugins" }
                )
            });
        }
        if family.record(&names, &values, value).is_some() {
            return;
        }
        if let Err(err) = family.add_vec(&name, &names) {
            drop(families);
            return self.warn_once(&name, || format!("cannot expose `{event}`: {err}"));
        }
        family.record(&names, &values, value);
    }

    fn render(&self) -> String {
        let gathered: Vec<MetricFamily> = {
            let families = self.families.read().unwrap_or_else(|p| p.into_inner());
            families
                .by_name
                .iter()
                .filter_map(|(name, f)| f.gather(name))
                .collect()
        };
        let mut out = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&gathered, &mut out) {
            tracing::warn!(error = %e, "Cannot encode the metrics.");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `[a-z0-9_]` words of `name`: other characters become `_`, `camelCase` becomes
/// `camel_case`, and runs of `_` collapse.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.ends_with('_') {
                out.push('_');
            }
        }
    }
    out.trim_matches('_').to_owned()
}

/// The family a metric event belongs to (see the module documentation).
pub fn family_name(event: &str, plugin: bool, kind: MetricKind) -> String {
    let mut base = snake(event);
    if base.is_empty() {
        base.push_str("unnamed");
    }
    let mut name = if plugin {
        format!("gordon_plugin_{base}")
    } else if base == "gordon" || base.starts_with("gordon_") {
        base
    } else {
        format!("gordon_{base}")
    };
    let strip = |name: &mut String, suffix: &str| {
        if let Some(stem) = name.strip_suffix(suffix) {
            if !stem.ends_with("gordon_plugin") && stem != "gordon" {
                name.truncate(stem.len());
            }
        }
    };
    strip(&mut name, "_total");
    match kind {
        MetricKind::Incr => name.push_str("_total"),
        MetricKind::Timer => {
            strip(&mut name, "_seconds");
            name.push_str("_seconds");
        }
        MetricKind::Set => {}
    }
    name
}

/// A tag key as a label name; `le` and `quantile`, which Prometheus reserves, and
/// keys that make no name become `tag_...`.
fn label_name(key: &str) -> String {
    let name = snake(key);
    match name.as_str() {
        "" => "tag".into(),
        "le" | "quantile" => format!("tag_{name}"),
        _ if name.starts_with(|c: char| c.is_ascii_digit()) => format!("tag_{name}"),
        _ => name,
    }
}

/// Aggregates metric events and serves `/metrics` and `/healthz`.
pub struct PrometheusRelay {
    store: Arc<Store>,
    /// The bound address (useful with port 0).
    pub local: SocketAddr,
}

impl PrometheusRelay {
    /// Binds the listener and starts the serving thread.
    ///
    /// # Errors
    /// An address that cannot be bound, naming it, or a thread or runtime that
    /// cannot start.
    pub fn start(cfg: PrometheusConfig) -> Result<Self, String> {
        let listener = TcpListener::bind(&cfg.listen)
            .map_err(|e| format!("prometheus.listen: cannot listen on {}: {e}", cfg.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("prometheus.listen: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("prometheus: cannot start the server runtime: {e}"))?;
        let store = Arc::new(Store::with_host_families());
        let served = Arc::clone(&store);
        std::thread::Builder::new()
            .name("gordon-prometheus".into())
            .spawn(move || runtime.block_on(serve(listener, served)))
            .map_err(|e| format!("prometheus: cannot start the server thread: {e}"))?;
        tracing::info!(address = %local, "Serving Prometheus metrics on /metrics and health on /healthz.");
        Ok(PrometheusRelay { store, local })
    }

    /// The current exposition text.
    pub fn render(&self) -> String {
        self.store.render()
    }
}

impl Relay for PrometheusRelay {
    fn emit(&self, e: &MetricEvent<'_>) {
        self.store.record(e);
    }
}

async fn serve(listener: TcpListener, store: Arc<Store>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "Prometheus listener cannot be served.");
            return;
        }
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "Prometheus listener: accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!("Prometheus listener: too many connections; closing a new one.");
            continue;
        };
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let _permit = permit;
            connection(stream, store).await;
        });
    }
}

async fn connection(stream: tokio::net::TcpStream, store: Arc<Store>) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let store = Arc::clone(&store);
        async move { Ok::<_, Infallible>(respond(&store, &req)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HEADER_TIMEOUT, conn).await;
        }
    }
}

fn respond<B>(store: &Store, req: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        resp
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
        resp.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return resp;
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            store.render(),
        ),
        "/healthz" => {
            let health = crate::health::to_json();
            let status = if health["healthy"] == true {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, "application/json", format!("{health}\n"))
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gordon_plugin_api::abi::Tag;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn emit(
        relay: &PrometheusRelay,
        kind: MetricKind,
        name: &str,
        plugin: &str,
        tags: &[(&str, &str)],
        value: f64,
    ) {
        let tags: Vec<Tag<'_>> = tags
            .iter()
            .map(|(k, v)| Tag {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect();
        relay.emit(&MetricEvent {
            kind,
            name: name.into(),
            value,
            plugin: plugin.into(),
            tags: (&tags[..]).into(),
        });
    }

    fn relay() -> PrometheusRelay {
        PrometheusRelay::start(PrometheusConfig {
            listen: "127.0.0.1:0".into(),
        })
        .unwrap()
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let cases = [
            (
                "gordon.messages",
                false,
                MetricKind::Incr,
                "gordon_messages_total",
            ),
            (
                "gordon.handler.latency",
                false,
                MetricKind::Timer,
                "gordon_handler_latency_seconds",
            ),
            (
                "gordon.queue.depth",
                false,
                MetricKind::Set,
                "gordon_queue_depth",
            ),
            (
                "gordon.janitor.run-ended",
                false,
                MetricKind::Incr,
                "gordon_janitor_run_ended_total",
            ),
            (
                "zonefile.write_seconds",
                true,
                MetricKind::Timer,
                "gordon_plugin_zonefile_write_seconds",
            ),
            (
                "zonefile.writes",
                true,
                MetricKind::Incr,
                "gordon_plugin_zonefile_writes_total",
            ),
            (
                "nats.acked_total",
                true,
                MetricKind::Incr,
                "gordon_plugin_nats_acked_total",
            ),
            (
                "zonefile.records",
                true,
                MetricKind::Set,
                "gordon_plugin_zonefile_records",
            ),
            (
                "requestLatency",
                true,
                MetricKind::Timer,
                "gordon_plugin_request_latency_seconds",
            ),
            ("startup", false, MetricKind::Set, "gordon_startup"),
            ("total", true, MetricKind::Incr, "gordon_plugin_total_total"),
            ("...", true, MetricKind::Set, "gordon_plugin_unnamed"),
        ];
        for (event, plugin, kind, want) in cases {
            assert_eq!(family_name(event, plugin, kind), want, "{event}");
        }
        assert_eq!(label_name("le"), "tag_le");
        assert_eq!(label_name("dry-run"), "dry_run");
        assert_eq!(label_name("9lives"), "tag_9lives");
    }

    #[test]
    fn families_have_help_type_and_long_buckets() {
        let relay = relay();
        for v in [3.0, 2.0] {
            emit(
                &relay,
                MetricKind::Incr,
                "gordon.messages",
                "",
                &[("phase", "enrich")],
                v,
            );
        }
        emit(
            &relay,
            MetricKind::Set,
            "gordon.queue.depth",
            "",
            &[("source", "http.events")],
            7.0,
        );
        emit(
            &relay,
            MetricKind::Timer,
            "gordon.handler.latency",
            "",
            &[("phase", "enrich"), ("plugin", "dns.enricher")],
            0.002,
        );
        emit(
            &relay,
            MetricKind::Timer,
            "gordon.handler.latency",
            "",
            &[("phase", "publish"), ("plugin", "dns.rfc2136")],
            20.0,
        );
        emit(
            &relay,
            MetricKind::Timer,
            "zonefile.write_seconds",
            "dns.zonefile",
            &[("zone", "example.com.")],
            0.01,
        );
        emit(
            &relay,
            MetricKind::Incr,
            "zonefile.writes",
            "dns.zonefile",
            &[("zone", "example.com.")],
            1.0,
        );
        // Another label set for the same plugin metric.
        emit(
            &relay,
            MetricKind::Incr,
            "zonefile.writes",
            "dns.zonefile",
            &[],
            1.0,
        );
        let text = relay.render();
        for needle in [
            "# HELP gordon_messages_total Messages that entered a phase",
            "# TYPE gordon_messages_total counter",
            "gordon_messages_total{phase=\"enrich\"} 5\n",
            "# TYPE gordon_queue_depth gauge",
            "gordon_queue_depth{source=\"http.events\"} 7\n",
            "# TYPE gordon_handler_latency_seconds histogram",
            "gordon_handler_latency_seconds_bucket{phase=\"enrich\",plugin=\"dns.enricher\",le=\"0.005\"} 1\n",
            "gordon_handler_latency_seconds_bucket{phase=\"enrich\",plugin=\"dns.enricher\",le=\"0.001\"} 0\n",
            "gordon_handler_latency_seconds_bucket{phase=\"publish\",plugin=\"dns.rfc2136\",le=\"10\"} 0\n",
            "gordon_handler_latency_seconds_bucket{phase=\"publish\",plugin=\"dns.rfc2136\",le=\"30\"} 1\n",
            "gordon_handler_latency_seconds_count{phase=\"enrich\",plugin=\"dns.enricher\"} 1\n",
            "# HELP gordon_plugin_zonefile_write_seconds ",
            "# TYPE gordon_plugin_zonefile_write_seconds histogram",
            "gordon_plugin_zonefile_write_seconds_count{plugin=\"dns.zonefile\",zone=\"example.com.\"} 1\n",
            "gordon_plugin_zonefile_writes_total{plugin=\"dns.zonefile\"} 1\n",
            "gordon_plugin_zonefile_writes_total{plugin=\"dns.zonefile\",zone=\"example.com.\"} 1\n",
            "# TYPE gordon_build_info gauge",
        ] {
            assert!(text.contains(needle), "missing {needle:?}:\n{text}");
        }
        assert!(!text.contains("_seconds_seconds"), "{text}");
        assert_eq!(
            text.matches("# TYPE gordon_plugin_zonefile_writes_total")
                .count(),
            1,
            "{text}"
        );
        let build = format!(
            "gordon_build_info{{plugin_api=\"{}\",version=\"{}\"}} 1\n",
            crate::plugins::loader::host_api_version(),
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "missing {build}:\n{text}");
        // Every family is described and typed.
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no help for {name}:\n{text}"
            );
        }
    }

    /// Every host metric, janitor ones included, as an operator sees it; checked by
    /// `promtool` when it is installed (the integration tests require it in CI).
    #[test]
    fn every_host_metric_is_described_and_lints_clean() {
        let relay = relay();
        for (event, kind, help) in events::METRICS {
            emit(&relay, *kind, event, "", &[("dry_run", "false")], 1.0);
            let name = family_name(event, false, *kind);
            assert!(
                relay.render().contains(&format!("# HELP {name} {help}\n")),
                "{event}"
            );
        }
        let text = relay.render();
        let Ok(mut child) = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn events_that_would_break_a_family_are_dropped() {
        let relay = relay();
        // A gauge named like the host's histogram.
        emit(
            &relay,
            MetricKind::Set,
            "gordon.handler.latency_seconds",
            "",
            &[],
            1.0,
        );
        emit(&relay, MetricKind::Incr, "x", "p", &[], -1.0);
        emit(&relay, MetricKind::Timer, "x", "p", &[], f64::NAN);
        // A plugin metric named like a host one stays out of the host's family.
        emit(
            &relay,
            MetricKind::Set,
            "state",
            "acme.x",
            &[("plugin", "beta.publish"), ("state", "running")],
            0.0,
        );
        emit(
            &relay,
            MetricKind::Set,
            "gordon.plugin.state",
            "",
            &[("plugin", "beta.publish"), ("state", "running")],
            1.0,
        );
        let text = relay.render();
        assert!(!text.contains("gordon_handler_latency"), "{text}");
        assert!(!text.contains("gordon_plugin_x"), "{text}");
        assert!(
            text.contains("gordon_plugin_state{plugin=\"beta.publish\",state=\"running\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.matches("gordon_plugin_state{").count(), 1, "{text}");
    }

    #[test]
    fn an_idle_connection_does_not_hold_up_a_scrape() {
        let relay = relay();
        emit(
            &relay,
            MetricKind::Incr,
            "gordon.messages",
            "",
            &[("phase", "consume")],
            1.0,
        );
        let _idle = TcpStream::connect(relay.local).unwrap();
        let mut half = TcpStream::connect(relay.local).unwrap();
        half.write_all(b"GET /metr").unwrap();
        let out = get(relay.local, "/metrics");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(
            out.contains("gordon_messages_total{phase=\"consume\"} 1"),
            "{out}"
        );
        let out = get(relay.local, "/nope");
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    }

    #[test]
    fn healthz_reports_the_hosts_health() {
        let relay = relay();
        let out = get(relay.local, "/healthz");
        // Other tests of this process may have reported problems.
        if crate::health::problems().is_empty() {
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            assert!(out.contains("\"healthy\":true"), "{out}");
        }
        crate::health::report("acme.hang", "did not return within 1 s");
        let out = get(relay.local, "/healthz");
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
        assert!(
            out.contains("plugin `acme.hang`: did not return within 1 s"),
            "{out}"
        );
        assert!(out.contains("application/json"), "{out}");
    }
}
