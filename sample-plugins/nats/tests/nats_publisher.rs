//! `nats.publisher` against a real nats-server with JetStream, without a host: the
//! plugin is built and run through the same `extern "C"` shims the janitor uses, and
//! fed from an SDK channel. A missing nats-server skips these tests (fails them with
//! CI=true).

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use common::*;
use gordon_plugin_api::abi::PublisherBox;
use gordon_plugin_api::channel::bounded;
use gordon_plugin_api::event_json::parse_events;
use gordon_plugin_api::{
    format_rfc3339, now_ns, testing, Action, EventMessage, Phase, PluginError, RecordType,
    ResourceRecord,
};
use gordon_plugin_nats::{NatsEvents, NatsPublisher};
use gordon_test_servers::nats::Nats;
use serde_json::{json, Value};

/// Where the publisher publishes: inside `events.>`, the subject the stream
/// captures and `nats.events` consumes.
const OUT: &str = "events.janitor";

/// Builds `nats.publisher` from JSON configuration, as the host would.
fn publisher(config: Value) -> Result<PublisherBox, PluginError> {
    gordon_plugin_api::export::new_publisher::<NatsPublisher>(config.to_string().as_str().into())
        .into_result()
        .map_err(PluginError::from)
}

fn config_for(nats: &Nats, extra: Value) -> Value {
    let mut cfg = json!({"servers": [nats.url()], "subject": OUT});
    if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    cfg
}

/// Runs the publisher on `changes`, fed from another thread the way the reconciler
/// feeds it (in small batches, then the end of the stream). Returns the run's result
/// and how long it took.
fn run(p: &PublisherBox, changes: Vec<EventMessage>) -> (Result<(), String>, Duration) {
    let (tx, rx) = bounded::<EventMessage>(64);
    let feeder = std::thread::spawn(move || {
        let mut changes = changes;
        while !changes.is_empty() {
            let rest = changes.split_off(changes.len().min(10));
            let chunk = std::mem::replace(&mut changes, rest);
            if tx.send_batch(chunk).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let result = p.run(rx.into_ffi()).into_result();
    let took = started.elapsed();
    feeder.join().expect("the feeder thread");
    (result.map_err(|e| e.message.into()), took)
}

/// A change the way a reconciler makes one: phase `consume`, the zone in the extra
/// fields.
fn change(i: usize) -> EventMessage {
    let action = match i % 3 {
        0 => Action::Deletions,
        _ => Action::Additions,
    };
    let mut record = ResourceRecord::new(
        &format!("h{i}.example.com."),
        RecordType::A,
        [format!("10.0.{}.{}", i / 250, i % 250 + 1)],
    );
    match i % 4 {
        1 => record.set_ttl(0), // "not set": must be left out, or the validator refuses it
        2 => record.set_ttl(3600),
        _ => {}
    }
    let mut m = EventMessage::new(Phase::new("consume"), action, record);
    m.set_extra_json(json!({"zone": "example.com."}).to_string());
    if i % 5 < 1 {
        // Recent: `nats.events` refuses events older than its `max_msg_age`.
        m.set_timestamp(format_rfc3339(now_ns()));
    }
    m
}

fn changes(n: usize) -> Vec<EventMessage> {
    (0..n).map(change).collect()
}

/// What each change must arrive as: its `data` object, without a TTL of 0.
fn expected(m: &EventMessage) -> Value {
    let mut data = m.to_json()["data"].clone();
    if data["resourceRecords"]["ttl"] == 0 {
        if let Some(rr) = data["resourceRecords"].as_object_mut() {
            rr.remove("ttl");
        }
    }
    data
}

fn body_json(message: &async_nats::jetstream::message::StreamMessage) -> Value {
    serde_json::from_slice(&message.payload).expect("a JSON body")
}

#[test]
fn changes_arrive_in_order_as_events_nats_events_accepts() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let p = publisher(config_for(&nats, json!({}))).expect("nats.publisher starts");

    let sent = changes(600);
    let (result, _) = run(&p, sent.clone());
    result.expect("every change acknowledged");
    // `run` returned only after the acknowledgements: everything is stored already.
    assert_eq!(bus.stream_messages(STREAM), 600);
    for (i, m) in sent.iter().enumerate() {
        let stored = bus.wait_stream_message(STREAM, i as u64 + 1);
        assert_eq!(stored.subject.as_str(), OUT);
        assert_eq!(body_json(&stored), expected(m), "message {}", i + 1);
        let parsed = parse_events(&stored.payload, Phase::new("consume"), None)
            .unwrap_or_else(|e| panic!("message {}: nats.events would refuse it: {e}", i + 1));
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].record().name(), m.record().name());
        assert_eq!(parsed[0].action(), m.action());
        assert_eq!(parsed[0].record().ttl(), m.record().ttl());
        assert_eq!(parsed[0].extra_json(), m.extra_json());
    }

    // A second run reuses the connection; nothing to publish is a success too.
    let (result, _) = run(&p, changes(5));
    result.expect("the second run");
    assert_eq!(bus.stream_messages(STREAM), 605);
    let (result, _) = run(&p, Vec::new());
    result.expect("an empty run");

    // And nats.events routes them, in order (a long ack wait: no redelivery while
    // they are left unacknowledged).
    let h = start(&config(&nats, "ack_wait = 120\n"));
    let got = h.recv(605, Duration::from_secs(20));
    let want: Vec<String> = sent
        .iter()
        .chain(changes(5).iter())
        .map(|m| m.record().name().to_owned())
        .collect();
    assert_eq!(names(&got), want);
    h.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(h.plugin().stats().invalid, 0);

    p.cleanup(5_000).into_result().expect("cleanup drains");
}

#[test]
fn events_per_message_publishes_arrays() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let p = publisher(config_for(
        &nats,
        json!({"events_per_message": 3, "max_in_flight": 1}),
    ))
    .expect("nats.publisher starts");
    let sent = changes(7);
    let (result, _) = run(&p, sent.clone());
    result.expect("every change acknowledged");
    assert_eq!(
        bus.stream_messages(STREAM),
        3,
        "7 changes in arrays of 3, 3, 1"
    );
    let mut got = Vec::new();
    for seq in 1..=3 {
        let stored = bus.wait_stream_message(STREAM, seq);
        let events = parse_events(&stored.payload, Phase::new("consume"), None)
            .unwrap_or_else(|e| panic!("message {seq}: nats.events would refuse it: {e}"));
        assert_eq!(events.len(), if seq == 3 { 1 } else { 3 });
        match body_json(&stored) {
            Value::Array(items) => got.extend(items),
            other => panic!("not an array: {other}"),
        }
    }
    let want: Vec<Value> = sent.iter().map(expected).collect();
    assert_eq!(got, want);
    p.cleanup(5_000).into_result().expect("cleanup");
}

#[test]
fn no_stream_capturing_the_subject_fails_the_run() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream("OTHER", &["other.>"]);
    let p = publisher(config_for(&nats, json!({"timeout": 2}))).expect("nats.publisher starts");
    let (result, took) = run(&p, changes(3));
    let err = result.expect_err("published to a subject no stream captures");
    assert!(
        err.contains("no JetStream stream captures subject `events.janitor`"),
        "{err}"
    );
    assert!(err.contains("none of the 3 change(s)"), "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(bus.stream_messages("OTHER"), 0);
    p.cleanup(5_000).into_result().expect("cleanup");
}

#[test]
fn unacknowledged_and_invalid_changes_fail_the_run_with_a_count() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    // The stream refuses everything past 5 messages.
    bus.rt
        .block_on(bus.js.create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECT.into()],
            max_messages: 5,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        }))
        .expect("create the stream");
    let p = publisher(config_for(&nats, json!({"max_in_flight": 4}))).expect("starts");
    let (result, _) = run(&p, changes(20));
    let err = result.expect_err("15 changes were refused");
    assert!(
        err.starts_with(
            "15 of 20 change(s) for subject `events.janitor` were not confirmed by JetStream"
        ),
        "{err}"
    );
    assert!(err.contains("first error:"), "{err}");
    assert!(err.contains("not acknowledged"), "{err}");
    assert_eq!(bus.stream_messages(STREAM), 5);

    // A change that is not a valid event is never sent; the others are.
    bus.rt
        .block_on(bus.js.delete_stream(STREAM))
        .expect("delete the stream");
    bus.create_stream(STREAM, &[SUBJECT]);
    let mut sent = changes(3);
    sent[1].record_mut().set_rrdatas(Vec::<String>::new());
    let (result, _) = run(&p, sent);
    let err = result.expect_err("an invalid change");
    assert!(
        err.starts_with("1 of 3 change(s) for subject `events.janitor`"),
        "{err}"
    );
    assert!(err.contains("1 not valid events"), "{err}");
    assert!(err.contains("rrdatas"), "{err}");
    assert_eq!(bus.stream_messages(STREAM), 2);
    p.cleanup(5_000).into_result().expect("cleanup");
}

#[test]
fn a_server_down_at_start_fails_the_run_after_connect_timeout() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    nats.kill();
    let p = publisher(config_for(&nats, json!({"connect_timeout": 1.5}))).expect("starts");
    let (result, took) = run(&p, changes(4));
    let err = result.expect_err("published without a server");
    assert!(err.contains(&nats.url()), "{err}");
    assert!(err.contains("`connect_timeout`"), "{err}");
    assert!(err.contains("none of the 4 change(s)"), "{err}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "took {took:?}"
    );
}

#[test]
fn a_server_that_comes_back_within_connect_timeout_gets_the_changes() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    {
        let bus = Bus::connect(&nats);
        bus.create_stream(STREAM, &[SUBJECT]);
    }
    nats.kill();
    let p = publisher(config_for(&nats, json!({"connect_timeout": 30}))).expect("starts");
    let running = std::thread::spawn(move || {
        let (result, _) = run(&p, changes(10));
        (result, p)
    });
    std::thread::sleep(Duration::from_millis(700));
    nats.restart();
    let (result, p) = running.join().expect("the run thread");
    result.expect("published once the server was back");
    let bus = Bus::connect(&nats);
    assert_eq!(bus.stream_messages(STREAM), 10);
    p.cleanup(5_000).into_result().expect("cleanup");
}

#[test]
fn configuration_errors_name_the_key() {
    let base = "subject = \"events.janitor\"\n";
    assert!(testing::validate::<NatsPublisher>(base).is_ok());
    let cases = [
        ("", "subject"),
        ("subject = \"events.>\"\n", "`subject`"),
        ("subject = \"events.*\"\n", "`subject`"),
        ("subject = \"\"\n", "`subject`"),
        (&format!("{base}bogus = 1\n") as &str, "bogus"),
        (&format!("{base}timeout = 0\n"), "`timeout`"),
        (&format!("{base}timeout = \"soon\"\n"), "timeout"),
        (
            &format!("{base}connect_timeout = -1\n"),
            "`connect_timeout`",
        ),
        (&format!("{base}max_in_flight = 0\n"), "`max_in_flight`"),
        (
            &format!("{base}events_per_message = 0\n"),
            "`events_per_message`",
        ),
        (&format!("{base}servers = []\n"), "`servers`"),
        (&format!("{base}servers = [\"http://x:1\"]\n"), "`servers`"),
        (
            &format!("{base}credentials_file = \"a\"\ncredentials_env = \"B\"\n"),
            "`credentials_env`",
        ),
    ];
    for (cfg, key) in cases {
        let err = testing::validate::<NatsPublisher>(cfg).unwrap_err();
        assert!(err.message().contains(key), "{key}: {err}");
    }
    // Secrets are read at start-up; a missing variable fails it and is named.
    let err = publisher(json!({"subject": OUT, "credentials_env": "GORDON_TEST_NO_SUCH_VARIABLE"}))
        .err()
        .expect("started without its credentials");
    assert!(err.message().contains("`credentials_env`"), "{err}");
    let err = publisher(json!({"subject": OUT, "credentials_file": "/nonexistent/nats.creds"}))
        .err()
        .expect("started without its credentials");
    assert!(err.message().contains("`credentials_file`"), "{err}");
}

#[test]
fn the_shared_nats_table_suits_both_plugins() {
    // What `["nats"]` may hold: both plugins accept it.
    let shared = "servers = [\"nats://127.0.0.1:4222\", \"nats://127.0.0.1:4223\"]\ncredentials_env = \"GORDON_NATS_CREDS\"\n";
    let events = "stream = \"S\"\nsubject = \"events.>\"\ndurable = \"d\"\n";
    let publish = "subject = \"events.janitor\"\ntimeout = 2\nconnect_timeout = 5\nmax_in_flight = 64\nevents_per_message = 2\n";
    testing::validate::<NatsEvents>(&format!("{shared}{events}")).expect("nats.events");
    testing::validate::<NatsPublisher>(&format!("{shared}{publish}")).expect("nats.publisher");
    // Each plugin's own keys are refused by the other, by name.
    for key in [
        "stream",
        "durable",
        "create",
        "ack_wait",
        "dead_letter_subject",
    ] {
        let value = if key == "create" { "true" } else { "\"x\"" };
        let err =
            testing::validate::<NatsPublisher>(&format!("{shared}{publish}{key} = {value}\n"))
                .unwrap_err();
        assert!(err.message().contains(key), "{key}: {err}");
    }
    for key in [
        "timeout",
        "connect_timeout",
        "max_in_flight",
        "events_per_message",
    ] {
        let err =
            testing::validate::<NatsEvents>(&format!("{shared}{events}{key} = 2\n")).unwrap_err();
        assert!(err.message().contains(key), "{key}: {err}");
    }
}
