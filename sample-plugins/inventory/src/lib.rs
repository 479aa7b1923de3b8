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
//! Likewise a host that yields no record (no addresses, no aliases) is an error
//! naming its file and line, as is a CSV column it does not know or a required
//! one that is missing: a misspelt `adresses` column must not read as hosts
//! without addresses.
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
//! CSV (RFC 4180, read with the `csv` crate; a UTF-8 byte order mark, quoted
//! fields, blank lines and `#` comment lines are fine). The header is required and
//! names the columns in any order: `name` and `addresses` must be there, `aliases`,
//! `ttl` and `zone` may be; any other column is an error naming the file, line and
//! column. Lists inside a field are separated by spaces, `;` or `,` (quote the
//! field for commas):
//!
//! ```text
//! name,addresses,aliases,ttl
//! www,"10.0.0.1, 2001:db8::1",web,600
//! db,10.0.1.1;10.0.1.2,,
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{
    export_plugins, tracing, Authority, ConfigKey, Outbox, Plugin, PluginContext, PluginError,
    RecordType, ResourceRecord, ZoneRecords,
};
use serde::Deserialize;

/// `["inventory.authority"]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    /// The zones this inventory is the truth for, absolute names ending in `.` (required).
    ///
    /// Each is sent every run, empty when no host is in it.
    zones: Vec<String>,
    /// Inventory files, TOML or CSV by their extension.
    ///
    /// `files` and `dirs` together must name at least one source.
    #[serde(default)]
    files: Vec<PathBuf>,
    /// Directories whose `*.toml` and `*.csv` files are read, in name order.
    #[serde(default)]
    dirs: Vec<PathBuf>,
    /// The TTL of hosts that give none, in seconds; 60..=86400.
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
    /// Where it was read (CSV: its line), for error messages.
    #[serde(skip)]
    line: Option<u64>,
}

/// One row of a CSV inventory; list fields are split afterwards.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvHost {
    name: String,
    addresses: String,
    #[serde(default)]
    aliases: Option<String>,
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(default)]
    zone: Option<String>,
}

/// The CSV columns, and which of them a header must have.
const CSV_COLUMNS: [&str; 5] = ["name", "addresses", "aliases", "ttl", "zone"];
const CSV_REQUIRED: [&str; 2] = ["name", "addresses"];

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

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

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
        Ok(Inventory { cfg })
    }
}

impl Authority for Inventory {
    async fn run(&self, rrsets: Outbox<ZoneRecords>) -> Result<(), PluginError> {
        // Read everything first: a single unreadable file fails the whole run
        // before anything is sent.
        let started = std::time::Instant::now();
        let zones = self.desired()?;
        tracing::info!(
            zones = zones.len(),
            rrsets = zones.values().map(ZoneRecords::len).sum::<usize>(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Inventory read."
        );
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
            let source = file.display().to_string();
            // Each host is added as it is read: an inventory of a million hosts is
            // never held as hosts and as record sets at once.
            parse_file(&file, &text, &mut |host| {
                self.add_host(&mut zones, &host, &source).map_err(|e| {
                    let at = host.line.map(|l| format!(" line {l}")).unwrap_or_default();
                    PluginError::new(format!("{source}{at}: host {:?}: {e}", host.name))
                })
            })?;
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
        if host.addresses.is_empty() && host.aliases.is_empty() {
            // It would yield no record: read as "this host has no records", it
            // would ask the reconciler to delete what it has.
            return Err("no addresses and no aliases: it would have no records".into());
        }
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
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|head| head.ends_with('.'))
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

/// What a host read from a file is handed to; its error stops the reading.
type EachHost<'a> = dyn FnMut(Host) -> Result<(), PluginError> + 'a;

/// Why reading a CSV file stopped: the file, or what was done with a host.
enum Stop {
    Parse(String),
    Host(PluginError),
}

impl<T: Into<String>> From<T> for Stop {
    fn from(e: T) -> Self {
        Stop::Parse(e.into())
    }
}

/// Reads the hosts of `text` (the file `path`) in order, handing each to `each`.
fn parse_file(path: &Path, text: &str, each: &mut EachHost<'_>) -> Result<(), PluginError> {
    let bad = |e: String| {
        PluginError::new(format!(
            "cannot parse inventory file {}: {e}",
            path.display()
        ))
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => parse_csv(text, each).map_err(|stop| match stop {
            Stop::Parse(e) => bad(e),
            Stop::Host(e) => e,
        }),
        _ => toml::from_str::<TomlInventory>(text)
            .map_err(|e| bad(e.to_string().trim_end().replace('\n', " ")))?
            .host
            .into_iter()
            .try_for_each(each),
    }
}

/// Splits a list field: spaces, `;` or `,` between items.
fn list(field: Option<&str>) -> Vec<String> {
    field
        .unwrap_or("")
        .split([' ', ';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_csv(text: &str, each: &mut EachHost<'_>) -> Result<(), Stop> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    // The csv crate's line numbers do not count comment lines: count them here.
    // Records come in order, so count on from the last position asked for (byte,
    // newlines before it) rather than from the start of the text each time: that
    // was quadratic, minutes for an inventory of a million hosts.
    let counted = std::cell::Cell::new((0usize, 0u64));
    let line_at = |pos: Option<&csv::Position>| -> u64 {
        pos.map_or(0, |p| {
            let byte = (p.byte() as usize).min(text.len());
            let (from, before) = match counted.get() {
                (at, n) if at <= byte => (at, n),
                _ => (0, 0),
            };
            let mut line = before
                + text.as_bytes()[from..byte]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64;
            // A record's position is where the reader started, before the comment
            // lines it skipped: the record is on the line after them.
            let mut at = byte;
            while text[at..].starts_with('#') {
                let Some(end) = text[at..].find('\n') else {
                    break;
                };
                (at, line) = (at + end + 1, line + 1);
            }
            counted.set((at, line));
            line + 1
        })
    };
    let header = reader
        .headers()
        .map_err(|e| csv_error(&e, &line_at))?
        .clone();
    // Nor does the header's position skip leading comment lines.
    let header_line = text
        .lines()
        .position(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map_or(1, |i| i as u64 + 1);
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err("empty file: a header line is required".into());
    }
    let mut columns: Vec<String> = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let column = raw.to_ascii_lowercase();
        if !CSV_COLUMNS.contains(&column.as_str()) {
            return Err(format!(
                "line {header_line}, column {}: unknown column {raw:?} (the columns are {})",
                i + 1,
                CSV_COLUMNS.join(", ")
            )
            .into());
        }
        if columns.contains(&column) {
            return Err(format!(
                "line {header_line}, column {}: column {raw:?} is given twice",
                i + 1
            )
            .into());
        }
        columns.push(column);
    }
    for required in CSV_REQUIRED {
        if !columns.iter().any(|c| c == required) {
            return Err(format!(
                "line {header_line}: the header has no `{required}` column (it has {})",
                header.iter().collect::<Vec<_>>().join(", ")
            )
            .into());
        }
    }
    let columns = csv::StringRecord::from(columns);
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&e, &line_at))?;
        let line = line_at(record.position());
        let row: CsvHost = record
            .deserialize(Some(&columns))
            .map_err(|e| match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => {
                    let at = match err.field() {
                        Some(f) => {
                            let name = columns.get(f as usize).unwrap_or("?");
                            format!("line {line}, column {} (`{name}`)", f + 1)
                        }
                        None => format!("line {line}"),
                    };
                    format!("{at}: {}", err.kind())
                }
                _ => csv_error(&e, &line_at),
            })?;
        if row.name.is_empty() {
            let col = columns.iter().position(|c| c == "name").unwrap_or(0) + 1;
            return Err(format!("line {line}, column {col} (`name`): the name is empty").into());
        }
        each(Host {
            name: row.name,
            zone: row.zone.filter(|z| !z.is_empty()),
            addresses: list(Some(&row.addresses)),
            aliases: list(row.aliases.as_deref()),
            ttl: row.ttl,
            line: Some(line),
        })
        .map_err(Stop::Host)?;
    }
    Ok(())
}

/// A CSV reading error, with the line it happened on (`line_at` reads a position).
fn csv_error(e: &csv::Error, line_at: &dyn Fn(Option<&csv::Position>) -> u64) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let line = line_at(pos.as_ref());
            format!("line {line}: {len} field(s), the header has {expected_len}")
        }
        _ => match e.position() {
            Some(pos) => format!("line {}: {e}", line_at(Some(pos))),
            None => e.to_string(),
        },
    }
}

export_plugins!(authority Inventory);

#[cfg(test)]
mod tests;
