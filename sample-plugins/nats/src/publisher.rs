//! `nats.publisher`: the janitor's publisher. Publishes each change, in the event
//! JSON format, to a JetStream subject and waits for the stream's acknowledgements.
//!
//! One run: connect (or reuse the connection of the previous run), check that a
//! stream captures `subject`, then publish while reading the changes, keeping up to
//! `max_in_flight` publishes waiting for their acknowledgement. After the first
//! publish that is not confirmed, nothing more is sent (the server is gone, or no
//! stream stores the subject: sending more would only fail the same way); the rest
//! of the changes are still read, so the run's error can say how many were lost and
//! the reconciler is not cut off mid-send.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::context::{
    ContextBuilder, GetStreamByNameErrorKind, PublishError, PublishErrorKind,
};
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use gordon_plugin_api::event_json::parse_events;
use gordon_plugin_api::{
    tokio, tracing, ConfigKey, EventMessage, Inbox, Metrics, Phase, Plugin, PluginContext,
    PluginError, Publisher,
};
use serde_json::Value;

use crate::config::{self, NatsPublisherConfig};
use crate::consumer::{self, Connected, Secret};

/// How long `cleanup` waits for the connection to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Room left in a message for the array's brackets and commas.
const ARRAY_OVERHEAD: usize = 2;

/// What `nats.publisher` has done, over every run so far, in changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Runs started.
    pub runs: u64,
    /// Changes the stream acknowledged.
    pub published: u64,
    /// Changes not confirmed: rejected, timed out, never sent, or not valid events.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Totals {
    runs: AtomicU64,
    published: AtomicU64,
    failed: AtomicU64,
}

/// The `nats.publisher` janitor publisher.
pub struct NatsPublisher {
    cfg: NatsPublisherConfig,
    secret: Option<Secret>,
    metrics: Metrics,
    client: Mutex<Option<async_nats::Client>>,
    totals: Totals,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NatsPublisher {
    /// What the publisher has done so far.
    pub fn stats(&self) -> PublisherStats {
        PublisherStats {
            runs: self.totals.runs.load(Ordering::Relaxed),
            published: self.totals.published.load(Ordering::Relaxed),
            failed: self.totals.failed.load(Ordering::Relaxed),
        }
    }

    /// The connection of an earlier run if it is up, or a new one, retrying with
    /// backoff for `connect_timeout`.
    async fn client(&self) -> Result<async_nats::Client, String> {
        let existing = lock(&self.client).take();
        if let Some(client) = existing {
            if client.connection_state() == State::Connected {
                *lock(&self.client) = Some(client.clone());
                return Ok(client);
            }
            // Reconnecting on its own; start afresh, within `connect_timeout`.
            drop(client);
        }
        let limit = Duration::from_secs_f64(self.cfg.connect_timeout);
        let shown = consumer::shown_servers(&self.cfg.servers);
        let outcome = consumer::connect_until(
            &self.cfg.servers,
            self.secret.as_ref(),
            "gordon nats.publisher",
            tokio::time::sleep(limit),
        )
        .await
        .map_err(|e| e.to_string())?;
        match outcome {
            Connected::Client(client) => {
                *lock(&self.client) = Some(client.clone());
                Ok(client)
            }
            Connected::GaveUp {
                attempts,
                last_error,
            } => {
                let last = if last_error.is_empty() {
                    "the attempt did not finish".to_owned()
                } else {
                    last_error
                };
                Err(format!(
                    "cannot connect to NATS servers {shown:?} within {} s (key `connect_timeout`; {attempts} failed attempt(s), last: {last})",
                    self.cfg.connect_timeout
                ))
            }
        }
    }

    /// Reads what is left of `changes` so the error can count it, and fails the run.
    async fn abandon(
        &self,
        changes: &mut Inbox<EventMessage>,
        read: u64,
        why: String,
    ) -> PluginError {
        let mut total = read;
        while changes.recv().await.is_some() {
            total += 1;
        }
        self.count_failed(total);
        tracing::error!(
            subject = %self.cfg.subject,
            changes = total,
            error = %why,
            "No change was published."
        );
        PluginError::new(format!(
            "{why}; none of the {total} change(s) for subject `{}` were published",
            self.cfg.subject
        ))
    }

    fn count_failed(&self, n: u64) {
        if n > 0 {
            self.totals.failed.fetch_add(n, Ordering::Relaxed);
            self.metrics.incr(
                "nats.publish_failures",
                n as f64,
                &[("subject", self.cfg.subject.as_str())],
            );
        }
    }

    fn count_published(&self, n: u64) {
        if n > 0 {
            self.totals.published.fetch_add(n, Ordering::Relaxed);
            self.metrics.incr(
                "nats.published",
                n as f64,
                &[("subject", self.cfg.subject.as_str())],
            );
        }
    }
}

/// The event JSON `nats.events` consumes for one change: its `data` object, checked
/// with the same validator. A TTL of 0 ("not set") is left out, as the format wants.
pub fn event_body(change: &EventMessage) -> Result<Vec<u8>, String> {
    let mut json = change.to_json();
    let mut data = json.get_mut("data").map(Value::take).unwrap_or(Value::Null);
    if let Some(rr) = data
        .get_mut("resourceRecords")
        .and_then(Value::as_object_mut)
    {
        if rr.get("ttl").and_then(Value::as_u64) == Some(0) {
            rr.remove("ttl");
        }
    }
    let body = serde_json::to_vec(&data).map_err(|e| e.to_string())?;
    parse_events(&body, Phase::new("consume"), None).map_err(|e| e.0)?;
    Ok(body)
}

type AckFuture = BoxFuture<'static, (Result<PublishAck, PublishError>, u64)>;

/// One run's progress, in changes.
struct Run<'a> {
    plugin: &'a NatsPublisher,
    js: async_nats::jetstream::Context,
    in_flight: FuturesUnordered<AckFuture>,
    /// Changes read from the reconciler.
    read: u64,
    /// Changes the stream acknowledged.
    published: u64,
    /// JetStream messages acknowledged.
    messages: u64,
    /// Changes sent (or tried) but not acknowledged.
    failed: u64,
    /// Changes not sent after a failure stopped publishing.
    unsent: u64,
    /// Changes that are not valid events.
    invalid: u64,
    first_error: Option<String>,
    /// A publish failed in a way the next one would too: send nothing more.
    halted: bool,
    last_sequence: u64,
    /// Events waiting to go out as one array (`events_per_message` > 1).
    batch: Vec<u8>,
    batched: u64,
    max_payload: usize,
}

impl Run<'_> {
    fn error(&mut self, error: String) {
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }

    fn settle(&mut self, (result, n): (Result<PublishAck, PublishError>, u64)) {
        match result {
            Ok(ack) => {
                self.published += n;
                self.messages += 1;
                self.last_sequence = self.last_sequence.max(ack.sequence);
                self.plugin.count_published(n);
            }
            Err(e) => {
                self.failed += n;
                self.plugin.count_failed(n);
                if !self.halted {
                    tracing::warn!(
                        subject = %self.plugin.cfg.subject,
                        error = %e,
                        "A publish was not acknowledged; publishing no more changes in this run."
                    );
                }
                self.halted = true;
                self.error(describe(&e, &self.plugin.cfg));
            }
        }
    }

    /// Settles the acknowledgements that already arrived, without waiting.
    fn reap(&mut self) {
        while let Some(Some(done)) = self.in_flight.next().now_or_never() {
            self.settle(done);
        }
    }

    /// Sends one message of `n` changes, first waiting while `max_in_flight`
    /// publishes await their acknowledgement.
    async fn send(&mut self, body: Bytes, n: u64) {
        while self.in_flight.len() >= self.plugin.cfg.max_in_flight {
            match self.in_flight.next().await {
                Some(done) => self.settle(done),
                None => break,
            }
        }
        if self.halted {
            self.skip(n);
            return;
        }
        let subject = self.plugin.cfg.subject.clone();
        match self.js.publish(subject, body).await {
            Ok(ack) => self.in_flight.push(
                std::future::IntoFuture::into_future(ack)
                    .map(move |r| (r, n))
                    .boxed(),
            ),
            Err(e) => {
                // Too large for the server is this message's problem; anything else
                // (the connection is gone) would hit the next publish too.
                if e.kind() != PublishErrorKind::MaxPayloadExceeded {
                    self.halted = true;
                }
                tracing::warn!(subject = %self.plugin.cfg.subject, error = %e, changes = n, "Cannot publish.");
                self.failed += n;
                self.plugin.count_failed(n);
                self.error(describe(&e, &self.plugin.cfg));
            }
        }
    }

    fn skip(&mut self, n: u64) {
        self.unsent += n;
        self.plugin.count_failed(n);
    }

    /// Takes one change.
    async fn push(&mut self, change: &EventMessage) {
        self.read += 1;
        if self.halted {
            self.skip(1);
            return;
        }
        let body = match event_body(change) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(
                    msg_id = %change.msg_id(),
                    name = change.record().name(),
                    error = %e,
                    "The change is not a valid event; not publishing it."
                );
                self.invalid += 1;
                self.plugin.count_failed(1);
                self.error(format!(
                    "change {} ({}) is not a valid event: {e}",
                    change.msg_id(),
                    change.record().name()
                ));
                return;
            }
        };
        if self.plugin.cfg.events_per_message == 1 {
            self.send(body.into(), 1).await;
        } else {
            if self.batched > 0 && self.batch.len() + body.len() + ARRAY_OVERHEAD > self.max_payload
            {
                self.flush().await;
            }
            self.batch.push(if self.batched == 0 { b'[' } else { b',' });
            self.batch.extend_from_slice(&body);
            self.batched += 1;
            if self.batched >= self.plugin.cfg.events_per_message as u64 {
                self.flush().await;
            }
        }
        self.reap();
    }

    /// Sends the events waiting as one array.
    async fn flush(&mut self) {
        if self.batched == 0 {
            return;
        }
        let mut body = std::mem::take(&mut self.batch);
        body.push(b']');
        let n = std::mem::take(&mut self.batched);
        self.send(body.into(), n).await;
    }

    /// Sends what is batched and waits for every acknowledgement.
    async fn finish(&mut self) {
        if self.halted {
            let n = std::mem::take(&mut self.batched);
            self.batch.clear();
            self.skip(n);
        } else {
            self.flush().await;
        }
        while let Some(done) = self.in_flight.next().await {
            self.settle(done);
        }
    }
}

/// A publish error, said plainly.
fn describe(e: &PublishError, cfg: &NatsPublisherConfig) -> String {
    let subject = &cfg.subject;
    match e.kind() {
        PublishErrorKind::StreamNotFound => {
            format!("no JetStream stream captures subject `{subject}` (no responders)")
        }
        PublishErrorKind::TimedOut => format!(
            "no acknowledgement within {} s (key `timeout`): {e}",
            cfg.timeout
        ),
        _ => e.to_string(),
    }
}

impl Plugin for NatsPublisher {
    const NAME: &'static str = "nats.publisher";
    const DESCRIPTION: &'static str =
        "Publishes the janitor's changes to a NATS JetStream subject and waits for the acknowledgements";
    type Config = NatsPublisherConfig;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(cfg: &NatsPublisherConfig) -> Result<(), PluginError> {
        config::validate_publisher(cfg)
    }

    fn new(cfg: NatsPublisherConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let secret = consumer::load_secret(
            cfg.credentials_file.as_deref(),
            cfg.credentials_env.as_deref(),
        )?;
        Ok(NatsPublisher {
            cfg,
            secret,
            metrics: ctx.metrics(),
            client: Mutex::new(None),
            totals: Totals::default(),
        })
    }
}

impl Publisher for NatsPublisher {
    async fn run(&self, mut changes: Inbox<EventMessage>) -> Result<(), PluginError> {
        let started = Instant::now();
        self.totals.runs.fetch_add(1, Ordering::Relaxed);
        let subject = self.cfg.subject.as_str();
        let client = match self.client().await {
            Ok(client) => client,
            Err(why) => return Err(self.abandon(&mut changes, 0, why).await),
        };
        let timeout = Duration::from_secs_f64(self.cfg.timeout);
        let js = ContextBuilder::new()
            .timeout(timeout)
            .ack_timeout(timeout)
            .max_ack_inflight(self.cfg.max_in_flight)
            .build(client.clone());
        let stream = match js.stream_by_subject(subject).await {
            Ok(stream) => stream,
            Err(e) if e.kind() == GetStreamByNameErrorKind::NotFound => {
                let why = format!(
                    "no JetStream stream captures subject `{subject}` (key `subject`): create a stream whose subjects include it (nats.events with `create = true` creates one)"
                );
                return Err(self.abandon(&mut changes, 0, why).await);
            }
            Err(e) => {
                // No permission for the JetStream API, say: the acknowledgements
                // will tell whether a stream stores the changes.
                tracing::warn!(%subject, error = %e, "Cannot look up the stream of the subject; publishing anyway.");
                String::new()
            }
        };
        let mut run = Run {
            plugin: self,
            js,
            in_flight: FuturesUnordered::new(),
            read: 0,
            published: 0,
            messages: 0,
            failed: 0,
            unsent: 0,
            invalid: 0,
            first_error: None,
            halted: false,
            last_sequence: 0,
            batch: Vec::new(),
            batched: 0,
            max_payload: client.server_info().max_payload.max(1024),
        };
        while let Some(change) = changes.recv().await {
            run.push(&change).await;
        }
        run.finish().await;

        let lost = run.failed + run.unsent + run.invalid;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if lost == 0 {
            tracing::info!(
                %subject,
                %stream,
                changes = run.read,
                published = run.published,
                messages = run.messages,
                last_sequence = run.last_sequence,
                elapsed_ms,
                "Published the changes to JetStream; every one was acknowledged."
            );
            return Ok(());
        }
        let mut parts = Vec::new();
        if run.failed > 0 {
            parts.push(format!("{} not acknowledged", run.failed));
        }
        if run.unsent > 0 {
            parts.push(format!("{} not sent after the first failure", run.unsent));
        }
        if run.invalid > 0 {
            parts.push(format!("{} not valid events", run.invalid));
        }
        let first = run.first_error.take().unwrap_or_default();
        tracing::error!(
            %subject,
            %stream,
            changes = run.read,
            published = run.published,
            not_confirmed = lost,
            elapsed_ms,
            error = %first,
            "Some changes were not confirmed by JetStream."
        );
        Err(PluginError::new(format!(
            "{lost} of {} change(s) for subject `{subject}` were not confirmed by JetStream ({}); first error: {first}",
            run.read,
            parts.join(", ")
        )))
    }

    async fn cleanup(&self) -> Result<(), PluginError> {
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
            runs = s.runs,
            published = s.published,
            failed = s.failed,
            "nats.publisher stopped."
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gordon_plugin_api::{Action, RecordType, ResourceRecord};

    fn change(ttl: u32) -> EventMessage {
        let mut record = ResourceRecord::new("a.example.com.", RecordType::AAAA, ["::1", "::2"]);
        record.set_ttl(ttl);
        let mut m = EventMessage::new(Phase::new("reconcile"), Action::Deletions, record);
        m.set_extra_json(r#"{"zone":"example.com."}"#);
        m.update_phase(Phase::new("publish"), "test");
        m
    }

    #[test]
    fn the_body_is_the_event_object_without_an_unset_ttl() {
        let body: Value = serde_json::from_slice(&event_body(&change(0)).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "action": "deletions",
                "resourceRecords": {"name": "a.example.com.", "type": "AAAA", "rrdatas": ["::1", "::2"]},
                "zone": "example.com.",
            })
        );
        let body: Value = serde_json::from_slice(&event_body(&change(600)).unwrap()).unwrap();
        assert_eq!(body["resourceRecords"]["ttl"], 600);
        assert!(body.get("history").is_none() && body.get("msg_id").is_none());
    }

    #[test]
    fn a_change_the_consumer_would_refuse_is_refused() {
        let mut m = change(5); // below the format's minimum TTL
        assert!(event_body(&m).unwrap_err().contains("ttl"));
        m.record_mut().set_ttl(300);
        m.record_mut().set_rrdatas(Vec::<String>::new());
        assert!(event_body(&m).unwrap_err().contains("rrdatas"));
    }
}
