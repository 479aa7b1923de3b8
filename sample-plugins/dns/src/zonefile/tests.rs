use std::path::{Path, PathBuf};

use gordon_plugin_api::testing::{self, HandlerHarness};
use gordon_plugin_api::{Action, EventMessage};

use super::*;
use crate::zone_format::RECORDS_MARK;

pub(super) fn config(path: &Path, extra: &str) -> String {
    format!(
        "zone = \"example.com.\"\npath = {:?}\n{extra}",
        path.display().to_string()
    )
}

pub(super) fn zonefile(path: &Path, extra: &str) -> HandlerHarness<ZoneFile> {
    testing::handler::<ZoneFile>(&config(path, extra)).unwrap()
}

pub(super) fn add(name: &str, rtype: &str, data: &[&str]) -> EventMessage {
    testing::event(name, rtype, data)
}

pub(super) fn del(name: &str, rtype: &str) -> EventMessage {
    let mut msg = testing::event(name, rtype, &["x"]);
    msg.set_action(Action::Deletions);
    msg
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zones/example.com.zone");
    (dir, path)
}

/// The bytes the journal segments of `path` hold.
fn segment_bytes(path: &Path) -> u64 {
    journal_copy(path).iter().map(|(_, b)| b.len() as u64).sum()
}

/// Every journal segment of `path`: its path and contents.
fn journal_copy(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let prefix = format!("{}.jnl.", path.file_name().unwrap().to_string_lossy());
    let Ok(listing) = fs::read_dir(path.parent().unwrap()) else {
        return Vec::new();
    };
    listing
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| Some((e.path(), fs::read(e.path()).ok()?)))
        .collect()
}

/// The zone file's text once its writer has caught up with the journal: when no
/// journal segment holds a batch any more.
pub(super) fn read_zone(path: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while segment_bytes(path) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the zone file writer did not catch up with the journal"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    fs::read_to_string(path).unwrap()
}

/// Runs a batch and asserts every message succeeded.
pub(super) fn apply(h: &HandlerHarness<ZoneFile>, batch: Vec<EventMessage>) {
    for (i, r) in h.handle_batch(batch).into_iter().enumerate() {
        if let Err(e) = r {
            panic!("message {i} failed: {e}");
        }
    }
}

/// The lines of the records section, owner records left out (see
/// `owner_records` for those).
fn records(path: &Path) -> Vec<String> {
    all_records(path)
        .into_iter()
        .filter(|l| !l.starts_with(ownership::PREFIX))
        .collect()
}

/// Every line of the records section.
fn all_records(path: &Path) -> Vec<String> {
    let text = read_zone(path);
    let (_, tail) = text.split_once(&format!("{RECORDS_MARK}\n")).unwrap();
    tail.lines().map(str::to_owned).collect()
}

/// The owner record lines of the records section.
fn owner_records(path: &Path) -> Vec<String> {
    all_records(path)
        .into_iter()
        .filter(|l| l.starts_with(ownership::PREFIX))
        .collect()
}

fn serial(path: &Path) -> u32 {
    let text = read_zone(path);
    let soa = text
        .lines()
        .find(|l| l.starts_with("@ 300 IN SOA "))
        .unwrap();
    soa.split(' ').nth(6).unwrap().parse().unwrap()
}

#[test]
fn additions_and_deletions_give_the_expected_file() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let s0 = serial(&path);
    apply(
        &h,
        vec![
            add("www", "A", &["10.0.0.2", "10.0.0.1"]),
            add("mail", "A", &["10.0.0.9"]),
            add("@", "MX", &["10 mail"]),
            add("alias", "CNAME", &["www"]),
            add("_sip._tcp", "SRV", &["0 5 5060 sip"]),
            add("sip", "AAAA", &["2001:db8::5"]),
            add("a.b", "TXT", &["hello"]),
        ],
    );
    apply(
        &h,
        vec![
            add("www", "A", &["10.0.0.3"]),
            del("mail", "A"),
            del("never", "TXT"),
            add("@", "A", &["10.0.0.10"]),
        ],
    );
    let expected = format!(
        "; Zone example.com. written by the gordon dns.zonefile plugin.\n\
         ; At start-up it reads back the SOA serial and the records section only.\n\
         $ORIGIN example.com.\n\
         $TTL 300\n\
         {}\n\
         @ 300 IN SOA ns1.example.com. hostmaster.example.com. {} 3600 900 1209600 300\n\
         @ 300 IN NS ns1.example.com.\n\
         ns1 300 IN A 127.0.0.1\n\
         {RECORDS_MARK}\n\
         @ 300 IN A 10.0.0.10\n\
         @ 300 IN MX 10 mail.example.com.\n\
         _gordon-a 300 IN TXT {mark}\n\
         _gordon-a-www 300 IN TXT {mark}\n\
         _gordon-aaaa-sip 300 IN TXT {mark}\n\
         _gordon-cname-alias 300 IN TXT {mark}\n\
         _gordon-mx 300 IN TXT {mark}\n\
         _gordon-srv-_sip._tcp 300 IN TXT {mark}\n\
         _sip._tcp 300 IN SRV 0 5 5060 sip.example.com.\n\
         alias 300 IN CNAME www.example.com.\n\
         _gordon-txt-a.b 300 IN TXT {mark}\n\
         a.b 300 IN TXT \"hello\"\n\
         sip 300 IN AAAA 2001:db8::5\n\
         www 300 IN A 10.0.0.3\n",
        zone_format::MANAGED_MARK,
        s0 + 2,
        mark = "\"heritage=gordon,owner=gordon\"",
    );
    // Every record set has its owner record (the deleted `mail` lost its own).
    // DNS canonical order: labels compared right to left, bytewise ('_' < 'a').
    assert_eq!(read_zone(&path), expected);
    assert!(!path.with_file_name("example.com.zone.tmp").exists());
}

#[test]
fn serial_is_date_based_and_bumped_once_per_batch() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let s0 = serial(&path);
    assert_eq!(s0, today_serial());
    let text = s0.to_string();
    assert_eq!(text.len(), 10, "{text}");
    assert!(text.ends_with("00") && text.starts_with("20"), "{text}");
    let (month, day): (u32, u32) = (text[4..6].parse().unwrap(), text[6..8].parse().unwrap());
    assert!(
        (1..=12).contains(&month) && (1..=31).contains(&day),
        "{text}"
    );
    apply(
        &h,
        vec![
            add("a", "A", &["10.0.0.1"]),
            add("b", "A", &["10.0.0.2"]),
            add("c", "A", &["10.0.0.3"]),
        ],
    );
    assert_eq!(serial(&path), s0 + 1);
    apply(&h, vec![add("d", "A", &["10.0.0.4"])]);
    assert_eq!(serial(&path), s0 + 2);
    // Nothing changed: no new serial, no write.
    apply(&h, vec![del("absent", "A"), add("d", "A", &["10.0.0.4"])]);
    assert_eq!(serial(&path), s0 + 2);
    // Only failures: no new serial either.
    assert!(h.handle(add("other.org.", "A", &["10.0.0.1"])).is_err());
    assert_eq!(serial(&path), s0 + 2);
    // Serial arithmetic: a new day jumps ahead, an old day only adds one.
    assert_eq!(next_serial(2_026_010_105, 2_026_010_200), 2_026_010_200);
    assert_eq!(next_serial(2_026_010_299, 2_026_010_200), 2_026_010_300);
    assert_eq!(next_serial(7, 0), 8);
}

#[test]
fn the_serial_action_shows_the_published_and_the_written_serial() {
    use gordon_plugin_api::serde_json::json;
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let shown = path.display().to_string();
    let serials = |h: &HandlerHarness<ZoneFile>| h.invoke("serial", json!({})).unwrap();
    let s0 = serial(&path);
    assert_eq!(
        serials(&h),
        json!({"zones": {"example.com.": {"serial": s0, "file_serial": s0, "path": shown}}})
    );
    apply(&h, vec![add("a", "A", &["10.0.0.1"])]);
    // Published at once; the file follows when the writer has caught up.
    assert_eq!(serials(&h)["zones"]["example.com."]["serial"], s0 + 1);
    assert_eq!(serial(&path), s0 + 1);
    assert_eq!(
        serials(&h),
        json!({"zones": {"example.com.": {"serial": s0 + 1, "file_serial": s0 + 1, "path": shown}}})
    );
    // Nothing changed: the same serial.
    apply(&h, vec![add("a", "A", &["10.0.0.1"])]);
    assert_eq!(serials(&h)["zones"]["example.com."]["serial"], s0 + 1);
    h.shutdown().unwrap();
    drop(h);
    // After a restart, the serial read back from the file.
    let h = zonefile(&path, "");
    assert_eq!(
        serials(&h),
        json!({"zones": {"example.com.": {"serial": s0 + 1, "file_serial": s0 + 1, "path": shown}}})
    );
    let e = h.invoke("serials", json!({})).unwrap_err();
    assert!(e.message().contains("no action `serials`"), "{e}");
    assert!(
        h.invoke("serial", json!({"zone": "x."})).is_err(),
        "no parameters"
    );
}

#[test]
fn txt_data_is_quoted_escaped_and_split() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let long = format!("{}{}", "a".repeat(254), "é");
    apply(
        &h,
        vec![
            add(
                "t",
                "TXT",
                &[r#"say "hi" \ there"#, "\"quoted by producer\"", "tab\there"],
            ),
            add("long", "TXT", &[&long]),
            add("empty", "TXT", &[""]),
        ],
    );
    assert_eq!(
        records(&path),
        [
            r#"empty 300 IN TXT """#.to_owned(),
            format!(r#"long 300 IN TXT "{}\195" "\169""#, "a".repeat(254)),
            r#"t 300 IN TXT "say \"hi\" \\ there""#.to_owned(),
            r#"t 300 IN TXT "quoted by producer""#.to_owned(),
            r#"t 300 IN TXT "tab\009here""#.to_owned(),
        ]
    );
    // Read back at restart, byte for byte.
    drop(h);
    let before = read_zone(&path);
    let _again = zonefile(&path, "");
    assert_eq!(read_zone(&path), before);
}

#[test]
fn a_restart_keeps_records_and_serial() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    apply(
        &h,
        vec![add("www", "A", &["10.0.0.1"]), add("@", "MX", &["10 www"])],
    );
    apply(&h, vec![add("x", "TXT", &["v=1; \"q\""])]);
    drop(h);
    let before = read_zone(&path);
    let s = serial(&path);
    let h = zonefile(&path, "");
    assert_eq!(
        read_zone(&path),
        before,
        "unchanged config rewrites nothing"
    );
    apply(&h, vec![add("new", "A", &["10.0.0.2"])]);
    assert_eq!(serial(&path), s + 1);
    assert_eq!(
        records(&path),
        [
            "@ 300 IN MX 10 www.example.com.",
            "new 300 IN A 10.0.0.2",
            "www 300 IN A 10.0.0.1",
            r#"x 300 IN TXT "v=1; \"q\"""#,
        ]
    );
    drop(h);
    // A changed configuration rewrites the managed part with a new serial.
    let _h = zonefile(&path, "ns = [\"ns1\", \"ns.provider.net.\"]");
    let text = read_zone(&path);
    assert!(text.contains("\n@ 300 IN NS ns.provider.net.\n"), "{text}");
    assert_eq!(serial(&path), s + 2);
    assert_eq!(records(&path).len(), 4);
}

#[test]
fn a_failed_journal_append_fails_every_message_and_rolls_back() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    apply(&h, vec![add("keep", "A", &["10.0.0.1"])]);
    let before = read_zone(&path);
    let failing = journal::fail_appends(&path);
    let out = h.handle_batch(vec![
        add("a", "A", &["10.0.0.2"]),
        add("bad", "A", &["nope"]),
        del("keep", "A"),
    ]);
    for (i, r) in out.iter().enumerate() {
        let e = r.as_ref().unwrap_err().message().to_owned();
        if i == 1 {
            assert!(e.contains("not an IPv4 address"), "{e}");
        } else {
            assert!(
                e.starts_with("cannot append to the journal of zone file "),
                "{e}"
            );
        }
    }
    assert_eq!(read_zone(&path), before);
    drop(failing);
    // The failed batch left no trace in memory either.
    apply(&h, vec![add("b", "A", &["10.0.0.3"])]);
    assert_eq!(
        records(&path),
        ["b 300 IN A 10.0.0.3", "keep 300 IN A 10.0.0.1"]
    );
    assert_eq!(serial(&path), today_serial() + 2);
}

#[test]
fn a_file_that_cannot_be_rewritten_loses_nothing_the_journal_holds() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    apply(&h, vec![add("keep", "A", &["10.0.0.1"])]);
    let before = read_zone(&path);
    // A directory where the temporary file must go: even root cannot write it.
    let tmp = path.with_file_name("example.com.zone.tmp");
    fs::create_dir(&tmp).unwrap();
    // Journaled, so published, though the file cannot follow.
    let out = h.handle_batch(vec![add("a", "A", &["10.0.0.2"]), del("keep", "A")]);
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    // Stopped while the file is behind (its last rewrite fails too), then a crash
    // in the middle of an append: a torn line, never reported published.
    drop(h);
    assert_eq!(fs::read_to_string(&path).unwrap(), before);
    let (last, mut bytes) = journal_copy(&path)
        .into_iter()
        .max_by_key(|(p, _)| {
            p.extension()
                .map(|e| e.to_string_lossy().parse::<u64>().unwrap())
        })
        .unwrap();
    bytes.extend_from_slice(br#"{"serial":4000000000,"changes":[{"name":"torn.exa"#);
    fs::write(last, bytes).unwrap();
    fs::remove_dir(&tmp).unwrap();
    // The next start folds the journal into the file before anything else.
    let h = zonefile(&path, "");
    assert_eq!(records(&path), ["a 300 IN A 10.0.0.2"]);
    assert_eq!(segment_bytes(&path), 0, "the journal was folded in");
    assert!(!fs::read_to_string(&path).unwrap().contains("torn"));
    drop(h);
}

/// The error constructing a zone file with `cfg`.
fn ctor_err(cfg: &str) -> PluginError {
    match testing::handler::<ZoneFile>(cfg) {
        Ok(_) => panic!("constructed with {cfg}"),
        Err(e) => e,
    }
}

#[test]
fn an_unwritable_path_fails_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let e = ctor_err(&config(&file.join("zone"), ""));
    assert!(e.message().starts_with("cannot "), "{e}");
    // A file that is not a zone file of ours is not overwritten.
    fs::write(dir.path().join("junk"), "$ORIGIN other.org.\n").unwrap();
    let e = ctor_err(&config(&dir.path().join("junk"), ""));
    assert!(
        e.message()
            .contains("it is for other.org., not zone example.com."),
        "{e}"
    );
}

#[test]
fn bad_messages_fail_alone() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let out = h.handle_batch(vec![
        add("other.org.", "A", &["10.0.0.1"]),
        add("@", "SOA", &["ns1 hostmaster 1 2 3 4 5"]),
        add("@", "NS", &["ns9.example.net."]),
        add("ok", "A", &["10.0.0.1"]),
        del("@", "SOA"),
        add("bad\nline", "A", &["10.0.0.1"]),
        add(
            "inject",
            "MX",
            &["10 a.example.com.\nevil 300 IN A 1.2.3.4"],
        ),
    ]);
    let errors: Vec<String> = out
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(errors[0], "name other.org. is outside zone example.com.");
    assert!(errors[1].contains("SOA records are managed by the zone publisher"));
    assert!(errors[2].contains("apex NS records of example.com. come from the configuration"));
    assert_eq!(errors[3], "");
    assert!(errors[4].contains("SOA"));
    assert!(errors[5].contains("invalid name"), "{}", errors[5]);
    assert!(errors[6].contains("invalid MX rrdata"), "{}", errors[6]);
    assert_eq!(records(&path), ["ok 300 IN A 10.0.0.1"]);
}

#[test]
fn cname_does_not_coexist_with_other_data() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    apply(
        &h,
        vec![add("www", "A", &["10.0.0.1"]), add("c", "CNAME", &["www"])],
    );
    let e = h.handle(add("www", "CNAME", &["c"])).unwrap_err();
    assert_eq!(
        e.message(),
        "cannot add a CNAME at www.example.com.: the name has A records"
    );
    let e = h.handle(add("c", "TXT", &["x"])).unwrap_err();
    assert_eq!(
        e.message(),
        "cannot add TXT records at c.example.com.: the name has a CNAME record"
    );
    assert!(h
        .handle(add("@", "CNAME", &["www"]))
        .unwrap_err()
        .message()
        .contains("zone apex"));
    assert!(h
        .handle(add("ns1", "CNAME", &["www"]))
        .unwrap_err()
        .message()
        .contains("name server"));
    // Replacing a CNAME by a CNAME is fine, and so is swapping within one batch.
    apply(&h, vec![add("c", "CNAME", &["other.org."])]);
    apply(&h, vec![del("www", "A"), add("www", "CNAME", &["c"])]);
    assert_eq!(
        records(&path),
        [
            "c 300 IN CNAME other.org.",
            "www 300 IN CNAME c.example.com."
        ]
    );
}

#[test]
fn glue_comes_from_the_configuration_unless_events_give_addresses() {
    let (_dir, path) = temp();
    let h = zonefile(
        &path,
        "primary_ns = \"ns1\"\nhostmaster = \"dns-admin@example.org\"\n\
         ns = [\"ns1\", \"ns2.example.com.\", \"ns.other.net.\"]\n\
         ns_addresses = { \"ns2\" = \"2001:DB8::53\" }\nrefresh = 7200\nminimum = 60\n",
    );
    let text = read_zone(&path);
    for line in [
        format!(
            "@ 300 IN SOA ns1.example.com. dns-admin.example.org. {} 7200 900 1209600 60",
            serial(&path)
        ),
        "@ 300 IN NS ns1.example.com.".into(),
        "@ 300 IN NS ns2.example.com.".into(),
        "@ 300 IN NS ns.other.net.".into(),
        "ns1 300 IN A 127.0.0.1".into(),
        "ns2 300 IN AAAA 2001:db8::53".into(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    apply(&h, vec![add("ns1", "A", &["192.0.2.1"])]);
    let text = read_zone(&path);
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert_eq!(records(&path), ["ns1 300 IN A 192.0.2.1"]);
    apply(&h, vec![del("ns1", "A")]);
    assert!(read_zone(&path).contains("\nns1 300 IN A 127.0.0.1\n"));
}

#[test]
fn batches_from_several_threads_are_serialised() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let s0 = serial(&path);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let h = &h;
            scope.spawn(move || {
                for i in 0..10 {
                    apply(
                        h,
                        vec![add(&format!("h{t}-{i}"), "A", &[&format!("10.0.{t}.{i}")])],
                    );
                }
            });
        }
    });
    assert_eq!(records(&path).len(), 40);
    assert_eq!(serial(&path), s0 + 40);
}

#[test]
fn configuration_is_validated() {
    let p = Path::new("/tmp/unused.zone");
    let check =
        |extra: &str| testing::validate::<ZoneFile>(&config(p, extra)).map_err(|e| e.to_string());
    assert!(check("default_ttl = 600\nns = [\"ns1\", \"ns2\"]").is_ok());
    let cases = [
        ("default_ttl = 59", "`default_ttl`"),
        ("refresh = 0", "`refresh`"),
        ("expire = 100", "`expire`"),
        ("minimum = 90000", "`minimum`"),
        ("ns = []", "`ns`"),
        (
            "ns = [\"a\", \"A.example.com.\"]",
            "`ns` lists a.example.com. twice",
        ),
        ("primary_ns = \"_ns\"", "`primary_ns`"),
        ("hostmaster = \"a.b@example.com\"", "`hostmaster`"),
        (
            "ns_addresses = { \"ns9\" = \"10.0.0.1\" }",
            "not listed in `ns`",
        ),
        (
            "ns_addresses = { \"ns1\" = \"nope\" }",
            "not an IPv4 or IPv6 address",
        ),
        (
            "ns = [\"ns.other.net.\"]\nns_addresses = { \"ns.other.net.\" = \"10.0.0.1\" }",
            "needs no glue",
        ),
        ("enricher_key = 1", "unknown field `enricher_key`"),
    ];
    for (extra, want) in cases {
        let e = check(extra).unwrap_err();
        assert!(e.contains(want), "{extra}: {e}");
    }
    let e = testing::validate::<ZoneFile>("zone = \"example.com.\"").unwrap_err();
    assert!(e.message().contains("path"), "{e}");
    let e = testing::validate::<ZoneFile>("zone = \"example.com\"\npath = \"x\"").unwrap_err();
    assert!(e.message().contains("`zone`"), "{e}");
}

#[test]
fn events_that_would_make_the_zone_unloadable_fail_alone() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let addrs: Vec<String> = (0..101).map(|i| format!("10.0.1.{i}")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let half = "x".repeat(40_000);
    let out = h.handle_batch(vec![
        add("www", "A", &refs),
        add("*", "NS", &["ns.other.net."]),
        add("t", "TXT", &[&half, &format!("{half}y")]),
        add("@", "MX", &["10 192.0.2.1"]),
        add(" www", "A", &["10.0.0.1"]),
        add("ok", "A", &refs[..100]),
    ]);
    let errors: Vec<String> = out
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(
        errors[0],
        "www.example.com. A: 101 records in one record set; at most 100 are allowed"
    );
    assert!(errors[1].contains("wildcard"), "{}", errors[1]);
    assert!(errors[2].contains("bytes of record data"), "{}", errors[2]);
    assert!(errors[3].contains("is an IP address"), "{}", errors[3]);
    assert!(errors[4].contains("whitespace"), "{}", errors[4]);
    assert_eq!(errors[5], "");
    assert_eq!(records(&path).len(), 100);
}

#[test]
fn txt_is_decoded_once_whether_or_not_the_enricher_ran() {
    let (_dir, direct_path) = temp();
    let direct = zonefile(&direct_path, "");
    let dir2 = tempfile::tempdir().unwrap();
    let routed_path = dir2.path().join("example.com.zone");
    let routed = zonefile(&routed_path, "");
    let enricher = testing::handler::<crate::Enricher>("zone = \"example.com.\"").unwrap();
    let inputs: [&[&str]; 4] = [
        &["\"v=spf1 -all\""],
        &[r#""\"quoted\" \\ text""#],
        &[r#""" "x" """#],
        &["plain \"q\""],
    ];
    for (i, data) in inputs.iter().enumerate() {
        let name = format!("t{i}");
        apply(&direct, vec![add(&name, "TXT", data)]);
        let enriched = enricher.handle(add(&name, "TXT", data)).unwrap();
        apply(&routed, vec![enriched]);
    }
    let expected = [
        r#"t0 300 IN TXT "v=spf1 -all""#,
        r#"t1 300 IN TXT "\"quoted\" \\ text""#,
        r#"t2 300 IN TXT "" "x" """#,
        r#"t3 300 IN TXT "plain \"q\"""#,
    ];
    assert_eq!(records(&direct_path), expected);
    assert_eq!(records(&routed_path), expected);
    // What the enricher reports is the rrdata that stands for the zone's text.
    let out = enricher
        .handle(add("t", "TXT", &[r#""\"quoted\"""#]))
        .unwrap();
    assert_eq!(
        out.record().rrdatas().collect::<Vec<_>>(),
        [r#""\"quoted\"""#]
    );
    assert!(direct
        .handle(add("t", "TXT", &["\"\"x\"\""]))
        .unwrap_err()
        .message()
        .contains("quoted strings"));
}

#[test]
fn txt_character_strings_are_written_as_given_and_read_back_unchanged() {
    let (_dir, path) = temp();
    let h = zonefile(&path, "");
    let spf = r#""v=spf1 include:x" "-all""#;
    apply(
        &h,
        vec![
            add("spf", "TXT", &[spf]),
            add("joined", "TXT", &["v=spf1 include:x-all"]),
        ],
    );
    let written = [
        r#"joined 300 IN TXT "v=spf1 include:x-all""#,
        r#"spf 300 IN TXT "v=spf1 include:x" "-all""#,
    ];
    assert_eq!(records(&path), written);
    // Read back at restart, the two strings stay two strings.
    drop(h);
    let before = read_zone(&path);
    let h = zonefile(&path, "");
    assert_eq!(read_zone(&path), before);
    apply(&h, vec![add("other", "A", &["10.0.0.1"])]);
    let mut after = records(&path);
    after.retain(|l| l.contains(" TXT "));
    assert_eq!(after, written);
    // The same strings, however they are spaced, are the same record.
    apply(
        &h,
        vec![add("spf", "TXT", &[spf, r#""v=spf1 include:x"  "-all""#])],
    );
    assert!(records(&path).contains(&written[1].to_owned()));
    assert_eq!(
        records(&path)
            .iter()
            .filter(|l| l.starts_with("spf "))
            .count(),
        1
    );
}

/// The zone file with `lines` in its records section, as if an earlier version (or a
/// person) had written them.
fn with_records(path: &Path, lines: &[String]) {
    let h = zonefile(path, "");
    drop(h);
    let mut text = fs::read_to_string(path).unwrap();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    fs::write(path, text).unwrap();
}

#[test]
fn a_file_that_would_not_load_stops_the_plugin_naming_it() {
    let big = format!("\"{}\"", "x".repeat(255));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            (0..101)
                .map(|i| format!("www 300 IN A 10.0.1.{i}"))
                .collect(),
            "www.example.com. A: 101 records in one record set; at most 100 are allowed",
        ),
        (vec!["* 300 IN NS ns.other.net.".into()], "wildcard"),
        (
            vec!["x 300 IN CNAME www".into(), "x 300 IN A 10.0.0.1".into()],
            "cannot add a CNAME at x.example.com.: the name has A records",
        ),
        (
            vec!["x 300 IN CNAME a".into(), "x 300 IN CNAME b".into()],
            "x.example.com. CNAME: 2 CNAME records; a name has at most one",
        ),
        (
            (0..2)
                .map(|i| format!("t 300 IN TXT \"{i}\" {}", [big.as_str(); 130].join(" ")))
                .collect(),
            "t.example.com. TXT: the TXT record set holds",
        ),
        (vec!["@ 300 IN MX 10 192.0.2.1".into()], "is an IP address"),
        (
            vec![format!("{}.a 300 IN A 10.0.0.1", "l".repeat(64))],
            "longer than 63",
        ),
    ];
    for (lines, want) in cases {
        let (_dir, path) = temp();
        with_records(&path, &lines);
        let before = read_zone(&path);
        let e = ctor_err(&config(&path, "")).to_string();
        assert!(
            e.starts_with(&format!("cannot load zone file {}: ", path.display())),
            "{e}"
        );
        assert!(e.contains(want), "{want}: {e}");
        assert_eq!(read_zone(&path), before, "rewritten");
    }
}

/// A zone file with `lines` in its records section, as a hand edit leaves it.
fn hand_edited(path: &Path, lines: &[&str]) {
    let h = zonefile(path, "");
    drop(h);
    let mut text = fs::read_to_string(path).unwrap();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    fs::write(path, text).unwrap();
}

#[test]
fn record_sets_it_does_not_own_are_left_alone() {
    let (_dir, path) = temp();
    hand_edited(
        &path,
        &[
            "legacy 300 IN A 10.9.9.9",
            "other 300 IN A 10.9.9.8",
            "_gordon-a-other 300 IN TXT \"heritage=gordon,owner=team-b\"",
        ],
    );
    let h = zonefile(&path, "");
    let results = h.handle_batch(vec![
        add("legacy", "A", &["10.0.0.1"]),
        del("legacy", "A"),
        add("other", "A", &["10.0.0.2"]),
        add("_gordon-a-www", "TXT", &["forged"]),
        add("new", "A", &["10.0.0.3"]),
    ]);
    let errors: Vec<String> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    assert!(
        errors[0].contains("record set legacy.example.com. A is not owned by this gordon: it exists without an owner record")
            && errors[0].contains("`adopt = true`"),
        "{errors:?}"
    );
    assert!(errors[1].contains("not owned"), "{errors:?}");
    assert!(
        errors[2].contains("owner record says heritage=gordon,owner=team-b"),
        "{errors:?}"
    );
    assert!(
        errors[3].contains("reserved for gordon's owner records"),
        "{errors:?}"
    );
    assert!(results[4].is_ok(), "{errors:?}");
    let lines = records(&path);
    assert!(
        lines.contains(&"legacy 300 IN A 10.9.9.9".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"other 300 IN A 10.9.9.8".to_owned()),
        "{lines:?}"
    );
    assert!(
        owner_records(&path)
            .contains(&"_gordon-a-new 300 IN TXT \"heritage=gordon,owner=gordon\"".to_owned()),
        "{:?}",
        owner_records(&path)
    );
}

#[test]
fn adopting_takes_over_unmarked_and_renamed_owners_only() {
    let (_dir, path) = temp();
    hand_edited(
        &path,
        &[
            "legacy 300 IN A 10.9.9.9",
            "old 300 IN A 10.9.9.8",
            "_gordon-a-old 300 IN TXT \"heritage=gordon,owner=eu1\"",
            "team 300 IN A 10.9.9.7",
            "_gordon-a-team 300 IN TXT \"heritage=gordon,owner=team-b\"",
        ],
    );
    let h = zonefile(&path, "adopt = true\nadopt_from_owner = \"eu1\"");
    let results = h.handle_batch(vec![
        add("legacy", "A", &["10.0.0.1"]),
        del("old", "A"),
        add("team", "A", &["10.0.0.3"]),
    ]);
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(results[2].is_err(), "another owner is never adopted");
    let lines = all_records(&path);
    assert!(
        lines.contains(&"legacy 300 IN A 10.0.0.1".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"_gordon-a-legacy 300 IN TXT \"heritage=gordon,owner=gordon\"".to_owned()),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("old ") || l.starts_with("_gordon-a-old ")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"team 300 IN A 10.9.9.7".to_owned()),
        "{lines:?}"
    );
    drop(h);
    // `manage_unowned` changes whatever owns it, and marks it ours.
    let h = zonefile(&path, "manage_unowned = true");
    assert!(h.handle_batch(vec![add("team", "A", &["10.0.0.3"])])[0].is_ok());
    let lines = all_records(&path);
    assert!(
        lines.contains(&"_gordon-a-team 300 IN TXT \"heritage=gordon,owner=gordon\"".to_owned()),
        "{lines:?}"
    );
    drop(h);
    let bad = ctor_err(&config(&path, "owner_id = \"a b\""));
    assert!(bad.to_string().contains("`owner_id`"), "{bad}");
}
