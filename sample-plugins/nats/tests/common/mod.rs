//! The tests' own NATS client: publishes events and reads consumer state, on a
//! runtime of its own (the runnable under test runs on the plugin's runtime).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, consumer, stream};
use gordon_plugin_api::testing::RunnableHarness;
use gordon_plugin_api::{EventMessage, Phase};
use gordon_plugin_nats::NatsEvents;
use gordon_test_servers::nats::Nats;

pub const STREAM: &str = "EVENTS";
pub const SUBJECT: &str = "events.>";
pub const DURABLE: &str = "gordon";

/// A test client.
pub struct Bus {
    pub rt: tokio::runtime::Runtime,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    published: AtomicU64,
}

impl Bus {
    /// Connects, retrying for up to 20 s.
    pub fn connect(nats: &Nats) -> Bus {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test client");
        let url = nats.url();
        let client = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                // A short request timeout: a publish lost while the server restarts
                // is retried soon.
                let options = async_nats::ConnectOptions::new()
                    .request_timeout(Some(Duration::from_millis(500)));
                match options.connect(url.as_str()).await {
                    Ok(c) => break c,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("test client: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot connect to {url}: {e}"),
                }
            }
        });
        let js = {
            let _in_runtime = rt.enter();
            let mut js = jetstream::new(client.clone());
            // Publish acks too: a publish lost in a restart is retried soon.
            js.set_timeout(Duration::from_secs(1));
            js
        };
        Bus {
            rt,
            client,
            js,
            published: AtomicU64::new(0),
        }
    }

    /// Creates a stream (limits retention, file storage).
    pub fn create_stream(&self, name: &str, subjects: &[&str]) {
        self.rt
            .block_on(self.js.create_stream(stream::Config {
                name: name.into(),
                subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            }))
            .unwrap_or_else(|e| panic!("cannot create stream {name}: {e}"));
    }

    /// Publishes through JetStream and waits for the stream's ack; retries for up to
    /// 30 s (the server may be restarting), with a message id so that a retry of a
    /// publish that did land is not stored twice. Returns the stream sequence.
    pub fn publish(&self, subject: &str, body: &str) -> u64 {
        let id = format!("test-{}", self.published.fetch_add(1, Ordering::Relaxed));
        self.rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let message = PublishMessage::build()
                    .payload(body.to_owned().into())
                    .message_id(&id);
                let sent = self.js.send_publish(subject.to_owned(), message).await;
                let acked = match sent {
                    Ok(ack) => ack.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match acked {
                    Ok(ack) => break ack.sequence,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("test publish: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot publish to {subject}: {e}"),
                }
            }
        })
    }

    /// Creates a durable pull consumer filtering `filter`.
    pub fn create_consumer(&self, stream_name: &str, durable: &str, filter: &str) {
        self.rt
            .block_on(async {
                let stream = self.js.get_stream(stream_name).await?;
                stream
                    .create_consumer(consumer::pull::Config {
                        durable_name: Some(durable.into()),
                        filter_subject: filter.into(),
                        ..Default::default()
                    })
                    .await?;
                Ok::<_, async_nats::Error>(())
            })
            .unwrap_or_else(|e| panic!("cannot create consumer {durable}: {e}"));
    }

    /// The consumer's state, if it exists.
    pub fn consumer_info(&self, stream_name: &str, durable: &str) -> Option<consumer::Info> {
        self.rt.block_on(async {
            let stream = self.js.get_stream(stream_name).await.ok()?;
            stream.consumer_info(durable).await.ok()
        })
    }

    /// Polls the consumer's state until `ready` holds (10 s at most).
    pub fn wait_consumer(
        &self,
        what: &str,
        ready: impl Fn(&consumer::Info) -> bool,
    ) -> consumer::Info {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = self.consumer_info(STREAM, DURABLE);
            if let Some(info) = &info {
                if ready(info) {
                    return info.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "consumer never reached: {what}; last state: {info:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stream's message count.
    pub fn stream_messages(&self, name: &str) -> u64 {
        self.rt.block_on(async {
            let mut stream = self.js.get_stream(name).await.expect("the stream exists");
            stream.info().await.expect("stream info").state.messages
        })
    }

    /// Polls until the stream holds message `seq` (10 s at most).
    pub fn wait_stream_message(&self, name: &str, seq: u64) -> jetstream::message::StreamMessage {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.rt.block_on(async {
                let stream = self.js.get_stream(name).await.ok()?;
                stream.get_raw_message(seq).await.ok()
            });
            if let Some(m) = got {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no message {seq} in stream {name}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `ready` every 20 ms for up to 10 s.
pub fn eventually(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The configuration used by most tests: short ack wait and backoff, and `extra`
/// lines appended (a later key must not repeat one of these).
pub fn config(nats: &Nats, extra: &str) -> String {
    let mut cfg = format!(
        "servers = [\"{}\"]\nstream = \"{STREAM}\"\nsubject = \"{SUBJECT}\"\ndurable = \"{DURABLE}\"\n",
        nats.url()
    );
    for (key, line) in [
        ("create", "create = true"),
        ("ack_wait", "ack_wait = 1"),
        ("nak_backoff_ms", "nak_backoff_ms = [20]"),
    ] {
        if !extra.contains(&format!("{key} =")) {
            cfg.push_str(line);
            cfg.push('\n');
        }
    }
    cfg.push_str(extra);
    cfg
}

/// Starts `nats.events` on the test kit.
pub fn start(config: &str) -> RunnableHarness<NatsEvents> {
    gordon_plugin_api::testing::runnable::<NatsEvents>(config, 1024)
        .unwrap_or_else(|e| panic!("nats.events did not start: {e}"))
}

/// One event in the event JSON format.
pub fn event(name: &str) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"{name}","type":"A","rrdatas":["10.0.0.1"]}}}}"#
    )
}

/// Names of the records of `msgs`.
pub fn names(msgs: &[EventMessage]) -> Vec<String> {
    msgs.iter().map(|m| m.record().name().to_owned()).collect()
}

/// Marks messages as having finished their route.
pub fn succeed(msgs: &mut [EventMessage]) {
    for m in msgs {
        m.update_phase(Phase::CLEANUP, "router");
    }
}

/// Marks messages as failed by a handler, the way the host's router does.
pub fn fail(msgs: &mut [EventMessage], why: &str) {
    for m in msgs {
        m.update_phase(Phase::DROP, "router");
        m.append_to_history(format!("dns.publish failed: {why}"), "router");
    }
}

/// Receives `n` messages within 10 s, or panics.
pub fn recv(h: &RunnableHarness<NatsEvents>, n: usize) -> Vec<EventMessage> {
    let got = h.recv(n, Duration::from_secs(10));
    assert_eq!(got.len(), n, "received {:?}", names(&got));
    got
}
