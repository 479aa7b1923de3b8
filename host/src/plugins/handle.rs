//! The host's one handle per plugin kind: what the router, the pipeline, the janitor
//! and the metrics code hold to reach a created plugin.
//!
//! Each handle wraps the plugin's FFI object and speaks plain Rust — slices of
//! messages, `Result<_, PluginError>`, `Duration`s, host-side channel ends — so the
//! abi_stable types (`RResult`, `RSlice`, `FfiError`, the `*_TO` objects) stay in
//! this module. It is also the seam where a plugin running in a process of its own
//! will sit behind the same methods.

use std::time::Duration;

use abi_stable::std_types::{RResult, RSlice, RSliceMut, RStr};
use gordon_plugin_api::abi::{
    AuthorityBox, ControlBox, DiscoveryBox, HandlerBox, MetricEvent, PublisherBox, ReconcilerBox,
    RelayBox, RunnableBox,
};
use gordon_plugin_api::channel::{Receiver, Sender};
use gordon_plugin_api::{EventMessage, FfiError, PluginError, ZoneRecords};

use std::sync::Arc;

use crate::isolation::remote;
use crate::isolation::supervisor::Supervisor;

/// A plugin call's result, on the host's side.
pub(super) fn done<T>(result: RResult<T, FfiError>) -> Result<T, PluginError> {
    result.into_result().map_err(Into::into)
}

/// Milliseconds for an FFI deadline (saturating).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An event source (a runnable plugin).
pub struct Source(SourceSide);

enum SourceSide {
    Plugin(Side<RunnableBox, remote::Source>),
    /// A source the host itself runs (a discovery watch).
    Host(Box<dyn HostSource>),
}

/// A source the host runs itself, with a runnable's three calls.
pub trait HostSource: Send + Sync {
    /// Starts producing onto `events`; returns at once.
    ///
    /// # Errors
    /// Why it cannot start.
    fn start(&self, events: Sender<EventMessage>) -> Result<(), PluginError>;
    /// Messages that finished their route (`cleanup`) or failed (`drop`).
    ///
    /// # Errors
    /// Why they could not be handled.
    fn cleanup(&self, batch: &[EventMessage]) -> Result<(), PluginError>;
    /// Stops within `deadline`.
    ///
    /// # Errors
    /// Why it did not stop cleanly.
    fn shutdown(&self, deadline: Duration) -> Result<(), PluginError>;
    /// Applies a changed watch configuration live; `Ok(false)`: it cannot, and
    /// must be replaced.
    ///
    /// # Errors
    /// Why the change failed.
    fn reconfigure(&self, watch: &crate::config::WatchConfig) -> Result<bool, PluginError> {
        let _ = watch;
        Ok(false)
    }
}

/// In this process, or in a process of its own.
enum Side<L, R> {
    Local(L),
    Isolated(R),
}

impl Source {
    /// A source the host runs itself.
    pub fn host(source: Box<dyn HostSource>) -> Source {
        Source(SourceSide::Host(source))
    }

    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        match &self.0 {
            SourceSide::Plugin(Side::Isolated(r)) => Some(Arc::clone(r.supervisor())),
            _ => None,
        }
    }

    /// Applies a changed discovery watch live; `Ok(false)` for any other source
    /// (it must be replaced).
    ///
    /// # Errors
    /// Why the change failed.
    pub fn reconfigure_watch(
        &self,
        watch: &crate::config::WatchConfig,
    ) -> Result<bool, PluginError> {
        match &self.0 {
            SourceSide::Host(h) => h.reconfigure(watch),
            SourceSide::Plugin(_) => Ok(false),
        }
    }

    /// Whether its messages must be routed in the order it sent them (one
    /// router worker): a discovery watch replaces whole record sets, and a
    /// later replacement must not overtake an earlier one.
    pub fn ordered(&self) -> bool {
        matches!(self.0, SourceSide::Host(_))
    }

    /// Starts producing onto `events`; returns at once.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn start(&self, events: Sender<EventMessage>) -> Result<(), PluginError> {
        match &self.0 {
            SourceSide::Plugin(Side::Local(o)) => done(o.start(events)),
            SourceSide::Plugin(Side::Isolated(r)) => r.start(events),
            SourceSide::Host(h) => h.start(events),
        }
    }

    /// Hands back messages that finished their route (`cleanup`) or failed (`drop`).
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, batch: &[EventMessage]) -> Result<(), PluginError> {
        match &self.0 {
            SourceSide::Plugin(Side::Local(o)) => done(o.cleanup(RSlice::from_slice(batch))),
            SourceSide::Plugin(Side::Isolated(r)) => r.cleanup(batch),
            SourceSide::Host(h) => h.cleanup(batch),
        }
    }

    /// Stops taking events; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        match &self.0 {
            SourceSide::Plugin(Side::Local(o)) => done(o.shutdown(millis(deadline))),
            SourceSide::Plugin(Side::Isolated(r)) => r.shutdown(deadline),
            SourceSide::Host(h) => h.shutdown(deadline),
        }
    }
}

/// A discovery plugin (in this process only).
pub struct Discovery(DiscoveryBox);

impl Discovery {
    /// Connects to the store.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn connect(&self) -> Result<(), PluginError> {
        done(self.0.connect())
    }

    /// Disconnects within `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn disconnect(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.disconnect(millis(deadline)))
    }

    /// Starts watching `cluster`; memberships (JSON) arrive on `updates`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn start_watching(
        &self,
        cluster: &str,
        updates: Sender<abi_stable::std_types::RString>,
    ) -> Result<(), PluginError> {
        done(self.0.start_watching(RStr::from_str(cluster), updates))
    }

    /// Stops watching `cluster`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn stop_watching(&self, cluster: &str) -> Result<(), PluginError> {
        done(self.0.stop_watching(RStr::from_str(cluster)))
    }

    /// Reports a service up (`up`) or down.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn report(
        &self,
        service: &gordon_plugin_api::Service,
        up: bool,
    ) -> Result<(), PluginError> {
        let json = serde_json::to_string(service).unwrap_or_default();
        let json = RStr::from_str(&json);
        done(if up {
            self.0.report_up(json)
        } else {
            self.0.report_down(json)
        })
    }
}

/// A phase handler.
pub struct Handler(HandlerSide);

enum HandlerSide {
    On(Side<HandlerBox, remote::Handler>),
    /// Stopped by the operator (or left, not to be restarted): it keeps its place
    /// in the route and fails every message with the reason, so that nothing is
    /// acknowledged unpublished (its source rejects them, NATS redelivers).
    Stopped(PluginError),
}

impl Handler {
    /// A handler that fails every message with `why`.
    pub fn stopped(why: String) -> Handler {
        Handler(HandlerSide::Stopped(PluginError::new(why)))
    }

    /// Whether this is a stopped handler's stand-in.
    pub fn is_stopped(&self) -> bool {
        matches!(self.0, HandlerSide::Stopped(_))
    }

    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        match &self.0 {
            HandlerSide::On(Side::Isolated(r)) => Some(Arc::clone(r.supervisor())),
            _ => None,
        }
    }

    /// Handles `batch` in place; returns the messages that failed, by index, with
    /// why (a caught panic says so: [`PluginError::is_panic`]).
    pub fn handle_batch(&self, batch: &mut [EventMessage]) -> Vec<(usize, PluginError)> {
        match &self.0 {
            HandlerSide::On(Side::Local(o)) => o
                .handle_batch(RSliceMut::from_mut_slice(batch))
                .into_iter()
                .map(|f| (f.index as usize, f.error.into()))
                .collect(),
            HandlerSide::On(Side::Isolated(r)) => r.handle_batch(batch),
            HandlerSide::Stopped(why) => (0..batch.len()).map(|i| (i, why.clone())).collect(),
        }
    }

    /// How much longer than the handler timeout the router's watchdog should
    /// wait before replacing the worker: an isolated call ends by its own deadline
    /// (its process is killed), so the watchdog is only a backstop for it.
    pub fn watchdog_grace(&self) -> Duration {
        match &self.0 {
            HandlerSide::On(Side::Isolated(_)) => remote::WATCHDOG_GRACE,
            _ => Duration::ZERO,
        }
    }

    /// Releases the plugin's resources; it has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        match &self.0 {
            HandlerSide::On(Side::Local(o)) => done(o.shutdown(millis(deadline))),
            HandlerSide::On(Side::Isolated(r)) => r.shutdown(deadline),
            HandlerSide::Stopped(_) => Ok(()),
        }
    }
}

/// A metric relay.
pub struct Relay(Side<RelayBox, remote::Relay>);

impl Relay {
    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        match &self.0 {
            Side::Local(_) => None,
            Side::Isolated(r) => Some(Arc::clone(r.supervisor())),
        }
    }

    /// Relays one metric event.
    pub fn emit(&self, event: &MetricEvent<'_>) {
        match &self.0 {
            Side::Local(o) => o.emit(event),
            Side::Isolated(r) => r.emit(event),
        }
    }

    /// Flushes and closes; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.cleanup(millis(deadline))),
            Side::Isolated(r) => r.cleanup(deadline),
        }
    }
}

/// A janitor authority.
pub struct Authority(Side<AuthorityBox, remote::Janitor>);

impl Authority {
    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        match &self.0 {
            Side::Local(_) => None,
            Side::Isolated(r) => Some(Arc::clone(r.supervisor())),
        }
    }

    /// Puts one message per zone on `rrsets`; returns when done.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn run(&self, rrsets: Sender<ZoneRecords>) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.run(rrsets)),
            Side::Isolated(r) => r.run_authority(rrsets),
        }
    }

    /// Lets outstanding work finish; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.cleanup(millis(deadline))),
            Side::Isolated(r) => r.cleanup(deadline),
        }
    }
}

/// A janitor reconciler.
pub struct Reconciler(Side<ReconcilerBox, remote::Janitor>);

impl Reconciler {
    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        match &self.0 {
            Side::Local(_) => None,
            Side::Isolated(r) => Some(Arc::clone(r.supervisor())),
        }
    }

    /// Consumes `rrsets` until it ends, putting corrections on `changes`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn run(
        &self,
        rrsets: Receiver<ZoneRecords>,
        changes: Sender<EventMessage>,
    ) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.run(rrsets.into_ffi(), changes)),
            Side::Isolated(r) => r.run_reconciler(rrsets, changes),
        }
    }

    /// Lets outstanding work finish; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.cleanup(millis(deadline))),
            Side::Isolated(r) => r.cleanup(deadline),
        }
    }
}

/// A janitor publisher.
pub struct Publisher(Side<PublisherBox, remote::Janitor>);

impl Publisher {
    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        match &self.0 {
            Side::Local(_) => None,
            Side::Isolated(r) => Some(Arc::clone(r.supervisor())),
        }
    }

    /// Consumes `changes` until it ends, publishing each.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn run(&self, changes: Receiver<EventMessage>) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.run(changes.into_ffi())),
            Side::Isolated(r) => r.run_publisher(changes),
        }
    }

    /// Lets outstanding work finish; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        match &self.0 {
            Side::Local(o) => done(o.cleanup(millis(deadline))),
            Side::Isolated(r) => r.cleanup(deadline),
        }
    }
}

/// A plugin's live controls — configuration applied live, actions, host events —
/// whatever its kind (plugin-api 1.3+).
pub struct Control(ControlSide);

enum ControlSide {
    /// A library older than 1.3: no live controls.
    Absent(&'static str),
    Local(ControlBox),
    Isolated(remote::Control),
}

impl Control {
    /// The controls of a plugin built against plugin-api `api`, older than 1.3.
    pub fn absent(api: &'static str) -> Control {
        Control(ControlSide::Absent(api))
    }

    /// Applies a changed configuration (JSON object text) to the live plugin.
    /// `Ok(false)`: it does not apply configuration live (or predates 1.3), so the
    /// host must replace it.
    ///
    /// # Errors
    /// The plugin's error: the instance keeps its previous configuration.
    pub fn apply_config(&self, json: &str) -> Result<bool, PluginError> {
        match &self.0 {
            ControlSide::Absent(_) => Ok(false),
            ControlSide::Local(o) => done(o.apply_config(RStr::from_str(json))),
            ControlSide::Isolated(r) => r.apply_config(json),
        }
    }

    /// Runs an action with its parameters (a JSON object); the result is JSON.
    ///
    /// # Errors
    /// The plugin's error, or that it predates actions.
    pub fn invoke(&self, action: &str, params_json: &str) -> Result<String, PluginError> {
        match &self.0 {
            ControlSide::Absent(api) => Err(PluginError::new(format!(
                "the plugin is built against plugin-api {api}, which has no actions (1.3+)"
            ))),
            ControlSide::Local(o) => {
                done(o.invoke(RStr::from_str(action), RStr::from_str(params_json)))
                    .map(|r| r.into_string())
            }
            ControlSide::Isolated(r) => r.invoke(action, params_json),
        }
    }

    /// Delivers a host event (a JSON object) the plugin selected.
    pub fn host_event(&self, json: &str) {
        match &self.0 {
            ControlSide::Absent(_) => {}
            ControlSide::Local(o) => o.host_event(RStr::from_str(json)),
            ControlSide::Isolated(r) => r.host_event(json),
        }
    }
}

/// Wraps FFI objects into handles; only the constructor in `instance` makes them.
pub(super) mod wrap {
    use super::*;

    pub fn source(obj: RunnableBox) -> Source {
        Source(SourceSide::Plugin(Side::Local(obj)))
    }
    pub fn discovery(obj: DiscoveryBox) -> Discovery {
        Discovery(obj)
    }
    pub fn handler(obj: HandlerBox) -> Handler {
        Handler(HandlerSide::On(Side::Local(obj)))
    }
    pub fn relay(obj: RelayBox) -> Relay {
        Relay(Side::Local(obj))
    }
    pub fn authority(obj: AuthorityBox) -> Authority {
        Authority(Side::Local(obj))
    }
    pub fn reconciler(obj: ReconcilerBox) -> Reconciler {
        Reconciler(Side::Local(obj))
    }
    pub fn publisher(obj: PublisherBox) -> Publisher {
        Publisher(Side::Local(obj))
    }
    pub fn control(obj: ControlBox) -> Control {
        Control(ControlSide::Local(obj))
    }
}

/// Wraps the isolation layer's remote ends into handles.
pub(crate) mod isolated {
    use super::*;

    pub fn source(r: remote::Source) -> Source {
        Source(SourceSide::Plugin(Side::Isolated(r)))
    }
    pub fn handler(r: remote::Handler) -> Handler {
        Handler(HandlerSide::On(Side::Isolated(r)))
    }
    pub fn relay(r: remote::Relay) -> Relay {
        Relay(Side::Isolated(r))
    }
    pub fn authority(r: remote::Janitor) -> Authority {
        Authority(Side::Isolated(r))
    }
    pub fn reconciler(r: remote::Janitor) -> Reconciler {
        Reconciler(Side::Isolated(r))
    }
    pub fn publisher(r: remote::Janitor) -> Publisher {
        Publisher(Side::Isolated(r))
    }
    pub fn control(r: remote::Control) -> Control {
        Control(ControlSide::Isolated(r))
    }
}
