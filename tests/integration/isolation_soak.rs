//! The promise of crash isolation under load: a vendor plugin that segfaults on
//! one record in a thousand, isolated, behind a NATS source at full speed, with
//! real BIND behind it — for a minute (`GORDON_SOAK_SECS` to change it) — loses no
//! message, and the host never restarts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gordon_test_servers::nats_client::NatsConn;

use crate::backends::{backend, gordon_env, stop, wait_all_served};
use crate::util::vendor_fixture;

fn event(i: usize) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"soak{i}","type":"A","rrdatas":["10.{}.{}.{}"]}}}}"#,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

/// Events in the stream the service's consumer has not taken yet.
fn backlog(conn: &mut NatsConn) -> u64 {
    let info = conn.request("$JS.API.CONSUMER.INFO.EVENTS.gordon", b"");
    info["num_pending"].as_u64().unwrap_or(0)
}

#[test]
fn a_plugin_that_segfaults_one_record_in_a_thousand_loses_nothing_under_nats() {
    let Some(b) = backend() else { return };
    let secs: u64 = std::env::var("GORDON_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let env = gordon_env(&b, &b.key, "");
    env.install(&vendor_fixture(), "libacme.so");
    // The service's configuration stays as the NATS tests use it; the operator's
    // overrides put the faulting plugin on the route, isolated.
    std::fs::write(
        env.path().join("gordon-user.toml"),
        r#"[core]
plugins = ["nats.events", "acme.flaky", "dns.enricher", "dns.rfc2136"]
isolate = ["acme.flaky"]
[core.route]
consume = "screen"
screen = "enrich"
enrich = "publish"
publish = "cleanup"
[core.router]
batch_size = 64
[core.isolation]
restart_backoff = 0.01
restart_backoff_max = 0.1
max_crashes = 100000
crash_window = 60
["acme.flaky"]
fault = "segv"
one_in = 1000
"#,
    )
    .unwrap();
    let mut child = env.spawn(&[]);

    // Publish as fast as the service takes events, for the soak's length: keep a
    // backlog of a few thousand waiting in the stream, so the pipeline never idles
    // and the drain at the end stays short.
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let done = Arc::clone(&done);
        let port = b.nats.port();
        std::thread::spawn(move || {
            let mut conn = NatsConn::connect(port);
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                // Core NATS publishes (no per-message acknowledgement): the stream
                // captures the subject; the count is checked against it below.
                conn.publish("dns.events", event(n).as_bytes());
                n += 1;
                if n % 500 == 0 {
                    conn.flush();
                    while backlog(&mut conn) > 5_000 && !done.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            conn.flush();
            n
        })
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the host ended during the soak:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, Ordering::Relaxed);
    let published = publisher.join().unwrap();
    // Every event published reaches BIND: none lost to a crash.
    let (served, missing) =
        wait_all_served(&b, "soak", published, Duration::from_secs(300), || {
            assert!(child.try_wait().unwrap().is_none(), "{}", env.log());
        });
    let log = env.log();
    let restarts = log.matches("Plugin process restarted.").count();
    let crashes = log.matches("plugin process crashed (SIGSEGV)").count();
    eprintln!(
        "soak: {published} events in {secs} s ({:.0}/s), {crashes} crash log lines, {restarts} restarts, {} served",
        published as f64 / secs as f64,
        served
    );
    assert!(
        missing.is_empty(),
        "{} of {published} events never reached BIND, e.g. {missing:?}",
        published - served.min(published)
    );
    // The fault really happened, many times, and cost restarts of the plugin only.
    assert!(
        restarts >= 5,
        "expected many restarts of acme.flaky, saw {restarts}"
    );
    assert_eq!(
        log.matches("Gordon is running.").count(),
        1,
        "the host itself must never restart"
    );
    stop(&env, child);
}
