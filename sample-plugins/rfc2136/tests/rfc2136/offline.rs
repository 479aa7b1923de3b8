//! Failures that need no DNS server.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gordon_plugin_api::testing;
use gordon_plugin_rfc2136::Rfc2136;
use gordon_test_servers::{bind::Key, free_port};

use crate::util::{add, config, del, ZONE};

fn harness(addr: &str, extra: &str) -> (testing::HandlerHarness<Rfc2136>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::random("gordon-key", "hmac-sha256");
    let text = config(dir.path(), addr, &key, ZONE, extra);
    (testing::handler::<Rfc2136>(&text).unwrap(), dir)
}

#[test]
fn a_refused_connection_is_retried_then_reported() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    for transport in ["auto", "tcp"] {
        let extra = format!("transport = \"{transport}\"\nretries = 2\nretry_backoff_ms = 5");
        let (h, _dir) = harness(&addr, &extra);
        let err = h.handle(del("www", "A")).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("server {addr} refused the connection (zone {ZONE}): is it running?")
        );
    }
}

#[test]
fn a_silent_server_times_out_after_the_retries() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let (h, _dir) = harness(
        &addr,
        "timeout_ms = 100\nretries = 2\nretry_backoff_ms = 20",
    );
    let started = Instant::now();
    let err = h.handle(del("www", "A")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("no answer from server {addr} for zone {ZONE} within 100 ms")
    );
    // Three attempts of 100 ms, and pauses of about 20 and 40 ms.
    let took = started.elapsed().as_millis();
    assert!((300..2000).contains(&took), "took {took} ms");
    let mut buf = [0u8; 512];
    silent.set_nonblocking(true).unwrap();
    let mut datagrams = 0;
    while silent.recv(&mut buf).is_ok() {
        datagrams += 1;
    }
    assert_eq!(datagrams, 3, "one try and two retries");
}

#[test]
fn invalid_events_fail_alone_before_anything_is_sent() {
    let (h, _dir) = harness(&format!("127.0.0.1:{}", free_port()), "retries = 0");
    let results = h.handle_batch(vec![
        add("www.example.org.", "A", &["10.0.0.1"]),
        add("www", "A", &["not an address"]),
        add("@", "SOA", &["x"]),
    ]);
    let texts: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "name www.example.org. is outside zone example.test.",
            "invalid A rrdata \"not an address\" for www.example.test.: not an IPv4 address",
            "cannot change the SOA of example.test.: the server manages it",
        ]
    );
}

/// A fake server answering every datagram with a bare header: same id, the given
/// rcode, no records and no signature. Returns its address and a request counter.
fn fake_server(rcode: u8) -> (String, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let mut answer = buf[..12].to_vec();
            answer[2] |= 0x80;
            answer[3] = (answer[3] & 0xf0) | rcode;
            answer[4..12].fill(0);
            let _ = sock.send_to(&answer, peer);
        }
    });
    (addr, count)
}

#[test]
fn servfail_is_retried_then_reported() {
    let (addr, count) = fake_server(2);
    let (h, _dir) = harness(&addr, "retries = 2\nretry_backoff_ms = 5");
    let err = h.handle(del("www", "A")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("server {addr} failed to apply the update for zone {ZONE} (SERVFAIL)")
    );
    assert_eq!(count.load(Ordering::SeqCst), 3, "one try and two retries");
}

#[test]
fn refused_is_not_retried() {
    let (addr, count) = fake_server(5);
    let (h, _dir) = harness(&addr, "retries = 2\nretry_backoff_ms = 5");
    let err = h.handle(del("www", "A")).unwrap_err().to_string();
    assert!(err.contains("(REFUSED)"), "{err}");
    // The update, then the empty probe UPDATE that tells a zone-wide refusal.
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn an_unsigned_success_is_not_trusted() {
    let (addr, _count) = fake_server(0);
    let (h, _dir) = harness(&addr, "retries = 0");
    let err = h.handle(del("www", "A")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "TSIG authentication failed with server {addr} for zone {ZONE}: its answer cannot be trusted: the answer is not signed"
        )
    );
}

fn check(addr: &str, extra: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::random("gordon-key", "hmac-sha256");
    let text = config(dir.path(), addr, &key, ZONE, extra);
    testing::validate_dependencies::<Rfc2136>(&text).map_err(|e| e.to_string())
}

#[test]
fn the_dependency_check_names_an_unreachable_server() {
    let addr = format!("127.0.0.1:{}", free_port());
    for transport in ["auto", "tcp"] {
        let err = check(&addr, &format!("transport = \"{transport}\"")).unwrap_err();
        assert_eq!(
            err,
            format!("server {addr} refused the connection (zone {ZONE}): is it running?")
        );
    }
    // A silent server: the check waits at most 3 s per try, whatever `timeout_ms`.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let err = check(&addr, "timeout_ms = 60000\nretries = 5").unwrap_err();
    assert_eq!(
        err,
        format!("no answer from server {addr} for zone {ZONE} within 3000 ms")
    );
    let took = started.elapsed().as_millis();
    assert!(
        (6000..9000).contains(&took),
        "one try and one retry: {took} ms"
    );
    // Configuration errors come first.
    let err = check(&addr, "max_batch = 0").unwrap_err();
    assert!(err.contains("`max_batch`"), "{err}");
}

#[test]
fn the_dependency_check_does_not_trust_an_unsigned_answer() {
    let (addr, _count) = fake_server(0);
    let err = check(&addr, "retries = 0").unwrap_err();
    assert_eq!(
        err,
        format!(
            "TSIG authentication failed with server {addr} for zone {ZONE}: its answer cannot be trusted: the answer is not signed"
        )
    );
    let (addr, _count) = fake_server(5);
    let err = check(&addr, "retries = 0").unwrap_err();
    assert!(
        err.starts_with(&format!(
            "server {addr} answered REFUSED to a TSIG-signed SOA query for zone {ZONE}"
        )),
        "{err}"
    );
}

#[test]
fn probe_answers_from_what_the_server_said() {
    use gordon_plugin_api::serde_json::json;
    // An unsigned NXDOMAIN proves nothing about the key.
    let (addr, count) = fake_server(3);
    let (h, _dir) = harness(&addr, "retries = 0");
    let out = h.invoke("probe", json!({})).unwrap();
    assert_eq!(
        (
            &out["may_update"],
            &out["rcode"],
            &out["zone"],
            &out["server"]
        ),
        (
            &json!(false),
            &json!("NXDOMAIN"),
            &json!(ZONE),
            &json!(addr)
        ),
        "{out}"
    );
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("without signing it"),
        "{out}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "one UPDATE");
    let (addr, _count) = fake_server(5);
    let (h, _dir) = harness(&addr, "retries = 0");
    let out = h.invoke("probe", json!({})).unwrap();
    assert_eq!(
        (&out["may_update"], &out["rcode"]),
        (&json!(false), &json!("REFUSED")),
        "{out}"
    );
    // No answer: the action fails, naming the server and the zone.
    let addr = format!("127.0.0.1:{}", free_port());
    let (h, _dir) = harness(&addr, "retries = 0");
    let err = h.invoke("probe", json!({})).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("server {addr} refused the connection (zone {ZONE}): is it running?")
    );
}

#[test]
fn a_host_name_that_does_not_resolve_is_named_by_the_handler_and_the_check() {
    let addr = "no-such-host.invalid:53";
    let start = format!("cannot resolve the host name of server {addr} for zone {ZONE}: ");
    let (h, _dir) = harness(addr, "retries = 1\nretry_backoff_ms = 5");
    let err = h.handle(del("www", "A")).unwrap_err().to_string();
    assert!(err.starts_with(&start), "{err}");
    assert!(err.ends_with("(check `server` / `servers`)"), "{err}");
    let err = check(addr, "").unwrap_err();
    assert!(err.starts_with(&start), "{err}");
    // Two servers that cannot be reached: each is named, in order.
    let refused = format!("127.0.0.1:{}", free_port());
    let servers = format!("servers = [\"{refused}\", \"{addr}\"]\nretries = 0");
    let (h, _dir) = harness("-", &servers);
    let err = h.handle(del("www", "A")).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "no server could be reached for zone {ZONE}: {refused}: connection refused; {addr}: cannot resolve the name: "
        )),
        "{err}"
    );
    let err = check("-", &servers).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "2 of the 2 servers of `servers` failed the check: server {refused} refused the connection (zone {ZONE}): is it running?; {start}"
        )),
        "{err}"
    );
}
