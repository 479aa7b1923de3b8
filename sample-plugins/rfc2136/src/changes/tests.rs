use gordon_plugin_api::testing::event;
use gordon_plugin_api::EventMessage;

use super::*;
use crate::wire::parse;

fn zone() -> Name {
    Name::parse("example.com.").unwrap()
}

fn rules(zone: &Name) -> Rules<'_> {
    Rules {
        zone,
        default_ttl: 120,
    }
}

fn del(name: &str, rtype: &str) -> EventMessage {
    let mut msg = event(name, rtype, &[]);
    msg.set_action(Action::Deletions);
    msg
}

fn edits(msgs: &[EventMessage]) -> Vec<Edit> {
    let z = zone();
    msgs.iter()
        .enumerate()
        .map(|(i, m)| validate(i, m, rules(&z)).unwrap())
        .collect()
}

#[test]
fn validation_qualifies_names_fills_ttl_and_dedupes() {
    let z = zone();
    let mut msg = event("WWW", "A", &["10.0.0.1", "10.0.0.1", "10.0.0.2"]);
    msg.record_mut().set_ttl(0);
    let e = validate(3, &msg, rules(&z)).unwrap();
    assert_eq!(e.name, Name::parse("www.example.com.").unwrap());
    assert_eq!(
        e.op,
        Op::Replace {
            ttl: 120,
            rdatas: vec![vec![10, 0, 0, 1], vec![10, 0, 0, 2]]
        }
    );
    assert_eq!(e.msg, 3);
    assert_eq!(e.owner.to_string(), "_gordon-a-www.example.com.");
    let d = validate(0, &del("gone.example.com.", "TXT"), rules(&z)).unwrap();
    assert_eq!(d.op, Op::Delete);
}

#[test]
fn validation_refuses_what_the_server_owns_or_cannot_take() {
    let z = zone();
    let check = |msg: EventMessage| validate(0, &msg, rules(&z)).unwrap_err().to_string();
    assert!(check(event("@", "SOA", &["x"])).contains("cannot change the SOA"));
    assert!(check(event("@", "NS", &["ns1.example.com."])).contains("apex NS"));
    assert!(
        check(event("www.example.org.", "A", &["10.0.0.1"])).contains("outside zone example.com.")
    );
    assert!(check(event("www", "A", &["10.0.0.300"])).contains("invalid A rrdata \"10.0.0.300\""));
    assert!(check(event("www", "A", &[])).contains("no rrdatas"));
    assert!(check(event("c", "CNAME", &["a.", "b."])).contains("exactly one"));
    // Ownership is always on: the owner-record prefix is reserved.
    assert!(check(event("_gordon-a-www", "TXT", &["x"])).contains("reserved"));
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
    let e = validate(0, &event("www", "AAAA", &["::1"]), rules(&z)).unwrap();
    assert_eq!(e.owner, name("_gordon-aaaa-www.example.com."));
}

/// `dns.zonefile` names and fills owner records with `gordon_plugin_api::ownership`:
/// the wire form here must agree with it, or a janitor would see the records one
/// publisher wrote as unowned by the other.
#[test]
fn owner_records_match_the_shared_layout() {
    use gordon_plugin_api::ownership;
    let z = zone();
    for (n, t) in [
        ("www.example.com.", RecordType::A),
        ("example.com.", RecordType::MX),
        ("a.b.example.com.", RecordType::TXT),
        ("_sip._tcp.example.com.", RecordType::SRV),
        ("*.dev.example.com.", RecordType::CNAME),
    ] {
        let wire = owner_name(&Name::parse(n).unwrap(), t, &z)
            .unwrap()
            .to_string();
        assert_eq!(
            Ok(wire),
            ownership::record_name(n, t, "example.com."),
            "{n} {t}"
        );
    }
    let long = format!("{}.example.com.", "x".repeat(55));
    assert_eq!(
        owner_name(&Name::parse(&long).unwrap(), RecordType::CNAME, &z).is_err(),
        ownership::record_name(&long, RecordType::CNAME, "example.com.").is_err()
    );
    assert_eq!(
        owner_rdata("gordon"),
        wire::txt_rdata(ownership::value("gordon").as_bytes())
    );
    assert!(ownership::is_reserved(OWNER_PREFIX));
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
    let changes = fold(edits(&msgs));
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

fn sizing(z: &Name) -> Sizing<'_> {
    Sizing {
        zone: z,
        values: OwnerValues {
            ours: b"",
            previous: b"",
        },
        claims: &[Claim::New, Claim::Ours],
    }
}

#[test]
fn chunks_respect_count_and_size() {
    let z = zone();
    let msgs: Vec<EventMessage> = (0..10)
        .map(|i| event(&format!("h{i}"), "A", &["10.0.0.1"]))
        .collect();
    let (chunks4, big) = chunks(fold(edits(&msgs)), 4, &sizing(&z));
    assert_eq!(chunks4.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
    assert!(big.is_empty());
    let txt = |n: &str| event(n, "TXT", &[&"x".repeat(30_000)]);
    let (by_size, big) = chunks(
        fold(edits(&[txt("t1"), txt("t2"), txt("t3")])),
        500,
        &sizing(&z),
    );
    assert_eq!(by_size.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    assert!(big.is_empty());
    let (none, big) = chunks(
        fold(edits(&[event("x", "TXT", &[&"y".repeat(65_000)])])),
        500,
        &sizing(&z),
    );
    assert!(none.is_empty() && big.len() == 1);
}

#[test]
fn sizes_bound_the_message_and_chunks_come_out_even() {
    let z = zone();
    let ours = owner_rdata("gordon");
    let values = OwnerValues {
        ours: &ours,
        previous: b"",
    };
    let claims = [Claim::New, Claim::Ours];
    let sizing = Sizing {
        zone: &z,
        values,
        claims: &claims,
    };
    let msgs: Vec<EventMessage> = (0..1000)
        .map(|i| event(&format!("host{i}"), "A", &["10.0.0.1"]))
        .collect();
    let (parts, big) = chunks(fold(edits(&msgs)), 500, &sizing);
    assert!(big.is_empty());
    // About 480 fit in 64,000 bytes: three UPDATEs, evened out.
    assert_eq!(
        parts.iter().map(Vec::len).collect::<Vec<_>>(),
        [334, 334, 332]
    );
    for part in &parts {
        let bound: usize = part.iter().map(|c| c.size(&sizing)).sum();
        for claim in claims {
            let refs: Vec<(&Edit, Claim)> = part.iter().map(|c| (c.effective(), claim)).collect();
            let msg = update_message(&z, &refs, values);
            // Header and zone section apart, the bound holds for either claim.
            let head = 12 + z.wire().len() + 4;
            assert!(
                msg.len() <= head + bound,
                "{} > {head} + {bound}",
                msg.len()
            );
            assert!(msg.len() <= MAX_UPDATE_BYTES);
        }
    }
    // The one-by-one bound is tight for a name written once (no repeats to share).
    let one = &parts[0][..1];
    let refs = [(one[0].effective(), Claim::New)];
    let msg = update_message(&z, &refs, values);
    assert!(one[0].size(&sizing) - (msg.len() - 12 - z.wire().len() - 4) < 64);
}

/// `(name, type, class)` of each record of a section, and the rdata of TXT ones.
fn rrs(records: &[crate::wire::Record], buf: &[u8]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let data = if r.rtype == 16 && r.class == CLASS_IN {
                let rdata = crate::wire::canonical_rdata(buf, r).unwrap();
                format!(
                    " {}",
                    String::from_utf8_lossy(&crate::wire::txt_bytes(&rdata))
                )
            } else {
                String::new()
            };
            format!("{} {} {}{data}", r.name, r.rtype, r.class)
        })
        .collect()
}

fn claimed(msgs: &[EventMessage], claim: Claim) -> (Vec<String>, Vec<String>) {
    let owned = edits(msgs);
    let (ours, previous) = (owner_rdata("g"), owner_rdata("old"));
    let values = OwnerValues {
        ours: &ours,
        previous: &previous,
    };
    let refs: Vec<(&Edit, Claim)> = owned.iter().map(|e| (e, claim)).collect();
    let mut buf = update_message(&zone(), &refs, values);
    // Read the update section as more answers: the parser keeps no authority.
    let (pre, upd) = (
        u16::from_be_bytes([buf[6], buf[7]]),
        u16::from_be_bytes([buf[8], buf[9]]),
    );
    buf[6..10].copy_from_slice(&[((pre + upd) >> 8) as u8, (pre + upd) as u8, 0, 0]);
    let m = parse(&buf).unwrap();
    assert_eq!(m.flags, OPCODE_UPDATE);
    let (p, u) = m.answers.split_at(usize::from(pre));
    (rrs(p, &buf), rrs(u, &buf))
}

#[test]
fn update_messages_replace_delete_and_claim_ownership() {
    let add = [event("www", "A", &["10.0.0.1"])];
    let gone = [del("old", "MX")];
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    // A new set: require that neither it nor an owner record exists; add both.
    assert_eq!(
        claimed(&add, Claim::New),
        (
            s(&[
                "www.example.com. 1 254",
                "_gordon-a-www.example.com. 16 254"
            ]),
            s(&[
                "_gordon-a-www.example.com. 16 1 heritage=gordon,owner=g",
                "www.example.com. 1 1"
            ])
        )
    );
    // Deleting a set that is not there only checks.
    let (pre, upd) = claimed(&gone, Claim::New);
    assert_eq!(pre.len(), 2);
    assert!(upd.is_empty());
    // Ours: require our owner record; replace the set, or delete it with its mark.
    assert_eq!(
        claimed(&add, Claim::Ours),
        (
            s(&["_gordon-a-www.example.com. 16 1 heritage=gordon,owner=g"]),
            s(&["www.example.com. 1 255", "www.example.com. 1 1"])
        )
    );
    assert_eq!(
        claimed(&gone, Claim::Ours).1,
        s(&[
            "old.example.com. 15 255",
            "_gordon-mx-old.example.com. 16 255"
        ])
    );
    // Adopt: require that no owner record exists; replace the set and mark it.
    assert_eq!(
        claimed(&add, Claim::Adopt),
        (
            s(&["_gordon-a-www.example.com. 16 254"]),
            s(&[
                "_gordon-a-www.example.com. 16 1 heritage=gordon,owner=g",
                "www.example.com. 1 255",
                "www.example.com. 1 1"
            ])
        )
    );
    assert_eq!(
        claimed(&gone, Claim::Adopt).1,
        s(&["old.example.com. 15 255"])
    );
    // From a previous owner: require its mark exactly; rewrite it to ours.
    assert_eq!(
        claimed(&add, Claim::Previous),
        (
            s(&["_gordon-a-www.example.com. 16 1 heritage=gordon,owner=old"]),
            s(&[
                "_gordon-a-www.example.com. 16 255",
                "_gordon-a-www.example.com. 16 1 heritage=gordon,owner=g",
                "www.example.com. 1 255",
                "www.example.com. 1 1"
            ])
        )
    );
    // manage_unowned: no prerequisite at all; the mark is rewritten or deleted.
    let (pre, upd) = claimed(&add, Claim::Force);
    assert!(pre.is_empty());
    assert_eq!(upd.len(), 4);
    assert_eq!(
        claimed(&gone, Claim::Force),
        (
            vec![],
            s(&[
                "old.example.com. 15 255",
                "_gordon-mx-old.example.com. 16 255"
            ])
        )
    );
}
