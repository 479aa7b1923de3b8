//! Validation and canonical forms of names, TTLs and record data.
//!
//! Both plugins use these rules: the enricher to normalise messages, the zone-file
//! publisher to re-check what it is about to write (a message may reach it without
//! passing the enricher, and nothing unchecked may end up in the file).
//!
//! First, every name and rrdata passes the checks every event source runs
//! (`gordon_plugin_api::event_json`: no whitespace in names, no IP address where a
//! host name belongs, no NS at a wildcard, at most 100 records and 65 512 bytes of
//! TXT data in a set), so that a message from a source that does not run them is held
//! to the same rules. Then names are made absolute and lowercase and checked against
//! the zone: on top of the general rule (labels of 1 to 63 letters, digits, `-` and
//! `_`, at most 253 characters), names that BIND checks as host names
//! (`check-names`, which `named` enforces for primary zones) must be host names:
//! letters, digits and inner hyphens. That applies to the owners of A, AAAA and MX
//! records, to NS, MX and SRV targets, and to PTR targets in reverse zones.
//!
//! TXT data is read with `event_json::txt_strings` into its character-strings and
//! kept in the canonical form `event_json::txt_rrdata` writes: the text itself when
//! it is one string (or a long text's 255-byte split) that does not start with `"`,
//! otherwise each string quoted (`"v=spf1 include:x" "-all"`). Read again, that form
//! gives the same strings, so a message that passes the enricher and then the
//! zone-file publisher is decoded once, not twice.

use std::net::{Ipv4Addr, Ipv6Addr};

use gordon_plugin_api::event_json;
use gordon_plugin_api::{PluginError, RecordType, ResourceRecord};

/// The smallest TTL an event may carry.
pub const MIN_TTL: u32 = 60;
/// The largest TTL an event may carry.
pub const MAX_TTL: u32 = 86_400;
/// The longest TXT data accepted, in bytes (255 character-strings of 255 bytes).
pub const MAX_TXT_BYTES: usize = event_json::MAX_TXT_BYTES;

/// The record types the plugins handle (SOA is recognised but refused).
pub(crate) const SUPPORTED: [RecordType; 8] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SRV,
    RecordType::TXT,
];

/// How strictly the labels of a name are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Letters, digits, `-` and `_`.
    Dns,
    /// A host name: letters, digits and hyphens, not first or last in a label.
    Host,
}

/// Makes `raw` absolute and lowercase: `@` is the apex, a name without a trailing dot
/// is relative to `zone`. Does not check it (whitespace is kept, for the checks to
/// refuse).
pub(crate) fn qualify(raw: &str, zone: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    if lower == "@" {
        zone.to_owned()
    } else if lower.ends_with('.') {
        lower
    } else if zone == "." {
        format!("{lower}.")
    } else {
        format!("{lower}.{zone}")
    }
}

/// Whether absolute `name` is `zone` or below it.
pub(crate) fn in_zone(name: &str, zone: &str) -> bool {
    zone == "." || name == zone || name.ends_with(&format!(".{zone}"))
}

/// Checks an absolute name; `wildcard` allows `*` as its first label. Returns why it
/// is invalid.
pub(crate) fn check_name(name: &str, rule: Rule, wildcard: bool) -> Result<(), String> {
    if name == "." {
        return Ok(());
    }
    let Some(body) = name.strip_suffix('.') else {
        return Err("not an absolute name".to_owned());
    };
    if body.len() > 253 {
        return Err(format!("longer than 253 characters ({})", body.len()));
    }
    for (i, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err("empty label".to_owned());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if wildcard && i == 0 && label == "*" {
            continue;
        }
        match rule {
            Rule::Dns => {
                if !label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!(
                        "label {label:?} may only hold letters, digits, '-' and '_'"
                    ));
                }
            }
            Rule::Host => {
                let ok = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-');
                if !ok {
                    return Err(format!(
                        "label {label:?} is not a host name label (letters, digits and inner hyphens)"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Qualifies and checks a name given in the configuration under `key`.
pub(crate) fn config_name(
    raw: &str,
    zone: &str,
    rule: Rule,
    key: &str,
) -> Result<String, PluginError> {
    let name = qualify(raw, zone);
    if raw.trim().is_empty() {
        return Err(PluginError::new(format!("`{key}` must not be empty")));
    }
    check_name(&name, rule, false)
        .map_err(|why| PluginError::new(format!("`{key}`: invalid name {raw:?}: {why}")))?;
    Ok(name)
}

/// Refuses SOA and the types the plugins do not handle.
pub(crate) fn check_type(rtype: RecordType, name: &str) -> Result<(), PluginError> {
    if rtype == RecordType::SOA {
        return Err(PluginError::new(format!(
            "cannot change the SOA of {name}: SOA records are managed by the zone publisher"
        )));
    }
    if !SUPPORTED.contains(&rtype) {
        return Err(PluginError::new(format!(
            "unsupported record type {rtype} for {name}"
        )));
    }
    Ok(())
}

/// The rule for the owner name of a record of `rtype`.
fn owner_rule(rtype: RecordType) -> Rule {
    if [RecordType::A, RecordType::AAAA, RecordType::MX].contains(&rtype) {
        Rule::Host
    } else {
        Rule::Dns
    }
}

/// Qualifies and checks the owner name of a record of `rtype`: valid, and `zone` or
/// inside it.
pub(crate) fn owner(raw: &str, rtype: RecordType, zone: &str) -> Result<String, PluginError> {
    if raw.trim().is_empty() {
        return Err(PluginError::new(format!("empty name for a {rtype} record")));
    }
    let invalid =
        |why: String| PluginError::new(format!("invalid name {raw:?} for a {rtype} record: {why}"));
    event_json::check_owner(raw, rtype).map_err(invalid)?;
    let name = qualify(raw, zone);
    check_name(&name, owner_rule(rtype), true).map_err(invalid)?;
    if !in_zone(&name, zone) {
        return Err(PluginError::new(format!(
            "name {name} is outside zone {zone}"
        )));
    }
    Ok(name)
}

/// Checks a TTL, filling in `default_ttl` for 0 ("not set by the producer").
pub(crate) fn ttl(
    ttl: u32,
    default_ttl: u32,
    name: &str,
    rtype: RecordType,
) -> Result<u32, PluginError> {
    match ttl {
        0 => Ok(default_ttl),
        MIN_TTL..=MAX_TTL => Ok(ttl),
        _ => Err(PluginError::new(format!(
            "ttl {ttl} of {name} {rtype} is outside {MIN_TTL}..={MAX_TTL}"
        ))),
    }
}

/// A domain name in record data: qualified with `zone` when relative.
fn target(raw: &str, zone: &str, rule: Rule, root_ok: bool) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty name".to_owned());
    }
    let name = qualify(raw, zone);
    if name == "." && !root_ok {
        return Err("the root name is not allowed here".to_owned());
    }
    check_name(&name, rule, false)?;
    Ok(name)
}

fn number(field: &str, what: &str) -> Result<u16, String> {
    field
        .parse::<u16>()
        .map_err(|_| format!("{what} {field:?} is not a number in 0..=65535"))
}

/// Whether `owner` is in a reverse-mapping zone, where PTR targets are host names.
fn is_reverse(owner: &str) -> bool {
    owner.ends_with(".in-addr.arpa.") || owner.ends_with(".ip6.arpa.")
}

/// Validates one rrdata of type `rtype` at `owner` and returns its canonical text.
pub(crate) fn canonical(
    rtype: RecordType,
    raw: &str,
    owner: &str,
    zone: &str,
) -> Result<String, String> {
    event_json::check_rrdata(rtype, raw)?;
    let text = match rtype {
        RecordType::A | RecordType::AAAA => raw.trim(),
        _ => raw,
    };
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    match rtype {
        RecordType::A => text
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| "not an IPv4 address".to_owned()),
        RecordType::AAAA => text
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| "not an IPv6 address".to_owned()),
        RecordType::CNAME => target(text, zone, Rule::Dns, false),
        RecordType::NS => target(text, zone, Rule::Host, false),
        RecordType::PTR => {
            let rule = if is_reverse(owner) {
                Rule::Host
            } else {
                Rule::Dns
            };
            target(text, zone, rule, false)
        }
        RecordType::MX => match fields.as_slice() {
            [pref, exchange] => {
                let pref = number(pref, "preference")?;
                Ok(format!(
                    "{pref} {}",
                    target(exchange, zone, Rule::Host, true)?
                ))
            }
            _ => Err("expected \"<preference> <exchange>\"".to_owned()),
        },
        RecordType::SRV => match fields.as_slice() {
            [priority, weight, port, tgt] => Ok(format!(
                "{} {} {} {}",
                number(priority, "priority")?,
                number(weight, "weight")?,
                number(port, "port")?,
                target(tgt, zone, Rule::Host, true)?
            )),
            _ => Err("expected \"<priority> <weight> <port> <target>\"".to_owned()),
        },
        // `check_rrdata` has read the text and checked its length.
        RecordType::TXT => {
            event_json::txt_strings(raw).map(|strings| event_json::txt_rrdata(&strings))
        }
        other => Err(format!("unsupported record type {other}")),
    }
}

/// A record set after normalisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Normalised {
    /// Absolute, lowercase owner name.
    pub name: String,
    /// The record type.
    pub rtype: RecordType,
    /// The TTL, default filled in.
    pub ttl: u32,
    /// Canonical rrdatas, duplicates removed, in first-seen order.
    pub rrdatas: Vec<String>,
    /// How many duplicates were removed.
    pub duplicates: usize,
}

/// Normalises and validates a whole record set against `zone`.
pub(crate) fn normalise(
    record: &ResourceRecord,
    zone: &str,
    default_ttl: u32,
) -> Result<Normalised, PluginError> {
    let rtype = record.rtype();
    check_type(rtype, record.name())?;
    let name = owner(record.name(), rtype, zone)?;
    let ttl = ttl(record.ttl(), default_ttl, &name, rtype)?;
    if record.rrdatas().len() == 0 {
        return Err(PluginError::new(format!("no rrdatas for {name} {rtype}")));
    }
    let mut rrdatas: Vec<String> = Vec::with_capacity(record.rrdatas().len());
    let mut duplicates = 0;
    for raw in record.rrdatas() {
        let data = canonical(rtype, raw, &name, zone).map_err(|why| {
            PluginError::new(format!("invalid {rtype} rrdata {raw:?} for {name}: {why}"))
        })?;
        if rrdatas.contains(&data) {
            duplicates += 1;
        } else {
            rrdatas.push(data);
        }
    }
    event_json::check_rrset_size(rtype, &rrdatas)
        .map_err(|why| PluginError::new(format!("{name} {rtype}: {why}")))?;
    if rtype == RecordType::CNAME && rrdatas.len() != 1 {
        return Err(PluginError::new(format!(
            "CNAME {name} must have exactly one rrdata, got {}",
            rrdatas.len()
        )));
    }
    Ok(Normalised {
        name,
        rtype,
        ttl,
        rrdatas,
        duplicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const Z: &str = "example.com.";

    #[test]
    fn names_are_qualified_and_checked() {
        assert_eq!(qualify("WWW", Z), "www.example.com.");
        assert_eq!(qualify("@", Z), Z);
        assert_eq!(qualify("a.b.", Z), "a.b.");
        assert_eq!(qualify("a", "."), "a.");
        assert!(in_zone("a.example.com.", Z) && in_zone(Z, Z));
        assert!(!in_zone("badexample.com.", Z));
        assert!(check_name("*.w.example.com.", Rule::Host, true).is_ok());
        assert!(check_name("a*.example.com.", Rule::Dns, true).is_err());
        assert!(check_name("a..example.com.", Rule::Dns, false).is_err());
        assert!(check_name(&format!("{}.com.", "a".repeat(64)), Rule::Dns, false).is_err());
        let max = format!("{}com.", "abcdefghi.".repeat(25));
        assert!(check_name(&max, Rule::Dns, false).is_ok(), "{}", max.len());
        let long = format!("x{max}");
        assert!(check_name(&long, Rule::Dns, false)
            .unwrap_err()
            .contains("253"));
        assert!(check_name("_sip._tcp.example.com.", Rule::Dns, false).is_ok());
        assert!(check_name("_sip.example.com.", Rule::Host, false).is_err());
        assert!(check_name("-a.example.com.", Rule::Host, false).is_err());
        assert!(check_name("a b.example.com.", Rule::Dns, false).is_err());
    }

    #[test]
    fn txt_is_read_once_into_a_form_that_reads_the_same_again() {
        let c = |s: &str| canonical(RecordType::TXT, s, "t.example.com.", Z);
        assert_eq!(c("\"hello\"").unwrap(), "hello");
        assert_eq!(c(" spaced ").unwrap(), " spaced ");
        // Each quoted string stays its own character-string.
        assert_eq!(c(r#""a" "b""#).unwrap(), r#""a" "b""#);
        let spf = c(r#""v=spf1 include:x"  "-all""#).unwrap();
        assert_eq!(spf, r#""v=spf1 include:x" "-all""#);
        assert_eq!(c(&spf).unwrap(), spf);
        assert!(c(&format!("\"{}\"", "x".repeat(256)))
            .unwrap_err()
            .contains("at most 255"));
        // Text that starts with a quote stays quoted, so a second pass changes nothing.
        let once = c(r#""\"x\"""#).unwrap();
        assert_eq!(once, r#""\"x\"""#);
        assert_eq!(c(&once).unwrap(), once);
        // Ambiguous: not one or more quoted strings.
        assert!(c("\"\"x\"\"").unwrap_err().contains("quoted strings"));
        assert!(c("\"").unwrap_err().contains("not closed"));
        assert!(c(&"x".repeat(MAX_TXT_BYTES + 1)).is_err());
    }

    #[test]
    fn names_are_not_trimmed_and_targets_are_not_addresses() {
        for raw in [" www", "www\n", "w w"] {
            let e = owner(raw, RecordType::A, Z).unwrap_err().to_string();
            assert!(e.contains("whitespace"), "{raw:?}: {e}");
            let e = canonical(RecordType::CNAME, raw, "c.example.com.", Z).unwrap_err();
            assert!(
                e.contains("whitespace") || e.contains("control character"),
                "{raw:?}: {e}"
            );
        }
        for (rtype, data) in [
            (RecordType::NS, "192.0.2.1"),
            (RecordType::CNAME, "192.0.2.1"),
            (RecordType::MX, "10 192.0.2.1"),
            (RecordType::SRV, "0 0 1 2001:db8::1"),
        ] {
            let e = canonical(rtype, data, "x.example.com.", Z).unwrap_err();
            assert!(e.contains("is an IP address"), "{rtype}: {e}");
        }
        let e = owner("*.sub", RecordType::NS, Z).unwrap_err().to_string();
        assert!(e.contains("wildcard"), "{e}");
        assert_eq!(
            owner("*.sub", RecordType::A, Z).unwrap(),
            "*.sub.example.com."
        );
    }

    #[test]
    fn record_sets_are_limited_in_count_and_size() {
        let mut rr = ResourceRecord::new("www", RecordType::A, ["10.0.0.1"]);
        let addrs: Vec<String> = (0..101).map(|i| format!("10.0.1.{i}")).collect();
        rr.set_rrdatas(&addrs[..100]);
        assert_eq!(normalise(&rr, Z, 300).unwrap().rrdatas.len(), 100);
        rr.set_rrdatas(&addrs);
        let e = normalise(&rr, Z, 300).unwrap_err().to_string();
        assert_eq!(
            e,
            "www.example.com. A: 101 records in one record set; at most 100 are allowed"
        );
        // Duplicates are removed before counting.
        let mut dup = addrs[..100].to_vec();
        dup.push("10.0.1.0".to_owned());
        rr.set_rrdatas(&dup);
        assert!(normalise(&rr, Z, 300).is_ok());
        let half = "x".repeat(40_000);
        let txt = ResourceRecord::new("t", RecordType::TXT, [half.clone(), format!("{half}y")]);
        let e = normalise(&txt, Z, 300).unwrap_err().to_string();
        assert!(e.contains("bytes of record data"), "{e}");
    }
}
