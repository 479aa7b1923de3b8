//! `http.events`: a gordon event source that needs no external server.
//!
//! `POST /events` with one event or an array of events in the event JSON format
//! (see `gordon_plugin_api::event_json`). A body that is not valid JSON, breaks the
//! schema, or holds an event that is ambiguous or that no zone could load (a key
//! given twice, an unknown key in `resourceRecords`, a name with whitespace, an IP
//! address where a host name belongs, NS at a wildcard, more than 100 records or
//! 65 512 bytes of TXT data in one set, TXT data that starts with `"` but is not
//! quoted strings) gets `400` with the reason naming the event and field, and nothing
//! is enqueued. An accepted body gets `202` with the message ids once every message
//! is on the host's queue (a full queue makes the request wait: backpressure reaches
//! the producer): validated and queued, not yet published. A handler may still drop
//! a message (an A record that is not an address, a name outside the zone, a CNAME
//! beside other data), and `GET /events/{id}` then says `dropped` with the reason;
//! nothing accepted makes the zone invalid. While the host shuts down, `503`.
//!
//! `GET /events/{id}` reports `pending`, `published` or `dropped`, with the message's
//! history; `GET /healthz` answers `ok`.
//!
//! ```toml
//! ["http.events"]
//! listen = "127.0.0.1:8080"   # address to listen on
//! max_body_bytes = 1048576    # larger bodies get 413
//! max_msg_age = 300           # seconds; older `timestamp`s are rejected (0 = no limit)
//! track = 100000              # outcomes remembered for GET /events/{id}
//! port_file = "var/http.port" # optional: write the bound port here (for listen = ":0")
//! ```

mod server;
mod tracker;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gordon_plugin_api::{
    export_plugins, EventMessage, Phase, Plugin, PluginContext, PluginError, RunContext, Runnable,
};
use serde::Deserialize;

use crate::tracker::Tracker;

/// `["http.events"]` configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpEventsConfig {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default = "default_max_age")]
    max_msg_age: u64,
    #[serde(default = "default_track")]
    track: usize,
    port_file: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
const fn default_max_body() -> usize {
    1 << 20
}
const fn default_max_age() -> u64 {
    300
}
const fn default_track() -> usize {
    100_000
}

/// The `http.events` runnable.
pub struct HttpEvents {
    listener: Mutex<Option<std::net::TcpListener>>,
    local: SocketAddr,
    shared: Arc<server::Shared>,
}

impl Plugin for HttpEvents {
    const NAME: &'static str = "http.events";
    const DESCRIPTION: &'static str = "Accepts DNS change events over HTTP (POST /events)";
    type Config = HttpEventsConfig;

    fn validate_config(cfg: &HttpEventsConfig) -> Result<(), PluginError> {
        cfg.listen.parse::<SocketAddr>().map_err(|e| {
            PluginError::new(format!(
                "`listen`: {:?} is not an address:port: {e}",
                cfg.listen
            ))
        })?;
        if cfg.max_body_bytes == 0 || cfg.track == 0 {
            return Err(PluginError::new(
                "`max_body_bytes` and `track` must be at least 1",
            ));
        }
        Ok(())
    }

    fn new(cfg: HttpEventsConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
        Self::validate_config(&cfg)?;
        // Bind now, so that an address in use fails start-up with a clear error
        // instead of a source that silently never runs.
        let listener = std::net::TcpListener::bind(&cfg.listen)
            .map_err(|e| PluginError::new(format!("cannot listen on {}: {e}", cfg.listen)))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        if let Some(path) = &cfg.port_file {
            std::fs::write(path, local.port().to_string())
                .map_err(|e| PluginError::new(format!("cannot write `port_file` {path}: {e}")))?;
        }
        let max_age = (cfg.max_msg_age > 0).then(|| Duration::from_secs(cfg.max_msg_age));
        let shared = Arc::new(server::Shared {
            tracker: Tracker::new(cfg.track),
            max_body: cfg.max_body_bytes,
            max_age,
            start_phase: Phase::new(<Self as Runnable>::START_PHASE),
        });
        Ok(HttpEvents {
            listener: Mutex::new(Some(listener)),
            local,
            shared,
        })
    }
}

impl Runnable for HttpEvents {
    async fn run(&self, ctx: RunContext) -> Result<(), PluginError> {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PluginError::new("run called twice"))?;
        let listener = gordon_plugin_api::tokio::net::TcpListener::from_std(listener)?;
        gordon_plugin_api::tracing::info!(address = %self.local, "Accepting events on POST /events.");
        server::serve(listener, Arc::clone(&self.shared), ctx).await;
        Ok(())
    }

    fn cleanup(&self, msg: &EventMessage) -> Result<(), PluginError> {
        self.shared.tracker.finish(msg);
        Ok(())
    }
}

export_plugins!(runnable HttpEvents);

#[cfg(test)]
mod tests;
