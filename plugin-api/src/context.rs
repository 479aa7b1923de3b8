//! What a plugin gets from the host: its context, its event sender, its shutdown
//! signal, its metrics and its own async runtime.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;

use crate::abi::{MetricKind, Tag};
use crate::channel::{Closed, Sender};
use crate::error::PluginError;
use crate::hostlink;
use crate::message::{Action, EventMessage, Phase, ResourceRecord};

/// Everything a plugin instance may use from its surroundings. Cheap to clone; new
/// fields may be added without breaking plugins.
#[derive(Clone)]
pub struct PluginContext {
    name: &'static str,
    runtime: Arc<OnceLock<Runtime>>,
}

impl PluginContext {
    pub(crate) fn new(name: &'static str) -> Self {
        PluginContext {
            name,
            runtime: Arc::new(OnceLock::new()),
        }
    }

    /// The plugin's dotted name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The plugin's own multi-threaded tokio runtime, created on first use.
    ///
    /// A plugin library has its own copy of tokio; futures that use it must run on
    /// this runtime, never on the host's.
    pub fn runtime(&self) -> &Handle {
        self.runtime_owned().handle()
    }

    pub(crate) fn runtime_owned(&self) -> &Runtime {
        self.runtime.get_or_init(|| {
            let name = self.name;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(format!("gordon-{name}"))
                .on_thread_start(move || {
                    hostlink::set_current_plugin(name);
                })
                .enable_all()
                .build()
                // Failing to create threads at start-up leaves nothing to recover.
                .unwrap_or_else(|e| panic!("cannot start the runtime of plugin {name}: {e}"))
        })
    }

    /// Runs a future to completion on the plugin's runtime, from a host thread (for
    /// example inside [`MessageHandler::handle`](crate::MessageHandler::handle)).
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.runtime().block_on(fut)
    }

    /// Asks the host to stop this plugin cleanly (since 1.3; dr-provision's
    /// `Leaving`): for example a source whose upstream is gone for good. The host
    /// shuts it down as at a stop, then restarts it with back-off or leaves it
    /// stopped, as `[core.leaving]` says. Returns false, and does nothing, in a
    /// host older than 1.3.
    pub fn leave(&self, reason: &str) -> bool {
        hostlink::leave(self.name, reason)
    }

    /// The plugin's metrics, sent through the host's configured relay.
    pub fn metrics(&self) -> Metrics {
        Metrics { plugin: self.name }
    }
}

impl std::fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginContext")
            .field("name", &self.name)
            .finish()
    }
}

/// Emits metrics in the plugin's name.
#[derive(Clone, Copy, Debug)]
pub struct Metrics {
    plugin: &'static str,
}

impl Metrics {
    /// Increments a counter.
    pub fn incr(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.emit(MetricKind::Incr, name, value, tags);
    }
    /// Records a duration in seconds.
    pub fn timer(&self, name: &str, seconds: f64, tags: &[(&str, &str)]) {
        self.emit(MetricKind::Timer, name, seconds, tags);
    }
    /// Sets a gauge.
    pub fn set(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.emit(MetricKind::Set, name, value, tags);
    }
    fn emit(&self, kind: MetricKind, name: &str, value: f64, tags: &[(&str, &str)]) {
        let tags: Vec<Tag<'_>> = tags
            .iter()
            .map(|(k, v)| Tag {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect();
        hostlink::metric(self.plugin, kind, name, value, &tags);
    }
}

/// What [`Runnable::run`](crate::Runnable::run) gets: where to put events and when to
/// stop.
pub struct RunContext {
    /// Where the runnable puts its messages.
    pub events: EventSender,
    /// Fires when the host asks the runnable to stop taking new events.
    pub shutdown: Shutdown,
}

/// The runnable's end of the host's bounded event channel (the original's success
/// channel).
#[derive(Clone, Debug)]
pub struct EventSender {
    inner: Sender<EventMessage>,
    start_phase: Phase,
}

impl EventSender {
    pub(crate) fn new(inner: Sender<EventMessage>, start_phase: Phase) -> Self {
        EventSender { inner, start_phase }
    }

    /// A new message in this runnable's start phase.
    pub fn message(&self, action: Action, record: ResourceRecord) -> EventMessage {
        EventMessage::new(self.start_phase, action, record)
    }

    /// Sends one message, waiting while the channel is full. Safe to call from the
    /// plugin's async tasks: a full channel parks the task's worker, not the runtime.
    ///
    /// # Errors
    /// [`Closed`] with the message once the host has stopped intake.
    pub async fn send(&self, msg: EventMessage) -> Result<(), Closed<EventMessage>> {
        self.send_batch(vec![msg]).await
    }

    /// Sends a batch (one lock for the whole batch), waiting while the channel is full.
    ///
    /// # Errors
    /// [`Closed`] with the undelivered messages once the host has stopped intake.
    pub async fn send_batch(&self, batch: Vec<EventMessage>) -> Result<(), Closed<EventMessage>> {
        let rest = self.inner.try_send_batch(batch)?;
        if rest.is_empty() {
            return Ok(());
        }
        // The channel is full: this is backpressure. Wait without blocking the other
        // tasks of the runtime.
        send_waiting(&self.inner, rest).await
    }

    /// Blocking send, for a runnable that produces from a plain thread.
    ///
    /// # Errors
    /// [`Closed`] with the undelivered messages once the host has stopped intake.
    pub fn send_batch_blocking(
        &self,
        batch: Vec<EventMessage>,
    ) -> Result<(), Closed<EventMessage>> {
        self.inner.send_batch(batch)
    }

    /// Whether the host has stopped intake.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// How many messages the channel holds before sends wait.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

/// The shutdown signal of a runnable.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    pub(crate) fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown { rx })
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when shutdown is requested (or the host is gone).
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `d` unless shutdown is requested first; returns `true` if it was.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.requested() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

/// Converts a [`Closed`] error into a [`PluginError`].
impl<T> From<Closed<T>> for PluginError {
    fn from(e: Closed<T>) -> Self {
        PluginError::new(e.to_string())
    }
}

/// Sends `batch` on a blocking thread, so a full channel does not block the
/// runtime's other tasks. The batch waits in a slot the blocking task takes it from:
/// if that task cannot run (the runtime is shutting down), the batch is still here
/// and is given back in [`Closed`], as the contract says, instead of being lost.
pub(crate) async fn send_waiting<T: Send + 'static>(
    sender: &Sender<T>,
    batch: Vec<T>,
) -> Result<(), Closed<T>> {
    let slot = Arc::new(std::sync::Mutex::new(Some(batch)));
    let (inner, task_slot) = (sender.clone(), Arc::clone(&slot));
    let sent = tokio::task::spawn_blocking(move || {
        let batch = task_slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        inner.send_batch(batch)
    })
    .await;
    sent.unwrap_or_else(|join| {
        tracing::error!(error = %join, "Send task failed; giving the batch back.");
        let back = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        Err(Closed(back))
    })
}

#[cfg(test)]
mod send_tests {
    use super::send_waiting;
    use crate::channel::bounded;

    #[test]
    fn a_batch_is_given_back_when_the_send_task_cannot_run() {
        let (tx, _rx) = bounded::<u32>(1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        rt.shutdown_background();
        let back = handle.block_on(send_waiting(&tx, vec![1, 2, 3]));
        assert_eq!(back.unwrap_err().0, vec![1, 2, 3]);
    }
}
