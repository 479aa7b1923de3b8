//! The ownership registry every publisher shares, so that a reconciler can tell the
//! record sets gordon published from those made by hand or by other tools, whichever
//! publisher wrote them (`dns.rfc2136` over the wire, `dns.zonefile` in a file).
//!
//! The owner record of record set `(name, type)` is a TXT record set holding the
//! single string `heritage=gordon,owner=<owner_id>`, named by prefixing the name's
//! first label with `_gordon-<type>-` (`www.example.com.` A ->
//! `_gordon-a-www.example.com.`); at the zone apex it is `_gordon-<type>.<zone>`.
//! It is a sibling of the record, never the record's own name, so it cannot collide
//! with TXT data at that name, and it is never below the name, which might be a
//! delegation point. Names whose first label starts with [`PREFIX`] are reserved for
//! owner records: publishers refuse events for them.

use crate::RecordType;

/// The label prefix of owner records.
pub const PREFIX: &str = "_gordon-";

/// The owner id used when none is configured.
pub const DEFAULT_OWNER_ID: &str = "gordon";

/// The warning a publisher or reconciler logs whenever `manage_unowned` is on.
pub const MANAGE_UNOWNED_WARNING: &str = "manage_unowned = true: record sets gordon does not own (made by hand, by other tools or by other owners) are changed and deleted too";

/// The text of the owner record of `owner_id`.
pub fn value(owner_id: &str) -> String {
    format!("heritage=gordon,owner={owner_id}")
}

/// Whether the absolute `name` is reserved for owner records: its first label starts
/// with [`PREFIX`] (ASCII case-insensitively, as DNS compares names).
pub fn is_reserved(name: &str) -> bool {
    name.as_bytes()
        .get(..PREFIX.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(PREFIX.as_bytes()))
}

/// The owner record name of `(name, rtype)` in `zone`, both absolute names in
/// presentation form ending in `.`. Errors when the prefixed first label would be
/// longer than a label may be (63 bytes).
pub fn record_name(name: &str, rtype: RecordType, zone: &str) -> Result<String, String> {
    let t = rtype.name().to_ascii_lowercase();
    if name.eq_ignore_ascii_case(zone) {
        return Ok(format!("{PREFIX}{t}.{zone}"));
    }
    let (first, rest) = match name.split_once('.') {
        Some((first, rest)) if !first.is_empty() => (first, rest),
        _ => return Err(format!("{name} has no label to name its owner record by")),
    };
    let label = format!("{PREFIX}{t}-{first}");
    // A label's length in the wire form: `\DDD` and `\c` escapes are one byte.
    if wire_len(&label) > 63 {
        return Err(format!(
            "the first label of {name} is too long for its owner record"
        ));
    }
    Ok(format!("{label}.{rest}"))
}

/// The wire length of a label in presentation form.
fn wire_len(label: &str) -> usize {
    let bytes = label.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        i += match bytes[i] {
            b'\\' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => 4,
            b'\\' => 2,
            _ => 1,
        };
        n += 1;
    }
    n
}

/// Checks an owner id named by `key`: 1 to 64 printable ASCII characters without
/// spaces or the separators of the owner record's text.
pub fn check_owner_id(key: &str, id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b",=\"\\;".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{key}` {id:?} must be 1 to 64 printable characters without spaces, ',', '=', '\"', '\\' or ';'"
        ))
    }
}

/// Checks the ownership keys every publisher takes: `owner_id`, and
/// `adopt_from_owner` (another valid id, not `owner_id` itself).
pub fn check_owner_ids(owner_id: &str, adopt_from_owner: Option<&str>) -> Result<(), String> {
    check_owner_id("owner_id", owner_id)?;
    if let Some(old) = adopt_from_owner {
        check_owner_id("adopt_from_owner", old)?;
        if old == owner_id {
            return Err(format!(
                "`adopt_from_owner` {old:?} is `owner_id` itself: name the owner id to take records over from"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_siblings_and_the_apex_has_its_own() {
        let z = "example.com.";
        assert_eq!(
            record_name("www.example.com.", RecordType::A, z).as_deref(),
            Ok("_gordon-a-www.example.com.")
        );
        assert_eq!(
            record_name("a.b.example.com.", RecordType::AAAA, z).as_deref(),
            Ok("_gordon-aaaa-a.b.example.com.")
        );
        assert_eq!(
            record_name("example.com.", RecordType::MX, z).as_deref(),
            Ok("_gordon-mx.example.com.")
        );
        let long = format!("{}.example.com.", "x".repeat(60));
        assert!(record_name(&long, RecordType::A, z)
            .unwrap_err()
            .contains("too long"));
        assert!(is_reserved("_GORDON-a-www.example.com."));
        assert!(!is_reserved("www._gordon-a.example.com."));
    }

    #[test]
    fn owner_ids_cannot_break_the_record_text() {
        assert!(check_owner_id("owner_id", "gordon-eu1").is_ok());
        for bad in ["", "a b", "a,b", "a=b", "a\"b", &"x".repeat(65)] {
            assert!(check_owner_id("owner_id", bad).is_err(), "{bad:?}");
        }
        assert_eq!(value("gordon"), "heritage=gordon,owner=gordon");
        assert!(check_owner_ids("a", Some("b")).is_ok());
        assert!(check_owner_ids("a", Some("a"))
            .unwrap_err()
            .contains("is `owner_id` itself"));
    }
}
