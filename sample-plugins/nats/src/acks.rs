//! Acknowledgement bookkeeping: which JetStream message each event came from, and
//! what to tell JetStream once all of a message's events are back.
//!
//! One task owns the map from source token to JetStream message. The pull loop
//! registers each message before its events go to the host; the host's cleanup (on a
//! host thread) sends each event's outcome down the same unbounded channel, so it
//! never blocks and the registration is always seen first. When the last event of a
//! message is back, the task acks it (all succeeded), naks it with a delay (one was
//! dropped), or, at the last allowed delivery, publishes it to the dead-letter
//! subject and terminates it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use gordon_plugin_api::tokio::sync::{mpsc, oneshot};
use gordon_plugin_api::tokio::task::JoinSet;
use gordon_plugin_api::{tokio, tracing, Metrics};
use serde_json::{json, Value};

use crate::config::NakBackoff;

/// Bits of a source token that hold the event's index within its message body.
pub const INDEX_BITS: u32 = 20;
/// The most events one message body may hold.
pub const MAX_EVENTS_PER_MESSAGE: usize = 1 << INDEX_BITS;

/// The token of the `index`-th event of the message numbered `serial`.
pub fn token(serial: u64, index: usize) -> u64 {
    (serial << INDEX_BITS) | index as u64
}

/// Splits a token into the message serial and the event index.
pub fn split_token(token: u64) -> (u64, usize) {
    (
        token >> INDEX_BITS,
        (token & (MAX_EVENTS_PER_MESSAGE as u64 - 1)) as usize,
    )
}

/// Counters of what the source did, also sent as metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub invalid: AtomicU64,
    pub acked: AtomicU64,
    pub naked: AtomicU64,
    pub dead_lettered: AtomicU64,
}

/// A snapshot of the source's counters, in JetStream messages (not events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages pulled from JetStream (redeliveries included).
    pub received: u64,
    /// Messages rejected by the event validator (terminated, never routed).
    pub invalid: u64,
    /// Messages acknowledged after every event of theirs finished its route.
    pub acked: u64,
    /// Messages rejected for redelivery (a handler failed, or shutdown).
    pub naked: u64,
    /// Messages published to the dead-letter subject and terminated.
    pub dead_lettered: u64,
}

impl Counters {
    /// A snapshot.
    pub fn snapshot(&self) -> Stats {
        Stats {
            received: self.received.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            naked: self.naked.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

/// What the source counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Received,
    Invalid,
    Acked,
    Naked,
    DeadLettered,
}

impl Counter {
    /// The metric's name.
    pub fn metric(self) -> &'static str {
        match self {
            Counter::Received => "nats.received",
            Counter::Invalid => "nats.invalid",
            Counter::Acked => "nats.acked",
            Counter::Naked => "nats.naked",
            Counter::DeadLettered => "nats.dead_lettered",
        }
    }
}

/// Counts one in `counters` and sends the metric, tagged with the stream.
pub fn count(counters: &Counters, metrics: &Metrics, stream: &str, what: Counter) {
    let counter = match what {
        Counter::Received => &counters.received,
        Counter::Invalid => &counters.invalid,
        Counter::Acked => &counters.acked,
        Counter::Naked => &counters.naked,
        Counter::DeadLettered => &counters.dead_lettered,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    metrics.incr(what.metric(), 1.0, &[("stream", stream)]);
}

/// An event that failed its route.
#[derive(Debug)]
pub struct Dropped {
    pub msg_id: String,
    /// The event's history entries, as JSON objects.
    pub history: Vec<Value>,
}

/// What the pull loop and the host's cleanup tell the ack task.
pub enum Command {
    /// A message whose `events` events are about to go to the host.
    Track {
        serial: u64,
        message: Box<jetstream::Message>,
        events: usize,
    },
    /// An event finished its route successfully.
    Done { token: u64 },
    /// An event failed its route.
    Failed { token: u64, dropped: Dropped },
    /// An event never reached the host (intake closed).
    Undelivered { token: u64 },
    /// Shutdown: finish what is queued and in flight, reject what never came back,
    /// then answer.
    Drain(oneshot::Sender<()>),
}

struct Pending {
    message: Box<jetstream::Message>,
    left: usize,
    dropped: Vec<(usize, Dropped)>,
    undelivered: bool,
}

/// What the ack task needs to know.
pub struct Settings {
    pub stream: String,
    pub max_deliver: Arc<AtomicU64>,
    pub backoff: NakBackoff,
    pub dead_letter_subject: Option<String>,
    pub counters: Arc<Counters>,
    pub metrics: Metrics,
    /// The connection, for dead letters no stream captures.
    pub client: async_nats::Client,
    /// JetStream on that connection, for dead letters a stream captures.
    pub js: jetstream::Context,
}

/// The ack task: runs until it is asked to drain or every sender is gone.
pub async fn run(settings: Settings, mut rx: mpsc::UnboundedReceiver<Command>) {
    let settings = Arc::new(settings);
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut tasks: JoinSet<()> = JoinSet::new();
    while let Some(cmd) = rx.recv().await {
        // Reap finished dead-letter tasks as we go.
        while tasks.try_join_next().is_some() {}
        match cmd {
            Command::Track {
                serial,
                message,
                events,
            } => {
                pending.insert(
                    serial,
                    Pending {
                        message,
                        left: events,
                        dropped: Vec::new(),
                        undelivered: false,
                    },
                );
            }
            Command::Done { token } => {
                settle(&mut pending, token, None, false, &settings, &mut tasks).await
            }
            Command::Failed { token, dropped } => {
                settle(
                    &mut pending,
                    token,
                    Some(dropped),
                    false,
                    &settings,
                    &mut tasks,
                )
                .await;
            }
            Command::Undelivered { token } => {
                settle(&mut pending, token, None, true, &settings, &mut tasks).await;
            }
            Command::Drain(done) => {
                // Commands queued before the drain request were handled above; reject
                // what never came back, so another consumer gets it now rather than
                // after `ack_wait`.
                for (_, p) in pending.drain() {
                    nak(&p.message, Duration::ZERO, &settings).await;
                }
                while tasks.join_next().await.is_some() {}
                let _ = done.send(());
                return;
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn settle(
    pending: &mut HashMap<u64, Pending>,
    token: u64,
    dropped: Option<Dropped>,
    undelivered: bool,
    settings: &Arc<Settings>,
    tasks: &mut JoinSet<()>,
) {
    let (serial, index) = split_token(token);
    let Some(p) = pending.get_mut(&serial) else {
        tracing::debug!(token, "Cleanup for an unknown message (already settled).");
        return;
    };
    p.left = p.left.saturating_sub(1);
    if let Some(d) = dropped {
        p.dropped.push((index, d));
    }
    p.undelivered |= undelivered;
    if p.left > 0 {
        return;
    }
    let Some(p) = pending.remove(&serial) else {
        return;
    };
    if p.dropped.is_empty() && !p.undelivered {
        match p.message.ack_with(AckKind::Ack).await {
            Ok(()) => count(
                &settings.counters,
                &settings.metrics,
                &settings.stream,
                Counter::Acked,
            ),
            Err(error) => {
                tracing::warn!(%error, "Cannot acknowledge a message; JetStream will redeliver it.");
            }
        }
        return;
    }
    if p.dropped.is_empty() {
        // Only undelivered events (shutdown): hand it back at once.
        nak(&p.message, Duration::ZERO, settings).await;
        return;
    }
    let delivered = p
        .message
        .info()
        .map(|i| u64::try_from(i.delivered).unwrap_or(1))
        .unwrap_or(1);
    let max = settings.max_deliver.load(Ordering::Relaxed);
    if delivered >= max {
        let settings = Arc::clone(settings);
        tasks.spawn(dead_letter(p.message, p.dropped, delivered, settings));
    } else {
        nak(&p.message, settings.backoff.delay(delivered), settings).await;
    }
}

async fn nak(message: &jetstream::Message, delay: Duration, settings: &Settings) {
    let kind = AckKind::Nak((!delay.is_zero()).then_some(delay));
    match message.ack_with(kind).await {
        Ok(()) => count(
            &settings.counters,
            &settings.metrics,
            &settings.stream,
            Counter::Naked,
        ),
        Err(error) => tracing::warn!(
            %error,
            "Cannot reject a message; JetStream will redeliver it after `ack_wait`."
        ),
    }
}

/// The dead-letter document: the original payload, what happened to each failed
/// event, and why.
pub fn dead_letter_body(
    payload: &[u8],
    dropped: &[(usize, Dropped)],
    info: &DeadLetterInfo<'_>,
) -> Value {
    let payload: Value = serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    let mut history = Vec::new();
    for (index, d) in dropped {
        for entry in &d.history {
            let mut entry = entry.clone();
            if let Value::Object(obj) = &mut entry {
                obj.insert("msg_id".into(), d.msg_id.clone().into());
                obj.insert("event".into(), (*index).into());
            }
            history.push(entry);
        }
    }
    let reason = dropped
        .first()
        .and_then(|(_, d)| d.history.last())
        .and_then(|e| e["message"].as_str())
        .unwrap_or("a handler failed")
        .to_owned();
    json!({
        "payload": payload,
        "history": history,
        "reason": reason,
        "stream": info.stream,
        "stream_sequence": info.stream_sequence,
        "subject": info.subject,
        "deliveries": info.deliveries,
    })
}

/// Where a dead letter came from.
pub struct DeadLetterInfo<'a> {
    pub stream: &'a str,
    pub stream_sequence: u64,
    pub subject: &'a str,
    pub deliveries: u64,
}

/// Publishes a message that failed its last delivery to the dead-letter subject,
/// then terminates it. Retries the publish a few times; if it still fails, the
/// message is left unacknowledged (JetStream keeps it, undelivered) rather than lost.
async fn dead_letter(
    message: Box<jetstream::Message>,
    dropped: Vec<(usize, Dropped)>,
    delivered: u64,
    settings: Arc<Settings>,
) {
    let (stream_sequence, stream) = message
        .info()
        .map(|i| (i.stream_sequence, i.stream.to_owned()))
        .unwrap_or((0, settings.stream.clone()));
    let subject = message.message.subject.to_string();
    let Some(dead_subject) = settings.dead_letter_subject.as_deref() else {
        tracing::error!(
            stream = %stream,
            stream_sequence,
            delivered,
            "Message failed its last delivery and no `dead_letter_subject` is set; terminating it."
        );
        terminate(&message).await;
        return;
    };
    let info = DeadLetterInfo {
        stream: &stream,
        stream_sequence,
        subject: &subject,
        deliveries: delivered,
    };
    let body = dead_letter_body(&message.message.payload, &dropped, &info);
    let body = bytes::Bytes::from(body.to_string());
    let mut headers = HeaderMap::new();
    headers.insert("Gordon-Stream", stream.as_str());
    headers.insert(
        "Gordon-Stream-Sequence",
        stream_sequence.to_string().as_str(),
    );
    headers.insert("Gordon-Subject", subject.as_str());
    headers.insert("Gordon-Deliveries", delivered.to_string().as_str());
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=5 {
        match publish(&settings, dead_subject, &headers, &body).await {
            Ok(persisted) => {
                tracing::warn!(
                    stream = %stream,
                    stream_sequence,
                    delivered,
                    dead_letter_subject = dead_subject,
                    persisted,
                    "Message failed its last delivery; sent to the dead-letter subject."
                );
                count(
                    &settings.counters,
                    &settings.metrics,
                    &settings.stream,
                    Counter::DeadLettered,
                );
                terminate(&message).await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, attempt, dead_letter_subject = dead_subject, "Cannot publish a dead letter.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::error!(
        stream = %stream,
        stream_sequence,
        "Giving up on the dead-letter publish; the message stays in the stream, unacknowledged."
    );
}

/// Publishes through JetStream (waiting for the stream's acknowledgement) when a
/// stream captures the subject; otherwise as a plain NATS message (only live
/// subscribers get it). Returns whether a stream stored it.
async fn publish(
    settings: &Settings,
    subject: &str,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> Result<bool, String> {
    use async_nats::jetstream::context::GetStreamByNameErrorKind;
    match settings.js.stream_by_subject(subject).await {
        Ok(_) => {
            let sent = settings
                .js
                .publish_with_headers(subject.to_owned(), headers.clone(), body.clone())
                .await
                .map_err(|e| e.to_string())?;
            sent.await.map_err(|e| e.to_string())?;
            Ok(true)
        }
        Err(e) if matches!(e.kind(), GetStreamByNameErrorKind::NotFound) => {
            let client = &settings.client;
            client
                .publish_with_headers(subject.to_owned(), headers.clone(), body.clone())
                .await
                .map_err(|e| e.to_string())?;
            client.flush().await.map_err(|e| e.to_string())?;
            Ok(false)
        }
        Err(e) => Err(format!("cannot look up the stream of {subject}: {e}")),
    }
}

async fn terminate(message: &jetstream::Message) {
    if let Err(error) = message.ack_with(AckKind::Term).await {
        tracing::warn!(%error, "Cannot terminate a message.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = token(12345, 678);
        assert_eq!(split_token(t), (12345, 678));
        assert_eq!(split_token(token(1, 0)), (1, 0));
        assert_eq!(
            split_token(token(7, MAX_EVENTS_PER_MESSAGE - 1)),
            (7, MAX_EVENTS_PER_MESSAGE - 1)
        );
    }

    #[test]
    fn dead_letter_body_keeps_payload_history_and_reason() {
        let dropped = vec![(
            1,
            Dropped {
                msg_id: "id-1".into(),
                history: vec![
                    json!({"timestamp": "t0", "plugin": "router", "message": "Updated phase from publish to drop"}),
                    json!({"timestamp": "t1", "plugin": "router", "message": "dns.publish failed: refused"}),
                ],
            },
        )];
        let info = DeadLetterInfo {
            stream: "EVENTS",
            stream_sequence: 9,
            subject: "events.dns",
            deliveries: 5,
        };
        let body = dead_letter_body(br#"[{"a":1},{"b":2}]"#, &dropped, &info);
        assert_eq!(body["payload"][1]["b"], 2);
        assert_eq!(body["reason"], "dns.publish failed: refused");
        assert_eq!(body["history"][1]["msg_id"], "id-1");
        assert_eq!(body["history"][1]["event"], 1);
        assert_eq!(body["stream_sequence"], 9);
        let raw = dead_letter_body(b"not json", &[], &info);
        assert_eq!(raw["payload"], "not json");
        assert_eq!(raw["reason"], "a handler failed");
    }
}
