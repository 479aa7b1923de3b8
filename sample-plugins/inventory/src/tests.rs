use gordon_plugin_api::testing;

use super::*;

fn inventory(dir: &Path, extra: &str) -> Inventory {
    let cfg: InventoryConfig =
        toml::from_str(&format!("zones = [\"example.com.\"]\n{extra}")).unwrap();
    let _ = dir;
    Inventory { cfg }
}

fn lines(z: &ZoneRecords) -> Vec<String> {
    z.rrsets()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name(),
                r.rtype(),
                r.ttl(),
                r.rrdatas().collect::<Vec<_>>().join(",")
            )
        })
        .collect()
}

#[test]
fn toml_and_csv_hosts_become_record_sets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "[[host]]\nname = \"www\"\naddresses = [\"10.0.0.1\", \"2001:db8::1\", \"10.0.0.2\"]\naliases = [\"web\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.csv"),
        "name,addresses,aliases,ttl\ndb,10.0.1.1;10.0.1.2,,600\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not an inventory").unwrap();
    let inv = inventory(dir.path(), &format!("dirs = [{:?}]", dir.path()));
    let zones = inv.desired().unwrap();
    let z = &zones["example.com."];
    assert_eq!(
        lines(z),
        [
            "www.example.com. A 300 10.0.0.1,10.0.0.2",
            "www.example.com. AAAA 300 2001:db8::1",
            "web.example.com. CNAME 300 www.example.com.",
            "db.example.com. A 600 10.0.1.1,10.0.1.2",
        ]
    );
    assert!(z.iter().next().unwrap().1.ends_with("a.toml"));
}

#[test]
fn an_unreadable_file_fails_instead_of_reading_as_no_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let inv = inventory(dir.path(), &format!("files = [{missing:?}]"));
    let err = inv.desired().unwrap_err();
    assert!(
        err.message().contains("cannot read inventory file")
            && err.message().contains("missing.toml"),
        "{err}"
    );
    std::fs::write(dir.path().join("broken.toml"), "[[host]]\nname = \n").unwrap();
    let inv = inventory(
        dir.path(),
        &format!("files = [{:?}]", dir.path().join("broken.toml")),
    );
    assert!(inv
        .desired()
        .unwrap_err()
        .message()
        .contains("cannot parse inventory file"));
    let inv = inventory(
        dir.path(),
        &format!("dirs = [{:?}]", dir.path().join("nope")),
    );
    assert!(inv
        .desired()
        .unwrap_err()
        .message()
        .contains("cannot read inventory directory"));
}

#[test]
fn bad_hosts_are_errors_naming_file_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("h.toml");
    std::fs::write(&f, "[[host]]\nname = \"x\"\naddresses = [\"300.1.1.1\"]\n").unwrap();
    let err = inventory(dir.path(), &format!("files = [{f:?}]"))
        .desired()
        .unwrap_err();
    assert!(
        err.message().contains("h.toml")
            && err.message().contains("\"x\"")
            && err.message().contains("300.1.1.1"),
        "{err}"
    );
    std::fs::write(
        &f,
        "[[host]]\nname = \"x.other.org.\"\naddresses = [\"10.0.0.1\"]\n",
    )
    .unwrap();
    let err = inventory(dir.path(), &format!("files = [{f:?}]"))
        .desired()
        .unwrap_err();
    assert!(err.message().contains("outside zone"), "{err}");
}

#[test]
fn config_is_validated() {
    assert!(
        testing::validate::<Inventory>("zones = []\nfiles = [\"a\"]")
            .unwrap_err()
            .message()
            .contains("`zones`")
    );
    assert!(testing::validate::<Inventory>("zones = [\"a.\"]")
        .unwrap_err()
        .message()
        .contains("`files`"));
    assert!(
        testing::validate::<Inventory>("zones = [\"a\"]\nfiles = [\"x\"]")
            .unwrap_err()
            .message()
            .contains("absolute")
    );
}
