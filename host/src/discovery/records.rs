//! A cluster's membership as record sets, and what changes between two
//! memberships.
//!
//! For cluster records named `web.example.com.`: `web.example.com.` A (and AAAA)
//! with every member's address; `NODE.web.example.com.` A/AAAA with each
//! member's own; with `srv = "_http._tcp"`, `_http._tcp.web.example.com.` SRV
//! `0 0 PORT NODE.web.example.com.` per member.

use std::collections::{BTreeMap, BTreeSet};

use gordon_plugin_api::{Member, RecordType};

use crate::config::ClusterRecords;

/// Record sets: (owner name, type) → sorted data.
pub type RecordSets = BTreeMap<(String, RecordType), Vec<String>>;

fn kind(address: &str) -> Option<RecordType> {
    match address.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some(RecordType::A),
        std::net::IpAddr::V6(_) => Some(RecordType::AAAA),
    }
}

/// The record sets `members` give cluster `cfg`. A member whose address is not an
/// IP address or whose node is not one DNS label is left out (and logged).
pub fn record_sets(cfg: &ClusterRecords, members: &BTreeSet<Member>) -> RecordSets {
    let mut sets = RecordSets::new();
    for m in members {
        let label_ok = !m.node.is_empty()
            && m.node.len() <= 63
            && m.node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let Some(rtype) = kind(&m.address).filter(|_| label_ok) else {
            tracing::warn!(cluster = %cfg.cluster, node = %m.node, address = %m.address, "A member with a bad node name or address; leaving it out of DNS.");
            continue;
        };
        let own = format!("{}.{}", m.node, cfg.name);
        sets.entry((cfg.name.clone(), rtype))
            .or_default()
            .push(m.address.clone());
        sets.entry((own.clone(), rtype))
            .or_default()
            .push(m.address.clone());
        if let Some(srv) = &cfg.srv {
            sets.entry((format!("{srv}.{}", cfg.name), RecordType::SRV))
                .or_default()
                .push(format!("0 0 {} {own}", m.port));
        }
    }
    for data in sets.values_mut() {
        data.sort();
        data.dedup();
    }
    sets
}

/// What turns `before` into `after`: record sets to write whole (new or
/// changed) and record sets to delete (with the data they held, as a deletion
/// event carries it).
pub fn changes(before: &RecordSets, after: &RecordSets) -> (RecordSets, RecordSets) {
    let write = after
        .iter()
        .filter(|(key, data)| before.get(*key) != Some(data))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete = before
        .iter()
        .filter(|(key, _)| !after.contains_key(*key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (write, delete)
}

/// Cluster `web` as `web.example.com.`, with `srv` if given (for tests).
#[cfg(test)]
pub(crate) fn test_cluster(srv: Option<&str>) -> ClusterRecords {
    ClusterRecords {
        cluster: "web".into(),
        name: "web.example.com.".into(),
        ttl: 30,
        srv: srv.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClusterRecords {
        test_cluster(Some("_http._tcp"))
    }

    fn member(node: &str, address: &str, port: u16) -> Member {
        Member {
            node: node.into(),
            address: address.into(),
            port,
        }
    }

    #[test]
    fn members_become_a_shared_set_own_names_and_srv() {
        let members: BTreeSet<Member> =
            [member("n1", "10.0.0.1", 80), member("n2", "fd00::2", 81)].into();
        let sets = record_sets(&cfg(), &members);
        assert_eq!(
            sets[&("web.example.com.".into(), RecordType::A)],
            ["10.0.0.1"]
        );
        assert_eq!(
            sets[&("web.example.com.".into(), RecordType::AAAA)],
            ["fd00::2"]
        );
        assert_eq!(
            sets[&("n1.web.example.com.".into(), RecordType::A)],
            ["10.0.0.1"]
        );
        assert_eq!(
            sets[&("_http._tcp.web.example.com.".into(), RecordType::SRV)],
            ["0 0 80 n1.web.example.com.", "0 0 81 n2.web.example.com."]
        );
        let bad: BTreeSet<Member> = [member("a.b", "10.0.0.1", 1), member("ok", "nope", 1)].into();
        assert!(record_sets(&cfg(), &bad).is_empty());
    }

    #[test]
    fn a_member_leaving_rewrites_the_shared_sets_and_deletes_its_own() {
        let two: BTreeSet<Member> =
            [member("n1", "10.0.0.1", 80), member("n2", "10.0.0.2", 80)].into();
        let one: BTreeSet<Member> = [member("n1", "10.0.0.1", 80)].into();
        let (write, delete) = changes(&record_sets(&cfg(), &two), &record_sets(&cfg(), &one));
        assert_eq!(
            write[&("web.example.com.".into(), RecordType::A)],
            ["10.0.0.1"]
        );
        assert!(
            !write.contains_key(&("n1.web.example.com.".into(), RecordType::A)),
            "unchanged"
        );
        assert_eq!(
            delete[&("n2.web.example.com.".to_owned(), RecordType::A)],
            ["10.0.0.2"]
        );
        assert_eq!(delete.len(), 1);
        let (write, delete) = changes(&record_sets(&cfg(), &one), &RecordSets::new());
        assert!(write.is_empty());
        assert_eq!(delete.len(), 3);
    }
}
