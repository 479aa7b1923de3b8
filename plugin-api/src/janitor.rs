//! The janitor's plugin kinds (since 1.1): an [`Authority`] says what DNS should
//! contain, a [`Reconciler`] compares that with what DNS serves and emits
//! corrections, a [`Publisher`] sends the corrections where `gordon run` consumes
//! them. They are joined by bounded channels:
//!
//! ```text
//! Authority --ZoneRecords--> Reconciler --EventMessage (event format)--> Publisher
//! ```
//!
//! Each channel ends when its sender's `run` returns; a `run` that fails ends it too,
//! and the host reports the failure by plugin name — a downstream plugin never waits
//! forever.

use std::future::Future;
use std::sync::Arc;

use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;

use crate::channel::{Closed, FfiReceiver, Recv, Sender};
use crate::error::PluginError;
use crate::message::{EventMessage, ResourceRecord};
use crate::plugin::Plugin;

/// Every record set one zone should contain, with where each came from: the
/// message an authority sends per zone (`{"zone", "rrsets"}` of the original).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ZoneRecords {
    zone: RString,
    rrsets: RVec<ResourceRecord>,
    sources: RVec<RString>,
}

impl ZoneRecords {
    /// An empty set for `zone`.
    pub fn new(zone: &str) -> Self {
        ZoneRecords {
            zone: zone.into(),
            rrsets: RVec::new(),
            sources: RVec::new(),
        }
    }
    /// An empty set for `zone` with room for `n` record sets, for the wire codec.
    pub(crate) fn with_capacity(zone: &str, n: usize) -> Self {
        ZoneRecords {
            zone: zone.into(),
            rrsets: RVec::with_capacity(n),
            sources: RVec::with_capacity(n),
        }
    }
    /// The zone, e.g. `example.com.`.
    pub fn zone(&self) -> &str {
        &self.zone
    }
    /// Adds a record set and the source it came from (a file name, say).
    pub fn push(&mut self, rrset: ResourceRecord, source: &str) {
        self.rrsets.push(rrset);
        self.sources.push(source.into());
    }
    /// The record sets.
    pub fn rrsets(&self) -> &[ResourceRecord] {
        &self.rrsets
    }
    /// The record sets with their sources.
    pub fn iter(&self) -> impl Iterator<Item = (&ResourceRecord, &str)> + '_ {
        self.rrsets
            .iter()
            .zip(self.sources.iter().map(|s| s.as_str()))
    }
    /// Number of record sets.
    pub fn len(&self) -> usize {
        self.rrsets.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// Where a janitor plugin puts its output.
#[derive(Debug, Clone)]
pub struct Outbox<T: 'static> {
    inner: Sender<T>,
}

impl<T: Send + 'static> Outbox<T> {
    pub(crate) fn new(inner: Sender<T>) -> Self {
        Outbox { inner }
    }

    /// Sends one item, waiting (without blocking the runtime) while the channel is full.
    ///
    /// # Errors
    /// [`Closed`] with the item if the host stopped the run.
    pub async fn send(&self, item: T) -> Result<(), Closed<T>> {
        self.send_batch(vec![item]).await
    }

    /// Sends a batch, waiting while the channel is full.
    ///
    /// # Errors
    /// [`Closed`] with the undelivered items if the host stopped the run.
    pub async fn send_batch(&self, batch: Vec<T>) -> Result<(), Closed<T>> {
        let rest = self.inner.try_send_batch(batch)?;
        if rest.is_empty() {
            return Ok(());
        }
        crate::context::send_waiting(&self.inner, rest).await
    }
}

/// Where a janitor plugin reads its input; ends when the upstream plugin is done.
pub struct Inbox<T: 'static> {
    inner: Arc<FfiReceiver<T>>,
    buffer: std::collections::VecDeque<T>,
    ended: bool,
}

impl<T: Send + 'static> Inbox<T> {
    pub(crate) fn new(inner: FfiReceiver<T>) -> Self {
        Inbox {
            inner: Arc::new(inner),
            buffer: Default::default(),
            ended: false,
        }
    }

    /// The next item, or `None` once the upstream plugin has finished and
    /// everything it sent was read.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            let inner = Arc::clone(&self.inner);
            let got = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::new();
                let status = inner.recv_batch(&mut buf, 256, None);
                (status, buf)
            })
            .await;
            match got {
                Ok((status, buf)) => {
                    self.buffer.extend(buf);
                    if status == Recv::Ended {
                        self.ended = true;
                    }
                }
                Err(_) => self.ended = true,
            }
        }
    }
}

/// The source of truth (the original `IAuthority`): puts one [`ZoneRecords`] per
/// zone on `rrsets`, then returns. A source that cannot be read must make `run`
/// fail — never send an empty zone in its place, or the reconciler would be asked
/// to delete everything.
pub trait Authority: Plugin {
    /// Produces the desired records.
    fn run(
        &self,
        rrsets: Outbox<ZoneRecords>,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;
    /// Lets outstanding work finish and closes connections.
    fn cleanup(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }
}

/// Compares desired with actual (the original `IReconciler`): reads zones from
/// `rrsets` until it ends, and puts corrections, in the event format, on `changes`.
pub trait Reconciler: Plugin {
    /// Reconciles every zone received.
    fn run(
        &self,
        rrsets: Inbox<ZoneRecords>,
        changes: Outbox<EventMessage>,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;
    /// Lets outstanding work finish and closes connections.
    fn cleanup(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }
}

/// Publishes corrections (the original `IPublisher`) where `gordon run` consumes
/// them; `run` returns once every change it read is confirmed published.
pub trait Publisher: Plugin {
    /// Publishes every change received.
    fn run(
        &self,
        changes: Inbox<EventMessage>,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;
    /// Lets outstanding work finish and closes connections.
    fn cleanup(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }
}
