//! Knot DNS (`knotd`) as the primary of test zones on 127.0.0.1, for tests of RFC 2136
//! publishers; the same surface as [`crate::bind::Bind`] (both deref to
//! [`DnsServer`]).
//!
//! ```ignore
//! use gordon_test_servers::knot::{Key, Knot};
//! let key = Key::random("gordon-key", "hmac-sha256");
//! let Some(knot) = Knot::start("example.test.", &[key]) else { return };
//! assert!(knot.axfr().iter().any(|l| l.starts_with("example.test. 300 IN SOA")));
//! ```
//!
//! `knotd -c DIR/knot.conf` listens on a free port (UDP and TCP) with a fresh
//! directory for zone files, journal, database and control socket, logging to
//! `DIR/server.log`. Each zone starts empty but valid (SOA, NS `ns1.<zone>`, glue
//! `127.0.0.1`). Updatable zones allow `update` and `transfer` to any of the given
//! keys; read-only zones allow `transfer` only, and Knot answers an update there with
//! NOTAUTH and TSIG error BADKEY (where BIND says REFUSED). Updates stay in the
//! journal (`zonefile-sync: -1`): read the state with [`DnsServer::axfr`].

use std::process::Command;

use crate::bind::zone_list;
pub use crate::bind::{DnsServer, Key};
use crate::require;

/// A running `knotd`; everything else is on [`DnsServer`].
#[derive(Debug)]
pub struct Knot(DnsServer);

impl Knot {
    /// Starts `knotd` serving `zone` (absolute, e.g. `example.test.`), updatable and
    /// transferable with any of `tsig`. `None` when `knotd` or `dig` is not installed
    /// (outside CI).
    ///
    /// # Panics
    /// If the server does not start or is not ready within 20 s (with its log).
    pub fn start(zone: &str, tsig: &[Key]) -> Option<Self> {
        Knot::start_zones(&[zone], &[], tsig)
    }

    /// Starts `knotd` with `updatable` zones (the first is [`DnsServer::zone`]) and
    /// `read_only` ones (AXFR with the keys, no updates).
    ///
    /// # Panics
    /// As [`Knot::start`]; also when `updatable` is empty.
    pub fn start_zones(updatable: &[&str], read_only: &[&str], tsig: &[Key]) -> Option<Self> {
        let knotd = require("knotd", "knot")?;
        let zones = zone_list(updatable, read_only);
        let (dir, port) = DnsServer::prepare("knot", &zones);
        let d = dir.path().display();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: \"{d}\"\n\
             control:\n    listen: \"{d}/knot.sock\"\n"
        );
        if !tsig.is_empty() {
            conf.push_str("key:\n");
            for k in tsig {
                let (id, alg, secret) = (&k.name, &k.algorithm, &k.secret);
                conf.push_str(&format!(
                    "  - id: {id}\n    algorithm: {alg}\n    secret: {secret}\n"
                ));
            }
            let keys = tsig
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            conf.push_str(&format!(
                "acl:\n  - id: rw\n    key: [{keys}]\n    action: [update, transfer]\n\
                 \x20 - id: ro\n    key: [{keys}]\n    action: [transfer]\n"
            ));
        }
        conf.push_str(&format!(
            "template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n\
             \x20   journal-content: changes\nzone:\n"
        ));
        for (zone, rw) in &zones {
            conf.push_str(&format!(
                "  - domain: {zone}\n    file: \"{d}/{zone}zone\"\n"
            ));
            if !tsig.is_empty() {
                conf.push_str(if *rw {
                    "    acl: rw\n"
                } else {
                    "    acl: ro\n"
                });
            }
        }
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        let mut cmd = Command::new(knotd);
        cmd.arg("-c").arg(conf_path);
        DnsServer::launch(cmd, dir, port, &zones, tsig).map(Knot)
    }
}

impl std::ops::Deref for Knot {
    type Target = DnsServer;
    fn deref(&self) -> &DnsServer {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_updates_and_transfers() {
        let key = Key::random("test-key", "hmac-sha512");
        let Some(knot) = Knot::start_zones(&["example.test."], &["ro.test."], &[key]) else {
            return;
        };
        assert!(knot
            .axfr()
            .contains(&"ns1.example.test. 300 IN A 127.0.0.1".to_owned()));
        knot.nsupdate(
            "example.test.",
            "update add www.example.test. 60 A 10.0.0.9",
        )
        .unwrap();
        assert!(knot
            .axfr()
            .contains(&"www.example.test. 60 IN A 10.0.0.9".to_owned()));
        let denied = knot.nsupdate("ro.test.", "update add a.ro.test. 60 A 10.0.0.1");
        assert!(denied.unwrap_err().contains("NOTAUTH"));
        assert_eq!(knot.axfr_zone("ro.test.").len(), 3);
    }
}
