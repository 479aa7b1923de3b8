//! Build plugins for the gordon DNS registration service.
//!
//! A plugin library is a `cdylib` that depends on this crate alone. Implement one of
//! the plain traits — [`MessageHandler`] (one phase of the route: `enrich`,
//! `publish`, ...), [`Runnable`] (an event source, which also acknowledges or rejects
//! its own messages in the `cleanup` phase) or [`MetricRelay`] — then call
//! [`export_plugins!`] once. Drop the built `.so` into the host's `plugins.d/`, list
//! the plugin's name in `core.plugins`, and `gordon check` validates it.
//!
//! # Example: an enricher
//!
//! ```
//! use gordon_plugin_api::{
//!     export_plugins, EventMessage, MessageHandler, Plugin, PluginContext, PluginError,
//! };
//! use serde::Deserialize;
//!
//! /// `["acme"]` + `["acme.suffix"]` in gordon.toml.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct SuffixConfig {
//!     zone: String,
//! }
//!
//! pub struct Suffix {
//!     zone: String,
//! }
//!
//! impl Plugin for Suffix {
//!     const NAME: &'static str = "acme.suffix";
//!     const DESCRIPTION: &'static str = "Appends the zone to relative names";
//!     type Config = SuffixConfig;
//!
//!     fn validate_config(config: &SuffixConfig) -> Result<(), PluginError> {
//!         if !config.zone.ends_with('.') {
//!             return Err(PluginError::new("`zone` must end with a dot"));
//!         }
//!         Ok(())
//!     }
//!
//!     fn new(config: SuffixConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
//!         Ok(Suffix { zone: config.zone })
//!     }
//! }
//!
//! impl MessageHandler for Suffix {
//!     const PHASE: &'static str = "enrich";
//!
//!     fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
//!         let name = msg.record().name().to_owned();
//!         if !name.ends_with('.') {
//!             msg.record_mut().set_name(format!("{name}.{}", self.zone));
//!             msg.append_to_history("Made the name absolute", Self::NAME);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_plugins!(handler Suffix);
//! # fn main() {}
//! ```
//!
//! With the `testing` feature, the module `gordon_plugin_api::testing` runs it
//! without a host:
//!
//! ```ignore
//! let h = gordon_plugin_api::testing::handler::<Suffix>(r#"zone = "example.com.""#)?;
//! let msg = h.handle(gordon_plugin_api::testing::event("www", "A", &["10.0.0.1"]))?;
//! assert_eq!(msg.record().name(), "www.example.com.");
//! ```
//!
//! # Living under change (since 1.3)
//!
//! Every hook is optional. This handler checks its dependency before it is
//! created, takes a new configuration live, offers an action, logs the host
//! events it selects, and can ask to leave:
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! use gordon_plugin_api::serde_json::{self, json, Map, Value};
//! use gordon_plugin_api::{
//!     export_plugins, ActionSpec, ConfigChange, EventMessage, HostEvent, MessageHandler,
//!     Param, ParamType, Plugin, PluginContext, PluginError,
//! };
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct TtlConfig {
//!     ttl: u32,
//!     #[serde(default)]
//!     spool: Option<std::path::PathBuf>,
//! }
//!
//! pub struct Ttl {
//!     ttl: AtomicU32,
//!     ctx: PluginContext,
//! }
//!
//! impl Plugin for Ttl {
//!     const NAME: &'static str = "acme.ttl";
//!     const DESCRIPTION: &'static str = "Sets every record's TTL";
//!     type Config = TtlConfig;
//!     // Delivered to `on_host_event`, asynchronously; a slow plugin misses some.
//!     const HOST_EVENTS: &'static [&'static str] = &["plugin.*", "config.applied"];
//!
//!     // "Can I work here?": `gordon check --connect`, and before `new`.
//!     fn validate_dependencies(config: &TtlConfig) -> Result<(), PluginError> {
//!         match &config.spool {
//!             Some(dir) if !dir.is_dir() => Err(PluginError::new(format!(
//!                 "spool: {} is not a directory",
//!                 dir.display()
//!             ))),
//!             _ => Ok(()),
//!         }
//!     }
//!
//!     fn actions() -> Vec<ActionSpec> {
//!         vec![ActionSpec::new("bump", "Raises the TTL")
//!             .param(Param::required("by", ParamType::Integer, "Seconds to add"))]
//!     }
//!
//!     fn new(config: TtlConfig, ctx: PluginContext) -> Result<Self, PluginError> {
//!         Ok(Ttl { ttl: config.ttl.into(), ctx })
//!     }
//!
//!     // Idempotent: the same configuration applied twice changes nothing.
//!     fn apply_config(&self, config: TtlConfig) -> Result<ConfigChange, PluginError> {
//!         if config.spool.is_some() {
//!             return Ok(ConfigChange::Restart); // the host starts a new instance
//!         }
//!         self.ttl.store(config.ttl, Ordering::Relaxed);
//!         Ok(ConfigChange::Applied)
//!     }
//!
//!     // `gordon ctl action acme.ttl bump by=60`; `by` is checked to be an integer.
//!     fn invoke(&self, action: &str, params: &Map<String, Value>) -> Result<Value, PluginError> {
//!         match action {
//!             "bump" => {
//!                 let by = params["by"].as_u64().unwrap_or(0) as u32;
//!                 let now = self.ttl.fetch_add(by, Ordering::Relaxed) + by;
//!                 if now > 86_400 {
//!                     // Asks the host to stop this instance (and, as configured,
//!                     // start a new one from the configuration after a back-off).
//!                     self.ctx.leave("ttl ran past a day");
//!                 }
//!                 Ok(json!({"ttl": now}))
//!             }
//!             other => Err(PluginError::new(format!("no action `{other}`"))),
//!         }
//!     }
//!
//!     fn on_host_event(&self, event: &HostEvent) {
//!         tracing::info!(event = %event.name, plugin = ?event.plugin, "Host event.");
//!     }
//! }
//!
//! impl MessageHandler for Ttl {
//!     const PHASE: &'static str = "enrich";
//!     fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
//!         msg.record_mut().set_ttl(self.ttl.load(Ordering::Relaxed));
//!         Ok(())
//!     }
//! }
//!
//! export_plugins!(handler Ttl);
//! # fn main() { let _ = serde_json::Value::Null; }
//! ```
//!
//! The configuration is parsed once for all of it: the host calls
//! `validate_config`, then `validate_dependencies`, then `new`, in one call, so
//! `new` need not validate again.
//!
//! # Design decisions
//!
//! - **A stable ABI, checked before use.** The library exports one abi_stable root
//!   module. Before the host calls anything in it, abi_stable compares this crate's
//!   major version and the full layout of every type reachable from the root with the
//!   host's; a library that does not fit is refused with a message, never run.
//!   The interface grows by appending only: each minor version adds entry points
//!   at the end of the tables, so an older library's tables are a prefix of the
//!   host's, and the host keeps every released version's layout to check them.
//! - **Panics stop at the boundary.** Every call from the host into a plugin goes
//!   through a shim that catches panics; a panicking handler fails its message, and a
//!   panicking constructor fails its plugin, but the host lives on.
//! - **Messages cross by moving, not by serialising.** [`EventMessage`] is `#[repr(C)]`;
//!   handlers get batches of them in place. Phase and plugin names are interned
//!   statics, so routing allocates nothing.
//! - **Each plugin owns its async runtime.** A library has its own copy of tokio, so a
//!   future from it cannot run on the host's runtime. [`PluginContext::runtime`] gives
//!   each plugin a runtime of its own; [`Runnable::run`] runs there.
//! - **Logs and metrics go through the host.** The crate installs a `tracing`
//!   subscriber inside the library that forwards events, tagged with the plugin's
//!   name, to the host's log; [`Metrics`] reaches the host's metric relay.
//! - **Bounded channels.** A runnable's [`EventSender`] blocks (asynchronously) when
//!   the host's queue is full, so a fast source is slowed rather than buffered without
//!   end.
//!
//! A plugin must be built with `panic = "unwind"` (the default): with `abort`, a
//! panic cannot be caught and ends the host.
#![deny(missing_docs)]

// The ABI and the channel are the host's side of the boundary: public for the
// host crate, hidden from the SDK's documentation.
#[doc(hidden)]
pub mod abi;
#[doc(hidden)]
pub mod channel;
mod context;
mod discovery;
mod error;
pub mod event_json;
#[doc(hidden)]
pub mod export;
mod hostlink;
mod janitor;
mod keys;
mod live;
mod message;
pub mod ownership;
mod plugin;
#[cfg(feature = "testing")]
pub mod testing;
#[doc(hidden)]
pub mod wire;

pub use crate::channel::Closed;
pub use crate::context::{EventSender, Metrics, PluginContext, RunContext, Shutdown};
pub use crate::discovery::{Discovery, Member, Membership, MembershipSender, Service};
pub use crate::error::{FfiError, PluginError};
pub use crate::janitor::{Authority, Inbox, Outbox, Publisher, Reconciler, ZoneRecords};
pub use crate::keys::ConfigKey;
pub use crate::live::{
    event_matches, ActionSpec, ConfigChange, Definition, HostEvent, Param, ParamType,
};
pub use crate::message::{
    format_rfc3339, now_ns, Action, EventMessage, HistoryEntry, MsgId, Phase, RecordType,
    ResourceRecord, Rrdatas,
};
pub use crate::plugin::{Failures, MessageHandler, MetricRelay, Plugin, Runnable};

/// The host's health, as the host reports it to plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHealth {
    /// False when a plugin has failed or a handler did not return in time.
    pub healthy: bool,
    /// One line per problem, naming the plugin.
    pub problems: Vec<String>,
}

/// The health of the host this library runs in, for a plugin's own health endpoint
/// (`http.events` answers `/healthz` with it). `None` outside a host, or in a host
/// older than plugin-api 1.2.
pub fn host_health() -> Option<HostHealth> {
    let json: serde_json::Value = serde_json::from_str(&hostlink::health_json()?).ok()?;
    Some(HostHealth {
        healthy: json.get("healthy")?.as_bool()?,
        problems: json
            .get("problems")
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

// Re-exports. Consider semver implications carefully.
pub use schemars;
pub use serde;
pub use serde_json;
pub use tokio;
pub use tracing;

/// What the export macro expands to needs; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use abi_stable::std_types::RBoxError;
}
