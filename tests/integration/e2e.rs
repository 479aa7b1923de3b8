use std::time::{Duration, Instant};

use crate::util::{
    dns_env_with, http, named_checkzone, settled_zone, signal, text, wait_exit, wait_for_file, Env,
};

/// The default pipeline: http.events -> dns.enricher -> dns.zonefile, its HTTP
/// port written to `port` and its zone to `zones/example.com.zone`.
pub fn dns_env() -> Env {
    dns_env_with("", "")
}

/// Polls an event's status until it is no longer `pending` (20 s at most).
pub(crate) fn wait_status(port: u16, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, doc) = http(port, "GET", &format!("/events/{id}"), "");
        if doc["status"] != "pending" || Instant::now() > deadline {
            return doc;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// POSTs events; asserts 202 and returns their ids.
pub(crate) fn post(port: u16, body: &str) -> Vec<String> {
    let (status, doc) = http(port, "POST", "/events", body);
    assert_eq!(status, 202, "{doc}");
    doc["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn posted_events_become_records_in_a_valid_zone_file_and_go_again() {
    let env = dns_env();
    let mut child = env.spawn(&[]);
    let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    let zone_path = env.path().join("zones/example.com.zone");

    let ids = post(
        port,
        r#"[{"action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.1.2.3"]}},
            {"action":"additions","resourceRecords":{"name":"note.example.com.","type":"TXT","rrdatas":["say \"hi\""],"ttl":600}},
            {"action":"additions","resourceRecords":{"name":"bad","type":"A","rrdatas":["300.1.1.1"]}}]"#,
    );
    assert_eq!(wait_status(port, &ids[0])["status"], "published");
    assert_eq!(wait_status(port, &ids[1])["status"], "published");
    let bad = wait_status(port, &ids[2]);
    assert_eq!(bad["status"], "dropped", "{bad}");
    assert!(bad["history"].to_string().contains("300.1.1.1"), "{bad}");

    let zone = settled_zone(&zone_path);
    let www: Vec<&str> = zone.lines().filter(|l| l.starts_with("www ")).collect();
    assert_eq!(www, ["www 300 IN A 10.1.2.3"], "{zone}");
    assert!(zone.contains(r#"note 600 IN TXT "say \"hi\"""#), "{zone}");
    assert!(!zone.contains("bad"), "{zone}");
    if let Some(checkzone) = named_checkzone() {
        let out = std::process::Command::new(checkzone)
            .args(["example.com"])
            .arg(&zone_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "named-checkzone refused:\n{}\n{zone}",
            text(&out.stdout)
        );
    }

    let del = post(
        port,
        r#"{"action":"deletions","resourceRecords":{"name":"www.example.com.","type":"A","rrdatas":["10.1.2.3"]}}"#,
    );
    assert_eq!(wait_status(port, &del[0])["status"], "published");
    let zone = settled_zone(&zone_path);
    assert!(!zone.lines().any(|l| l.starts_with("www ")), "{zone}");
    assert!(zone.contains("note 600 IN TXT"), "{zone}");

    signal(&child, libc::SIGTERM);
    assert!(
        wait_exit(&mut child, Duration::from_secs(30)).success(),
        "{}",
        env.log()
    );
}

#[test]
fn bad_requests_are_refused_and_nothing_is_written() {
    let env = dns_env();
    let mut child = env.spawn(&[]);
    let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    let (status, doc) = http(port, "POST", "/events", r#"{"action":"additions"}"#);
    assert_eq!(status, 400);
    assert!(
        doc["error"].as_str().unwrap().contains("resourceRecords"),
        "{doc}"
    );
    signal(&child, libc::SIGINT);
    assert!(
        wait_exit(&mut child, Duration::from_secs(30)).success(),
        "{}",
        env.log()
    );
    let zone =
        std::fs::read_to_string(env.path().join("zones/example.com.zone")).unwrap_or_default();
    assert!(!zone.contains(" A 10."), "{zone}");
}
