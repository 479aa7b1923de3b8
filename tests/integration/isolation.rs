//! Crash isolation (`core.isolate`), seen from outside: a plugin in a process of
//! its own that segfaults, aborts, exits, runs out of memory or hangs costs the
//! batch in flight and a restart, never the host; restarts are counted; a plugin
//! that keeps crashing is marked failed; isolated sources, handlers and janitor
//! plugins route as they do in-process; the plugin process runs with its limits
//! and ends with the host.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::janitor::{janitor_env, published_summary};
use crate::util::{
    dns_env_with, free_port, http, sample, settled_zone, signal, text, vendor_fixture, wait_exit,
    wait_for_file, wait_for_text, Env,
};

/// http.events -> acme.fault (isolated, phase `publish`), faulting by `fault` on
/// messages whose name contains `crash`; `extra_core` is added to `[core]` (it
/// may end with more top-level tables) and `isolation` to `[core.isolation]`
/// (with `restart_backoff = 0.05` unless it sets one).
pub(crate) fn fault_env(fault: &str, extra_core: &str, isolation: &str) -> Env {
    acme_fault_env(fault, true, extra_core, isolation)
}

/// [`fault_env`], with `acme.fault` isolated or in the host's process.
pub(crate) fn acme_fault_env(
    fault: &str,
    isolated: bool,
    extra_core: &str,
    isolation: &str,
) -> Env {
    let env = Env::new();
    let isolate = if isolated {
        r#"isolate = ["acme.fault"]"#
    } else {
        ""
    };
    let backoff = if isolation.contains("restart_backoff =") {
        ""
    } else {
        "restart_backoff = 0.05"
    };
    env.install(&sample("http"), "libgordon_plugin_http.so");
    env.install(&vendor_fixture(), "libacme.so");
    env.config(&format!(
        r#"[core]
plugins = ["http.events", "acme.fault"]
{isolate}
{extra_core}
[core.isolation]
{backoff}
{isolation}
[core.route]
consume = "publish"
["http.events"]
listen = "127.0.0.1:0"
port_file = "{port}"
["acme.fault"]
fault = "{fault}"
on = "crash"
"#,
        port = env.file("port"),
    ));
    env
}

/// The HTTP port the source wrote, once it did.
pub(crate) fn port_of(env: &Env) -> u16 {
    wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap()
}

fn event(name: &str) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"{name}","type":"A","rrdatas":["10.0.0.1"]}}}}"#
    )
}

/// Posts one event; returns its id.
pub(crate) fn post_one(port: u16, name: &str) -> String {
    let (status, doc) = http(port, "POST", "/events", &event(name));
    assert_eq!(status, 202, "{doc}");
    doc["ids"][0].as_str().unwrap().to_owned()
}

/// Posts one event to a host that may stop while answering: nothing about the
/// answer is asserted.
fn post_blind(port: u16, name: &str) {
    let body = event(name);
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "POST /events HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.read_to_end(&mut Vec::new());
}

/// Polls the status endpoint until the event is no longer pending.
pub(crate) fn wait_done(env: &Env, port: u16, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, doc) = http(port, "GET", &format!("/events/{id}"), "");
        if doc["status"] != "pending" {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "{id} stayed pending: {doc}\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids logged for `plugin` on lines containing `what` (`Plugin process
/// started.`, `Plugin process restarted.`), in order.
pub(crate) fn logged_pids(log: &str, plugin: &str, what: &str) -> Vec<i32> {
    let tag = format!("plugin=\"{plugin}\"");
    let tag_bare = format!("plugin={plugin}");
    log.lines()
        .filter(|l| l.contains(what) && (l.contains(&tag) || l.contains(&tag_bare)))
        .filter_map(|l| {
            let rest = l.split("pid=").nth(1)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// The pid of `plugin`'s first process, once the host logged it.
pub(crate) fn started_pid(env: &Env, plugin: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = logged_pids(&env.log(), plugin, "Plugin process started.").first() {
            return *pid;
        }
        assert!(
            Instant::now() < deadline,
            "no `Plugin process started.` line with a pid for {plugin}:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`, ...), or `None` once the
/// process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the command may hold spaces and parentheses.
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

/// One `Key:` line of `/proc/PID/status`, its value trimmed.
fn proc_status(pid: i32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status:\n{status}"))
        .trim()
        .to_owned()
}

/// SIGTERM, then the exit status (within 30 s).
pub(crate) fn stop(child: &mut std::process::Child) -> std::process::ExitStatus {
    signal(child, libc::SIGTERM);
    wait_exit(child, Duration::from_secs(30))
}

#[test]
fn isolated_faults_cost_a_restart_not_the_host() {
    for (fault, extra_core, isolation, reason) in [
        ("segv", "", "", "plugin process crashed (SIGSEGV)"),
        ("abort", "", "", "plugin process crashed (SIGABRT)"),
        ("exit", "", "", "plugin process exited with status 70"),
        (
            "oom",
            "",
            "memory_limit_mb = 512",
            "plugin process crashed (SIGABRT)",
        ),
        (
            "hang",
            "handler_timeout = 1",
            "",
            "plugin call exceeded its deadline",
        ),
    ] {
        let began = Instant::now();
        let env = fault_env(fault, extra_core, isolation);
        let mut child = env.spawn(&[]);
        let port = port_of(&env);
        let first_pid = started_pid(&env, "acme.fault");
        let fine = post_one(port, "fine");
        let doc = wait_done(&env, port, &fine);
        assert_eq!(doc["status"], "published", "{fault}: {doc}\n{}", env.log());

        let crash = post_one(port, "crash-me");
        let doc = wait_done(&env, port, &crash);
        assert_eq!(doc["status"], "dropped", "{fault}: {doc}\n{}", env.log());
        let history = doc["history"].to_string();
        assert!(
            history.contains(&format!("acme.fault failed: {reason}")),
            "{fault}: the history does not name `{reason}`: {doc}\n{}",
            env.log()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{fault}: the host ended with its plugin:\n{}",
            env.log()
        );

        // The next message waits for the restarted process.
        let again = post_one(port, "fine-again");
        let doc = wait_done(&env, port, &again);
        assert_eq!(doc["status"], "published", "{fault}: {doc}\n{}", env.log());
        let log = wait_for_text(
            &env.path().join("stderr.log"),
            "Plugin process restarted.",
            Duration::from_secs(10),
        );
        let restarted = logged_pids(&log, "acme.fault", "Plugin process restarted.");
        assert_eq!(restarted.len(), 1, "{fault}: one restart:\n{log}");
        assert_ne!(
            restarted[0], first_pid,
            "{fault}: the same pid restarted?\n{log}"
        );
        assert!(
            log.lines()
                .any(|l| l.contains("ERROR") && l.contains(reason)),
            "{fault}: no ERROR line names `{reason}`:\n{log}"
        );
        assert!(child.try_wait().unwrap().is_none(), "{fault}:\n{log}");
        // A restart is no health problem; and a hang is the isolation's deadline,
        // not the router's watchdog replacing a stuck worker.
        let (status, health) = http(port, "GET", "/healthz", "");
        assert_eq!(status, 200, "{fault}: {health}\n{log}");
        assert!(!log.contains("did not return within"), "{fault}:\n{log}");

        let status = stop(&mut child);
        assert_eq!(status.code(), Some(0), "{fault}: {status}\n{}", env.log());
        eprintln!("{fault}: {:?}", began.elapsed());
    }
}

/// One GET, read to the end (10 s at most).
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn restarts_are_counted_in_metrics() {
    let metrics_port = free_port();
    let env = fault_env(
        "segv",
        &format!("metrics = \"prometheus\"\n[prometheus]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
        "",
    );
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    let crash = post_one(port, "crash-me");
    assert_eq!(wait_done(&env, port, &crash)["status"], "dropped");
    let needle = "gordon_plugin_restarts_total{plugin=\"acme.fault\"} 1";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = String::new();
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", metrics_port)).is_ok() {
            answer = get(metrics_port, "/metrics");
            if answer.contains(needle) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(answer.contains(needle), "{answer}\n{}", env.log());
    assert!(
        answer.contains("# TYPE gordon_plugin_restarts_total counter"),
        "{answer}"
    );
    assert_eq!(stop(&mut child).code(), Some(0), "{}", env.log());
}

/// Three crashes, one after the other (each message once the previous one was
/// dropped, so that each meets a process of its own); the last one is only posted.
fn crash_three_times(env: &Env, port: u16, wait_for_last: bool) {
    for i in 1..=3 {
        if i == 3 && !wait_for_last {
            post_blind(port, "crash-3");
            return;
        }
        let id = post_one(port, &format!("crash-{i}"));
        let doc = wait_done(env, port, &id);
        assert_eq!(doc["status"], "dropped", "crash {i}: {doc}\n{}", env.log());
        assert!(
            doc["history"]
                .to_string()
                .contains("plugin process crashed (SIGSEGV)"),
            "crash {i}: {doc}"
        );
    }
}

const KEEPS_CRASHING: &str = "max_crashes = 2\ncrash_window = 60\nrestart_backoff = 0.01";

#[test]
fn a_plugin_that_keeps_crashing_is_marked_failed() {
    let env = fault_env("segv", "debug = false", KEEPS_CRASHING);
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    crash_three_times(&env, port, false);
    // The host stops on its own, not cleanly.
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let log = env.log();
    assert_eq!(status.code(), Some(3), "{status}\n{log}");
    assert!(
        log.lines().any(|l| l.contains("acme.fault")
            && l.contains("failed: its process crashed 3 times within 60 s")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("acme.fault") && l.contains("shutting down")),
        "the host did not say why it stopped:\n{log}"
    );
    // Two restarts, not a third.
    assert_eq!(
        logged_pids(&log, "acme.fault", "Plugin process restarted.").len(),
        2,
        "{log}"
    );
}

#[test]
fn a_plugin_that_keeps_crashing_in_debug_mode_is_failed_and_the_host_runs_on() {
    let env = fault_env("segv", "debug = true", KEEPS_CRASHING);
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    crash_three_times(&env, port, true);
    let fine = post_one(port, "fine");
    let doc = wait_done(&env, port, &fine);
    assert_eq!(doc["status"], "dropped", "{doc}\n{}", env.log());
    let history = doc["history"].to_string();
    assert!(
        history.contains("acme.fault failed: plugin failed: its process crashed 3 times")
            && history.contains("not restarted"),
        "{doc}"
    );
    assert!(child.try_wait().unwrap().is_none(), "{}", env.log());
    let (status, health) = http(port, "GET", "/healthz", "");
    assert_eq!(status, 503, "{health}");
    assert!(health.to_string().contains("acme.fault"), "{health}");
    let status = stop(&mut child);
    assert!(status.code().is_some(), "{status}\n{}", env.log());
    eprintln!("debug mode, a failed plugin: SIGTERM exits with {status}");
}

#[test]
fn an_isolated_source_and_handlers_route_as_in_process() {
    let env = dns_env_with(
        r#"isolate = ["http.events", "dns.enricher", "dns.zonefile"]"#,
        "",
    );
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    for plugin in ["http.events", "dns.enricher", "dns.zonefile"] {
        let pid = started_pid(&env, plugin);
        assert_ne!(pid, i32::try_from(child.id()).unwrap());
        assert!(proc_state(pid).is_some(), "{plugin}'s process is gone");
    }
    let (status, doc) = http(
        port,
        "POST",
        "/events",
        r#"[{"action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.1.2.3"]}},
            {"action":"additions","resourceRecords":{"name":"bad","type":"A","rrdatas":["300.1.1.1"]}}]"#,
    );
    assert_eq!(status, 202, "{doc}");
    let ids: Vec<String> = doc["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(wait_done(&env, port, &ids[0])["status"], "published");
    let bad = wait_done(&env, port, &ids[1]);
    assert_eq!(bad["status"], "dropped", "{bad}");
    assert!(bad["history"].to_string().contains("300.1.1.1"), "{bad}");
    let zone = settled_zone(&env.path().join("zones/example.com.zone"));
    let www: Vec<&str> = zone.lines().filter(|l| l.starts_with("www ")).collect();
    assert_eq!(www, ["www 300 IN A 10.1.2.3"], "{zone}");
    assert!(!zone.contains("bad"), "{zone}");
    let (status, _) = http(port, "GET", "/healthz", "");
    assert_eq!(status, 200);
    let status = stop(&mut child);
    assert_eq!(status.code(), Some(0), "{status}\n{}", env.log());
    assert!(
        !env.log().contains("Plugin process restarted."),
        "{}",
        env.log()
    );
}

/// nobody's uid and gid from /etc/passwd (65534 on Debian).
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"nobody") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or((65534, 65534))
}

#[test]
fn the_plugin_process_drops_privileges_and_applies_limits() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped the_plugin_process_drops_privileges_and_applies_limits: not root");
        return;
    }
    let env = fault_env(
        "segv",
        "",
        "user = \"nobody\"\nmemory_limit_mb = 1024\nmax_open_files = 256",
    );
    // The library must be readable by nobody: every directory on its way and the
    // file itself (util's Env: 0755 root and plugins.d, 0755 libraries).
    let lib = env.plugins_d().join("libacme.so");
    for p in [env.path(), env.plugins_d().as_path(), lib.as_path()] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode & 0o005, 0o005, "{} is {mode:o}", p.display());
    }
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    let pid = started_pid(&env, "acme.fault");
    let (uid, gid) = nobody();
    let ids = |key: &str| -> Vec<u32> {
        proc_status(pid, key)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    assert_eq!(ids("Uid"), [uid; 4], "real, effective, saved, fs uid");
    assert_eq!(ids("Gid"), [gid; 4], "real, effective, saved, fs gid");
    assert_eq!(ids("Groups"), [gid], "supplementary groups");
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let limit = |name: &str| -> Vec<String> {
        limits
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name}:\n{limits}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        limit("Max address space")[..2],
        ["1073741824", "1073741824"],
        "{limits}"
    );
    assert_eq!(limit("Max open files")[..2], ["256", "256"], "{limits}");
    // The host itself keeps its own identity and limits.
    let host = i32::try_from(child.id()).unwrap();
    assert_eq!(
        proc_status(host, "Uid").split_whitespace().next(),
        Some("0")
    );
    // And the plugin works under them.
    let fine = post_one(port, "fine");
    assert_eq!(wait_done(&env, port, &fine)["status"], "published");
    let status = stop(&mut child);
    assert_eq!(status.code(), Some(0), "{status}\n{}", env.log());
}

#[test]
fn the_plugin_process_ends_with_the_host() {
    let env = fault_env("segv", "", "");
    let mut child = env.spawn(&[]);
    port_of(&env);
    let pid = started_pid(&env, "acme.fault");
    assert!(
        matches!(proc_state(pid), Some(s) if s != 'Z'),
        "the plugin process {pid} is not running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Reparented, the process is reaped by whoever adopts it (or left a zombie
    // where nothing reaps): either way it no longer runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match proc_state(pid) {
            None | Some('Z') => break,
            Some(state) => assert!(
                Instant::now() < deadline,
                "the plugin process {pid} outlived the host by 5 s (state {state})"
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn isolated_janitor_plugins_publish_what_in_process_ones_do() {
    let plain = janitor_env("");
    let out = plain.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = published_summary(&plain);
    assert_eq!(
        expected,
        ["deletions old.example.com.", "additions api.example.com."]
    );

    // The same configuration, with the operator's file isolating all three.
    let isolated = janitor_env("");
    std::fs::write(
        isolated.path().join("gordon-janitor-user.toml"),
        "[core]\nisolate = [\"gamma.authority\", \"gamma.reconciler\", \"gamma.publisher\"]\n",
    )
    .unwrap();
    let out = isolated.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(published_summary(&isolated), expected, "{stderr}");
    for plugin in ["gamma.authority", "gamma.reconciler", "gamma.publisher"] {
        assert_eq!(
            logged_pids(&stderr, plugin, "Plugin process started.").len(),
            1,
            "{plugin} did not run in a process of its own:\n{stderr}"
        );
    }
    assert!(stderr.contains("Janitor run ended."), "{stderr}");
    assert!(!stderr.contains("Plugin process restarted."), "{stderr}");
}

/// An upgrade replaces the binary under a running host: a plugin process
/// restarted afterwards is still the running host's own binary (the one that
/// speaks its protocol), not the new file and not an error.
#[test]
fn a_restart_after_the_binary_was_replaced_runs_the_hosts_own_binary() {
    let env = fault_env("segv", "", "");
    let bin = env.path().join("gordon-copy");
    std::fs::copy(crate::util::gordon_bin(), &bin).unwrap();
    let log = std::fs::File::create(env.path().join("stderr.log")).unwrap();
    let mut child = std::process::Command::new(&bin)
        .arg("-c")
        .arg(env.path())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let port = port_of(&env);
    // The file the host was started from is gone (a package manager renames the
    // new one over it).
    std::fs::remove_file(&bin).unwrap();
    std::fs::write(&bin, b"#!/bin/sh\nexit 99\n").unwrap();
    let crash = post_one(port, "crash-me");
    assert_eq!(wait_done(&env, port, &crash)["status"], "dropped");
    let fine = post_one(port, "fine-after");
    let doc = wait_done(&env, port, &fine);
    assert_eq!(doc["status"], "published", "{doc}\n{}", env.log());
    assert!(
        env.log().contains("Plugin process restarted."),
        "{}",
        env.log()
    );
    let status = stop(&mut child);
    assert_eq!(status.code(), Some(0), "{status}\n{}", env.log());
}
