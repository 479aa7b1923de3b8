//! The host's one handle per plugin kind: what the router, the pipeline, the janitor
//! and the metrics code hold to reach a created plugin.
//!
//! Each handle wraps the plugin's FFI object and speaks plain Rust — slices of
//! messages, `Result<_, PluginError>`, `Duration`s, host-side channel ends — so the
//! abi_stable types (`RResult`, `RSlice`, `FfiError`, the `*_TO` objects) stay in
//! this module. It is also the seam where a plugin running in a process of its own
//! will sit behind the same methods.

use std::time::Duration;

use abi_stable::std_types::{RResult, RSlice, RSliceMut};
use gordon_plugin_api::abi::{
    AuthorityBox, HandlerBox, MetricEvent, PublisherBox, ReconcilerBox, RelayBox, RunnableBox,
};
use gordon_plugin_api::channel::{Receiver, Sender};
use gordon_plugin_api::{EventMessage, FfiError, PluginError, ZoneRecords};

/// A plugin call's result, on the host's side.
pub(super) fn done<T>(result: RResult<T, FfiError>) -> Result<T, PluginError> {
    result.into_result().map_err(Into::into)
}

/// Milliseconds for an FFI deadline (saturating).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An event source (a runnable plugin).
pub struct Source(RunnableBox);

impl Source {
    /// Starts producing onto `events`; returns at once.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn start(&self, events: Sender<EventMessage>) -> Result<(), PluginError> {
        done(self.0.start(events))
    }

    /// Hands back messages that finished their route (`cleanup`) or failed (`drop`).
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, batch: &[EventMessage]) -> Result<(), PluginError> {
        done(self.0.cleanup(RSlice::from_slice(batch)))
    }

    /// Stops taking events; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.shutdown(millis(deadline)))
    }
}

/// A phase handler.
pub struct Handler(HandlerBox);

impl Handler {
    /// Handles `batch` in place; returns the messages that failed, by index, with
    /// why (a caught panic says so: [`PluginError::is_panic`]).
    pub fn handle_batch(&self, batch: &mut [EventMessage]) -> Vec<(usize, PluginError)> {
        self.0
            .handle_batch(RSliceMut::from_mut_slice(batch))
            .into_iter()
            .map(|f| (f.index as usize, f.error.into()))
            .collect()
    }

    /// Releases the plugin's resources; it has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.shutdown(millis(deadline)))
    }
}

/// A metric relay.
pub struct Relay(RelayBox);

impl Relay {
    /// Relays one metric event.
    pub fn emit(&self, event: &MetricEvent<'_>) {
        self.0.emit(event);
    }

    /// Flushes and closes; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.cleanup(millis(deadline)))
    }
}

/// A janitor authority.
pub struct Authority(AuthorityBox);

impl Authority {
    /// Puts one message per zone on `rrsets`; returns when done.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn run(&self, rrsets: Sender<ZoneRecords>) -> Result<(), PluginError> {
        done(self.0.run(rrsets))
    }

    /// Lets outstanding work finish; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.cleanup(millis(deadline)))
    }
}

/// A janitor reconciler.
pub struct Reconciler(ReconcilerBox);

impl Reconciler {
    /// Consumes `rrsets` until it ends, putting corrections on `changes`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn run(
        &self,
        rrsets: Receiver<ZoneRecords>,
        changes: Sender<EventMessage>,
    ) -> Result<(), PluginError> {
        done(self.0.run(rrsets.into_ffi(), changes))
    }

    /// Lets outstanding work finish; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.cleanup(millis(deadline)))
    }
}

/// A janitor publisher.
pub struct Publisher(PublisherBox);

impl Publisher {
    /// Consumes `changes` until it ends, publishing each.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn run(&self, changes: Receiver<EventMessage>) -> Result<(), PluginError> {
        done(self.0.run(changes.into_ffi()))
    }

    /// Lets outstanding work finish; the plugin has `deadline`.
    ///
    /// # Errors
    /// The plugin's error or caught panic.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        done(self.0.cleanup(millis(deadline)))
    }
}

/// Wraps FFI objects into handles; only the constructor in `instance` makes them.
pub(super) mod wrap {
    use super::*;

    pub fn source(obj: RunnableBox) -> Source {
        Source(obj)
    }
    pub fn handler(obj: HandlerBox) -> Handler {
        Handler(obj)
    }
    pub fn relay(obj: RelayBox) -> Relay {
        Relay(obj)
    }
    pub fn authority(obj: AuthorityBox) -> Authority {
        Authority(obj)
    }
    pub fn reconciler(obj: ReconcilerBox) -> Reconciler {
        Reconciler(obj)
    }
    pub fn publisher(obj: PublisherBox) -> Publisher {
        Publisher(obj)
    }
}
