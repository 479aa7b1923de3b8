//! Per-plugin and per-module log levels (`[core.logging] level` directives, and
//! `GORDON_LOG`): one plugin raised to debug logs its debug lines, the others and
//! the host do not; bad directives are refused naming the key and the item.

use std::time::Duration;

use crate::isolation::{port_of, post_one, stop, wait_done};
use crate::util::{dns_env_with, http_raw, http_status, settled_zone, text, Env};

/// What `dns.zonefile` logs at debug after each write.
const ZONEFILE_DEBUG: &str = "wrote zone file";
/// What `http.events` logs at debug when it refuses repeated Content-Length headers.
const HTTP_DEBUG: &str = "Refused a request with repeated Content-Length headers.";

/// The default pipeline with `core` added to `[core]`.
fn pipeline(core: &str) -> Env {
    dns_env_with(core, "")
}

/// Makes `http.events` log its debug line, `dns.enricher` and `dns.zonefile`
/// theirs (one published event, the zone file written), then stops the service;
/// returns the whole log.
fn exercise(env: &Env, mut child: std::process::Child) -> String {
    let port = port_of(env);
    let body = r#"{"action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.1.2.3"]}}"#;
    let repeated = format!(
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {n}\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n{body}",
        n = body.len()
    );
    let resp = http_raw(port, repeated.as_bytes(), Duration::from_secs(10));
    assert_eq!(http_status(&resp), 400, "{resp}");
    let id = post_one(port, "www");
    assert_eq!(wait_done(env, port, &id)["status"], "published");
    settled_zone(&env.path().join("zones/example.com.zone"));
    let status = stop(&mut child);
    // Stopped: every line the service was going to log is in the file.
    let log = env.log();
    assert_eq!(status.code(), Some(0), "{status}\n{log}");
    log
}

/// The lines at `DEBUG` (the stream handler's level column).
fn debug_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" DEBUG ")).collect()
}

/// http.events logged at debug, nothing else did (neither the other plugins nor
/// the host), and the host still logged at info.
fn assert_debug_only_from_http_events_and_info_elsewhere(log: &str) {
    let debug = debug_lines(log);
    assert!(
        debug
            .iter()
            .any(|l| l.contains(HTTP_DEBUG) && l.contains("plugin=\"http.events\"")),
        "no debug line of http.events:\n{log}"
    );
    assert!(
        debug.iter().all(|l| l.contains("plugin=\"http.events\"")),
        "debug lines not of http.events:\n{log}"
    );
    assert!(!log.contains(ZONEFILE_DEBUG), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(" INFO ") && l.contains("Gordon is running.")),
        "{log}"
    );
}

#[test]
fn a_plugin_raised_to_debug_logs_its_debug_lines_and_no_other_plugin_does() {
    let env = pipeline("[core.logging]\nlevel = \"info,http.events=debug\"");
    let child = env.spawn(&[]);
    let log = exercise(&env, child);
    assert_debug_only_from_http_events_and_info_elsewhere(&log);
}

#[test]
fn gordon_log_raises_a_module_path_over_the_configured_level_also_in_a_plugin_process() {
    // The configured level (`warning`) is replaced by the environment's; the
    // directive reaches the isolated plugin's process.
    let env = pipeline("isolate = [\"http.events\"]\n[core.logging]\nlevel = \"warning\"");
    let child = env.spawn_with(
        &[],
        &[("GORDON_LOG", "info,gordon_plugin_http=debug")],
        None,
    );
    let log = exercise(&env, child);
    // `info` from the environment, not `warning` from the file.
    assert_debug_only_from_http_events_and_info_elsewhere(&log);
}

#[test]
fn a_module_path_directive_covers_a_plugins_own_threads() {
    // dns.zonefile writes from a thread of its own, whose lines the SDK tags with
    // the library's first plugin (dns.enricher): its module path names them.
    let env = pipeline("[core.logging]\nlevel = \"info,gordon_plugin_dns::zonefile=debug\"");
    let child = env.spawn(&[]);
    let log = exercise(&env, child);
    let debug = debug_lines(&log);
    assert!(
        debug
            .iter()
            .any(|l| l.contains(ZONEFILE_DEBUG)
                && l.contains("module=\"gordon_plugin_dns::zonefile\"")),
        "no debug line of gordon_plugin_dns::zonefile:\n{log}"
    );
    assert!(
        debug
            .iter()
            .all(|l| l.contains("module=\"gordon_plugin_dns::zonefile\"")),
        "debug lines of other modules:\n{log}"
    );
    assert!(!log.contains(HTTP_DEBUG), "{log}");
}

#[test]
fn bad_directives_are_refused_naming_the_key_or_variable_and_the_item() {
    let env = pipeline("[core.logging]\nlevel = \"warning,dns.zonefile=chatty\"");
    let out = env.gordon(&["check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: `core.logging.level`: directive `dns.zonefile=chatty`: unknown level `chatty`",
            env.file("gordon.toml")
        )),
        "{stderr}"
    );
    for (level, item) in [
        ("info,debug", "debug"),
        ("info,gordon[span]=debug", "gordon[span]=debug"),
        ("dns.zonefile", "dns.zonefile"),
        ("info,gordon::plugin=warn", "gordon::plugin=warn"),
    ] {
        let env = pipeline(&format!("[core.logging]\nlevel = \"{level}\""));
        let out = env.gordon(&["check"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{level}: {stderr}");
        assert!(
            stderr.contains("`core.logging.level`: directive `")
                && stderr.contains(&format!("`{item}`")),
            "{level}: {stderr}"
        );
    }

    let env = pipeline("");
    let out = std::process::Command::new(crate::util::gordon_bin())
        .arg("-c")
        .arg(env.path())
        .arg("check")
        .env("GORDON_LOG", "info,dns.zonefile=chatty")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "environment variable GORDON_LOG: directive `dns.zonefile=chatty`: unknown level `chatty`"
        ),
        "{stderr}"
    );
}

#[test]
fn a_directive_naming_no_active_plugin_is_a_warning() {
    let env =
        pipeline("[core.logging]\nlevel = \"info,dns.zonefil=debug,dns.*=warning,acme.*=debug\"");
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let warned = |name: &str| {
        stdout.lines().any(|l| {
            l.starts_with("warning: ")
                && l.contains(&format!("`core.logging.level` names `{name}`"))
        })
    };
    assert!(warned("dns.zonefil"), "{stdout}");
    assert!(warned("acme.*"), "{stdout}");
    assert!(!warned("dns.*"), "{stdout}");
}
