//! The event message that travels between the host and plugins.
//!
//! A message is `#[repr(C)]` and built from abi_stable's FFI-safe containers, so the
//! host and every plugin library can read and write it directly: a message crosses a
//! library boundary by moving a few words, never by serialising it. Strings that are
//! the same for millions of messages (phase names, plugin names) are `&'static str`
//! under the hood: libraries are never unloaded, so their statics live forever, and
//! copying a phase costs two words and no allocation.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use abi_stable::std_types::{RStr, RString, RVec};
use abi_stable::StableAbi;

/// The phase a message is in: `consume`, `enrich`, `publish`, `cleanup`, `drop`, or any
/// phase named in `[core.route]`.
///
/// Phases are interned `&'static str`s: cheap to copy and compare.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Phase(RStr<'static>);

impl Phase {
    /// The phase a failed message is put in before it goes back to its source.
    pub const DROP: Phase = Phase::new("drop");
    /// The phase in which the source acknowledges or rejects its own messages.
    pub const CLEANUP: Phase = Phase::new("cleanup");

    /// A phase named by a static string.
    pub const fn new(name: &'static str) -> Self {
        Phase(RStr::from_str(name))
    }

    /// A phase for a name known only at run time. The name is interned for the life
    /// of the process, so call this once per distinct phase (at start-up), not per
    /// message.
    pub fn intern(name: &str) -> Self {
        Phase::new(Box::leak(name.to_owned().into_boxed_str()))
    }

    /// The phase's name.
    pub fn as_str(&self) -> &'static str {
        self.0.as_str()
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message id: 128 random-looking bits, shown as a UUID.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId {
    hi: u64,
    lo: u64,
}

impl MsgId {
    /// A new id, unique within this process and unlikely to collide across processes.
    pub fn new() -> Self {
        static SEED: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(now_ns() as u128);
            h.write_u32(std::process::id());
            let a = h.finish();
            h.write_u64(a);
            (a, h.finish())
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // The high half is fixed per process, the low half a bijective mix of a
        // counter: unique in the process, no lock and no syscall per id.
        let hi = (seed.0 & 0xffff_ffff_ffff_0fff) | 0x4000; // UUID version 4 nibble
        let lo = (splitmix64(n ^ seed.1) & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        MsgId { hi, lo }
    }

    /// An id from its two halves, for the wire codec.
    pub(crate) const fn from_halves(hi: u64, lo: u64) -> Self {
        MsgId { hi, lo }
    }

    /// The id's two halves, for the wire codec.
    pub(crate) const fn halves(&self) -> (u64, u64) {
        (self.hi, self.lo)
    }

    /// The id as one 128-bit number.
    pub fn as_u128(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }

    /// Parses the UUID text form that [`fmt::Display`] prints.
    pub fn parse(text: &str) -> Option<Self> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return None;
        }
        let v = u128::from_str_radix(&hex, 16).ok()?;
        Some(MsgId {
            hi: (v >> 64) as u64,
            lo: v as u64,
        })
    }
}

impl Default for MsgId {
    fn default() -> Self {
        Self::new()
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.as_u128();
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether an event adds or deletes its record set.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create or replace the record set.
    Additions = 0,
    /// Remove the record set.
    Deletions = 1,
}

impl Action {
    /// The wire name: `additions` or `deletions`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Additions => "additions",
            Action::Deletions => "deletions",
        }
    }
}

/// A DNS record type, by its numeric code (A = 1, AAAA = 28, ...).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordType(pub u16);

impl RecordType {
    /// IPv4 address.
    pub const A: RecordType = RecordType(1);
    /// Name server.
    pub const NS: RecordType = RecordType(2);
    /// Canonical name.
    pub const CNAME: RecordType = RecordType(5);
    /// Start of authority.
    pub const SOA: RecordType = RecordType(6);
    /// Pointer.
    pub const PTR: RecordType = RecordType(12);
    /// Mail exchanger.
    pub const MX: RecordType = RecordType(15);
    /// Text.
    pub const TXT: RecordType = RecordType(16);
    /// IPv6 address.
    pub const AAAA: RecordType = RecordType(28);
    /// Service locator.
    pub const SRV: RecordType = RecordType(33);

    const NAMES: [(&'static str, RecordType); 9] = [
        ("A", Self::A),
        ("AAAA", Self::AAAA),
        ("CNAME", Self::CNAME),
        ("MX", Self::MX),
        ("NS", Self::NS),
        ("PTR", Self::PTR),
        ("SOA", Self::SOA),
        ("SRV", Self::SRV),
        ("TXT", Self::TXT),
    ];

    /// Parses a type name (`"A"`, `"aaaa"`, ...) among the types the event format allows.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| *t)
    }

    /// The type's name, or `TYPE<n>` for a type without one.
    pub fn name(&self) -> Cow<'static, str> {
        match Self::NAMES.iter().find(|(_, t)| t == self) {
            Some((n, _)) => Cow::Borrowed(n),
            None => Cow::Owned(format!("TYPE{}", self.0)),
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Debug for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One record set: the `resourceRecords` object of the event format.
///
/// The owner name and the record data share one buffer (each string as a
/// little-endian `u32` length and its UTF-8 bytes), so a record costs one
/// allocation however many rrdatas it has: allocation is the largest cost of a
/// message on its way through the host.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    rtype: RecordType,
    ttl: u32,
    rrdata_count: u32,
    data: RVec<u8>,
}

fn push_str(buf: &mut RVec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Reads the string at `*at`, advancing `*at`; `None` at the end or on a bad buffer.
fn read_str<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a str> {
    let len_bytes: [u8; 4] = buf.get(*at..*at + 4)?.try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let bytes = buf.get(*at + 4..*at + 4 + len)?;
    *at += 4 + len;
    std::str::from_utf8(bytes).ok()
}

/// Whether `data` is a packed buffer `ResourceRecord` accessors read in full: an
/// owner name and exactly `count` rrdatas, nothing after them (or empty, with no
/// rrdatas, as in a stand-in).
fn packed_is_valid(count: u32, data: &[u8]) -> bool {
    match std::str::from_utf8(data) {
        Ok(text) => packed_str_is_valid(count, text),
        // The lengths' bytes can make a buffer of valid strings invalid as a whole.
        Err(_) => {
            // Not empty: "" is UTF-8.
            if !packed_size_ok(count, data.len()) {
                return false;
            }
            let mut at = 0;
            for _ in 0..=count {
                if read_str(data, &mut at).is_none() {
                    return false;
                }
            }
            at == data.len()
        }
    }
}

/// [`packed_is_valid`] for a buffer that is UTF-8 as a whole (the usual case: a
/// length below 128 is four ASCII bytes): a string in it is UTF-8 if and only if it
/// starts and ends on a character boundary, so nothing is validated twice.
fn packed_str_is_valid(count: u32, data: &str) -> bool {
    if !packed_size_ok(count, data.len()) {
        return false;
    }
    if data.is_empty() {
        return true;
    }
    let bytes = data.as_bytes();
    let mut at = 0usize;
    for _ in 0..=count {
        let Some(len) = bytes.get(at..at + 4).and_then(|b| b.try_into().ok()) else {
            return false;
        };
        let start = at + 4;
        let Some(end) = start.checked_add(u32::from_le_bytes(len) as usize) else {
            return false;
        };
        if !(data.is_char_boundary(start) && data.is_char_boundary(end)) {
            return false;
        }
        at = end;
    }
    at == bytes.len()
}

/// Whether a buffer of `len` bytes can hold a name and `count` rrdatas (an empty
/// one: only with no rrdatas, as in a stand-in).
fn packed_size_ok(count: u32, len: usize) -> bool {
    if len == 0 {
        return count == 0;
    }
    // Each string takes at least its 4-byte length.
    (count as usize).saturating_add(1) <= len / 4
}

impl ResourceRecord {
    /// The default TTL of the event format, in seconds.
    pub const DEFAULT_TTL: u32 = 300;

    /// The rrdata count and the packed buffer (name and rrdatas), for the wire codec.
    pub(crate) fn packed(&self) -> (u32, &[u8]) {
        (self.rrdata_count, &self.data)
    }

    /// A record set from a packed buffer, for the wire codec; `None` if `data` is not
    /// a valid buffer of `count` rrdatas.
    pub(crate) fn from_packed(
        rtype: RecordType,
        ttl: u32,
        count: u32,
        data: &[u8],
    ) -> Option<Self> {
        packed_is_valid(count, data).then(|| ResourceRecord {
            rtype,
            ttl,
            rrdata_count: count,
            data: data.to_vec().into(),
        })
    }

    /// Overwrites the record set from a packed buffer, reusing the buffer's
    /// allocation, for the wire codec; false (and nothing changed) if `data` is not a
    /// valid buffer of `count` rrdatas.
    pub(crate) fn set_packed(
        &mut self,
        rtype: RecordType,
        ttl: u32,
        count: u32,
        data: &[u8],
    ) -> bool {
        if !packed_is_valid(count, data) {
            return false;
        }
        self.set_packed_unchecked(rtype, ttl, count, data);
        true
    }

    /// [`ResourceRecord::set_packed`] for a buffer known to be UTF-8 as a whole.
    pub(crate) fn set_packed_str(
        &mut self,
        rtype: RecordType,
        ttl: u32,
        count: u32,
        data: &str,
    ) -> bool {
        if !packed_str_is_valid(count, data) {
            return false;
        }
        self.set_packed_unchecked(rtype, ttl, count, data.as_bytes());
        true
    }

    fn set_packed_unchecked(&mut self, rtype: RecordType, ttl: u32, count: u32, data: &[u8]) {
        self.rtype = rtype;
        self.ttl = ttl;
        self.rrdata_count = count;
        if self.data.capacity() < data.len() {
            // A new buffer of the right size rather than a grown one that would copy
            // the old content first.
            self.data = data.to_vec().into();
        } else {
            self.data.clear();
            self.data.extend_from_copy_slice(data);
        }
    }

    /// A record set with the default TTL.
    pub fn new<I, S>(name: &str, rtype: RecordType, rrdatas: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut record = ResourceRecord {
            rtype,
            ttl: Self::DEFAULT_TTL,
            rrdata_count: 0,
            data: RVec::new(),
        };
        record.rebuild(name, rrdatas);
        record
    }

    fn rebuild<I, S>(&mut self, name: &str, rrdatas: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let rrdatas = rrdatas.into_iter();
        let mut data = RVec::with_capacity(4 + name.len() + 24 * rrdatas.size_hint().0.max(1));
        push_str(&mut data, name);
        let mut count = 0;
        for r in rrdatas {
            push_str(&mut data, r.as_ref());
            count += 1;
        }
        self.data = data;
        self.rrdata_count = count;
    }

    /// The owner name, e.g. `host.example.com.`.
    pub fn name(&self) -> &str {
        read_str(&self.data, &mut 0).unwrap_or("")
    }
    /// Replaces the owner name.
    pub fn set_name(&mut self, name: impl AsRef<str>) {
        let rrdatas: Vec<String> = self.rrdatas().map(str::to_owned).collect();
        self.rebuild(name.as_ref(), rrdatas);
    }
    /// The record type.
    pub fn rtype(&self) -> RecordType {
        self.rtype
    }
    /// Replaces the record type.
    pub fn set_rtype(&mut self, rtype: RecordType) {
        self.rtype = rtype;
    }
    /// Time to live, in seconds (0: not set by the producer).
    pub fn ttl(&self) -> u32 {
        self.ttl
    }
    /// Replaces the time to live.
    pub fn set_ttl(&mut self, ttl: u32) {
        self.ttl = ttl;
    }
    /// The record data, one string per record.
    pub fn rrdatas(&self) -> Rrdatas<'_> {
        let mut at = 0;
        let _ = read_str(&self.data, &mut at);
        Rrdatas {
            buf: &self.data,
            at,
            left: self.rrdata_count as usize,
        }
    }
    /// Replaces the record data.
    pub fn set_rrdatas<I, S>(&mut self, rrdatas: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let name = self.name().to_owned();
        self.rebuild(&name, rrdatas);
    }
    /// Keeps the record data for which `keep` returns true, in order.
    pub fn retain_rrdatas(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let kept: Vec<String> = self
            .rrdatas()
            .filter(|r| keep(r))
            .map(str::to_owned)
            .collect();
        self.set_rrdatas(kept);
    }
}

impl fmt::Debug for ResourceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceRecord")
            .field("name", &self.name())
            .field("type", &self.rtype)
            .field("ttl", &self.ttl)
            .field("rrdatas", &self.rrdatas().collect::<Vec<_>>())
            .finish()
    }
}

/// The rrdatas of a [`ResourceRecord`], in order.
#[derive(Clone)]
pub struct Rrdatas<'a> {
    buf: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Iterator for Rrdatas<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_str(self.buf, &mut self.at)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Rrdatas<'_> {}

/// One line of a message's history: who did what, when.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    timestamp_ns: u64,
    plugin: RStr<'static>,
    // A phase change is stored as its two phases and rendered on demand, so that
    // routing a message allocates nothing for its history.
    from: Phase,
    to: Phase,
    text: RString,
}

impl HistoryEntry {
    /// Timestamp, plugin, from and to phases and raw text (empty for a phase
    /// change), for the wire codec.
    pub(crate) fn parts(&self) -> (u64, &'static str, Phase, Phase, &str) {
        (
            self.timestamp_ns,
            self.plugin.as_str(),
            self.from,
            self.to,
            &self.text,
        )
    }

    /// An entry from the parts [`HistoryEntry::parts`] returns, for the wire codec.
    pub(crate) fn from_parts(
        timestamp_ns: u64,
        plugin: &'static str,
        from: Phase,
        to: Phase,
        text: &str,
    ) -> Self {
        HistoryEntry {
            timestamp_ns,
            plugin: RStr::from_str(plugin),
            from,
            to,
            text: if text.is_empty() {
                RString::new()
            } else {
                text.into()
            },
        }
    }

    /// Overwrites the entry with the parts [`HistoryEntry::parts`] returns, reusing
    /// the text's allocation, for the wire codec.
    pub(crate) fn set_parts(
        &mut self,
        timestamp_ns: u64,
        plugin: &'static str,
        from: Phase,
        to: Phase,
        text: &str,
    ) {
        self.timestamp_ns = timestamp_ns;
        self.plugin = RStr::from_str(plugin);
        self.from = from;
        self.to = to;
        if self.text.capacity() < text.len() {
            self.text = text.into();
        } else {
            self.text.clear();
            self.text.push_str(text);
        }
    }

    /// When the entry was made, in nanoseconds since the Unix epoch.
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    /// The plugin (or `router`) that made the entry.
    pub fn plugin(&self) -> &str {
        self.plugin.as_str()
    }
    /// The entry's text, e.g. `Updated phase from consume to enrich`.
    pub fn message(&self) -> Cow<'_, str> {
        if self.text.is_empty() {
            Cow::Owned(format!("Updated phase from {} to {}", self.from, self.to))
        } else {
            Cow::Borrowed(self.text.as_str())
        }
    }
    /// The entry as the JSON object of the original service's history log.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "timestamp": format_rfc3339(self.timestamp_ns),
            "plugin": self.plugin(),
            "message": self.message(),
        })
    }
}

/// An event moving through the phase route.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct EventMessage {
    msg_id: MsgId,
    phase: Phase,
    action: Action,
    record: ResourceRecord,
    timestamp: RString,
    extra: RString,
    history: RVec<HistoryEntry>,
    source_token: u64,
}

impl EventMessage {
    /// A new message in `phase` with a fresh id.
    pub fn new(phase: Phase, action: Action, record: ResourceRecord) -> Self {
        EventMessage {
            msg_id: MsgId::new(),
            phase,
            action,
            record,
            timestamp: RString::new(),
            extra: RString::new(),
            // Room for the usual consume -> enrich -> publish -> cleanup entries, so
            // that routing does not reallocate.
            history: RVec::with_capacity(4),
            source_token: 0,
        }
    }

    /// A message to decode into, for the wire codec: all-zero id, phase `drop`, an
    /// empty record, and nothing allocated.
    pub(crate) fn blank() -> Self {
        EventMessage {
            msg_id: MsgId::from_halves(0, 0),
            phase: Phase::DROP,
            action: Action::Additions,
            record: ResourceRecord {
                rtype: RecordType(0),
                ttl: 0,
                rrdata_count: 0,
                data: RVec::new(),
            },
            timestamp: RString::new(),
            extra: RString::new(),
            history: RVec::new(),
            source_token: 0,
        }
    }

    /// Sets the id and the phase (without a history entry), for the wire codec.
    pub(crate) fn set_id_and_phase(&mut self, msg_id: MsgId, phase: Phase) {
        self.msg_id = msg_id;
        self.phase = phase;
    }

    /// The `timestamp` and extra-fields texts and the history, to overwrite in place,
    /// for the wire codec.
    pub(crate) fn texts_and_history_mut(
        &mut self,
    ) -> (&mut RString, &mut RString, &mut RVec<HistoryEntry>) {
        (&mut self.timestamp, &mut self.extra, &mut self.history)
    }

    /// The message id.
    pub fn msg_id(&self) -> MsgId {
        self.msg_id
    }
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Moves the message to `phase`, recording the change in its history the way the
    /// original `update_phase` did.
    pub fn update_phase(&mut self, phase: Phase, by: &'static str) {
        self.update_phase_at(phase, by, now_ns());
    }

    /// [`EventMessage::update_phase`] with a timestamp (nanoseconds since the Unix
    /// epoch) the caller read once for a whole batch: reading the clock per message
    /// is a measurable share of routing cost.
    pub fn update_phase_at(&mut self, phase: Phase, by: &'static str, timestamp_ns: u64) {
        let from = std::mem::replace(&mut self.phase, phase);
        self.history.push(HistoryEntry {
            timestamp_ns,
            plugin: RStr::from_str(by),
            from,
            to: phase,
            text: RString::new(),
        });
    }
    /// The event's action.
    pub fn action(&self) -> Action {
        self.action
    }
    /// Replaces the event's action.
    pub fn set_action(&mut self, action: Action) {
        self.action = action;
    }
    /// The record set.
    pub fn record(&self) -> &ResourceRecord {
        &self.record
    }
    /// The record set, for changing it.
    pub fn record_mut(&mut self) -> &mut ResourceRecord {
        &mut self.record
    }
    /// The event's `timestamp` as the producer sent it (empty if it sent none).
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }
    /// Sets the event's `timestamp` text.
    pub fn set_timestamp(&mut self, ts: impl AsRef<str>) {
        self.timestamp = ts.as_ref().into();
    }
    /// Extra fields of the event JSON this format does not name, as a JSON object
    /// text (empty when there were none). They are kept so nothing a producer sent is
    /// lost.
    pub fn extra_json(&self) -> &str {
        &self.extra
    }
    /// Sets the extra fields (a JSON object text, or empty).
    pub fn set_extra_json(&mut self, json: impl AsRef<str>) {
        self.extra = json.as_ref().into();
    }
    /// The history log, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }
    /// Appends a line to the history, as `append_to_history(entry, plugin)` did.
    pub fn append_to_history(&mut self, text: impl AsRef<str>, plugin: &'static str) {
        self.history.push(HistoryEntry {
            timestamp_ns: now_ns(),
            plugin: RStr::from_str(plugin),
            from: self.phase,
            to: self.phase,
            text: text.as_ref().into(),
        });
    }
    /// An opaque number the source plugin may set to find its own bookkeeping (an
    /// acknowledgement handle, say) when the message comes back for cleanup. The host
    /// never reads it.
    pub fn source_token(&self) -> u64 {
        self.source_token
    }
    /// Sets the source token.
    pub fn set_source_token(&mut self, token: u64) {
        self.source_token = token;
    }

    /// A stand-in for this message carrying only its identity: id, phase, action,
    /// source token, record type and TTL, with an empty name, no rrdatas and no
    /// history. It allocates nothing. The host keeps one per message it routes, so
    /// that when a handler does not return in time the message can still be
    /// rejected to its source (by id and token) while the original stays with the
    /// handler that holds it.
    pub fn stand_in(&self) -> EventMessage {
        EventMessage {
            msg_id: self.msg_id,
            phase: self.phase,
            action: self.action,
            record: ResourceRecord {
                rtype: self.record.rtype,
                ttl: self.record.ttl,
                rrdata_count: 0,
                data: RVec::new(),
            },
            timestamp: RString::new(),
            extra: RString::new(),
            history: RVec::new(),
            source_token: self.source_token,
        }
    }

    /// The event as the JSON of the event format (plus `msg_id`, `phase`, `history`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut data = serde_json::json!({
            "action": self.action.as_str(),
            "resourceRecords": {
                "name": self.record.name(),
                "type": self.record.rtype().name(),
                "rrdatas": self.record.rrdatas().collect::<Vec<_>>(),
                "ttl": self.record.ttl(),
            },
        });
        if !self.timestamp.is_empty() {
            data["timestamp"] = self.timestamp.as_str().into();
        }
        if let Ok(serde_json::Value::Object(extra)) =
            serde_json::from_str::<serde_json::Value>(&self.extra)
        {
            for (k, v) in extra {
                data[k] = v;
            }
        }
        serde_json::json!({
            "msg_id": self.msg_id.to_string(),
            "phase": self.phase.as_str(),
            "data": data,
            "history": self.history.iter().map(HistoryEntry::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn format_rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let micros = (ns % 1_000_000_000) / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_are_unique_and_round_trip() {
        let a = MsgId::new();
        let b = MsgId::new();
        assert_ne!(a, b);
        assert_eq!(MsgId::parse(&a.to_string()), Some(a));
        assert_eq!(a.to_string().len(), 36);
    }

    #[test]
    fn phase_change_is_rendered_like_the_original() {
        let rec = ResourceRecord::new("a.example.com.", RecordType::A, ["10.0.0.1"]);
        let mut msg = EventMessage::new(Phase::new("consume"), Action::Additions, rec);
        msg.update_phase(Phase::new("enrich"), "router");
        assert_eq!(
            msg.history()[0].message(),
            "Updated phase from consume to enrich"
        );
        assert_eq!(msg.phase().as_str(), "enrich");
    }

    #[test]
    fn rfc3339_formats_a_known_instant() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_rfc3339(1_700_000_000_123_456_000),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn record_buffer_round_trips_names_and_rrdatas() {
        let mut r = ResourceRecord::new("a.example.com.", RecordType::TXT, ["one", "", "thrée"]);
        assert_eq!(r.name(), "a.example.com.");
        assert_eq!(r.rrdatas().collect::<Vec<_>>(), ["one", "", "thrée"]);
        assert_eq!(r.rrdatas().len(), 3);
        r.set_name("b.example.com.");
        r.retain_rrdatas(|d| !d.is_empty());
        assert_eq!(r.name(), "b.example.com.");
        assert_eq!(r.rrdatas().collect::<Vec<_>>(), ["one", "thrée"]);
        r.set_rrdatas(Vec::<String>::new());
        assert_eq!(r.rrdatas().len(), 0);
        assert_eq!(r.name(), "b.example.com.");
    }

    #[test]
    fn record_types_parse_by_name() {
        assert_eq!(RecordType::from_name("aaaa"), Some(RecordType::AAAA));
        assert_eq!(RecordType::from_name("HINFO"), None);
        assert_eq!(RecordType(99).name(), "TYPE99");
    }
}
