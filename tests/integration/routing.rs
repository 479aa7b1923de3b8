use std::time::Duration;

use crate::util::{alpha_beta_env, signal, text, wait_exit, wait_for_file};

#[test]
fn full_route_enriches_publishes_and_cleans_every_message() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "beta.publish"]
["alpha.source"]
count = 5000
report = "REPORT"
["alpha.enrich"]
suffix = "enriched."
"#,
    );
    let (out, report) = env.run_to_report();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report["sent"], 5000);
    assert_eq!(report["by_phase"]["cleanup"], 5000, "{report}");
    let name = report["sample"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("host") && name.ends_with(".example.com.enriched."),
        "{name}"
    );
}

#[test]
fn route_without_enrich_goes_straight_to_publish() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
[core.route]
consume = "publish"
publish = "cleanup"
["alpha.source"]
count = 100
report = "REPORT"
"#,
    );
    let (out, report) = env.run_to_report();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report["by_phase"]["cleanup"], 100, "{report}");
    let name = report["sample"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("host") && name.ends_with(".example.com."),
        "enrich must not have run: {name}"
    );
    assert!(
        text(&out.stderr).contains("route=consume -> publish -> cleanup"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn failing_and_panicking_messages_are_dropped_and_the_rest_go_on() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "beta.publish"]
["alpha.source"]
count = 1000
report = "REPORT"
["alpha.enrich"]
suffix = "x."
["beta.publish"]
fail_on = "host7."
panic_on = "host9."
"#,
    );
    let (out, report) = env.run_to_report();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report["by_phase"]["cleanup"], 998, "{report}");
    assert_eq!(report["by_phase"]["drop"], 2, "{report}");
    let drops = report["not_clean"].as_array().unwrap();
    let failed = drops
        .iter()
        .find(|d| d["name"] == "host7.example.com.x.")
        .unwrap();
    let history: Vec<&str> = failed["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"beta.publish failed: refusing host7.example.com.x."),
        "{history:?}"
    );
    assert!(
        history.contains(&"Updated phase from publish to drop"),
        "{history:?}"
    );
    let panicked = drops
        .iter()
        .find(|d| d["name"] == "host9.example.com.x.")
        .unwrap();
    assert!(
        panicked["history"]
            .to_string()
            .contains("beta.publish panicked"),
        "{panicked}"
    );
}

#[test]
fn a_fast_source_is_slowed_to_the_queue_bound() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
[core.route]
consume = "publish"
[core.router]
workers = 2
queue_capacity = 50
batch_size = 10
["alpha.source"]
count = 400
report = "REPORT"
["beta.publish"]
delay_ms = 1
"#,
    );
    let (out, report) = env.run_to_report();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report["by_phase"]["cleanup"], 400, "{report}");
    // Queue (50) + what two workers hold (2 x 10) + one message being sent.
    let max = report["max_in_flight"].as_u64().unwrap();
    assert!(max <= 71, "source was not slowed: {max} messages in flight");
    assert!(
        max >= 40,
        "the test did not fill the queue ({max}); it proves nothing"
    );
}

#[test]
fn sigterm_with_messages_in_flight_loses_none() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
shutdown_timeout = 30
[core.route]
consume = "publish"
[core.router]
workers = 2
batch_size = 4
["alpha.source"]
count = 300
forever = true
report = "REPORT"
sent_marker = "MARKER"
["beta.publish"]
delay_ms = 2
"#,
    );
    let mut child = env.spawn(&[]);
    // All 300 are queued once the marker appears; the slow publisher needs ~300 ms
    // more to get through them, so SIGTERM lands with most still in flight.
    wait_for_file(&env.path().join("sent"), Duration::from_secs(30));
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", env.log());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["sent"], 300);
    assert_eq!(report["by_phase"]["cleanup"], 300, "{report}");
    let log = env.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(!log.contains("did not finish"), "{log}");
}

#[test]
fn a_plugin_past_its_shutdown_deadline_is_named_and_the_exit_says_so() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
shutdown_timeout = 0.3
[core.route]
consume = "publish"
["alpha.source"]
count = 10
report = "REPORT"
["beta.publish"]
shutdown_ms = 20000
"#,
    );
    let started = std::time::Instant::now();
    let (out, report) = env.run_to_report();
    let stderr = text(&out.stderr);
    // Every message was published, but a plugin overran: not a clean stop.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the deadline was not enforced"
    );
    assert_eq!(report["by_phase"]["cleanup"], 10);
    let line = stderr
        .lines()
        .find(|l| l.contains("did not shut down"))
        .expect(&stderr);
    assert!(line.contains("beta.publish"), "{line}");
}

#[test]
fn a_panicking_constructor_stops_start_up_naming_the_plugin_unless_debug() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
[core.route]
consume = "publish"
["alpha.source"]
count = 5
report = "REPORT"
["beta.publish"]
panic_in = "new"
"#,
    );
    let out = env.gordon(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("plugin `beta.publish`") && stderr.contains("panicked in new"),
        "{stderr}"
    );
    // With core.debug the failed publisher is skipped, which leaves the route
    // leading to a phase nobody serves: start-up still stops, rather than have the
    // source acknowledge messages that were never published.
    env.user_config("[core]\ndebug = true\n");
    let out = env.gordon(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("continuing without it") && stderr.contains("no active handler serves"),
        "{stderr}"
    );
    assert!(
        !env.path().join("report.json").exists(),
        "the source ran and cleaned messages"
    );
}

#[test]
fn a_metric_relay_plugin_receives_the_router_metrics() {
    // In-process, and with every plugin isolated (the relay's events then cross
    // a socket, and its cleanup writes the report in its own process).
    for isolate in [
        "",
        r#"isolate = ["alpha.source", "beta.publish", "beta.relay"]"#,
    ] {
        // Here REPORT is the relay's report, not the source's.
        let env = alpha_beta_env(&format!(
            r#"[core]
plugins = ["alpha.source", "beta.publish", "beta.relay"]
metrics = "beta.relay"
{isolate}
[core.route]
consume = "publish"
["alpha.source"]
count = 10
["beta.relay"]
report = "REPORT"
"#
        ));
        let out = env.gordon(&[]);
        assert!(out.status.success(), "{isolate}: {}", text(&out.stderr));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(env.path().join("report.json")).unwrap())
                .unwrap();
        let names = doc["names"].to_string();
        for name in [
            "gordon.messages",
            "gordon.handler.latency",
            "gordon.plugin.state",
        ] {
            assert!(
                names.contains(name),
                "{isolate}: relay did not get {name}: {doc}"
            );
        }
    }
}
