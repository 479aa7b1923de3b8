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
//! history; `GET /healthz` answers `ok` (or `503` with the host's problems). `HEAD`
//! works wherever `GET` does; a query string never changes the route.
//!
//! The HTTP stack is hyper's HTTP/1.1 server: keep-alive, `Content-Length` and
//! chunked bodies, `Expect: 100-continue`; a request whose framing is ambiguous
//! (`Content-Length` headers that disagree, a malformed chunk) gets `400` and the
//! connection is closed. `max_body_bytes` bounds sized and chunked bodies alike
//! (`413`).
//!
//! # Timeouts and the connection limit
//!
//! A client gets `header_timeout` for its request head (from the connection's start,
//! or from the first byte of a later request), `body_timeout` for the body (`408`),
//! and `idle_timeout` between requests on a kept-alive connection; past them the
//! connection is closed. At most `max_connections` are open: a new connection beyond
//! it closes the one that has waited longest for its client (a half-sent request, a
//! slow body, an idle keep-alive), so stalled clients cannot lock others out; a
//! request being handled is never cut short for another, and when every open
//! connection is being handled, the new one gets `503` at once. Keep
//! `max_connections` below the process's descriptor limit (`ulimit -n`).
//!
//! # Authentication
//!
//! With `token_file` (a file holding the token) or `token_env` (the name of an
//! environment variable holding it), `POST /events` and `GET /events/{id}` need
//! `Authorization: Bearer <token>`; without it, or with another token, `401` with
//! `WWW-Authenticate: Bearer`. `/healthz` stays open (it tells only whether the
//! host is healthy). The token is never part of the configuration and never logged;
//! it is compared in constant time; it must be at least 16 printable characters.
//! Listening on an address other than loopback without a token is a configuration
//! error (`gordon check` reports it) unless `allow_unauthenticated = true`.
//!
//! ```toml
//! ["http.events"]
//! listen = "127.0.0.1:8080"   # address to listen on
//! max_body_bytes = 1048576    # larger bodies get 413
//! max_msg_age = 300           # seconds; older `timestamp`s are rejected (0 = no limit)
//! track = 100000              # outcomes remembered for GET /events/{id}
//! port_file = "var/http.port" # optional: write the bound port here (for listen = ":0")
//! header_timeout = 10         # seconds for a request head
//! body_timeout = 30           # seconds for a request body
//! idle_timeout = 60           # seconds a kept-alive connection may wait for a request
//! max_connections = 512       # open connections at most
//! token_file = "/etc/gordon/http.token"  # optional; or token_env = "GORDON_HTTP_TOKEN"
//! allow_unauthenticated = false          # true: allow a non-loopback `listen` without a token
//! ```

mod auth;
mod conns;
mod server;
mod tracker;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{
    export_plugins, ConfigKey, EventMessage, Phase, Plugin, PluginContext, PluginError, RunContext,
    Runnable,
};
use serde::Deserialize;

use crate::auth::Token;
use crate::conns::Limits;
use crate::tracker::Tracker;

/// `["http.events"]` configuration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpEventsConfig {
    /// The address to listen on, `IP:port` (port 0: any free port).
    #[serde(default = "default_listen")]
    listen: String,
    /// The largest request body accepted, in bytes; larger ones get `413`.
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    /// Seconds; events with an older `timestamp` are rejected (0 = no limit).
    #[serde(default = "default_max_age")]
    max_msg_age: u64,
    /// How many message outcomes are remembered for `GET /events/{id}`.
    #[serde(default = "default_track")]
    track: usize,
    /// A file to write the bound port to (for `listen` with port 0).
    port_file: Option<String>,
    /// Seconds a client has for its request head; 1..=3600.
    #[serde(default = "default_header_timeout")]
    header_timeout: u64,
    /// Seconds a client has for its request body (`408` after); 1..=3600.
    #[serde(default = "default_body_timeout")]
    body_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request; 1..=3600.
    #[serde(default = "default_idle_timeout")]
    idle_timeout: u64,
    /// The most connections open at once; keep it below `ulimit -n`.
    ///
    /// A new connection beyond it closes the one that has waited longest for its
    /// client.
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    /// A file holding the bearer token that `POST /events` and `GET /events/{id}` need.
    ///
    /// At least 16 printable characters; not with `token_env`.
    token_file: Option<String>,
    /// The name of an environment variable holding the bearer token.
    ///
    /// At least 16 printable characters; not with `token_file`.
    token_env: Option<String>,
    /// Allow a `listen` address other than loopback without a token.
    #[serde(default)]
    allow_unauthenticated: bool,
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
const fn default_header_timeout() -> u64 {
    10
}
const fn default_body_timeout() -> u64 {
    30
}
const fn default_idle_timeout() -> u64 {
    60
}
const fn default_max_connections() -> usize {
    512
}

/// The longest any of the timeouts may be, in seconds.
const MAX_TIMEOUT: u64 = 3600;

impl HttpEventsConfig {
    fn limits(&self) -> Limits {
        Limits {
            header: Duration::from_secs(self.header_timeout),
            body: Duration::from_secs(self.body_timeout),
            idle: Duration::from_secs(self.idle_timeout),
            max_connections: self.max_connections,
        }
    }

    fn token(&self) -> Result<Option<Token>, PluginError> {
        Token::load(self.token_file.as_deref(), self.token_env.as_deref())
    }
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

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(cfg: &HttpEventsConfig) -> Result<(), PluginError> {
        let listen = cfg.listen.parse::<SocketAddr>().map_err(|e| {
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
        for (key, value) in [
            ("header_timeout", cfg.header_timeout),
            ("body_timeout", cfg.body_timeout),
            ("idle_timeout", cfg.idle_timeout),
        ] {
            if !(1..=MAX_TIMEOUT).contains(&value) {
                return Err(PluginError::new(format!(
                    "`{key}`: {value} is out of range; 1..={MAX_TIMEOUT} seconds"
                )));
            }
        }
        if cfg.max_connections == 0 {
            return Err(PluginError::new("`max_connections` must be at least 1"));
        }
        let token = cfg.token()?;
        if token.is_none()
            && !listen.ip().to_canonical().is_loopback()
            && !cfg.allow_unauthenticated
        {
            return Err(PluginError::new(format!(
                "`listen` = {:?} is reachable from other hosts, but no token is set: \
                 set `token_file` or `token_env`, or `allow_unauthenticated = true` to \
                 accept events from anyone who can reach it",
                cfg.listen
            )));
        }
        Ok(())
    }

    fn new(cfg: HttpEventsConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
        let token = cfg.token()?;
        if let Some(path) = &cfg.token_file {
            Token::warn_if_readable_by_others(path);
        }
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
            token,
            limits: cfg.limits(),
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
        let limits = self.shared.limits;
        gordon_plugin_api::tracing::info!(
            address = %self.local,
            authentication = if self.shared.token.is_some() { "bearer token" } else { "none" },
            max_connections = limits.max_connections,
            "Accepting events on POST /events."
        );
        if self.shared.token.is_none() && !self.local.ip().to_canonical().is_loopback() {
            gordon_plugin_api::tracing::warn!(
                address = %self.local,
                "Anyone who can reach this address can post events (`allow_unauthenticated`)."
            );
        }
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
