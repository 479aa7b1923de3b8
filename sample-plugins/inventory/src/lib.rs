//! `inventory.authority`: the janitor's source of truth, read from host inventory
//! files.
//!
//! Each host yields an A and/or AAAA record set for its addresses and a CNAME per
//! alias; the authority sends one message per configured zone, every zone, every
//! run (a zone with no hosts is sent empty, and the reconciler refuses to delete
//! anything for it).
//!
//! **A file that cannot be read or parsed fails the run.** It is never read as "no
//! hosts": an empty desired set would ask the reconciler to delete every record.
//!
//! ```toml
//! ["inventory.authority"]
//! zones = ["example.com."]          # zones this inventory is the truth for
//! files = ["inventory/hosts.toml"]  # TOML or CSV files (by extension)
//! dirs = ["inventory/hosts.d"]      # every *.toml / *.csv inside, sorted
//! default_ttl = 300
//! ```
//!
//! TOML:
//!
//! ```toml
//! [[host]]
//! name = "www"                              # relative to its zone, or absolute
//! zone = "example.com."                     # optional when one zone is configured
//! addresses = ["10.0.0.1", "2001:db8::1"]
//! aliases = ["web"]                         # web.example.com. CNAME www.example.com.
//! ttl = 600                                 # optional
//! ```
//!
//! CSV (header required; lists separated by spaces or `;`):
//!
//! ```text
//! name,addresses,aliases,ttl
//! www,10.0.0.1 2001:db8::1,web,600
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use gordon_plugin_api::{
    export_plugins, Authority, Outbox, Plugin, PluginContext, PluginError, RecordType,
    ResourceRecord, ZoneRecords,
};
use serde::Deserialize;

/// `["inventory.authority"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    zones: Vec<String>,
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    dirs: Vec<PathBuf>,
    #[serde(default = "default_ttl")]
    default_ttl: u32,
}

const fn default_ttl() -> u32 {
    300
}

/// One host of an inventory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Host {
    name: String,
    zone: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
    ttl: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlInventory {
    #[serde(default)]
    host: Vec<Host>,
}

/// The authority.
pub struct Inventory {
    cfg: InventoryConfig,
}

impl Plugin for Inventory {
    const NAME: &'static str = "inventory.authority";
    const DESCRIPTION: &'static str = "Desired DNS records from host inventory files (TOML, CSV)";
    type Config = InventoryConfig;

    fn validate_config(cfg: &InventoryConfig) -> Result<(), PluginError> {
        if cfg.zones.is_empty() {
            return Err(PluginError::new("`zones` must name at least one zone"));
        }
        if let Some(z) = cfg.zones.iter().find(|z| !z.ends_with('.')) {
            return Err(PluginError::new(format!(
                "`zones`: {z:?} must be absolute (end with a dot)"
            )));
        }
        if cfg.files.is_empty() && cfg.dirs.is_empty() {
            return Err(PluginError::new(
                "give `files` and/or `dirs` to read the inventory from",
            ));
        }
        if !(60..=86_400).contains(&cfg.default_ttl) {
            return Err(PluginError::new("`default_ttl` must be from 60 to 86400"));
        }
        Ok(())
    }

    fn new(cfg: InventoryConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
        Self::validate_config(&cfg)?;
        Ok(Inventory { cfg })
    }
}

impl Authority for Inventory {
    async fn run(&self, rrsets: Outbox<ZoneRecords>) -> Result<(), PluginError> {
        // Read everything first: a single unreadable file fails the whole run
        // before anything is sent.
        let zones = self.desired()?;
        for (_, records) in zones {
            rrsets.send(records).await?;
        }
        Ok(())
    }
}

impl Inventory {
    /// Every inventory file, in order.
    fn sources(&self) -> Result<Vec<PathBuf>, PluginError> {
        let mut files = self.cfg.files.clone();
        for dir in &self.cfg.dirs {
            let entries = std::fs::read_dir(dir).map_err(|e| {
                PluginError::new(format!(
                    "cannot read inventory directory {}: {e}",
                    dir.display()
                ))
            })?;
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in entries {
                let path = entry
                    .map_err(|e| PluginError::new(format!("cannot list {}: {e}", dir.display())))?
                    .path();
                if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("toml" | "csv")
                ) {
                    found.push(path);
                }
            }
            found.sort();
            files.extend(found);
        }
        Ok(files)
    }

    /// The desired record sets, per zone.
    pub fn desired(&self) -> Result<BTreeMap<String, ZoneRecords>, PluginError> {
        let mut zones: BTreeMap<String, ZoneRecords> = self
            .cfg
            .zones
            .iter()
            .map(|z| {
                (
                    z.to_ascii_lowercase(),
                    ZoneRecords::new(&z.to_ascii_lowercase()),
                )
            })
            .collect();
        for file in self.sources()? {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                PluginError::new(format!(
                    "cannot read inventory file {}: {e}",
                    file.display()
                ))
            })?;
            let hosts = parse_file(&file, &text)?;
            let source = file.display().to_string();
            for host in hosts {
                self.add_host(&mut zones, &host, &source).map_err(|e| {
                    PluginError::new(format!("{source}: host {:?}: {e}", host.name))
                })?;
            }
        }
        Ok(zones)
    }

    fn add_host(
        &self,
        zones: &mut BTreeMap<String, ZoneRecords>,
        host: &Host,
        source: &str,
    ) -> Result<(), String> {
        let zone = match &host.zone {
            Some(z) => z.to_ascii_lowercase(),
            None if zones.len() == 1 => zones.keys().next().cloned().unwrap_or_default(),
            None if host.name.ends_with('.') => zones
                .keys()
                .filter(|z| in_zone(&host.name.to_ascii_lowercase(), z))
                .max_by_key(|z| z.len())
                .cloned()
                .ok_or("not inside any configured zone")?,
            None => return Err("`zone` is required when several zones are configured".into()),
        };
        let records = zones
            .get_mut(&zone)
            .ok_or_else(|| format!("zone {zone} is not in `zones`"))?;
        let fqdn = qualify(&host.name, &zone)?;
        let ttl = host.ttl.unwrap_or(self.cfg.default_ttl);
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for a in &host.addresses {
            match a.trim().parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => v4.push(ip.to_string()),
                Ok(IpAddr::V6(ip)) => v6.push(ip.to_string()),
                Err(_) => return Err(format!("{a:?} is not an IP address")),
            }
        }
        for (rtype, list) in [(RecordType::A, v4), (RecordType::AAAA, v6)] {
            if !list.is_empty() {
                let mut r = ResourceRecord::new(&fqdn, rtype, list);
                r.set_ttl(ttl);
                records.push(r, source);
            }
        }
        for alias in &host.aliases {
            let mut r = ResourceRecord::new(&qualify(alias, &zone)?, RecordType::CNAME, [&fqdn]);
            r.set_ttl(ttl);
            records.push(r, source);
        }
        Ok(())
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Makes `name` absolute inside `zone`; an absolute name must be inside it.
fn qualify(name: &str, zone: &str) -> Result<String, String> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err("empty name".into());
    }
    let fqdn = if name == "@" {
        zone.to_owned()
    } else if name.ends_with('.') {
        name
    } else {
        format!("{name}.{zone}")
    };
    if !in_zone(&fqdn, zone) {
        return Err(format!("{fqdn} is outside zone {zone}"));
    }
    Ok(fqdn)
}

fn parse_file(path: &Path, text: &str) -> Result<Vec<Host>, PluginError> {
    let bad = |e: String| {
        PluginError::new(format!(
            "cannot parse inventory file {}: {e}",
            path.display()
        ))
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => parse_csv(text).map_err(bad),
        _ => toml::from_str::<TomlInventory>(text)
            .map(|inv| inv.host)
            .map_err(|e| bad(e.to_string().trim_end().replace('\n', " "))),
    }
}

fn parse_csv(text: &str) -> Result<Vec<Host>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, header) = lines
        .next()
        .ok_or("empty file: a header line is required")?;
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| columns.iter().position(|c| c == name);
    let name_col = col("name").ok_or("the header has no `name` column")?;
    let (addr_col, alias_col, ttl_col) = (col("addresses"), col("aliases"), col("ttl"));
    let list = |cell: Option<&str>| -> Vec<String> {
        cell.unwrap_or("")
            .split([' ', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut hosts = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() > columns.len() {
            return Err(format!(
                "line {}: {} cells, the header has {}",
                i + 1,
                cells.len(),
                columns.len()
            ));
        }
        let cell = |c: Option<usize>| c.and_then(|c| cells.get(c).copied());
        let ttl = match cell(ttl_col).map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Some(
                t.parse()
                    .map_err(|_| format!("line {}: ttl {t:?} is not a number", i + 1))?,
            ),
            None => None,
        };
        hosts.push(Host {
            name: cell(Some(name_col)).unwrap_or("").trim().to_owned(),
            zone: None,
            addresses: list(cell(addr_col)),
            aliases: list(cell(alias_col)),
            ttl,
        });
    }
    Ok(hosts)
}

export_plugins!(authority Inventory);

#[cfg(test)]
mod tests;
