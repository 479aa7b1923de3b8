//! NATS JetStream plugins for gordon:
//!
//! - `nats.events` (runnable): an event source reading a JetStream stream through a
//!   durable pull consumer;
//! - `nats.publisher` (janitor publisher): publishes the janitor's corrections, in
//!   the event JSON format, to the subject `nats.events` consumes, and waits for
//!   JetStream's acknowledgements (see its section below).
//!
//! Both read the `["nats"]` package table deep-merged with their own
//! (`["nats.events"]`, `["nats.publisher"]`); see "The `["nats"]` table" below for
//! which keys may go there.
//!
//! # `nats.events`
//!
//! Every gordon process configured with the same `stream` and `durable` pulls from
//! the same consumer, so they split the work (work-queue scale-out). A message is
//! acknowledged only after all of its events finished their route; a failed event
//! gets the message rejected (nak) with a delay, so JetStream redelivers it; after
//! `max_deliver` deliveries the message goes to the dead-letter subject and is
//! terminated, because JetStream would keep it otherwise.
//!
//! # Messages
//!
//! Each JetStream message holds one event or an array of events in the event JSON
//! format (see `gordon_plugin_api::event_json`), exactly what `http.events` accepts.
//! A message that is not valid JSON, breaks the schema or is older than
//! `max_msg_age` is logged (warn), counted (`nats.invalid`) and terminated
//! (`AckKind::Term`): it is never routed and never redelivered.
//!
//! # Configuration
//!
//! ```toml
//! ["nats.events"]
//! servers = ["nats://127.0.0.1:4222"]  # server URLs (default: this one)
//! stream = "DNS_EVENTS"                # JetStream stream (required)
//! subject = "dns.events.>"             # consumer filter subject, and the stream's
//!                                      # subject when it is created (required)
//! durable = "gordon"                   # durable consumer name, shared by every
//!                                      # gordon process splitting the work (required)
//! create = false                       # create the stream/consumer when missing;
//!                                      # false: a missing one stops the source with an error
//! max_deliver = 5                      # deliveries before a message is dead-lettered
//! ack_wait = 30                        # seconds before an unacknowledged message is
//!                                      # redelivered (fractions allowed)
//! dead_letter_subject = "dns.dead"     # optional; where messages go after their last
//!                                      # failed delivery (a literal subject outside `subject`)
//! max_msg_age = 300                    # seconds; older event `timestamp`s are rejected
//!                                      # (0 = no limit)
//! batch = 256                          # messages per pull request
//! credentials_file = "/etc/gordon/nats.creds"  # optional: a NATS .creds file
//! credentials_env = "GORDON_NATS_CREDS"        # optional, instead: an environment variable
//!                                      # holding .creds content, an nkey seed (SU...) or a token
//! nak_backoff_ms = 1000                # redelivery delay after a failure: a base in ms,
//!                                      # doubled per delivery (capped at 300 s), or a
//!                                      # list, one per delivery, the last repeating:
//!                                      # nak_backoff_ms = [1000, 5000, 30000]
//! ```
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `servers` | `["nats://127.0.0.1:4222"]` | NATS URLs (`nats://`, `tls://`, `ws://`, `wss://`; `host:port` means `nats://`) |
//! | `stream` | required | the JetStream stream |
//! | `subject` | required | the consumer's filter subject; an existing consumer must filter exactly this |
//! | `durable` | required | the durable consumer's name |
//! | `create` | `false` | create a missing stream (work-queue retention, file storage, `subjects = [subject]`) and consumer (explicit ack, `ack_wait`, `max_deliver`, deliver all, `max_ack_pending` = max(8 × `batch`, 1000)) |
//! | `max_deliver` | `5` | deliveries before dead-lettering (the consumer's own limit wins when lower) |
//! | `ack_wait` | `30` | seconds; used when the consumer is created (an existing consumer keeps its own, with a warning if it differs) |
//! | `dead_letter_subject` | none | dead-letter destination; without it, a message at its last delivery is terminated with an error in the log |
//! | `max_msg_age` | `300` | seconds, for the event validator; `0` turns the check off |
//! | `batch` | `256` | pull batch size (1..=100000); also bounds what the source buffers |
//! | `credentials_file` | none | a `.creds` file, read at start-up |
//! | `credentials_env` | none | an environment variable with `.creds` content, an nkey seed or a token, read at start-up; never logged |
//! | `nak_backoff_ms` | `1000` | a base (exponential) or a list of delays in milliseconds |
//!
//! `gordon check` (`validate_config`) checks every key's value; the credentials file
//! or variable is read when the plugin is created, so a missing one fails start-up
//! with an error naming the key. An existing consumer must be a pull consumer with
//! explicit acks filtering exactly `subject`, or the source stops with an error.
//!
//! # Metrics
//!
//! Counters, tagged `stream`: `nats.received` (JetStream messages pulled, redeliveries
//! included), `nats.invalid`, `nats.acked`, `nats.naked`, `nats.dead_lettered`.
//!
//! # Dead letters
//!
//! Published with JetStream (so a stream capturing `dead_letter_subject` stores them
//! and confirms; without one, as a plain NATS message), then the original is
//! terminated. Body:
//!
//! ```json
//! {"payload": <the original message body, as JSON>,
//!  "history": [{"timestamp": "...", "plugin": "router", "message": "dns.publish failed: ...",
//!               "msg_id": "<event id>", "event": 0}, ...],
//!  "reason": "dns.publish failed: ...",
//!  "stream": "DNS_EVENTS", "stream_sequence": 42, "subject": "dns.events.a", "deliveries": 5}
//! ```
//!
//! `history` holds the history of every failed event of the message (`event` is its
//! index in the body); `reason` is the last history line of the first failed event.
//! Headers: `Gordon-Stream`, `Gordon-Stream-Sequence`, `Gordon-Subject`,
//! `Gordon-Deliveries`.
//!
//! The publish is retried a few times with backoff; if it still fails, the message
//! is left unacknowledged (JetStream keeps it, no longer delivered) rather than lost,
//! with an error in the log. Without `dead_letter_subject`, a message that failed its
//! last delivery is terminated with an error in the log.
//!
//! # Availability
//!
//! The source connects with backoff and keeps retrying (warnings in the log) while the
//! server is away, at start-up and later; it stops with an error only for what
//! retrying cannot fix: bad credentials, or a missing stream or consumer with
//! `create = false`, or a consumer that does not fit (push-based, another filter
//! subject). On shutdown it stops pulling, hands back (nak, no delay) what the host
//! never finished, waits for in-flight acknowledgements and drains the connection.
//!
//! Pull requests stay open for 30 s with a 5 s idle heartbeat, so an idle source
//! costs no CPU; a missed heartbeat or a failed pull sets the consumer up again, with
//! backoff. A message held longer than the consumer's ack wait (a slow route) is
//! redelivered, possibly to another process: set `ack_wait` above the route's worst
//! latency. Duplicates are harmless (DNS updates are idempotent).
//!
//! # Actions
//!
//! `gordon ctl action nats.events pause` stops pulling: the pull subscription is
//! dropped after the events that already arrived are handed to the route, and
//! events in the route still finish and are acknowledged (or rejected) as usual.
//! Messages the server was sending at that moment are redelivered after the ack
//! wait. `resume` pulls again. Both are idempotent and answer `{"paused": bool}`,
//! the state after the call. A configuration change restarts the source.
//!
//! # `nats.publisher`
//!
//! A janitor publisher (`gordon janitor`): each change the reconciler sends is
//! published, as its event object (`{"action", "resourceRecords", "timestamp"?,
//! ...extra}`, exactly what `nats.events` accepts; a TTL of 0, "not set", is left
//! out), to `subject` through JetStream. `run` returns success only once the stream
//! acknowledged every change.
//!
//! ```toml
//! ["nats.publisher"]
//! servers = ["nats://127.0.0.1:4222"]  # server URLs (default: this one)
//! subject = "dns.events.janitor"       # literal subject a stream captures, inside the
//!                                      # `subject` of nats.events (required)
//! timeout = 10                         # seconds to wait for each acknowledgement
//! connect_timeout = 30                 # seconds to keep retrying the connection
//! max_in_flight = 256                  # publishes awaiting their acknowledgement at once
//! events_per_message = 1               # >1: JSON arrays of up to this many events
//! credentials_file = "/etc/gordon/nats.creds"  # optional, as for nats.events
//! # credentials_env = "GORDON_NATS_CREDS"      # optional, instead
//! ```
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `servers` | `["nats://127.0.0.1:4222"]` | NATS URLs, as for `nats.events` |
//! | `subject` | required | the literal subject (no wildcards) changes are published to |
//! | `timeout` | `10` | seconds (fractions allowed, at most 3600) to wait for each publish acknowledgement and JetStream API reply |
//! | `connect_timeout` | `30` | seconds (at most 86400) to keep retrying the connection, with backoff, before the run fails |
//! | `max_in_flight` | `256` | publishes awaiting their acknowledgement at once (1..=65536) |
//! | `events_per_message` | `1` | changes per message: `1` publishes one event object per change; more publishes JSON arrays of up to that many events (1..=10000), split further to stay within the server's `max_payload` |
//! | `credentials_file` | none | a `.creds` file, read at start-up |
//! | `credentials_env` | none | an environment variable with `.creds` content, an nkey seed or a token, read at start-up; never logged |
//!
//! A run connects (or reuses the previous run's connection while it is up),
//! retrying with backoff for `connect_timeout`; then it checks that a stream captures
//! `subject` (a clear error when none does: publishing there would only get "no
//! responders"), and publishes while reading the changes, keeping up to
//! `max_in_flight` publishes waiting for their acknowledgement (`PubAck`) rather than
//! one round trip per change. Messages go out in the order the changes came.
//!
//! The run fails, with an error naming `subject` and how many changes were not
//! confirmed, when any change was not acknowledged (timeout, no stream, a server
//! error), could not be sent, or is not a valid event (checked with the same
//! validator `nats.events` uses, before sending). After the first publish that is not
//! acknowledged nothing more is sent (the next would fail the same way); the
//! remaining changes are still read, and counted as not sent, so the reconciler
//! finishes normally. Failing to connect within `connect_timeout` fails the run with
//! an error naming the servers. Changes are not retried within a run: the next
//! janitor run reconciles again. A change's `timestamp`, when the reconciler sets
//! one, must be recent enough for the consumer's `max_msg_age`, or `nats.events`
//! rejects it on arrival.
//!
//! Metrics, counted in changes and tagged `subject`: `nats.published` (acknowledged),
//! `nats.publish_failures` (not confirmed, for any of the reasons above). Each run
//! logs a summary (info; error when changes were lost). `cleanup` flushes and drains
//! the connection.
//!
//! # The `["nats"]` table
//!
//! `nats.events` and `nats.publisher` both receive the `["nats"]` table, merged under
//! their own. Both accept the shared keys `servers`, `credentials_file` and
//! `credentials_env` (and `subject`, when one literal subject suits both), so these
//! may go there. Every other key belongs in the table of the plugin that has it: both
//! refuse unknown keys, naming them, so `stream = ...` in `["nats"]` would stop
//! `nats.publisher`, and `timeout = ...` there would stop `nats.events`.
//!
//! ```toml
//! [nats]
//! servers = ["nats://nats-1:4222", "nats://nats-2:4222"]
//! credentials_file = "/etc/gordon/nats.creds"
//!
//! ["nats.events"]
//! stream = "DNS_EVENTS"
//! subject = "dns.events.>"
//! durable = "gordon"
//!
//! ["nats.publisher"]
//! subject = "dns.events.janitor"
//! ```

mod acks;
mod config;
mod consumer;
mod discovery;
mod publisher;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gordon_plugin_api::serde_json::{json, Map, Value};
use gordon_plugin_api::tokio::sync::{mpsc, oneshot, watch};
use gordon_plugin_api::tokio::task::JoinHandle;
use gordon_plugin_api::{
    export_plugins, tokio, tracing, ActionSpec, ConfigKey, EventMessage, Metrics, Phase, Plugin,
    PluginContext, PluginError, RunContext, Runnable,
};

pub use crate::acks::Stats;
use crate::acks::{Command, Counters, Dropped};
pub use crate::config::{NakBackoff, NatsEventsConfig, NatsPublisherConfig};
use crate::consumer::{Backoff, Ended, Puller, Secret, SetupError};
pub use crate::publisher::{event_body, NatsPublisher, PublisherStats};

/// How long `shutdown` waits for the connection to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The `nats.events` runnable.
pub struct NatsEvents {
    cfg: NatsEventsConfig,
    secret: Option<Secret>,
    // Not the whole `PluginContext`: it owns the runtime, which must not be dropped
    // by the last task holding the plugin.
    metrics: Metrics,
    counters: Arc<Counters>,
    max_deliver: Arc<AtomicU64>,
    acks: mpsc::UnboundedSender<Command>,
    acks_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    ack_task: Mutex<Option<JoinHandle<()>>>,
    client: Mutex<Option<async_nats::Client>>,
    failure: Mutex<Option<String>>,
    /// Whether pulling is paused (actions `pause` and `resume`).
    paused: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NatsEvents {
    /// What the source has done so far, in JetStream messages.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Why `run` stopped with an error, if it did (the host also logs it).
    pub fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// Whether pulling is paused (action `pause`).
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Pauses or resumes pulling; returns whether it changed anything.
    fn set_paused(&self, paused: bool) -> bool {
        let changed = self.paused.send_if_modified(|now| {
            let changed = *now != paused;
            *now = paused;
            changed
        });
        if changed {
            tracing::info!(
                stream = %self.cfg.stream,
                consumer = %self.cfg.durable,
                paused,
                "{}",
                if paused {
                    "Pausing: no new messages are pulled; those in the route finish."
                } else {
                    "Resuming pulling from JetStream."
                }
            );
        }
        changed
    }

    async fn run_inner(
        &self,
        ctx: RunContext,
        acks_rx: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), PluginError> {
        let Some(client) =
            consumer::connect(&self.cfg, self.secret.as_ref(), &ctx.shutdown).await?
        else {
            return Ok(());
        };
        *lock(&self.client) = Some(client.clone());
        let js = async_nats::jetstream::new(client.clone());
        let settings = acks::Settings {
            stream: self.cfg.stream.clone(),
            max_deliver: Arc::clone(&self.max_deliver),
            backoff: self.cfg.nak_backoff_ms.clone(),
            dead_letter_subject: self.cfg.dead_letter_subject.clone(),
            counters: Arc::clone(&self.counters),
            metrics: self.metrics,
            client,
            js: js.clone(),
        };
        *lock(&self.ack_task) = Some(tokio::spawn(acks::run(settings, acks_rx)));

        let metrics = self.metrics;
        let mut serial = 0u64;
        let mut puller = Puller {
            cfg: &self.cfg,
            ctx: &ctx,
            acks: &self.acks,
            counters: &self.counters,
            metrics: &metrics,
            phase: Phase::new(<Self as Runnable>::START_PHASE),
            max_age: (self.cfg.max_msg_age > 0).then(|| Duration::from_secs(self.cfg.max_msg_age)),
            serial: &mut serial,
            paused: self.paused.subscribe(),
        };
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !ctx.shutdown.is_requested() {
            if self.is_paused() {
                let mut paused = self.paused.subscribe();
                tokio::select! {
                    _ = ctx.shutdown.requested() => break,
                    _ = paused.wait_for(|paused| !*paused) => {}
                }
                continue;
            }
            let setup = tokio::select! {
                _ = ctx.shutdown.requested() => break,
                s = consumer::setup(&js, &self.cfg, &self.max_deliver) => s,
            };
            let reason = match setup {
                Err(SetupError::Fatal(msg)) => return Err(PluginError::new(msg)),
                Err(SetupError::Transient(msg)) => msg,
                Ok(consumer) => {
                    tracing::info!(
                        stream = %self.cfg.stream,
                        consumer = %self.cfg.durable,
                        subject = %self.cfg.subject,
                        "Pulling events from JetStream."
                    );
                    match puller.consume(&consumer).await {
                        Ended::Shutdown | Ended::Closed => break,
                        Ended::Paused => {
                            tracing::info!(
                                stream = %self.cfg.stream,
                                consumer = %self.cfg.durable,
                                "Paused: not pulling from JetStream."
                            );
                            continue;
                        }
                        Ended::Restart { reason, progressed } => {
                            if progressed {
                                backoff.reset();
                            }
                            reason
                        }
                    }
                }
            };
            let delay = backoff.next_delay();
            tracing::warn!(
                stream = %self.cfg.stream,
                consumer = %self.cfg.durable,
                error = %reason,
                retry_in_ms = delay.as_millis() as u64,
                "JetStream consumer unavailable; retrying."
            );
            if ctx.shutdown.sleep(delay).await {
                break;
            }
        }
        tracing::info!("Stopped pulling from JetStream.");
        Ok(())
    }
}

impl Plugin for NatsEvents {
    const NAME: &'static str = "nats.events";
    const DESCRIPTION: &'static str =
        "Consumes DNS change events from a NATS JetStream durable pull consumer";
    type Config = NatsEventsConfig;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(cfg: &NatsEventsConfig) -> Result<(), PluginError> {
        config::validate(cfg)
    }

    fn new(cfg: NatsEventsConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        // Read secrets now, so a missing file or variable fails start-up clearly.
        let secret = consumer::load_secret(
            cfg.credentials_file.as_deref(),
            cfg.credentials_env.as_deref(),
        )?;
        let (acks, acks_rx) = mpsc::unbounded_channel();
        Ok(NatsEvents {
            max_deliver: Arc::new(AtomicU64::new(u64::from(cfg.max_deliver))),
            cfg,
            secret,
            metrics: ctx.metrics(),
            counters: Arc::new(Counters::default()),
            acks,
            acks_rx: Mutex::new(Some(acks_rx)),
            ack_task: Mutex::new(None),
            client: Mutex::new(None),
            failure: Mutex::new(None),
            paused: watch::Sender::new(false),
        })
    }

    fn actions() -> Vec<ActionSpec> {
        vec![
            ActionSpec::new(
                "pause",
                "Stops pulling new messages from JetStream; events in the route still finish and are acknowledged",
            ),
            ActionSpec::new("resume", "Pulls from JetStream again after `pause`"),
        ]
    }

    /// `pause` and `resume`, both idempotent: `{"paused": bool}`, the state after
    /// the call.
    fn invoke(&self, action: &str, _params: &Map<String, Value>) -> Result<Value, PluginError> {
        match action {
            "pause" => {
                self.set_paused(true);
            }
            "resume" => {
                self.set_paused(false);
            }
            other => {
                return Err(PluginError::new(format!(
                    "{} has no action `{other}`",
                    Self::NAME
                )))
            }
        }
        Ok(json!({ "paused": self.is_paused() }))
    }
}

impl Runnable for NatsEvents {
    async fn run(&self, ctx: RunContext) -> Result<(), PluginError> {
        let acks_rx = lock(&self.acks_rx)
            .take()
            .ok_or_else(|| PluginError::new("run called twice"))?;
        let result = self.run_inner(ctx, acks_rx).await;
        if let Err(error) = &result {
            *lock(&self.failure) = Some(error.to_string());
        }
        result
    }

    fn cleanup(&self, msg: &EventMessage) -> Result<(), PluginError> {
        let token = msg.source_token();
        if token == 0 {
            return Err(PluginError::new("message was not produced by nats.events"));
        }
        let cmd = if msg.phase() == Phase::CLEANUP {
            Command::Done { token }
        } else {
            Command::Failed {
                token,
                dropped: Dropped {
                    msg_id: msg.msg_id().to_string(),
                    history: msg.history().iter().map(|h| h.to_json()).collect(),
                },
            }
        };
        // Never blocks: the ack task does the network work on the plugin's runtime.
        self.acks.send(cmd).map_err(|_| {
            PluginError::new("cleanup after shutdown; JetStream will redeliver the message")
        })
    }

    async fn shutdown(&self) -> Result<(), PluginError> {
        let task = lock(&self.ack_task).take();
        if let Some(task) = task {
            let (done, finished) = oneshot::channel();
            if self.acks.send(Command::Drain(done)).is_ok() {
                let _ = finished.await;
            }
            if let Err(error) = task.await {
                tracing::warn!(%error, "The acknowledgement task failed.");
            }
        }
        let client = lock(&self.client).take();
        if let Some(client) = client {
            match tokio::time::timeout(DRAIN_TIMEOUT, async {
                client.flush().await.ok();
                client.drain().await
            })
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "Draining the NATS connection failed."),
                Err(_) => tracing::warn!("The NATS connection did not drain within 5 s."),
            }
        }
        let s = self.stats();
        tracing::info!(
            received = s.received,
            acked = s.acked,
            naked = s.naked,
            invalid = s.invalid,
            dead_lettered = s.dead_lettered,
            "nats.events stopped."
        );
        Ok(())
    }
}

export_plugins!(
    runnable NatsEvents,
    publisher NatsPublisher,
    discovery discovery::NatsDiscovery,
);
