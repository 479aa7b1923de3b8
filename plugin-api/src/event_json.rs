//! The event JSON format of the original service, for sources that receive it.
//!
//! ```json
//! {"action": "additions", "timestamp": "2026-11-22T10:00:00Z",
//!  "resourceRecords": {"name": "host.example.com.", "type": "A",
//!                      "rrdatas": ["10.1.2.3"], "ttl": 300}}
//! ```
//!
//! `action` is `additions` or `deletions`; `type` one of A AAAA CNAME MX NS PTR SOA
//! SRV TXT; `rrdatas` one to [`MAX_RRSET_RECORDS`] unique strings; `ttl` 60..=86400,
//! optional (a message without one carries TTL 0, "not set", and the enricher or
//! publisher fills the default). Fields this format does not name are kept, not
//! rejected, at the top level of an event; inside `resourceRecords` only `kind`
//! (which Cloud DNS writes) is allowed besides them, and any other key is refused by
//! name, so that a misspelt `"TTL"` is not silently dropped. A key given twice in
//! any object is refused too (JSON parsers disagree on which one wins). A body may
//! hold one event or an array of them. Parsing is all or nothing: one bad event
//! rejects the whole body, so a producer never has to guess which half was accepted.
//!
//! Every source runs the same checks, so an event one source accepts, every source
//! accepts. They refuse what is malformed, ambiguous, or could not be loaded into any
//! zone, whatever its name ([`check_owner`], [`check_rrdata`], [`check_rrset_size`]):
//!
//! - names (owners and the targets of CNAME, NS, PTR, MX and SRV) with whitespace or
//!   control characters, empty labels, labels over 63 or names over 253 characters;
//! - targets that are IP addresses (`"10 192.0.2.1"`: an MX needs a host name, and
//!   the address would otherwise be read as a name relative to the zone);
//! - NS records at a wildcard name;
//! - more than [`MAX_RRSET_RECORDS`] records in one set, or TXT sets with more data
//!   than [`MAX_RRSET_DATA`];
//! - TXT data that starts with `"` but is not one or more quoted strings.
//!
//! Whether the data is right for its type (an A record holds an IPv4 address), and
//! anything that depends on the zone or its other records, is checked by the handlers
//! that know them (`dns.enricher`, `dns.zonefile`, `dns.rfc2136`): a message they
//! refuse is dropped, never published.
//!
//! **TXT data** is read in one place, [`txt_strings`], into its character-strings:
//! an rrdata that does not start with `"` is the text itself, byte for byte (split
//! into strings of 255 bytes only when it is longer); one that does is presentation
//! format (RFC 1035 §5.1), as Cloud DNS writes it: one or more quoted strings
//! separated by spaces, with `\"`, `\\` and `\DDD` escapes, each one character-string
//! of at most 255 bytes, kept as given. [`txt_rrdata`] writes strings back in one
//! canonical form that reads back the same: the text itself when that reads back as
//! them, otherwise every string quoted ([`quote_txt`]).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::message::{Action, EventMessage, Phase, RecordType, ResourceRecord};

/// Why an event body was rejected. The text names the event (by index, for an array)
/// and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError(pub String);

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EventError {}

/// Lowest TTL the format accepts.
pub const MIN_TTL: u64 = 60;
/// Highest TTL the format accepts.
pub const MAX_TTL: u64 = 86_400;
/// Most records one record set may hold: BIND 9.18 refuses to load a zone with more
/// records of one type at one name (`max-records-per-type`, default 100).
pub const MAX_RRSET_RECORDS: usize = 100;
/// Most record data one record set may hold, counted as BIND counts it: for each
/// record, its wire length plus 2. BIND 9.18 refuses a zone file holding a larger set
/// ("ran out of space"); measured with `named-checkzone` and `named`.
pub const MAX_RRSET_DATA: usize = 65_512;
/// Longest TXT data of one record, in bytes: 255 character-strings of 255 bytes.
pub const MAX_TXT_BYTES: usize = 255 * 255;
/// Longest label of a name, in bytes.
pub const MAX_LABEL: usize = 63;
/// Longest name, in characters, not counting the final dot.
pub const MAX_NAME: usize = 253;

/// The keys `resourceRecords` may hold.
const RECORD_KEYS: [&str; 5] = ["name", "type", "rrdatas", "ttl", "kind"];

/// Parses a body holding one event or an array of events into messages in `phase`.
/// With `max_age`, an event whose `timestamp` is older is rejected.
///
/// # Errors
/// An [`EventError`] naming the event and field.
pub fn parse_events(
    body: &[u8],
    phase: Phase,
    max_age: Option<Duration>,
) -> Result<Vec<EventMessage>, EventError> {
    let value = strict_json(body)?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(EventError("empty array: no events".into()));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    parse_event(v, phase, max_age)
                        .map_err(|e| EventError(format!("event {i}: {e}")))
                })
                .collect()
        }
        v => parse_event(v, phase, max_age).map(|m| vec![m]),
    }
}

/// Parses one event object. A [`Value`] cannot show a key given twice (the last one
/// won when it was built): to refuse those, parse the bytes with [`parse_events`].
///
/// # Errors
/// An [`EventError`] naming the field.
pub fn parse_event(
    value: Value,
    phase: Phase,
    max_age: Option<Duration>,
) -> Result<EventMessage, EventError> {
    let err = |m: String| EventError(m);
    let Value::Object(mut obj) = value else {
        return Err(err("an event must be a JSON object".into()));
    };
    let action = match obj.remove("action") {
        Some(Value::String(a)) if a == "additions" => Action::Additions,
        Some(Value::String(a)) if a == "deletions" => Action::Deletions,
        Some(other) => {
            return Err(err(format!(
                "`action` must be \"additions\" or \"deletions\", got {other}"
            )))
        }
        None => return Err(err("missing `action`".into())),
    };
    let timestamp = match obj.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(ts)) => {
            let at = parse_rfc3339(&ts).ok_or_else(|| {
                err(format!(
                    "`timestamp` is not a valid time (RFC 3339, or without a zone for UTC): {ts:?}"
                ))
            })?;
            if let Some(max) = max_age {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                if now.saturating_sub(at) > max {
                    return Err(err(format!(
                        "event is too old: `timestamp` {ts} is more than {} s ago",
                        max.as_secs()
                    )));
                }
            }
            Some(ts)
        }
        Some(other) => return Err(err(format!("`timestamp` must be a string, got {other}"))),
    };
    let record = match obj.remove("resourceRecords") {
        Some(Value::Object(rr)) => parse_record(rr)?,
        Some(_) => return Err(err("`resourceRecords` must be an object".into())),
        None => return Err(err("missing `resourceRecords`".into())),
    };
    let mut msg = EventMessage::new(phase, action, record);
    if let Some(ts) = timestamp {
        msg.set_timestamp(ts);
    }
    if !obj.is_empty() {
        msg.set_extra_json(Value::Object(obj).to_string());
    }
    Ok(msg)
}

fn parse_record(mut rr: Map<String, Value>) -> Result<ResourceRecord, EventError> {
    let err = |m: String| EventError(format!("resourceRecords.{m}"));
    let known = |k: &str| matches!(k, "name" | "type" | "rrdatas" | "ttl" | "kind");
    if let Some(key) = rr.keys().find(|k| !known(k)) {
        let hint = RECORD_KEYS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(key))
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        return Err(EventError(format!(
            "resourceRecords: unknown key {key:?}{hint}; the keys are name, type, rrdatas, ttl and kind"
        )));
    }
    let name = match rr.remove("name") {
        Some(Value::String(n)) if !n.is_empty() => n,
        Some(_) => return Err(err("name: must be a non-empty string".into())),
        None => return Err(err("name: missing".into())),
    };
    let rtype = match rr.remove("type") {
        Some(Value::String(t)) => RecordType::from_name(&t).ok_or_else(|| {
            err(format!(
                "type: unsupported type {t:?}, expected one of A AAAA CNAME MX NS PTR SOA SRV TXT"
            ))
        })?,
        Some(_) => return Err(err("type: must be a string".into())),
        None => return Err(err("type: missing".into())),
    };
    check_owner(&name, rtype).map_err(|why| err(format!("name: {why}")))?;
    let rrdatas: Vec<String> = match rr.remove("rrdatas") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(err(format!(
                    "rrdatas: every item must be a string, got {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(err("rrdatas: must be an array of strings".into())),
        None => return Err(err("rrdatas: missing".into())),
    };
    if rrdatas.is_empty() {
        return Err(err("rrdatas: at least one value is required".into()));
    }
    check_rrset_count(rrdatas.len()).map_err(|why| err(format!("rrdatas: {why}")))?;
    let mut data = 0;
    for (i, a) in rrdatas.iter().enumerate() {
        if rrdatas[..i].contains(a) {
            return Err(err(format!("rrdatas: duplicate value {a:?}")));
        }
        data += rrdata_size(rtype, a).map_err(|why| err(format!("rrdatas[{i}]: {why}")))?;
    }
    check_rrset_data(data).map_err(|why| err(format!("rrdatas: {why}")))?;
    let ttl = match rr.remove("ttl") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(t) if (MIN_TTL..=MAX_TTL).contains(&t) => t as u32,
            _ => {
                return Err(err(format!(
                    "ttl: must be an integer from {MIN_TTL} to {MAX_TTL}, got {n}"
                )))
            }
        },
        Some(other) => return Err(err(format!("ttl: must be an integer, got {other}"))),
    };
    match rr.remove("kind") {
        None | Some(Value::String(_)) => {}
        Some(other) => return Err(err(format!("kind: must be a string, got {other}"))),
    }
    let mut record = ResourceRecord::new(&name, rtype, &rrdatas);
    record.set_ttl(ttl);
    Ok(record)
}

/// Parses `body` as JSON, refusing any object that holds a key twice:
/// `serde_json::Value` would silently keep the last one, and other parsers the first.
fn strict_json(body: &[u8]) -> Result<Value, EventError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        if e.is_data() {
            EventError(e.to_string())
        } else {
            EventError(format!("invalid JSON: {e}"))
        }
    })
}

/// Builds a [`Value`] like serde_json's own, but fails on a repeated key. It is as
/// fast: a map insert already finds the slot that tells whether the key is new.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match obj.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(StrictValue)?);
                }
                Entry::Occupied(slot) => {
                    return Err(de::Error::custom(format_args!(
                        "duplicate key {:?}: a key may appear only once in an object",
                        slot.key()
                    )));
                }
            }
        }
        Ok(Value::Object(obj))
    }
}

/// How [`check_name`] and [`check_rrdata`] see a byte: a table lookup per byte is
/// the cheapest test on this path.
const BYTE_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'.' => DOT,
            b' ' | b'\t' => BLANK,
            0..=0x1f | 0x7f..=0xff => OTHER,
            _ => PLAIN,
        };
        b += 1;
    }
    table
};
/// A printable ASCII byte other than `.` and space.
const PLAIN: u8 = 0;
/// `.`.
const DOT: u8 = 1;
/// A space or a tab.
const BLANK: u8 = 2;
/// A control byte or a byte of a non-ASCII character.
const OTHER: u8 = 3;

/// Checks a name as an event gives it (absolute, relative to the zone, or `@`):
/// no whitespace or control characters, no empty label, labels of at most
/// [`MAX_LABEL`] bytes, at most [`MAX_NAME`] characters. Returns why it is invalid.
///
/// # Errors
/// Why the name is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    // One pass over the bytes says whether anything may be wrong, and only then are
    // the reasons worked out: this runs for every name in every event.
    let bytes = name.as_bytes();
    let body = bytes.len() - usize::from(bytes.last() == Some(&b'.'));
    let mut suspect = bytes.is_empty() || body > MAX_NAME;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match BYTE_CLASS[usize::from(b)] {
            PLAIN => {}
            DOT => {
                suspect |= i == start || i - start > MAX_LABEL;
                start = i + 1;
            }
            _ => suspect = true,
        }
    }
    suspect |= bytes.len() - start > MAX_LABEL;
    if !suspect {
        return Ok(());
    }
    name_error(name).map_or(Ok(()), Err)
}

/// Why [`check_name`] refuses `name`, if it does.
fn name_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty name".to_owned());
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        let what = if c.is_whitespace() {
            "whitespace"
        } else {
            "a control character"
        };
        return Some(format!("{name:?} contains {what} ({c:?})"));
    }
    if name == "@" || name == "." {
        return None;
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.len() > MAX_NAME {
        return Some(format!(
            "{name:?} is longer than {MAX_NAME} characters ({})",
            body.len()
        ));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Some(format!("{name:?} has an empty label"));
        }
        if label.len() > MAX_LABEL {
            return Some(format!(
                "label {label:?} is longer than {MAX_LABEL} characters ({})",
                label.len()
            ));
        }
    }
    None
}

/// Whether the owner `name` is a wildcard (`*` or `*.<name>`).
fn is_wildcard(name: &str) -> bool {
    name == "*" || name == "*." || name.starts_with("*.")
}

/// Checks the owner name of a record set of `rtype` ([`check_name`]), and refuses NS
/// records at a wildcard name, which BIND refuses to load.
///
/// # Errors
/// Why the name is refused.
pub fn check_owner(name: &str, rtype: RecordType) -> Result<(), String> {
    check_name(name)?;
    if rtype == RecordType::NS && is_wildcard(name) {
        return Err(format!(
            "{name:?} is a wildcard name, which cannot own NS records"
        ));
    }
    Ok(())
}

/// Checks a domain name inside record data: a name ([`check_name`]) that is not an
/// IP address.
fn check_target(name: &str, what: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    // Only digits and dots, or a colon, can make an address: parse only those.
    let (mut digits_and_dots, mut colon) = (true, false);
    for b in bare.bytes() {
        digits_and_dots &= b.is_ascii_digit() || b == b'.';
        colon |= b == b':';
    }
    let v4 = || digits_and_dots && bare.parse::<Ipv4Addr>().is_ok();
    let v6 = || colon && bare.parse::<Ipv6Addr>().is_ok();
    if v4() || v6() {
        return Err(format!(
            "{what} {name:?} is an IP address, where a host name is required"
        ));
    }
    check_name(name).map_err(|why| format!("{what}: {why}"))
}

/// Checks one rrdata of `rtype` for what needs no zone: no control characters (but
/// tabs) outside TXT; CNAME, NS and PTR data, MX exchanges and SRV targets are names,
/// not IP addresses; TXT data reads unambiguously ([`txt_strings`]) and is at most
/// [`MAX_TXT_BYTES`] long. The rest of each type's syntax is left to the handlers.
///
/// # Errors
/// Why the rrdata is refused.
pub fn check_rrdata(rtype: RecordType, rrdata: &str) -> Result<(), String> {
    rrdata_size(rtype, rrdata).map(|_| ())
}

/// [`check_rrdata`], returning what the rrdata counts towards [`MAX_RRSET_DATA`]
/// (TXT only; 0 for other types), so that TXT data is decoded once.
fn rrdata_size(rtype: RecordType, rrdata: &str) -> Result<usize, String> {
    if rtype == RecordType::TXT {
        let strings = txt_strings(rrdata)?;
        let len: usize = strings.iter().map(Vec::len).sum();
        if len > MAX_TXT_BYTES {
            return Err(format!(
                "TXT data is longer than {MAX_TXT_BYTES} bytes ({len})"
            ));
        }
        return Ok(2 + txt_wire_len(&strings));
    }
    let control = |part: &str| {
        if part.bytes().any(|b| BYTE_CLASS[usize::from(b)] == OTHER) {
            if let Some(c) = rrdata.chars().find(|c| c.is_control() && *c != '\t') {
                return Err(format!("{rrdata:?} contains a control character ({c:?})"));
            }
        }
        Ok(())
    };
    match rtype {
        // The data is a name, which `check_name` checks byte by byte.
        RecordType::CNAME | RecordType::NS | RecordType::PTR => check_target(rrdata, "the target"),
        // The name is the last field (when there are several; a wrong number of
        // fields is the handlers' to refuse): the fields before it are numbers.
        RecordType::MX | RecordType::SRV => {
            let bytes = rrdata.as_bytes();
            let blank = |b: &u8| *b == b' ' || *b == b'\t';
            let end = bytes.iter().rposition(|b| !blank(b)).map_or(0, |e| e + 1);
            let start = bytes[..end].iter().rposition(blank).map_or(0, |s| s + 1);
            if !bytes[..start].iter().any(|b| !blank(b)) {
                return control(rrdata).map(|()| 0);
            }
            control(&rrdata[..start])?;
            let what = if rtype == RecordType::MX {
                "the exchange"
            } else {
                "the target"
            };
            check_target(&rrdata[start..end], what)
        }
        _ => control(rrdata),
    }?;
    Ok(0)
}

fn check_rrset_count(count: usize) -> Result<(), String> {
    if count > MAX_RRSET_RECORDS {
        return Err(format!(
            "{count} records in one record set; at most {MAX_RRSET_RECORDS} are allowed"
        ));
    }
    Ok(())
}

/// The wire length of TXT character-strings: their bytes, plus one length byte each.
pub fn txt_wire_len<S: AsRef<[u8]>>(strings: &[S]) -> usize {
    strings.iter().map(|s| 1 + s.as_ref().len()).sum()
}

/// Checks the size of a whole record set: at most [`MAX_RRSET_RECORDS`] records, and
/// for TXT at most [`MAX_RRSET_DATA`] bytes of data. (Other types cannot come near
/// that limit: 100 records of the longest name take 26 300 bytes.)
///
/// # Errors
/// Why the set is refused.
pub fn check_rrset_size<S: AsRef<str>>(rtype: RecordType, rrdatas: &[S]) -> Result<(), String> {
    check_rrset_count(rrdatas.len())?;
    if rtype != RecordType::TXT {
        return Ok(());
    }
    let mut total = 0;
    for rrdata in rrdatas {
        total += 2 + txt_wire_len(&txt_strings(rrdata.as_ref())?);
    }
    check_rrset_data(total)
}

fn check_rrset_data(total: usize) -> Result<(), String> {
    if total > MAX_RRSET_DATA {
        return Err(format!(
            "the TXT record set holds {total} bytes of record data; at most {MAX_RRSET_DATA} fit in one set"
        ));
    }
    Ok(())
}

/// The character-strings a TXT rrdata of the event format stands for.
///
/// An rrdata that does not start with `"` is the text itself, byte for byte, split
/// into character-strings of 255 bytes when it is longer (one string, maybe empty,
/// otherwise). One that does is read as presentation format (RFC 1035 §5.1): one or
/// more quoted strings separated by spaces or tabs; inside them `\DDD` (decimal) is
/// that byte and `\X` is `X`. Each quoted string is one character-string, kept as
/// given (SPF and DKIM join them when they read the record). This is the one place
/// the format's TXT quoting is undone.
///
/// # Errors
/// When the rrdata starts with `"` but is not such a sequence (an unterminated
/// string, text after a closing quote, a bad escape), or a quoted string holds more
/// than 255 bytes.
pub fn txt_strings(rrdata: &str) -> Result<Vec<Vec<u8>>, String> {
    if !rrdata.starts_with('"') {
        let bytes = rrdata.as_bytes();
        if bytes.is_empty() {
            return Ok(vec![Vec::new()]);
        }
        return Ok(bytes.chunks(255).map(<[u8]>::to_vec).collect());
    }
    let ambiguous = |why: String| {
        format!(
            "TXT data that starts with '\"' is read as quoted strings (\"...\" \"...\"), \
             but {why}; to send a leading quote as text, write the data as one quoted \
             string with \\\" for each quote"
        )
    };
    let bytes = rrdata.as_bytes();
    let special = |b: &u8| *b == b'"' || *b == b'\\';
    let mut strings = Vec::new();
    let mut i = 0;
    loop {
        // `bytes[i]` is an opening quote.
        let opening = i;
        i += 1;
        let mut out = Vec::new();
        loop {
            // Copy up to the next quote or backslash at once.
            let run = bytes[i..]
                .iter()
                .position(special)
                .unwrap_or(bytes.len() - i);
            out.extend_from_slice(&bytes[i..i + run]);
            i += run;
            match bytes.get(i) {
                None => return Err(ambiguous("a quoted string is not closed".to_owned())),
                Some(b'"') => break,
                Some(b'\\') => {
                    let digits = bytes.get(i + 1..i + 4);
                    if let Some(d) = digits.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                        let v = d.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
                        let byte = u8::try_from(v)
                            .map_err(|_| ambiguous(format!("the escape \\{v} is not a byte")))?;
                        out.push(byte);
                        i += 4;
                    } else {
                        match bytes.get(i + 1) {
                            None => return Err(ambiguous("it ends with a backslash".to_owned())),
                            Some(b) if b.is_ascii_digit() => {
                                return Err(ambiguous(
                                    "a \\DDD escape needs three digits".to_owned(),
                                ))
                            }
                            Some(&b) => out.push(b),
                        }
                        i += 2;
                    }
                }
                Some(&b) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if out.len() > 255 {
            let start: String = rrdata[opening..].chars().take(20).collect();
            return Err(format!(
                "TXT quoted string {} (at byte {opening}, {start}...) holds {} bytes; a \
                 character-string holds at most 255, so split it into several quoted strings",
                strings.len() + 1,
                out.len()
            ));
        }
        strings.push(out);
        // `bytes[i]` is a closing quote: the end, or spaces and the next string.
        i += 1;
        let spaces = i;
        while matches!(bytes.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        match bytes.get(i) {
            None => break,
            Some(b'"') if i > spaces => {}
            Some(_) => {
                return Err(ambiguous(format!(
                    "there is text after the closing quote at byte {}",
                    spaces - 1
                )))
            }
        }
    }
    Ok(strings)
}

/// The canonical rrdata for TXT character-strings `strings` ([`txt_strings`] reads it
/// back exactly, and two rrdatas for the same strings are the same text).
///
/// The text itself when that reads back as these strings: it does not start with `"`,
/// is UTF-8, and the strings are its split into 255-byte strings (one string of at
/// most 255 bytes, usually). Otherwise every string quoted ([`quote_txt`]):
/// `"v=spf1 include:x" "-all"`.
pub fn txt_rrdata<S: AsRef<[u8]>>(strings: &[S]) -> String {
    if let Some((last, full)) = strings.split_last() {
        let last = last.as_ref();
        let split = full.iter().all(|s| s.as_ref().len() == 255)
            && last.len() <= 255
            && (full.is_empty() || !last.is_empty());
        if split {
            let mut joined = Vec::with_capacity(full.len() * 255 + last.len());
            for s in full {
                joined.extend_from_slice(s.as_ref());
            }
            joined.extend_from_slice(last);
            if joined.first() != Some(&b'"') {
                if let Ok(text) = String::from_utf8(joined) {
                    return text;
                }
            }
        }
    }
    quote_txt(strings)
}

/// TXT character-strings in presentation format, as zone files hold them: each
/// string quoted, separated by a space, on one line. `"` and `\` are escaped with a
/// backslash, bytes outside printable ASCII become `\DDD`. No strings at all is
/// written as one empty string.
pub fn quote_txt<S: AsRef<[u8]>>(strings: &[S]) -> String {
    use std::fmt::Write as _;
    if strings.is_empty() {
        return "\"\"".to_owned();
    }
    let size: usize = strings.iter().map(|s| s.as_ref().len() + 3).sum();
    let mut out = String::with_capacity(size);
    for (i, chunk) in strings.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for &b in chunk.as_ref() {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('"');
    }
    out
}

/// Parses an event timestamp into time since the epoch: RFC 3339
/// (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`), or the same without a zone, read as UTC —
/// what the original janitor's `datetime.utcnow().isoformat()` wrote
/// (`2018-03-22T16:46:50.474089`). Any number of fractional digits up to nine;
/// impossible dates (`2026-02-31`) are refused.
pub fn parse_rfc3339(text: &str) -> Option<Duration> {
    let at = match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(at) => at.with_timezone(&chrono::Utc),
        Err(_) => chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc(),
    };
    let secs = u64::try_from(at.timestamp()).ok()?;
    Some(Duration::new(secs, at.timestamp_subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Phase = Phase::new("consume");

    fn one(body: &str) -> Result<EventMessage, String> {
        parse_events(body.as_bytes(), P, None)
            .map(|mut v| v.remove(0))
            .map_err(|e| e.0)
    }

    /// An addition event with this `resourceRecords` body.
    fn rr(record: &str) -> Result<EventMessage, String> {
        one(&format!(
            r#"{{"action":"additions","resourceRecords":{{{record}}}}}"#
        ))
    }

    /// An addition of `rtype` at `name` with these rrdatas.
    fn set(name: &str, rtype: &str, rrdatas: &[&str]) -> Result<EventMessage, String> {
        let body = serde_json::json!({"action": "additions", "resourceRecords":
            {"name": name, "type": rtype, "rrdatas": rrdatas}});
        one(&body.to_string())
    }

    #[test]
    fn one_event_with_extra_fields() {
        let body = br#"{"action":"additions","timestamp":"2026-11-22T10:00:00Z","source":"x",
            "resourceRecords":{"name":"a.example.com.","type":"A","rrdatas":["10.0.0.1"],"ttl":600}}"#;
        let msgs = parse_events(body, P, None).unwrap();
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(m.action(), Action::Additions);
        assert_eq!(m.record().ttl(), 600);
        assert_eq!(m.record().rtype(), RecordType::A);
        assert_eq!(m.extra_json(), r#"{"source":"x"}"#);
        assert_eq!(m.to_json()["data"]["source"], "x");
    }

    #[test]
    fn array_is_all_or_nothing_and_names_the_event() {
        let body = br#"[{"action":"deletions","resourceRecords":{"name":"a.","type":"A","rrdatas":["1.1.1.1"]}},
                        {"action":"additions","resourceRecords":{"name":"b.","type":"A","rrdatas":[]}}]"#;
        let e = parse_events(body, P, None).unwrap_err();
        assert!(e.0.starts_with("event 1: resourceRecords.rrdatas"), "{e}");
    }

    #[test]
    fn schema_errors_name_the_field() {
        let cases: [(&[u8], &str); 7] = [
            (b"{", "invalid JSON"),
            (br#"{"resourceRecords":{}}"#, "missing `action`"),
            (br#"{"action":"upsert","resourceRecords":{}}"#, "`action` must be"),
            (br#"{"action":"additions","resourceRecords":{"name":"a","type":"HINFO","rrdatas":["x"]}}"#, "unsupported type"),
            (br#"{"action":"additions","resourceRecords":{"name":"a","type":"A","rrdatas":["x","x"]}}"#, "duplicate value"),
            (br#"{"action":"additions","resourceRecords":{"name":"a","type":"A","rrdatas":["x"],"ttl":5}}"#, "ttl: must be an integer from 60"),
            (br#"{"action":"additions","timestamp":"yesterday","resourceRecords":{"name":"a","type":"A","rrdatas":["x"]}}"#, "RFC 3339"),
        ];
        for (body, needle) in cases {
            let e = parse_events(body, P, None).unwrap_err();
            assert!(e.0.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn too_old_events_are_rejected() {
        let body = br#"{"action":"additions","timestamp":"2001-01-01T00:00:00Z",
            "resourceRecords":{"name":"a.","type":"A","rrdatas":["10.0.0.1"]}}"#;
        let e = parse_events(body, P, Some(Duration::from_secs(300))).unwrap_err();
        assert!(e.0.contains("too old"), "{e}");
        assert!(parse_events(body, P, None).is_ok());
    }

    #[test]
    fn rfc3339_with_offset_and_fraction() {
        let a = parse_rfc3339("2023-11-14T22:13:20.5Z").unwrap();
        assert_eq!(a, Duration::new(1_700_000_000, 500_000_000));
        let b = parse_rfc3339("2023-11-15T00:13:20+02:00").unwrap();
        assert_eq!(b.as_secs(), 1_700_000_000);
        assert!(parse_rfc3339("2023-13-01T00:00:00Z").is_none());
    }

    #[test]
    fn the_original_producers_timestamps_are_read_as_utc() {
        // gordon-janitor: datetime.utcnow().isoformat()
        let a = parse_rfc3339("2023-11-14T22:13:20.474089").unwrap();
        assert_eq!(a, Duration::new(1_700_000_000, 474_089_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20").unwrap().as_secs(),
            1_700_000_000
        );
        let nine = parse_rfc3339("2023-11-14T22:13:20.123456789Z").unwrap();
        assert_eq!(nine.subsec_nanos(), 123_456_789);
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.1Z")
                .unwrap()
                .subsec_nanos(),
            100_000_000
        );
    }

    #[test]
    fn impossible_dates_are_refused() {
        for bad in [
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00",
            "2026-04-31T12:00:00+01:00",
            "2026-01-01T24:00:00Z",
            "2026-01-01",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad} was accepted");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_level() {
        let rec = r#""resourceRecords":{"name":"a","type":"A","rrdatas":["10.0.0.1"]}"#;
        let cases = [
            (
                format!(r#"{{"action":"deletions","action":"additions",{rec}}}"#),
                "duplicate key \"action\"",
            ),
            (
                r#"{"action":"additions","resourceRecords":{"name":"a","name":"b","type":"A","rrdatas":["10.0.0.1"]}}"#.to_owned(),
                "duplicate key \"name\"",
            ),
            (
                format!(r#"{{"action":"additions",{rec},"meta":{{"x":1,"y":{{"z":1,"z":2}}}}}}"#),
                "duplicate key \"z\"",
            ),
            (
                format!(r#"[{{"action":"additions",{rec}}},{{"action":"additions",{rec},{rec}}}]"#),
                "duplicate key \"resourceRecords\"",
            ),
        ];
        for (body, needle) in cases {
            let e = one(&body).unwrap_err();
            assert!(e.starts_with(needle), "{needle}: {e}");
            assert!(e.contains("line 1 column"), "{e}");
        }
        // The same key in different objects is fine.
        let ok = format!(r#"{{"action":"additions",{rec},"meta":{{"name":"x","action":1}}}}"#);
        assert_eq!(
            one(&ok).unwrap().extra_json(),
            r#"{"meta":{"action":1,"name":"x"}}"#
        );
    }

    #[test]
    fn unknown_keys_inside_resource_records_are_refused_by_name() {
        let e = rr(r#""name":"a","type":"A","rrdatas":["10.0.0.1"],"TTL":600"#).unwrap_err();
        assert_eq!(
            e,
            "resourceRecords: unknown key \"TTL\" (did you mean `ttl`?); \
             the keys are name, type, rrdatas, ttl and kind"
        );
        let e = rr(r#""name":"a","type":"A","rrdatas":["10.0.0.1"],"weight":1"#).unwrap_err();
        assert!(
            e.starts_with("resourceRecords: unknown key \"weight\";"),
            "{e}"
        );
        // Cloud DNS writes `kind`; it is accepted (and must be a string).
        let m =
            rr(r#""kind":"dns#resourceRecordSet","name":"a","type":"A","rrdatas":["10.0.0.1"]"#)
                .unwrap();
        assert_eq!(m.record().name(), "a");
        let e = rr(r#""kind":1,"name":"a","type":"A","rrdatas":["10.0.0.1"]"#).unwrap_err();
        assert!(
            e.starts_with("resourceRecords.kind: must be a string"),
            "{e}"
        );
    }

    #[test]
    fn names_with_whitespace_bad_labels_or_too_long_are_refused() {
        for (name, needle) in [
            (" www", "contains whitespace"),
            ("www\n", "contains whitespace"),
            ("w w", "contains whitespace"),
            ("www\u{0}", "contains a control character"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("", "non-empty string"),
        ] {
            let e = set(name, "A", &["10.0.0.1"]).unwrap_err();
            assert!(e.starts_with("resourceRecords.name: "), "{name:?}: {e}");
            assert!(e.contains(needle), "{name:?}: {e}");
        }
        let long_label = format!("{}.example.com.", "a".repeat(64));
        let e = set(&long_label, "A", &["10.0.0.1"]).unwrap_err();
        assert!(e.contains("longer than 63 characters (64)"), "{e}");
        let max = format!("{}com.", "abcdefghi.".repeat(25));
        assert!(set(&max, "TXT", &["x"]).is_ok());
        let e = set(&format!("x{max}"), "TXT", &["x"]).unwrap_err();
        assert!(e.contains("longer than 253 characters (254)"), "{e}");
        let relative = format!("x{}", max.trim_end_matches('.'));
        let e = set(&relative, "TXT", &["x"]).unwrap_err();
        assert!(e.contains("longer than 253 characters (254)"), "{e}");
        assert!(set(&relative[1..], "TXT", &["x"]).is_ok());
        for fine in ["@", "www", "WWW.Example.com.", "_sip._tcp", "*.apps"] {
            assert!(set(fine, "A", &["10.0.0.1"]).is_ok(), "{fine}");
        }
    }

    #[test]
    fn the_fast_name_check_agrees_with_the_reasons() {
        // Every short name over an alphabet of awkward characters, and the lengths at
        // the limits: the one-pass check accepts exactly what `name_error` accepts.
        let alphabet = ["a", ".", " ", "\n", "é", "*", "@", "\u{7f}"];
        let mut names = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = names
                .iter()
                .flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}")))
                .collect();
            names.extend(longer);
        }
        for len in [62, 63, 64] {
            let label = "l".repeat(len);
            names.extend([label.clone(), format!("{label}."), format!("a.{label}.b")]);
        }
        let full = "abcdefghi.".repeat(26);
        for name in [&full[..252], &full[..253], &full[..254]] {
            names.extend([name.to_owned(), format!("{name}."), format!("{name}..")]);
        }
        for name in &names {
            assert_eq!(
                check_name(name).is_ok(),
                name_error(name).is_none(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn wildcard_names_cannot_own_ns_records() {
        for name in ["*", "*.sub", "*.example.com."] {
            let e = set(name, "NS", &["ns1.example.net."]).unwrap_err();
            assert!(
                e.starts_with("resourceRecords.name: ") && e.contains("wildcard"),
                "{name}: {e}"
            );
        }
        assert!(set("*", "CNAME", &["www"]).is_ok());
        assert!(set("*.sub", "A", &["10.0.0.1"]).is_ok());
        assert!(set("sub", "NS", &["ns1.example.net."]).is_ok());
    }

    #[test]
    fn a_record_set_holds_at_most_100_records() {
        let addrs: Vec<String> = (0..101)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        assert!(set("www", "A", &refs[..100]).is_ok());
        let e = set("www", "A", &refs).unwrap_err();
        assert_eq!(
            e,
            "resourceRecords.rrdatas: 101 records in one record set; at most 100 are allowed"
        );
    }

    #[test]
    fn targets_must_be_host_names_not_addresses() {
        for (rtype, data, field) in [
            ("NS", "192.0.2.1", "the target \"192.0.2.1\""),
            ("CNAME", "192.0.2.1.", "the target \"192.0.2.1.\""),
            ("PTR", "2001:db8::1", "the target \"2001:db8::1\""),
            ("MX", "10 192.0.2.1", "the exchange \"192.0.2.1\""),
            ("SRV", "0 5 5060 192.0.2.1", "the target \"192.0.2.1\""),
        ] {
            let e = set("x", rtype, &["ok.example.com.", data]).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "resourceRecords.rrdatas[1]: {field} is an IP address, where a host name is required"
                ),
                "{rtype}"
            );
        }
        let e = set("x", "CNAME", &[" www"]).unwrap_err();
        assert!(
            e.starts_with("resourceRecords.rrdatas[0]: the target: "),
            "{e}"
        );
        assert!(e.contains("whitespace"), "{e}");
        let e = set("x", "MX", &[&format!("10 {}.com.", "m".repeat(64))]).unwrap_err();
        assert!(e.contains("the exchange: label"), "{e}");
        let e = set("x", "A", &["10.0.0.1\n"]).unwrap_err();
        assert!(e.contains("control character"), "{e}");
        // Names made of digits are names; the types' own syntax is the handlers' job.
        assert!(set("x", "NS", &["192.0.2.1.in-addr.arpa."]).is_ok());
        assert!(set("x", "CNAME", &["www.2"]).is_ok());
        assert!(set("x", "A", &["300.1.1.1"]).is_ok());
        assert!(set("x", "MX", &["mail"]).is_ok());
        assert!(set("x", "MX", &["10\tmail", "0 ."]).is_ok());
    }

    #[test]
    fn txt_data_is_read_once_into_its_strings_and_ambiguity_is_refused() {
        let t = |s: &str| txt_strings(s);
        let one = |s: &str| vec![s.as_bytes().to_vec()];
        assert_eq!(
            t("plain \"q\" \\ text").unwrap(),
            one("plain \"q\" \\ text")
        );
        assert_eq!(t(" \"lead space\"").unwrap(), one(" \"lead space\""));
        assert_eq!(t("").unwrap(), one(""));
        assert_eq!(t("\"v=spf1 -all\"").unwrap(), one("v=spf1 -all"));
        assert_eq!(t("\"\"").unwrap(), one(""));
        // Each quoted string is one character-string: the boundaries are kept.
        assert_eq!(
            t(r#""v=spf1 " "include:x"  "-all" "#).unwrap(),
            [&b"v=spf1 "[..], b"include:x", b"-all"]
        );
        assert_eq!(
            t(r#""v=spf1 include:x" "-all""#).unwrap(),
            [&b"v=spf1 include:x"[..], b"-all"]
        );
        assert_eq!(t(r#""" """#).unwrap(), [&b""[..], b""]);
        assert_eq!(
            t(r#""say \"hi\" \\ \195\169\010""#).unwrap(),
            one("say \"hi\" \\ é\n")
        );
        assert_eq!(t(r#""\"x\"""#).unwrap(), one("\"x\""));
        // Bytes, not text: the strings need not be UTF-8.
        assert_eq!(t(r#""\255""#).unwrap(), [[255]]);
        // A bare text is split only when it is longer than one string holds.
        let long = t(&"y".repeat(600)).unwrap();
        assert_eq!(
            long.iter().map(Vec::len).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(t(&"y".repeat(255)).unwrap().len(), 1);
        for (bad, why) in [
            ("\"", "not closed"),
            (r#""a"b"#, "text after the closing quote at byte 2"),
            (r#"""x"""#, "text after the closing quote at byte 1"),
            (r#""a""b""#, "text after the closing quote"),
            (r#""a\"#, "ends with a backslash"),
            (r#""\25""#, "three digits"),
            (r#""\256""#, "\\256 is not a byte"),
        ] {
            let e = t(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.starts_with("TXT data that starts with '\"'"), "{e}");
        }
        // A quoted string longer than one character-string is refused, by name.
        let e = t(&format!("\"ok\" \"{}\"", "x".repeat(256))).unwrap_err();
        assert!(
            e.starts_with("TXT quoted string 2 (at byte 5, \"xxx") && e.contains("holds 256 bytes"),
            "{e}"
        );
        assert!(t(&format!("\"{}\"", "x".repeat(255))).is_ok());
        assert!(t(&format!("\"{}\"", "\\\\".repeat(256))).is_err());
        // The event names the rrdata.
        let e = set("t", "TXT", &["ok", "\"\"x\"\""]).unwrap_err();
        assert!(
            e.starts_with("resourceRecords.rrdatas[1]: TXT data that starts"),
            "{e}"
        );
        // Written back, every rrdata reads as the same strings, in one canonical form.
        for rrdata in [
            "",
            "a",
            "\"\\\"\"",
            "\"\\\"x\\\"\"",
            "é\"\\\n",
            &"y".repeat(600),
            "\"a\" \"b\"",
            r#""v=spf1 include:x" "-all""#,
            r#""v=spf1 " "include:x"  "-all" "#,
            r#""" """#,
            r#""\255""#,
            &format!("\"{}\" \"y\"", "x".repeat(255)),
        ] {
            let strings = txt_strings(rrdata).unwrap();
            let canonical = txt_rrdata(&strings);
            assert_eq!(txt_strings(&canonical).unwrap(), strings, "{rrdata}");
            assert_eq!(txt_rrdata(&txt_strings(&canonical).unwrap()), canonical);
        }
        let c = |s: &str| txt_rrdata(&txt_strings(s).unwrap());
        // A single string keeps the form it always had: the text, unless it starts
        // with a quote.
        assert_eq!(c("v=spf1 -all"), "v=spf1 -all");
        assert_eq!(c("\"v=spf1 -all\""), "v=spf1 -all");
        assert_eq!(c(r#""say \"hi\"""#), "say \"hi\"");
        assert_eq!(c(r#""\"x\"""#), r#""\"x\"""#);
        assert_eq!(c(&"y".repeat(600)), "y".repeat(600));
        // Several strings are quoted, each on its own.
        assert_eq!(
            c(r#""v=spf1 include:x"   "-all""#),
            r#""v=spf1 include:x" "-all""#
        );
        assert_ne!(c(r#""v=spf1 include:x" "-all""#), "v=spf1 include:x-all");
        assert_eq!(c(r#""a" "é""#), r#""a" "\195\169""#);
        assert_eq!(c(r#""\255""#), r#""\255""#);
        // Strings that are what a long text splits into read as that text.
        assert_eq!(
            c(&format!("\"{}\" \"y\"", "x".repeat(255))),
            format!("{}y", "x".repeat(255))
        );
    }

    #[test]
    fn txt_sizes_are_limited_per_record_and_per_set() {
        let max = "x".repeat(MAX_TXT_BYTES);
        assert!(set("t", "TXT", &[&max]).is_ok());
        let e = set("t", "TXT", &[&format!("{max}y")]).unwrap_err();
        assert!(e.contains("longer than 65025 bytes (65026)"), "{e}");
        // Two records that fit alone do not fit one set.
        let half = "x".repeat(40_000);
        let other = format!("{half}y");
        let e = set("t", "TXT", &[&half, &other]).unwrap_err();
        assert_eq!(
            e,
            "resourceRecords.rrdatas: the TXT record set holds 80319 bytes of record data; \
             at most 65512 fit in one set"
        );
        // The limit counts decoded data, as BIND stores it: each string's bytes and
        // its length byte.
        let quoted = vec![format!("\"{}\"", "\\\\".repeat(255)); 200].join(" ");
        assert!(set("t", "TXT", &[&quoted]).is_ok());
        let strings = |s: &str| txt_strings(s).unwrap();
        assert_eq!(txt_wire_len(&strings("")), 1);
        assert_eq!(txt_wire_len(&strings(&"x".repeat(255))), 256);
        assert_eq!(txt_wire_len(&strings(&"x".repeat(256))), 258);
        assert_eq!(txt_wire_len(&strings(r#""v=spf1 include:x" "-all""#)), 22);
        // Many short strings count a length byte each.
        let short = vec!["\"\""; 65_000].join(" ");
        assert!(set("t", "TXT", &[&short]).is_ok());
        let short = vec!["\"\""; 66_000].join(" ");
        let e = set("t", "TXT", &[&short]).unwrap_err();
        assert!(e.contains("holds 66002 bytes of record data"), "{e}");
        let fits: Vec<String> = (0..100)
            .map(|i| format!("{i:03}{}", "z".repeat(640)))
            .collect();
        assert!(check_rrset_size(RecordType::TXT, &fits).is_ok());
    }

    #[test]
    fn quoting_escapes_each_string() {
        let q = |strings: &[&str]| quote_txt(strings);
        assert_eq!(q(&[""]), r#""""#);
        assert_eq!(quote_txt::<&str>(&[]), r#""""#);
        assert_eq!(q(&[r#"a "b" \c"#]), r#""a \"b\" \\c""#);
        assert_eq!(q(&["é\n\t\u{7f}"]), r#""\195\169\010\009\127""#);
        assert_eq!(
            q(&["v=spf1 include:x", "-all"]),
            r#""v=spf1 include:x" "-all""#
        );
        let long = txt_strings(&"x".repeat(600)).unwrap();
        assert_eq!(
            quote_txt(&long)
                .split(' ')
                .map(str::len)
                .collect::<Vec<_>>(),
            [257, 257, 92]
        );
    }
}
