//! Living under change, through the real binary: reload (SIGHUP and `gordon ctl
//! reload`) validated whole before anything changes, `apply_config` instead of a
//! restart, plugins added, replaced and removed; actions over the control socket;
//! host events delivered to a subscriber; a plugin that leaves is restarted with
//! back-off; `check --connect`.

use std::time::{Duration, Instant};

use crate::isolation::{port_of, post_one, stop, wait_done};
use crate::util::{sample, signal, text, vendor_fixture, wait_for_text, Env};

/// http.events -> acme.live (screen) -> acme.fault (publish, never faulting);
/// `live` is acme.live's table body, `extra` more configuration.
fn config(env: &Env, plugins: &str, live: &str, extra: &str) -> String {
    format!(
        r#"[core]
plugins = [{plugins}]
[core.leaving]
restart_backoff = 0.2
[core.route]
consume = "screen"
screen = "publish"
["http.events"]
listen = "127.0.0.1:0"
port_file = "{port}"
["acme.live"]
{live}
["acme.fault"]
fault = "exit"
on = "never-in-a-name"
{extra}
"#,
        port = env.file("port"),
    )
}

const PLUGINS: &str = r#""http.events", "acme.live", "acme.fault""#;

fn live_env(live: &str) -> Env {
    let env = Env::new();
    env.install(&sample("http"), "libgordon_plugin_http.so");
    env.install(&vendor_fixture(), "libacme.so");
    env.config(&config(&env, PLUGINS, live, ""));
    env
}

fn wait_for_socket(env: &Env) {
    crate::control::wait_for_socket(&env.path().join("gordon.sock"));
}

fn action(env: &Env, plugin: &str, name: &str, params: &[&str]) -> serde_json::Value {
    let mut args = vec!["ctl", "action", plugin, name];
    args.extend_from_slice(params);
    args.push("--json");
    let out = env.gordon(&args);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["result"].clone()
}

fn status(env: &Env) -> serde_json::Value {
    crate::control::ctl_json(env)
}

fn reload(env: &Env) -> std::process::Output {
    env.gordon(&["ctl", "reload", "--json"])
}

fn published(env: &Env, port: u16, name: &str) {
    let id = post_one(port, name);
    assert_eq!(
        wait_done(env, port, &id)["status"],
        "published",
        "{}",
        env.log()
    );
}

#[test]
fn a_reload_applies_config_live_and_an_invalid_one_changes_nothing() {
    let env = live_env("ttl = 60");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    published(&env, port, "before");
    let first = action(&env, "acme.live", "state", &[]);
    assert_eq!(first["ttl"], 60, "{first}");

    // A changed ttl is applied to the live instance: same instance, new value.
    env.config(&config(&env, PLUGINS, "ttl = 120", ""));
    let out = reload(&env);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["generation"], 2, "{report}");
    assert_eq!(
        report["applied"],
        serde_json::json!(["acme.live"]),
        "{report}"
    );
    assert!(
        report["unchanged"]
            .as_array()
            .unwrap()
            .contains(&"http.events".into()),
        "{report}"
    );
    let after = action(&env, "acme.live", "state", &[]);
    assert_eq!(after["ttl"], 120, "{after}");
    assert_eq!(
        after["instance"], first["instance"],
        "applied, not restarted: {after}"
    );
    assert_eq!(status(&env)["generation"], 2);

    // Invalid: a bad value and a restart-only key. Both named; nothing changes.
    env.config(&config(&env, PLUGINS, "ttl = 0", "").replace(
        "[core.leaving]",
        "[core.router]\nbatch_size = 7\n[core.leaving]",
    ));
    let out = reload(&env);
    assert!(!out.status.success(), "an invalid reload must fail");
    let err = text(&out.stderr);
    assert!(err.contains("`ttl` must be at least 1"), "{err}");
    assert!(err.contains("acme.live"), "{err}");
    assert!(err.contains("core.router changed"), "{err}");
    assert_eq!(action(&env, "acme.live", "state", &[])["ttl"], 120);
    assert_eq!(status(&env)["generation"], 2);
    published(&env, port, "after-refusal");

    // SIGHUP reloads the same way.
    env.config(&config(&env, PLUGINS, "ttl = 30", ""));
    signal(&child, libc::SIGHUP);
    wait_for_text(
        &env.path().join("stderr.log"),
        "Configuration reloaded (SIGHUP).",
        Duration::from_secs(30),
    );
    assert_eq!(action(&env, "acme.live", "state", &[])["ttl"], 30);
    assert_eq!(status(&env)["generation"], 3);
    assert!(stop(&mut child).success(), "{}", env.log());
}

#[test]
fn a_reload_adds_replaces_and_removes_plugins_and_reroutes_between_batches() {
    let env = live_env("ttl = 60");
    env.config(
        &config(&env, r#""http.events", "acme.fault""#, "ttl = 60", "").replace(
            "consume = \"screen\"\nscreen = \"publish\"",
            "consume = \"publish\"",
        ),
    );
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    published(&env, port, "one");

    // Added to core.plugins and put in the route.
    env.config(&config(&env, PLUGINS, "ttl = 60", ""));
    let out = reload(&env);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["added"],
        serde_json::json!(["acme.live"]),
        "{report}"
    );
    published(&env, port, "two");
    let first = action(&env, "acme.live", "state", &[]);

    // A change it does not apply live (events_file): a new instance.
    let events = env.file("events.jsonl");
    env.config(&config(
        &env,
        PLUGINS,
        &format!("ttl = 60\nevents_file = \"{events}\""),
        "",
    ));
    let out = reload(&env);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["restarted"],
        serde_json::json!(["acme.live"]),
        "{report}"
    );
    let second = action(&env, "acme.live", "state", &[]);
    assert_ne!(second["instance"], first["instance"], "{second}");
    published(&env, port, "three");

    // Removed again: the route goes straight to publish.
    env.config(
        &config(&env, r#""http.events", "acme.fault""#, "ttl = 60", "").replace(
            "consume = \"screen\"\nscreen = \"publish\"",
            "consume = \"publish\"",
        ),
    );
    let out = reload(&env);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["removed"],
        serde_json::json!(["acme.live"]),
        "{report}"
    );
    published(&env, port, "four");
    let gone = env.gordon(&["ctl", "action", "acme.live", "state"]);
    assert!(
        text(&gone.stderr).contains("no running plugin `acme.live`"),
        "{}",
        text(&gone.stderr)
    );

    // A route to a phase nobody serves is refused, naming the source.
    env.config(&config(
        &env,
        r#""http.events", "acme.fault""#,
        "ttl = 60",
        "",
    ));
    let out = reload(&env);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("source `http.events`"),
        "{}",
        text(&out.stderr)
    );
    published(&env, port, "five");
    assert!(stop(&mut child).success(), "{}", env.log());
}

#[test]
fn actions_run_over_the_socket_and_host_events_reach_the_subscriber() {
    let env = Env::new();
    let events = env.file("events.jsonl");
    env.install(&sample("http"), "libgordon_plugin_http.so");
    env.install(&vendor_fixture(), "libacme.so");
    env.config(&config(
        &env,
        PLUGINS,
        &format!("ttl = 60\nevents_file = \"{events}\""),
        "",
    ));
    // Declared actions are listed without creating the plugin.
    let list = env.list_json();
    let live = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme.live")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(live["actions"][1]["name"], "leave", "{live}");
    assert_eq!(
        live["actions"][1]["params"]["required"],
        serde_json::json!(["reason"]),
        "{live}"
    );
    assert_eq!(live["events"], serde_json::json!(["*"]), "{live}");

    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    let state = action(&env, "acme.live", "state", &[]);
    assert_eq!(state["ttl"], 60);
    // Parameters are checked against the declaration before the plugin runs.
    let bad = env.gordon(&["ctl", "action", "acme.live", "leave", "bogus=1"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("action `leave` has no parameter `bogus`"),
        "{}",
        text(&bad.stderr)
    );
    let missing = env.gordon(&["ctl", "action", "acme.live", "nope"]);
    assert!(
        text(&missing.stderr).contains("it offers: state, leave"),
        "{}",
        text(&missing.stderr)
    );
    published(&env, port, "evented");
    let log = wait_for_text(
        std::path::Path::new(&events),
        "\"action.invoked\"",
        Duration::from_secs(30),
    );
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let invoked = lines
        .iter()
        .find(|e| e["event"] == "action.invoked")
        .unwrap();
    assert_eq!(invoked["plugin"], "acme.live");
    assert_eq!(invoked["action"], "state");
    assert!(
        invoked["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{invoked}"
    );
    assert!(stop(&mut child).success(), "{}", env.log());
}

#[test]
fn a_plugin_that_leaves_is_stopped_and_started_again_after_its_back_off() {
    let env = live_env("ttl = 60");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    let first = action(&env, "acme.live", "state", &[]);
    let asked = action(&env, "acme.live", "leave", &["reason=done for now"]);
    assert_eq!(asked["asked"], true);
    let log = wait_for_text(
        &env.path().join("stderr.log"),
        "Plugin started again after leaving.",
        Duration::from_secs(30),
    );
    assert!(log.contains("done for now"), "{log}");
    let second = action(&env, "acme.live", "state", &[]);
    assert_ne!(second["instance"], first["instance"], "{second}");
    published(&env, port, "after-leave");
    assert!(stop(&mut child).success(), "{}", env.log());
}

#[test]
fn check_connect_runs_each_plugins_dependency_check() {
    let env = live_env("ttl = 60\nevents_file = \"/nonexistent-dir/events.jsonl\"");
    let plain = env.gordon(&["check"]);
    assert!(plain.status.success(), "{}", text(&plain.stdout));
    let connect = env.gordon(&["check", "--connect"]);
    assert_eq!(connect.status.code(), Some(1), "{}", text(&connect.stdout));
    let out = text(&connect.stdout);
    assert!(
        out.contains("acme.live") && out.contains("directory /nonexistent-dir does not exist"),
        "{out}"
    );
}

/// Reloads while NATS delivers 5,000 events/s into BIND: an enricher change
/// applied live, a handler added to the route, changed and removed, and the NATS
/// source itself replaced by a new instance. Every event published reaches BIND.
#[test]
fn reloads_under_five_thousand_events_a_second_lose_nothing() {
    use gordon_test_servers::nats_client::NatsConn;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let Some(b) = crate::backends::backend() else {
        return;
    };
    let env = crate::backends::gordon_env(&b, &b.key, "");
    env.install(&vendor_fixture(), "libacme.so");
    let user = |plugins: &str, route: &str, extra: &str| {
        std::fs::write(
            env.path().join("gordon-user.toml"),
            format!("[core]\nplugins = [{plugins}]\n[core.route]\n{route}\n{extra}\n"),
        )
        .unwrap();
    };
    let base = r#""nats.events", "dns.enricher", "dns.rfc2136""#;
    let with_live = r#""nats.events", "acme.live", "dns.enricher", "dns.rfc2136""#;
    let straight = "consume = \"enrich\"\nenrich = \"publish\"";
    let screened = "consume = \"screen\"\nscreen = \"enrich\"\nenrich = \"publish\"";
    user(base, straight, "");
    let child = env.spawn(&[]);
    wait_for_socket(&env);

    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let done = Arc::clone(&done);
        let port = b.nats.port();
        std::thread::spawn(move || {
            let mut conn = NatsConn::connect(port);
            let started = Instant::now();
            let mut n = 0usize;
            // 50 events every 10 ms: 5,000 a second.
            while !done.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    let event = format!(
                        r#"{{"action":"additions","resourceRecords":{{"name":"live{n}","type":"A","rrdatas":["10.{}.{}.{}"]}}}}"#,
                        (n >> 16) & 255,
                        (n >> 8) & 255,
                        n & 255
                    );
                    conn.publish("dns.events", event.as_bytes());
                    n += 1;
                }
                conn.flush();
                let due = started + Duration::from_millis(10 * (n as u64 / 50));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            conn.flush();
            n
        })
    };
    // Each step: the user file, then what the reload must report. Before each
    // reload, intake must have gone on since the last one (no gap).
    let steps: [(&str, &str, &str, &str, &str); 5] = [
        (base, straight, "[\"dns.enricher\"]\ndefault_ttl = 120", "applied", "dns.enricher"),
        (with_live, screened, "[\"dns.enricher\"]\ndefault_ttl = 120\n[\"acme.live\"]\nttl = 300", "added", "acme.live"),
        (with_live, screened, "[\"dns.enricher\"]\ndefault_ttl = 120\n[\"acme.live\"]\nttl = 600", "applied", "acme.live"),
        (with_live, screened, "[\"dns.enricher\"]\ndefault_ttl = 120\n[\"acme.live\"]\nttl = 600\n[\"nats.events\"]\nbatch = 50", "restarted", "nats.events"),
        (base, straight, "[\"dns.enricher\"]\ndefault_ttl = 120\n[\"nats.events\"]\nbatch = 50", "removed", "acme.live"),
    ];
    let began = Instant::now();
    let mut served = 0;
    for (plugins, route, extra, field, plugin) in steps.into_iter().chain([("", "", "", "", "")]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = crate::backends::served_named(&b, "live").len();
            if now >= served + 5_000 {
                served = now;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "intake stopped after a reload ({now} served)\n{}",
                env.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if plugins.is_empty() {
            break;
        }
        user(plugins, route, extra);
        let out = reload(&env);
        assert!(
            out.status.success(),
            "{field} {plugin}: {}\n{}",
            text(&out.stderr),
            env.log()
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report[field], serde_json::json!([plugin]), "{report}");
    }
    done.store(true, Ordering::Relaxed);
    let published = publisher.join().unwrap();
    let rate = published as f64 / began.elapsed().as_secs_f64();
    let (served, missing) =
        crate::backends::wait_all_served(&b, "live", published, Duration::from_secs(180), || {});
    eprintln!("reload under load: {published} events, {served} served, 5 reloads");
    assert!(
        missing.is_empty(),
        "{} of {published} events never reached BIND, e.g. {missing:?}\n{}",
        published - served.min(published),
        env.log()
    );
    assert!(
        rate >= 4_000.0,
        "the publisher fell behind: {rate:.0} events/s"
    );
    assert_eq!(env.log().matches("Gordon is running.").count(), 1);
    crate::backends::stop(&env, child);
}

#[test]
fn ctl_plugin_stop_and_start_take_a_plugin_out_of_service_and_back() {
    let env = live_env("ttl = 60");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    let first = action(&env, "acme.live", "state", &[]);

    // A stopped handler keeps its place in the route and fails every message:
    // its source rejects them, nothing is acknowledged unpublished.
    let out = env.gordon(&["ctl", "plugin", "stop", "acme.live"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = status(&env);
    let live = crate::control::plugin(&doc, "acme.live");
    assert_eq!(live["state"], "stopped", "{doc}");
    let id = post_one(port, "while-stopped");
    let done = wait_done(&env, port, &id);
    assert_eq!(done["status"], "dropped", "{done}");
    assert!(done.to_string().contains("is stopped"), "{done}");
    let refused = env.gordon(&["ctl", "action", "acme.live", "state"]);
    assert!(!refused.status.success());
    let again = env.gordon(&["ctl", "plugin", "stop", "acme.live"]);
    assert!(
        text(&again.stderr).contains("already stopped"),
        "{}",
        text(&again.stderr)
    );

    // Started again: a new instance from the configuration in use.
    let out = env.gordon(&["ctl", "plugin", "start", "acme.live"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second = action(&env, "acme.live", "state", &[]);
    assert_ne!(second["instance"], first["instance"], "{second}");
    published(&env, port, "after-start");

    // A stopped source stops taking events; started, it takes them again.
    let out = env.gordon(&["ctl", "plugin", "stop", "http.events"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = status(&env);
    let http = crate::control::plugin(&doc, "http.events");
    assert_eq!(http["state"], "stopped", "{doc}");
    assert!(doc["sources"].as_array().unwrap().is_empty(), "{doc}");
    std::fs::remove_file(env.path().join("port")).unwrap();
    let out = env.gordon(&["ctl", "plugin", "start", "http.events"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let port = port_of(&env);
    published(&env, port, "after-source-start");
    let none = env.gordon(&["ctl", "plugin", "start", "acme.live"]);
    assert!(
        text(&none.stderr).contains("is not stopped"),
        "{}",
        text(&none.stderr)
    );
    assert!(stop(&mut child).success(), "{}", env.log());
}

/// The sample plugins' actions over the control socket, against real NATS and
/// BIND: `dns.rfc2136 probe` (a signed UPDATE that changes nothing), `nats.events`
/// `pause` / `resume`, and `audit.log` writing the host events as JSON lines.
#[test]
fn sample_plugins_actions_run_against_real_servers_and_the_audit_log_records_them() {
    use gordon_test_servers::nats_client::NatsConn;

    let Some(b) = crate::backends::backend() else {
        return;
    };
    let env = crate::backends::gordon_env(&b, &b.key, "");
    env.install(&sample("audit"), "libgordon_plugin_audit.so");
    let audit = env.file("audit.jsonl");
    std::fs::write(
        env.path().join("gordon-user.toml"),
        format!(
            "[core]\nplugins = [\"nats.events\", \"dns.enricher\", \"dns.rfc2136\", \"audit.log\"]\n[\"audit.log\"]\npath = \"{audit}\"\nevents = [\"action.*\", \"plugin.*\"]\n"
        ),
    )
    .unwrap();
    let child = env.spawn(&[]);
    wait_for_socket(&env);

    let probe = action(&env, "dns.rfc2136", "probe", &[]);
    assert_eq!(probe["may_update"], true, "{probe}");
    assert_eq!(probe["zone"], crate::backends::ZONE, "{probe}");

    // Paused, the source takes nothing; resumed, it takes what waited.
    assert_eq!(action(&env, "nats.events", "pause", &[])["paused"], true);
    let mut conn = NatsConn::connect(b.nats.port());
    conn.js_publish(
        "dns.events",
        br#"{"action":"additions","resourceRecords":{"name":"paused1","type":"A","rrdatas":["10.8.0.1"]}}"#,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        crate::backends::served_named(&b, "paused1").is_empty(),
        "a paused source published"
    );
    assert_eq!(action(&env, "nats.events", "resume", &[])["paused"], false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::backends::served_named(&b, "paused1").is_empty() {
        assert!(
            Instant::now() < deadline,
            "not published after resume\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let log = wait_for_text(
        std::path::Path::new(&audit),
        "\"resume\"",
        Duration::from_secs(30),
    );
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "action.invoked")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["probe", "pause", "resume"], "{log}");
    assert!(
        events.iter().all(|e| e["event"] != "message.dropped"),
        "not selected: {log}"
    );
    crate::backends::stop(&env, child);
}

#[test]
fn a_slow_event_subscriber_loses_events_and_never_slows_the_host() {
    // acme.live takes 200 ms per host event; every message is dropped (the
    // publisher is stopped), so each is a `message.dropped` event for it.
    let env = live_env("ttl = 60\nevent_delay_ms = 200");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    let out = env.gordon(&["ctl", "plugin", "stop", "acme.fault"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<String> = (0..1500)
        .map(|i| format!(r#"{{"action":"additions","resourceRecords":{{"name":"slow{i}","type":"A","rrdatas":["10.0.0.1"]}}}}"#))
        .collect();
    let started = Instant::now();
    let (code, doc) =
        crate::util::http(port, "POST", "/events", &format!("[{}]", events.join(",")));
    assert_eq!(code, 202, "{doc}");
    let last = doc["ids"][1499].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&env, port, &last)["status"], "dropped");
    // Delivering them all would take 300 s; the route did not wait for it.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "the host waited for its subscriber: {took:?}"
    );
    let doc = status(&env);
    let live = crate::control::plugin(&doc, "acme.live");
    assert!(live["events_dropped"].as_u64().unwrap() > 0, "{live}");
    assert!(stop(&mut child).success(), "{}", env.log());
}

#[test]
fn a_reload_refuses_a_library_that_changed_on_disk_since_it_was_loaded() {
    let env = live_env("ttl = 60");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env);
    // A new build of the same library, written over the loaded one (a new file
    // under the same name, as a package upgrade does).
    let lib = env.path().join("plugins.d/libacme.so");
    let bytes = std::fs::read(&lib).unwrap();
    std::fs::remove_file(&lib).unwrap();
    std::fs::write(&lib, &bytes).unwrap();
    std::fs::set_permissions(&lib, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = reload(&env);
    assert!(!out.status.success(), "a changed library must be refused");
    let err = text(&out.stderr);
    assert!(
        err.contains("libacme.so") && err.contains("restart gordon to load the new file"),
        "{err}"
    );
    // The loaded code keeps serving.
    assert_eq!(action(&env, "acme.live", "state", &[])["ttl"], 60);
    published(&env, port, "still-serving");
    std::fs::write(&lib, &bytes).unwrap();
    std::fs::set_permissions(&lib, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = reload(&env);
    assert!(!out.status.success(), "still the changed file");
    env.install(&sample("audit"), "libgordon_plugin_audit.so");
    let audit = env.file("audit.jsonl");
    let mut cfg = config(&env, &format!("{PLUGINS}, \"audit.log\""), "ttl = 60", "");
    cfg.push_str(&format!("[\"audit.log\"]\npath = \"{audit}\"\n"));
    env.config(&cfg);
    // Put the loaded file back: only the new library is new.
    let out = env.gordon(&["ctl", "plugin", "stop", "audit.log", "--json"]);
    assert!(!out.status.success(), "not running yet");
    std::fs::remove_file(&lib).unwrap();
    assert!(stop(&mut child).success(), "{}", env.log());
}

#[test]
fn a_reload_discovers_a_library_new_in_plugins_d_and_adds_its_plugin() {
    let env = live_env("ttl = 60");
    let mut child = env.spawn(&[]);
    port_of(&env);
    wait_for_socket(&env);
    env.install(&sample("audit"), "libgordon_plugin_audit.so");
    let audit = env.file("audit.jsonl");
    let mut cfg = config(&env, &format!("{PLUGINS}, \"audit.log\""), "ttl = 60", "");
    cfg.push_str(&format!(
        "[\"audit.log\"]\npath = \"{audit}\"\nevents = [\"action.*\"]\n"
    ));
    env.config(&cfg);
    let out = reload(&env);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["added"],
        serde_json::json!(["audit.log"]),
        "{report}"
    );
    action(&env, "acme.live", "state", &[]);
    wait_for_text(
        std::path::Path::new(&audit),
        "\"action.invoked\"",
        Duration::from_secs(30),
    );
    let out = env.gordon(&["ctl", "plugin", "stop", "audit.log", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(stop(&mut child).success(), "{}", env.log());
}
