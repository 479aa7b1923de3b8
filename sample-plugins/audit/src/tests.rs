use std::path::Path;
use std::time::{Duration, Instant};

use gordon_plugin_api::serde_json::{json, Value};
use gordon_plugin_api::testing::{self, RunnableHarness};
use gordon_plugin_api::ConfigChange;

use super::*;

fn config(path: &Path, extra: &str) -> String {
    format!("path = {:?}\n{extra}", path.display().to_string())
}

fn audit(path: &Path, extra: &str) -> RunnableHarness<AuditLog> {
    testing::runnable::<AuditLog>(&config(path, extra), 4).unwrap()
}

fn event(name: &str, plugin: &str) -> Value {
    json!({"event": name, "plugin": plugin, "time": "2026-01-01T00:00:00Z", "generation": 2})
}

/// The lines of the log, parsed.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_event_is_one_json_line_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let h = audit(&path, "");
    let events = [
        event("plugin.started", "dns.zonefile"),
        event("config.applied", "dns.enricher"),
        json!({"event": "action.invoked", "plugin": "nats.events", "time": "t",
               "action": "pause", "note": "two\nlines"}),
    ];
    for (i, e) in events.iter().enumerate() {
        assert!(h.host_event(e), "`*` is selected");
        // Flushed per line: readable before any shutdown.
        assert_eq!(lines(&path), events[..=i], "after event {i}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.ends_with('\n'));
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn only_the_configured_events_are_logged_and_the_file_is_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "{\"event\":\"earlier\"}\n").unwrap();
    let h = audit(&path, "events = [\"plugin.*\", \"config.refused\"]");
    for name in [
        "plugin.failed",
        "config.applied",
        "config.refused",
        "message.dropped",
        "plugin.left",
    ] {
        h.host_event(&event(name, "x.y"));
    }
    let names: Vec<Value> = lines(&path).iter().map(|l| l["event"].clone()).collect();
    assert_eq!(
        names,
        ["earlier", "plugin.failed", "config.refused", "plugin.left"]
    );
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn run_sends_nothing_and_stops_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let h = audit(&dir.path().join("a.log"), "");
    assert!(h.recv(1, Duration::from_millis(200)).is_empty());
    let started = Instant::now();
    h.shutdown(Duration::from_secs(5)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn the_configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("audit.jsonl");
    assert!(testing::validate::<AuditLog>(&config(&ok, "")).is_ok());
    let bad = |text: &str| testing::validate::<AuditLog>(text).unwrap_err().to_string();
    assert!(bad("").contains("missing field `path`"));
    let missing = dir.path().join("nowhere/audit.jsonl");
    assert_eq!(
        bad(&config(&missing, "")),
        format!(
            "`path`: the directory {} of audit log {} does not exist",
            dir.path().join("nowhere").display(),
            missing.display()
        )
    );
    assert!(bad(&config(dir.path(), "")).contains("is a directory"));
    assert!(bad(&config(&ok, "events = []")).contains("`events` is empty"));
    for pattern in ["plug*", "", "*.failed", "plugin.", "a b", ".*"] {
        let err = bad(&config(&ok, &format!("events = [{pattern:?}]")));
        assert!(err.contains("`events`"), "{pattern}: {err}");
    }
    for pattern in ["*", "plugin.*", "config.applied", "a.b.*"] {
        let text = config(&ok, &format!("events = [{pattern:?}]"));
        assert!(testing::validate::<AuditLog>(&text).is_ok(), "{pattern}");
    }
    assert!(bad(&config(&ok, "evnts = [\"*\"]")).contains("evnts"));
    // The harness, as the host, validates before creating.
    assert!(testing::runnable::<AuditLog>(&config(&missing, ""), 4).is_err());
    assert!(!ok.exists(), "validation creates nothing");
}

#[test]
fn the_dependency_check_opens_the_file_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    testing::validate_dependencies::<AuditLog>(&config(&path, "")).unwrap();
    assert!(!path.exists());
    std::fs::write(&path, "kept\n").unwrap();
    testing::validate_dependencies::<AuditLog>(&config(&path, "")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
    // The configuration is checked first.
    let err = testing::validate_dependencies::<AuditLog>(&config(dir.path(), "")).unwrap_err();
    assert!(err.message().contains("is a directory"), "{err}");
}

#[test]
fn a_new_configuration_applies_live() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("1.jsonl"), dir.path().join("2.jsonl"));
    let h = audit(&first, "events = [\"plugin.*\"]");
    h.host_event(&event("plugin.started", "a.b"));
    h.host_event(&event("config.applied", "a.b"));
    let only_config = config(&first, "events = [\"config.*\"]");
    assert_eq!(h.apply_config(&only_config).unwrap(), ConfigChange::Applied);
    assert_eq!(h.apply_config(&only_config).unwrap(), ConfigChange::Applied);
    h.host_event(&event("plugin.stopped", "a.b"));
    h.host_event(&event("config.refused", "a.b"));
    let names = |p: &Path| -> Vec<Value> { lines(p).iter().map(|l| l["event"].clone()).collect() };
    assert_eq!(names(&first), ["plugin.started", "config.refused"]);
    // Another file: the next event goes there.
    assert_eq!(
        h.apply_config(&config(&second, "")).unwrap(),
        ConfigChange::Applied
    );
    h.host_event(&event("message.dropped", "a.b"));
    assert_eq!(names(&second), ["message.dropped"]);
    assert_eq!(names(&first), ["plugin.started", "config.refused"]);
    // A refused configuration changes nothing.
    let nowhere = dir.path().join("nowhere/3.jsonl");
    assert!(h.apply_config(&config(&nowhere, "")).is_err());
    h.host_event(&event("plugin.left", "a.b"));
    assert_eq!(names(&second), ["message.dropped", "plugin.left"]);
    h.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn it_offers_no_actions_and_selects_every_event() {
    assert!(AuditLog::actions().is_empty());
    assert_eq!(AuditLog::HOST_EVENTS, ["*"]);
}

#[test]
fn its_keys_are_the_ones_it_accepts_each_with_a_doc_line() {
    let keys = AuditLog::config_keys();
    gordon_plugin_api::testing::check_keys::<AuditConfig>(&keys).unwrap();
    let key = |name: &str| keys.iter().find(|k| k.name == name).unwrap();
    let path = key("path");
    assert_eq!((path.kind.as_str(), path.required), ("string", true));
    assert_eq!(path.default, None);
    assert_eq!(
        path.doc,
        "The file the events are appended to, one JSON object a line (required)."
    );
    let events = key("events");
    assert_eq!(events.kind, "list of string");
    assert!(!events.required);
    assert_eq!(events.default.as_deref(), Some(r#"["*"]"#));
    assert!(
        events.doc.starts_with("The events to log"),
        "{}",
        events.doc
    );
}
