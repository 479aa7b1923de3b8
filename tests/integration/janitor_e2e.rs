//! The janitor against real servers: inventory.authority -> dns.reconciler (AXFR
//! from BIND) -> nats.publisher -> NATS -> the running gordon service -> BIND.

use std::time::{Duration, Instant};

use crate::backends::{backend, gordon_env, stop, Backend, ZONE};
use gordon_test_servers::nats_client::NatsConn;

use crate::util::{sample, text, Env};

fn published_so_far(b: &Backend) -> u64 {
    NatsConn::connect(b.nats.port()).stream_last_seq("EVENTS")
}

/// A janitor config root reading `inventory` (a path relative to the root).
fn janitor_env(b: &Backend, inventory: &str) -> Env {
    let env = Env::new();
    env.install(&sample("inventory"), "libgordon_plugin_inventory.so");
    env.install(&sample("rfc2136"), "libgordon_plugin_rfc2136.so");
    env.install(&sample("nats"), "libgordon_plugin_nats.so");
    std::fs::write(env.path().join("tsig.key"), b.key.bind_stanza()).unwrap();
    std::fs::write(
        env.path().join("hosts.toml"),
        "[[host]]\nname = \"www\"\naddresses = [\"10.0.0.1\"]\n\n[[host]]\nname = \"api\"\naddresses = [\"10.0.0.2\"]\n\n[[host]]\nname = \"db\"\naddresses = [\"10.0.0.3\"]\n",
    )
    .unwrap();
    env.janitor_config(&format!(
        r#"[core]
plugins = ["inventory.authority", "dns.reconciler", "nats.publisher"]
run_timeout = 60
["inventory.authority"]
zones = ["{ZONE}"]
files = ["{inv}"]
["dns"]
zone = "{ZONE}"
["dns.reconciler"]
server = "{server}"
tsig_key_file = "{key}"
policy = "sync"
["nats"]
servers = ["nats://127.0.0.1:{nats}"]
["nats.publisher"]
subject = "dns.events"
"#,
        inv = env.file(inventory),
        server = b.bind.addr(),
        key = env.file("tsig.key"),
        nats = b.nats.port(),
    ));
    env
}

/// `name address` of every host A record BIND serves, sorted.
fn a_records(b: &Backend) -> Vec<String> {
    let mut v: Vec<String> = b
        .bind
        .axfr()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[3] == "A" && !f[0].starts_with("ns"))
                .then(|| format!("{} {}", f[0], f[4]))
        })
        .collect();
    v.sort();
    v
}

/// Records the service published (so gordon owns them: they carry its owner
/// records), then changed behind its back: `db` gets another address. The
/// inventory wants www, api and db; rogue is gordon's but no longer wanted.
fn drift(b: &Backend) {
    let mut conn = NatsConn::connect(b.nats.port());
    for (name, addr) in [
        ("www", "10.0.0.1"),
        ("rogue", "10.6.6.6"),
        ("db", "10.0.0.3"),
    ] {
        let event = format!(
            r#"{{"action":"additions","resourceRecords":{{"name":"{name}","type":"A","rrdatas":["{addr}"]}}}}"#
        );
        conn.js_publish("dns.events", event.as_bytes());
    }
    let want = vec![
        format!("db.{ZONE} 10.0.0.3"),
        format!("rogue.{ZONE} 10.6.6.6"),
        format!("www.{ZONE} 10.0.0.1"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    while a_records(b) != want {
        assert!(
            Instant::now() < deadline,
            "not published: {:?}",
            a_records(b)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    b.bind
        .nsupdate(
            ZONE,
            &format!("update delete db.{ZONE} A\nupdate add db.{ZONE} 300 A 10.0.0.99\nsend\n"),
        )
        .unwrap();
}

#[test]
fn drift_is_put_right_by_one_janitor_run_and_the_service() {
    let Some(b) = backend() else { return };
    let service = gordon_env(&b, &b.key, "");
    let child = service.spawn(&[]);
    drift(&b);
    let before = a_records(&b);
    let janitor = janitor_env(&b, "hosts.toml");
    let seq = published_so_far(&b);

    // A dry run prints the plan and changes nothing: nothing is even published.
    let out = janitor.gordon(&["janitor", "--dry-run"]);
    let plan = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        plan.contains(&format!("zone {ZONE}: 2 addition(s), 1 deletion(s)")),
        "{plan}"
    );
    assert!(plan.contains(&format!("-  rogue.{ZONE}")), "{plan}");
    assert!(
        plan.contains(&format!("+  api.{ZONE}")) && plan.contains(&format!("+  db.{ZONE}")),
        "{plan}"
    );
    assert_eq!(published_so_far(&b), seq, "a dry run published changes");
    assert_eq!(a_records(&b), before, "a dry run changed DNS");

    // One real run, then the service applies the corrections.
    let out = janitor.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_repaired(&b, &service);
    stop(&service, child);
}

/// Waits until BIND serves what `hosts.toml` describes, and nothing else.
fn wait_repaired(b: &Backend, service: &Env) {
    let want = vec![
        format!("api.{ZONE} 10.0.0.2"),
        format!("db.{ZONE} 10.0.0.3"),
        format!("www.{ZONE} 10.0.0.1"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    while a_records(b) != want {
        assert!(
            Instant::now() < deadline,
            "DNS not repaired: {:?}\n{}",
            a_records(b),
            service.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The reconciler with `servers`: the first dead, the second BIND by a host name.
/// It reads the zone from BIND and the run repairs the drift.
#[test]
fn the_reconciler_fails_over_to_a_server_named_by_host_name() {
    let Some(b) = backend() else { return };
    let service = gordon_env(&b, &b.key, "");
    let child = service.spawn(&[]);
    drift(&b);
    let janitor = janitor_env(&b, "hosts.toml");
    let dead = format!("127.0.0.1:{}", crate::util::free_port());
    let named = format!("localhost:{}", b.bind.port());
    let cfg = std::fs::read_to_string(janitor.path().join("gordon-janitor.toml")).unwrap();
    let line = format!("server = \"{}\"\n", b.bind.addr());
    assert_eq!(cfg.matches(&line).count(), 1, "{cfg}");
    janitor.janitor_config(&cfg.replace(&line, &format!("servers = [\"{dead}\", \"{named}\"]\n")));
    let out = janitor.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let failover = stderr
        .lines()
        .find(|l| l.contains("Failed over to another DNS server"))
        .unwrap_or_else(|| panic!("no fail-over logged:\n{stderr}"));
    assert!(
        failover.contains(&dead) && failover.contains(&named),
        "{failover}"
    );
    wait_repaired(&b, &service);
    stop(&service, child);
}

#[test]
fn an_unreadable_inventory_deletes_nothing() {
    let Some(b) = backend() else { return };
    let service = gordon_env(&b, &b.key, "");
    let child = service.spawn(&[]);
    drift(&b);
    let before = a_records(&b);
    let janitor = janitor_env(&b, "missing-inventory.toml");
    let seq = published_so_far(&b);
    let out = janitor.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("inventory.authority") && stderr.contains("cannot read inventory file"),
        "{stderr}"
    );
    assert_eq!(
        published_so_far(&b),
        seq,
        "changes were published after the authority failed"
    );
    assert_eq!(
        a_records(&b),
        before,
        "records changed after the authority failed"
    );
    stop(&service, child);
}
