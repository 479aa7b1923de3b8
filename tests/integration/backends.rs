//! Real backends end to end: events on NATS JetStream -> nats.events ->
//! dns.enricher -> dns.rfc2136 -> BIND, read back by AXFR.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use gordon_test_servers::bind::{Bind, Key};
use gordon_test_servers::nats::Nats;

use crate::util::{sample, signal, wait_exit, Env};
use gordon_test_servers::nats_client::NatsConn;

pub const ZONE: &str = "example.test.";

pub struct Backend {
    pub bind: Bind,
    pub nats: Nats,
    pub key: Key,
}

pub fn backend() -> Option<Backend> {
    let key = Key::random("gordon-key", "hmac-sha256");
    let bind = Bind::start(ZONE, std::slice::from_ref(&key))?;
    let nats = Nats::start()?;
    let mut conn = NatsConn::connect(nats.port());
    conn.create_stream("EVENTS", "dns.events");
    Some(Backend { bind, nats, key })
}

/// A config root running nats.events -> dns.enricher -> dns.rfc2136.
pub fn gordon_env(b: &Backend, key: &Key, extra: &str) -> Env {
    let env = Env::new();
    env.install(&sample("nats"), "libgordon_plugin_nats.so");
    env.install(&sample("dns"), "libgordon_plugin_dns.so");
    env.install(&sample("rfc2136"), "libgordon_plugin_rfc2136.so");
    std::fs::write(env.path().join("tsig.key"), key.bind_stanza()).unwrap();
    env.config(&format!(
        r#"[core]
plugins = ["nats.events", "dns.enricher", "dns.rfc2136"]
shutdown_timeout = 10
["nats.events"]
servers = ["nats://127.0.0.1:{nats}"]
stream = "EVENTS"
subject = "dns.events"
durable = "gordon"
create = true
ack_wait = 2
nak_backoff_ms = 100
max_deliver = 50
dead_letter_subject = "dns.dead"
["dns"]
zone = "{ZONE}"
["dns.rfc2136"]
server = "{server}"
tsig_key_file = "{keyfile}"
retries = 1
{extra}
"#,
        nats = b.nats.port(),
        server = b.bind.addr(),
        keyfile = env.file("tsig.key"),
    ));
    env
}

fn event(i: usize) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"host{i}","type":"A","rrdatas":["10.9.{}.{}"]}}}}"#,
        i / 250,
        i % 250 + 1
    )
}

fn publish(b: &Backend, range: std::ops::Range<usize>) {
    let mut conn = NatsConn::connect(b.nats.port());
    for i in range {
        conn.js_publish("dns.events", event(i).as_bytes());
    }
}

/// Waits until the `EVENTS` stream holds all `published` events, then until BIND
/// serves `{prefix}{i}` for every `i < published` (checking `alive` while it
/// waits, up to `timeout`). Returns how many are served and up to ten missing.
pub fn wait_all_served(
    b: &Backend,
    prefix: &str,
    published: usize,
    timeout: Duration,
    mut alive: impl FnMut(),
) -> (usize, Vec<String>) {
    let mut conn = NatsConn::connect(b.nats.port());
    conn.flush();
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.stream_last_seq("EVENTS") < published as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        conn.stream_last_seq("EVENTS"),
        published as u64,
        "the stream did not capture every event"
    );
    let deadline = Instant::now() + timeout;
    let mut got = served_named(b, prefix);
    while got.len() < published && Instant::now() < deadline {
        alive();
        std::thread::sleep(Duration::from_millis(500));
        got = served_named(b, prefix);
    }
    let missing = (0..published)
        .map(|i| format!("{prefix}{i}.{ZONE}"))
        .filter(|n| !got.contains(n))
        .take(10)
        .collect();
    (got.len(), missing)
}

/// Owner names of the `host*` A records BIND serves.
fn served(b: &Backend) -> BTreeSet<String> {
    served_named(b, "host")
}

/// Owner names of the A records BIND serves whose name starts with `prefix`.
pub fn served_named(b: &Backend, prefix: &str) -> BTreeSet<String> {
    b.bind
        .axfr()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[3] == "A" && f[0].starts_with(prefix)).then(|| f[0].to_owned())
        })
        .collect()
}

fn wait_served(b: &Backend, n: usize, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = served(b).len();
        if got >= n {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "only {got} of {n} records served after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stop(env: &Env, mut child: std::process::Child) {
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", env.log());
}

#[test]
fn events_on_nats_become_records_served_by_bind() {
    let Some(b) = backend() else { return };
    let env = gordon_env(&b, &b.key, "");
    let child = env.spawn(&[]);
    // The first event also waits for start-up; time the second batch on its own.
    publish(&b, 0..1);
    wait_served(&b, 1, Duration::from_secs(30));
    publish(&b, 1..101);
    let took = wait_served(&b, 101, Duration::from_secs(30));
    assert!(
        took < Duration::from_secs(5),
        "100 events took {took:?} to reach DNS"
    );
    assert_host42_served(&b);
    stop(&env, child);
}

/// BIND serves `host42`, the 43rd published event, with its address.
fn assert_host42_served(b: &Backend) {
    let line = b
        .bind
        .axfr()
        .into_iter()
        .find(|l| l.starts_with("host42."))
        .unwrap();
    assert!(line.contains("10.9.0.43"), "{line}");
}

#[test]
fn a_wrong_tsig_key_drops_with_the_auth_error_and_loses_nothing() {
    let Some(b) = backend() else { return };
    let wrong = Key::new(
        "gordon-key",
        "hmac-sha256",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let env = gordon_env(&b, &wrong, "");
    let child = env.spawn(&[]);
    publish(&b, 0..5);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !env.log().contains("TSIG authentication failed") {
        assert!(
            Instant::now() < deadline,
            "no auth error logged:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served(&b).is_empty(), "records changed with a wrong key");
    assert!(!env.log().contains(&b.key.secret), "the secret was logged");
    stop(&env, child);
    // Fix the key: the same messages are redelivered and land.
    std::fs::write(env.path().join("tsig.key"), b.key.bind_stanza()).unwrap();
    let child = env.spawn(&[]);
    wait_served(&b, 5, Duration::from_secs(30));
    stop(&env, child);
}

#[test]
fn two_processes_split_the_work_without_doing_any_twice() {
    let Some(b) = backend() else { return };
    let ports = [crate::util::free_port(), crate::util::free_port()];
    let envs: Vec<Env> = ports
        .iter()
        .map(|p| {
            let env = gordon_env(&b, &b.key, "");
            // Pulls of 10: whichever process asks first cannot take the whole
            // backlog in one fetch, and JetStream serves waiting pulls in turn.
            env.user_config(&format!(
                "[core]\nmetrics = \"prometheus\"\n[prometheus]\nlisten = \"127.0.0.1:{p}\"\n\
                 [\"nats.events\"]\nbatch = 10\n"
            ));
            env
        })
        .collect();
    let children: Vec<_> = envs.iter().map(|e| e.spawn(&[])).collect();
    // Both processes are pulling (JetStream holds a fetch of each) before the
    // backlog is published: otherwise the first to start may finish it alone.
    let mut conn = NatsConn::connect(b.nats.port());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = conn.request("$JS.API.CONSUMER.INFO.EVENTS.gordon", b"");
        if info["num_waiting"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not both pulling: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    publish(&b, 0..200);
    wait_served(&b, 200, Duration::from_secs(60));
    let published: Vec<f64> = ports.iter().map(|p| publish_count(*p)).collect();
    for (env, child) in envs.iter().zip(children) {
        stop(env, child);
    }
    assert_eq!(
        published.iter().sum::<f64>(),
        200.0,
        "per process: {published:?}"
    );
    assert!(
        published.iter().all(|n| *n > 0.0),
        "one process did all the work: {published:?}"
    );
}

fn publish_count(port: u16) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find(|l| l.starts_with("gordon_messages_total{phase=\"publish\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn kill_9_of_one_process_mid_stream_loses_nothing() {
    let Some(b) = backend() else { return };
    let envs = [gordon_env(&b, &b.key, ""), gordon_env(&b, &b.key, "")];
    let mut victim = envs[0].spawn(&[]);
    let survivor = envs[1].spawn(&[]);
    publish(&b, 0..300);
    wait_served(&b, 20, Duration::from_secs(30));
    victim.kill().unwrap();
    let _ = victim.wait();
    wait_served(&b, 300, Duration::from_secs(60));
    stop(&envs[1], survivor);
}

#[test]
fn a_nats_restart_mid_stream_is_survived() {
    let Some(mut b) = backend() else { return };
    let env = gordon_env(&b, &b.key, "");
    let child = env.spawn(&[]);
    publish(&b, 0..50);
    wait_served(&b, 50, Duration::from_secs(30));
    b.nats.restart();
    publish(&b, 50..100);
    wait_served(&b, 100, Duration::from_secs(60));
    stop(&env, child);
}

#[test]
fn a_poison_message_goes_to_the_dead_letter_subject() {
    let Some(b) = backend() else { return };
    let env = gordon_env(&b, &b.key, "");
    let cfg = std::fs::read_to_string(env.path().join("gordon.toml"))
        .unwrap()
        .replace("max_deliver = 50", "max_deliver = 2");
    env.config(&cfg);
    let mut watcher = NatsConn::connect(b.nats.port());
    watcher.subscribe("dns.dead");
    let child = env.spawn(&[]);
    let mut conn = NatsConn::connect(b.nats.port());
    conn.js_publish(
        "dns.events",
        br#"{"action":"additions","resourceRecords":{"name":"poison","type":"A","rrdatas":["300.1.1.1"]}}"#,
    );
    publish(&b, 0..3);
    let msg = watcher
        .next_msg(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no dead letter\n{}", env.log()));
    let doc: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(doc["payload"]["resourceRecords"]["name"], "poison", "{doc}");
    assert!(doc["history"].to_string().contains("300.1.1.1"), "{doc}");
    wait_served(&b, 3, Duration::from_secs(30));
    stop(&env, child);
}

/// `servers`: the first dead (nothing listens on its port), the second BIND by a
/// host name. `check --connect` names the dead one; the service fails over to BIND
/// and every event lands.
#[test]
fn a_dead_first_server_is_failed_over_to_bind_by_host_name_and_nothing_is_lost() {
    let Some(b) = backend() else { return };
    let env = gordon_env(&b, &b.key, "");
    let dead = format!("127.0.0.1:{}", crate::util::free_port());
    let named = format!("localhost:{}", b.bind.port());
    let cfg = std::fs::read_to_string(env.path().join("gordon.toml")).unwrap();
    let line = format!("server = \"{}\"\n", b.bind.addr());
    assert_eq!(cfg.matches(&line).count(), 1, "{cfg}");
    env.config(&cfg.replace(&line, &format!("servers = [\"{dead}\", \"{named}\"]\n")));

    let check = env.gordon(&["check", "--connect"]);
    let out = crate::util::text(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "1 of the 2 servers of `servers` failed the check ({named} passed): server {dead} refused the connection"
        )),
        "{out}"
    );

    let child = env.spawn(&[]);
    publish(&b, 0..100);
    let (served, missing) = wait_all_served(&b, "host", 100, Duration::from_secs(60), || {});
    assert_eq!(served, 100, "missing {missing:?}\n{}", env.log());
    assert_host42_served(&b);
    let log = env.log();
    let failover = log
        .lines()
        .find(|l| l.contains("Failed over to another DNS server"))
        .unwrap_or_else(|| panic!("no fail-over logged:\n{log}"));
    assert!(
        failover.contains(&dead) && failover.contains(&named),
        "{failover}"
    );
    stop(&env, child);
}
