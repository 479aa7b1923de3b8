//! `nats.events` against a real nats-server with JetStream, through the plugin test
//! kit (no host). A missing nats-server skips these tests (fails them with CI=true).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use gordon_plugin_api::testing;
use gordon_plugin_nats::NatsEvents;
use gordon_test_servers::nats::Nats;

#[test]
fn events_reach_the_route_and_cleanup_acks_them() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let h = start(&config(&nats, ""));
    for i in 0..3 {
        bus.publish("events.dns", &event(&format!("h{i}.example.com.")));
    }
    let array = format!(
        "[{},{},{}]",
        event("a0.example.com."),
        event("a1.example.com."),
        event("a2.example.com.")
    );
    bus.publish("events.dns", &array);

    let mut msgs = recv(&h, 6);
    assert_eq!(
        names(&msgs),
        [
            "h0.example.com.",
            "h1.example.com.",
            "h2.example.com.",
            "a0.example.com.",
            "a1.example.com.",
            "a2.example.com."
        ]
    );
    assert!(msgs.iter().all(|m| m.phase().as_str() == "consume"));
    let tokens: HashSet<u64> = msgs.iter().map(|m| m.source_token()).collect();
    assert_eq!(tokens.len(), 6, "every event has its own token");
    let pending = bus.wait_consumer("4 messages awaiting ack", |i| i.num_ack_pending == 4);
    assert_eq!(pending.num_redelivered, 0);

    succeed(&mut msgs);
    h.cleanup(&msgs).unwrap();
    let info = bus.wait_consumer("everything acked", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == 4
    });
    assert_eq!(
        info.delivered.consumer_sequence, 4,
        "each message delivered once"
    );
    eventually("4 acks counted", || h.plugin().stats().acked == 4);
    let stats = h.plugin().stats();
    assert_eq!((stats.received, stats.naked, stats.invalid), (4, 0, 0));
    h.shutdown(Duration::from_secs(10)).unwrap();
    assert!(h.plugin().failure().is_none());
}

#[test]
fn an_array_is_acked_only_when_every_event_succeeded() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let h = start(&config(&nats, ""));
    let array = format!("[{},{}]", event("x.example.com."), event("y.example.com."));
    bus.publish("events.dns", &array);

    // The first event succeeds, the second fails: the message is rejected, and comes
    // back whole.
    let mut msgs = recv(&h, 2);
    succeed(&mut msgs[..1]);
    h.cleanup(&msgs[..1]).unwrap();
    fail(&mut msgs[1..], "refused");
    h.cleanup(&msgs[1..]).unwrap();
    let mut again = recv(&h, 2);
    assert_eq!(names(&again), ["x.example.com.", "y.example.com."]);
    assert_eq!(
        h.plugin().stats().acked,
        0,
        "a half-failed message was acked"
    );
    let info = bus.consumer_info(STREAM, DURABLE).unwrap();
    assert_eq!((info.num_redelivered, info.num_ack_pending), (1, 1));

    // Both succeed: acked once.
    succeed(&mut again);
    h.cleanup(&again[..1]).unwrap();
    h.cleanup(&again[1..]).unwrap();
    let info = bus.wait_consumer("acked", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == 1
    });
    assert_eq!(
        info.delivered.consumer_sequence, 2,
        "delivered twice in all"
    );
    eventually("one ack", || h.plugin().stats().acked == 1);
    assert_eq!(h.plugin().stats().naked, 1);
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn invalid_messages_are_terminated_and_never_routed() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let h = start(&config(&nats, "max_msg_age = 300\n"));
    bus.publish("events.dns", "{not json");
    bus.publish("events.dns", r#"{"action":"additions"}"#);
    bus.publish(
        "events.dns",
        r#"{"action":"additions","timestamp":"2001-01-01T00:00:00Z","resourceRecords":{"name":"old.example.com.","type":"A","rrdatas":["10.0.0.1"]}}"#,
    );
    bus.publish(
        "events.dns",
        &format!("[{}, {{\"action\":1}}]", event("half.example.com.")),
    );
    bus.publish("events.dns", &event("good.example.com."));

    let mut msgs = recv(&h, 1);
    assert_eq!(names(&msgs), ["good.example.com."]);
    eventually("4 invalid messages counted", || {
        h.plugin().stats().invalid == 4
    });
    let info = bus.wait_consumer("only the good message awaits its ack", |i| {
        i.num_ack_pending == 1
    });
    assert_eq!(info.num_redelivered, 0);

    succeed(&mut msgs);
    h.cleanup(&msgs).unwrap();
    bus.wait_consumer("all settled", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == 5
    });
    // Past `ack_wait` (1 s): nothing comes back.
    let late = h.recv(1, Duration::from_millis(1800));
    assert!(late.is_empty(), "redelivered: {:?}", names(&late));
    let info = bus.consumer_info(STREAM, DURABLE).unwrap();
    assert_eq!((info.num_redelivered, info.num_ack_pending), (0, 0));
    assert_eq!(
        info.delivered.consumer_sequence, 5,
        "each message delivered once"
    );
    assert_eq!(h.plugin().stats().acked, 1);
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn events_that_could_break_a_zone_are_terminated_like_invalid_json() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let h = start(&config(&nats, ""));
    let addrs: Vec<String> = (0..101).map(|i| format!("\"10.0.1.{i}\"")).collect();
    let rr = |body: &str| format!(r#"{{"action":"additions","resourceRecords":{{{body}}}}}"#);
    let refused = [
        rr(&format!(r#""name":"www","type":"A","rrdatas":[{}]"#, addrs.join(","))),
        rr(r#""name":"*","type":"NS","rrdatas":["ns.other.net."]"#),
        rr(r#""name":"@","type":"MX","rrdatas":["10 192.0.2.1"]"#),
        rr(r#""name":"www","type":"A","rrdatas":["10.0.0.1"],"TTL":600"#),
        r#"{"action":"deletions","action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.0.0.1"]}}"#.to_owned(),
    ];
    for body in &refused {
        bus.publish("events.dns", body);
    }
    bus.publish("events.dns", &event("good.example.com."));
    let mut msgs = recv(&h, 1);
    assert_eq!(names(&msgs), ["good.example.com."]);
    eventually("5 invalid messages counted", || {
        h.plugin().stats().invalid == 5
    });
    succeed(&mut msgs);
    h.cleanup(&msgs).unwrap();
    bus.wait_consumer("all settled", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == 6
    });
    assert_eq!(
        bus.consumer_info(STREAM, DURABLE).unwrap().num_redelivered,
        0
    );
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_dropped_event_is_naked_and_redelivered() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    // A long ack wait: only the nak can bring the message back this fast.
    let h = start(&config(&nats, "ack_wait = 30\nnak_backoff_ms = 50\n"));
    bus.publish("events.dns", &event("retry.example.com."));

    let mut first = recv(&h, 1);
    fail(&mut first, "connection refused");
    let failed_at = Instant::now();
    h.cleanup(&first).unwrap();
    let mut second = h.recv(1, Duration::from_secs(5));
    assert_eq!(names(&second), ["retry.example.com."]);
    assert!(failed_at.elapsed() < Duration::from_secs(5));
    assert_ne!(second[0].msg_id(), first[0].msg_id());
    let info = bus.consumer_info(STREAM, DURABLE).unwrap();
    assert_eq!(info.num_redelivered, 1);

    succeed(&mut second);
    h.cleanup(&second).unwrap();
    bus.wait_consumer("acked", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == 1
    });
    eventually("naked once, acked once", || {
        let s = h.plugin().stats();
        s.naked == 1 && s.acked == 1
    });
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn after_max_deliver_failures_the_message_is_dead_lettered() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream("DEAD", &["dead.events"]);
    // The plugin creates the work-queue stream and the consumer.
    let h = start(&config(
        &nats,
        "max_deliver = 3\ndead_letter_subject = \"dead.events\"\n",
    ));
    eventually("the plugin created the consumer", || {
        bus.consumer_info(STREAM, DURABLE).is_some()
    });
    let body = format!(
        "[{},{}]",
        event("ok.example.com."),
        event("bad.example.com.")
    );
    let seq = bus.publish("events.dns", &body);

    for attempt in 1..=3 {
        let mut msgs = recv(&h, 2);
        assert_eq!(names(&msgs), ["ok.example.com.", "bad.example.com."]);
        succeed(&mut msgs[..1]);
        fail(&mut msgs[1..], &format!("refused (attempt {attempt})"));
        h.cleanup(&msgs).unwrap();
    }

    let dead = bus.wait_stream_message("DEAD", 1);
    let doc: serde_json::Value = serde_json::from_slice(&dead.payload).unwrap();
    assert_eq!(
        doc["payload"][1]["resourceRecords"]["name"],
        "bad.example.com."
    );
    assert_eq!(doc["reason"], "dns.publish failed: refused (attempt 3)");
    assert_eq!(doc["deliveries"], 3);
    assert_eq!(doc["stream"], STREAM);
    assert_eq!(doc["stream_sequence"], seq);
    let history = doc["history"].as_array().unwrap();
    assert!(history
        .iter()
        .all(|e| e["event"] == 1 && e["msg_id"].is_string()));
    assert_eq!(
        history.last().unwrap()["message"],
        "dns.publish failed: refused (attempt 3)"
    );
    assert!(history
        .iter()
        .any(|e| e["message"] == "Updated phase from consume to drop"));
    assert_eq!(
        dead.headers
            .get("Gordon-Stream-Sequence")
            .map(|v| v.as_str()),
        Some(seq.to_string().as_str())
    );
    assert_eq!(
        dead.headers.get("Gordon-Stream").map(|v| v.as_str()),
        Some(STREAM)
    );

    // Terminated: not redelivered past `ack_wait`, and gone from the work queue.
    let late = h.recv(1, Duration::from_millis(1800));
    assert!(late.is_empty(), "redelivered: {:?}", names(&late));
    let info = bus.consumer_info(STREAM, DURABLE).unwrap();
    assert_eq!(info.num_ack_pending, 0);
    eventually("removed from the stream", || {
        bus.stream_messages(STREAM) == 0
    });
    let s = h.plugin().stats();
    assert_eq!(
        (s.dead_lettered, s.naked, s.acked, s.received),
        (1, 2, 0, 3)
    );
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn dead_letters_without_a_capturing_stream_go_out_as_plain_messages() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let mut sub = bus.rt.block_on(bus.client.subscribe("dead.plain")).unwrap();
    bus.rt.block_on(bus.client.flush()).unwrap();
    let h = start(&config(
        &nats,
        "max_deliver = 1\ndead_letter_subject = \"dead.plain\"\n",
    ));
    bus.publish("events.dns", &event("once.example.com."));
    let mut msgs = recv(&h, 1);
    fail(&mut msgs, "boom");
    h.cleanup(&msgs).unwrap();
    let dead = bus
        .rt
        .block_on(async {
            use futures_util::StreamExt;
            tokio::time::timeout(Duration::from_secs(10), sub.next()).await
        })
        .expect("no dead letter within 10 s")
        .expect("subscription ended");
    let doc: serde_json::Value = serde_json::from_slice(&dead.payload).unwrap();
    assert_eq!(doc["reason"], "dns.publish failed: boom");
    assert_eq!(
        doc["payload"]["resourceRecords"]["name"],
        "once.example.com."
    );
    bus.wait_consumer("terminated", |i| i.num_ack_pending == 0);
    eventually("counted", || h.plugin().stats().dead_lettered == 1);
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn the_source_reconnects_after_a_server_restart() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    // A long ack wait: nothing may come back by redelivery in this test.
    let h = start(&config(&nats, "ack_wait = 30\n"));
    bus.publish("events.dns", &event("before1.example.com."));
    bus.publish("events.dns", &event("before2.example.com."));
    let mut before = recv(&h, 2);
    succeed(&mut before);
    h.cleanup(&before[..1]).unwrap();
    eventually("acked before the restart", || h.plugin().stats().acked == 1);

    nats.restart();
    // A message delivered before the restart is acknowledged after it.
    h.cleanup(&before[1..]).unwrap();
    bus.publish("events.dns", &event("after1.example.com."));
    bus.publish("events.dns", &event("after2.example.com."));
    let mut after = h.recv(2, Duration::from_secs(30));
    assert_eq!(
        names(&after),
        ["after1.example.com.", "after2.example.com."]
    );
    succeed(&mut after);
    h.cleanup(&after).unwrap();
    let info = bus.wait_consumer("everything acked after the restart", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == 4
    });
    assert_eq!(
        info.delivered.consumer_sequence, 4,
        "something was redelivered"
    );
    eventually("4 acks", || h.plugin().stats().acked == 4);
    assert!(h.plugin().failure().is_none());
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn the_source_waits_for_a_server_that_is_down_at_start() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    nats.kill();
    let h = start(&config(&nats, ""));
    // Nothing to connect to yet: the source retries instead of failing.
    assert!(h.recv(1, Duration::from_millis(500)).is_empty());
    assert!(h.plugin().failure().is_none());
    nats.restart();
    let bus = Bus::connect(&nats);
    // The plugin creates the stream once it is connected.
    eventually("the plugin created the consumer", || {
        bus.consumer_info(STREAM, DURABLE).is_some()
    });
    bus.publish("events.dns", &event("late.example.com."));
    let msgs = h.recv(1, Duration::from_secs(20));
    assert_eq!(names(&msgs), ["late.example.com."]);
    h.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn two_runnables_on_one_durable_split_the_work() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let cfg = config(&nats, "batch = 4\nack_wait = 30\n");
    let a = start(&cfg);
    let b = start(&cfg);
    bus.wait_consumer("both runnables pulling", |i| i.num_waiting >= 2);
    const N: usize = 60;
    for i in 0..N {
        bus.publish("events.dns", &event(&format!("w{i}.example.com.")));
    }

    let mut seen = HashSet::new();
    let mut per = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < N && Instant::now() < deadline {
        for (k, h) in [&a, &b].into_iter().enumerate() {
            let mut msgs = h.recv(N, Duration::from_millis(30));
            for name in names(&msgs) {
                assert!(seen.insert(name.clone()), "{name} delivered twice");
            }
            per[k] += msgs.len();
            succeed(&mut msgs);
            h.cleanup(&msgs).unwrap();
        }
    }
    assert_eq!(seen.len(), N, "per runnable: {per:?}");
    assert!(
        per[0] > 0 && per[1] > 0,
        "one runnable got nothing: {per:?}"
    );
    let info = bus.wait_consumer("all acked", |i| {
        i.num_ack_pending == 0 && i.ack_floor.stream_sequence == N as u64
    });
    assert_eq!(
        info.delivered.consumer_sequence, N as u64,
        "each message delivered once"
    );
    eventually("every message acked exactly once", || {
        a.plugin().stats().acked + b.plugin().stats().acked == N as u64
    });
    assert_eq!(
        a.plugin().stats().received + b.plugin().stats().received,
        N as u64
    );
    a.shutdown(Duration::from_secs(10)).unwrap();
    b.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn shutdown_hands_back_what_the_route_never_finished() {
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let cfg = config(&nats, "ack_wait = 30\n");
    let a = start(&cfg);
    bus.publish("events.dns", &event("unfinished.example.com."));
    let _in_route = recv(&a, 1);
    a.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(a.plugin().stats().naked, 1);
    // Another process gets it at once, not after the 30 s ack wait.
    let b = start(&cfg);
    let msgs = b.recv(1, Duration::from_secs(10));
    assert_eq!(names(&msgs), ["unfinished.example.com."]);
    b.shutdown(Duration::from_secs(10)).unwrap();
}

/// A source whose `run` failed says so when it is shut down, so the host can tell
/// that it did not end cleanly.
fn run_failure_is_reported_at_shutdown(h: &testing::RunnableHarness<NatsEvents>) {
    let err = h
        .shutdown(Duration::from_secs(10))
        .expect_err("shutdown after a failed run must report it")
        .to_string();
    assert!(err.contains("run failed"), "{err}");
}

#[test]
fn a_missing_or_mismatched_stream_or_consumer_is_a_clear_error() {
    let Some(nats) = Nats::start() else { return };
    let h = start(&config(&nats, "create = false\n"));
    eventually("run failed", || h.plugin().failure().is_some());
    let err = h.plugin().failure().unwrap();
    assert!(
        err.contains("stream `EVENTS` (key `stream`) does not exist")
            && err.contains("create = true"),
        "{err}"
    );
    run_failure_is_reported_at_shutdown(&h);

    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    let h = start(&config(&nats, "create = false\n"));
    eventually("run failed", || h.plugin().failure().is_some());
    let err = h.plugin().failure().unwrap();
    assert!(err.contains("consumer `gordon` (key `durable`)"), "{err}");
    run_failure_is_reported_at_shutdown(&h);

    // A consumer that exists but reads other subjects is not silently used.
    bus.create_consumer(STREAM, DURABLE, "events.other");
    let h = start(&config(&nats, ""));
    eventually("run failed", || h.plugin().failure().is_some());
    let err = h.plugin().failure().unwrap();
    assert!(
        err.contains("filters subject \"events.other\", but `subject` is \"events.>\""),
        "{err}"
    );
    run_failure_is_reported_at_shutdown(&h);
}

#[test]
fn configuration_errors_name_the_key() {
    let base = "stream = \"S\"\nsubject = \"events.>\"\ndurable = \"d\"\n";
    assert!(testing::validate::<NatsEvents>(base).is_ok());
    let cases = [
        ("subject = \"a\"\ndurable = \"d\"\n", "stream"),
        ("stream = \"S\"\nsubject = \"a\"\n", "durable"),
        (&format!("{base}bogus = 1\n") as &str, "bogus"),
        (&format!("{base}max_deliver = 0\n"), "`max_deliver`"),
        (&format!("{base}batch = 0\n"), "`batch`"),
        (&format!("{base}ack_wait = 0\n"), "`ack_wait`"),
        (&format!("{base}servers = []\n"), "`servers`"),
        (&format!("{base}servers = [\"http://x:1\"]\n"), "`servers`"),
        (&format!("{base}nak_backoff_ms = []\n"), "`nak_backoff_ms`"),
        (
            &format!("{base}nak_backoff_ms = \"fast\"\n"),
            "nak_backoff_ms",
        ),
        (
            &format!("{base}dead_letter_subject = \"events.dead\"\n"),
            "`dead_letter_subject`",
        ),
        (
            &format!("{base}dead_letter_subject = \"dead.*\"\n"),
            "`dead_letter_subject`",
        ),
        (
            &format!("{base}credentials_file = \"a\"\ncredentials_env = \"B\"\n"),
            "`credentials_env`",
        ),
        (
            "stream = \"a.b\"\nsubject = \"x\"\ndurable = \"d\"\n",
            "`stream`",
        ),
        (
            "stream = \"S\"\nsubject = \"x.>.y\"\ndurable = \"d\"\n",
            "`subject`",
        ),
    ];
    for (cfg, key) in cases {
        let err = testing::validate::<NatsEvents>(cfg).unwrap_err();
        assert!(err.message().contains(key), "{key}: {err}");
    }
    // Secrets are read at start-up; a missing variable fails it and is named.
    let cfg = format!("{base}credentials_env = \"GORDON_TEST_NO_SUCH_VARIABLE\"\n");
    let err = match testing::runnable::<NatsEvents>(&cfg, 4) {
        Ok(_) => panic!("started without its credentials"),
        Err(e) => e,
    };
    assert!(err.message().contains("`credentials_env`"), "{err}");
    let cfg = format!("{base}credentials_file = \"/nonexistent/nats.creds\"\n");
    let err = match testing::runnable::<NatsEvents>(&cfg, 4) {
        Ok(_) => panic!("started without its credentials"),
        Err(e) => e,
    };
    assert!(err.message().contains("`credentials_file`"), "{err}");
}

#[test]
fn pause_stops_pulling_and_resume_starts_again() {
    use gordon_plugin_api::serde_json::json;
    let Some(nats) = Nats::start() else { return };
    let bus = Bus::connect(&nats);
    bus.create_stream(STREAM, &[SUBJECT]);
    // A long ack wait: nothing comes back by redelivery within the test.
    let h = start(&config(&nats, "ack_wait = 30\n"));
    bus.publish("events.dns", &event("before.example.com."));
    let mut in_route = recv(&h, 1);

    assert_eq!(
        h.invoke("pause", json!({})).unwrap(),
        json!({"paused": true})
    );
    assert_eq!(
        h.invoke("pause", json!({})).unwrap(),
        json!({"paused": true})
    );
    assert!(h.plugin().is_paused());
    // Once the pull subscription is gone, published messages wait in the stream.
    eventually("the pull subscription is dropped", || {
        bus.consumer_info(STREAM, DURABLE)
            .is_some_and(|i| i.num_waiting == 0)
    });
    bus.publish("events.dns", &event("during1.example.com."));
    bus.publish("events.dns", &event("during2.example.com."));
    let got = h.recv(1, Duration::from_millis(1500));
    assert!(got.is_empty(), "pulled while paused: {:?}", names(&got));
    let info = bus.consumer_info(STREAM, DURABLE).unwrap();
    assert_eq!(
        (info.num_pending, info.delivered.stream_sequence),
        (2, 1),
        "delivered while paused"
    );

    // What was in the route finishes and is acknowledged while paused.
    succeed(&mut in_route);
    h.cleanup(&in_route).unwrap();
    eventually("the in-flight message acked", || {
        h.plugin().stats().acked == 1
    });
    bus.wait_consumer("acked", |i| i.ack_floor.stream_sequence == 1);

    assert_eq!(
        h.invoke("resume", json!({})).unwrap(),
        json!({"paused": false})
    );
    assert_eq!(
        h.invoke("resume", json!({})).unwrap(),
        json!({"paused": false})
    );
    let mut msgs = recv(&h, 2);
    assert_eq!(
        names(&msgs),
        ["during1.example.com.", "during2.example.com."]
    );
    succeed(&mut msgs);
    h.cleanup(&msgs).unwrap();
    eventually("all acked", || h.plugin().stats().acked == 3);
    assert!(h.invoke("stop", json!({})).is_err());

    // A paused source still stops promptly.
    h.invoke("pause", json!({})).unwrap();
    let started = Instant::now();
    h.shutdown(Duration::from_secs(10)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(h.plugin().failure().is_none());
}
