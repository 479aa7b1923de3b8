use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use crate::util::{fixture, free_port, signal, text, wait_exit, wait_for_file, Env};

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
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
    // The route finishes shortly after the last send; poll the endpoint until the
    // publish counter has caught up.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let body = loop {
        let body = scrape(port);
        if body.contains("gordon_messages_total{phase=\"publish\"} 250")
            || std::time::Instant::now() > deadline
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    signal(&child, libc::SIGTERM);
    assert!(
        wait_exit(&mut child, Duration::from_secs(30)).success(),
        "{}",
        env.log()
    );
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for needle in [
        "gordon_messages_total{phase=\"consume\"} 250",
        "gordon_messages_total{phase=\"enrich\"} 250",
        "gordon_messages_total{phase=\"publish\"} 250",
        "gordon_messages_dropped_total{phase=\"publish\",plugin=\"beta.publish\"} 1",
        "gordon_handler_latency_seconds_bucket{phase=\"enrich\",plugin=\"alpha.enrich\",le=\"+Inf\"}",
        "gordon_plugin_state{plugin=\"beta.publish\",state=\"running\"} 1",
    ] {
        assert!(body.contains(needle), "missing {needle}:\n{body}");
    }
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
