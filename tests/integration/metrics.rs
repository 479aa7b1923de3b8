use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    api_version, dns_env_with, fixture, free_port, http, root, signal, test_tool, text, wait_exit,
    wait_for_file, Env,
};

/// One GET to 127.0.0.1:`port`, read to the end; panics when no full answer comes
/// within 10 s (a listener that blocks).
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // One write: a server that reads once must see the whole request.
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    if let Err(e) = s.read_to_string(&mut out) {
        panic!("GET {path} on port {port}: no answer within 10 s ({e}); got {out:?}");
    }
    out
}

fn scrape(port: u16) -> String {
    get(port, "/metrics")
}

/// The body of an HTTP answer.
fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// `promtool`, if installed. In CI (`CI=true`) its absence fails the test.
fn promtool() -> Option<PathBuf> {
    test_tool(
        &["/usr/bin/promtool", "/usr/local/bin/promtool"],
        "prometheus",
    )
}

/// Holds an exposition to Prometheus' rules: `promtool check metrics` (syntax and
/// lint: help, types, units, suffixes), plus what promtool does not check — one
/// `_seconds`, `_total` on every counter and only there, `# HELP` for every family.
fn assert_valid_exposition(exposition: &str) {
    assert!(!exposition.contains("_seconds_seconds"), "{exposition}");
    for line in exposition.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(
            exposition.contains(&format!("# HELP {name} ")),
            "no # HELP for {name}:\n{exposition}"
        );
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{line}: counters, and only they, end in _total"
        );
        assert!(
            name.starts_with("gordon_"),
            "{name}: every family has the gordon_ prefix"
        );
    }
    let Some(promtool) = promtool() else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- exposition:\n{exposition}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Waits until the metrics listener accepts connections: it is bound after the
/// plugins are created, so a source's port file can appear before it.
fn wait_listening(port: u16, env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The version of the `gordon` host crate.
fn host_version() -> String {
    let text = std::fs::read_to_string(root().join("host/Cargo.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc["package"]["version"].as_str().unwrap().to_owned()
}

/// Scrapes until `needle` shows up (the route finishes shortly after the sends),
/// or 20 s passed; returns the last answer.
fn scrape_until(port: u16, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = scrape(port);
        if answer.contains(needle) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prometheus_endpoint_shows_router_metrics() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    let port = free_port();
    env.config(&format!(
        r#"[core]
plugins = ["alpha.source", "alpha.enrich", "beta.publish"]
metrics = "prometheus"
[prometheus]
listen = "127.0.0.1:{port}"
["alpha.source"]
count = 250
forever = true
sent_marker = "{}"
["alpha.enrich"]
suffix = "x."
["beta.publish"]
fail_on = "host1."
"#,
        env.file("sent")
    ));
    let mut child = env.spawn(&[]);
    wait_for_file(&env.path().join("sent"), Duration::from_secs(30));
    let answer = scrape_until(port, "gordon_messages_total{phase=\"publish\"} 250");
    signal(&child, libc::SIGTERM);
    assert!(
        wait_exit(&mut child, Duration::from_secs(30)).success(),
        "{}",
        env.log()
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("content-type: text/plain; version=0.0.4"),
        "{answer}"
    );
    let body = body(&answer);
    let build_info = format!(
        "gordon_build_info{{plugin_api=\"{}\",version=\"{}\"}} 1",
        api_version(),
        host_version()
    );
    for needle in [
        "# HELP gordon_messages_total ",
        "# TYPE gordon_messages_total counter",
        "gordon_messages_total{phase=\"consume\"} 250",
        "gordon_messages_total{phase=\"enrich\"} 250",
        "gordon_messages_total{phase=\"publish\"} 250",
        "gordon_messages_dropped_total{phase=\"publish\",plugin=\"beta.publish\"} 1",
        "# TYPE gordon_handler_latency_seconds histogram",
        "gordon_handler_latency_seconds_bucket{phase=\"enrich\",plugin=\"alpha.enrich\",le=\"30\"}",
        "gordon_handler_latency_seconds_bucket{phase=\"enrich\",plugin=\"alpha.enrich\",le=\"+Inf\"}",
        "gordon_plugin_state{plugin=\"beta.publish\",state=\"running\"} 1",
        "# TYPE gordon_queue_depth gauge",
        "gordon_queue_depth{source=\"alpha.source\"} ",
        &build_info,
    ] {
        assert!(body.contains(needle), "missing {needle}:\n{body}");
    }
    assert_valid_exposition(body);
}

/// The default pipeline (`http.events -> dns.enricher -> dns.zonefile`) on a config
/// root of its own, exposing metrics on `metrics_port`.
fn zonefile_env(metrics_port: u16) -> Env {
    dns_env_with(
        &format!("metrics = \"prometheus\"\n[prometheus]\nlisten = \"127.0.0.1:{metrics_port}\""),
        "",
    )
}

/// Starts the service, posts one event, scrapes once it was published and the
/// scrape shows `needle` too, stops.
fn run_and_scrape(env: &Env, metrics_port: u16, name: &str, needle: &str) -> String {
    let _ = std::fs::remove_file(env.path().join("port"));
    let mut child = env.spawn(&[]);
    let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    wait_listening(metrics_port, env);
    let event = format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"{name}","type":"A","rrdatas":["10.0.0.1"]}}}}"#
    );
    let (status, doc) = http(port, "POST", "/events", &event);
    assert_eq!(status, 202, "{doc}");
    scrape_until(metrics_port, "gordon_messages_total{phase=\"publish\"} 1\n");
    let answer = scrape_until(metrics_port, needle);
    signal(&child, libc::SIGTERM);
    assert!(
        wait_exit(&mut child, Duration::from_secs(30)).success(),
        "{}",
        env.log()
    );
    answer
}

/// On a fresh config root `dns.zonefile` writes the zone file, and counts that, in
/// its constructor: before the relay is installed. That once made the log relay
/// the process's relay for good, and `/metrics` answered an empty body for the
/// whole run; the second start on the same root (the file exists) was fine.
#[test]
fn prometheus_exposes_metrics_from_the_first_start_on_a_fresh_root() {
    let metrics_port = free_port();
    let env = zonefile_env(metrics_port);
    assert!(!env.path().join("zones/example.com.zone").exists());
    // The first run writes the file at start-up (fresh) and once its writer has
    // folded the event in; the second only for the event.
    let writes = |n: u32| {
        format!("gordon_plugin_zonefile_writes_total{{plugin=\"dns.zonefile\",zone=\"example.com.\"}} {n}\n")
    };
    for (run, name) in [(1, "www"), (2, "api")] {
        let answer = run_and_scrape(&env, metrics_port, name, &writes(3 - run));
        assert!(answer.starts_with("HTTP/1.1 200"), "run {run}: {answer}");
        let body = body(&answer);
        assert!(!body.is_empty(), "run {run}: empty exposition");
        for needle in [
            "gordon_messages_total{phase=\"publish\"} 1\n",
            "gordon_queue_depth{source=\"http.events\"} ",
            "gordon_build_info{",
            "# TYPE gordon_plugin_zonefile_writes_total counter",
            "gordon_plugin_zonefile_writes_total{plugin=\"dns.zonefile\",zone=\"example.com.\"} ",
            "gordon_plugin_zonefile_serial{plugin=\"dns.zonefile\",zone=\"example.com.\"} ",
            "# TYPE gordon_plugin_zonefile_journal_seconds histogram",
            "# TYPE gordon_plugin_zonefile_write_seconds histogram",
        ] {
            assert!(
                body.contains(needle),
                "run {run}: missing {needle}:\n{body}"
            );
        }
        assert!(body.contains(&writes(3 - run)), "run {run}: {body}");
        assert_valid_exposition(body);
    }
}

/// The old listener served one connection at a time and read each one before the
/// next: one client that connected and said nothing stalled every scrape after it.
#[test]
fn idle_and_slow_clients_do_not_stall_a_scrape() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    let port = free_port();
    env.config(&format!(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
metrics = "prometheus"
[core.route]
consume = "publish"
[prometheus]
listen = "127.0.0.1:{port}"
["alpha.source"]
count = 5
forever = true
sent_marker = "{}"
"#,
        env.file("sent")
    ));
    let mut child = env.spawn(&[]);
    wait_for_file(&env.path().join("sent"), Duration::from_secs(30));
    wait_listening(port, &env);
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    // Each answer must come within `get`'s 10 s (the listener's header timeout):
    // one connection at a time would wait for the idle ones first.
    let answer = scrape(port);
    let health = get(port, "/healthz");
    let routed = scrape_until(port, "gordon_messages_total{phase=\"consume\"} 5\n");
    drop(idle);
    drop(slow);
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(body(&answer).contains("gordon_build_info{"), "{answer}");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        routed.contains("gordon_messages_total{phase=\"consume\"} 5\n"),
        "{routed}"
    );
    assert!(status.success(), "{}", env.log());
}

/// `/healthz` on the metrics listener: 200 while healthy, 503 naming the plugin
/// once a handler missed its deadline (`acme.hang` hangs on names with `stuck`).
#[test]
fn healthz_on_the_metrics_listener_turns_503_after_a_stuck_handler() {
    let metrics_port = free_port();
    let env = crate::guarantees::hang_env(&format!(
        "metrics = \"prometheus\"\n[prometheus]\nlisten = \"127.0.0.1:{metrics_port}\""
    ));
    let mut child = env.spawn(&[]);
    let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    wait_listening(metrics_port, &env);
    let before = get(metrics_port, "/healthz");
    let (status, doc) = http(
        port,
        "POST",
        "/events",
        r#"{"action":"additions","resourceRecords":{"name":"stuck1.example.com.","type":"A","rrdatas":["10.0.0.1"]}}"#,
    );
    assert_eq!(status, 202, "{doc}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let answer = get(metrics_port, "/healthz");
        if answer.starts_with("HTTP/1.1 503") || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let metrics = scrape(metrics_port);
    signal(&child, libc::SIGTERM);
    let exit = wait_exit(&mut child, Duration::from_secs(30));
    assert!(before.starts_with("HTTP/1.1 200"), "{before}");
    assert!(body(&before).contains("\"healthy\":true"), "{before}");
    assert!(after.starts_with("HTTP/1.1 503"), "{after}\n{}", env.log());
    assert!(after.contains("content-type: application/json"), "{after}");
    let doc: serde_json::Value = serde_json::from_str(body(&after)).unwrap();
    assert_eq!(doc["healthy"], false, "{doc}");
    assert!(
        doc["problems"]
            .to_string()
            .contains("plugin `acme.hang`: did not return within 1 s"),
        "{doc}"
    );
    for needle in [
        "gordon_handler_timeouts_total{phase=\"publish\",plugin=\"acme.hang\"} 1",
        "gordon_plugin_state{plugin=\"acme.hang\",state=\"stuck\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }
    assert_eq!(exit.code(), Some(3), "{}", env.log());
}

#[test]
fn ffwd_relay_sends_json_datagrams_to_one_socket() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    agent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    env.config(&format!(
        r#"[core]
plugins = ["alpha.source", "beta.publish"]
metrics = "ffwd"
[core.route]
consume = "publish"
[ffwd]
port = {}
key = "gordon-test"
time_unit = "ms"
["alpha.source"]
count = 20
"#,
        agent.local_addr().unwrap().port()
    ));
    let out = env.gordon(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut published = 0.0;
    let mut sources = std::collections::HashSet::new();
    let mut buf = [0u8; 65536];
    agent
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok((n, from)) = agent.recv_from(&mut buf) {
        sources.insert(from);
        let doc: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(doc["key"], "gordon-test");
        assert_eq!(doc["type"], "metric");
        if doc["attributes"]["what"] == "gordon.messages" && doc["attributes"]["phase"] == "publish"
        {
            published += doc["value"].as_f64().unwrap();
        }
    }
    assert_eq!(published, 20.0);
    assert_eq!(
        sources.len(),
        1,
        "datagrams came from several sockets: {sources:?}"
    );
}
