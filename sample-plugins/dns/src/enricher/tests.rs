use gordon_plugin_api::testing::{self, HandlerHarness};
use gordon_plugin_api::{Action, EventMessage};

use super::*;

const CONFIG: &str = r#"zone = "Example.COM."
default_ttl = 600"#;

fn enricher() -> HandlerHarness<Enricher> {
    testing::handler::<Enricher>(CONFIG).unwrap()
}

fn ok(msg: EventMessage) -> EventMessage {
    enricher().handle(msg).unwrap()
}

fn err(msg: EventMessage) -> String {
    enricher().handle(msg).unwrap_err().message().to_owned()
}

fn rrdatas(msg: &EventMessage) -> Vec<&str> {
    msg.record().rrdatas().collect()
}

/// The canonical rrdatas of one record, or the error.
fn one(rtype: &str, data: &[&str]) -> Result<Vec<String>, String> {
    enricher()
        .handle(testing::event("host", rtype, data))
        .map(|m| m.record().rrdatas().map(str::to_owned).collect())
        .map_err(|e| e.message().to_owned())
}

#[test]
fn relative_names_are_qualified_and_lowercased() {
    let out = ok(testing::event("WWW", "A", &["10.0.0.1"]));
    assert_eq!(out.record().name(), "www.example.com.");
    assert_eq!(
        ok(testing::event("@", "A", &["10.0.0.1"])).record().name(),
        "example.com."
    );
    let abs = ok(testing::event("Mail.Example.com.", "A", &["10.0.0.1"]));
    assert_eq!(abs.record().name(), "mail.example.com.");
    let last = out.history().last().unwrap();
    assert_eq!(last.plugin(), "dns.enricher");
    assert!(
        last.message()
            .starts_with("Normalised record www.example.com. A"),
        "{}",
        last.message()
    );
}

#[test]
fn names_outside_the_zone_or_malformed_are_rejected() {
    assert_eq!(
        err(testing::event("other.org.", "A", &["10.0.0.1"])),
        "name other.org. is outside zone example.com."
    );
    assert!(err(testing::event("badexample.com.", "A", &["10.0.0.1"])).contains("outside zone"));
    assert!(err(testing::event("a..b", "TXT", &["x"])).contains("empty label"));
    assert!(err(testing::event("", "TXT", &["x"])).contains("empty name"));
    let e = err(testing::event("_x", "A", &["10.0.0.1"]));
    assert!(e.contains("not a host name label"), "{e}");
    assert_eq!(
        ok(testing::event("_dmarc", "TXT", &["v=DMARC1"]))
            .record()
            .name(),
        "_dmarc.example.com."
    );
}

#[test]
fn default_ttl_fills_zero_and_bad_ttls_are_rejected() {
    let mut msg = testing::event("www", "A", &["10.0.0.1"]);
    msg.record_mut().set_ttl(0);
    assert_eq!(ok(msg).record().ttl(), 600);
    let mut msg = testing::event("www", "A", &["10.0.0.1"]);
    msg.record_mut().set_ttl(120);
    assert_eq!(ok(msg).record().ttl(), 120);
    for bad in [59, 86_401] {
        let mut msg = testing::event("www", "A", &["10.0.0.1"]);
        msg.record_mut().set_ttl(bad);
        assert_eq!(
            err(msg),
            format!("ttl {bad} of www.example.com. A is outside 60..=86400")
        );
    }
}

#[test]
fn duplicates_are_removed_keeping_the_first() {
    let out = ok(testing::event(
        "www",
        "A",
        &["10.0.0.2", "10.0.0.1", "10.0.0.2"],
    ));
    assert_eq!(rrdatas(&out), ["10.0.0.2", "10.0.0.1"]);
    assert!(out
        .history()
        .last()
        .unwrap()
        .message()
        .contains("removed 1 duplicate"));
    // Name-valued data compares case-insensitively (and relative = absolute).
    let out = ok(testing::event(
        "@",
        "MX",
        &["10 Mail", "10 mail.example.com.", "20 mail"],
    ));
    assert_eq!(
        rrdatas(&out),
        ["10 mail.example.com.", "20 mail.example.com."]
    );
    let out = ok(testing::event("@", "NS", &["NS1.example.com.", "ns1"]));
    assert_eq!(rrdatas(&out), ["ns1.example.com."]);
    // TXT is case-sensitive.
    let out = ok(testing::event("t", "TXT", &["a", "A", "a"]));
    assert_eq!(rrdatas(&out), ["a", "A"]);
}

#[test]
fn a_and_aaaa_rrdatas() {
    assert_eq!(one("A", &[" 192.0.2.1 "]).unwrap(), ["192.0.2.1"]);
    assert_eq!(
        one("A", &["300.1.1.1"]).unwrap_err(),
        r#"invalid A rrdata "300.1.1.1" for host.example.com.: not an IPv4 address"#
    );
    assert!(one("A", &["010.0.0.1"]).is_err());
    assert!(one("A", &["::1"]).is_err());
    assert_eq!(
        one("AAAA", &["2001:DB8:0:0:0:0:0:1"]).unwrap(),
        ["2001:db8::1"]
    );
    assert_eq!(
        one("AAAA", &["2001:db8::1", "2001:0db8::0001"]).unwrap(),
        ["2001:db8::1"]
    );
    let e = one("AAAA", &["2001:db8::g"]).unwrap_err();
    assert!(e.ends_with("not an IPv6 address"), "{e}");
    assert!(one("AAAA", &["10.0.0.1"]).is_err());
}

#[test]
fn name_valued_rrdatas() {
    assert_eq!(one("CNAME", &["WWW"]).unwrap(), ["www.example.com."]);
    assert_eq!(
        one("CNAME", &["target.other.org."]).unwrap(),
        ["target.other.org."]
    );
    assert_eq!(
        one("NS", &["ns2.Example.com."]).unwrap(),
        ["ns2.example.com."]
    );
    assert_eq!(one("PTR", &["@"]).unwrap(), ["example.com."]);
    let e = one("CNAME", &["bad name"]).unwrap_err();
    assert!(
        e.starts_with(r#"invalid CNAME rrdata "bad name" for host.example.com.:"#),
        "{e}"
    );
    assert!(one("NS", &["_ns.example.com."])
        .unwrap_err()
        .contains("host name"));
    assert!(one("PTR", &["a..b."]).unwrap_err().contains("empty label"));
    assert!(one("CNAME", &[&format!("{}.com.", "x".repeat(64))])
        .unwrap_err()
        .contains("63"));
    assert!(one("CNAME", &["."]).unwrap_err().contains("root"));
    // Reverse zones: PTR targets are host names.
    let rev = testing::handler::<Enricher>(r#"zone = "2.0.192.in-addr.arpa.""#).unwrap();
    let out = rev
        .handle(testing::event("1", "PTR", &["host.example.com."]))
        .unwrap();
    assert_eq!(out.record().name(), "1.2.0.192.in-addr.arpa.");
    assert!(rev
        .handle(testing::event("2", "PTR", &["_x.example.com."]))
        .is_err());
}

#[test]
fn cname_must_have_exactly_one_rrdata() {
    let e = one("CNAME", &["a", "b"]).unwrap_err();
    assert_eq!(
        e,
        "CNAME host.example.com. must have exactly one rrdata, got 2"
    );
    // Two spellings of one name are one rrdata.
    assert_eq!(
        one("CNAME", &["a", "A.example.com."]).unwrap(),
        ["a.example.com."]
    );
}

#[test]
fn mx_and_srv_rrdatas() {
    assert_eq!(one("MX", &["10   MAIL"]).unwrap(), ["10 mail.example.com."]);
    assert_eq!(one("MX", &["0 ."]).unwrap(), ["0 ."]);
    let e = one("MX", &["mail"]).unwrap_err();
    assert!(e.ends_with(r#"expected "<preference> <exchange>""#), "{e}");
    let e = one("MX", &["65536 mail"]).unwrap_err();
    assert!(
        e.ends_with(r#"preference "65536" is not a number in 0..=65535"#),
        "{e}"
    );
    assert!(one("MX", &["10 _mail"]).is_err());
    assert_eq!(
        one("SRV", &["0 5 5060 SIP.example.com."]).unwrap(),
        ["0 5 5060 sip.example.com."]
    );
    assert_eq!(
        one("SRV", &["1 2 3 sip"]).unwrap(),
        ["1 2 3 sip.example.com."]
    );
    assert!(one("SRV", &["1 2 sip"])
        .unwrap_err()
        .contains("<priority> <weight> <port> <target>"));
    assert!(one("SRV", &["1 2 70000 sip"])
        .unwrap_err()
        .contains("port \"70000\""));
    assert!(one("SRV", &["1 -2 3 sip"]).unwrap_err().contains("weight"));
}

#[test]
fn txt_rrdatas() {
    assert_eq!(one("TXT", &["\"v=spf1 -all\""]).unwrap(), ["v=spf1 -all"]);
    assert_eq!(
        one("TXT", &["plain; text \\ \"q\""]).unwrap(),
        ["plain; text \\ \"q\""]
    );
    assert_eq!(one("TXT", &["é"]).unwrap(), ["é"]);
    assert_eq!(one("TXT", &["\"\""]).unwrap(), [""]);
    assert!(one("TXT", &[&"x".repeat(70_000)])
        .unwrap_err()
        .contains("longer than"));
}

#[test]
fn soa_empty_and_deletions() {
    let e = one("SOA", &["ns1 hostmaster 1 2 3 4 5"]).unwrap_err();
    assert!(
        e.contains("SOA records are managed by the zone publisher"),
        "{e}"
    );
    assert_eq!(
        one("A", &[]).unwrap_err(),
        "no rrdatas for host.example.com. A"
    );
    // Deletions are normalised the same way.
    let mut msg = testing::event("WWW", "A", &["10.0.0.1"]);
    msg.set_action(Action::Deletions);
    let out = ok(msg);
    assert_eq!(out.action(), Action::Deletions);
    assert_eq!(out.record().name(), "www.example.com.");
}

#[test]
fn batches_fail_per_message() {
    let out = enricher().handle_batch(vec![
        testing::event("a", "A", &["10.0.0.1"]),
        testing::event("b", "A", &["nope"]),
        testing::event("c", "A", &["10.0.0.3"]),
    ]);
    assert!(out[0].is_ok() && out[1].is_err() && out[2].is_ok());
}

#[test]
fn configuration_is_validated() {
    assert!(testing::validate::<Enricher>(r#"zone = "example.com.""#).is_ok());
    let e = testing::validate::<Enricher>(r#"zone = "example.com""#).unwrap_err();
    assert!(e.message().contains("`zone`"), "{e}");
    let e = testing::validate::<Enricher>("zone = \"example.com.\"\ndefault_ttl = 30").unwrap_err();
    assert!(e.message().contains("`default_ttl`"), "{e}");
    let e = testing::validate::<Enricher>("zone = \"example.com.\"\npath = \"z.db\"").unwrap_err();
    assert!(e.message().contains("path"), "{e}");
    assert!(testing::validate::<Enricher>("default_ttl = 300").is_err());
    assert!(testing::handler::<Enricher>(r#"zone = "bad zone.""#).is_err());
}

#[test]
fn names_with_whitespace_are_refused_not_trimmed() {
    for name in [" www", "www\n", "w w", "www\t"] {
        let e = err(testing::event(name, "A", &["10.0.0.1"]));
        assert!(e.starts_with(&format!("invalid name {name:?}")), "{e}");
        assert!(e.contains("whitespace"), "{e}");
    }
    let e = one("CNAME", &["www "]).unwrap_err();
    assert!(e.contains("whitespace"), "{e}");
}

#[test]
fn ip_addresses_are_refused_where_host_names_belong() {
    for (rtype, data, field) in [
        ("NS", "192.0.2.1", "the target"),
        ("CNAME", "192.0.2.1", "the target"),
        ("PTR", "192.0.2.1.", "the target"),
        ("MX", "10 192.0.2.1", "the exchange"),
        ("SRV", "0 5 5060 2001:db8::1", "the target"),
    ] {
        let e = one(rtype, &[data]).unwrap_err();
        assert!(
            e.contains(&format!("{field} ")) && e.contains("is an IP address"),
            "{rtype}: {e}"
        );
    }
}

#[test]
fn record_sets_over_the_limits_and_wildcard_ns_are_refused() {
    let addrs: Vec<String> = (0..101).map(|i| format!("10.0.1.{i}")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    assert_eq!(one("A", &refs[..100]).unwrap().len(), 100);
    assert!(one("A", &refs).unwrap_err().contains("at most 100"));
    let e = err(testing::event("*", "NS", &["ns.other.net."]));
    assert!(e.contains("wildcard"), "{e}");
    let half = "x".repeat(40_000);
    let e = one("TXT", &[&half, &format!("{half}y")]).unwrap_err();
    assert!(e.contains("bytes of record data"), "{e}");
}

#[test]
fn txt_output_reads_back_as_the_same_text() {
    // Each quoted string stays a character-string of its own.
    assert_eq!(one("TXT", &[r#""a" "b""#]).unwrap(), [r#""a" "b""#]);
    assert_eq!(
        one("TXT", &[r#""a"   "b""#, r#""a" "b""#, "ab"]).unwrap(),
        [r#""a" "b""#, "ab"]
    );
    assert_eq!(one("TXT", &[r#""\"q\"""#]).unwrap(), [r#""\"q\"""#]);
    let e = one("TXT", &["\"\"x\"\""]).unwrap_err();
    assert!(e.contains("quoted strings"), "{e}");
    // "a" and a are the same text: one of them is a duplicate.
    assert_eq!(one("TXT", &["\"a\"", "a"]).unwrap(), ["a"]);
}

#[test]
fn a_new_configuration_applies_live_and_a_bad_one_changes_nothing() {
    use gordon_plugin_api::ConfigChange;
    let h = enricher();
    let zero_ttl = |name: &str| {
        let mut msg = testing::event(name, "A", &["10.0.0.1"]);
        msg.record_mut().set_ttl(0);
        msg
    };
    let out = h.handle(zero_ttl("www")).unwrap();
    assert_eq!(
        (out.record().name(), out.record().ttl()),
        ("www.example.com.", 600)
    );

    let next = "zone = \"Example.NET.\"\ndefault_ttl = 120";
    assert_eq!(h.apply_config(next).unwrap(), ConfigChange::Applied);
    let out = h.handle(zero_ttl("www")).unwrap();
    assert_eq!(
        (out.record().name(), out.record().ttl()),
        ("www.example.net.", 120)
    );
    let e = h.handle(zero_ttl("www.example.com.")).unwrap_err();
    assert!(e.message().contains("outside zone example.net."), "{e}");
    // Idempotent: the same configuration again is applied and changes nothing.
    assert_eq!(h.apply_config(next).unwrap(), ConfigChange::Applied);
    assert_eq!(h.handle(zero_ttl("a")).unwrap().record().ttl(), 120);

    // Refused by `validate_config`: the instance keeps its configuration.
    for bad in [
        "zone = \"example.org.\"\ndefault_ttl = 59",
        "zone = \"example.org\"",
        "zone = \"example.org.\"\nbogus = 1",
    ] {
        assert!(h.apply_config(bad).is_err(), "{bad}");
    }
    let out = h.handle(zero_ttl("www")).unwrap();
    assert_eq!(
        (out.record().name(), out.record().ttl()),
        ("www.example.net.", 120)
    );
}

#[test]
fn a_bad_default_ttl_is_refused_before_the_enricher_is_built() {
    // `new` no longer checks it: the harness (as the host) validates first.
    let e = testing::handler::<Enricher>("zone = \"example.com.\"\ndefault_ttl = 30")
        .err()
        .unwrap();
    assert!(e.message().contains("`default_ttl` must be within"), "{e}");
}
