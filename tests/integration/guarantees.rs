//! What the host promises about accepted work, seen from outside: routes that
//! cannot publish are refused, `check` refuses what `run` refuses, a handler that
//! hangs costs its batch (rejected) and not the route, a run that lost or abandoned
//! anything exits non-zero, and shutdown is bounded by one deadline.

use std::time::{Duration, Instant};

use crate::util::{
    alpha_beta_env, fixture, http, sample, signal, text, vendor_fixture, wait_exit, wait_for_file,
    wait_for_text, Env,
};

/// `gordon check` and `gordon run` both refuse; the run starts no source.
#[track_caller]
fn refused_by_check_and_run(env: &Env, needle: &str) {
    let check = env.gordon(&["check"]);
    let out = format!("{}{}", text(&check.stdout), text(&check.stderr));
    assert!(
        check.status.code() == Some(1) || check.status.code() == Some(2),
        "check passed: {out}"
    );
    assert!(out.contains(needle), "check did not say `{needle}`:\n{out}");
    let run = env.gordon(&[]);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "run did not refuse: {err}");
    assert!(err.contains(needle), "run did not say `{needle}`:\n{err}");
    assert!(
        !env.path().join("report.json").exists(),
        "a source ran although start-up was refused"
    );
}

#[test]
fn a_route_typo_is_refused_by_check_and_run_instead_of_acknowledging_unpublished() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "beta.publish"]
[core.route]
consume = "enrich"
enrich = "publsh"
publish = "cleanup"
["alpha.source"]
count = 10
report = "REPORT"
["alpha.enrich"]
suffix = "x."
"#,
    );
    refused_by_check_and_run(&env, "`enrich = \"publsh\"`");
    let check = text(&env.gordon(&["check"]).stdout);
    assert!(
        check.contains("no active handler serves"),
        "the reason is missing: {check}"
    );
    // The publisher the typo skipped is pointed out too.
    assert!(
        check.contains("warning: plugin `beta.publish` handles phase `publish`, which no source's route reaches"),
        "{check}"
    );
}

#[test]
fn two_handlers_for_one_phase_are_an_error_naming_both() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "dns.enricher", "beta.publish"]
["alpha.source"]
count = 10
report = "REPORT"
["alpha.enrich"]
suffix = "x."
["dns"]
zone = "example.com."
"#,
    );
    env.install(&sample("dns"), "libgordon_plugin_dns.so");
    refused_by_check_and_run(
        &env,
        "phase `enrich` is handled by more than one active plugin: `alpha.enrich` and `dns.enricher`",
    );
}

#[test]
fn check_refuses_everything_run_refuses_at_start() {
    let base = r#"["alpha.source"]
count = 1
report = "REPORT"
"#;
    let cases: &[(&str, &str)] = &[
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\nmetrics = \"statsd\"\n[core.route]\nconsume = \"publish\"\n",
            "core.metrics: `statsd`",
        ),
        (
            "plugins = [\"alpha.source\", \"alpha.enrich\", \"beta.publish\"]\n[core.route]\nconsume = \"enrich\"\nenrich = \"publish\"\npublish = \"enrich\"\n[\"alpha.enrich\"]\nsuffix = \"x\"\n",
            "core.route loops",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\nmetrics = \"ffwd\"\n[core.route]\nconsume = \"publish\"\n[ffwd]\ntime_unit = \"h\"\n",
            "ffwd.time_unit",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\nmetrics = \"prometheus\"\n[core.route]\nconsume = \"publish\"\n[prometheus]\nlisten = \"nowhere\"\n",
            "prometheus.listen",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\nmetrics = \"prometheus\"\n[core.route]\nconsume = \"publish\"\n[prometheus]\nport = 9\n",
            "invalid [prometheus] table",
        ),
        ("plugins = [\"beta.publish\"]\n", "no runnable plugin is active"),
        ("plugins = []\n", "core.plugins is empty"),
        (
            "plugins = [\"alpha.source\", \"alpha.source\"]\n",
            "`alpha.source` is listed more than once",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\n[core.router]\nworkers = 0\n",
            "core.router.workers",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\n[core.router]\nworkers = 100000\n",
            "core.router.workers",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\nshutdown_timeout = 1e20\n",
            "core.shutdown_timeout",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\n[core.router]\nbatch_size = 4611686018427387904\n",
            "core.router.batch_size",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\nhandler_timeout = 0\n",
            "core.handler_timeout",
        ),
        (
            "plugins = [\"alpha.source\", \"beta.publish\"]\n[core.route]\nconsume = \"publish\"\n[core.handler_timeouts]\n\"beta.publsh\" = 5\n",
            "core.handler_timeouts: `beta.publsh` is not an active message handler",
        ),
    ];
    for (core, needle) in cases {
        let env = alpha_beta_env(&format!("[core]\n{core}{base}"));
        refused_by_check_and_run(&env, needle);
    }
}

#[test]
fn check_lists_every_problem_and_speaks_json() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "beta.publish"]
metrics = "statsd"
[core.route]
consume = "enrich"
enrich = "publsh"
["alpha.enrich"]
suffix = ""
"#,
    );
    let out = env.gordon(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let errors = doc["errors"].to_string();
    for needle in [
        "`suffix` must not be empty",
        "core.metrics: `statsd`",
        "`enrich = \\\"publsh\\\"`",
    ] {
        assert!(errors.contains(needle), "missing {needle}: {doc}");
    }
    assert_eq!(doc["errors"].as_array().unwrap().len(), 3, "{doc}");
    assert!(doc["passed"].to_string().contains("alpha.source"), "{doc}");
    assert!(
        doc["note"].as_str().unwrap().contains("creates no plugin"),
        "{doc}"
    );
}

#[test]
fn check_says_it_creates_nothing_so_a_panicking_constructor_passes_it() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
[core.route]
consume = "publish"
["beta.publish"]
panic_in = "new"
"#,
    );
    let check = env.gordon(&["check"]);
    let stdout = text(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains("note: check validates configuration but creates no plugin"),
        "{stdout}"
    );
    let run = env.gordon(&[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("panicked in new"));
}

#[test]
fn check_janitor_refuses_what_the_janitor_refuses() {
    let env = Env::new();
    env.install(&fixture("gamma"), "libgamma.so");
    env.janitor_config(
        "[core]\nplugins = [\"gamma.authority\", \"gamma.reconciler\"]\n[\"gamma.authority\"]\nzone = \"example.com.\"\nrecords = []\n",
    );
    let check = env.gordon(&["check", "--janitor"]);
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no active publisher plugin"), "{stdout}");
    let run = env.gordon(&["janitor"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("no active publisher plugin"));
}

/// http.events -> acme.hang, with a one-second handler deadline; `extra_core` is
/// added to `[core]` (it may end with more top-level tables).
pub fn hang_env(extra_core: &str) -> Env {
    let env = Env::new();
    env.install(&sample("http"), "libgordon_plugin_http.so");
    env.install(&vendor_fixture(), "libacme.so");
    env.config(&format!(
        r#"[core]
plugins = ["http.events", "acme.hang"]
handler_timeout = 1
{extra_core}
[core.route]
consume = "publish"
[core.router]
workers = 1
["http.events"]
listen = "127.0.0.1:0"
port_file = "{port}"
["acme.hang"]
hang_on = "stuck"
"#,
        port = env.file("port"),
    ));
    env
}

fn post_one(port: u16, name: &str) -> String {
    let body = format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"{name}","type":"A","rrdatas":["10.0.0.1"]}}}}"#
    );
    let (status, doc) = http(port, "POST", "/events", &body);
    assert_eq!(status, 202, "{doc}");
    doc["ids"][0].as_str().unwrap().to_owned()
}

fn wait_done(port: u16, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, doc) = http(port, "GET", &format!("/events/{id}"), "");
        if doc["status"] != "pending" {
            return doc;
        }
        assert!(Instant::now() < deadline, "{id} stayed pending: {doc}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hung_handler_costs_its_batch_not_the_route() {
    let env = hang_env("");
    let mut child = env.spawn(&[]);
    let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    let (status, _) = http(port, "GET", "/healthz", "");
    assert_eq!(status, 200);
    // Two hanging events: with one worker, the second would wait forever behind the
    // first if the worker were not replaced.
    let first = post_one(port, "stuck1.example.com.");
    let second = post_one(port, "stuck2.example.com.");
    for id in [&first, &second] {
        let doc = wait_done(port, id);
        assert_eq!(doc["status"], "dropped", "{doc}");
        assert!(
            doc["history"]
                .to_string()
                .contains("plugin acme.hang did not return within 1 s"),
            "{doc}"
        );
    }
    // Routing goes on.
    let fine = post_one(port, "fine.example.com.");
    assert_eq!(wait_done(port, &fine)["status"], "published");
    // Health names the plugin.
    let (status, health) = http(port, "GET", "/healthz", "");
    assert_eq!(status, 503, "{health}");
    assert!(health.to_string().contains("acme.hang"), "{health}");
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let log = env.log();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(
        log.contains("plugin acme.hang did not return within 1 s")
            && log.contains("plugin=\"acme.hang\""),
        "{log}"
    );
}

#[test]
fn a_source_whose_run_panics_makes_the_exit_non_zero() {
    let env = Env::new();
    env.install(&vendor_fixture(), "libacme.so");
    env.install(&fixture("beta"), "libbeta.so");
    env.config(
        "[core]\nplugins = [\"acme.crash\", \"beta.publish\"]\n[core.route]\nconsume = \"publish\"\n[\"acme.crash\"]\ncount = 3\n",
    );
    let out = env.gordon(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("plugin `acme.crash`") && stderr.contains("panicked in run"),
        "{stderr}"
    );
}

#[test]
fn messages_abandoned_at_the_drain_deadline_are_counted_and_the_exit_is_non_zero() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
shutdown_timeout = 1
[core.route]
consume = "publish"
[core.router]
workers = 1
batch_size = 1
queue_capacity = 5000
["alpha.source"]
count = 3000
forever = true
sent_marker = "MARKER"
["beta.publish"]
delay_ms = 5
"#,
    );
    let mut child = env.spawn(&[]);
    wait_for_file(&env.path().join("sent"), Duration::from_secs(30));
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let log = env.log();
    assert_eq!(status.code(), Some(3), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("did not finish their route before the shutdown deadline"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("source `alpha.source`"), "{line}");
    // 3000 queued at 5 ms each need 15 s; a 1 s deadline abandons most of them.
    let lost: u64 = line
        .split("source `alpha.source`: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert!(lost > 1000, "{line}");
}

#[test]
fn stuck_plugins_share_one_shutdown_deadline() {
    // Two plugins that each take 20 s to shut down, and a one-second deadline.
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "beta.publish"]
shutdown_timeout = 1
[core.route]
consume = "enrich"
enrich = "publish"
["alpha.source"]
forever = true
count = 1
sent_marker = "MARKER"
shutdown_ms = 20000
["alpha.enrich"]
suffix = "x."
["beta.publish"]
shutdown_ms = 20000
"#,
    );
    let mut child = env.spawn(&[]);
    wait_for_file(&env.path().join("sent"), Duration::from_secs(30));
    let signalled = Instant::now();
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let took = signalled.elapsed();
    let log = env.log();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(
        took < Duration::from_millis(2500),
        "shutdown took {took:?}\n{log}"
    );
    for plugin in ["alpha.source", "beta.publish"] {
        assert!(
            log.contains(&format!(
                "plugin `{plugin}` did not shut down before the shutdown deadline"
            )),
            "{log}"
        );
    }
}

#[test]
fn a_second_signal_exits_at_once_naming_what_it_abandons() {
    let env = alpha_beta_env(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
shutdown_timeout = 60
[core.route]
consume = "publish"
["alpha.source"]
forever = true
count = 1
sent_marker = "MARKER"
["beta.publish"]
shutdown_ms = 60000
"#,
    );
    let mut child = env.spawn(&[]);
    wait_for_file(&env.path().join("sent"), Duration::from_secs(30));
    signal(&child, libc::SIGTERM);
    wait_for_text(
        &env.path().join("stderr.log"),
        "Stopping plugins:",
        Duration::from_secs(30),
    );
    let second = Instant::now();
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let log = env.log();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(second.elapsed() < Duration::from_secs(3), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("second SIGINT"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("plugins still stopping:") && line.contains("beta.publish"),
        "{line}"
    );
}

/// Without a process of its own, a plugin that faults the way native code does —
/// a segfault, `abort()`, `exit()` — takes the whole host down with it, whatever
/// the other plugins do: a panic can be caught at the FFI boundary, these cannot.
/// (README, "Guarantees"; isolating a plugin in a child process is what removes
/// this.)
#[test]
fn without_isolation_a_faulting_plugin_ends_the_host() {
    use std::os::unix::process::ExitStatusExt;
    for (fault, signal, code) in [
        ("segv", Some(libc::SIGSEGV), None),
        ("abort", Some(libc::SIGABRT), None),
        ("exit", None, Some(70)),
    ] {
        let env = crate::isolation::acme_fault_env(fault, false, "", "");
        let mut child = env.spawn(&[]);
        let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
            .trim()
            .parse()
            .unwrap();
        // The host routes until the faulting message arrives.
        let fine = post_one(port, "fine");
        assert_eq!(wait_done(port, &fine)["status"], "published");
        // Its answer may never come (the router can fault before it is written),
        // so the connection's end is not asserted on.
        {
            use std::io::{Read, Write};
            let body = r#"{"action":"additions","resourceRecords":{"name":"crash-me","type":"A","rrdatas":["10.0.0.1"]}}"#;
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                s,
                "POST /events HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let _ = s.read_to_end(&mut Vec::new());
        }
        let status = wait_exit(&mut child, Duration::from_secs(30));
        assert_eq!(status.signal(), signal, "{fault}: {status}\n{}", env.log());
        assert_eq!(status.code(), code, "{fault}: {status}\n{}", env.log());
    }
}
