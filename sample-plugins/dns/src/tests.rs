//! The configuration keys both plugins describe.

use gordon_plugin_api::{ConfigKey, Plugin};

use crate::{Enricher, EnricherConfig, ZoneFile, ZoneFileConfig};

/// Checks `keys` with the SDK's test kit.
fn check_keys<T: serde::de::DeserializeOwned>(keys: &[ConfigKey]) {
    gordon_plugin_api::testing::check_keys::<T>(keys).unwrap();
}

fn key<'a>(keys: &'a [ConfigKey], name: &str) -> &'a ConfigKey {
    keys.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("no key {name} in {keys:?}"))
}

#[test]
fn the_enricher_describes_the_shared_keys() {
    let keys = Enricher::config_keys();
    check_keys::<EnricherConfig>(&keys);
    let zone = key(&keys, "zone");
    assert_eq!((zone.kind.as_str(), zone.required), ("string", true));
    assert_eq!(
        zone.doc,
        "Shared: the zone, an absolute name ending in `.` (required)."
    );
    let ttl = key(&keys, "default_ttl");
    assert_eq!((ttl.kind.as_str(), ttl.required), ("integer", false));
    assert_eq!(ttl.default.as_deref(), Some("300"));
}

#[test]
fn the_zone_file_describes_its_keys() {
    let keys = ZoneFile::config_keys();
    check_keys::<ZoneFileConfig>(&keys);
    let path = key(&keys, "path");
    assert_eq!((path.kind.as_str(), path.required), ("string", true));
    assert_eq!(path.default, None);
    assert!(
        path.doc.starts_with("The zone file (required)"),
        "{}",
        path.doc
    );
    for (name, default) in [
        ("default_ttl", "300"),
        ("refresh", "3600"),
        ("retry", "900"),
        ("expire", "1209600"),
        ("minimum", "300"),
    ] {
        let k = key(&keys, name);
        assert_eq!(k.kind, "integer", "{name}");
        assert_eq!(k.default.as_deref(), Some(default), "{name}");
    }
    let ns = key(&keys, "ns");
    assert_eq!((ns.kind.as_str(), ns.required), ("list of string", false));
    assert_eq!(ns.default, None, "its default depends on `primary_ns`");
    assert_eq!(key(&keys, "ns_addresses").kind, "table of string");
    assert_eq!(
        key(&keys, "owner_id").default.as_deref(),
        Some(r#""gordon""#)
    );
    assert_eq!(key(&keys, "adopt").default.as_deref(), Some("false"));
    let unowned = key(&keys, "manage_unowned");
    assert_eq!(unowned.kind, "boolean");
    assert!(unowned.doc.starts_with("DANGER"), "{}", unowned.doc);
    assert!(!key(&keys, "primary_ns").required);
}
