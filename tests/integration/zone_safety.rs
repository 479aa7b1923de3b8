//! No accepted event can make the zone file unloadable, and no event is changed
//! silently: what would break the zone, or is ambiguous, is refused at the door
//! (400 naming the field) or dropped by the publisher (`GET /events/{id}` says
//! `dropped`), and every zone file written is checked by `named-checkzone` and by
//! loading it into a running `named`. A zone file that would not load stops the
//! service at start, naming the file.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use gordon_test_servers::bind::{Bind, Key};
use serde_json::{json, Value};

use crate::util::{
    http, named_checkzone, settled_zone, signal, text, wait_exit, wait_for_file, Env,
};

/// The default pipeline (http.events -> dns.enricher -> dns.zonefile), running.
struct Service {
    env: Env,
    child: Child,
    port: u16,
}

fn zone_path(env: &Env) -> PathBuf {
    env.path().join("zones/example.com.zone")
}

impl Service {
    fn start() -> Service {
        Service::start_in(crate::e2e::dns_env())
    }

    fn start_in(env: Env) -> Service {
        let child = env.spawn(&[]);
        let port = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
            .trim()
            .parse()
            .unwrap();
        Service { env, child, port }
    }

    fn post(&self, body: &str) -> (u16, Value) {
        http(self.port, "POST", "/events", body)
    }

    /// Posts `body`, which must be accepted; waits for every event's outcome.
    fn outcomes(&self, body: &str) -> Vec<Value> {
        let (status, doc) = self.post(body);
        assert_eq!(status, 202, "{doc}");
        let ids = doc["ids"].as_array().unwrap();
        ids.iter()
            .map(|id| self.status(id.as_str().unwrap()))
            .collect()
    }

    /// Posts one event, which must be accepted and published.
    fn published(&self, event: &Value) -> Value {
        let doc = self.outcomes(&event.to_string()).remove(0);
        assert_eq!(doc["status"], "published", "{doc}");
        doc
    }

    /// Posts `body`, which must get 400 with an error starting with `want`.
    fn refused(&self, body: &str, want: &str) {
        let (status, doc) = self.post(body);
        assert_eq!(status, 400, "accepted: {body:.300}\n{doc}");
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(want), "want {want:?}, got {error:?}");
    }

    fn status(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, doc) = http(self.port, "GET", &format!("/events/{id}"), "");
            if doc["status"] != "pending" || Instant::now() > deadline {
                return doc;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn zone(&self) -> String {
        settled_zone(&zone_path(&self.env))
    }

    fn stop(mut self) {
        signal(&self.child, libc::SIGTERM);
        let status = wait_exit(&mut self.child, Duration::from_secs(30));
        assert!(status.success(), "{}", self.env.log());
    }
}

impl Drop for Service {
    /// A failed test leaves no service behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An addition event.
fn add(name: &str, rtype: &str, rrdatas: &[&str]) -> Value {
    json!({"action": "additions",
           "resourceRecords": {"name": name, "type": rtype, "rrdatas": rrdatas}})
}

/// An addition event whose `resourceRecords` object is the JSON text `record`.
fn add_raw(record: &str) -> String {
    format!(r#"{{"action":"additions","resourceRecords":{{{record}}}}}"#)
}

/// Asserts that BIND loads the zone file: `named-checkzone` accepts it, and a running
/// `named` loads it. Returns the server (for AXFR) unless BIND is not installed.
fn assert_loads(path: &Path) -> Option<Bind> {
    let zone = settled_zone(path);
    if let Some(checkzone) = named_checkzone() {
        let out = std::process::Command::new(checkzone)
            .args(["-k", "fail", "example.com"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "named-checkzone refused the zone:\n{}\n{zone:.2000}",
            text(&out.stdout)
        );
    }
    let key = Key::random("zone-safety", "hmac-sha256");
    match Bind::load("example.com.", path, &[key])? {
        Ok(bind) => Some(bind),
        Err(log) => panic!("named refused the zone:\n{log}\n{zone:.2000}"),
    }
}

/// The AXFR lines of `rtype` records at `name` (absolute).
fn served(bind: &Bind, name: &str, rtype: &str) -> Vec<String> {
    let prefix = format!("{name} ");
    let kind = format!(" IN {rtype} ");
    bind.axfr()
        .into_iter()
        .filter(|l| l.starts_with(&prefix) && l.contains(&kind))
        .collect()
}

/// The lines of the zone file whose owner is `owner` (as written: relative).
fn lines(zone: &str, owner: &str) -> Vec<String> {
    let prefix = format!("{owner} ");
    zone.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

// See: issue 8, item 1 — named 9.18 refuses a zone with more than 100 records of one
// type at one name ("too many records").
#[test]
fn a_record_set_of_101_addresses_is_refused_and_one_of_100_loads() {
    let svc = Service::start();
    let addrs: Vec<String> = (0..101).map(|i| format!("192.0.2.{i}")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    svc.refused(
        &add("www", "A", &refs).to_string(),
        "resourceRecords.rrdatas: 101 records in one record set; at most 100 are allowed",
    );
    svc.published(&add("www", "A", &refs[..100]));
    assert_eq!(lines(&svc.zone(), "www").len(), 100);
    if let Some(bind) = assert_loads(&zone_path(&svc.env)) {
        assert_eq!(served(&bind, "www.example.com.", "A").len(), 100);
    }
    svc.stop();
}

// See: issue 8, item 1 — "invalid NS owner name (wildcard)".
#[test]
fn ns_records_at_a_wildcard_are_refused() {
    let svc = Service::start();
    for name in ["*", "*.sub", "*.example.com."] {
        svc.refused(
            &add(name, "NS", &["ns.other.net."]).to_string(),
            &format!("resourceRecords.name: {name:?} is a wildcard name"),
        );
    }
    svc.published(&add("*.apps", "A", &["192.0.2.9"]));
    svc.published(&add("sub", "NS", &["ns.other.net."]));
    assert!(!svc.zone().contains("* 300 IN NS"), "{}", svc.zone());
    assert_loads(&zone_path(&svc.env));
    svc.stop();
}

// See: issue 8, item 1 — a TXT set larger than BIND's set limit ("ran out of space").
#[test]
fn txt_sets_over_the_size_bind_loads_are_refused_and_the_largest_accepted_loads() {
    let svc = Service::start();
    let half = "x".repeat(40_000);
    svc.refused(
        &add("big", "TXT", &[&half, &format!("{half}y")]).to_string(),
        "resourceRecords.rrdatas: the TXT record set holds 80319 bytes of record data",
    );
    let longest = "x".repeat(255 * 255);
    svc.refused(
        &add("big", "TXT", &[&format!("{longest}y")]).to_string(),
        "resourceRecords.rrdatas[0]: TXT data is longer than 65025 bytes",
    );
    // 65 025 + 255 length bytes + 2, and 227 + 1 + 2: exactly 65 512.
    svc.published(&add("big", "TXT", &[&longest, &"y".repeat(227)]));
    if let Some(bind) = assert_loads(&zone_path(&svc.env)) {
        assert_eq!(served(&bind, "big.example.com.", "TXT").len(), 2);
    }
    svc.stop();
}

// See: issue 8, item 2 — IP addresses became names relative to the zone
// (`192.0.2.1.example.com.`), names were trimmed, unknown keys and repeated keys
// were silently ignored.
#[test]
fn what_would_be_changed_silently_is_refused_naming_the_field() {
    let svc = Service::start();
    let ip_targets = [
        ("NS", "192.0.2.1", "the target \"192.0.2.1\""),
        ("CNAME", "192.0.2.1", "the target \"192.0.2.1\""),
        ("MX", "10 192.0.2.1", "the exchange \"192.0.2.1\""),
        ("SRV", "0 5 5060 2001:db8::1", "the target \"2001:db8::1\""),
        ("PTR", "192.0.2.1.", "the target \"192.0.2.1.\""),
    ];
    for (rtype, data, field) in ip_targets {
        svc.refused(
            &add("x", rtype, &[data]).to_string(),
            &format!(
                "resourceRecords.rrdatas[0]: {field} is an IP address, where a host name is required"
            ),
        );
    }
    for name in [" www", "www\n", "w w", "www.\r\n"] {
        svc.refused(
            &add(name, "A", &["192.0.2.1"]).to_string(),
            &format!("resourceRecords.name: {name:?} contains whitespace"),
        );
    }
    svc.refused(
        &add("x", "CNAME", &["www "]).to_string(),
        "resourceRecords.rrdatas[0]: the target: \"www \" contains whitespace",
    );
    svc.refused(
        &add_raw(r#""name":"www","type":"A","rrdatas":["192.0.2.1"],"TTL":600"#),
        "resourceRecords: unknown key \"TTL\" (did you mean `ttl`?)",
    );
    svc.refused(
        r#"{"action":"deletions","action":"additions","resourceRecords":{"name":"www","type":"A","rrdatas":["192.0.2.1"]}}"#,
        "duplicate key \"action\"",
    );
    svc.refused(
        &add_raw(r#""name":"www","type":"A","rrdatas":["192.0.2.1"],"ttl":600,"ttl":60"#),
        "duplicate key \"ttl\"",
    );
    svc.refused(
        r#"[{"action":"additions","resourceRecords":{"name":"a","type":"A","rrdatas":["192.0.2.1"]},
            "meta":{"owner":"x","owner":"y"}}]"#,
        "duplicate key \"owner\"",
    );
    let label = "l".repeat(64);
    svc.refused(
        &add(&label, "A", &["192.0.2.1"]).to_string(),
        &format!("resourceRecords.name: label {label:?} is longer than 63 characters"),
    );
    // Nothing of that reached the zone.
    assert_eq!(
        svc.zone()
            .lines()
            .filter(|l| l.contains("192.0.2.1"))
            .count(),
        0
    );

    // Extra top-level fields stay allowed, and so does Cloud DNS's `kind`.
    let ok = r#"{"action":"additions","source":"cmdb","resourceRecords":
        {"kind":"dns#resourceRecordSet","name":"www","type":"A","rrdatas":["192.0.2.1"],"ttl":600}}"#;
    let doc = svc.outcomes(ok).remove(0);
    assert_eq!(doc["status"], "published", "{doc}");
    assert_eq!(doc["data"]["source"], "cmdb", "{doc}");
    assert_eq!(lines(&svc.zone(), "www"), ["www 600 IN A 192.0.2.1"]);
    svc.published(&add("mail", "MX", &["10 www"]));
    svc.published(&add("sub", "NS", &["ns.sub.example.com."]));
    svc.published(&add("ns.sub", "A", &["192.0.2.53"]));
    assert_loads(&zone_path(&svc.env));
    svc.stop();
}

// See: issue 8, item 2 — quotes were stripped by the enricher and again by the zone
// file, so the zone differed from what `GET /events/{id}` reported.
#[test]
fn txt_data_in_the_zone_is_what_get_reports() {
    let svc = Service::start();
    // (rrdata as sent, the canonical rrdata reported, its character-strings as the
    // zone file and the server show them). Quoted strings stay separate strings.
    let cases = [
        (r#""v=spf1 -all""#, "v=spf1 -all", r#""v=spf1 -all""#),
        (
            r#"say "hi" \ there"#,
            r#"say "hi" \ there"#,
            r#""say \"hi\" \\ there""#,
        ),
        (
            r#""\"quoted\" \\ text""#,
            r#""\"quoted\" \\ text""#,
            r#""\"quoted\" \\ text""#,
        ),
        (r#""" "x"  """#, r#""" "x" """#, r#""" "x" """#),
        (
            r#""v=DKIM1; " "p=abc""#,
            r#""v=DKIM1; " "p=abc""#,
            r#""v=DKIM1; " "p=abc""#,
        ),
        (
            r#""v=spf1 include:x" "-all""#,
            r#""v=spf1 include:x" "-all""#,
            r#""v=spf1 include:x" "-all""#,
        ),
    ];
    let docs: Vec<Value> = (cases.iter().enumerate())
        .map(|(i, (rrdata, _, _))| svc.published(&add(&format!("t{i}"), "TXT", &[rrdata])))
        .collect();
    let zone = svc.zone();
    let bind = assert_loads(&zone_path(&svc.env));
    for (i, ((rrdata, reported, strings), doc)) in cases.iter().zip(&docs).enumerate() {
        assert_eq!(
            doc["data"]["resourceRecords"]["rrdatas"],
            json!([reported]),
            "{rrdata}"
        );
        let want = format!("t{i} 300 IN TXT {strings}");
        assert_eq!(lines(&zone, &format!("t{i}")), [want], "{rrdata}");
        if let Some(bind) = &bind {
            let want = format!("t{i}.example.com. 300 IN TXT {strings}");
            assert_eq!(served(bind, &format!("t{i}.example.com."), "TXT"), [want]);
        }
    }
    // Ambiguous: not one or more quoted strings. Refused, naming the rrdata.
    svc.refused(
        &add("t9", "TXT", &[r#"""x"""#]).to_string(),
        "resourceRecords.rrdatas[0]: TXT data that starts with '\"' is read as quoted strings",
    );
    svc.stop();
}

// See: issue 8, item 1 — "CNAME and other data". It needs the zone's state, so the
// publisher refuses it: the message is dropped, never reported published.
#[test]
fn a_cname_beside_other_data_is_dropped_not_published() {
    let svc = Service::start();
    svc.published(&add("www", "A", &["192.0.2.1"]));
    svc.published(&add("alias", "CNAME", &["www"]));
    let body = json!([
        add("www", "CNAME", &["other.example.net."]),
        add("alias", "TXT", &["x"]),
        add("@", "CNAME", &["www"]),
        add("ns1", "CNAME", &["www"]),
    ]);
    let outcomes = svc.outcomes(&body.to_string());
    let reasons = [
        "cannot add a CNAME at www.example.com.: the name has A records",
        "cannot add TXT records at alias.example.com.: the name has a CNAME record",
        "cannot add a CNAME at the zone apex example.com.",
        "cannot add a CNAME at ns1.example.com.: it is a name server",
    ];
    for (doc, reason) in outcomes.iter().zip(reasons) {
        assert_eq!(doc["status"], "dropped", "{doc}");
        assert!(
            doc["history"].to_string().contains(reason),
            "{reason}: {doc}"
        );
    }
    assert_eq!(lines(&svc.zone(), "www"), ["www 300 IN A 192.0.2.1"]);
    assert_loads(&zone_path(&svc.env));
    svc.stop();
}

const HEAD: &str = "$ORIGIN example.com.\n$TTL 300\n\
    @ 300 IN SOA ns1.example.com. hostmaster.example.com. 2026010100 3600 900 1209600 300\n\
    @ 300 IN NS ns1.example.com.\nns1 300 IN A 127.0.0.1\n";

// See: issue 8, item 1 — the host restarted on a zone file BIND would not load,
// without a word. Each file here is first shown to be refused by `named`.
#[test]
fn a_zone_file_that_would_not_load_stops_the_service_naming_the_file() {
    let many: String = (0..101)
        .map(|i| format!("www 300 IN A 192.0.2.{i}\n"))
        .collect();
    let big = format!("\"{}\"", "x".repeat(255));
    let huge: String = (0..2)
        .map(|i| format!("t 300 IN TXT \"{i}\" {}\n", [big.as_str(); 130].join(" ")))
        .collect();
    let cases = [
        (many, "www.example.com. A: 101 records in one record set"),
        ("* 300 IN NS ns.other.net.\n".to_owned(), "wildcard"),
        (
            "x 300 IN CNAME www.other.net.\nx 300 IN A 192.0.2.1\n".to_owned(),
            "cannot add a CNAME at x.example.com.: the name has A records",
        ),
        (huge, "t.example.com. TXT: the TXT record set holds"),
    ];
    for (records, reason) in cases {
        let env = crate::e2e::dns_env();
        let path = zone_path(&env);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = format!("{HEAD}{records}");
        std::fs::write(&path, &file).unwrap();
        if let Some(loaded) = Bind::load("example.com.", &path, &[]) {
            assert!(loaded.is_err(), "named loads it:\n{file:.500}");
        }
        let mut child = env.spawn(&[]);
        let status = wait_exit(&mut child, Duration::from_secs(30));
        let log = env.log();
        assert!(!status.success(), "started on a broken zone file:\n{log}");
        let named = format!("cannot load zone file {}: ", path.display());
        assert!(log.contains(&named), "{reason}: {log}");
        assert!(log.contains(reason), "{reason}: {log}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            file,
            "the file was rewritten"
        );
    }
    // The same file without the bad records starts, and keeps what it holds.
    let env = crate::e2e::dns_env();
    let path = zone_path(&env);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("{HEAD}www 300 IN A 192.0.2.1\n")).unwrap();
    let svc = Service::start_in(env);
    assert_eq!(lines(&svc.zone(), "www"), ["www 300 IN A 192.0.2.1"]);
    assert_loads(&path);
    svc.stop();
}
