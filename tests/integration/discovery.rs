//! Discovery end to end, through the real binaries against real NATS and BIND:
//! three `gordon report` processes for cluster `web`, `gordon run` watching it
//! with `nats.discovery`; BIND serves every live member, and a member whose
//! check fails, whose reporter is killed or stopped, or whose store restarts,
//! leaves DNS (or stays) as documented.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::backends::{backend, gordon_env, Backend, ZONE};
use crate::util::{sample, signal, wait_exit, Env};

const EXPIRY: f64 = 3.0;

/// The addresses BIND serves for `name` (type A).
fn served(b: &Backend, name: &str) -> BTreeSet<String> {
    b.bind
        .axfr()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[0] == name && f[3] == "A").then(|| f[4].to_owned())
        })
        .collect()
}

/// Waits until BIND serves exactly `want` for `name`; returns how long it took.
fn wait_served(
    b: &Backend,
    name: &str,
    want: &[&str],
    timeout: Duration,
    log: &dyn Fn() -> String,
) -> Duration {
    let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
    let started = Instant::now();
    loop {
        let got = served(b, name);
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{name}: BIND serves {got:?}, want {want:?}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A node's reporter: service `web` on port 8080+i, up while `healthy` exists.
fn reporter(b: &Backend, i: u8) -> (Env, std::path::PathBuf) {
    let env = Env::new();
    env.install(&sample("nats"), "libgordon_plugin_nats.so");
    let healthy = env.path().join("healthy");
    std::fs::write(&healthy, "").unwrap();
    std::fs::write(
        env.path().join("gordon-report.toml"),
        format!(
            r#"[core]
plugins = ["nats.discovery"]
["nats.discovery"]
servers = ["nats://127.0.0.1:{nats}"]
expiry = {EXPIRY}
[report]
node = "n{i}"
address = "10.7.0.{i}"
interval = 0.2
timeout = 1.0
rise = 1
fall = 2
[[report.services]]
cluster = "web"
port = {port}
check = {{ command = ["test", "-e", "{healthy}"] }}
[[report.services]]
cluster = "api"
port = {api}
check = {{ command = ["test", "-e", "{healthy}"] }}
"#,
            api = 9090 + u16::from(i),
            nats = b.nats.port(),
            port = 8080 + u16::from(i),
            healthy = healthy.display(),
        ),
    )
    .unwrap();
    (env, healthy)
}

#[test]
fn cluster_membership_becomes_dns_and_dead_nodes_leave_it() {
    let Some(mut b) = backend() else { return };
    let web = format!("web.{ZONE}");
    let dns = gordon_env(&b, &b.key, "");
    let nats = b.nats.port();
    let watch = |extra: &str| {
        std::fs::write(
            dns.path().join("gordon-user.toml"),
            format!(
                r#"[core]
plugins = ["nats.discovery", "dns.enricher", "dns.rfc2136"]
[[core.discovery."nats.discovery".clusters]]
cluster = "web"
name = "{web}"
ttl = 60
srv = "_http._tcp"
{extra}
["nats.discovery"]
servers = ["nats://127.0.0.1:{nats}"]
expiry = {EXPIRY}
"#
            ),
        )
        .unwrap();
    };
    watch("");
    let service = dns.spawn(&[]);
    let nodes: Vec<(Env, std::path::PathBuf)> = (1..=3).map(|i| reporter(&b, i)).collect();
    let mut children: Vec<std::process::Child> = nodes
        .iter()
        .map(|(env, _)| env.spawn(&["report"]))
        .collect();
    let log = || {
        let mut all = dns.log();
        for (env, _) in &nodes {
            all.push_str(&env.log());
        }
        all
    };
    let long = Duration::from_secs(60);
    wait_served(&b, &web, &["10.7.0.1", "10.7.0.2", "10.7.0.3"], long, &log);
    assert_eq!(
        served(&b, &format!("n2.{web}")),
        BTreeSet::from(["10.7.0.2".to_owned()])
    );
    let srv: Vec<String> = b
        .bind
        .axfr()
        .into_iter()
        .filter(|l| l.starts_with(&format!("_http._tcp.{web}")) && l.contains("SRV"))
        .collect();
    assert_eq!(srv.len(), 3, "{srv:?}");
    assert!(
        srv.iter().any(|l| l.ends_with(&format!("8082 n2.{web}"))),
        "{srv:?}"
    );

    // A failing check: n1 leaves after its fall count (2 checks at 0.2 s).
    std::fs::remove_file(&nodes[0].1).unwrap();
    let took = wait_served(&b, &web, &["10.7.0.2", "10.7.0.3"], long, &log);
    wait_served(&b, &format!("n1.{web}"), &[], long, &log);
    eprintln!("discovery: a failing check left DNS in {took:?}");

    // kill -9: n2 stops heart-beating and leaves within the expiry.
    signal(&children[1], libc::SIGKILL);
    let killed = Instant::now();
    let _ = children[1].wait();
    wait_served(&b, &web, &["10.7.0.3"], long, &log);
    let stale = killed.elapsed();
    eprintln!("discovery: a node killed with SIGKILL was served for {stale:?} (expiry {EXPIRY} s)");
    assert!(
        stale < Duration::from_secs_f64(EXPIRY + 4.0),
        "served for {stale:?}"
    );

    // The store restarts: nothing is deleted meanwhile, and membership resumes.
    std::fs::write(&nodes[0].1, "").unwrap();
    wait_served(&b, &web, &["10.7.0.1", "10.7.0.3"], long, &log);
    b.nats.restart();
    for _ in 0..10 {
        assert_eq!(
            served(&b, &web),
            BTreeSet::from(["10.7.0.1".to_owned(), "10.7.0.3".to_owned()]),
            "a record changed while the store restarted\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::fs::remove_file(&nodes[2].1).unwrap();
    wait_served(&b, &web, &["10.7.0.1"], long, &log);

    // A reload adds a cluster to the watch, without a restart.
    let api = format!("api.{ZONE}");
    assert!(served(&b, &api).is_empty());
    watch(&format!("[[core.discovery.\"nats.discovery\".clusters]]\ncluster = \"api\"\nname = \"{api}\"\nttl = 60\n"));
    let out = dns.gordon(&["ctl", "reload", "--json"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["applied"],
        serde_json::json!(["nats.discovery"]),
        "{report}"
    );
    wait_served(&b, &api, &["10.7.0.1"], long, &log);
    assert!(
        log().contains("Watching (reload)."),
        "the watch took the new cluster live"
    );
    assert_eq!(served(&b, &web), BTreeSet::from(["10.7.0.1".to_owned()]));

    // SIGTERM: the reporter reports its services down before it exits.
    signal(&children[0], libc::SIGTERM);
    assert!(
        wait_exit(&mut children[0], Duration::from_secs(30)).success(),
        "{}",
        log()
    );
    let took = wait_served(&b, &web, &[], long, &log);
    eprintln!("discovery: a stopped reporter left DNS in {took:?}");
    for child in children.iter_mut().skip(2) {
        signal(child, libc::SIGTERM);
        let _ = wait_exit(child, Duration::from_secs(30));
    }
    crate::backends::stop(&dns, service);
}
