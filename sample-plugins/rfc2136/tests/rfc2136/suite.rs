//! The publisher suite: every test runs once against BIND and once against Knot.

use gordon_plugin_api::serde_json::json;
use gordon_plugin_api::{testing, ConfigChange};
use gordon_plugin_rfc2136::Rfc2136;

use crate::util::{
    add, all_ok, config, del, key, outcomes, publisher, rrset, serial, start, Kind, ZONE,
};

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod bind {
            $(#[test] fn $test() { super::$test(super::Kind::Bind) })*
        }
        mod knot {
            $(#[test] fn $test() { super::$test(super::Kind::Knot) })*
        }
    };
}

suite!(
    additions_appear_in_axfr,
    an_addition_replaces_the_existing_rrset,
    deletions_remove_the_rrset,
    a_batch_of_200_changes_lands_in_one_update,
    a_batch_of_many_updates_keeps_the_order_of_a_name,
    one_bad_record_fails_only_its_own_message,
    a_wrong_key_fails_every_message_and_changes_nothing,
    a_refused_zone_maps_to_a_clear_error,
    ownership_leaves_records_created_behind_our_back_alone,
    adopting_takes_over_unmarked_and_renamed_owners_sets,
    verify_query_catches_what_the_server_ignored,
    verify_axfr_accepts_what_landed,
    the_dependency_check_queries_the_zone_with_the_key,
    probe_tells_whether_the_key_may_update_and_changes_nothing,
    a_new_configuration_applies_live,
    a_server_that_cannot_be_reached_is_failed_over_and_nothing_is_lost,
);

fn additions_appear_in_axfr(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "default_ttl = 120");
    let mut www = add("www", "A", &["10.0.0.1", "10.0.0.2"]);
    www.record_mut().set_ttl(0);
    let results = p.batch(vec![
        www,
        add("mail.example.test.", "MX", &["10 mx.example.net."]),
        add("txt", "TXT", &["hello \"quoted\" world"]),
        add("v6", "AAAA", &["2001:db8::1"]),
        add("alias", "CNAME", &["www"]),
        add("_sip._tcp", "SRV", &["10 5 5060 www.example.test."]),
    ]);
    all_ok(&results);
    let note = results[0]
        .as_ref()
        .map(|m| m.history().last().map(|h| h.message().into_owned()));
    assert!(note
        .unwrap()
        .unwrap()
        .starts_with(&format!("Published to server {} zone {ZONE}", s.addr())));
    let zone = s.axfr();
    for want in [
        "www.example.test. 120 IN A 10.0.0.1",
        "www.example.test. 120 IN A 10.0.0.2",
        "mail.example.test. 300 IN MX 10 mx.example.net.",
        "txt.example.test. 300 IN TXT \"hello \\\"quoted\\\" world\"",
        "v6.example.test. 300 IN AAAA 2001:db8::1",
        "alias.example.test. 300 IN CNAME www.example.test.",
        "_sip._tcp.example.test. 300 IN SRV 10 5 5060 www.example.test.",
    ] {
        assert!(
            zone.iter().any(|l| l == want),
            "{want} missing from {zone:#?}"
        );
    }
    assert_eq!(serial(&s), 2, "one batch, one UPDATE");
    p.harness.handle(add("single", "A", &["10.0.0.9"])).unwrap();
    assert_eq!(rrset(&s, "single.example.test.", "A"), ["300 10.0.0.9"]);
}

fn an_addition_replaces_the_existing_rrset(kind: Kind) {
    let key = key("hmac-sha384");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    s.nsupdate(ZONE, "update add www.example.test. 60 TXT \"keep me\"")
        .unwrap();
    let p = publisher(&s, &key, ZONE, "");
    let mut first = add("www", "A", &["10.9.9.9", "10.9.9.8"]);
    first.record_mut().set_ttl(60);
    all_ok(&p.batch(vec![first]));
    assert_eq!(
        rrset(&s, "www.example.test.", "A"),
        ["60 10.9.9.8", "60 10.9.9.9"]
    );
    all_ok(&p.batch(vec![add("www", "A", &["10.0.0.1"])]));
    assert_eq!(rrset(&s, "www.example.test.", "A"), ["300 10.0.0.1"]);
    let mut again = add("www", "A", &["10.0.0.3", "10.0.0.2"]);
    again.record_mut().set_ttl(600);
    all_ok(&p.batch(vec![again]));
    assert_eq!(
        rrset(&s, "www.example.test.", "A"),
        ["600 10.0.0.2", "600 10.0.0.3"]
    );
    assert_eq!(
        rrset(&s, "www.example.test.", "TXT"),
        ["60 \"keep me\""],
        "other types stay"
    );
}

fn deletions_remove_the_rrset(kind: Kind) {
    let key = key("hmac-sha512");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "");
    all_ok(&p.batch(vec![
        add("www", "A", &["10.0.0.1", "10.0.0.2"]),
        add("www", "TXT", &["t"]),
    ]));
    all_ok(&p.batch(vec![del("www", "A"), del("never-there", "MX")]));
    assert!(rrset(&s, "www.example.test.", "A").is_empty());
    assert_eq!(rrset(&s, "www.example.test.", "TXT"), ["300 \"t\""]);
}

fn a_batch_of_200_changes_lands_in_one_update(kind: Kind) {
    let key = key("hmac-sha512");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "");
    let old = (0..20)
        .map(|i| add(&format!("old{i}"), "A", &[&format!("10.1.0.{i}")]))
        .collect();
    all_ok(&p.batch(old));
    let before = serial(&s);
    // The secret comes from the environment this time.
    let var = format!("GORDON_RFC2136_TEST_SECRET_{kind:?}").to_uppercase();
    std::env::set_var(&var, &key.secret);
    let extra = format!(
        "tsig_secret_env = \"{var}\"\ntsig_key_name = \"gordon-key\"\ntsig_algorithm = \"hmac-sha512\"\n\
         zone = \"{ZONE}\"\nserver = \"{}\"\nretries = 0",
        s.addr()
    );
    let harness =
        gordon_plugin_api::testing::handler::<gordon_plugin_rfc2136::Rfc2136>(&extra).unwrap();
    let mut msgs = vec![add("h0", "A", &["10.9.9.9"])];
    msgs.extend((0..150).map(|i| {
        add(
            &format!("h{i}"),
            "A",
            &[&format!("10.2.{}.{}", i / 256, i % 256)],
        )
    }));
    msgs.extend((0..29).map(|i| add(&format!("t{i}"), "TXT", &[&format!("text {i}")])));
    msgs.extend((0..20).map(|i| del(&format!("old{i}"), "A")));
    assert_eq!(msgs.len(), 200);
    all_ok(&harness.handle_batch(msgs));
    assert_eq!(serial(&s), before + 1, "200 messages, one UPDATE");
    let zone = s.axfr();
    assert_eq!(
        zone.iter()
            .filter(|l| l.starts_with('h') && l.contains(" A "))
            .count(),
        150
    );
    assert_eq!(
        zone.iter()
            .filter(|l| l.starts_with('t') && l.contains(" TXT "))
            .count(),
        29
    );
    assert!(!zone.iter().any(|l| l.starts_with("old")));
    assert_eq!(
        rrset(&s, "h0.example.test.", "A"),
        ["300 10.2.0.0"],
        "the later message wins"
    );
}

/// A batch of 1,000 changes with `max_batch = 100` goes out as 10 UPDATEs, several
/// in flight at once; two changes at one name in different UPDATEs (the A record
/// deleted first, then a CNAME added) still land in message order, although the
/// deletion's UPDATE takes three round trips (its first guess, a new record set,
/// fails its prerequisite; a lookup; the UPDATE again) and the CNAME's one.
fn a_batch_of_many_updates_keeps_the_order_of_a_name(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "max_batch = 100");
    all_ok(&p.batch(vec![add("alias", "A", &["10.3.0.1"])]));
    let before = serial(&s);
    let mut msgs = vec![del("alias", "A")];
    msgs.extend((1..999).map(|i| {
        add(
            &format!("m{i}"),
            "A",
            &[&format!("10.4.{}.{}", i / 256, i % 256)],
        )
    }));
    // In the second UPDATE, which would otherwise be in flight with the first.
    msgs.insert(150, add("alias", "CNAME", &["m1"]));
    all_ok(&p.batch(msgs));
    // BIND bumps the serial once per UPDATE applied; Knot may apply UPDATEs that
    // arrive together as one.
    match kind {
        Kind::Bind => assert_eq!(serial(&s), before + 10, "10 UPDATEs"),
        Kind::Knot => assert!(serial(&s) > before),
    }
    let zone = s.axfr();
    assert_eq!(zone.iter().filter(|l| l.starts_with('m')).count(), 998);
    assert!(rrset(&s, "alias.example.test.", "A").is_empty());
    assert_eq!(
        rrset(&s, "alias.example.test.", "CNAME"),
        ["300 m1.example.test."]
    );
}

fn one_bad_record_fails_only_its_own_message(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "");
    let mut msgs: Vec<_> = (0..40)
        .map(|i| add(&format!("ok{i}"), "A", &["10.0.0.1"]))
        .collect();
    // BIND refuses an MX whose in-zone target has no address (its check-mx); Knot
    // takes it.
    msgs.insert(17, add("mail", "MX", &["10 nowhere"]));
    let texts = outcomes(&p.batch(msgs));
    let bad: Vec<(usize, &String)> = texts
        .iter()
        .enumerate()
        .filter(|(_, t)| *t != "ok")
        .collect();
    match kind {
        Kind::Bind => {
            let want = format!(
                "server {} refused the update of mail.example.test. MX in zone {ZONE} (REFUSED): \
                 the key may not change this name, or the server's checks reject the record",
                s.addr()
            );
            assert_eq!(bad, [(17, &want)]);
        }
        Kind::Knot => assert!(bad.is_empty(), "{bad:?}"),
    }
    assert_eq!(s.axfr().iter().filter(|l| l.starts_with("ok")).count(), 40);
}

fn a_wrong_key_fails_every_message_and_changes_nothing(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let before = s.axfr();
    let wrong_secret = gordon_test_servers::bind::Key::random("gordon-key", "hmac-sha256");
    let wrong_name = gordon_test_servers::bind::Key::new("other-key", "hmac-sha256", &key.secret);
    let wrong_alg = gordon_test_servers::bind::Key::new("gordon-key", "hmac-sha512", &key.secret);
    for (wrong, tsig_error) in [
        (wrong_secret, "BADSIG"),
        (wrong_name, "BADKEY"),
        (wrong_alg, "BAD"),
    ] {
        let p = publisher(&s, &wrong, ZONE, "");
        let msgs = (0..5)
            .map(|i| add(&format!("w{i}"), "A", &["10.0.0.1"]))
            .collect();
        let texts = outcomes(&p.batch(msgs));
        for text in &texts {
            assert!(
                text.starts_with(&format!("TSIG authentication failed with server {} for zone {ZONE}: wrong key name, secret or algorithm", s.addr())),
                "{text}"
            );
            assert!(text.contains(tsig_error), "{text}");
        }
    }
    assert_eq!(s.axfr(), before);
}

fn a_refused_zone_maps_to_a_clear_error(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &["ro.test."], std::slice::from_ref(&key)) else {
        return;
    };
    let before = s.axfr_zone("ro.test.");
    let p = publisher(&s, &key, "ro.test.", "");
    let texts = outcomes(
        &p.batch(
            (0..3)
                .map(|i| add(&format!("r{i}"), "A", &["10.0.0.1"]))
                .collect(),
        ),
    );
    let addr = s.addr();
    let want = match kind {
        Kind::Bind => format!(
            "server {addr} refused the update for zone ro.test.: check allow-update / the key's permissions (REFUSED)"
        ),
        // Knot answers an update its ACL does not allow with NOTAUTH/BADKEY.
        Kind::Knot => format!(
            "TSIG authentication failed with server {addr} for zone ro.test.: wrong key name, secret or algorithm, or the key may not update this zone (BADKEY)"
        ),
    };
    assert_eq!(texts, [want.clone(), want.clone(), want]);
    assert_eq!(s.axfr_zone("ro.test."), before);
    let p = publisher(&s, &key, "other.test.", "");
    let text = p
        .harness
        .handle(add("x", "A", &["10.0.0.1"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        text,
        format!("server {addr} is not authoritative for zone other.test. (NOTAUTH)")
    );
}

fn ownership_leaves_records_created_behind_our_back_alone(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    s.nsupdate(
        ZONE,
        "update add theirs.example.test. 60 A 10.9.9.9\nupdate add gone.example.test. 60 TXT \"theirs\"",
    )
    .unwrap();
    // Ownership is on by default (owner id `gordon`); here with an id of its own.
    let p = publisher(&s, &key, ZONE, "owner_id = \"gordon-1\"");
    let mut msgs: Vec<_> = (0..8)
        .map(|i| add(&format!("ours{i}"), "A", &["10.0.0.1"]))
        .collect();
    msgs.insert(3, add("theirs", "A", &["10.0.0.2"]));
    msgs.push(del("gone", "TXT"));
    let texts = outcomes(&p.batch(msgs));
    for (i, text) in texts.iter().enumerate() {
        if i == 3 || i == 9 {
            assert!(
                text.contains("is not owned by gordon owner gordon-1")
                    && text.contains("`adopt = true` takes over"),
                "{i}: {text}"
            );
            assert!(text.contains(&s.addr()), "{text}");
        } else {
            assert_eq!(text, "ok", "message {i}");
        }
    }
    assert_eq!(rrset(&s, "theirs.example.test.", "A"), ["60 10.9.9.9"]);
    assert_eq!(rrset(&s, "gone.example.test.", "TXT"), ["60 \"theirs\""]);
    assert_eq!(rrset(&s, "ours0.example.test.", "A"), ["300 10.0.0.1"]);
    let owner = rrset(&s, "_gordon-a-ours0.example.test.", "TXT");
    assert_eq!(owner, ["300 \"heritage=gordon,owner=gordon-1\""]);
    // Ours can be replaced and deleted; another owner may not touch it.
    all_ok(&p.batch(vec![add("ours0", "A", &["10.0.0.5"])]));
    assert_eq!(rrset(&s, "ours0.example.test.", "A"), ["300 10.0.0.5"]);
    let other = publisher(&s, &key, ZONE, "owner_id = \"gordon-2\"");
    let text = other
        .harness
        .handle(del("ours0", "A"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("not owned by gordon owner gordon-2") && text.contains("owner=gordon-1"),
        "{text}"
    );
    all_ok(&p.batch(vec![
        del("ours0", "A"),
        del("ours1", "A"),
        del("never", "A"),
    ]));
    assert!(rrset(&s, "ours0.example.test.", "A").is_empty());
    assert!(rrset(&s, "_gordon-a-ours0.example.test.", "TXT").is_empty());
    assert!(rrset(&s, "_gordon-a-ours1.example.test.", "TXT").is_empty());
    assert_eq!(rrset(&s, "_gordon-a-ours2.example.test.", "TXT").len(), 1);
}

fn adopting_takes_over_unmarked_and_renamed_owners_sets(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    s.nsupdate(
        ZONE,
        "update add legacy.example.test. 60 A 10.9.9.9\nupdate add mine.example.test. 60 TXT \"by hand\"",
    )
    .unwrap();
    let owner = |n: &str, t: &str| rrset(&s, &format!("_gordon-{t}-{n}.example.test."), "TXT");
    let mark = |id: &str| vec![format!("300 \"heritage=gordon,owner={id}\"")];
    // An instance under its old owner id, and one of another owner.
    let old = publisher(&s, &key, ZONE, "owner_id = \"gordon-old\"");
    all_ok(&old.batch(vec![add("renamed", "A", &["10.0.0.7"])]));
    let other = publisher(&s, &key, ZONE, "owner_id = \"someone-else\"");
    all_ok(&other.batch(vec![add("theirs", "A", &["10.0.0.8"])]));

    // The default leaves all of them alone.
    let plain = publisher(&s, &key, ZONE, "");
    let texts = outcomes(&plain.batch(vec![
        add("legacy", "A", &["10.0.0.1"]),
        del("mine", "TXT"),
        add("renamed", "A", &["10.0.0.2"]),
    ]));
    assert!(
        texts
            .iter()
            .all(|t| t.contains("is not owned by gordon owner gordon")),
        "{texts:#?}"
    );
    assert_eq!(rrset(&s, "legacy.example.test.", "A"), ["60 10.9.9.9"]);

    // adopt: sets without any owner record are taken over and marked ours.
    let adopting = publisher(&s, &key, ZONE, "adopt = true");
    let texts = outcomes(&adopting.batch(vec![
        add("legacy", "A", &["10.0.0.1"]),
        del("mine", "TXT"),
        add("renamed", "A", &["10.0.0.2"]),
        add("fresh", "A", &["10.0.0.3"]),
    ]));
    assert_eq!(texts[0], "ok");
    assert_eq!(texts[1], "ok");
    assert!(texts[2].contains("`adopt_from_owner`"), "{}", texts[2]);
    assert_eq!(texts[3], "ok");
    assert_eq!(rrset(&s, "legacy.example.test.", "A"), ["300 10.0.0.1"]);
    assert_eq!(owner("legacy", "a"), mark("gordon"));
    assert!(rrset(&s, "mine.example.test.", "TXT").is_empty());
    assert!(owner("mine", "txt").is_empty());
    assert_eq!(owner("fresh", "a"), mark("gordon"));

    // adopt_from_owner: the old id's sets become ours; another owner's stay.
    let renaming = publisher(&s, &key, ZONE, "adopt_from_owner = \"gordon-old\"");
    let texts = outcomes(&renaming.batch(vec![
        add("renamed", "A", &["10.0.0.2"]),
        add("theirs", "A", &["10.0.0.9"]),
    ]));
    assert_eq!(texts[0], "ok");
    assert!(texts[1].contains("owner=someone-else"), "{}", texts[1]);
    assert_eq!(rrset(&s, "renamed.example.test.", "A"), ["300 10.0.0.2"]);
    assert_eq!(owner("renamed", "a"), mark("gordon"));
    assert_eq!(owner("theirs", "a"), mark("someone-else"));

    // manage_unowned: anything goes, and what it writes is marked ours.
    s.nsupdate(ZONE, "update add stray.example.test. 60 A 10.6.6.6")
        .unwrap();
    let all = publisher(&s, &key, ZONE, "manage_unowned = true");
    all_ok(&all.batch(vec![add("theirs", "A", &["10.0.0.10"]), del("stray", "A")]));
    assert_eq!(rrset(&s, "theirs.example.test.", "A"), ["300 10.0.0.10"]);
    assert_eq!(owner("theirs", "a"), mark("gordon"));
    assert!(rrset(&s, "stray.example.test.", "A").is_empty());
}

fn verify_query_catches_what_the_server_ignored(kind: Kind) {
    let key = key("hmac-sha384");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "verify = \"query\"");
    // The big TXT set does not fit a UDP answer: its query is asked again over TCP.
    let big = "x".repeat(2000);
    all_ok(&p.batch(vec![
        add("alias", "CNAME", &["www"]),
        add("www", "A", &["10.0.0.1"]),
        del("nothing", "A"),
        add("big", "TXT", &[&big]),
    ]));
    // Both servers silently ignore an address record next to a CNAME.
    let texts = outcomes(&p.batch(vec![
        add("alias", "A", &["10.0.0.2"]),
        add("fine", "A", &["10.0.0.3"]),
    ]));
    let want = format!(
        "server {} does not serve what was sent for alias.example.test. A in zone {ZONE}: expected [10.0.0.2] (ttl 300), got []",
        s.addr()
    );
    assert_eq!(texts, [want, "ok".to_owned()]);
}

fn verify_axfr_accepts_what_landed(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&s, &key, ZONE, "verify = \"axfr\"\ntransport = \"tcp\"");
    let mut msgs: Vec<_> = (0..200)
        .map(|i| add(&format!("v{i}"), "TXT", &[&"long text ".repeat(40)]))
        .collect();
    msgs.push(del("v3", "TXT"));
    all_ok(&p.batch(msgs));
    assert!(rrset(&s, "v3.example.test.", "TXT").is_empty());
    assert_eq!(rrset(&s, "v199.example.test.", "TXT").len(), 1);
}

/// `validate_dependencies` on the configuration of a publisher of `zone` at the
/// server, signing with `key`; the error text.
fn check(
    s: &gordon_test_servers::bind::DnsServer,
    key: &gordon_test_servers::bind::Key,
    zone: &str,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), &s.addr(), key, zone, "");
    testing::validate_dependencies::<Rfc2136>(&text).map_err(|e| e.to_string())
}

fn the_dependency_check_queries_the_zone_with_the_key(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let before = s.axfr();
    assert_eq!(check(&s, &key, ZONE), Ok(()));
    let addr = s.addr();
    let wrong_secret = gordon_test_servers::bind::Key::random("gordon-key", "hmac-sha256");
    let wrong_name = gordon_test_servers::bind::Key::new("other-key", "hmac-sha256", &key.secret);
    for (wrong, tsig_error) in [(wrong_secret, "(BADSIG)"), (wrong_name, "(BADKEY)")] {
        let err = check(&s, &wrong, ZONE).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "TSIG authentication failed with server {addr} for zone {ZONE}: wrong key name, secret or algorithm"
            )),
            "{err}"
        );
        assert!(err.ends_with(tsig_error), "{err}");
    }
    // A zone the server does not serve.
    let err = check(&s, &key, "other.test.").unwrap_err();
    assert!(
        err.contains(&format!("server {addr}")) && err.contains("zone other.test."),
        "{err}"
    );
    assert_eq!(s.axfr(), before, "a check changes nothing");
}

fn probe_tells_whether_the_key_may_update_and_changes_nothing(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &["ro.test."], std::slice::from_ref(&key)) else {
        return;
    };
    let (before, before_ro) = (s.axfr(), s.axfr_zone("ro.test."));
    let addr = s.addr();
    let p = publisher(&s, &key, ZONE, "");
    let mut out = p.harness.invoke("probe", json!({})).unwrap();
    assert!(out["elapsed_ms"].is_u64(), "{out}");
    out["elapsed_ms"] = json!(0);
    assert_eq!(
        out,
        json!({"zone": ZONE, "server": addr, "key": "gordon-key.", "may_update": true,
               "rcode": "NXDOMAIN", "elapsed_ms": 0})
    );
    // Another zone, whose updates the server refuses this key.
    let out = p
        .harness
        .invoke("probe", json!({"zone": "ro.test."}))
        .unwrap();
    assert_eq!(out["may_update"], json!(false), "{out}");
    assert_eq!(out["zone"], json!("ro.test."), "{out}");
    let error = out["error"].as_str().unwrap();
    match kind {
        Kind::Bind => {
            assert_eq!(out["rcode"], json!("REFUSED"), "{out}");
            assert_eq!(error, format!("server {addr} refused the update for zone ro.test.: check allow-update / the key's permissions (REFUSED)"));
        }
        // Knot answers an update its ACL does not allow with NOTAUTH/BADKEY.
        Kind::Knot => {
            assert_eq!(out["rcode"], json!("BADKEY"), "{out}");
            assert!(
                error.contains("or the key may not update this zone (BADKEY)"),
                "{error}"
            );
        }
    }
    // A zone the server does not serve.
    let out = p
        .harness
        .invoke("probe", json!({"zone": "other.test."}))
        .unwrap();
    assert_eq!(
        (&out["may_update"], &out["rcode"]),
        (&json!(false), &json!("NOTAUTH")),
        "{out}"
    );
    // A wrong key.
    let wrong = gordon_test_servers::bind::Key::random("gordon-key", "hmac-sha256");
    let w = publisher(&s, &wrong, ZONE, "");
    let out = w.harness.invoke("probe", json!({})).unwrap();
    assert_eq!(
        (&out["may_update"], &out["rcode"]),
        (&json!(false), &json!("BADSIG")),
        "{out}"
    );
    assert!(
        out["error"].as_str().unwrap().starts_with(&format!(
            "TSIG authentication failed with server {addr} for zone {ZONE}"
        )),
        "{out}"
    );
    // Parameters.
    let err = p
        .harness
        .invoke("probe", json!({"zone": "ro.test"}))
        .unwrap_err();
    assert!(err.to_string().contains("absolute"), "{err}");
    assert!(p.harness.invoke("probe", json!({"zone": 1})).is_err());
    // Nothing changed, not even the serials.
    assert_eq!(s.axfr(), before);
    assert_eq!(s.axfr_zone("ro.test."), before_ro);
}

fn a_new_configuration_applies_live(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let wrong = gordon_test_servers::bind::Key::random("gordon-key", "hmac-sha256");
    let p = publisher(&s, &wrong, ZONE, "");
    let texts = outcomes(&p.batch(vec![add("live", "A", &["10.0.0.1"])]));
    assert!(texts[0].contains("(BADSIG)"), "{texts:?}");
    // The right key and a new default TTL, applied to the same instance.
    let dir = tempfile::tempdir().unwrap();
    let right = config(dir.path(), &s.addr(), &key, ZONE, "default_ttl = 120");
    assert_eq!(
        p.harness.apply_config(&right).unwrap(),
        ConfigChange::Applied
    );
    let mut msg = add("live", "A", &["10.0.0.1"]);
    msg.record_mut().set_ttl(0);
    all_ok(&p.batch(vec![msg]));
    assert_eq!(rrset(&s, "live.example.test.", "A"), ["120 10.0.0.1"]);
    let out = p.harness.invoke("probe", json!({})).unwrap();
    assert_eq!(out["may_update"], json!(true), "{out}");
    // Idempotent.
    assert_eq!(
        p.harness.apply_config(&right).unwrap(),
        ConfigChange::Applied
    );
    all_ok(&p.batch(vec![add("again", "A", &["10.0.0.2"])]));
    // A configuration that does not validate is refused; the instance keeps its own.
    let bad = right.replace(
        &dir.path().join("gordon.key").display().to_string(),
        "/nonexistent/k.key",
    );
    let err = p.harness.apply_config(&bad).unwrap_err().to_string();
    assert!(err.contains("cannot read /nonexistent/k.key"), "{err}");
    let mut msg = add("kept", "A", &["10.0.0.3"]);
    msg.record_mut().set_ttl(0);
    all_ok(&p.batch(vec![msg]));
    assert_eq!(rrset(&s, "kept.example.test.", "A"), ["120 10.0.0.3"]);
}

/// `servers`: the first is dead (nothing listens on its port), the second is the
/// server by a host name. Every message lands, through the second; the dependency
/// check names the dead one.
fn a_server_that_cannot_be_reached_is_failed_over_and_nothing_is_lost(kind: Kind) {
    let key = key("hmac-sha256");
    let Some(s) = start(kind, &[], std::slice::from_ref(&key)) else {
        return;
    };
    let dead = format!("127.0.0.1:{}", gordon_test_servers::free_port());
    let named = format!("localhost:{}", s.port());
    let servers = format!("servers = [\"{dead}\", \"{named}\"]");
    let p = publisher(&s, &key, ZONE, &format!("{servers}\nverify = \"query\""));
    let results = p.batch(
        (0..50)
            .map(|i| add(&format!("f{i}"), "A", &["10.0.0.1"]))
            .collect(),
    );
    all_ok(&results);
    let note = results[0]
        .as_ref()
        .map(|m| m.history().last().map(|h| h.message().into_owned()));
    assert!(note
        .unwrap()
        .unwrap()
        .starts_with(&format!("Published to server {named} zone {ZONE}")));
    // One UDP-sized message, one big batch over TCP, a deletion: all through the
    // server that answered.
    p.harness.handle(add("one", "A", &["10.0.0.2"])).unwrap();
    let big: Vec<_> = (0..300)
        .map(|i| add(&format!("g{i}"), "TXT", &[&"x".repeat(100)]))
        .collect();
    all_ok(&p.batch(big));
    p.harness.handle(del("f0", "A")).unwrap();
    let zone = s.axfr();
    let served = |prefix: &str, rtype: &str| {
        zone.iter()
            .filter(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f.len() > 3 && f[0].starts_with(prefix) && f[3] == rtype
            })
            .count()
    };
    assert_eq!(served("f", "A"), 49, "f1..f49");
    assert_eq!(served("g", "TXT"), 300);
    assert_eq!(rrset(&s, "one.example.test.", "A"), ["300 10.0.0.2"]);
    let out = p.harness.invoke("probe", json!({})).unwrap();
    assert_eq!(
        (&out["server"], &out["may_update"]),
        (&json!(named), &json!(true)),
        "{out}"
    );
    // The dependency check asks every server: the dead one is named.
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "-", &key, ZONE, &servers);
    let err = testing::validate_dependencies::<Rfc2136>(&text).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("1 of the 2 servers of `servers` failed the check ({named} passed): server {dead} refused the connection (zone {ZONE}): is it running?")
    );
    let text = config(
        dir.path(),
        "-",
        &key,
        ZONE,
        &format!("servers = [\"{named}\"]"),
    );
    assert_eq!(
        testing::validate_dependencies::<Rfc2136>(&text).map_err(|e| e.to_string()),
        Ok(())
    );
}
