//! The ffwd relay of the original service: one JSON datagram per metric event, over
//! one UDP socket reused for the life of the process.
//!
//! ```toml
//! [ffwd]
//! ip = "127.0.0.1"   # ffwd agent
//! port = 19000
//! key = "gordon"     # the ffwd metric key
//! time_unit = "s"    # unit of timer values: s, ms, us or ns
//! ```

use std::net::UdpSocket;

use gordon_plugin_api::abi::{MetricEvent, MetricKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::Relay;

/// `[ffwd]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FfwdConfig {
    #[serde(default = "default_ip")]
    ip: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_key")]
    key: String,
    #[serde(default = "default_unit")]
    time_unit: String,
}

fn default_ip() -> String {
    "127.0.0.1".into()
}
const fn default_port() -> u16 {
    19000
}
fn default_key() -> String {
    "gordon".into()
}
fn default_unit() -> String {
    "s".into()
}

impl FfwdConfig {
    /// Checks the table without opening anything.
    ///
    /// # Errors
    /// An unknown `time_unit`, naming the key.
    pub fn check(&self) -> Result<(), String> {
        self.scale().map(|_| ())
    }

    fn scale(&self) -> Result<f64, String> {
        match self.time_unit.as_str() {
            "s" => Ok(1.0),
            "ms" => Ok(1e3),
            "us" => Ok(1e6),
            "ns" => Ok(1e9),
            other => Err(format!(
                "ffwd.time_unit: unknown unit `{other}`, expected s, ms, us or ns"
            )),
        }
    }
}

/// Sends metric events to an ffwd agent.
pub struct FfwdRelay {
    socket: UdpSocket,
    key: String,
    scale: f64,
}

impl FfwdRelay {
    /// Opens the socket.
    ///
    /// # Errors
    /// A bad `time_unit`, or a socket that cannot be opened.
    pub fn new(cfg: FfwdConfig) -> Result<Self, String> {
        let scale = cfg.scale()?;
        let socket = UdpSocket::bind("0.0.0.0:0")
            .map_err(|e| format!("ffwd: cannot open a UDP socket: {e}"))?;
        socket
            .connect((cfg.ip.as_str(), cfg.port))
            .map_err(|e| format!("ffwd: cannot reach {}:{}: {e}", cfg.ip, cfg.port))?;
        Ok(FfwdRelay {
            socket,
            key: cfg.key,
            scale,
        })
    }
}

impl Relay for FfwdRelay {
    fn emit(&self, e: &MetricEvent<'_>) {
        let mut attributes = Map::new();
        attributes.insert("what".into(), Value::from(e.name.as_str()));
        let kind = match e.kind {
            MetricKind::Incr => "counter",
            MetricKind::Timer => "timer",
            MetricKind::Set => "gauge",
        };
        attributes.insert("metric_type".into(), kind.into());
        if !e.plugin.is_empty() {
            attributes.insert("plugin".into(), e.plugin.as_str().into());
        }
        for t in e.tags.iter() {
            attributes.insert(t.key.to_string(), t.value.as_str().into());
        }
        let value = if e.kind == MetricKind::Timer {
            e.value * self.scale
        } else {
            e.value
        };
        let doc =
            json!({"type": "metric", "key": self.key, "attributes": attributes, "value": value});
        // Metrics are best effort: a full socket buffer must not stall the router.
        let _ = self.socket.send(doc.to_string().as_bytes());
    }
}
