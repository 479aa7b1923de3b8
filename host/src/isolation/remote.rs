//! The host's side of each plugin kind when the plugin runs in a process of its
//! own: the same methods as the in-process handles, carried over the link.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gordon_plugin_api::abi::MetricEvent;
use gordon_plugin_api::channel::{Receiver, Sender};
use gordon_plugin_api::wire::{self, Interner};
use gordon_plugin_api::{EventMessage, PluginError, ZoneRecords};

use super::link::{self, op, Frame};
use super::supervisor::{CallError, Link, Supervisor};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every message of a batch failed for the same reason.
fn all_failed(n: usize, why: &PluginError) -> Vec<(usize, PluginError)> {
    (0..n).map(|i| (i, why.clone())).collect()
}

/// How much longer than its own deadline the router's watchdog waits for an
/// isolated handler's call before it replaces the worker.
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

/// An isolated phase handler.
pub struct Handler {
    sup: Arc<Supervisor>,
    timeout: Duration,
}

impl Handler {
    /// The plugin's supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.sup
    }

    /// A handler whose batches may take `timeout` each.
    pub fn new(sup: Arc<Supervisor>, timeout: Duration) -> Self {
        Handler { sup, timeout }
    }

    /// As the in-process handler: the batch is sent, handled in the process and
    /// sent back over the originals. If the process crashes or misses the
    /// deadline, every message of the batch fails with the reason.
    pub fn handle_batch(&self, batch: &mut [EventMessage]) -> Vec<(usize, PluginError)> {
        // This deadline is the one that acts: past it the process is killed and
        // the call returns. The router's watchdog allows an isolated call a grace
        // period beyond it (`WATCHDOG_GRACE`), for a host that is itself stalled.
        let deadline = Some(Instant::now() + self.timeout);
        let link = match self.sup.current(deadline) {
            Ok(link) => link,
            Err(e) => return all_failed(batch.len(), &e.into()),
        };
        let answer = link.call(op::HANDLE, |b| wire::put_messages(b, batch), deadline);
        let mut answer = match answer {
            Ok(a) if a.op == op::HANDLED => a,
            Ok(_) => return malformed(&link, batch.len()),
            Err(e) => return all_failed(batch.len(), &e.into()),
        };
        let (body, interner) = answer.parts();
        match decode_handled(body, interner, batch) {
            Some(failures) => failures,
            None => {
                drop(answer);
                malformed(&link, batch.len())
            }
        }
    }

    /// Shuts the plugin down and stops its process.
    ///
    /// # Errors
    /// The plugin's error, or why it could not be asked.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        self.sup.stop(deadline)
    }
}

fn malformed(link: &Link, n: usize) -> Vec<(usize, PluginError)> {
    let why = "the plugin process sent a malformed answer; plugin process killed";
    link.kill(why);
    all_failed(n, &PluginError::new(why))
}

/// Reads a [`op::HANDLED`] body: the failures, then the batch over `batch`.
fn decode_handled(
    body: &[u8],
    interner: &mut Interner,
    batch: &mut [EventMessage],
) -> Option<Vec<(usize, PluginError)>> {
    let mut r = wire::Reader::new(body);
    let n = r.u32().ok()? as usize;
    let mut failures = Vec::with_capacity(n.min(batch.len()));
    for _ in 0..n {
        let index = r.u32().ok()? as usize;
        let panicked = r.u8().ok()? == 1;
        let message = r.str().ok()?;
        if index >= batch.len() {
            return None;
        }
        failures.push((
            index,
            gordon_plugin_api::FfiError {
                message: message.into(),
                panicked,
            }
            .into(),
        ));
    }
    wire::get_messages_into(r.rest(), interner, batch).ok()?;
    Some(failures)
}

/// An isolated event source.
pub struct Source {
    sup: Arc<Supervisor>,
    /// The host's queue, kept for the restarted processes.
    events: Arc<Mutex<Option<Sender<EventMessage>>>>,
}

impl Source {
    /// The plugin's supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.sup
    }

    /// A source in `sup`'s process.
    pub fn new(sup: Arc<Supervisor>) -> Self {
        Source {
            sup,
            events: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts the source in its process; its events are read from the stream
    /// socket into `events`. A restarted process is started the same way.
    ///
    /// # Errors
    /// The plugin's error, or why the process could not be asked.
    pub fn start(&self, events: Sender<EventMessage>) -> Result<(), PluginError> {
        *lock(&self.events) = Some(events);
        let slot = Arc::clone(&self.events);
        let sup = Arc::clone(&self.sup);
        let timeout = self.sup.call_timeout();
        let start = move |link: &Arc<Link>| -> Result<(), PluginError> {
            let Some(events) = lock(&slot).clone() else {
                return Err(PluginError::new("the source was shut down"));
            };
            read_events(link, events, Arc::clone(&sup), Arc::clone(&slot))?;
            link.call(op::START, |_| {}, Some(Instant::now() + timeout))
                .map(drop)
                .map_err(Into::into)
        };
        let link = self
            .sup
            .current(Some(Instant::now() + timeout))
            .map_err(PluginError::from)?;
        start(&link)?;
        self.sup.on_restart(Box::new(start));
        Ok(())
    }

    /// Hands finished and failed messages back to the source in its process.
    ///
    /// # Errors
    /// The plugin's error, or why the process could not be asked (messages the
    /// process never acknowledges are redelivered where the source can).
    pub fn cleanup(&self, batch: &[EventMessage]) -> Result<(), PluginError> {
        cleanup(&self.sup, batch)
    }

    /// Stops the source and its process.
    ///
    /// # Errors
    /// The plugin's error, or why it could not be asked.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        let result = self.sup.stop(deadline);
        // The queue's sender goes last: the pipeline sees the source end.
        lock(&self.events).take();
        result
    }
}

fn cleanup(sup: &Supervisor, batch: &[EventMessage]) -> Result<(), PluginError> {
    let deadline = Some(Instant::now() + sup.call_timeout());
    sup.call(op::CLEANUP, |b| wire::put_messages(b, batch), deadline)
        .map_err(|e| match e {
            CallError::Lost(why) => PluginError::new(format!(
                "{why}; {} message(s) not acknowledged (the source redelivers them if it can)",
                batch.len()
            )),
            CallError::Plugin(e) => e,
        })
}

/// Reads a source process's events into the host's queue, on a thread of its
/// own, until the process ends its stream or dies.
fn read_events(
    link: &Link,
    events: Sender<EventMessage>,
    sup: Arc<Supervisor>,
    slot: Arc<Mutex<Option<Sender<EventMessage>>>>,
) -> Result<(), PluginError> {
    let mut sock = link.stream().map_err(PluginError::from)?;
    std::thread::Builder::new()
        .name(format!("gordon-events-{}", sup.name()))
        .spawn(move || {
            let mut frame = Frame::default();
            let mut interner = Interner::new();
            let mut batch = Vec::new();
            loop {
                match frame.recv(&mut sock) {
                    Ok(op::EVENTS) => {}
                    Ok(op::END) => {
                        // The source ended its stream (its `run` returned): the
                        // host's queue ends with it, as in-process.
                        lock(&slot).take();
                        return;
                    }
                    // The process ended: its next one is started on this queue.
                    _ => return,
                }
                if wire::get_messages(frame.body(), &mut interner, &mut batch).is_err() {
                    tracing::error!(
                        plugin = sup.name(),
                        "The plugin process sent malformed events; ignoring them."
                    );
                    batch.clear();
                    continue;
                }
                if let Err(closed) = events.send_batch(std::mem::take(&mut batch)) {
                    // Intake closed (the host is stopping): the source rejects
                    // what it can no longer deliver.
                    let mut undelivered = closed.0;
                    crate::service::router::mark_dropped(
                        &mut undelivered,
                        "the host stopped taking messages before this one was queued",
                    );
                    let _ = cleanup(&sup, &undelivered);
                }
            }
        })
        .map(drop)
        .map_err(|e| PluginError::new(format!("cannot start the event reader: {e}")))
}

/// An isolated metric relay.
pub struct Relay {
    sup: Arc<Supervisor>,
    queue: Mutex<Option<SyncSender<Vec<u8>>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    dropped: std::sync::atomic::AtomicU64,
}

/// Metric events waiting for an isolated relay's process; past it, new ones
/// are dropped (and counted) rather than slow the host.
const RELAY_QUEUE: usize = 10_000;

impl Relay {
    /// The plugin's supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.sup
    }

    /// A relay in `sup`'s process.
    ///
    /// # Errors
    /// The writer thread cannot start.
    pub fn new(sup: Arc<Supervisor>) -> Result<Self, PluginError> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(RELAY_QUEUE);
        let writer_sup = Arc::clone(&sup);
        let writer = std::thread::Builder::new()
            .name(format!("gordon-relay-{}", sup.name()))
            .spawn(move || {
                let mut frame = Frame::default();
                while let Ok(event) = rx.recv() {
                    let Ok(link) = writer_sup.current(None) else {
                        return;
                    };
                    frame.start(op::EMIT).extend_from_slice(&event);
                    let Ok(mut sock) = link.stream() else {
                        continue;
                    };
                    let _ = frame.send(&mut sock);
                }
            })
            .map_err(|e| PluginError::new(format!("cannot start the relay writer: {e}")))?;
        Ok(Relay {
            sup,
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            dropped: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Queues one metric event for the process; never blocks.
    pub fn emit(&self, event: &MetricEvent<'_>) {
        let mut body = Vec::with_capacity(64);
        wire::put_metric(&mut body, event);
        if let Some(q) = lock(&self.queue).as_ref() {
            if let Err(TrySendError::Full(_)) = q.try_send(body) {
                let n = self
                    .dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(
                        plugin = self.sup.name(),
                        dropped = n + 1,
                        "The isolated metric relay is not keeping up; dropping metric events."
                    );
                }
            }
        }
    }

    /// Sends what is queued, then flushes and stops the process.
    ///
    /// # Errors
    /// The plugin's error, or why it could not be asked.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        lock(&self.queue).take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
        self.sup.stop(deadline)
    }
}

/// Which janitor kind runs in the process.
enum JanitorKind {
    Authority,
    Reconciler,
    Publisher,
}

/// An isolated janitor plugin (authority, reconciler or publisher).
pub struct Janitor {
    sup: Arc<Supervisor>,
    kind: JanitorKind,
}

impl Janitor {
    /// The plugin's supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.sup
    }

    /// An authority in `sup`'s process.
    pub fn authority(sup: Arc<Supervisor>) -> Self {
        Janitor {
            sup,
            kind: JanitorKind::Authority,
        }
    }
    /// A reconciler in `sup`'s process.
    pub fn reconciler(sup: Arc<Supervisor>) -> Self {
        Janitor {
            sup,
            kind: JanitorKind::Reconciler,
        }
    }
    /// A publisher in `sup`'s process.
    pub fn publisher(sup: Arc<Supervisor>) -> Self {
        Janitor {
            sup,
            kind: JanitorKind::Publisher,
        }
    }

    /// `run` for an authority: its zone records come back on the stream.
    ///
    /// # Errors
    /// The plugin's error, or how its process ended.
    pub fn run_authority(&self, rrsets: Sender<ZoneRecords>) -> Result<(), PluginError> {
        debug_assert!(matches!(self.kind, JanitorKind::Authority));
        let link = self.sup.current(None).map_err(PluginError::from)?;
        let reader = link::spawn_reader("gordon-stream-in", link.stream()?, move |frame, _| {
            let mut batch = Vec::new();
            wire::get_zone_records(frame, &mut batch).ok()?;
            rrsets.send_batch(batch).ok()
        })?;
        self.run(&link, vec![reader])
    }

    /// `run` for a reconciler: zone records go out on the stream, changes come
    /// back on it.
    ///
    /// # Errors
    /// The plugin's error, or how its process ended.
    pub fn run_reconciler(
        &self,
        rrsets: Receiver<ZoneRecords>,
        changes: Sender<EventMessage>,
    ) -> Result<(), PluginError> {
        debug_assert!(matches!(self.kind, JanitorKind::Reconciler));
        let link = self.sup.current(None).map_err(PluginError::from)?;
        let writer = link::spawn_writer(
            "gordon-stream-out",
            rrsets,
            link.stream()?,
            wire::put_zone_records,
            op::ZONES,
        )?;
        let reader = link::spawn_reader(
            "gordon-stream-in",
            link.stream()?,
            move |frame, interner| {
                let mut batch = Vec::new();
                wire::get_messages(frame, interner, &mut batch).ok()?;
                changes.send_batch(batch).ok()
            },
        )?;
        self.run(&link, vec![writer, reader])
    }

    /// `run` for a publisher: changes go out on the stream.
    ///
    /// # Errors
    /// The plugin's error, or how its process ended.
    pub fn run_publisher(&self, changes: Receiver<EventMessage>) -> Result<(), PluginError> {
        debug_assert!(matches!(self.kind, JanitorKind::Publisher));
        let link = self.sup.current(None).map_err(PluginError::from)?;
        let writer = link::spawn_writer(
            "gordon-stream-out",
            changes,
            link.stream()?,
            wire::put_messages,
            op::EVENTS,
        )?;
        self.run(&link, vec![writer])
    }

    fn run(
        &self,
        link: &Link,
        threads: Vec<std::thread::JoinHandle<()>>,
    ) -> Result<(), PluginError> {
        let result = link.call(op::RUN, |_| {}, None).map(drop);
        if result.is_err() {
            // The process is gone: the stream threads see it closed.
            let _ = link.wait_end(Duration::from_secs(2));
        }
        for t in threads {
            let _ = t.join();
        }
        result.map_err(Into::into)
    }

    /// Lets outstanding work finish and stops the process.
    ///
    /// # Errors
    /// The plugin's error, or why it could not be asked.
    pub fn cleanup(&self, deadline: Duration) -> Result<(), PluginError> {
        self.sup.stop(deadline)
    }
}

/// An isolated plugin's live controls, carried over its call link.
pub struct Control {
    sup: Arc<Supervisor>,
}

impl Control {
    /// The controls of the plugin in `sup`'s process.
    pub fn new(sup: Arc<Supervisor>) -> Self {
        Control { sup }
    }

    fn deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.sup.call_timeout())
    }

    /// Applies `json` in the process; a process started after this (a restart)
    /// is created with it too.
    ///
    /// # Errors
    /// The plugin's error, or why it could not be asked.
    pub fn apply_config(&self, json: &str) -> Result<bool, PluginError> {
        let deadline = self.deadline();
        let link = self.sup.current(deadline).map_err(PluginError::from)?;
        let answer = link
            .call(
                op::APPLY,
                |b| b.extend_from_slice(json.as_bytes()),
                deadline,
            )
            .map_err(PluginError::from)?;
        let applied = wire::Reader::new(answer.body()).u8().unwrap_or(0) == 1;
        if applied {
            self.sup.set_config(json);
        }
        Ok(applied)
    }

    /// Runs an action in the process.
    ///
    /// # Errors
    /// The plugin's error, or why it could not be asked.
    pub fn invoke(&self, action: &str, params_json: &str) -> Result<String, PluginError> {
        let deadline = self.deadline();
        let link = self.sup.current(deadline).map_err(PluginError::from)?;
        let answer = link
            .call(
                op::INVOKE,
                |b| {
                    wire::put_str(b, action);
                    wire::put_str(b, params_json);
                },
                deadline,
            )
            .map_err(PluginError::from)?;
        Ok(String::from_utf8_lossy(answer.body()).into_owned())
    }

    /// Delivers a host event to the process (dropped if it is between restarts).
    pub fn host_event(&self, json: &str) {
        let deadline = self.deadline();
        if let Ok(link) = self.sup.current(deadline) {
            let _ = link.call(
                op::EVENT,
                |b| b.extend_from_slice(json.as_bytes()),
                deadline,
            );
        }
    }
}
