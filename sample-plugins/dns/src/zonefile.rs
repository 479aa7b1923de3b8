//! `dns.zonefile`: keeps an RFC 1035 master file, rewritten atomically per batch.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gordon_plugin_api::{event_json, ownership, tracing};
use gordon_plugin_api::{
    format_rfc3339, Action, EventMessage, Failures, MessageHandler, Plugin, PluginContext,
    PluginError, RecordType,
};

use crate::rdata;
use crate::zone_format::{self, Header, Key, RRset, Records, Soa};

mod config;

use config::Settings;
pub use config::{ZoneFileConfig, DEFAULT_GLUE};

/// The zone as held in memory.
#[derive(Clone, Debug, Default)]
struct State {
    serial: u32,
    records: Records,
}

/// One undo step: the record set `key` had before a change.
struct Undo {
    key: Key,
    old: Option<RRset>,
}

/// `dns.zonefile` (phase `publish`): applies events to an RFC 1035 zone file.
#[derive(Debug)]
pub struct ZoneFile {
    settings: Settings,
    state: Mutex<State>,
    ctx: PluginContext,
}

impl Plugin for ZoneFile {
    const NAME: &'static str = "dns.zonefile";
    const DESCRIPTION: &'static str = "Publishes DNS events to an RFC 1035 zone file, atomically";
    type Config = ZoneFileConfig;

    fn validate_config(config: &ZoneFileConfig) -> Result<(), PluginError> {
        Settings::resolve(config).map(|_| ())
    }

    fn new(config: ZoneFileConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = Settings::resolve(&config)?;
        if settings.ownership.manage_unowned {
            tracing::warn!("{}", config::Ownership::MANAGE_UNOWNED_WARNING);
        }
        for name in &settings.defaulted {
            tracing::warn!(
                "name server {name} has no address in `ns_addresses`; its glue is {DEFAULT_GLUE}"
            );
        }
        let (state, existing) = load(&settings)?;
        let plugin = ZoneFile {
            settings,
            state: Mutex::new(state),
            ctx,
        };
        plugin.write_if_changed(existing.as_deref())?;
        Ok(plugin)
    }
}

impl MessageHandler for ZoneFile {
    const PHASE: &'static str = "publish";

    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        match self.process(std::slice::from_mut(msg)).into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    fn handle_batch(&self, msgs: &mut [EventMessage], failures: &mut Failures) {
        for (index, error) in self.process(msgs) {
            failures.push(index, error);
        }
    }
}

/// Today's date serial, `YYYYMMDD00` in UTC.
fn today_serial() -> u32 {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let date: String = format_rfc3339(ns)
        .chars()
        .take(10)
        .filter(char::is_ascii_digit)
        .collect();
    date.parse::<u32>()
        .ok()
        .and_then(|d| d.checked_mul(100))
        .unwrap_or(0)
}

/// The serial after `old`: one more, but at least today's `YYYYMMDD00`.
pub(crate) fn next_serial(old: u32, today: u32) -> u32 {
    old.saturating_add(1).max(today)
}

/// Reads the zone file if there is one. Returns the state and the file's text.
fn load(s: &Settings) -> Result<(State, Option<String>), PluginError> {
    let path = s.path.display();
    let text = match fs::read_to_string(&s.path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok((
                State {
                    serial: today_serial(),
                    records: Records::new(),
                },
                None,
            ));
        }
        Err(e) => {
            return Err(PluginError::new(format!(
                "cannot read zone file {path}: {e}"
            )))
        }
    };
    let fail = |why: String| PluginError::new(format!("cannot load zone file {path}: {why}"));
    let parsed = zone_format::parse(&text).map_err(fail)?;
    if parsed.origin.as_deref() != Some(s.zone.as_str()) {
        let origin = parsed.origin.unwrap_or_else(|| "no $ORIGIN".to_owned());
        return Err(fail(format!("it is for {origin}, not zone {}", s.zone)));
    }
    let serial = parsed
        .serial
        .ok_or_else(|| fail("no SOA record".to_owned()))?;
    let mut records = Records::new();
    for r in parsed.records {
        let at = |e: String| fail(format!("line {}: {e}", r.line));
        rdata::check_type(r.rtype, &r.name).map_err(|e| at(e.to_string()))?;
        let name = rdata::owner(&r.name, r.rtype, &s.zone).map_err(|e| at(e.to_string()))?;
        let ttl =
            rdata::ttl(r.ttl, s.default_ttl, &name, r.rtype).map_err(|e| at(e.to_string()))?;
        // TXT data is read back as its canonical rrdata, as events hold it.
        let data = rdata::canonical(r.rtype, &r.data, &name, &s.zone).map_err(at)?;
        let set = records
            .entry(zone_format::key(&name, r.rtype))
            .or_insert_with(|| RRset {
                name,
                ttl,
                rrdatas: Vec::new(),
            });
        if !set.rrdatas.contains(&data) {
            set.rrdatas.push(data);
        }
    }
    check_loaded(s, &records).map_err(fail)?;
    Ok((State { serial, records }, Some(text)))
}

/// Checks what a file read back holds as a whole, as each event was checked when it
/// was published: a file that BIND would not load (edited by hand, or written by an
/// older version) stops the plugin with the reason, rather than being served on.
fn check_loaded(s: &Settings, records: &Records) -> Result<(), String> {
    for ((_, rtype), set) in records {
        let at = |why: String| format!("{} {rtype}: {why}", set.name);
        event_json::check_rrset_size(*rtype, &set.rrdatas).map_err(at)?;
        if *rtype == RecordType::CNAME {
            if set.rrdatas.len() != 1 {
                return Err(at(format!(
                    "{} CNAME records; a name has at most one",
                    set.rrdatas.len()
                )));
            }
            check_cname(s, records, &set.name, *rtype).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Refuses a CNAME next to other data, and other data next to a CNAME: BIND refuses
/// to load such a zone ("CNAME and other data").
fn check_cname(
    s: &Settings,
    records: &Records,
    name: &str,
    rtype: RecordType,
) -> Result<(), PluginError> {
    let (labels, _) = zone_format::key(name, rtype);
    let range = (labels.clone(), RecordType(0))..=(labels, RecordType(u16::MAX));
    let present: Vec<RecordType> = records.range(range).map(|((_, t), _)| *t).collect();
    if rtype == RecordType::CNAME {
        if name == s.zone {
            return Err(PluginError::new(format!(
                "cannot add a CNAME at the zone apex {name}: it has SOA and NS records"
            )));
        }
        if s.ns.iter().any(|n| n == name) {
            return Err(PluginError::new(format!(
                "cannot add a CNAME at {name}: it is a name server of zone {}",
                s.zone
            )));
        }
        let others: Vec<String> = present
            .iter()
            .filter(|t| **t != RecordType::CNAME)
            .map(|t| t.name().into_owned())
            .collect();
        if !others.is_empty() {
            return Err(PluginError::new(format!(
                "cannot add a CNAME at {name}: the name has {} records",
                others.join(", ")
            )));
        }
    } else if present.contains(&RecordType::CNAME) {
        return Err(PluginError::new(format!(
            "cannot add {rtype} records at {name}: the name has a CNAME record"
        )));
    }
    Ok(())
}

/// Writes `data` to `path` atomically: `<path>.tmp` in the same directory, fsync,
/// rename over `path`, fsync of the directory. Creates the directory if needed.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path names no file"))?
        .to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    fs::create_dir_all(&dir)?;
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl ZoneFile {
    fn zone(&self) -> &str {
        &self.settings.zone
    }

    /// The file text for `state`. Configured glue is left out for a name that has
    /// its own A or AAAA records.
    fn render(&self, state: &State) -> String {
        let has_address = |name: &str| {
            [RecordType::A, RecordType::AAAA]
                .iter()
                .any(|t| state.records.contains_key(&zone_format::key(name, *t)))
        };
        let glue = self
            .settings
            .glue
            .iter()
            .filter(|(name, _, _)| !has_address(name))
            .map(|(name, rtype, addr)| (name.as_str(), *rtype, addr.as_str()))
            .collect();
        let header = Header {
            origin: self.zone(),
            default_ttl: self.settings.default_ttl,
            soa: Soa {
                serial: state.serial,
                ..self.settings.soa.clone()
            },
            ns: &self.settings.ns,
            glue,
        };
        zone_format::render(&header, &state.records)
    }

    /// At start-up: writes the file unless it already holds exactly this state and
    /// configuration (then the serial is kept as it is).
    fn write_if_changed(&self, existing: Option<&str>) -> Result<(), PluginError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = self.render(&state);
        if existing == Some(text.as_str()) {
            return Ok(());
        }
        if existing.is_some() {
            state.serial = next_serial(state.serial, today_serial());
            text = self.render(&state);
        }
        write_atomically(&self.settings.path, text.as_bytes()).map_err(|e| {
            PluginError::new(format!(
                "cannot write zone file {}: {e}",
                self.settings.path.display()
            ))
        })?;
        self.emit_metrics(&state);
        Ok(())
    }

    fn emit_metrics(&self, state: &State) {
        let metrics = self.ctx.metrics();
        let tags = [("zone", self.zone())];
        let count: usize = state.records.values().map(|s| s.rrdatas.len()).sum();
        metrics.incr("zonefile.writes", 1.0, &tags);
        metrics.set("zonefile.records", count as f64, &tags);
        metrics.set("zonefile.serial", f64::from(state.serial), &tags);
    }

    /// Applies one message; returns how to undo it (nothing when nothing changed).
    /// The record set and its owner record change together.
    fn apply(&self, records: &mut Records, msg: &EventMessage) -> Result<Vec<Undo>, PluginError> {
        let record = msg.record();
        let zone = self.zone();
        let (name, rtype, new) = match msg.action() {
            Action::Additions => {
                let n = rdata::normalise(record, zone, self.settings.default_ttl)?;
                let set = RRset {
                    name: n.name.clone(),
                    ttl: n.ttl,
                    rrdatas: n.rrdatas,
                };
                (n.name, n.rtype, Some(set))
            }
            Action::Deletions => {
                rdata::check_type(record.rtype(), record.name())?;
                let name = rdata::owner(record.name(), record.rtype(), zone)?;
                (name, record.rtype(), None)
            }
        };
        if ownership::is_reserved(&name) {
            return Err(PluginError::new(format!(
                "name {name} is reserved for gordon's owner records ({}*)",
                ownership::PREFIX
            )));
        }
        if rtype == RecordType::NS && name == zone {
            return Err(PluginError::new(format!(
                "the apex NS records of {zone} come from the configuration (key `ns`)"
            )));
        }
        let key = zone_format::key(&name, rtype);
        let owner = ownership::record_name(&name, rtype, zone).map_err(PluginError::new)?;
        let owner_key = zone_format::key(&owner, RecordType::TXT);
        self.check_owner(records, &key, &owner_key, &name, rtype)?;
        let ours = &self.settings.ownership.ours;
        let mut undo = Vec::new();
        let mut put = |records: &mut Records, key: Key, set: Option<RRset>| {
            let old = match set {
                Some(set) if records.get(&key) == Some(&set) => return,
                Some(set) => records.insert(key.clone(), set),
                None => match records.remove(&key) {
                    Some(old) => Some(old),
                    None => return,
                },
            };
            undo.push(Undo { key, old });
        };
        match new {
            Some(set) => {
                check_cname(&self.settings, records, &name, rtype)?;
                let mark = RRset {
                    name: owner,
                    ttl: set.ttl,
                    rrdatas: vec![ours.clone()],
                };
                put(records, key, Some(set));
                put(records, owner_key, Some(mark));
            }
            None => {
                put(records, key, None);
                put(records, owner_key, None);
            }
        }
        Ok(undo)
    }

    /// Refuses to change a record set gordon does not own (see
    /// `gordon_plugin_api::ownership`): one that exists without an owner record
    /// (unless `adopt`), or one marked by another owner (unless it is
    /// `adopt_from_owner`'s); `manage_unowned` allows both.
    fn check_owner(
        &self,
        records: &Records,
        key: &Key,
        owner_key: &Key,
        name: &str,
        rtype: RecordType,
    ) -> Result<(), PluginError> {
        let own = &self.settings.ownership;
        if own.manage_unowned {
            return Ok(());
        }
        let why = match records.get(owner_key).map(|o| o.rrdatas.as_slice()) {
            None if !records.contains_key(key) || own.adopt => return Ok(()),
            None => "it exists without an owner record (added by hand or by an older version); \
                 `adopt = true` takes over such record sets"
                .to_owned(),
            Some([v]) if *v == own.ours || own.previous.as_ref() == Some(v) => return Ok(()),
            Some(v) => format!(
                "its owner record says {}; `adopt_from_owner` takes over another owner id's records",
                v.join(" ")
            ),
        };
        Err(PluginError::new(format!(
            "record set {name} {rtype} is not owned by this gordon: {why}"
        )))
    }

    /// Applies a batch, bumps the serial and writes the file once. Returns the
    /// failed messages by index.
    fn process(&self, msgs: &mut [EventMessage]) -> Vec<(usize, PluginError)> {
        let mut failed = Vec::new();
        let mut applied = Vec::new();
        let mut undo = Vec::new();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, msg) in msgs.iter().enumerate() {
            match self.apply(&mut state.records, msg) {
                Ok(steps) => {
                    applied.push(i);
                    undo.extend(steps);
                }
                Err(e) => failed.push((i, e)),
            }
        }
        let path = self.settings.path.display();
        let note = if undo.is_empty() {
            format!(
                "Zone file {path} already up to date (serial {})",
                state.serial
            )
        } else {
            let old_serial = state.serial;
            state.serial = next_serial(old_serial, today_serial());
            let text = self.render(&state);
            let started = Instant::now();
            if let Err(e) = write_atomically(&self.settings.path, text.as_bytes()) {
                for step in undo.into_iter().rev() {
                    match step.old {
                        Some(old) => state.records.insert(step.key, old),
                        None => state.records.remove(&step.key),
                    };
                }
                state.serial = old_serial;
                tracing::error!(zone = self.zone(), "cannot write zone file {path}: {e}");
                let tags = [("zone", self.zone())];
                self.ctx.metrics().incr("zonefile.write_errors", 1.0, &tags);
                let error = PluginError::new(format!("cannot write zone file {path}: {e}"));
                failed.extend(applied.into_iter().map(|i| (i, error.clone())));
                failed.sort_by_key(|(i, _)| *i);
                return failed;
            }
            let tags = [("zone", self.zone())];
            self.ctx.metrics().timer(
                "zonefile.write_seconds",
                started.elapsed().as_secs_f64(),
                &tags,
            );
            self.emit_metrics(&state);
            tracing::debug!(
                zone = self.zone(),
                serial = state.serial,
                "wrote zone file {path}"
            );
            format!("Published to zone file {path} (serial {})", state.serial)
        };
        for i in applied {
            if let Some(msg) = msgs.get_mut(i) {
                msg.append_to_history(&note, Self::NAME);
            }
        }
        failed
    }
}

#[cfg(test)]
mod checkzone;
#[cfg(test)]
mod tests;
