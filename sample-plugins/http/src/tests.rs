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
