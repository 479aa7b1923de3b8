//! Connecting to NATS, finding (or creating) the stream and the durable pull
//! consumer, and pulling messages into the host's route.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, ErrorCode};
use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};
use futures_util::{FutureExt, StreamExt};
use gordon_plugin_api::event_json::parse_events;
use gordon_plugin_api::tokio::sync::{mpsc, watch};
use gordon_plugin_api::{
    tokio, tracing, EventMessage, Metrics, Phase, PluginError, RunContext, Shutdown,
};

use crate::acks::{self, Command, Counter, Counters, MAX_EVENTS_PER_MESSAGE};
use crate::config::{redact_url, NatsEventsConfig};

/// How long a pull request stays open on the server.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// How often the server confirms an idle pull request is alive.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
/// Timeout of one connection attempt and of JetStream API requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A secret from `credentials_file` or `credentials_env`; never printed.
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Doubling delays between retries, reset after progress.
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `first`, doubles up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            next: first,
            first,
            max,
        }
    }
    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Reads the secret of `credentials_file` or `credentials_env` (keys shared by the
/// package's plugins), so that a missing file or variable fails start-up with an
/// error naming the key.
pub fn load_secret(
    credentials_file: Option<&str>,
    credentials_env: Option<&str>,
) -> Result<Option<Secret>, PluginError> {
    if let Some(path) = credentials_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PluginError::new(format!("cannot read `credentials_file` {path}: {e}")))?;
        Ok(Some(Secret(text)))
    } else if let Some(var) = credentials_env {
        let value = std::env::var(var).map_err(|_| {
            PluginError::new(format!(
                "`credentials_env`: environment variable {var} is not set (or not UTF-8)"
            ))
        })?;
        if value.trim().is_empty() {
            return Err(PluginError::new(format!(
                "`credentials_env`: environment variable {var} is empty"
            )));
        }
        Ok(Some(Secret(value.trim().to_owned())))
    } else {
        Ok(None)
    }
}

/// Builds the connection options, with credentials if configured; `client_name` is
/// what the server shows for the connection.
fn options(secret: Option<&Secret>, client_name: &str) -> Result<ConnectOptions, PluginError> {
    let opts = match secret {
        None => ConnectOptions::new(),
        Some(Secret(s)) if s.contains("BEGIN NATS USER JWT") => ConnectOptions::with_credentials(s)
            .map_err(|_| {
                PluginError::new("the NATS credentials are not a valid .creds document")
            })?,
        Some(Secret(s)) if s.starts_with("SU") && s.len() == 58 => {
            ConnectOptions::with_nkey(s.clone())
        }
        Some(Secret(s)) => ConnectOptions::with_token(s.clone()),
    };
    Ok(opts
        .name(client_name)
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let exp = u32::try_from(attempts.min(6)).unwrap_or(6);
            Duration::from_millis(50 * 2u64.pow(exp)).min(Duration::from_secs(2))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => {
                    tracing::warn!("Disconnected from NATS; reconnecting.");
                }
                async_nats::Event::Connected => tracing::info!("Connected to NATS."),
                async_nats::Event::LameDuckMode => {
                    tracing::warn!("The NATS server is entering lame duck mode.");
                }
                async_nats::Event::SlowConsumer(sid) => {
                    tracing::warn!(
                        sid,
                        "NATS slow consumer: messages were dropped by the client."
                    );
                }
                async_nats::Event::ServerError(error) => {
                    tracing::warn!(%error, "NATS server error.");
                }
                async_nats::Event::ClientError(error) => {
                    tracing::warn!(%error, "NATS client error.");
                }
                other => tracing::debug!(event = %other, "NATS connection event."),
            }
        }))
}

/// Connects, retrying with backoff until it succeeds or shutdown is requested
/// (`Ok(None)`). Bad credentials or addresses are errors: retrying cannot fix them.
pub async fn connect(
    cfg: &NatsEventsConfig,
    secret: Option<&Secret>,
    shutdown: &Shutdown,
) -> Result<Option<async_nats::Client>, PluginError> {
    let outcome = connect_until(
        &cfg.servers,
        secret,
        "gordon nats.events",
        shutdown.requested(),
    )
    .await?;
    Ok(match outcome {
        Connected::Client(client) => Some(client),
        Connected::GaveUp { .. } => None,
    })
}

/// What [`connect_until`] ended with.
pub enum Connected {
    /// A connection.
    Client(async_nats::Client),
    /// `give_up` completed first.
    GaveUp {
        /// Connection attempts made.
        attempts: u32,
        /// Why the last one failed (empty if none finished).
        last_error: String,
    },
}

/// Connects to `servers`, retrying with backoff until it succeeds or `give_up`
/// completes (which also cuts an attempt short). Bad credentials or addresses are
/// errors: retrying cannot fix them.
pub async fn connect_until(
    servers: &[String],
    secret: Option<&Secret>,
    client_name: &str,
    give_up: impl std::future::Future<Output = ()>,
) -> Result<Connected, PluginError> {
    let addrs: Vec<ServerAddr> = servers
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| PluginError::new(format!("`servers`: {:?}: {e}", redact_url(s))))
        })
        .collect::<Result<_, _>>()?;
    let shown = shown_servers(servers);
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut attempt = 0u32;
    let mut last_error = String::new();
    tokio::pin!(give_up);
    loop {
        attempt += 1;
        let connecting = options(secret, client_name)?.connect(addrs.clone());
        let result = tokio::select! {
            _ = &mut give_up => return Ok(Connected::GaveUp { attempts: attempt - 1, last_error }),
            r = connecting => r,
        };
        match result {
            Ok(client) => {
                tracing::debug!(servers = ?shown, "Connected to NATS.");
                return Ok(Connected::Client(client));
            }
            Err(error)
                if matches!(
                    error.kind(),
                    ConnectErrorKind::Authentication
                        | ConnectErrorKind::AuthorizationViolation
                        | ConnectErrorKind::ServerParse
                ) =>
            {
                return Err(PluginError::new(format!(
                    "cannot connect to NATS {shown:?}: {error} (check `servers` and the credentials)"
                )));
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    servers = ?shown,
                    attempt,
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "Cannot connect to NATS; retrying."
                );
                last_error = error.to_string();
                tokio::select! {
                    _ = &mut give_up => return Ok(Connected::GaveUp { attempts: attempt, last_error }),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The server URLs without passwords, for logs and errors.
pub fn shown_servers(servers: &[String]) -> Vec<String> {
    servers.iter().map(|s| redact_url(s)).collect()
}

/// Why the consumer could not be set up.
pub enum SetupError {
    /// Configuration does not match the server (missing stream or consumer with
    /// `create = false`, a push consumer, another filter subject): `run` fails.
    Fatal(String),
    /// The server is unreachable or busy: retry.
    Transient(String),
}

/// Finds the stream and the durable pull consumer, creating them when missing and
/// `create` is set. Stores the effective `max_deliver` (the server's, when lower).
pub async fn setup(
    js: &jetstream::Context,
    cfg: &NatsEventsConfig,
    max_deliver: &AtomicU64,
) -> Result<PullConsumer, SetupError> {
    use SetupError::{Fatal, Transient};
    let name = &cfg.stream;
    let stream = match js.get_stream(name).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            if !cfg.create {
                return Err(Fatal(format!(
                    "stream `{name}` (key `stream`) does not exist on the JetStream server; create it, or set `create = true`"
                )));
            }
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![cfg.subject.clone()],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                ..Default::default()
            };
            let created = js.create_stream(config).await.map_err(|e| {
                let msg = format!("cannot create stream `{name}` (key `stream`): {e}");
                match e.kind() {
                    CreateStreamErrorKind::JetStream(j) if !already_exists(&j) => Fatal(msg),
                    _ => Transient(msg),
                }
            })?;
            tracing::info!(stream = %name, subject = %cfg.subject, "Created the JetStream stream (work-queue retention).");
            created
        }
        Err(e) => return Err(Transient(format!("cannot look up stream `{name}`: {e}"))),
    };
    let durable = &cfg.durable;
    use async_nats::jetstream::context::ConsumerInfoErrorKind as Kind;
    match stream.consumer_info(durable).await {
        Ok(info) => {
            let c = &info.config;
            if c.deliver_subject.is_some() {
                return Err(Fatal(format!(
                    "consumer `{durable}` (key `durable`) on stream `{name}` is a push consumer; nats.events needs a pull consumer"
                )));
            }
            if c.filter_subject != cfg.subject {
                return Err(Fatal(format!(
                    "consumer `{durable}` on stream `{name}` filters subject {:?}, but `subject` is {:?}",
                    c.filter_subject, cfg.subject
                )));
            }
            if c.ack_policy != AckPolicy::Explicit {
                return Err(Fatal(format!(
                    "consumer `{durable}` on stream `{name}` does not use explicit acknowledgements"
                )));
            }
            let ours = u64::from(cfg.max_deliver);
            let effective = match u64::try_from(c.max_deliver) {
                Ok(theirs) if theirs > 0 && theirs < ours => {
                    tracing::warn!(
                        consumer = %durable,
                        server_max_deliver = theirs,
                        max_deliver = ours,
                        "The consumer allows fewer deliveries than `max_deliver`; dead-lettering after the server's limit."
                    );
                    theirs
                }
                _ => ours,
            };
            max_deliver.store(effective, Ordering::Relaxed);
            if (c.ack_wait.as_secs_f64() - cfg.ack_wait).abs() > 0.001 {
                tracing::warn!(
                    consumer = %durable,
                    server_ack_wait_s = c.ack_wait.as_secs_f64(),
                    ack_wait_s = cfg.ack_wait,
                    "The existing consumer's ack wait differs from `ack_wait`; the server's applies."
                );
            }
        }
        Err(e) if e.kind() == Kind::NotFound => {
            if !cfg.create {
                return Err(Fatal(format!(
                    "durable consumer `{durable}` (key `durable`) does not exist on stream `{name}`; create it, or set `create = true`"
                )));
            }
            let config = pull::Config {
                durable_name: Some(durable.clone()),
                description: Some("gordon nats.events".into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs_f64(cfg.ack_wait),
                max_deliver: i64::from(cfg.max_deliver),
                filter_subject: cfg.subject.clone(),
                max_ack_pending: i64::try_from(cfg.batch.saturating_mul(8).max(1000))
                    .unwrap_or(i64::MAX),
                ..Default::default()
            };
            stream.create_consumer(config).await.map_err(|e| {
                let msg = format!(
                    "cannot create consumer `{durable}` (key `durable`) on stream `{name}`: {e}"
                );
                match e.kind() {
                    ConsumerErrorKind::JetStream(j) if !already_exists(&j) => Fatal(msg),
                    _ => Transient(msg),
                }
            })?;
            max_deliver.store(u64::from(cfg.max_deliver), Ordering::Relaxed);
            tracing::info!(stream = %name, consumer = %durable, "Created the durable pull consumer.");
        }
        Err(e) => {
            return Err(Transient(format!(
                "cannot look up consumer `{durable}` on stream `{name}`: {e}"
            )))
        }
    }
    stream
        .get_consumer::<pull::Config>(durable)
        .await
        .map_err(|e| Transient(format!("cannot open consumer `{durable}`: {e}")))
}

/// Whether the server refused to create something because it appeared meanwhile
/// (another process created it first): retrying finds it.
fn already_exists(e: &jetstream::Error) -> bool {
    matches!(
        e.error_code(),
        ErrorCode::STREAM_NAME_EXIST
            | ErrorCode::CONSUMER_NAME_EXIST
            | ErrorCode::CONSUMER_ALREADY_EXISTS
    )
}

/// Why pulling stopped.
pub enum Ended {
    /// Shutdown was requested.
    Shutdown,
    /// The source was paused (action `pause`).
    Paused,
    /// The host stopped intake.
    Closed,
    /// The pull stream failed; set up again. `progressed`: messages arrived first.
    Restart { reason: String, progressed: bool },
}

/// What the pull loop uses.
pub struct Puller<'a> {
    pub cfg: &'a NatsEventsConfig,
    pub ctx: &'a RunContext,
    pub acks: &'a mpsc::UnboundedSender<Command>,
    pub counters: &'a Counters,
    pub metrics: &'a Metrics,
    pub phase: Phase,
    pub max_age: Option<Duration>,
    /// The last message serial handed out (see [`acks::token`]).
    pub serial: &'a mut u64,
    /// Whether the source is paused (actions `pause` and `resume`).
    pub paused: watch::Receiver<bool>,
}

impl Puller<'_> {
    /// Pulls until shutdown, a pause, closed intake or a pull error.
    ///
    /// A pause drops the pull subscription, so no new message is pulled, after
    /// handing the host what has already arrived; messages the server was sending
    /// at that moment are redelivered after the consumer's ack wait. Events
    /// already in the route finish and are acknowledged as usual.
    pub async fn consume(&mut self, consumer: &PullConsumer) -> Ended {
        if *self.paused.borrow_and_update() {
            return Ended::Paused;
        }
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(self.cfg.batch)
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                return Ended::Restart {
                    reason: format!("cannot start pulling: {e}"),
                    progressed: false,
                }
            }
        };
        let mut progressed = false;
        loop {
            let first = tokio::select! {
                biased;
                _ = self.ctx.shutdown.requested() => return Ended::Shutdown,
                _ = self.paused.wait_for(|paused| *paused) => None,
                next = messages.next() => Some(next),
            };
            let Some(first) = first else {
                let mut arrived = Vec::new();
                while let Some(Some(Ok(message))) = messages.next().now_or_never() {
                    arrived.push(message);
                }
                if !arrived.is_empty() && self.deliver(arrived).await.is_err() {
                    return Ended::Closed;
                }
                return Ended::Paused;
            };
            let mut pulled = Vec::new();
            let mut failure = None;
            let mut item = first;
            loop {
                match item {
                    Some(Ok(message)) => pulled.push(message),
                    Some(Err(e)) => {
                        failure = Some(format!("pull failed: {e}"));
                        break;
                    }
                    None => {
                        failure = Some("the pull stream ended".to_owned());
                        break;
                    }
                }
                if pulled.len() >= self.cfg.batch {
                    break;
                }
                // Take what has already arrived, without waiting, to send in one batch.
                match messages.next().now_or_never() {
                    Some(next) => item = next,
                    None => break,
                }
            }
            if !pulled.is_empty() {
                progressed = true;
                if self.deliver(pulled).await.is_err() {
                    return Ended::Closed;
                }
            }
            if let Some(reason) = failure {
                return Ended::Restart { reason, progressed };
            }
        }
    }

    /// Validates the pulled messages and sends their events to the host. `Err` when
    /// the host has stopped intake.
    async fn deliver(&mut self, pulled: Vec<jetstream::Message>) -> Result<(), ()> {
        let mut events: Vec<EventMessage> = Vec::with_capacity(pulled.len());
        for message in pulled {
            acks::count(
                self.counters,
                self.metrics,
                &self.cfg.stream,
                Counter::Received,
            );
            let parsed = parse_events(&message.message.payload, self.phase, self.max_age)
                .map_err(|e| e.0)
                .and_then(|evs| {
                    if evs.len() > MAX_EVENTS_PER_MESSAGE {
                        Err(format!(
                            "{} events in one message; at most {MAX_EVENTS_PER_MESSAGE}",
                            evs.len()
                        ))
                    } else {
                        Ok(evs)
                    }
                });
            match parsed {
                Ok(mut evs) => {
                    *self.serial += 1;
                    for (i, ev) in evs.iter_mut().enumerate() {
                        ev.set_source_token(acks::token(*self.serial, i));
                    }
                    // Registered before the events reach the host, so their cleanup
                    // always finds it.
                    let _ = self.acks.send(Command::Track {
                        serial: *self.serial,
                        events: evs.len(),
                        message: Box::new(message),
                    });
                    events.append(&mut evs);
                }
                Err(reason) => {
                    let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
                    tracing::warn!(
                        stream = %self.cfg.stream,
                        stream_sequence = seq,
                        subject = %message.message.subject,
                        error = %reason,
                        "Invalid event message; terminating it (it will not be redelivered)."
                    );
                    acks::count(
                        self.counters,
                        self.metrics,
                        &self.cfg.stream,
                        Counter::Invalid,
                    );
                    if let Err(error) = message.ack_with(AckKind::Term).await {
                        tracing::warn!(%error, "Cannot terminate an invalid message.");
                    }
                }
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        match self.ctx.events.send_batch(events).await {
            Ok(()) => Ok(()),
            Err(closed) => {
                for ev in &closed.0 {
                    let _ = self.acks.send(Command::Undelivered {
                        token: ev.source_token(),
                    });
                }
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.next_delay(), Duration::from_millis(200));
        assert_eq!(b.next_delay(), Duration::from_millis(350));
        assert_eq!(b.next_delay(), Duration::from_millis(350));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "Secret(***)");
    }
}
