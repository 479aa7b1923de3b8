//! The configuration of `dns.zonefile`, and its resolution to absolute names.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{event_json, ownership, PluginError, RecordType};
use serde::Deserialize;

use crate::rdata::{self, Rule};
use crate::shared;
use crate::zone_format::Soa;

/// The glue address of an in-zone name server that `ns_addresses` does not list.
pub const DEFAULT_GLUE: &str = "127.0.0.1";

/// The configuration of `dns.zonefile`: the `["dns"]` table merged with
/// `["dns.zonefile"]`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneFileConfig {
    /// Shared: the zone, an absolute name ending in `.` (required).
    pub zone: String,
    /// Shared: `$TTL` of the file and TTL of records whose TTL is 0; default 300.
    #[serde(default = "shared::default_ttl")]
    pub default_ttl: u32,
    /// The zone file (required); a relative path is relative to the working directory.
    pub path: PathBuf,
    /// SOA MNAME; default `ns1.<zone>`.
    pub primary_ns: Option<String>,
    /// SOA RNAME, as a name or `user@domain`; default `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// The apex NS records; default `[primary_ns]`.
    pub ns: Option<Vec<String>>,
    /// SOA refresh in seconds; default 3600.
    #[serde(default = "default_refresh")]
    pub refresh: u32,
    /// SOA retry in seconds; default 900.
    #[serde(default = "default_retry")]
    pub retry: u32,
    /// SOA expire in seconds; default 1209600 (two weeks).
    #[serde(default = "default_expire")]
    pub expire: u32,
    /// SOA minimum (negative-caching TTL) in seconds; default 300.
    #[serde(default = "default_minimum")]
    pub minimum: u32,
    /// Glue addresses of in-zone name servers: name -> IPv4 or IPv6 address.
    ///
    /// A listed in-zone name server without one gets [`DEFAULT_GLUE`].
    #[serde(default)]
    pub ns_addresses: BTreeMap<String, String>,
    /// This instance's owner id (default `gordon`), marking the record sets it owns.
    ///
    /// Every record set published gets an owner record holding it
    /// (`gordon_plugin_api::ownership`), and only record sets so marked are changed
    /// or deleted.
    #[serde(default = "default_owner_id")]
    pub owner_id: String,
    /// Take over record sets that exist without any owner record; default `false`.
    ///
    /// Those added to the file by hand, or written by a version from before
    /// ownership: change them and write our owner record. Meant for migrating.
    #[serde(default)]
    pub adopt: bool,
    /// Take over record sets marked by this other owner id (a renamed instance).
    ///
    /// Their owner record is rewritten to ours.
    pub adopt_from_owner: Option<String>,
    /// DANGER: change and delete record sets whatever owns them; default `false`.
    ///
    /// Owner records are still written. A warning is logged whenever it is on.
    #[serde(default)]
    pub manage_unowned: bool,
}

fn default_owner_id() -> String {
    ownership::DEFAULT_OWNER_ID.to_owned()
}

/// How owner records are honoured, as resolved from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct Ownership {
    /// The canonical TXT rrdata of our owner record.
    pub(crate) ours: String,
    /// That of `adopt_from_owner`'s owner record.
    pub(crate) previous: Option<String>,
    pub(crate) adopt: bool,
    pub(crate) manage_unowned: bool,
}

impl Ownership {
    fn resolve(cfg: &ZoneFileConfig) -> Result<Self, PluginError> {
        ownership::check_owner_ids(&cfg.owner_id, cfg.adopt_from_owner.as_deref())
            .map_err(PluginError::new)?;
        let rrdata = |id: &str| event_json::txt_rrdata(&[ownership::value(id)]);
        Ok(Ownership {
            ours: rrdata(&cfg.owner_id),
            previous: cfg.adopt_from_owner.as_deref().map(rrdata),
            adopt: cfg.adopt,
            manage_unowned: cfg.manage_unowned,
        })
    }
}

fn default_refresh() -> u32 {
    3600
}
fn default_retry() -> u32 {
    900
}
fn default_expire() -> u32 {
    1_209_600
}
fn default_minimum() -> u32 {
    300
}

/// The configuration, checked and resolved to absolute names.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) zone: String,
    pub(crate) default_ttl: u32,
    pub(crate) path: PathBuf,
    pub(crate) soa: Soa,
    pub(crate) ns: Vec<String>,
    /// (name, A or AAAA, address) for each in-zone name server.
    pub(crate) glue: Vec<(String, RecordType, String)>,
    /// Name servers that got [`DEFAULT_GLUE`].
    pub(crate) defaulted: Vec<String>,
    pub(crate) ownership: Ownership,
}

fn hostmaster_name(raw: &str) -> Result<String, PluginError> {
    let Some((user, domain)) = raw.split_once('@') else {
        return Ok(raw.to_owned());
    };
    if user.contains('.') || user.is_empty() {
        return Err(PluginError::new(format!(
            "`hostmaster`: cannot write {raw:?} as a name (empty local part or one with dots)"
        )));
    }
    let dot = if domain.ends_with('.') { "" } else { "." };
    Ok(format!("{user}.{domain}{dot}"))
}

fn check_soa_number(key: &str, value: u32) -> Result<(), PluginError> {
    if value == 0 || value > i32::MAX as u32 {
        return Err(PluginError::new(format!(
            "`{key}` must be within 1..={}, got {value}",
            i32::MAX
        )));
    }
    Ok(())
}

impl Settings {
    pub(crate) fn resolve(cfg: &ZoneFileConfig) -> Result<Self, PluginError> {
        let zone = shared::zone(&cfg.zone)?;
        shared::check_default_ttl(cfg.default_ttl)?;
        if cfg.path.as_os_str().is_empty() {
            return Err(PluginError::new("`path` must not be empty"));
        }
        let path = std::path::absolute(&cfg.path)
            .map_err(|e| PluginError::new(format!("`path` {}: {e}", cfg.path.display())))?;
        if path.file_name().is_none() {
            return Err(PluginError::new(format!(
                "`path` {} must name a file",
                path.display()
            )));
        }
        let mname = match &cfg.primary_ns {
            Some(n) => rdata::config_name(n, &zone, Rule::Host, "primary_ns")?,
            None => rdata::qualify("ns1", &zone),
        };
        let rname = match &cfg.hostmaster {
            Some(h) => rdata::config_name(&hostmaster_name(h)?, &zone, Rule::Dns, "hostmaster")?,
            None => rdata::qualify("hostmaster", &zone),
        };
        let mut ns: Vec<String> = Vec::new();
        for raw in cfg.ns.clone().unwrap_or_else(|| vec![mname.clone()]) {
            let name = rdata::config_name(&raw, &zone, Rule::Host, "ns")?;
            if ns.contains(&name) {
                return Err(PluginError::new(format!("`ns` lists {name} twice")));
            }
            ns.push(name);
        }
        if ns.is_empty() {
            return Err(PluginError::new("`ns` must list at least one name server"));
        }
        check_soa_number("refresh", cfg.refresh)?;
        check_soa_number("retry", cfg.retry)?;
        check_soa_number("expire", cfg.expire)?;
        if cfg.minimum > rdata::MAX_TTL {
            return Err(PluginError::new(format!(
                "`minimum` must be within 0..={}, got {}",
                rdata::MAX_TTL,
                cfg.minimum
            )));
        }
        let least = u64::from(cfg.refresh) + u64::from(cfg.retry);
        if u64::from(cfg.expire) < least {
            return Err(PluginError::new(format!(
                "`expire` ({}) must be at least `refresh` + `retry` ({least})",
                cfg.expire
            )));
        }
        let mut addresses: BTreeMap<String, (RecordType, String)> = BTreeMap::new();
        for (raw, addr) in &cfg.ns_addresses {
            let name = rdata::config_name(raw, &zone, Rule::Host, "ns_addresses")?;
            if !ns.contains(&name) {
                return Err(PluginError::new(format!(
                    "`ns_addresses`: {name} is not listed in `ns`"
                )));
            }
            if !rdata::in_zone(&name, &zone) {
                return Err(PluginError::new(format!(
                    "`ns_addresses`: {name} is outside zone {zone} and needs no glue"
                )));
            }
            let parsed = match (
                addr.trim().parse::<Ipv4Addr>(),
                addr.trim().parse::<Ipv6Addr>(),
            ) {
                (Ok(v4), _) => (RecordType::A, v4.to_string()),
                (_, Ok(v6)) => (RecordType::AAAA, v6.to_string()),
                _ => {
                    return Err(PluginError::new(format!(
                        "`ns_addresses`: {addr:?} for {name} is not an IPv4 or IPv6 address"
                    )))
                }
            };
            if addresses.insert(name.clone(), parsed).is_some() {
                return Err(PluginError::new(format!(
                    "`ns_addresses` gives {name} twice"
                )));
            }
        }
        let mut glue = Vec::new();
        let mut defaulted = Vec::new();
        for name in ns.iter().filter(|n| rdata::in_zone(n, &zone)) {
            let (rtype, addr) = addresses.remove(name).unwrap_or_else(|| {
                defaulted.push(name.clone());
                (RecordType::A, DEFAULT_GLUE.to_owned())
            });
            glue.push((name.clone(), rtype, addr));
        }
        let ownership = Ownership::resolve(cfg)?;
        let soa = Soa {
            mname,
            rname,
            serial: 0,
            refresh: cfg.refresh,
            retry: cfg.retry,
            expire: cfg.expire,
            minimum: cfg.minimum,
        };
        Ok(Settings {
            zone,
            default_ttl: cfg.default_ttl,
            path,
            soa,
            ns,
            glue,
            defaulted,
            ownership,
        })
    }
}
