//! `dns.zonefile`: keeps an RFC 1035 master file.
//!
//! A batch is applied to the zone in memory and appended to the journal
//! (`journal.rs`, fsynced) before its messages are reported published; its cost is
//! what it changed, whatever the zone's size. A writer thread rewrites the whole
//! file atomically from a snapshot of the zone (free to take: the zone is a
//! persistent map) whenever the journal holds batches the file does not, at most a
//! quarter of the time (it waits three times as long as its last rewrite took
//! before the next), and removes the journal segments the new file holds. So the
//! file is always complete and valid, at most a few rewrites behind the journal;
//! on a clean stop it is brought up to date, and after a crash the journal is
//! folded into it at start, before the first batch.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gordon_plugin_api::serde_json::{json, Map, Value};
use gordon_plugin_api::{event_json, ownership, tracing};
use gordon_plugin_api::{
    format_rfc3339, Action, ActionSpec, ConfigKey, EventMessage, Failures, MessageHandler, Plugin,
    PluginContext, PluginError, RecordType,
};

use crate::rdata;
use crate::zone_format::{self, Header, Key, RRset, Records, Soa};

mod config;
mod journal;

use config::Settings;
pub use config::{ZoneFileConfig, DEFAULT_GLUE};
use journal::{Entry, Journal, SetChange};

/// The zone as held in memory.
#[derive(Clone, Debug, Default)]
struct State {
    serial: u32,
    records: Records,
}

/// One undo step: the record set `key` had before a change.
struct Undo {
    key: Key,
    old: Option<Arc<RRset>>,
    /// The set's owner name (for the journal when it is removed).
    name: String,
}

/// What the handlers and the writer share, under one lock.
#[derive(Debug)]
struct Inner {
    state: State,
    journal: Journal,
    /// Batches journaled since start, and how many of them the file on disk holds
    /// (counted rather than compared by serial, which saturates).
    journaled: u64,
    written: u64,
    /// The SOA serial of the file on disk (0 until it is known).
    file_serial: u32,
    /// The writer is asked to bring the file up to date and stop.
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    settings: Settings,
    inner: Mutex<Inner>,
    /// Wakes the writer: a batch was journaled, or it is asked to stop.
    wake: Condvar,
    ctx: PluginContext,
}

/// `dns.zonefile` (phase `publish`): applies events to an RFC 1035 zone file.
#[derive(Debug)]
pub struct ZoneFile {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<Result<(), String>>>>,
}

impl Plugin for ZoneFile {
    const NAME: &'static str = "dns.zonefile";
    const DESCRIPTION: &'static str = "Publishes DNS events to an RFC 1035 zone file, atomically";
    type Config = ZoneFileConfig;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(config: &ZoneFileConfig) -> Result<(), PluginError> {
        Settings::resolve(config).map(|_| ())
    }

    fn new(config: ZoneFileConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = Settings::resolve(&config)?;
        if settings.ownership.manage_unowned {
            tracing::warn!("{}", ownership::MANAGE_UNOWNED_WARNING);
        }
        for name in &settings.defaulted {
            tracing::warn!(
                "name server {name} has no address in `ns_addresses`; its glue is {DEFAULT_GLUE}"
            );
        }
        let (state, existing) = load(&settings)?;
        let path = settings.path.display().to_string();
        let (journal, entries) = Journal::open(&settings.path).map_err(|e| {
            PluginError::new(format!("cannot open the journal of zone file {path}: {e}"))
        })?;
        let mut state = state;
        let replayed = replay(&mut state, &entries, &settings.zone).map_err(|e| {
            PluginError::new(format!(
                "cannot replay the journal of zone file {path}: {e}"
            ))
        })?;
        if replayed > 0 {
            tracing::info!("Replayed {replayed} batch(es) from the journal of zone file {path}.");
        }
        let shared = Arc::new(Shared {
            settings,
            inner: Mutex::new(Inner {
                state,
                journal,
                journaled: 0,
                written: 0,
                file_serial: 0,
                stop: false,
            }),
            wake: Condvar::new(),
            ctx,
        });
        // The file holds everything before the first batch: what a restart found in
        // the journal is folded in now.
        shared.write_if_changed(existing.as_deref(), replayed > 0)?;
        shared.lock().journal.remove_older().map_err(|e| {
            PluginError::new(format!(
                "cannot remove old journal segments of zone file {path}: {e}"
            ))
        })?;
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("zonefile-writer".to_owned())
                .spawn(move || shared.run_writer())
                .map_err(|e| PluginError::new(format!("cannot start the zone file writer: {e}")))?
        };
        Ok(ZoneFile {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    fn actions() -> Vec<ActionSpec> {
        vec![ActionSpec::new(
            "serial",
            "Shows the SOA serial of each zone: the last published (journaled) and the one the zone file holds",
        )]
    }

    /// `serial`: `{"zones": {"<zone>": {"serial": N, "file_serial": M, "path":
    /// "..."}}}`. `serial` is the serial of the last published batch (in the
    /// journal, and so in the file after the next rewrite or a restart);
    /// `file_serial` the serial of the zone file on disk now, at most a few
    /// rewrites behind.
    fn invoke(&self, action: &str, _params: &Map<String, Value>) -> Result<Value, PluginError> {
        match action {
            "serial" => Ok(self.shared.serials()),
            other => Err(PluginError::new(format!(
                "{} has no action `{other}`",
                Self::NAME
            ))),
        }
    }
}

impl MessageHandler for ZoneFile {
    const PHASE: &'static str = "publish";

    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        match self
            .shared
            .process(std::slice::from_mut(msg))
            .into_iter()
            .next()
        {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    fn handle_batch(&self, msgs: &mut [EventMessage], failures: &mut Failures) {
        for (index, error) in self.shared.process(msgs) {
            failures.push(index, error);
        }
    }

    /// Brings the file up to date with the journal, then stops the writer.
    fn shutdown(&self) -> Result<(), PluginError> {
        self.stop_writer().map_err(PluginError::new)
    }
}

impl ZoneFile {
    fn stop_writer(&self) -> Result<(), String> {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(handle) = handle else {
            return Ok(());
        };
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        handle
            .join()
            .unwrap_or_else(|_| Err("the zone file writer panicked".to_owned()))
    }
}

impl Drop for ZoneFile {
    /// The writer runs this library's code: it is stopped and joined before the
    /// plugin (and maybe the library) goes.
    fn drop(&mut self) {
        if let Err(e) = self.stop_writer() {
            tracing::error!("{e}");
        }
    }
}

/// Applies journal entries above the state's serial; returns how many.
fn replay(state: &mut State, entries: &[Entry], zone: &str) -> Result<usize, String> {
    let mut applied = 0;
    let from = state.serial;
    for entry in entries.iter().filter(|e| e.serial > from) {
        for c in &entry.changes {
            if !rdata::in_zone(&c.name, zone) {
                return Err(format!("{} is outside zone {zone}", c.name));
            }
            let key = zone_format::key(&c.name, c.record_type());
            match &c.set {
                Some((ttl, rrdatas)) => {
                    let set = RRset {
                        name: c.name.clone(),
                        ttl: *ttl,
                        rrdatas: rrdatas.clone(),
                    };
                    state.records.insert(key, Arc::new(set));
                }
                None => {
                    state.records.remove(&key);
                }
            }
        }
        state.serial = entry.serial;
        applied += 1;
    }
    Ok(applied)
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
        let key = zone_format::key(&name, r.rtype);
        let set = records.entry(key).or_insert_with(|| {
            Arc::new(RRset {
                name,
                ttl,
                rrdatas: Vec::new(),
            })
        });
        if !set.rrdatas.contains(&data) {
            Arc::make_mut(set).rrdatas.push(data);
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
    let range = (Arc::clone(&labels), RecordType(0))..=(labels, RecordType(u16::MAX));
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

/// Writes a file to `path` atomically with `write`: `<path>.tmp` in the same
/// directory, buffered, fsync, rename over `path`, fsync of the directory. Creates
/// the directory if needed. A reader of `path` sees the old file or the new one,
/// never part of one.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
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
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
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

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the `serial` action answers.
    fn serials(&self) -> Value {
        let inner = self.lock();
        let mut zones = Map::new();
        zones.insert(
            self.zone().to_owned(),
            json!({
                "serial": inner.state.serial,
                "file_serial": inner.file_serial,
                "path": self.settings.path.display().to_string(),
            }),
        );
        json!({ "zones": zones })
    }

    fn zone(&self) -> &str {
        &self.settings.zone
    }

    /// The file text for `state`. Configured glue is left out for a name that has
    /// its own A or AAAA records.
    fn header<'a>(&'a self, state: &State) -> Header<'a> {
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
        Header {
            origin: self.zone(),
            default_ttl: self.settings.default_ttl,
            soa: Soa {
                serial: state.serial,
                ..self.settings.soa.clone()
            },
            ns: &self.settings.ns,
            glue,
        }
    }

    /// The file text for `state`.
    fn render(&self, state: &State) -> String {
        zone_format::render(&self.header(state), &state.records)
    }

    /// Writes the file for `state` to `out`.
    fn write_to(&self, out: &mut impl io::Write, state: &State) -> io::Result<()> {
        zone_format::write_to(out, &self.header(state), &state.records)
    }

    /// At start-up: writes the file unless it already holds exactly this state and
    /// configuration (then the serial is kept as it is). `replayed`: the state has
    /// batches from the journal, whose serials are already new.
    fn write_if_changed(&self, existing: Option<&str>, replayed: bool) -> Result<(), PluginError> {
        let mut inner = self.lock();
        let mut text = self.render(&inner.state);
        if existing == Some(text.as_str()) {
            inner.file_serial = inner.state.serial;
            return Ok(());
        }
        if existing.is_some() && !replayed {
            inner.state.serial = next_serial(inner.state.serial, today_serial());
            text = self.render(&inner.state);
        }
        write_atomically(&self.settings.path, |w| w.write_all(text.as_bytes())).map_err(|e| {
            PluginError::new(format!(
                "cannot write zone file {}: {e}",
                self.settings.path.display()
            ))
        })?;
        inner.file_serial = inner.state.serial;
        self.emit_metrics(&inner.state);
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
            let (old, name) = match set {
                Some(set) if records.get(&key).is_some_and(|old| **old == set) => return,
                Some(set) => {
                    let name = set.name.clone();
                    (records.insert(key.clone(), Arc::new(set)), name)
                }
                None => match records.remove(&key) {
                    Some(old) => {
                        let name = old.name.clone();
                        (Some(old), name)
                    }
                    None => return,
                },
            };
            undo.push(Undo { key, old, name });
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

    /// Applies a batch, bumps the serial and appends the batch to the journal.
    /// Returns the failed messages by index.
    fn process(&self, msgs: &mut [EventMessage]) -> Vec<(usize, PluginError)> {
        let mut failed = Vec::new();
        let mut applied = Vec::new();
        let mut undo = Vec::new();
        let mut inner = self.lock();
        let inner = &mut *inner;
        for (i, msg) in msgs.iter().enumerate() {
            match self.apply(&mut inner.state.records, msg) {
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
                inner.state.serial
            )
        } else {
            let old_serial = inner.state.serial;
            inner.state.serial = next_serial(old_serial, today_serial());
            let entry = journal_entry(&inner.state, &undo);
            let started = Instant::now();
            if let Err(e) = inner.journal.append(&entry) {
                for step in undo.into_iter().rev() {
                    match step.old {
                        Some(old) => inner.state.records.insert(step.key, old),
                        None => inner.state.records.remove(&step.key),
                    };
                }
                inner.state.serial = old_serial;
                tracing::error!(
                    zone = self.zone(),
                    "cannot append to the journal of zone file {path}: {e}"
                );
                let tags = [("zone", self.zone())];
                self.ctx.metrics().incr("zonefile.write_errors", 1.0, &tags);
                let error = PluginError::new(format!(
                    "cannot append to the journal of zone file {path}: {e}"
                ));
                failed.extend(applied.into_iter().map(|i| (i, error.clone())));
                failed.sort_by_key(|(i, _)| *i);
                return failed;
            }
            let tags = [("zone", self.zone())];
            self.ctx.metrics().timer(
                "zonefile.journal_seconds",
                started.elapsed().as_secs_f64(),
                &tags,
            );
            inner.journaled += 1;
            self.wake.notify_all();
            format!(
                "Published to zone file {path} (serial {})",
                inner.state.serial
            )
        };
        for i in applied {
            if let Some(msg) = msgs.get_mut(i) {
                msg.append_to_history(&note, ZoneFile::NAME);
            }
        }
        failed
    }

    /// The writer thread: rewrites the file whenever the journal holds batches it
    /// does not, paced (see the module docs), until asked to stop; then once more if
    /// needed. Returns the last write's error, if the file could not be brought up
    /// to date.
    fn run_writer(&self) -> Result<(), String> {
        let mut pause = Duration::ZERO;
        let mut last_end = Instant::now();
        loop {
            let mut inner = self.lock();
            loop {
                let behind = inner.written != inner.journaled;
                if inner.stop && !behind {
                    return Ok(());
                }
                let now = Instant::now();
                let ready = last_end + pause;
                if behind && (inner.stop || now >= ready) {
                    break;
                }
                inner = if behind {
                    self.wake
                        .wait_timeout(inner, ready - now)
                        .map_or_else(|p| p.into_inner().0, |(g, _)| g)
                } else {
                    self.wake
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner)
                };
            }
            let stopping = inner.stop;
            let snapshot = inner.state.clone();
            let generation = inner.journaled;
            let done = inner.journal.rotate();
            drop(inner);
            let started = Instant::now();
            let written = done.and_then(|done| {
                write_atomically(&self.settings.path, |w| self.write_to(w, &snapshot))?;
                Ok(done)
            });
            let took = started.elapsed();
            let result = match written {
                Ok(done) => {
                    let mut inner = self.lock();
                    inner.written = generation;
                    inner.file_serial = snapshot.serial;
                    let removed = inner.journal.remove(&done);
                    drop(inner);
                    self.wake.notify_all();
                    let tags = [("zone", self.zone())];
                    self.ctx
                        .metrics()
                        .timer("zonefile.write_seconds", took.as_secs_f64(), &tags);
                    self.emit_metrics(&snapshot);
                    tracing::debug!(
                        zone = self.zone(),
                        serial = snapshot.serial,
                        "wrote zone file {}",
                        self.settings.path.display()
                    );
                    // Segments left behind are read again (and skipped) at start.
                    if let Err(e) = removed {
                        tracing::warn!(zone = self.zone(), "cannot remove journal segments: {e}");
                    }
                    pause = took * 3;
                    Ok(())
                }
                Err(e) => {
                    let why = format!(
                        "cannot write zone file {}: {e}",
                        self.settings.path.display()
                    );
                    tracing::error!(
                        zone = self.zone(),
                        "{why}; the journal keeps every batch, retrying"
                    );
                    let tags = [("zone", self.zone())];
                    self.ctx.metrics().incr("zonefile.write_errors", 1.0, &tags);
                    pause = (took * 3).max(Duration::from_secs(1));
                    Err(why)
                }
            };
            last_end = Instant::now();
            if stopping {
                return result;
            }
        }
    }
}

/// The journal entry of a batch: each record set it changed, as it now is.
fn journal_entry(state: &State, undo: &[Undo]) -> Entry {
    let mut seen = std::collections::HashSet::with_capacity(undo.len());
    let changes = undo
        .iter()
        .filter(|u| seen.insert(&u.key))
        .map(|u| {
            let now = state.records.get(&u.key);
            SetChange {
                name: now.map_or_else(|| u.name.clone(), |s| s.name.clone()),
                rtype: u.key.1 .0,
                set: now.map(|s| (s.ttl, s.rrdatas.clone())),
            }
        })
        .collect();
    Entry {
        serial: state.serial,
        changes,
    }
}

#[cfg(test)]
mod checkzone;
#[cfg(test)]
mod tests;
