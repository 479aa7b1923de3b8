//! The compare step of `dns.reconciler`: desired record sets (from an authority)
//! against what the server serves (from AXFR), as corrections in the event format.
//!
//! Record sets are keyed by (lowercase owner name, type) and compared as sets of
//! canonical rrdata (order never matters; names compare case-insensitively, TXT
//! exactly), plus the TTL. The zone's SOA, apex NS and the addresses of its
//! in-zone name servers (glue) are never compared.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use gordon_plugin_api::{Action, RecordType, ResourceRecord};

/// What the reconciler may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Add, replace and delete.
    Sync,
    /// Add and replace, never delete.
    UpsertOnly,
    /// Only add record sets that are missing.
    CreateOnly,
}

impl Policy {
    /// Parses `sync`, `upsert-only`, `create-only`.
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "sync" => Some(Policy::Sync),
            "upsert-only" => Some(Policy::UpsertOnly),
            "create-only" => Some(Policy::CreateOnly),
            _ => None,
        }
    }
}

/// One correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Add (replace) or delete.
    pub action: Action,
    /// The record set (for a deletion, as the server serves it).
    pub record: ResourceRecord,
}

/// The outcome of comparing one zone.
#[derive(Debug, Default)]
pub struct Diff {
    /// Deletions first, then additions.
    pub changes: Vec<Change>,
    /// Record sets compared.
    pub compared: usize,
    /// Deletions withheld (empty desired set, policy, or not owned).
    pub withheld: usize,
}

/// A record set's key, (owner name, type), compared without regard to ASCII case
/// and without allocating: the compare step handles 100,000-record zones.
#[derive(Clone, Copy)]
struct Key<'a>(&'a str, RecordType);

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.1 == other.1 && self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u16(self.1 .0);
    }
}

impl<'a> Key<'a> {
    fn of(r: &'a ResourceRecord) -> Self {
        Key(r.name(), r.rtype())
    }
    fn sort_key(&self) -> (String, RecordType) {
        (self.0.to_ascii_lowercase(), self.1)
    }
}

/// FNV-1a: keys are short strings, and the zone's data is not attacker-chosen
/// input to a long-lived table, so a fast non-keyed hash is fine here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }
    fn write_u8(&mut self, b: u8) {
        if self.0 == 0 {
            self.0 = 0xcbf2_9ce4_8422_2325;
        }
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
}

type Map<'a, V> = HashMap<Key<'a>, V, BuildHasherDefault<Fnv>>;

fn same_data(rtype: RecordType, a: &str, b: &str) -> bool {
    if rtype == RecordType::TXT {
        a == b
    } else {
        a.trim().eq_ignore_ascii_case(b.trim())
    }
}

fn cmp_data(rtype: RecordType, a: &str, b: &str) -> std::cmp::Ordering {
    if rtype == RecordType::TXT {
        a.cmp(b)
    } else {
        let (a, b) = (
            a.trim().bytes().map(|c| c.to_ascii_lowercase()),
            b.trim().bytes().map(|c| c.to_ascii_lowercase()),
        );
        a.cmp(b)
    }
}

/// Whether two record sets hold the same data, in any order.
fn same_rrdatas(a: &ResourceRecord, b: &ResourceRecord) -> bool {
    let t = a.rtype();
    if a.rrdatas().len() != b.rrdatas().len() {
        return false;
    }
    // Most sets come back in the order they were written: no allocation then.
    if a.rrdatas()
        .zip(b.rrdatas())
        .all(|(x, y)| same_data(t, x, y))
    {
        return true;
    }
    let mut x: Vec<&str> = a.rrdatas().collect();
    let mut y: Vec<&str> = b.rrdatas().collect();
    x.sort_by(|p, q| cmp_data(t, p, q));
    y.sort_by(|p, q| cmp_data(t, p, q));
    x.iter().zip(&y).all(|(p, q)| same_data(t, p, q))
}

/// Compares `desired` with `actual` for `zone`. `owned(name, type)` says whether
/// the record set on the server belongs to us (always true without ownership).
pub fn diff(
    zone: &str,
    desired: &[ResourceRecord],
    actual: &[ResourceRecord],
    policy: Policy,
    owned: &dyn Fn(&str, RecordType) -> bool,
) -> Diff {
    let apex_ns =
        |r: &ResourceRecord| r.rtype() == RecordType::NS && r.name().eq_ignore_ascii_case(zone);
    // The addresses of the zone's own name servers (glue) belong with the apex NS
    // records: infrastructure, not data, so they are never compared either.
    let glue: Vec<&str> = actual
        .iter()
        .filter(|r| apex_ns(r))
        .flat_map(|r| r.rrdatas())
        .collect();
    let skip = |r: &ResourceRecord| {
        r.rtype() == RecordType::SOA
            || apex_ns(r)
            || (matches!(r.rtype(), RecordType::A | RecordType::AAAA)
                && glue.iter().any(|ns| ns.eq_ignore_ascii_case(r.name())))
    };
    // Desired record sets by key; several sources for one key are merged.
    let mut wanted: Map<'_, usize> =
        Map::with_capacity_and_hasher(desired.len(), Default::default());
    let mut merged: Vec<ResourceRecord> = Vec::new();
    let mut order: Vec<Key<'_>> = Vec::with_capacity(desired.len());
    // Per key: the first desired record set, and its merged copy if any.
    let mut firsts: Vec<usize> = Vec::with_capacity(desired.len());
    let mut slots: Vec<Option<usize>> = Vec::with_capacity(desired.len());
    for (i, r) in desired.iter().enumerate().filter(|(_, r)| !skip(r)) {
        let k = Key::of(r);
        match wanted.get(&k) {
            Some(&slot) => {
                // Merge into a private copy (rare: one name in several sources).
                let target = match slots[slot] {
                    Some(m) => m,
                    None => {
                        merged.push(desired[firsts[slot]].clone());
                        slots[slot] = Some(merged.len() - 1);
                        merged.len() - 1
                    }
                };
                let mut all: Vec<String> = merged[target].rrdatas().map(str::to_owned).collect();
                for d in r.rrdatas() {
                    if !all.iter().any(|a| same_data(r.rtype(), a, d)) {
                        all.push(d.to_owned());
                    }
                }
                merged[target].set_rrdatas(all);
            }
            None => {
                wanted.insert(k, order.len());
                order.push(k);
                firsts.push(i);
                slots.push(None);
            }
        }
    }
    let record_of = |slot: usize| -> &ResourceRecord {
        match slots[slot] {
            Some(m) => &merged[m],
            None => &desired[firsts[slot]],
        }
    };
    let mut served: Map<'_, &ResourceRecord> =
        Map::with_capacity_and_hasher(actual.len(), Default::default());
    for r in actual.iter().filter(|r| !skip(r)) {
        served.insert(Key::of(r), r);
    }
    let mut out = Diff {
        compared: order.len() + served.len(),
        ..Diff::default()
    };
    // Deletions: served but not wanted.
    let refuse_deletes = order.is_empty() || policy != Policy::Sync;
    let mut deletions: Vec<&ResourceRecord> = Vec::new();
    for (k, r) in &served {
        if wanted.contains_key(k) {
            continue;
        }
        if refuse_deletes || !owned(k.0, k.1) {
            out.withheld += 1;
            continue;
        }
        deletions.push(r);
    }
    deletions.sort_by_cached_key(|r| Key::of(r).sort_key());
    out.changes.extend(deletions.into_iter().map(|r| Change {
        action: Action::Deletions,
        record: r.clone(),
    }));
    // Additions: wanted and missing, or different.
    for (slot, k) in order.iter().enumerate() {
        let want = record_of(slot);
        let add = match served.get(k) {
            None => true,
            Some(have) => {
                policy != Policy::CreateOnly
                    && (have.ttl() != want.ttl() || !same_rrdatas(have, want))
                    && owned(k.0, k.1)
            }
        };
        if add {
            out.changes.push(Change {
                action: Action::Additions,
                record: want.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, t: RecordType, data: &[&str], ttl: u32) -> ResourceRecord {
        let mut r = ResourceRecord::new(name, t, data.iter().copied());
        r.set_ttl(ttl);
        r
    }

    fn summary(d: &Diff) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    if c.action == Action::Additions {
                        "+"
                    } else {
                        "-"
                    },
                    c.record.name(),
                    c.record.rtype()
                )
            })
            .collect()
    }

    const Z: &str = "example.com.";

    fn sample() -> (Vec<ResourceRecord>, Vec<ResourceRecord>) {
        let desired = vec![
            rr(
                "www.example.com.",
                RecordType::A,
                &["10.0.0.2", "10.0.0.1"],
                300,
            ),
            rr("new.example.com.", RecordType::A, &["10.0.0.5"], 300),
            rr("ttl.example.com.", RecordType::A, &["10.0.0.6"], 600),
        ];
        let actual = vec![
            rr(
                "example.com.",
                RecordType::SOA,
                &["ns1.example.com. h.example.com. 1 2 3 4 5"],
                300,
            ),
            rr("example.com.", RecordType::NS, &["ns1.example.com."], 300),
            rr("ns1.example.com.", RecordType::A, &["192.0.2.53"], 300),
            rr("ns1.example.com.", RecordType::A, &["192.0.2.53"], 300),
            rr(
                "WWW.example.com.",
                RecordType::A,
                &["10.0.0.1", "10.0.0.2"],
                300,
            ),
            rr("old.example.com.", RecordType::A, &["10.0.0.9"], 300),
            rr("ttl.example.com.", RecordType::A, &["10.0.0.6"], 300),
        ];
        (desired, actual)
    }

    #[test]
    fn sync_deletes_first_then_adds_ignoring_order_case_soa_and_apex_ns() {
        let (desired, actual) = sample();
        let d = diff(Z, &desired, &actual, Policy::Sync, &|_, _| true);
        assert_eq!(
            summary(&d),
            [
                "- old.example.com. A",
                "+ new.example.com. A",
                "+ ttl.example.com. A"
            ]
        );
    }

    #[test]
    fn policies_limit_what_changes() {
        let (desired, actual) = sample();
        let up = diff(Z, &desired, &actual, Policy::UpsertOnly, &|_, _| true);
        assert_eq!(
            summary(&up),
            ["+ new.example.com. A", "+ ttl.example.com. A"]
        );
        let create = diff(Z, &desired, &actual, Policy::CreateOnly, &|_, _| true);
        assert_eq!(summary(&create), ["+ new.example.com. A"]);
    }

    #[test]
    fn an_empty_desired_set_deletes_nothing() {
        let (_, actual) = sample();
        let d = diff(Z, &[], &actual, Policy::Sync, &|_, _| true);
        assert!(d.changes.is_empty());
        assert_eq!(d.withheld, 3);
    }

    #[test]
    fn record_sets_from_several_sources_are_merged() {
        let desired = vec![
            rr("www.example.com.", RecordType::A, &["10.0.0.1"], 300),
            rr(
                "WWW.example.com.",
                RecordType::A,
                &["10.0.0.2", "10.0.0.1"],
                300,
            ),
        ];
        let actual = vec![rr(
            "www.example.com.",
            RecordType::A,
            &["10.0.0.2", "10.0.0.1"],
            300,
        )];
        let d = diff(Z, &desired, &actual, Policy::Sync, &|_, _| true);
        assert!(d.changes.is_empty(), "{:?}", summary(&d));
        let d = diff(Z, &desired, &[], Policy::Sync, &|_, _| true);
        assert_eq!(
            d.changes[0].record.rrdatas().collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.2"]
        );
    }

    #[test]
    fn records_we_do_not_own_are_left_alone() {
        let (desired, actual) = sample();
        let owned =
            |name: &str, _: RecordType| name != "old.example.com." && name != "ttl.example.com.";
        let d = diff(Z, &desired, &actual, Policy::Sync, &owned);
        assert_eq!(summary(&d), ["+ new.example.com. A"]);
    }
}
