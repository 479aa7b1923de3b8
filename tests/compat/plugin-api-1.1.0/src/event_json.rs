//! The event JSON format of the original service, for sources that receive it.
//!
//! ```json
//! {"action": "additions", "timestamp": "2026-11-22T10:00:00Z",
//!  "resourceRecords": {"name": "host.example.com.", "type": "A",
//!                      "rrdatas": ["10.1.2.3"], "ttl": 300}}
//! ```
//!
//! `action` is `additions` or `deletions`; `type` one of A AAAA CNAME MX NS PTR SOA
//! SRV TXT; `rrdatas` one or more unique strings; `ttl` 60..=86400, optional (a
//! message without one carries TTL 0, "not set", and the enricher or publisher fills
//! the default); fields this format does not name are kept, not rejected. A body may
//! hold one event or an array of them. Parsing is all or nothing: one bad event
//! rejects the whole body, so a producer never has to guess which half was accepted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

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
    let value: Value =
        serde_json::from_slice(body).map_err(|e| EventError(format!("invalid JSON: {e}")))?;
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

/// Parses one event object.
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
            let at = parse_rfc3339(&ts)
                .ok_or_else(|| err(format!("`timestamp` is not an RFC 3339 time: {ts:?}")))?;
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
    let name = match rr.remove("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n,
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
    for (i, a) in rrdatas.iter().enumerate() {
        if rrdatas[..i].contains(a) {
            return Err(err(format!("rrdatas: duplicate value {a:?}")));
        }
    }
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
    let mut record = ResourceRecord::new(&name, rtype, &rrdatas);
    record.set_ttl(ttl);
    Ok(record)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into time since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<Duration> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = text.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs).ok().map(|s| Duration::new(s, nanos))
}

// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Phase = Phase::new("consume");

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
}
