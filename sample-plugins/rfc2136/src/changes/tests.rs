use gordon_plugin_api::testing::event;
use gordon_plugin_api::EventMessage;

use super::*;
use crate::wire::parse;

fn zone() -> Name {
    Name::parse("example.com.").unwrap()
}

fn rules(zone: &Name, ownership: bool) -> Rules<'_> {
    Rules {
        zone,
        default_ttl: 120,
        ownership,
    }
}

fn del(name: &str, rtype: &str) -> EventMessage {
    let mut msg = event(name, rtype, &[]);
    msg.set_action(Action::Deletions);
    msg
}

fn edits(msgs: &[EventMessage], ownership: bool) -> Vec<Edit> {
    let z = zone();
    msgs.iter()
        .enumerate()
        .map(|(i, m)| validate(i, m, rules(&z, ownership)).unwrap())
        .collect()
}

#[test]
fn validation_qualifies_names_fills_ttl_and_dedupes() {
    let z = zone();
    let mut msg = event("WWW", "A", &["10.0.0.1", "10.0.0.1", "10.0.0.2"]);
    msg.record_mut().set_ttl(0);
    let e = validate(3, &msg, rules(&z, false)).unwrap();
    assert_eq!(e.name, Name::parse("www.example.com.").unwrap());
    assert_eq!(
        e.op,
        Op::Replace {
            ttl: 120,
            rdatas: vec![vec![10, 0, 0, 1], vec![10, 0, 0, 2]]
        }
    );
    assert_eq!((e.msg, e.owner), (3, None));
    let d = validate(0, &del("gone.example.com.", "TXT"), rules(&z, false)).unwrap();
    assert_eq!(d.op, Op::Delete);
}

#[test]
fn validation_refuses_what_the_server_owns_or_cannot_take() {
    let z = zone();
    let check = |msg: EventMessage, ownership: bool| {
        validate(0, &msg, rules(&z, ownership))
            .unwrap_err()
            .to_string()
    };
    assert!(check(event("@", "SOA", &["x"]), false).contains("cannot change the SOA"));
    assert!(check(event("@", "NS", &["ns1.example.com."]), false).contains("apex NS"));
    assert!(check(event("www.example.org.", "A", &["10.0.0.1"]), false)
        .contains("outside zone example.com."));
    assert!(check(event("www", "A", &["10.0.0.300"]), false)
        .contains("invalid A rrdata \"10.0.0.300\""));
    assert!(check(event("www", "A", &[]), false).contains("no rrdatas"));
    assert!(check(event("c", "CNAME", &["a.", "b."]), false).contains("exactly one"));
    assert!(check(event("_gordon-a-www", "TXT", &["x"]), true).contains("reserved"));
    // Without ownership the prefix is an ordinary name.
    assert!(validate(0, &event("_gordon-a-www", "TXT", &["x"]), rules(&z, false)).is_ok());
}

#[test]
fn owner_records_are_siblings_named_by_type() {
    let z = zone();
    let name = |s: &str| Name::parse(s).unwrap();
    let owner = |n: &str, t| owner_name(&name(n), t, &z).unwrap().to_string();
    assert_eq!(
        owner("www.example.com.", RecordType::A),
        "_gordon-a-www.example.com."
    );
    assert_eq!(
        owner("example.com.", RecordType::MX),
        "_gordon-mx.example.com."
    );
    assert_eq!(
        owner("*.dev.example.com.", RecordType::CNAME),
        "_gordon-cname-*.dev.example.com."
    );
    let long = format!("{}.example.com.", "x".repeat(60));
    assert!(owner_name(&name(&long), RecordType::TXT, &z).is_err());
    assert_eq!(owner_rdata("g-1"), b"\x19heritage=gordon,owner=g-1");
    let e = validate(0, &event("www", "AAAA", &["::1"]), rules(&z, true)).unwrap();
    assert_eq!(e.owner, Some(name("_gordon-aaaa-www.example.com.")));
}

#[test]
fn folding_keeps_the_last_edit_per_rrset_in_order() {
    let msgs = [
        event("a", "A", &["10.0.0.1"]),
        event("b", "A", &["10.0.0.2"]),
        del("a", "A"),
        event("a", "TXT", &["t"]),
        event("B", "A", &["10.0.0.3"]),
        event("a", "A", &["10.0.0.4"]),
    ];
    let changes = fold(edits(&msgs, false));
    let summary: Vec<(String, RecordType, Vec<usize>)> = changes
        .iter()
        .map(|c| {
            (
                c.effective().name.to_string(),
                c.effective().rtype,
                c.msgs().collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a.example.com.".to_owned(), RecordType::TXT, vec![3]),
            ("b.example.com.".to_owned(), RecordType::A, vec![1, 4]),
            ("a.example.com.".to_owned(), RecordType::A, vec![0, 2, 5]),
        ]
    );
    assert_eq!(
        changes[2].effective().op,
        Op::Replace {
            ttl: 300,
            rdatas: vec![vec![10, 0, 0, 4]]
        }
    );
}

#[test]
fn chunks_respect_count_and_size() {
    let msgs: Vec<EventMessage> = (0..10)
        .map(|i| event(&format!("h{i}"), "A", &["10.0.0.1"]))
        .collect();
    let (chunks4, big) = chunks(fold(edits(&msgs, false)), 4, 0);
    assert_eq!(chunks4.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
    assert!(big.is_empty());
    let txt = |n: &str| event(n, "TXT", &[&"x".repeat(30_000)]);
    let (by_size, big) = chunks(
        fold(edits(&[txt("t1"), txt("t2"), txt("t3")], false)),
        500,
        0,
    );
    assert_eq!(by_size.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    assert!(big.is_empty());
    let (none, big) = chunks(
        fold(edits(&[event("x", "TXT", &[&"y".repeat(65_000)])], false)),
        500,
        0,
    );
    assert!(none.is_empty() && big.len() == 1);
}

#[test]
fn update_messages_replace_delete_and_claim_ownership() {
    let z = zone();
    let value = owner_rdata("g");
    let msgs = [
        event("www", "A", &["10.0.0.1", "10.0.0.2"]),
        del("old", "MX"),
    ];
    let plain = edits(&msgs, false);
    let buf = update_message(
        &z,
        &[(&plain[0], Claim::None), (&plain[1], Claim::None)],
        &value,
    );
    let m = parse(&buf).unwrap();
    assert_eq!(m.flags, OPCODE_UPDATE);
    assert!(m.answers.is_empty(), "no prerequisites without ownership");
    // The authority section: delete www A, add two, delete old MX.
    assert_eq!(u16::from_be_bytes([buf[8], buf[9]]), 4);
    let owned = edits(&msgs, true);
    let buf = update_message(
        &z,
        &[(&owned[0], Claim::New), (&owned[1], Claim::Ours)],
        &value,
    );
    let m = parse(&buf).unwrap();
    let prereqs: Vec<(String, u16, u16)> = m
        .answers
        .iter()
        .map(|r| (r.name.to_string(), r.rtype, r.class))
        .collect();
    assert_eq!(
        prereqs,
        [
            ("www.example.com.".to_owned(), 1, CLASS_NONE),
            ("_gordon-a-www.example.com.".to_owned(), 16, CLASS_NONE),
            ("_gordon-mx-old.example.com.".to_owned(), 16, CLASS_IN),
        ]
    );
    // Add owner + two A records; delete old MX and its owner record.
    assert_eq!(u16::from_be_bytes([buf[8], buf[9]]), 5);
    let check = [(&owned[1], Claim::New)];
    let buf = update_message(&z, &check, &value);
    assert_eq!(
        u16::from_be_bytes([buf[6], buf[7]]),
        2,
        "deleting a set that is not there only checks"
    );
    assert_eq!(u16::from_be_bytes([buf[8], buf[9]]), 0);
}
