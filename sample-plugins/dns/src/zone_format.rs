//! The RFC 1035 master-file text that `dns.zonefile` writes and reads back.
//!
//! The file has two sections. The first, below [`MANAGED_MARK`], holds what comes
//! from the configuration: the SOA, the apex NS records and the glue addresses of
//! in-zone name servers. The second, below [`RECORDS_MARK`], holds the records that
//! events put there. At start-up only the SOA serial and the records section are
//! read back; the managed section is rebuilt from the configuration.
//!
//! Owners are written relative to `$ORIGIN` (`@` for the apex), record data with
//! absolute names, one line per rrdata. TXT data is held as its canonical rrdata
//! (`event_json::txt_rrdata`) and written as its character-strings, each quoted and
//! escaped on its own (`event_json::quote_txt`), so that `"v=spf1 include:x" "-all"`
//! stays two strings. It is read back with `event_json::txt_strings`, the decoder
//! every event source uses.

use std::io;
use std::sync::Arc;

use imbl::OrdMap;

use gordon_plugin_api::event_json::quote_txt;
use gordon_plugin_api::{event_json, RecordType};

use crate::rdata;

/// The comment line that opens the configuration-managed section.
pub(crate) const MANAGED_MARK: &str =
    "; -- managed: SOA, apex NS and glue (from the configuration) --";
/// The comment line that opens the records section.
pub(crate) const RECORDS_MARK: &str = "; -- records --";

/// One record set of the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RRset {
    /// Absolute owner name.
    pub name: String,
    /// Time to live.
    pub ttl: u32,
    /// Canonical record data (TXT: the canonical rrdata of its strings).
    pub rrdatas: Vec<String>,
}

/// What orders the zone: the owner's labels right to left (DNS canonical order),
/// then the type code. The labels are held as one string, right to left, joined by
/// NUL (which no label holds), so that comparing two of them bytewise compares the
/// label sequences, and a key is cheap to clone.
pub(crate) type Key = (Arc<str>, RecordType);

/// The record sets of a zone, in file order. A persistent map: a snapshot for the
/// file writer is a clone that costs nothing, and the next changes copy only the
/// nodes they touch.
pub(crate) type Records = OrdMap<Key, Arc<RRset>>;

/// The key of the record set `(name, rtype)`.
pub(crate) fn key(name: &str, rtype: RecordType) -> Key {
    let mut sort = String::with_capacity(name.len());
    for (i, label) in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .rev()
        .enumerate()
    {
        if i > 0 {
            sort.push('\0');
        }
        sort.push_str(label);
    }
    (Arc::from(sort), rtype)
}

/// TXT data in the zone file's form: its character-strings, each quoted.
pub(crate) fn zone_txt(rrdata: &str) -> String {
    // Held data is canonical, so it reads; anything else is kept as one text.
    event_json::txt_strings(rrdata).map_or_else(|_| quote_txt(&[rrdata]), |s| quote_txt(&s))
}

/// The SOA fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Soa {
    pub mname: String,
    pub rname: String,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

/// The configuration-managed part of the file.
#[derive(Clone, Debug)]
pub(crate) struct Header<'a> {
    pub origin: &'a str,
    pub default_ttl: u32,
    pub soa: Soa,
    pub ns: &'a [String],
    /// Glue: (absolute name, A or AAAA, address).
    pub glue: Vec<(&'a str, RecordType, &'a str)>,
}

/// `name` relative to `origin`: `@` for the apex; unchanged if outside it.
pub(crate) fn relative<'a>(name: &'a str, origin: &str) -> &'a str {
    if name == origin {
        "@"
    } else if origin == "." {
        name.strip_suffix('.').unwrap_or(name)
    } else {
        match name.strip_suffix(origin).and_then(|s| s.strip_suffix('.')) {
            Some(rel) if !rel.is_empty() => rel,
            _ => name,
        }
    }
}

fn push_line(
    out: &mut impl io::Write,
    owner: &str,
    ttl: u32,
    rtype: RecordType,
    data: &str,
) -> io::Result<()> {
    writeln!(out, "{owner} {ttl} IN {rtype} {data}")
}

/// Renders the whole file.
pub(crate) fn render(h: &Header<'_>, records: &Records) -> String {
    let mut out = Vec::new();
    // Writing to a `Vec` cannot fail, and every part written is UTF-8.
    let _ = write_to(&mut out, h, records);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes the whole file to `out` (a buffered file: the text of a large zone is
/// never held in memory at once).
pub(crate) fn write_to(
    out: &mut impl io::Write,
    h: &Header<'_>,
    records: &Records,
) -> io::Result<()> {
    let origin = h.origin;
    writeln!(
        out,
        "; Zone {origin} written by the gordon dns.zonefile plugin."
    )?;
    writeln!(
        out,
        "; At start-up it reads back the SOA serial and the records section only."
    )?;
    writeln!(out, "$ORIGIN {origin}")?;
    writeln!(out, "$TTL {}", h.default_ttl)?;
    writeln!(out, "{MANAGED_MARK}")?;
    let s = &h.soa;
    let soa = format!(
        "{} {} {} {} {} {} {}",
        s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
    );
    push_line(out, "@", h.default_ttl, RecordType::SOA, &soa)?;
    for ns in h.ns {
        push_line(out, "@", h.default_ttl, RecordType::NS, ns)?;
    }
    for (name, rtype, addr) in &h.glue {
        push_line(out, relative(name, origin), h.default_ttl, *rtype, addr)?;
    }
    writeln!(out, "{RECORDS_MARK}")?;
    for ((_, rtype), set) in records {
        let owner = relative(&set.name, origin);
        for data in &set.rrdatas {
            if *rtype == RecordType::TXT {
                push_line(out, owner, set.ttl, *rtype, &zone_txt(data))?;
            } else {
                push_line(out, owner, set.ttl, *rtype, data)?;
            }
        }
    }
    Ok(())
}

/// A record read from the records section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedRecord {
    /// 1-based line number.
    pub line: usize,
    pub name: String,
    pub rtype: RecordType,
    pub ttl: u32,
    /// The data: TXT strings decoded into their canonical rrdata, other fields joined
    /// by one space.
    pub data: String,
}

/// What [`parse`] reads back.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parsed {
    pub origin: Option<String>,
    pub serial: Option<u32>,
    pub records: Vec<ParsedRecord>,
}

/// Takes the next word off `rest`: `None` at the end of the line or at a `;`
/// comment.
fn next_word<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let s = rest.trim_start_matches([' ', '\t', '\r']);
    if s.is_empty() || s.starts_with(';') {
        *rest = "";
        return None;
    }
    let end = s.find([' ', '\t', '\r', ';']).unwrap_or(s.len());
    let (word, tail) = s.split_at(end);
    *rest = tail;
    Some(word)
}

/// Parses a file in the format [`render`] writes. The SOA gives the serial; apex NS
/// records and the managed section are skipped (they come from the configuration).
/// Errors say `line N: why`.
pub(crate) fn parse(text: &str) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut managed = false;
    let mut last_owner: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let at = |why: String| format!("line {n}: {why}");
        match line.trim() {
            MANAGED_MARK => managed = true,
            RECORDS_MARK => managed = false,
            _ => {}
        }
        let mut rest = line;
        let Some(first) = next_word(&mut rest) else {
            continue;
        };
        let mut word =
            |what: &str| next_word(&mut rest).ok_or_else(|| at(format!("missing {what}")));
        if first.starts_with('$') {
            let arg = word("directive argument")?;
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" if arg.ends_with('.') => parsed.origin = Some(arg.to_ascii_lowercase()),
                "$ORIGIN" => return Err(at(format!("$ORIGIN {arg} is not absolute"))),
                "$TTL" => {
                    arg.parse::<u32>()
                        .map_err(|_| at(format!("bad $TTL {arg}")))?;
                }
                other => return Err(at(format!("unsupported directive {other}"))),
            }
            continue;
        }
        let origin = parsed
            .origin
            .clone()
            .ok_or_else(|| at("record before $ORIGIN".to_owned()))?;
        let (owner, ttl) = if line.starts_with([' ', '\t']) {
            let owner = last_owner
                .clone()
                .ok_or_else(|| at("no previous owner".to_owned()))?;
            (owner, first)
        } else {
            (rdata::qualify(first, &origin), word("ttl")?)
        };
        last_owner = Some(owner.clone());
        let ttl = ttl
            .parse::<u32>()
            .map_err(|_| at(format!("bad ttl {ttl}")))?;
        let class = word("class")?;
        if !class.eq_ignore_ascii_case("IN") {
            return Err(at(format!("class {class} is not IN")));
        }
        let tname = word("type")?;
        let rtype =
            RecordType::from_name(tname).ok_or_else(|| at(format!("unsupported type {tname}")))?;
        let data = if rtype == RecordType::TXT {
            // The rest of the line is the quoted strings, read by the one TXT decoder.
            let quoted = rest.trim_matches([' ', '\t', '\r']);
            if !quoted.starts_with('"') {
                return Err(at(format!("TXT data {quoted} is not quoted")));
            }
            event_json::txt_rrdata(&event_json::txt_strings(quoted).map_err(at)?)
        } else {
            let mut words = Vec::new();
            while let Some(w) = next_word(&mut rest) {
                words.push(w);
            }
            words.join(" ")
        };
        if rtype == RecordType::SOA {
            if owner != origin || parsed.serial.is_some() {
                return Err(at("unexpected SOA".to_owned()));
            }
            let serial = data.split(' ').nth(2).unwrap_or_default();
            let serial = serial
                .parse::<u32>()
                .map_err(|_| at(format!("bad SOA serial {serial:?}")))?;
            parsed.serial = Some(serial);
        } else if !(managed || rtype == RecordType::NS && owner == origin) {
            parsed.records.push(ParsedRecord {
                line: n,
                name: owner,
                rtype,
                ttl,
                data,
            });
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_is_escaped_and_split() {
        assert_eq!(zone_txt(""), r#""""#);
        assert_eq!(zone_txt(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(zone_txt("é\n\t\u{7f}"), r#""\195\169\010\009\127""#);
        assert_eq!(zone_txt("; ( ) $"), r#""; ( ) $""#);
        let long = "x".repeat(600);
        let q = zone_txt(&long);
        let parts: Vec<&str> = q.split(' ').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].len(), 257);
        assert_eq!(parts[1].len(), 257);
        assert_eq!(parts[2], format!("\"{}\"", "x".repeat(90)));
        // Splitting counts raw bytes, before escaping.
        let q = zone_txt(&format!("{}\"", "y".repeat(255)));
        assert_eq!(q, format!("\"{}\" \"\\\"\"", "y".repeat(255)));
        // Strings given as quoted strings are written as they are.
        let spf = r#""v=spf1 include:x" "-all""#;
        assert_eq!(zone_txt(spf), spf);
        assert_eq!(zone_txt(r#""a" "\"b""#), r#""a" "\"b""#);
    }

    #[test]
    fn lines_decode_txt_escapes_and_stop_at_comments() {
        let records = |body: &str| parse(&format!("$ORIGIN example.com.\n{body}\n"));
        let r = records(r#"t 60 IN TXT "a\"b\\c\195\169;" "x""#).unwrap();
        assert_eq!(r.records[0].data, r#""a\"b\\c\195\169;" "x""#);
        let r = records(r#"t 60 IN TXT "a\"b\\c\195\169;""#).unwrap();
        assert_eq!(r.records[0].data, "a\"b\\cé;");
        let r = records(r#"t 60 IN TXT "v=spf1 include:x"   "-all""#).unwrap();
        assert_eq!(r.records[0].data, r#""v=spf1 include:x" "-all""#);
        let r = records("a 60 IN MX 10 mail;comment\n  60 IN A 10.0.0.1 ; note").unwrap();
        assert_eq!(r.records[0].data, "10 mail");
        assert_eq!(r.records[1].name, "a.example.com.");
        assert_eq!(r.records[1].data, "10.0.0.1");
        for bad in [
            r#"t 60 IN TXT "open"#,
            r#"t 60 IN TXT "\256""#,
            "t 60 IN TXT x",
        ] {
            assert!(records(bad).unwrap_err().starts_with("line 2: "), "{bad}");
        }
        let mut w = "  www 300 ; c";
        assert_eq!(next_word(&mut w), Some("www"));
        assert_eq!(next_word(&mut w), Some("300"));
        assert_eq!(next_word(&mut w), None);
    }

    #[test]
    fn render_then_parse_round_trips() {
        let ns = vec!["ns1.example.com.".to_owned()];
        let header = Header {
            origin: "example.com.",
            default_ttl: 300,
            soa: Soa {
                mname: "ns1.example.com.".into(),
                rname: "hostmaster.example.com.".into(),
                serial: 2_026_010_203,
                refresh: 3600,
                retry: 900,
                expire: 1_209_600,
                minimum: 300,
            },
            ns: &ns,
            glue: vec![("ns1.example.com.", RecordType::A, "127.0.0.1")],
        };
        let mut records = Records::new();
        let tricky = format!("q\"b\\é{}", "z".repeat(300));
        for (name, rtype, data) in [
            ("www.example.com.", RecordType::A, "10.0.0.1"),
            ("example.com.", RecordType::MX, "10 mail.example.com."),
            ("t.example.com.", RecordType::TXT, tricky.as_str()),
            (
                "spf.example.com.",
                RecordType::TXT,
                r#""v=spf1 include:x" "-all""#,
            ),
        ] {
            let set = RRset {
                name: name.into(),
                ttl: 120,
                rrdatas: vec![data.into()],
            };
            records.insert(key(name, rtype), Arc::new(set));
        }
        let text = render(&header, &records);
        assert!(
            text.contains("\nspf 120 IN TXT \"v=spf1 include:x\" \"-all\"\n"),
            "{text}"
        );
        assert!(text.contains("\n@ 300 IN SOA ns1.example.com. hostmaster.example.com. 2026010203 3600 900 1209600 300\n"));
        assert!(
            text.contains("\n@ 120 IN MX 10 mail.example.com.\n"),
            "{text}"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.origin.as_deref(), Some("example.com."));
        assert_eq!(parsed.serial, Some(2_026_010_203));
        let got: Vec<(String, RecordType, u32, String)> = parsed
            .records
            .into_iter()
            .map(|r| (r.name, r.rtype, r.ttl, r.data))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "example.com.".into(),
                    RecordType::MX,
                    120,
                    "10 mail.example.com.".into()
                ),
                (
                    "spf.example.com.".into(),
                    RecordType::TXT,
                    120,
                    r#""v=spf1 include:x" "-all""#.into()
                ),
                (
                    "t.example.com.".into(),
                    RecordType::TXT,
                    120,
                    tricky.clone()
                ),
                (
                    "www.example.com.".into(),
                    RecordType::A,
                    120,
                    "10.0.0.1".into()
                ),
            ]
        );
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse("$ORIGIN example.com.\nwww 300 IN HINFO x y\n").unwrap_err();
        assert_eq!(e, "line 2: unsupported type HINFO");
        assert_eq!(
            parse("www 300 IN A 1.2.3.4").unwrap_err(),
            "line 1: record before $ORIGIN"
        );
        assert!(parse("$INCLUDE x")
            .unwrap_err()
            .contains("unsupported directive"));
        assert_eq!(relative("a.b.example.com.", "example.com."), "a.b");
        assert_eq!(relative("other.org.", "example.com."), "other.org.");
        assert_eq!(relative("a.", "."), "a");
    }
}
