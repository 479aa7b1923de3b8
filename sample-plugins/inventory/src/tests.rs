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

fn csv_inventory(text: &str) -> (tempfile::TempDir, Result<Vec<String>, String>) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hosts.csv");
    std::fs::write(&f, text).unwrap();
    let got = inventory(dir.path(), &format!("files = [{f:?}]"))
        .desired()
        .map(|z| lines(&z["example.com."]))
        .map_err(|e| e.message().to_owned());
    (dir, got)
}

#[test]
fn csv_quoted_fields_a_bom_comments_and_any_column_order_work() {
    let (_d, got) = csv_inventory(
        "\u{feff}# exported from the asset database\nTTL,Name,addresses,aliases\n\n600,www,\"10.0.0.1, 2001:db8::1\",\"web;w3\"\n,\"db\",10.0.1.1 10.0.1.2,\n",
    );
    assert_eq!(
        got.unwrap(),
        [
            "www.example.com. A 600 10.0.0.1",
            "www.example.com. AAAA 600 2001:db8::1",
            "web.example.com. CNAME 600 www.example.com.",
            "w3.example.com. CNAME 600 www.example.com.",
            "db.example.com. A 300 10.0.1.1,10.0.1.2",
        ]
    );
}

#[test]
fn a_misspelt_or_missing_csv_column_is_an_error_naming_file_line_and_column() {
    // The misspelling that once read as "hosts without addresses".
    let (_d, got) = csv_inventory("# hosts\nname,adresses\nwww,10.0.0.1\n");
    let err = got.unwrap_err();
    assert!(
        err.contains("hosts.csv") && err.contains("line 2, column 2: unknown column \"adresses\""),
        "{err}"
    );
    let (_d, got) = csv_inventory("name,aliases\nwww,web\n");
    let err = got.unwrap_err();
    assert!(
        err.contains(
            "hosts.csv: line 1: the header has no `addresses` column (it has name, aliases)"
        ),
        "{err}"
    );
    let (_d, got) = csv_inventory("name,addresses,Name\n");
    assert!(got
        .unwrap_err()
        .contains("column 3: column \"Name\" is given twice"));
    let (_d, got) = csv_inventory("");
    assert!(got.unwrap_err().contains("a header line is required"));
}

#[test]
fn bad_csv_rows_name_their_line_and_column() {
    let (_d, got) = csv_inventory("name,addresses,ttl\nwww,10.0.0.1,600\ndb,10.0.0.2,soon\n");
    let err = got.unwrap_err();
    assert!(err.contains("line 3, column 3 (`ttl`)"), "{err}");
    let (_d, got) = csv_inventory("name,addresses\nwww,10.0.0.1,extra\n");
    let err = got.unwrap_err();
    assert!(
        err.contains("line 2: 3 field(s), the header has 2"),
        "{err}"
    );
    let (_d, got) = csv_inventory("name,addresses\n,10.0.0.1\n");
    assert!(got
        .unwrap_err()
        .contains("line 2, column 1 (`name`): the name is empty"));
    // A host that would have no records is an error, not "delete its records".
    let (_d, got) = csv_inventory("name,addresses,aliases\nwww,10.0.0.1,\nold,,\n");
    let err = got.unwrap_err();
    assert!(
        err.contains("hosts.csv line 3: host \"old\": no addresses and no aliases"),
        "{err}"
    );
    let (_d, got) = csv_inventory("name,addresses\nwww,10.0.0.300\n");
    assert!(got
        .unwrap_err()
        .contains("hosts.csv line 2: host \"www\": \"10.0.0.300\" is not an IP address"));
}

#[test]
fn a_csv_zone_column_places_hosts_among_several_zones() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("h.csv");
    std::fs::write(
        &f,
        "name,addresses,zone\nwww,10.0.0.1,example.org.\napi,10.0.0.2,\n",
    )
    .unwrap();
    let cfg: InventoryConfig = toml::from_str(&format!(
        "zones = [\"example.com.\", \"example.org.\"]\nfiles = [{f:?}]"
    ))
    .unwrap();
    let err = Inventory { cfg }.desired().unwrap_err();
    assert!(
        err.message()
            .contains("line 3: host \"api\": `zone` is required"),
        "{err}"
    );
    std::fs::write(&f, "name,addresses,zone\nwww,10.0.0.1,example.org.\n").unwrap();
    let cfg: InventoryConfig = toml::from_str(&format!(
        "zones = [\"example.com.\", \"example.org.\"]\nfiles = [{f:?}]"
    ))
    .unwrap();
    let zones = Inventory { cfg }.desired().unwrap();
    assert_eq!(
        lines(&zones["example.org."]),
        ["www.example.org. A 300 10.0.0.1"]
    );
    assert!(zones["example.com."].is_empty());
}

#[test]
fn a_toml_host_without_records_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("h.toml");
    std::fs::write(&f, "[[host]]\nname = \"old\"\n").unwrap();
    let err = inventory(dir.path(), &format!("files = [{f:?}]"))
        .desired()
        .unwrap_err();
    assert!(
        err.message()
            .contains("host \"old\": no addresses and no aliases"),
        "{err}"
    );
}

#[test]
fn csv_line_numbers_count_comment_lines_all_the_way_down() {
    // Line numbers are counted on from row to row (not from the top each time):
    // comments between rows still count.
    let mut text = String::from("name,addresses\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "h{i},10.0.{}.{}\n# comment {i}\n",
            i / 256,
            i % 256
        ));
    }
    let (_d, got) = csv_inventory(&format!("{text}ok,10.0.0.1\nbad,10.0.0.300\n"));
    let err = got.unwrap_err();
    assert!(
        err.contains("hosts.csv line 2003: host \"bad\": \"10.0.0.300\" is not an IP address"),
        "{err}"
    );
    // Right after comment lines too (the reader's position is before them).
    let (_d, got) = csv_inventory(&format!("{text}# one more\nbad,10.0.0.300\n"));
    let err = got.unwrap_err();
    assert!(err.contains("hosts.csv line 2003: host \"bad\""), "{err}");
    let (_d, got) = csv_inventory(&format!("{text}bad,10.0.0.1,x\n"));
    let err = got.unwrap_err();
    assert!(err.contains("line 2002: 3 field(s)"), "{err}");
}

#[test]
fn its_keys_are_the_ones_it_accepts_each_with_a_doc_line() {
    let keys = Inventory::config_keys();
    gordon_plugin_api::testing::check_keys::<InventoryConfig>(&keys).unwrap();
    let key = |name: &str| keys.iter().find(|k| k.name == name).unwrap();
    let zones = key("zones");
    assert_eq!(
        (zones.kind.as_str(), zones.required),
        ("list of string", true)
    );
    assert_eq!(zones.default, None);
    for name in ["files", "dirs"] {
        assert_eq!(key(name).kind, "list of string", "{name}");
        assert_eq!(key(name).default.as_deref(), Some("[]"), "{name}");
    }
    let ttl = key("default_ttl");
    assert_eq!((ttl.kind.as_str(), ttl.required), ("integer", false));
    assert_eq!(ttl.default.as_deref(), Some("300"));
    assert_eq!(
        ttl.doc,
        "The TTL of hosts that give none, in seconds; 60..=86400."
    );
}
