//! The compare step of `dns.reconciler`: desired record sets (from an authority)
//! against what the server serves (from AXFR), as corrections in the event format.
//!
//! Record sets are keyed by (lowercase owner name, type) and compared as sets of
//! canonical rrdata (order never matters; names compare case-insensitively, TXT
//! exactly), plus the TTL. The zone's SOA, apex NS and the addresses of its
//! in-zone name servers (glue) are never compared, nor is anything outside the
//! scope (managed record types, domain filter, exclusions).
//!
//! Only record sets gordon owns are changed or deleted ([`Owner`]); a desired set
//! that exists without an owner record is left alone unless `adopt` is on, which
//! rewrites it (marking it ours); `manage_unowned` treats every set as ours.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{Action, RecordType, ResourceRecord};

/// What the reconciler may change.
// The schema (the names `Policy::parse` reads) describes the reconciler's `policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
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

    /// The policy's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Sync => "sync",
            Policy::UpsertOnly => "upsert-only",
            Policy::CreateOnly => "create-only",
        }
    }
}

/// Who owns a record set the server serves, by its owner record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Marked with our owner id.
    Ours,
    /// Marked with the owner id of `adopt_from_owner`.
    Previous,
    /// No owner record: made by hand, by another tool, or before ownership.
    Unmarked,
    /// Marked by another owner.
    Other,
}

/// What may be changed besides what the policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `sync`, `upsert-only` or `create-only`.
    pub policy: Policy,
    /// Take over desired record sets that exist without an owner record.
    pub adopt: bool,
    /// Treat every record set as ours (DANGER).
    pub manage_unowned: bool,
}

/// What a correction does to the zone's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Adds a record set that is not there.
    Create,
    /// Replaces a record set that is there with other data.
    Update,
    /// Deletes a record set.
    Delete,
    /// Rewrites a record set that already holds the desired data, to mark it ours
    /// (`adopt`, `adopt_from_owner`): the data does not change.
    Adopt,
}

impl Kind {
    /// The name used in the change event's `change` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Adopt => "adopt",
        }
    }
}

/// One correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Add (replace) or delete.
    pub action: Action,
    /// What it does to the data.
    pub kind: Kind,
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
    /// Served record sets in scope that are ours to change: the base of the
    /// janitor's change threshold.
    pub owned: usize,
    /// Deletions withheld because of an empty desired set or the policy.
    pub withheld: usize,
    /// Served record sets in scope left alone because they are not ours; the
    /// first few are named in `not_owned_names`.
    pub not_owned: usize,
    /// Up to ten `name type` of desired record sets left alone as not ours.
    pub not_owned_names: Vec<String>,
    /// Desired record sets outside the scope, not compared.
    pub out_of_scope: usize,
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
pub(crate) struct Fnv(u64);

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

/// Compares `desired` with `actual` for `zone`. `in_scope(name, type)` says
/// whether a record set may be compared at all (managed types, domain filter,
/// exclusions); `owner(name, type)` who owns a served one.
pub fn diff(
    zone: &str,
    desired: &[ResourceRecord],
    actual: &[ResourceRecord],
    rules: Rules,
    in_scope: &dyn Fn(&str, RecordType) -> bool,
    owner: &dyn Fn(&str, RecordType) -> Owner,
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
    let mut out = Diff::default();
    // Desired record sets by key; several sources for one key are merged.
    let mut wanted: Map<'_, usize> =
        Map::with_capacity_and_hasher(desired.len(), Default::default());
    let mut merged: Vec<ResourceRecord> = Vec::new();
    let mut order: Vec<Key<'_>> = Vec::with_capacity(desired.len());
    // Per key: the first desired record set, and its merged copy if any.
    let mut firsts: Vec<usize> = Vec::with_capacity(desired.len());
    let mut slots: Vec<Option<usize>> = Vec::with_capacity(desired.len());
    for (i, r) in desired.iter().enumerate().filter(|(_, r)| !skip(r)) {
        if !in_scope(r.name(), r.rtype()) {
            out.out_of_scope += 1;
            continue;
        }
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
    // Served record sets in scope, with their owner.
    let mut served: Map<'_, (&ResourceRecord, Owner)> =
        Map::with_capacity_and_hasher(actual.len(), Default::default());
    for r in actual
        .iter()
        .filter(|r| !skip(r) && in_scope(r.name(), r.rtype()))
    {
        let who = if rules.manage_unowned {
            Owner::Ours
        } else {
            owner(r.name(), r.rtype())
        };
        served.insert(Key::of(r), (r, who));
    }
    out.compared = order.len() + served.len();
    out.owned = served
        .values()
        .filter(|(_, who)| matches!(who, Owner::Ours | Owner::Previous))
        .count();
    // Deletions: served, ours, but not wanted.
    let refuse_deletes = order.is_empty() || rules.policy != Policy::Sync;
    let mut deletions: Vec<&ResourceRecord> = Vec::new();
    for (k, (r, who)) in &served {
        if wanted.contains_key(k) {
            continue;
        }
        if !matches!(who, Owner::Ours | Owner::Previous) {
            out.not_owned += 1;
        } else if refuse_deletes {
            out.withheld += 1;
        } else {
            deletions.push(r);
        }
    }
    deletions.sort_by_cached_key(|r| Key::of(r).sort_key());
    out.changes.extend(deletions.into_iter().map(|r| Change {
        action: Action::Deletions,
        kind: Kind::Delete,
        record: r.clone(),
    }));
    // Additions: wanted and missing, different, or to be marked ours.
    for (slot, k) in order.iter().enumerate() {
        let want = record_of(slot);
        let kind = match served.get(k) {
            None => Some(Kind::Create),
            Some((have, who)) => {
                let same = have.ttl() == want.ttl() && same_rrdatas(have, want);
                let ours = match who {
                    Owner::Ours | Owner::Previous => true,
                    Owner::Unmarked => rules.adopt,
                    Owner::Other => false,
                };
                if !ours {
                    out.not_owned += 1;
                    if out.not_owned_names.len() < 10 {
                        out.not_owned_names
                            .push(format!("{} {}", want.name(), want.rtype()));
                    }
                    None
                } else if same {
                    // Ours already, or to be marked ours without a change of data.
                    (*who != Owner::Ours).then_some(Kind::Adopt)
                } else if rules.policy == Policy::CreateOnly {
                    None
                } else {
                    Some(Kind::Update)
                }
            }
        };
        if let Some(kind) = kind {
            out.changes.push(Change {
                action: Action::Additions,
                kind,
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
                let sign = match c.kind {
                    Kind::Create => "+",
                    Kind::Update => "~",
                    Kind::Delete => "-",
                    Kind::Adopt => "=",
                };
                format!("{sign} {} {}", c.record.name(), c.record.rtype())
            })
            .collect()
    }

    fn rules(policy: Policy) -> Rules {
        Rules {
            policy,
            adopt: false,
            manage_unowned: false,
        }
    }

    fn all(_: &str, _: RecordType) -> bool {
        true
    }

    fn ours(_: &str, _: RecordType) -> Owner {
        Owner::Ours
    }

    fn run(desired: &[ResourceRecord], actual: &[ResourceRecord], policy: Policy) -> Diff {
        diff(Z, desired, actual, rules(policy), &all, &ours)
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
        let d = run(&desired, &actual, Policy::Sync);
        assert_eq!(
            summary(&d),
            [
                "- old.example.com. A",
                "+ new.example.com. A",
                "~ ttl.example.com. A"
            ]
        );
        assert_eq!(d.owned, 3, "www, old, ttl: not SOA, apex NS or glue");
    }

    #[test]
    fn policies_limit_what_changes() {
        let (desired, actual) = sample();
        let up = run(&desired, &actual, Policy::UpsertOnly);
        assert_eq!(
            summary(&up),
            ["+ new.example.com. A", "~ ttl.example.com. A"]
        );
        assert_eq!(up.withheld, 1);
        let create = run(&desired, &actual, Policy::CreateOnly);
        assert_eq!(summary(&create), ["+ new.example.com. A"]);
    }

    #[test]
    fn an_empty_desired_set_deletes_nothing() {
        let (_, actual) = sample();
        let d = run(&[], &actual, Policy::Sync);
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
        let d = run(&desired, &actual, Policy::Sync);
        assert!(d.changes.is_empty(), "{:?}", summary(&d));
        let d = run(&desired, &[], Policy::Sync);
        assert_eq!(
            d.changes[0].record.rrdatas().collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.2"]
        );
    }

    /// The sample zone plus hand-made records: an apex MX, an SPF TXT and a legacy
    /// host, none with an owner record.
    fn hand_made() -> Vec<ResourceRecord> {
        let (_, mut actual) = sample();
        actual.extend([
            rr("example.com.", RecordType::MX, &["10 mx.example.net."], 300),
            rr("example.com.", RecordType::TXT, &["v=spf1 -all"], 300),
            rr("legacy.example.com.", RecordType::A, &["10.0.0.66"], 300),
        ]);
        actual
    }

    fn who(name: &str, _: RecordType) -> Owner {
        match name {
            "WWW.example.com." | "old.example.com." => Owner::Ours,
            "ttl.example.com." => Owner::Unmarked,
            "legacy.example.com." | "example.com." => Owner::Unmarked,
            _ => Owner::Other,
        }
    }

    fn managed(_: &str, t: RecordType) -> bool {
        matches!(t, RecordType::A | RecordType::AAAA | RecordType::CNAME)
    }

    #[test]
    fn records_we_do_not_own_are_left_alone() {
        let (desired, _) = sample();
        let actual = hand_made();
        let d = diff(Z, &desired, &actual, rules(Policy::Sync), &managed, &who);
        // ttl differs but is unmarked: left alone; legacy is not desired and not ours.
        assert_eq!(
            summary(&d),
            ["- old.example.com. A", "+ new.example.com. A"]
        );
        assert_eq!((d.owned, d.not_owned), (2, 2));
        assert_eq!(d.not_owned_names, ["ttl.example.com. A"]);
        // Even when every type is in scope, the hand-made MX and TXT stay.
        let d = diff(Z, &desired, &actual, rules(Policy::Sync), &all, &who);
        assert_eq!(
            summary(&d),
            ["- old.example.com. A", "+ new.example.com. A"]
        );
        assert_eq!(d.not_owned, 4);
    }

    #[test]
    fn only_managed_types_in_scope_are_compared() {
        let (desired, _) = sample();
        let actual = hand_made();
        let mut with_txt = desired.clone();
        with_txt.push(rr("t.example.com.", RecordType::TXT, &["x"], 300));
        let mut r = rules(Policy::Sync);
        r.manage_unowned = true;
        let d = diff(Z, &with_txt, &actual, r, &managed, &who);
        // manage_unowned: legacy is deleted and ttl replaced, but MX and TXT are not
        // managed types, and the desired TXT is not compared.
        assert_eq!(
            summary(&d),
            [
                "- legacy.example.com. A",
                "- old.example.com. A",
                "+ new.example.com. A",
                "~ ttl.example.com. A"
            ]
        );
        assert_eq!((d.owned, d.out_of_scope), (4, 1));
        let not_legacy = |n: &str, t: RecordType| managed(n, t) && n != "legacy.example.com.";
        let d = diff(Z, &with_txt, &actual, r, &not_legacy, &who);
        assert!(!summary(&d).contains(&"- legacy.example.com. A".to_owned()));
    }

    #[test]
    fn adopting_marks_desired_sets_and_deletes_no_unmarked_one() {
        let mut desired = sample().0;
        desired.push(rr(
            "legacy.example.com.",
            RecordType::A,
            &["10.0.0.66"],
            300,
        ));
        let actual = hand_made();
        let mut r = rules(Policy::Sync);
        r.adopt = true;
        let d = diff(Z, &desired, &actual, r, &managed, &who);
        assert_eq!(
            summary(&d),
            [
                "- old.example.com. A",
                "+ new.example.com. A",
                "~ ttl.example.com. A",
                "= legacy.example.com. A"
            ]
        );
        // A previous owner's sets are ours: deleted when not desired, re-marked when
        // they hold the desired data.
        let previous = |n: &str, t: RecordType| match who(n, t) {
            Owner::Ours => Owner::Previous,
            o => o,
        };
        let d = diff(
            Z,
            &desired,
            &actual,
            rules(Policy::Sync),
            &managed,
            &previous,
        );
        assert_eq!(
            summary(&d),
            [
                "- old.example.com. A",
                "= www.example.com. A",
                "+ new.example.com. A"
            ]
        );
        // Under create-only a set with other data is never replaced, adopted or not.
        r.policy = Policy::CreateOnly;
        let d = diff(Z, &desired, &actual, r, &managed, &who);
        assert_eq!(
            summary(&d),
            ["+ new.example.com. A", "= legacy.example.com. A"]
        );
    }
}
