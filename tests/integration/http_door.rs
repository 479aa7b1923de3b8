//! The HTTP door of `http.events`, through the real binary: clients that stall
//! cannot keep others out (not even past the process's descriptor limit), the
//! framing is strict, and a token guards what changes DNS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::util::{
    dns_env_with, http_raw, http_status, raise_nofile_limit, signal, text, wait_exit, Env,
};

const EVENT: &str =
    r#"{"action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.1.2.3"]}}"#;
const TOKEN: &str = "s3cret-token-0123456789abcdef";

/// The default pipeline with `extra` added to `["http.events"]`.
fn door_env(extra: &str) -> Env {
    dns_env_with("", extra)
}

/// The port the service listens on, once it does; fails at once, with the log, if
/// it exits instead (a configuration it refuses).
fn port_of(env: &Env, child: &mut Child) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = env.path().join("port");
    loop {
        if let Ok(port) = std::fs::read_to_string(&path) {
            if let Ok(port) = port.trim().parse() {
                return port;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "gordon exited ({status}) instead of listening:\n{}",
                env.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "gordon did not listen:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn stop(env: &Env, mut child: Child) {
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", env.log());
}

/// One request on its own connection (`connection: close`), with every wait
/// bounded; returns the whole response text.
fn request(port: u16, head: &str, body: &str) -> String {
    let req = format!(
        "{head}\r\nhost: test\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    http_raw(port, req.as_bytes(), Duration::from_secs(10))
}

/// The JSON body of a response text.
fn json_body(response: &str) -> serde_json::Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// The value of a response header (names compared without case).
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split_once("\r\n\r\n").map_or(response, |(h, _)| h);
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one response (head and `content-length` body) from a kept-alive stream.
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "closed mid-head: {}",
            text(&got)
        );
        got.push(byte[0]);
    }
    let head = text(&got);
    let len: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &text(&body)
}

/// How long after `start` the server closed `s` (it sends nothing more, or only a
/// final response); `None` if it was still open after `limit`.
fn closed_after(mut s: TcpStream, start: Instant, limit: Duration) -> Option<(Duration, String)> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => Some((start.elapsed(), text(&got))),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Some((start.elapsed(), text(&got)))
        }
        Err(_) => None,
    }
}

/// Opens `n` connections that send half a request head and then nothing.
fn half_requests(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr(port)).unwrap();
            s.write_all(b"POST /events HTTP/1.1\r\nhost: test\r\ncontent-le")
                .unwrap();
            s
        })
        .collect()
}

/// A normal request, which must be served while others stall.
fn served_promptly(port: u16) {
    let start = Instant::now();
    let resp = request(port, "POST /events HTTP/1.1", EVENT);
    assert_eq!(http_status(&resp), 202, "{resp}");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "a normal client waited {:?} behind stalled ones",
        start.elapsed()
    );
}

/// Checks that each connection is closed by the server `secs` (the value of `key`)
/// after its `since`, give or take; returns what each received before the close.
fn closed_on_time(conns: Vec<(TcpStream, Instant, &'static str, u64)>) -> Vec<String> {
    let watchers: Vec<_> = conns
        .into_iter()
        .map(|(s, since, key, secs)| {
            std::thread::spawn(move || {
                let closed = closed_after(s, since, Duration::from_secs(secs + 10));
                (key, secs, closed)
            })
        })
        .collect();
    watchers
        .into_iter()
        .map(|w| {
            let (key, secs, closed) = w.join().unwrap();
            let (after, rest) =
                closed.unwrap_or_else(|| panic!("still open 10 s past `{key}` = {secs}"));
            let limit = Duration::from_secs(secs);
            assert!(
                after + Duration::from_millis(300) >= limit
                    && after <= limit + Duration::from_secs(4),
                "`{key}` = {secs}: closed after {after:?}"
            );
            rest
        })
        .collect()
}

#[test]
fn half_sent_requests_are_closed_within_the_default_header_timeout_and_block_no_one() {
    let env = door_env("");
    let mut child = env.spawn(&[]);
    let port = port_of(&env, &mut child);
    let start = Instant::now();
    let stalled = half_requests(port, 50);
    served_promptly(port);
    // `header_timeout` is 10 s by default.
    let conns = stalled
        .into_iter()
        .map(|s| (s, start, "header_timeout", 10))
        .collect();
    for rest in closed_on_time(conns) {
        assert_eq!(rest, "");
    }
    served_promptly(port);
    stop(&env, child);
}

#[test]
fn slow_heads_slow_bodies_and_idle_keep_alives_are_closed_at_their_own_timeouts() {
    let env = door_env("header_timeout = 2\nbody_timeout = 3\nidle_timeout = 4");
    let mut child = env.spawn(&[]);
    let port = port_of(&env, &mut child);

    let start = Instant::now();
    let heads = half_requests(port, 20);
    // One that sends its head and a tenth of its body.
    let mut body = TcpStream::connect(addr(port)).unwrap();
    body.write_all(b"POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n[{\"act")
        .unwrap();
    // One kept alive after a request, then silent.
    let mut idle = TcpStream::connect(addr(port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    let first = read_response(&mut idle);
    assert_eq!(http_status(&first), 200, "{first}");
    let idle_since = Instant::now();
    served_promptly(port);

    let mut conns: Vec<_> = heads
        .into_iter()
        .map(|s| (s, start, "header_timeout", 2))
        .collect();
    conns.push((body, start, "body_timeout", 3));
    conns.push((idle, idle_since, "idle_timeout", 4));
    let mut rests = closed_on_time(conns);
    let (idle_rest, body_rest) = (rests.pop().unwrap(), rests.pop().unwrap());
    assert_eq!(idle_rest, "", "idle");
    assert_eq!(http_status(&body_rest), 408, "{body_rest}");
    assert!(body_rest.contains("`body_timeout`"), "{body_rest}");
    assert!(rests.iter().all(String::is_empty), "{rests:?}");
    stop(&env, child);
}

/// `POST /events` on a fresh connection, every step bounded by `timeout`.
fn try_request(port: u16, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr(port), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{EVENT}",
        EVENT.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(text(&out))
}

#[test]
fn more_stalled_connections_than_descriptors_do_not_lock_a_client_out() {
    const STALLED: usize = 1500;
    const NOFILE: u64 = 1024;
    let have = raise_nofile_limit(STALLED as u64 + 1024);
    assert!(
        have > STALLED as u64 + 64,
        "this test needs {STALLED} sockets; the descriptor limit is {have}"
    );
    // Default timeouts and connection limit.
    let env = door_env("");
    let mut child = env.spawn_with(&[], &[], Some(NOFILE));
    let port = port_of(&env, &mut child);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        match TcpStream::connect_timeout(&addr(port), Duration::from_secs(2)) {
            Ok(mut s) => {
                // Half a request: the server is now waiting for this client.
                let _ = s.write_all(b"POST /events HTTP/1.1\r\nhost: test\r\n");
                stalled.push(s);
            }
            Err(_) => break,
        }
    }
    let flood_done = Instant::now();

    // A normal client is served promptly, far inside `header_timeout`.
    let start = Instant::now();
    let resp = try_request(port, Duration::from_secs(8));
    let took = start.elapsed();
    let resp = resp.unwrap_or_else(|e| {
        panic!(
            "a normal client was not served behind {} stalled connections: {e} after {took:?}\n{}",
            stalled.len(),
            env.log()
        )
    });
    assert_eq!(http_status(&resp), 202, "{resp}");
    assert_eq!(stalled.len(), STALLED, "not every stalled client got in");
    assert!(took < Duration::from_secs(3), "served after {took:?}");

    // The excess was closed at once, the rest within `header_timeout` (10 s).
    let open = |stalled: &[TcpStream]| {
        stalled
            .iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                let mut b = [0u8; 1];
                let mut r: &TcpStream = s;
                matches!(r.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    // Connections past `max_connections` (512) are closed as newer ones arrive;
    // the closes reach this side within moments, not at the header timeout.
    let evicted_by = Instant::now() + Duration::from_secs(5);
    let mut now_open = open(&stalled);
    while now_open > 600 && Instant::now() < evicted_by {
        std::thread::sleep(Duration::from_millis(100));
        now_open = open(&stalled);
    }
    assert!(
        now_open <= 600,
        "{now_open} of {STALLED} stalled connections still open at the limit"
    );
    let deadline = flood_done + Duration::from_secs(10 + 5);
    let mut still = now_open;
    while still > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        still = open(&stalled);
    }
    assert_eq!(still, 0, "stalled connections outlived `header_timeout`");
    let health = request(port, "GET /healthz HTTP/1.1", "");
    assert_eq!(http_status(&health), 200, "{health}");
    drop(stalled);
    stop(&env, child);
}

#[test]
fn a_bearer_token_guards_the_events_but_not_healthz_and_is_never_logged() {
    let env = door_env("");
    let token_file = env.path().join("http.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    crate::util::set_mode(&token_file, 0o600);
    env.config(
        &std::fs::read_to_string(env.path().join("gordon.toml"))
            .unwrap()
            .replace(
                "[\"dns\"]",
                &format!("token_file = \"{}\"\n[\"dns\"]", token_file.display()),
            ),
    );
    let mut child = env.spawn(&["-v"]);
    let port = port_of(&env, &mut child);

    let none = request(port, "POST /events HTTP/1.1", EVENT);
    assert_eq!(http_status(&none), 401, "{none}");
    assert!(
        header(&none, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")),
        "{none}"
    );
    let wrong = request(
        port,
        "POST /events HTTP/1.1\r\nauthorization: Bearer s3cret-token-0123456789abcdeX",
        EVENT,
    );
    assert_eq!(http_status(&wrong), 401, "{wrong}");
    assert!(
        header(&wrong, "www-authenticate").is_some_and(|v| v.contains("invalid_token")),
        "{wrong}"
    );
    let prefix = request(
        port,
        "POST /events HTTP/1.1\r\nauthorization: Bearer s3cret",
        EVENT,
    );
    assert_eq!(http_status(&prefix), 401, "{prefix}");
    // A refused request never gets its `100 Continue`: its body is not wanted.
    let expect = http_raw(
        port,
        format!("POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n", EVENT.len()).as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(http_status(&expect), 401, "{expect}");

    let ok = request(
        port,
        &format!("POST /events HTTP/1.1\r\nauthorization: bearer {TOKEN}"),
        EVENT,
    );
    assert_eq!(http_status(&ok), 202, "{ok}");
    let id = json_body(&ok)["ids"][0].as_str().unwrap().to_owned();
    let status_path = format!("GET /events/{id} HTTP/1.1");
    assert_eq!(http_status(&request(port, &status_path, "")), 401);
    let status = request(
        port,
        &format!("{status_path}\r\nauthorization: Bearer {TOKEN}"),
        "",
    );
    assert_eq!(http_status(&status), 200, "{status}");
    assert_eq!(
        http_status(&request(port, "GET /healthz HTTP/1.1", "")),
        200
    );
    stop(&env, child);
    let log = env.log();
    assert!(log.contains("authentication=\"bearer token\""), "{log}");
    assert!(!log.contains("s3cret"), "the token reached the log:\n{log}");

    // The same from an environment variable.
    let env = door_env("token_env = \"GORDON_TEST_HTTP_TOKEN\"");
    let mut child = env.spawn_with(&[], &[("GORDON_TEST_HTTP_TOKEN", TOKEN)], None);
    let port = port_of(&env, &mut child);
    assert_eq!(
        http_status(&request(port, "POST /events HTTP/1.1", EVENT)),
        401
    );
    let ok = request(
        port,
        &format!("POST /events HTTP/1.1\r\nauthorization: Bearer {TOKEN}"),
        EVENT,
    );
    assert_eq!(http_status(&ok), 202, "{ok}");
    stop(&env, child);
}

#[test]
fn chunked_bodies_are_accepted_and_bounded_by_max_body_bytes() {
    let env = door_env("max_body_bytes = 1000");
    let mut child = env.spawn(&[]);
    let port = port_of(&env, &mut child);
    let (a, b) = EVENT.split_at(20);
    let chunked = format!(
        "POST /events HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let resp = http_raw(port, chunked.as_bytes(), Duration::from_secs(10));
    assert_eq!(http_status(&resp), 202, "{resp}");
    assert_eq!(json_body(&resp)["accepted"], 1, "{resp}");

    // Over the limit, chunked or sized: 413.
    let big = "x".repeat(700);
    let over = format!(
        "POST /events HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{n:x}\r\n{big}\r\n{n:x}\r\n{big}\r\n0\r\n\r\n",
        n = big.len()
    );
    let resp = http_raw(port, over.as_bytes(), Duration::from_secs(10));
    assert_eq!(http_status(&resp), 413, "{resp}");
    let sized = http_raw(
        port,
        b"POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: 5000\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(http_status(&sized), 413, "{sized}");
    stop(&env, child);
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let env = door_env("");
    let mut child = env.spawn(&[]);
    let port = port_of(&env, &mut child);
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    write!(
        s,
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        EVENT.len()
    )
    .unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => interim.push(byte[0]),
            other => panic!(
                "no interim response after {:?} ({other:?}): {}",
                start.elapsed(),
                text(&interim)
            ),
        }
    }
    let waited = start.elapsed();
    assert!(
        text(&interim).starts_with("HTTP/1.1 100 Continue\r\n"),
        "{}",
        text(&interim)
    );
    // curl gives up waiting after a second and sends the body anyway.
    assert!(waited < Duration::from_millis(500), "100 after {waited:?}");
    s.write_all(EVENT.as_bytes()).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let rest = text(&rest);
    assert_eq!(http_status(&rest), 202, "{rest}");
    stop(&env, child);
}

#[test]
fn conflicting_content_lengths_are_refused() {
    let env = door_env("");
    let mut child = env.spawn(&[]);
    let port = port_of(&env, &mut child);
    // Behind a proxy that reads the first length, the event would be a second,
    // smuggled request; a server that reads the last one accepts it.
    let req = format!(
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{EVENT}",
        EVENT.len()
    );
    let resp = http_raw(port, req.as_bytes(), Duration::from_secs(10));
    assert_eq!(http_status(&resp), 400, "{resp}");
    assert!(!resp.contains("HTTP/1.1 202"), "{resp}");
    let listed = format!(
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {n}, 0\r\nconnection: close\r\n\r\n{EVENT}",
        n = EVENT.len()
    );
    let resp = http_raw(port, listed.as_bytes(), Duration::from_secs(10));
    assert_eq!(http_status(&resp), 400, "{resp}");
    // Repeated lengths that agree are refused too: a proxy that drops or rewrites
    // one of them frames the request otherwise.
    let repeated = format!(
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {n}\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n{EVENT}",
        n = EVENT.len()
    );
    let resp = http_raw(port, repeated.as_bytes(), Duration::from_secs(10));
    assert_eq!(http_status(&resp), 400, "{resp}");
    assert!(resp.contains("Content-Length headers"), "{resp}");
    assert!(!resp.contains("HTTP/1.1 202"), "{resp}");
    // One length is accepted on the same server.
    assert_eq!(
        http_status(&request(port, "POST /events HTTP/1.1", EVENT)),
        202
    );
    stop(&env, child);
}

#[test]
fn query_strings_do_not_change_the_route_and_head_works() {
    let env = door_env("");
    let mut child = env.spawn(&[]);
    let port = port_of(&env, &mut child);
    let resp = request(port, "POST /events?source=cmdb HTTP/1.1", EVENT);
    assert_eq!(http_status(&resp), 202, "{resp}");
    let id = json_body(&resp)["ids"][0].as_str().unwrap().to_owned();
    let status = request(port, &format!("GET /events/{id}?verbose=1 HTTP/1.1"), "");
    assert_eq!(http_status(&status), 200, "{status}");
    assert_eq!(json_body(&status)["id"], id.as_str(), "{status}");
    let health = request(port, "GET /healthz?probe=lb HTTP/1.1", "");
    assert_eq!(http_status(&health), 200, "{health}");
    assert_eq!(json_body(&health), "ok", "{health}");

    // HEAD: GET's status and headers, no body.
    for path in ["/healthz", "/healthz?probe=lb", &format!("/events/{id}")] {
        let head = http_raw(
            port,
            format!("HEAD {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(10),
        );
        assert_eq!(http_status(&head), 200, "HEAD {path}: {head}");
        assert!(head.ends_with("\r\n\r\n"), "HEAD {path} has a body: {head}");
        assert!(
            header(&head, "content-type") == Some("application/json"),
            "HEAD {path}: {head}"
        );
    }
    let head = http_raw(
        port,
        b"HEAD /events HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(http_status(&head), 405, "{head}");
    stop(&env, child);
}

#[test]
fn a_non_loopback_listener_without_a_token_fails_check_naming_the_key() {
    let env = door_env("");
    let config = std::fs::read_to_string(env.path().join("gordon.toml")).unwrap();
    let open = config.replace("127.0.0.1:0", "0.0.0.0:0");
    env.config(&open);
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("http.events") && l.contains("`listen`"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("`token_file`")
            && line.contains("`token_env`")
            && line.contains("`allow_unauthenticated")
            && line.contains("0.0.0.0:0"),
        "{line}"
    );

    // Allowed explicitly, or with a token: fine.
    env.config(&open.replace("[\"dns\"]", "allow_unauthenticated = true\n[\"dns\"]"));
    let out = env.gordon(&["check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let token_file = env.path().join("http.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let with_token = open.replace(
        "[\"dns\"]",
        &format!("token_file = \"{}\"\n[\"dns\"]", token_file.display()),
    );
    env.config(&with_token);
    let out = env.gordon(&["check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    // A token that cannot be read, or is too short, is an error naming the key and
    // never showing the token.
    std::fs::write(&token_file, "s3cret").unwrap();
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("`token_file`"), "{stdout}");
    assert!(!stdout.contains("s3cret") && !text(&out.stderr).contains("s3cret"));
    std::fs::remove_file(&token_file).unwrap();
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("`token_file`: cannot read"), "{stdout}");
}
