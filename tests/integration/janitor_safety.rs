//! What a janitor run may change, against a real BIND: only the record sets gordon
//! owns, of the managed types, in the configured scope, below the change threshold;
//! everything beyond that is an explicit, named opt-in. And an inventory that is
//! not what it seems (a misspelt CSV column) fails the run instead of deleting.
//!
//! Most tests publish into `gamma.publisher` (a file) to see exactly what a run
//! would send; the first and the adoption test go all the way through NATS and the
//! service's `dns.rfc2136` into BIND.

use std::time::{Duration, Instant};

use gordon_test_servers::bind::{Bind, Key};

use crate::backends::{backend, gordon_env, stop, ZONE};
use crate::util::{dns_env_for, fixture, http, sample, text, wait_for_file, Env};

/// Records an operator made by hand: an apex MX, an SPF TXT and a legacy host.
const HAND_MADE: &str = "update add example.test. 300 MX 10 mail.example.net.\n\
                         update add example.test. 300 TXT \"v=spf1 -all\"\n\
                         update add legacy.example.test. 300 A 10.9.9.9\n";

/// `nsupdate` commands for record sets gordon owns: each `name address` gets its
/// A record and the owner record `dns.rfc2136` writes beside it.
fn owned(hosts: &[(&str, &str)]) -> String {
    hosts
        .iter()
        .map(|(name, addr)| {
            format!(
                "update add {name}.{ZONE} 300 A {addr}\n\
                 update add _gordon-a-{name}.{ZONE} 300 TXT \"heritage=gordon,owner=gordon\"\n"
            )
        })
        .collect()
}

/// An inventory file of `name address` hosts (TOML).
fn hosts_toml(hosts: &[(&str, &str)]) -> String {
    hosts
        .iter()
        .map(|(n, a)| format!("[[host]]\nname = \"{n}\"\naddresses = [\"{a}\"]\n\n"))
        .collect()
}

/// `name type rdata` of every record BIND serves, owner records and the
/// SOA/NS/glue left out, sorted.
fn served(bind: &Bind) -> Vec<String> {
    let mut v: Vec<String> = bind
        .axfr()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(5, ' ').collect();
            let infra = matches!(f.get(3), Some(&"SOA" | &"NS")) || f[0] == format!("ns1.{ZONE}");
            (f.len() == 5 && !infra && !f[0].starts_with("_gordon-"))
                .then(|| format!("{} {} {}", f[0], f[3], f[4]))
        })
        .collect();
    v.sort();
    v
}

/// The owner record of `name` `rtype`, if BIND serves one.
fn owner_record(bind: &Bind, name: &str, rtype: &str) -> Option<String> {
    let owner = format!("_gordon-{}-{name}.{ZONE}", rtype.to_ascii_lowercase());
    bind.axfr()
        .iter()
        .find(|l| l.starts_with(&format!("{owner} ")) && l.contains(" TXT "))
        .and_then(|l| l.splitn(5, ' ').nth(4).map(str::to_owned))
}

/// A janitor config root: `inventory.authority` reading `inventory` (file name,
/// contents), `dns.reconciler` against `bind` with `reconciler` appended to its
/// table, and `gamma.publisher` writing `published.jsonl`.
fn janitor(bind: &Bind, key: &Key, inventory: (&str, &str), reconciler: &str) -> Env {
    let env = Env::new();
    env.install(&sample("inventory"), "libgordon_plugin_inventory.so");
    env.install(&sample("rfc2136"), "libgordon_plugin_rfc2136.so");
    env.install(&fixture("gamma"), "libgamma.so");
    std::fs::write(env.path().join("tsig.key"), key.bind_stanza()).unwrap();
    std::fs::write(env.path().join(inventory.0), inventory.1).unwrap();
    env.janitor_config(&format!(
        r#"[core]
plugins = ["inventory.authority", "dns.reconciler", "gamma.publisher"]
run_timeout = 60
["inventory.authority"]
zones = ["{ZONE}"]
files = ["{inv}"]
["dns"]
zone = "{ZONE}"
["gamma.publisher"]
out = "{out}"
["dns.reconciler"]
server = "{server}"
tsig_key_file = "{key}"
{reconciler}
"#,
        inv = env.file(inventory.0),
        out = env.file("published.jsonl"),
        server = bind.addr(),
        key = env.file("tsig.key"),
    ));
    env
}

/// A BIND serving [`ZONE`] with the records `setup` (nsupdate commands) makes.
fn bind_with(setup: &str) -> Option<(Bind, Key)> {
    let key = Key::random("gordon-key", "hmac-sha256");
    let bind = Bind::start(ZONE, std::slice::from_ref(&key))?;
    if !setup.is_empty() {
        bind.nsupdate(ZONE, setup).unwrap();
    }
    Some((bind, key))
}

/// `action name type` of every change `gamma.publisher` received, in order.
fn published(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.path().join("published.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let r = &v["resourceRecords"];
            format!(
                "{} {} {}",
                v["action"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?"),
                r["type"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

#[test]
fn a_minimal_janitor_leaves_hand_made_records_alone() {
    // Through the whole pipeline: janitor -> NATS -> the service -> BIND.
    let Some(b) = backend() else { return };
    b.bind.nsupdate(ZONE, HAND_MADE).unwrap();
    let service = gordon_env(&b, &b.key, "");
    let child = service.spawn(&[]);
    let env = Env::new();
    env.install(&sample("inventory"), "libgordon_plugin_inventory.so");
    env.install(&sample("rfc2136"), "libgordon_plugin_rfc2136.so");
    env.install(&sample("nats"), "libgordon_plugin_nats.so");
    std::fs::write(env.path().join("tsig.key"), b.key.bind_stanza()).unwrap();
    std::fs::write(
        env.path().join("hosts.toml"),
        hosts_toml(&[("www", "10.0.0.1"), ("api", "10.0.0.2")]),
    )
    .unwrap();
    // The minimal configuration: no `policy`, no `owner_id`, nothing about scope.
    env.janitor_config(&format!(
        r#"[core]
plugins = ["inventory.authority", "dns.reconciler", "nats.publisher"]
["inventory.authority"]
zones = ["{ZONE}"]
files = ["{inv}"]
["dns"]
zone = "{ZONE}"
["dns.reconciler"]
server = "{server}"
tsig_key_file = "{key}"
["nats"]
servers = ["nats://127.0.0.1:{nats}"]
["nats.publisher"]
subject = "dns.events"
"#,
        inv = env.file("hosts.toml"),
        server = b.bind.addr(),
        key = env.file("tsig.key"),
        nats = b.nats.port(),
    ));
    let out = env.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = s(&[
        "api.example.test. A 10.0.0.2",
        "example.test. MX 10 mail.example.net.",
        "example.test. TXT \"v=spf1 -all\"",
        "legacy.example.test. A 10.9.9.9",
        "www.example.test. A 10.0.0.1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while served(&b.bind) != want {
        assert!(
            Instant::now() < deadline,
            "served {:#?}\n{}",
            served(&b.bind),
            service.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What gordon published is marked as its own; what it found is not.
    let mark = Some("\"heritage=gordon,owner=gordon\"".to_owned());
    assert_eq!(owner_record(&b.bind, "www", "A"), mark);
    assert_eq!(owner_record(&b.bind, "api", "A"), mark);
    assert_eq!(owner_record(&b.bind, "legacy", "A"), None);
    // A second run has nothing left to do.
    let out = env.gordon(&["janitor", "--dry-run"]);
    assert_eq!(text(&out.stdout), "plan: no changes\n");
    stop(&service, child);
}

#[test]
fn no_policy_means_upsert_only() {
    let setup = format!(
        "{HAND_MADE}{}",
        owned(&[("old", "10.0.0.8"), ("www", "10.0.0.9")])
    );
    let Some((bind, key)) = bind_with(&setup) else {
        return;
    };
    let inv = hosts_toml(&[("www", "10.0.0.1"), ("api", "10.0.0.2")]);
    let env = janitor(&bind, &key, ("hosts.toml", &inv), "");
    let out = env.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // `old` is gordon's and no longer wanted, but nothing is deleted without
    // `policy = "sync"`; gordon's `www` is put right.
    assert_eq!(
        published(&env),
        s(&[
            "additions www.example.test. A",
            "additions api.example.test. A"
        ])
    );
}

#[test]
fn under_sync_only_records_gordon_owns_are_deleted() {
    let setup = format!(
        "{HAND_MADE}{}",
        owned(&[("old", "10.0.0.8"), ("www", "10.0.0.1")])
    );
    let Some((bind, key)) = bind_with(&setup) else {
        return;
    };
    let inv = hosts_toml(&[
        ("www", "10.0.0.1"),
        ("api", "10.0.0.2"),
        ("legacy", "10.0.0.3"),
    ]);
    let env = janitor(&bind, &key, ("hosts.toml", &inv), "policy = \"sync\"");
    let out = env.gordon(&["janitor", "--dry-run"]);
    let plan = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        plan.contains("zone example.test.: 1 addition(s), 1 deletion(s)"),
        "{plan}"
    );
    assert!(
        plan.contains("2 owned record set(s): 0 update(s) and 1 deletion(s) change 50.0 % of them (no threshold under 10 owned record sets)"),
        "{plan}"
    );
    let out = env.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The MX, the SPF TXT and the legacy host stay; legacy is even wanted with
    // another address, but it is not gordon's to change.
    assert_eq!(
        published(&env),
        s(&[
            "deletions old.example.test. A",
            "additions api.example.test. A"
        ])
    );
    assert!(
        stderr.contains("left alone") && stderr.contains("legacy.example.test. A"),
        "the log names what it may not change: {stderr}"
    );
}

#[test]
fn manage_unowned_is_a_loud_opt_in() {
    let setup = format!("{HAND_MADE}{}", owned(&[("www", "10.0.0.1")]));
    let Some((bind, key)) = bind_with(&setup) else {
        return;
    };
    let inv = hosts_toml(&[("www", "10.0.0.1")]);
    let env = janitor(
        &bind,
        &key,
        ("hosts.toml", &inv),
        "policy = \"sync\"\nmanage_unowned = true",
    );
    let out = env.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("manage_unowned = true: record sets gordon does not own"),
        "{stderr}"
    );
    // The legacy host goes; the MX and TXT are not managed record types.
    assert_eq!(published(&env), s(&["deletions legacy.example.test. A"]));
}

#[test]
fn managed_types_domains_and_exclusions_limit_what_is_compared() {
    let mut setup = owned(&[
        ("old.hosts", "10.0.0.8"),
        ("keep.hosts", "10.0.0.7"),
        ("other", "10.0.0.6"),
    ]);
    setup.push_str(
        "update add t.hosts.example.test. 300 TXT \"gone\"\n\
         update add _gordon-txt-t.hosts.example.test. 300 TXT \"heritage=gordon,owner=gordon\"\n\
         update add m.hosts.example.test. 300 MX 10 mail.example.net.\n\
         update add _gordon-mx-m.hosts.example.test. 300 TXT \"heritage=gordon,owner=gordon\"\n",
    );
    let Some((bind, key)) = bind_with(&setup) else {
        return;
    };
    let inv = hosts_toml(&[("a.hosts", "10.0.1.1"), ("www", "10.0.1.2")]);
    let scope = format!(
        "policy = \"sync\"\nmanaged_record_types = [\"A\", \"TXT\"]\n\
         [\"dns.reconciler\".zones.\"{ZONE}\"]\n\
         domains = [\"hosts.{ZONE}\"]\nexclude = [\"keep.hosts.{ZONE}\"]"
    );
    let env = janitor(&bind, &key, ("hosts.toml", &inv), &scope);
    let out = env.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // keep.hosts is excluded, `other` and `www` are outside the domains, the MX is
    // not a managed type: only old.hosts A and t.hosts TXT go.
    assert_eq!(
        published(&env),
        s(&[
            "deletions old.hosts.example.test. A",
            "deletions t.hosts.example.test. TXT",
            "additions a.hosts.example.test. A"
        ])
    );
    // A misspelt scope key is refused by name, not ignored.
    std::fs::write(
        env.path().join("gordon-janitor-user.toml"),
        "[\"dns.reconciler\"]\nmanaged_record_type = [\"A\"]\n",
    )
    .unwrap();
    let out = env.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("managed_record_type"), "{stderr}");
}

#[test]
fn a_plan_over_the_change_threshold_is_refused_unless_forced() {
    let hosts: Vec<(String, String)> = (0..12)
        .map(|i| (format!("h{i}"), format!("10.0.2.{i}")))
        .collect();
    let all: Vec<(&str, &str)> = hosts
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let Some((bind, key)) = bind_with(&owned(&all)) else {
        return;
    };
    // The inventory keeps 8 of the 12: 4 deletions are 33.3 %, over 30 %.
    let env = janitor(
        &bind,
        &key,
        ("hosts.toml", &hosts_toml(&all[..8])),
        "policy = \"sync\"",
    );
    let before = served(&bind);
    let out = env.gordon(&["janitor", "--once"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("zone example.test.: 4 of 12 owned record set(s) would change (0 update(s), 4 deletion(s)): 33.3 %, over the 30 % change threshold")
            && stderr.contains("nothing was published")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(
        stdout.contains("zone example.test.: 0 addition(s), 4 deletion(s)")
            && stdout.contains("-  h8.example.test."),
        "the plan is shown: {stdout}"
    );
    assert!(published(&env).is_empty(), "a refused plan was published");
    assert_eq!(served(&bind), before);
    // A dry run shows the same and says a run would be refused.
    let out = env.gordon(&["janitor", "--dry-run"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("over the change threshold: zone example.test.: 4 of 12"),
        "{}",
        text(&out.stdout)
    );
    // A higher threshold, or --force, lets it through.
    let out = env.gordon(&["janitor", "--once", "--max-change-percent", "40"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(published(&env).len(), 4);
    let out = env.gordon(&["janitor", "--once", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        published(&env)[4..],
        s(&[
            "deletions h10.example.test. A",
            "deletions h11.example.test. A",
            "deletions h8.example.test. A",
            "deletions h9.example.test. A"
        ])
    );
    // Zones under `--min-owned-records` are not held to it.
    let out = env.gordon(&["janitor", "--once", "--min-owned-records", "13"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn an_empty_inventory_deletes_nothing_even_under_sync() {
    let Some((bind, key)) = bind_with(&owned(&[("www", "10.0.0.1"), ("db", "10.0.0.2")])) else {
        return;
    };
    let env = janitor(
        &bind,
        &key,
        ("hosts.toml", "# no hosts yet\n"),
        "policy = \"sync\"",
    );
    let out = env.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(published(&env).is_empty(), "{:?}", published(&env));
    assert!(stderr.contains("refusing to delete anything"), "{stderr}");
}

#[test]
fn a_misspelt_csv_column_fails_the_run_and_deletes_nothing() {
    let Some((bind, key)) = bind_with(&owned(&[("www", "10.0.0.1"), ("db", "10.0.0.2")])) else {
        return;
    };
    let csv = "name,adresses,aliases\nwww,10.0.0.1,web\ndb,10.0.0.2,\n";
    let env = janitor(&bind, &key, ("hosts.csv", csv), "policy = \"sync\"");
    let out = env.gordon(&["janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hosts.csv: line 1, column 2: unknown column \"adresses\""),
        "{stderr}"
    );
    assert!(published(&env).is_empty(), "{:?}", published(&env));
}

#[test]
fn csv_with_a_bom_and_quoted_fields_is_read() {
    let Some((bind, key)) = bind_with("") else {
        return;
    };
    let csv = "\u{feff}name,addresses,aliases\n\"www\",\"10.0.0.1, 10.0.0.2\",\"web\"\n";
    let env = janitor(&bind, &key, ("hosts.csv", csv), "");
    let out = env.gordon(&["janitor", "--dry-run"]);
    let plan = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        plan.contains("+  www.example.test.  A      300  10.0.0.1 10.0.0.2"),
        "{plan}"
    );
    assert!(
        plan.contains("+  web.example.test.  CNAME  300  www.example.test."),
        "{plan}"
    );
}

#[test]
fn adopting_marks_what_the_inventory_describes_and_nothing_else() {
    let Some(b) = backend() else { return };
    b.bind
        .nsupdate(
            ZONE,
            &format!(
                "{HAND_MADE}update add www.{ZONE} 300 A 10.0.0.1\nupdate add db.{ZONE} 300 A 10.0.0.99\n"
            ),
        )
        .unwrap();
    // The service takes over unmarked record sets it is told to write...
    let service = gordon_env(&b, &b.key, "adopt = true");
    let child = service.spawn(&[]);
    let env = Env::new();
    env.install(&sample("inventory"), "libgordon_plugin_inventory.so");
    env.install(&sample("rfc2136"), "libgordon_plugin_rfc2136.so");
    env.install(&sample("nats"), "libgordon_plugin_nats.so");
    std::fs::write(env.path().join("tsig.key"), b.key.bind_stanza()).unwrap();
    std::fs::write(
        env.path().join("hosts.toml"),
        hosts_toml(&[("www", "10.0.0.1"), ("db", "10.0.0.3")]),
    )
    .unwrap();
    // ...and the reconciler tells it to write the desired ones that exist unmarked.
    env.janitor_config(&format!(
        r#"[core]
plugins = ["inventory.authority", "dns.reconciler", "nats.publisher"]
["inventory.authority"]
zones = ["{ZONE}"]
files = ["{inv}"]
["dns"]
zone = "{ZONE}"
["dns.reconciler"]
server = "{server}"
tsig_key_file = "{key}"
policy = "sync"
adopt = true
["nats"]
servers = ["nats://127.0.0.1:{nats}"]
["nats.publisher"]
subject = "dns.events"
"#,
        inv = env.file("hosts.toml"),
        server = b.bind.addr(),
        key = env.file("tsig.key"),
        nats = b.nats.port(),
    ));
    let out = env.gordon(&["janitor", "--dry-run"]);
    let plan = text(&out.stdout);
    assert!(
        plan.contains("+  db.example.test.   A  300  10.0.0.3  # update")
            && plan.contains("+  www.example.test.  A  300  10.0.0.1  # adopt: mark as ours"),
        "{plan}"
    );
    assert!(!plan.contains("legacy"), "{plan}");
    let out = env.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mark = Some("\"heritage=gordon,owner=gordon\"".to_owned());
    let deadline = Instant::now() + Duration::from_secs(30);
    while owner_record(&b.bind, "db", "A") != mark || owner_record(&b.bind, "www", "A") != mark {
        assert!(Instant::now() < deadline, "not adopted:\n{}", service.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        served(&b.bind),
        s(&[
            "db.example.test. A 10.0.0.3",
            "example.test. MX 10 mail.example.net.",
            "example.test. TXT \"v=spf1 -all\"",
            "legacy.example.test. A 10.9.9.9",
            "www.example.test. A 10.0.0.1",
        ])
    );
    assert_eq!(owner_record(&b.bind, "legacy", "A"), None);
    // Once adopted, a run without `adopt` has nothing to do.
    let cfg = std::fs::read_to_string(env.path().join("gordon-janitor.toml"))
        .unwrap()
        .replace("adopt = true\n", "");
    env.janitor_config(&cfg);
    let out = env.gordon(&["janitor", "--dry-run"]);
    assert_eq!(text(&out.stdout), "plan: no changes\n");
    stop(&service, child);
}

#[test]
fn janitor_metrics_carry_counts_as_values_and_the_last_success_time() {
    let Some((bind, key)) = bind_with(&owned(&[("old", "10.0.0.8")])) else {
        return;
    };
    let inv = hosts_toml(&[("www", "10.0.0.1"), ("api", "10.0.0.2")]);
    let env = janitor(&bind, &key, ("hosts.toml", &inv), "policy = \"sync\"");
    let out = env.gordon(&["-v", "janitor", "--once"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let metric = |name: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| l.contains(&format!("metric={name} ")))
            .map(str::to_owned)
            .collect()
    };
    let ended = metric("gordon.janitor.run-ended");
    assert_eq!(ended.len(), 1, "{stderr}");
    assert!(
        ended[0].contains("tags=status=ok,dry_run=false") && !ended[0].contains("changes="),
        "counts are not labels: {}",
        ended[0]
    );
    let changes = metric("gordon.janitor.changes");
    assert!(
        changes.len() == 1 && changes[0].contains("value=3"),
        "{changes:?}"
    );
    assert!(metric("gordon.janitor.zones")[0].contains("value=1"));
    assert!(metric("gordon.janitor.published")[0].contains("value=3"));
    let last = metric("gordon.janitor.last-success");
    assert!(
        last.len() == 1 && last[0].contains("kind=\"set\""),
        "{last:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let value: f64 = last[0]
        .split("value=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!((now - value).abs() < 120.0, "{value} is not now ({now})");
    // A refused run is counted as such, and is not a success.
    let out = env.gordon(&[
        "-v",
        "janitor",
        "--once",
        "--max-change-percent",
        "0",
        "--min-owned-records",
        "1",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tags=status=refused,dry_run=false"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("metric=gordon.janitor.last-success "),
        "{stderr}"
    );
}

/// A zone file written by the service's `dns.zonefile` and served by BIND carries
/// the same owner records as `dns.rfc2136` writes: a janitor run under `sync`
/// deletes the stale record set gordon published, and nothing an operator added to
/// the file by hand.
#[test]
fn a_zone_file_the_service_wrote_is_reconciled_by_its_owner_records() {
    let service = dns_env_for(ZONE, "", "");
    let zone_file = service.path().join(format!("zones/{ZONE}zone"));
    let child = service.spawn(&[]);
    let port = wait_for_file(&service.path().join("port"), Duration::from_secs(30));
    let port: u16 = port.trim().parse().unwrap();
    let (status, doc) = http(
        port,
        "POST",
        "/events",
        r#"[{"action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["10.0.0.1"]}},
            {"action":"additions","resourceRecords":{"name":"old","type":"A","rrdatas":["10.0.0.8"]}}]"#,
    );
    assert_eq!(status, 202, "{doc}");
    for id in doc["ids"].as_array().unwrap() {
        let path = format!("/events/{}", id.as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(port, "GET", &path, "").1["status"] != "published" {
            assert!(Instant::now() < deadline, "{}", service.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    stop(&service, child);
    // An operator adds records to the file by hand.
    let mut zone = std::fs::read_to_string(&zone_file).unwrap();
    zone.push_str("@ 300 IN MX 10 mail.example.net.\nlegacy 300 IN A 10.9.9.9\n");
    std::fs::write(&zone_file, zone).unwrap();
    let key = Key::random("gordon-key", "hmac-sha256");
    let Some(loaded) = Bind::load(ZONE, &zone_file, std::slice::from_ref(&key)) else {
        return;
    };
    let bind = loaded.unwrap_or_else(|log| panic!("named refused the zone:\n{log}"));
    let mark = Some("\"heritage=gordon,owner=gordon\"".to_owned());
    assert_eq!(owner_record(&bind, "old", "A"), mark);
    let env = janitor(
        &bind,
        &key,
        ("hosts.toml", &hosts_toml(&[("www", "10.0.0.1")])),
        "policy = \"sync\"",
    );
    let out = env.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(published(&env), [format!("deletions old.{ZONE} A")]);
}
