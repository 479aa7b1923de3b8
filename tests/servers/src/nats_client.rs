//! A few lines of the NATS text protocol over a TcpStream: enough for tests and
//! benchmarks to create a JetStream stream, publish (with or without waiting for
//! JetStream's acknowledgement), and watch a subject, without an async client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A connection to 127.0.0.1:`port`.
pub struct NatsConn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next_sid: u32,
}

/// A message received on a subscription.
pub struct Msg {
    /// Its subject.
    pub subject: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl NatsConn {
    /// Connects and completes the handshake.
    pub fn connect(port: u16) -> NatsConn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nats");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let mut conn = NatsConn {
            writer: stream.try_clone().expect("clone the socket"),
            reader: BufReader::new(stream),
            next_sid: 1,
        };
        let mut info = String::new();
        conn.reader.read_line(&mut info).expect("read INFO");
        assert!(info.starts_with("INFO"), "{info}");
        conn.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false}\r\n");
        conn.flush();
        conn
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to nats");
    }

    /// Round-trips a PING, so everything sent before has been processed.
    pub fn flush(&mut self) {
        self.send(b"PING\r\n");
        loop {
            let line = self.line();
            if line.starts_with("PONG") {
                return;
            }
            assert!(!line.starts_with("-ERR"), "{line}");
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from nats");
        line
    }

    /// Publishes without waiting for JetStream, in one write (so that a timed
    /// publish is not held back by Nagle's algorithm between its parts).
    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame);
    }

    /// Subscribes; returns the subscription id.
    pub fn subscribe(&mut self, subject: &str) -> u32 {
        let sid = self.next_sid;
        self.next_sid += 1;
        self.send(format!("SUB {subject} {sid}\r\n").as_bytes());
        self.flush();
        sid
    }

    /// The next message, or `None` after `timeout`.
    pub fn next_msg(&mut self, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    continue
                }
                Err(e) => panic!("nats read: {e}"),
            }
            if line.starts_with("PING") {
                self.send(b"PONG\r\n");
                continue;
            }
            if let Some(rest) = line.strip_prefix("MSG ") {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let len: usize = parts
                    .last()
                    .and_then(|l| l.parse().ok())
                    .expect("MSG line with a length");
                let mut payload = vec![0u8; len + 2];
                self.reader
                    .read_exact(&mut payload)
                    .expect("read a payload");
                payload.truncate(len);
                return Some(Msg {
                    subject: parts[0].to_owned(),
                    payload,
                });
            }
        }
        None
    }

    /// Request/reply: publishes with a reply inbox and waits for the answer.
    pub fn request(&mut self, subject: &str, payload: &[u8]) -> serde_json::Value {
        let inbox = format!("_INBOX.test.{}", self.next_sid);
        let sid = self.subscribe(&inbox);
        self.send(format!("PUB {subject} {inbox} {}\r\n", payload.len()).as_bytes());
        self.send(payload);
        self.send(b"\r\n");
        let msg = self.next_msg(Duration::from_secs(10)).expect("no reply");
        self.send(format!("UNSUB {sid}\r\n").as_bytes());
        serde_json::from_slice(&msg.payload).unwrap_or_default()
    }

    /// Creates a work-queue stream on `subject`.
    pub fn create_stream(&mut self, name: &str, subject: &str) {
        let cfg = serde_json::json!({"name": name, "subjects": [subject], "retention": "workqueue", "storage": "file"});
        let reply = self.request(
            &format!("$JS.API.STREAM.CREATE.{name}"),
            cfg.to_string().as_bytes(),
        );
        assert!(
            reply.get("error").is_none(),
            "stream create failed: {reply}"
        );
    }

    /// The number of messages a stream holds.
    pub fn stream_messages(&mut self, name: &str) -> u64 {
        let info = self.request(&format!("$JS.API.STREAM.INFO.{name}"), b"");
        info["state"]["messages"].as_u64().unwrap_or(0)
    }

    /// The sequence number of the last message a stream stored (0 if none): it
    /// moves with every message ever published to it.
    pub fn stream_last_seq(&mut self, name: &str) -> u64 {
        let info = self.request(&format!("$JS.API.STREAM.INFO.{name}"), b"");
        info["state"]["last_seq"].as_u64().unwrap_or(0)
    }

    /// Publishes to a stream and waits for its acknowledgement.
    pub fn js_publish(&mut self, subject: &str, payload: &[u8]) {
        let reply = self.request(subject, payload);
        assert!(reply.get("seq").is_some(), "no JetStream ack: {reply}");
    }
}
