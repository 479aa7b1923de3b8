//! The written zone passes BIND's `named-checkzone` (Debian package `bind9`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tests::{add, apply, del, zonefile};
use super::*;

/// `named-checkzone` on PATH or in the usual places; `None` (after printing why) when
/// it is missing outside CI. In CI (`CI=true`) a missing binary fails the test.
fn named_checkzone() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("named-checkzone"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let standard = ["/usr/sbin/named-checkzone", "/usr/bin/named-checkzone"].map(PathBuf::from);
    if let Some(found) = on_path.into_iter().chain(standard).find(|p| p.is_file()) {
        return Some(found);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("named-checkzone not found (install the Debian package bind9); CI=true requires it");
    }
    eprintln!("SKIPPED: named-checkzone not found; install bind9 (apt-get install -y bind9) to run this test");
    None
}

fn run(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{text}",
        bin.display()
    );
    text
}

/// Checks `file` as `zone` the plain way, and with host-name checks made fatal (as
/// `named` does for primary zones).
fn check(bin: &Path, zone: &str, file: &Path) -> String {
    let file = file.to_str().unwrap();
    let plain = run(bin, &[zone, file]);
    assert!(plain.contains("OK"), "{plain}");
    run(bin, &["-k", "fail", "-i", "full", zone, file])
}

#[test]
fn named_checkzone_accepts_the_zone() {
    let Some(bin) = named_checkzone() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.com.zone");
    let h = zonefile(&path, "");
    let long = format!("{}é{}", "0123456789".repeat(30), "z".repeat(300));
    apply(
        &h,
        vec![
            add("@", "A", &["192.0.2.1"]),
            add("@", "AAAA", &["2001:DB8::1"]),
            add("@", "MX", &["10 mail", "20 mail.other.org."]),
            add("mail", "A", &["192.0.2.25"]),
            add("www", "A", &["192.0.2.80", "192.0.2.81"]),
            add("www", "AAAA", &["2001:db8::80"]),
            add("ftp", "CNAME", &["www"]),
            add("*.apps", "A", &["192.0.2.90"]),
            add("sub", "NS", &["ns.sub", "ns.provider.net."]),
            add("ns.sub", "A", &["192.0.2.53"]),
            add(
                "_sip._tcp",
                "SRV",
                &["0 5 5060 sip", "10 0 5061 sip.other.org."],
            ),
            add("sip", "AAAA", &["2001:db8::5060"]),
            add("nomail", "MX", &["0 ."]),
            add("ptr", "PTR", &["www"]),
            add("_dmarc", "TXT", &["v=DMARC1; p=none"]),
            add(
                "tricky",
                "TXT",
                &[
                    r#"quote " backslash \ semicolon ; parens ( ) dollar $"#,
                    "tab\tnl\ndel\u{7f}",
                    "",
                    &long,
                ],
            ),
            add("gone", "A", &["192.0.2.99"]),
        ],
    );
    apply(
        &h,
        vec![
            del("gone", "A"),
            add("www", "A", &["192.0.2.82"]),
            add("ftp", "CNAME", &["mail"]),
            add("spf", "TXT", &["\"v=spf1 mx -all\""]),
            add("spf2", "TXT", &[r#""v=spf1 include:x" "-all""#]),
        ],
    );
    let out = check(&bin, "example.com", &path);
    assert!(
        out.contains(&format!("loaded serial {}", today_serial() + 2)),
        "{out}"
    );

    // The TXT data BIND reads is the data we were given: BIND's own rendering of the
    // loaded zone quotes it exactly as we did.
    let compile = bin.with_file_name("named-compilezone");
    if compile.is_file() {
        let dump = dir.path().join("dump");
        let file = path.to_str().unwrap();
        run(
            &compile,
            &["-o", dump.to_str().unwrap(), "example.com", file],
        );
        let dumped = fs::read_to_string(&dump).unwrap();
        assert!(dumped.contains(&zone_format::zone_txt(&long)), "{dumped}");
        // Character-strings given separately are kept separate.
        assert!(dumped.contains(r#""v=spf1 include:x" "-all""#), "{dumped}");
        assert!(
            dumped.contains(r#""quote \" backslash \\ semicolon ; parens ( ) dollar $""#),
            "{dumped}"
        );
        assert!(dumped.contains(r#""tab\009nl\010del\127""#), "{dumped}");
    }
}

#[test]
fn named_checkzone_accepts_a_reverse_zone() {
    let Some(bin) = named_checkzone() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reverse.zone");
    let cfg = format!(
        "zone = \"2.0.192.in-addr.arpa.\"\npath = {:?}\nprimary_ns = \"ns1.example.com.\"\n\
         hostmaster = \"hostmaster.example.com.\"",
        path.display().to_string()
    );
    let h = gordon_plugin_api::testing::handler::<ZoneFile>(&cfg).unwrap();
    apply(
        &h,
        vec![
            add("1", "PTR", &["www.example.com."]),
            add("25", "PTR", &["mail.example.com."]),
        ],
    );
    check(&bin, "2.0.192.in-addr.arpa", &path);
}

#[test]
fn named_checkzone_accepts_the_largest_record_sets_we_accept() {
    let Some(bin) = named_checkzone() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.com.zone");
    let h = zonefile(&path, "");
    let addrs: Vec<String> = (0..100).map(|i| format!("192.0.2.{i}")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let longest = "x".repeat(rdata::MAX_TXT_BYTES);
    // 65 282 + 230 bytes: exactly `event_json::MAX_RRSET_DATA`.
    let rest = "y".repeat(227);
    apply(
        &h,
        vec![
            add("many", "A", &refs),
            add("big", "TXT", &[&longest, &rest]),
        ],
    );
    let one_more = "y".repeat(228);
    assert!(h.handle(add("big", "TXT", &[&longest, &one_more])).is_err());
    check(&bin, "example.com", &path);
}
