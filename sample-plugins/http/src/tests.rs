use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gordon_plugin_api::testing;
use gordon_plugin_api::Phase;

use crate::HttpEvents;

fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    (status, serde_json::from_str(body).unwrap())
}

fn start() -> (testing::RunnableHarness<HttpEvents>, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let cfg = format!(
        "listen = \"127.0.0.1:0\"\nport_file = \"{}\"\n",
        port_file.display()
    );
    let h = testing::runnable::<HttpEvents>(&cfg, 64).unwrap();
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .parse()
        .unwrap();
    (h, port, dir)
}

const EVENT: &str = r#"{"action":"additions","resourceRecords":{"name":"www.example.com.","type":"A","rrdatas":["10.0.0.1"]}}"#;

#[test]
fn accepted_events_reach_the_channel_and_report_their_outcome() {
    let (h, port, _dir) = start();
    let (status, body) = request(port, "POST", "/events", &format!("[{EVENT},{EVENT}]"));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);
    let id = body["ids"][0].as_str().unwrap().to_owned();
    let mut msgs = h.recv(2, Duration::from_secs(5));
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].record().name(), "www.example.com.");
    assert_eq!(
        request(port, "GET", &format!("/events/{id}"), "").1["status"],
        "pending"
    );
    msgs[0].update_phase(Phase::CLEANUP, "router");
    msgs[1].update_phase(Phase::DROP, "router");
    h.cleanup(&msgs).unwrap();
    let (status, doc) = request(port, "GET", &format!("/events/{id}"), "");
    assert_eq!(status, 200);
    assert_eq!(doc["status"], "published", "{doc}");
    assert_eq!(
        doc["history"][0]["message"],
        "Updated phase from consume to cleanup"
    );
    let other = body["ids"][1].as_str().unwrap();
    assert_eq!(
        request(port, "GET", &format!("/events/{other}"), "").1["status"],
        "dropped"
    );
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn bad_events_get_400_and_nothing_is_enqueued() {
    let (h, port, _dir) = start();
    let (status, body) = request(port, "POST", "/events", "{not json");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("invalid JSON"),
        "{body}"
    );
    let bad_schema = format!(r#"[{EVENT}, {{"action":"additions"}}]"#);
    let (status, body) = request(port, "POST", "/events", &bad_schema);
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("event 1: missing `resourceRecords`"),
        "{body}"
    );
    assert!(
        h.recv(1, Duration::from_millis(200)).is_empty(),
        "a rejected body was enqueued"
    );
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn unknown_routes_and_ids() {
    let (h, port, _dir) = start();
    assert_eq!(request(port, "GET", "/nope", "").0, 404);
    assert_eq!(request(port, "GET", "/events", "").0, 405);
    assert_eq!(
        request(
            port,
            "GET",
            "/events/00000000-0000-4000-8000-000000000000",
            ""
        )
        .0,
        404
    );
    assert_eq!(request(port, "GET", "/healthz", "").0, 200);
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn invalid_listen_address_is_a_config_error() {
    let err = testing::validate::<HttpEvents>("listen = \"localhost\"").unwrap_err();
    assert!(err.message().contains("`listen`"), "{err}");
    let err = testing::validate::<HttpEvents>("bogus = 1").unwrap_err();
    assert!(err.message().contains("bogus"), "{err}");
}

#[test]
fn events_that_could_break_a_zone_or_are_ambiguous_get_400_naming_the_field() {
    let (h, port, _dir) = start();
    let addrs: Vec<String> = (0..101).map(|i| format!("\"10.0.1.{i}\"")).collect();
    let rr = |body: &str| format!(r#"{{"action":"additions","resourceRecords":{{{body}}}}}"#);
    let cases = [
        (
            rr(&format!(
                r#""name":"www","type":"A","rrdatas":[{}]"#,
                addrs.join(",")
            )),
            "resourceRecords.rrdatas: 101 records in one record set; at most 100",
        ),
        (
            rr(r#""name":"*","type":"NS","rrdatas":["ns.other.net."]"#),
            "resourceRecords.name: \"*\" is a wildcard name",
        ),
        (
            rr(r#""name":"@","type":"MX","rrdatas":["10 192.0.2.1"]"#),
            "resourceRecords.rrdatas[0]: the exchange \"192.0.2.1\" is an IP address",
        ),
        (
            rr(r#""name":"www\n","type":"A","rrdatas":["10.0.0.1"]"#),
            "resourceRecords.name: \"www\\n\" contains whitespace",
        ),
        (
            rr(r#""name":"www","type":"A","rrdatas":["10.0.0.1"],"TTL":600"#),
            "resourceRecords: unknown key \"TTL\"",
        ),
        (
            r#"{"action":"deletions","action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.0.0.1"]}}"#
                .to_owned(),
            "duplicate key \"action\"",
        ),
        (
            rr(r#""name":"t","type":"TXT","rrdatas":["\"\"x\"\""]"#),
            "resourceRecords.rrdatas[0]: TXT data that starts with '\"'",
        ),
    ];
    for (body, want) in cases {
        let (status, doc) = request(port, "POST", "/events", &body);
        assert_eq!(status, 400, "{body}: {doc}");
        let error = doc["error"].as_str().unwrap();
        assert!(error.starts_with(want), "{want}: {error}");
    }
    assert!(
        h.recv(1, Duration::from_millis(200)).is_empty(),
        "a refused body was enqueued"
    );
    // Extra top-level fields and Cloud DNS's `kind` are fine.
    let ok = rr(r#""kind":"dns#resourceRecordSet","name":"www","type":"A","rrdatas":["10.0.0.1"]"#)
        .replacen('{', r#"{"source":"cmdb","#, 1);
    assert_eq!(request(port, "POST", "/events", &ok).0, 202);
    assert_eq!(h.recv(1, Duration::from_secs(5)).len(), 1);
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_listener_other_hosts_can_reach_needs_a_token_or_an_explicit_allowance() {
    for listen in ["0.0.0.0:8080", "192.0.2.1:8080", "[::]:8080"] {
        let err = testing::validate::<HttpEvents>(&format!("listen = \"{listen}\"")).unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains("`listen`")
                && msg.contains("`token_file`")
                && msg.contains("`token_env`")
                && msg.contains("`allow_unauthenticated = true`"),
            "{msg}"
        );
        testing::validate::<HttpEvents>(&format!(
            "listen = \"{listen}\"\nallow_unauthenticated = true"
        ))
        .unwrap();
    }
    for listen in ["127.0.0.1:8080", "127.3.2.1:0", "[::1]:8080"] {
        testing::validate::<HttpEvents>(&format!("listen = \"{listen}\"")).unwrap();
    }
}

#[test]
fn token_sources_are_checked_without_showing_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let cfg = format!(
        "listen = \"0.0.0.0:0\"\ntoken_file = \"{}\"",
        file.display()
    );
    let err = testing::validate::<HttpEvents>(&cfg).unwrap_err();
    assert!(
        err.message().starts_with("`token_file`: cannot read"),
        "{err}"
    );
    std::fs::write(&file, "short\n").unwrap();
    let err = testing::validate::<HttpEvents>(&cfg).unwrap_err();
    assert!(err.message().contains("at least 16"), "{err}");
    assert!(!err.message().contains("short"), "{err}");
    std::fs::write(&file, "with a space in it, long enough\n").unwrap();
    let err = testing::validate::<HttpEvents>(&cfg).unwrap_err();
    assert!(err.message().contains("without spaces"), "{err}");
    std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
    testing::validate::<HttpEvents>(&cfg).unwrap();

    let err = testing::validate::<HttpEvents>(&format!("{cfg}\ntoken_env = \"X\"")).unwrap_err();
    assert!(err.message().contains("not both"), "{err}");
    let err = testing::validate::<HttpEvents>("token_env = \"GORDON_HTTP_TEST_UNSET_TOKEN\"")
        .unwrap_err();
    assert!(
        err.message()
            .contains("`token_env`: environment variable GORDON_HTTP_TEST_UNSET_TOKEN is not set"),
        "{err}"
    );
    let err = testing::validate::<HttpEvents>("token = \"inline\"").unwrap_err();
    assert!(err.message().contains("token"), "{err}");
}

#[test]
fn timeouts_and_the_connection_limit_are_range_checked() {
    for (key, value) in [
        ("header_timeout", "0"),
        ("body_timeout", "3601"),
        ("idle_timeout", "0"),
        ("max_connections", "0"),
    ] {
        let err = testing::validate::<HttpEvents>(&format!("{key} = {value}")).unwrap_err();
        assert!(err.message().contains(&format!("`{key}`")), "{err}");
    }
}

#[test]
fn with_a_token_events_need_it_and_healthz_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123\n").unwrap();
    let port_file = dir.path().join("port");
    let cfg = format!(
        "listen = \"127.0.0.1:0\"\nport_file = \"{}\"\ntoken_file = \"{}\"\n",
        port_file.display(),
        token.display()
    );
    let h = testing::runnable::<HttpEvents>(&cfg, 64).unwrap();
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = request(port, "POST", "/events", EVENT);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "missing bearer token");
    assert_eq!(request(port, "GET", "/healthz", "").0, 200);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer 0123456789abcdef0123\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{EVENT}",
        EVENT.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    assert_eq!(h.recv(1, Duration::from_secs(5)).len(), 1);
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn its_keys_are_the_ones_it_accepts_each_with_a_doc_line() {
    use gordon_plugin_api::Plugin;

    let keys = HttpEvents::config_keys();
    gordon_plugin_api::testing::check_keys::<crate::HttpEventsConfig>(&keys).unwrap();
    for key in &keys {
        assert!(!key.required, "`{}`: every key has a default", key.name);
    }
    let key = |name: &str| keys.iter().find(|k| k.name == name).unwrap();
    let listen = key("listen");
    assert_eq!(listen.kind, "string");
    assert_eq!(listen.default.as_deref(), Some(r#""127.0.0.1:8080""#));
    for (name, default) in [
        ("max_body_bytes", "1048576"),
        ("max_msg_age", "300"),
        ("track", "100000"),
        ("header_timeout", "10"),
        ("body_timeout", "30"),
        ("idle_timeout", "60"),
        ("max_connections", "512"),
    ] {
        assert_eq!(key(name).kind, "integer", "{name}");
        assert_eq!(key(name).default.as_deref(), Some(default), "{name}");
    }
    assert_eq!(key("token_file").kind, "string");
    assert_eq!(key("token_file").default, None);
    assert_eq!(
        key("allow_unauthenticated").doc,
        "Allow a `listen` address other than loopback without a token."
    );
}
