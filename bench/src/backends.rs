//! Events per second from a real NATS JetStream stream through the whole pipeline
//! into a zone file: nats.events -> dns.enricher -> dns.zonefile, release build.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use gordon_test_servers::nats::Nats;
use gordon_test_servers::nats_client::NatsConn;
use serde_json::json;

use crate::process::{config_root, gordon};

const EVENTS: usize = 50_000;

fn event(i: usize) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"host{i}","type":"A","rrdatas":["10.{}.{}.{}"]}}}}"#,
        i / 65_536 % 256,
        i / 256 % 256,
        i % 256
    )
}

/// Publishes a backlog, then times how long the pipeline takes to consume it.
pub fn nats_to_zonefile() -> anyhow::Result<()> {
    let Some(nats) = Nats::start() else {
        println!(
            "{}",
            json!({"bench": "nats_to_zonefile", "skipped": "nats-server not installed"})
        );
        return Ok(());
    };
    let mut conn = NatsConn::connect(nats.port());
    conn.create_stream("EVENTS", "dns.events");
    for i in 0..EVENTS {
        conn.publish("dns.events", event(i).as_bytes());
    }
    conn.flush();
    let deadline = Instant::now() + Duration::from_secs(60);
    while conn.stream_messages("EVENTS") < EVENTS as u64 {
        if Instant::now() > deadline {
            bail!("JetStream did not store the backlog");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let art = crate::artifacts()?;
    let zone_dir = tempfile::tempdir()?;
    let config = format!(
        r#"[core]
plugins = ["nats.events", "dns.enricher", "dns.zonefile"]
[core.logging]
level = "warn"
["nats.events"]
servers = ["nats://127.0.0.1:{port}"]
stream = "EVENTS"
subject = "dns.events"
durable = "gordon"
create = true
max_msg_age = 0
batch = 1024
["dns"]
zone = "example.com."
["dns.zonefile"]
path = "{zone}"
"#,
        port = nats.port(),
        zone = zone_dir.path().join("example.com.zone").display()
    );
    let root = config_root(
        &[
            ("libnats.so".into(), art.join("libgordon_plugin_nats.so")),
            ("libdns.so".into(), art.join("libgordon_plugin_dns.so")),
        ],
        &config,
    )?;
    let started = Instant::now();
    let mut child = Command::new(gordon()?)
        .arg("-c")
        .arg(root.path())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while conn.stream_messages("EVENTS") > 0 {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the backlog was not consumed within 300 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed().as_secs_f64();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let zone = std::fs::read_to_string(zone_dir.path().join("example.com.zone"))?;
    let records = zone.lines().filter(|l| l.starts_with("host")).count();
    println!(
        "{}",
        json!({
            "bench": "nats_to_zonefile",
            "events": EVENTS,
            "records_in_zone": records,
            "seconds_including_startup": (elapsed * 100.0).round() / 100.0,
            "events_per_s": (EVENTS as f64 / elapsed).round(),
        })
    );
    Ok(())
}
