//! Helpers shared by the tests.

use std::ops::Deref;

use gordon_plugin_api::testing::{self, HandlerHarness};
use gordon_plugin_api::{Action, EventMessage, PluginError};
use gordon_plugin_rfc2136::Rfc2136;
use gordon_test_servers::bind::{Bind, DnsServer, Key};
use gordon_test_servers::knot::Knot;

/// The zone every server serves and the plugin updates.
pub const ZONE: &str = "example.test.";

/// Which server a suite test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Knot,
}

/// Starts a server of `kind` with [`ZONE`] updatable with `keys`, and `read_only`
/// zones; `None` when it is not installed (outside CI).
pub fn start(
    kind: Kind,
    read_only: &[&str],
    keys: &[Key],
) -> Option<Box<dyn Deref<Target = DnsServer>>> {
    match kind {
        Kind::Bind => Bind::start_zones(&[ZONE], read_only, keys).map(|s| Box::new(s) as Box<_>),
        Kind::Knot => Knot::start_zones(&[ZONE], read_only, keys).map(|s| Box::new(s) as Box<_>),
    }
}

/// A fresh key named `gordon-key`.
pub fn key(algorithm: &str) -> Key {
    Key::random("gordon-key", algorithm)
}

/// The plugin under test, with its key file kept alive.
pub struct Publisher {
    pub harness: HandlerHarness<Rfc2136>,
    _dir: tempfile::TempDir,
}

impl Publisher {
    /// Handles a batch; one result per message.
    pub fn batch(&self, msgs: Vec<EventMessage>) -> Vec<Result<EventMessage, PluginError>> {
        self.harness.handle_batch(msgs)
    }
}

/// Configuration text for a publisher of `zone` at `addr` with `key` in a key file
/// under `dir`, with short retries; `extra` is appended. When `extra` gives
/// `servers`, `addr` is left out.
pub fn config(dir: &std::path::Path, addr: &str, key: &Key, zone: &str, extra: &str) -> String {
    let path = dir.join("gordon.key");
    std::fs::write(&path, key.bind_stanza()).expect("write key file");
    let server = if extra.contains("servers =") {
        String::new()
    } else {
        format!("server = \"{addr}\"\n")
    };
    let mut text = format!(
        "zone = \"{zone}\"\n{server}tsig_key_file = \"{}\"\n{extra}\n",
        path.display()
    );
    for (k, v) in [
        ("timeout_ms", "3000"),
        ("retries", "1"),
        ("retry_backoff_ms", "10"),
    ] {
        if !extra.contains(&format!("{k} =")) {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    text
}

/// A publisher of `zone` on `server`, signing with `key`.
pub fn publisher(server: &DnsServer, key: &Key, zone: &str, extra: &str) -> Publisher {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(dir.path(), &server.addr(), key, zone, extra);
    let harness = testing::handler::<Rfc2136>(&text).expect("build the publisher");
    Publisher { harness, _dir: dir }
}

/// An addition event.
pub fn add(name: &str, rtype: &str, rrdatas: &[&str]) -> EventMessage {
    testing::event(name, rtype, rrdatas)
}

/// A deletion event.
pub fn del(name: &str, rtype: &str) -> EventMessage {
    let mut msg = testing::event(name, rtype, &[]);
    msg.set_action(Action::Deletions);
    msg
}

/// The error texts of failed results (and `ok` for the others).
pub fn outcomes(results: &[Result<EventMessage, PluginError>]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            r.as_ref()
                .map_or_else(|e| e.to_string(), |_| "ok".to_owned())
        })
        .collect()
}

/// Asserts that every result is a success.
#[track_caller]
pub fn all_ok(results: &[Result<EventMessage, PluginError>]) {
    let texts = outcomes(results);
    assert!(texts.iter().all(|t| t == "ok"), "failures: {texts:#?}");
}

/// `ttl rdata` of each record of `name` (absolute) and `rtype`, sorted, by AXFR.
pub fn rrset(server: &DnsServer, name: &str, rtype: &str) -> Vec<String> {
    let mut out: Vec<String> = server
        .axfr()
        .iter()
        .filter_map(|line| {
            let f: Vec<&str> = line.splitn(5, ' ').collect();
            (f.len() == 5 && f[0] == name && f[3] == rtype).then(|| format!("{} {}", f[1], f[4]))
        })
        .collect();
    out.sort();
    out
}

/// The zone's SOA serial, by AXFR.
pub fn serial(server: &DnsServer) -> u32 {
    let soa = server
        .axfr()
        .into_iter()
        .find(|l| l.split(' ').nth(3) == Some("SOA"))
        .expect("a SOA");
    soa.split(' ')
        .nth(6)
        .and_then(|s| s.parse().ok())
        .expect("a serial")
}
