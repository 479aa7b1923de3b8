//! Sample gordon plugins for one DNS zone.
//!
//! - **`dns.enricher`** (phase `enrich`) normalises each event: owner names become
//!   absolute and lowercase (`@` is the apex, a name without a trailing dot is
//!   relative to `zone`, an absolute name must be inside `zone`); a TTL of 0 ("not
//!   set") becomes `default_ttl`, other TTLs must be within 60..=86400; record data is
//!   validated per type and put in canonical form (A, AAAA, CNAME, MX, NS, PTR, SRV,
//!   TXT; SOA is refused), duplicates are removed, a CNAME has exactly one rrdata.
//!   Names that BIND checks as host names (owners of A, AAAA and MX records; NS, MX
//!   and SRV targets; PTR targets in reverse zones) must be host names, so that
//!   `named` accepts the zone. The checks every event source runs
//!   (`gordon_plugin_api::event_json`: no whitespace in names, no IP address where a
//!   host name belongs, no NS at a wildcard, at most 100 records and 65 512 bytes of
//!   TXT data in a set) are run again, for messages from sources that do not. TXT
//!   data is read once into its character-strings (`event_json::txt_strings`) and
//!   written back in the canonical form that reads as the same strings: the text
//!   itself for one string not starting with `"`, otherwise each string quoted.
//! - **`dns.zonefile`** (phase `publish`) keeps an RFC 1035 master file for `zone`
//!   at `path`. Each batch of events is applied in order (an addition replaces the
//!   record set of its name and type, a deletion removes it), then the SOA serial is
//!   bumped once and the file rewritten once, atomically (temporary file, fsync,
//!   rename, fsync of the directory). If the write fails, the batch is rolled back
//!   and every message in it fails. It re-validates every record it writes, refuses
//!   SOA and apex NS records (they come from its configuration) and a CNAME next to
//!   other data, at the apex or at a name server: a message that would make the zone
//!   unloadable fails alone, and the rest of its batch is published. The file is read
//!   back at start-up, so records and serial survive a restart; a file that breaks
//!   any of these rules (BIND would not load it) stops the plugin with an error
//!   naming the file and the record, and is left as it is. It is written at start-up
//!   when it is missing or does not match the configuration (a new SOA, NS or glue),
//!   with a new serial. The serial is
//!   `max(old + 1, YYYYMMDD00 of today, UTC)`: date-based and never decreasing.
//!   Batches from several threads are serialised by a lock; two processes must not
//!   share one `path`.
//!
//! The file holds `$ORIGIN`, `$TTL`, the SOA, the apex NS records and glue, then the
//! records in DNS canonical order (owner labels compared right to left, then type
//! code), one line per rrdata: `<owner relative or @> <ttl> IN <TYPE> <rdata>`. TXT
//! data is written as its character-strings, each quoted (`event_json::quote_txt`):
//! `"` and `\` are backslash-escaped, bytes outside printable ASCII become `\DDD`;
//! `"v=spf1 include:x" "-all"` stays two strings, and a bare text longer than 255
//! bytes is split into several quoted strings on the line.
//!
//! # Configuration
//!
//! A plugin named `dns.x` gets the `["dns"]` table deep-merged with `["dns.x"]`. The
//! shared keys, accepted by both plugins:
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `zone` | required | the zone, an absolute name ending in `.` |
//! | `default_ttl` | `300` | TTL of events with TTL 0, and `$TTL` of the file; 60..=86400 |
//!
//! `dns.enricher` has no keys of its own. `dns.zonefile` also takes:
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `path` | required | the zone file; relative to the working directory; parent directories are created |
//! | `primary_ns` | `ns1.<zone>` | the SOA MNAME |
//! | `hostmaster` | `hostmaster.<zone>` | the SOA RNAME (`user@domain` is accepted) |
//! | `ns` | `[primary_ns]` | the apex NS records |
//! | `refresh` | `3600` | SOA refresh, seconds |
//! | `retry` | `900` | SOA retry, seconds |
//! | `expire` | `1209600` | SOA expire, seconds; at least `refresh + retry` |
//! | `minimum` | `300` | SOA minimum (negative-caching TTL), 0..=86400 |
//! | `ns_addresses` | `{}` | glue: in-zone name server -> IPv4 (A) or IPv6 (AAAA) address |
//!
//! Names in the configuration may be relative to `zone`. An in-zone name server
//! without an entry in `ns_addresses` gets the glue address `127.0.0.1` (with a
//! warning in the log), so that the zone loads out of the box (`named-checkzone`
//! refuses a zone whose in-zone NS has no address); records that events put at that
//! name (A or AAAA) replace the configured glue.
//!
//! ```toml
//! ["dns"]
//! zone = "example.com."
//! default_ttl = 300
//!
//! ["dns.zonefile"]
//! path = "zones/example.com.zone"
//! primary_ns = "ns1"                  # ns1.example.com.
//! hostmaster = "hostmaster@example.com"
//! ns = ["ns1", "ns.provider.net."]
//! ns_addresses = { "ns1" = "192.0.2.53" }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod enricher;
mod rdata;
mod zone_format;
mod zonefile;

pub use enricher::{Enricher, EnricherConfig};
pub use rdata::{MAX_TTL, MAX_TXT_BYTES, MIN_TTL};
pub use zonefile::{ZoneFile, ZoneFileConfig, DEFAULT_GLUE};

gordon_plugin_api::export_plugins!(handler Enricher, handler ZoneFile);

/// The keys both plugins share: their defaults and checks.
mod shared {
    use gordon_plugin_api::PluginError;

    use crate::rdata;

    /// The default of `default_ttl`.
    pub(crate) fn default_ttl() -> u32 {
        300
    }

    /// Checks `zone` and returns it in lowercase.
    pub(crate) fn zone(zone: &str) -> Result<String, PluginError> {
        if !zone.ends_with('.') {
            return Err(PluginError::new(format!(
                "`zone` must be an absolute name ending in '.', got {zone:?}"
            )));
        }
        let lower = zone.to_ascii_lowercase();
        rdata::check_name(&lower, rdata::Rule::Dns, false)
            .map_err(|why| PluginError::new(format!("`zone`: invalid name {zone:?}: {why}")))?;
        Ok(lower)
    }

    /// Checks `default_ttl`.
    pub(crate) fn check_default_ttl(ttl: u32) -> Result<(), PluginError> {
        if !(rdata::MIN_TTL..=rdata::MAX_TTL).contains(&ttl) {
            return Err(PluginError::new(format!(
                "`default_ttl` must be within {}..={}, got {ttl}",
                rdata::MIN_TTL,
                rdata::MAX_TTL
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
