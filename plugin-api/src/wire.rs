//! A compact binary encoding of message batches, zone records and metric events, for
//! the host's trips to a plugin running in a child process. Not part of the public
//! API: the host and the child are built from the same source, so the format has no
//! version of its own.
//!
//! All integers are little-endian and fixed-width; a string or byte string is a `u32`
//! length and its bytes; a list is a `u32` count and its items. Decoding never panics:
//! every read is bounds-checked, every count is checked against the bytes left before
//! anything is reserved for it, strings must be UTF-8, enums must hold a known value.
//!
//! A message batch (`put_messages`):
//!
//! ```text
//! batch   = u32 count, message*
//! message = u64 id.hi, u64 id.lo, u64 source_token, u8 action, u16 rtype, u32 ttl,
//!           u32 rrdata_count, u32 data_len, u32 timestamp_len, u32 extra_len,
//!           u32 history_count, name phase, record_data ++ timestamp ++ extra, entry*
//! entry   = u64 timestamp_ns, name plugin, name from, name to, str text
//! name    = u32 index                  (a name seen earlier in this batch)
//!         | u32 next_index, str name   (its first occurrence)
//! ```
//!
//! Names (phases and plugin names, `&'static str` in a message) are numbered in the
//! order they first occur in a batch; each is written in full once per batch, and the
//! decoder resolves it through an [`Interner`] once per batch. `record_data` is the
//! record's packed buffer, copied as is and checked on decoding. It, the timestamp
//! and the extra fields are written back to back so that a decoder can validate
//! them as UTF-8 in one pass.
//!
//! Zone records: `u32 count, (str zone, u32 count, (u16 rtype, u32 ttl,
//! u32 rrdata_count, bytes record_data, str source)*)*`. A metric event: `u8 kind,
//! str name, f64 value, str plugin, u32 count, (str key, str value)*`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use abi_stable::std_types::{RSlice, RStr, RString, RVec};

use crate::abi::{MetricEvent, MetricKind, Tag};
use crate::janitor::ZoneRecords;
use crate::message::{
    Action, EventMessage, HistoryEntry, MsgId, Phase, RecordType, ResourceRecord,
};

/// Why an input could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The input ends before the encoding does.
    Truncated,
    /// The input holds something no encoder writes; the text says what.
    Invalid(&'static str),
    /// The input names more distinct phases or plugins than an [`Interner`] keeps.
    TooManyNames,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated input"),
            WireError::Invalid(what) => write!(f, "invalid input: {what}"),
            WireError::TooManyNames => {
                write!(f, "more than {MAX_NAMES} distinct phase or plugin names")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// The most names an [`Interner`] leaks; decoding one more fails with
/// [`WireError::TooManyNames`].
pub const MAX_NAMES: usize = 4096;

/// The longest name an [`Interner`] leaks, in bytes; a longer one is
/// [`WireError::Invalid`]. With [`MAX_NAMES`], this bounds what a hostile peer can
/// make a process leak to 4 MiB.
pub const MAX_NAME_LEN: usize = 1024;

/// Names leaked by every [`Interner`] of the process, so that a name is leaked
/// once per process, not once per interner (a host makes one per plugin
/// process, and a plugin that keeps crashing would otherwise leak its names
/// again with each restart). Bounded by [`MAX_PROCESS_NAMES`].
static PROCESS_NAMES: std::sync::Mutex<Option<HashSet<&'static str>>> = std::sync::Mutex::new(None);

/// The most distinct names all interners of a process leak together.
pub const MAX_PROCESS_NAMES: usize = 16 * MAX_NAMES;

/// The process-wide copy of `s`, leaked if no interner has seen it yet.
fn leak_once(s: &str) -> Result<&'static str, WireError> {
    let mut guard = PROCESS_NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let names = guard.get_or_insert_with(HashSet::new);
    if let Some(name) = names.get(s) {
        return Ok(name);
    }
    if names.len() >= MAX_PROCESS_NAMES {
        return Err(WireError::TooManyNames);
    }
    let name: &'static str = Box::leak(Box::from(s));
    names.insert(name);
    Ok(name)
}

/// Turns decoded phase and plugin names into the `&'static str`s a message holds,
/// leaking each distinct name once per process, and accepting at most
/// [`MAX_NAMES`] names it has not seen before.
#[derive(Debug, Default)]
pub struct Interner {
    names: HashSet<&'static str>,
    leaked: usize,
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `name` itself what [`Interner::intern`] returns for its text, without
    /// leaking anything or counting it against [`MAX_NAMES`]: preload the process's
    /// own phase and plugin names so decoded messages share their pointers.
    pub fn preload(&mut self, name: &'static str) {
        self.names.insert(name);
    }

    /// The interned copy of `s`, leaked on first sight.
    ///
    /// # Errors
    /// [`WireError::TooManyNames`] once [`MAX_NAMES`] names have been leaked, and
    /// [`WireError::Invalid`] for a name longer than [`MAX_NAME_LEN`].
    pub fn intern(&mut self, s: &str) -> Result<&'static str, WireError> {
        if let Some(name) = self.names.get(s) {
            return Ok(name);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(WireError::Invalid("name too long"));
        }
        if self.leaked >= MAX_NAMES {
            return Err(WireError::TooManyNames);
        }
        let name = leak_once(s)?;
        self.names.insert(name);
        self.leaked += 1;
        Ok(name)
    }
}

/// A length or count as the `u32` the format writes.
///
/// # Panics
/// Beyond `u32::MAX`: no message, record or metric comes near it.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("wire: a string or list longer than u32::MAX")
}

/// Appends a byte.
#[inline]
pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Appends a little-endian `u16`.
#[inline]
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian `u32`.
#[inline]
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian `u64`.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends an `f64` as the little-endian `u64` of its bits.
#[inline]
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    put_u64(out, v.to_bits());
}

/// Appends a byte string: its length as a `u32`, then the bytes.
///
/// # Panics
/// If `b` is longer than `u32::MAX` bytes.
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, len_u32(b.len()));
    out.extend_from_slice(b);
}

/// Appends a string: its length in bytes as a `u32`, then its UTF-8 bytes.
///
/// # Panics
/// If `s` is longer than `u32::MAX` bytes.
#[inline]
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Reads what the `put_*` functions write, from the front of a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    len: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            rest: input,
            len: input.len(),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(WireError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.rest.len() {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// A `u32` count of items each at least `min_size` bytes long, checked against
    /// the bytes left so that no count makes the caller reserve more than the input
    /// could fill.
    #[inline]
    fn count(&mut self, min_size: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        if n > self.rest.len() / min_size {
            return Err(WireError::Truncated);
        }
        Ok(n)
    }

    /// Reads a byte.
    ///
    /// # Errors
    /// [`WireError::Truncated`] at the end of the input.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer than 2 bytes are left.
    #[inline]
    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer than 4 bytes are left.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer than 8 bytes are left.
    #[inline]
    pub fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads an `f64` written by [`put_f64`].
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer than 8 bytes are left.
    #[inline]
    pub fn f64(&mut self) -> Result<f64, WireError> {
        self.u64().map(f64::from_bits)
    }

    /// Reads a byte string written by [`put_bytes`].
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the input ends first.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// Reads a string written by [`put_str`].
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the input ends first, [`WireError::Invalid`] if
    /// the bytes are not UTF-8.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, WireError> {
        match self.bytes()? {
            [] => Ok(""),
            b => std::str::from_utf8(b).map_err(|_| WireError::Invalid("string is not UTF-8")),
        }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.len - self.rest.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

// The fewest bytes a message, a history entry, a zone, a record set and a tag take:
// counts are checked against them before anything is reserved.
const MIN_MESSAGE: usize = 3 * 8 + 1 + 2 + 4 + 4 + 4 + 4 + 4 + 4 + 4;
const MIN_ENTRY: usize = 8 + 3 * 4 + 4;
const MIN_ZONE: usize = 4 + 4;
const MIN_RRSET: usize = 2 + 4 + 4 + 4 + 4;
const MIN_TAG: usize = 4 + 4;

/// Names looked up by content in a list up to this long, in a map beyond.
const SCAN_NAMES: usize = 16;
/// Slots of the encoder's pointer-equality cache (a power of two).
const CACHE_SLOTS: usize = 64;

/// The names a batch being encoded has written so far.
struct NameTable {
    /// Index -> name.
    names: Vec<&'static str>,
    /// (address, length, index) of names seen, for a lookup by pointer: a
    /// direct-mapped cache, slot chosen by the address. Statics with the same
    /// address and length are the same string.
    cache: [(usize, usize, u32); CACHE_SLOTS],
    /// Name -> index, once there are more than `SCAN_NAMES` names.
    by_name: HashMap<&'static str, u32>,
}

impl NameTable {
    fn new() -> Self {
        NameTable {
            names: Vec::with_capacity(SCAN_NAMES),
            // No string is `usize::MAX` bytes long: the empty slots match nothing.
            cache: [(0, usize::MAX, 0); CACHE_SLOTS],
            by_name: HashMap::new(),
        }
    }

    /// The index of `name`, and whether this is its first occurrence (then the name
    /// follows the index on the wire).
    #[inline(always)]
    fn index(&mut self, name: &'static str) -> (u32, bool) {
        let addr = name.as_ptr() as usize;
        let slot = (addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % CACHE_SLOTS;
        let (a, l, index) = self.cache[slot];
        if a == addr && l == name.len() {
            return (index, false);
        }
        self.index_slow(name, slot)
    }

    #[cold]
    fn index_slow(&mut self, name: &'static str, slot: usize) -> (u32, bool) {
        let found = if self.names.len() <= SCAN_NAMES {
            self.names.iter().position(|n| *n == name).map(|i| i as u32)
        } else {
            self.by_name.get(name).copied()
        };
        let (index, new) = match found {
            Some(index) => (index, false),
            None => {
                let index = len_u32(self.names.len());
                self.names.push(name);
                if self.names.len() > SCAN_NAMES {
                    if self.by_name.is_empty() {
                        self.by_name
                            .extend(self.names.iter().enumerate().map(|(i, n)| (*n, i as u32)));
                    } else {
                        self.by_name.insert(name, index);
                    }
                }
                (index, true)
            }
        };
        self.cache[slot] = (name.as_ptr() as usize, name.len(), index);
        (index, new)
    }
}

/// Writes into a slice sized beforehand, so that the write position lives in a
/// register rather than in a `Vec` header each write must load and store.
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn raw(&mut self, b: &[u8]) {
        let end = self.at + b.len();
        self.buf[self.at..end].copy_from_slice(b);
        self.at = end;
    }
    #[inline(always)]
    fn u8(&mut self, v: u8) {
        self.raw(&[v]);
    }
    #[inline(always)]
    fn u16(&mut self, v: u16) {
        self.raw(&v.to_le_bytes());
    }
    #[inline(always)]
    fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }
    #[inline(always)]
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.u32(len_u32(b.len()));
        self.raw(b);
    }
    #[inline(always)]
    fn name(&mut self, names: &mut NameTable, name: &'static str) {
        let (index, new) = names.index(name);
        self.u32(index);
        if new {
            self.bytes(name.as_bytes());
        }
    }
}

/// The most bytes a name reference takes, besides the name: index and length.
const NAME_REF: usize = 4 + 4;

/// The most bytes `msg` can take encoded (all its names written out in full).
#[inline(always)]
fn message_bound(msg: &EventMessage) -> usize {
    let mut n = MIN_MESSAGE - 4 + NAME_REF + msg.phase().as_str().len();
    n += msg.record().packed().1.len() + msg.timestamp().len() + msg.extra_json().len();
    for entry in msg.history() {
        let (_, plugin, from, to, text) = entry.parts();
        n += MIN_ENTRY - 3 * 4 + 3 * NAME_REF;
        n += plugin.len() + from.as_str().len() + to.as_str().len() + text.len();
    }
    n
}

/// The names a batch being decoded has named so far, interned.
struct Names<'i> {
    names: Vec<&'static str>,
    interner: &'i mut Interner,
}

impl<'i> Names<'i> {
    fn new(interner: &'i mut Interner) -> Self {
        Names {
            names: Vec::with_capacity(SCAN_NAMES),
            interner,
        }
    }

    #[inline(always)]
    fn get(&mut self, r: &mut Reader<'_>) -> Result<&'static str, WireError> {
        let index = r.u32()? as usize;
        match self.names.get(index) {
            Some(name) => Ok(name),
            None => self.get_new(r, index),
        }
    }

    #[cold]
    fn get_new(&mut self, r: &mut Reader<'_>, index: usize) -> Result<&'static str, WireError> {
        if index != self.names.len() {
            return Err(WireError::Invalid("name index"));
        }
        let name = self.interner.intern(r.str()?)?;
        self.names.push(name);
        Ok(name)
    }
}

/// Appends the encoding of `msgs` to `out` (does not clear it).
///
/// # Panics
/// If a batch, a string or a record's buffer is longer than `u32::MAX`.
pub fn put_messages(out: &mut Vec<u8>, msgs: &[EventMessage]) {
    put_u32(out, len_u32(msgs.len()));
    let mut names = NameTable::new();
    for msg in msgs {
        let start = out.len();
        out.resize(start + message_bound(msg), 0);
        let mut w = Cursor {
            buf: &mut out[start..],
            at: 0,
        };
        put_message(&mut w, &mut names, msg);
        let end = start + w.at;
        out.truncate(end);
    }
}

#[inline(always)]
fn put_message(w: &mut Cursor<'_>, names: &mut NameTable, msg: &EventMessage) {
    let (hi, lo) = msg.msg_id().halves();
    w.u64(hi);
    w.u64(lo);
    w.u64(msg.source_token());
    w.u8(msg.action() as u8);
    let record = msg.record();
    let (count, data) = record.packed();
    w.u16(record.rtype().0);
    w.u32(record.ttl());
    w.u32(count);
    let (timestamp, extra) = (msg.timestamp().as_bytes(), msg.extra_json().as_bytes());
    let history = msg.history();
    w.u32(len_u32(data.len()));
    w.u32(len_u32(timestamp.len()));
    w.u32(len_u32(extra.len()));
    w.u32(len_u32(history.len()));
    w.name(names, msg.phase().as_str());
    w.raw(data);
    w.raw(timestamp);
    w.raw(extra);
    for entry in history {
        let (timestamp_ns, plugin, from, to, text) = entry.parts();
        w.u64(timestamp_ns);
        w.name(names, plugin);
        w.name(names, from.as_str());
        w.name(names, to.as_str());
        w.bytes(text.as_bytes());
    }
}

/// Decodes a batch written by [`put_messages`], appending the messages to `out`;
/// returns bytes consumed.
///
/// # Errors
/// Any [`WireError`]; `out` is then as it was.
pub fn get_messages(
    input: &[u8],
    interner: &mut Interner,
    out: &mut Vec<EventMessage>,
) -> Result<usize, WireError> {
    let mut r = Reader::new(input);
    let n = r.count(MIN_MESSAGE)?;
    let mut names = Names::new(interner);
    let start = out.len();
    out.reserve(n);
    for _ in 0..n {
        let mut msg = EventMessage::blank();
        if let Err(e) = get_message(&mut r, &mut names, &mut msg) {
            out.truncate(start);
            return Err(e);
        }
        out.push(msg);
    }
    Ok(r.position())
}

/// Decodes a batch of exactly `msgs.len()` messages over the existing ones, reusing
/// their allocations: a string, record buffer or history that has the room is
/// overwritten without allocating. Returns bytes consumed.
///
/// # Errors
/// Any [`WireError`], [`WireError::Invalid`] if the batch holds another number of
/// messages. On an error, the messages hold whatever was decoded before it: each
/// is still a well-formed message, but not one the peer sent.
pub fn get_messages_into(
    input: &[u8],
    interner: &mut Interner,
    msgs: &mut [EventMessage],
) -> Result<usize, WireError> {
    let mut r = Reader::new(input);
    if r.u32()? as usize != msgs.len() {
        return Err(WireError::Invalid("message count"));
    }
    let mut names = Names::new(interner);
    for msg in msgs {
        get_message(&mut r, &mut names, msg)?;
    }
    Ok(r.position())
}

/// Decodes a batch written by [`put_messages`] into `msgs`, first resized to the
/// batch's count: the messages already there are overwritten in place, reusing
/// their allocations as [`get_messages_into`] does, so a receiver that keeps one
/// vector for every batch it gets stops allocating once the vector has grown.
/// Returns bytes consumed.
///
/// # Errors
/// Any [`WireError`]. On an error, `msgs` holds well-formed messages, but not
/// (all) the ones the peer sent.
pub fn get_messages_reusing(
    input: &[u8],
    interner: &mut Interner,
    msgs: &mut Vec<EventMessage>,
) -> Result<usize, WireError> {
    let n = Reader::new(input).count(MIN_MESSAGE)?;
    msgs.truncate(n);
    msgs.resize_with(n, EventMessage::blank);
    get_messages_into(input, interner, msgs)
}

#[inline]
fn get_action(v: u8) -> Result<Action, WireError> {
    match v {
        0 => Ok(Action::Additions),
        1 => Ok(Action::Deletions),
        _ => Err(WireError::Invalid("action")),
    }
}

/// The fixed-size start of an encoded message.
const MESSAGE_HEAD: usize = 3 * 8 + 1 + 2 + 4 + 4 + 4 * 4;

#[inline(always)]
fn get_message(
    r: &mut Reader<'_>,
    names: &mut Names<'_>,
    msg: &mut EventMessage,
) -> Result<(), WireError> {
    // One bounds check for the fixed part; the reads from `head` cannot fail.
    let head: [u8; MESSAGE_HEAD] = r.array()?;
    let mut h = Reader::new(&head);
    let hi = h.u64()?;
    let lo = h.u64()?;
    let source_token = h.u64()?;
    let action = get_action(h.u8()?)?;
    let rtype = RecordType(h.u16()?);
    let ttl = h.u32()?;
    let count = h.u32()?;
    let data_len = h.u32()? as usize;
    let timestamp_len = h.u32()? as usize;
    let extra_len = h.u32()? as usize;
    let n = h.u32()? as usize;
    let phase = Phase::new(names.get(r)?);
    let region_len = data_len
        .checked_add(timestamp_len)
        .and_then(|l| l.checked_add(extra_len))
        .ok_or(WireError::Truncated)?;
    let region = r.take(region_len)?;
    if n > r.rest.len() / MIN_ENTRY {
        return Err(WireError::Truncated);
    }
    const BAD_RECORD: WireError = WireError::Invalid("record data");
    const NOT_UTF8: WireError = WireError::Invalid("string is not UTF-8");
    let record = msg.record_mut();
    // The record's buffer, the timestamp and the extra fields are validated as one
    // string when they are UTF-8 together (the usual case), then cut apart.
    let (timestamp, extra) = match std::str::from_utf8(region) {
        Ok(text) => {
            let (data, rest) = text.split_at_checked(data_len).ok_or(BAD_RECORD)?;
            let (timestamp, extra) = rest.split_at_checked(timestamp_len).ok_or(NOT_UTF8)?;
            if !record.set_packed_str(rtype, ttl, count, data) {
                return Err(BAD_RECORD);
            }
            (timestamp, extra)
        }
        Err(_) => {
            let (data, rest) = region.split_at_checked(data_len).ok_or(BAD_RECORD)?;
            let (timestamp, extra) = rest.split_at_checked(timestamp_len).ok_or(NOT_UTF8)?;
            if !record.set_packed(rtype, ttl, count, data) {
                return Err(BAD_RECORD);
            }
            let utf8 = |b| std::str::from_utf8(b).map_err(|_| NOT_UTF8);
            (utf8(timestamp)?, utf8(extra)?)
        }
    };
    msg.set_id_and_phase(MsgId::from_halves(hi, lo), phase);
    msg.set_action(action);
    msg.set_source_token(source_token);
    let (ts, ex, history) = msg.texts_and_history_mut();
    overwrite(ts, timestamp);
    overwrite(ex, extra);
    history.truncate(n);
    if history.capacity() < n {
        // Like `EventMessage::new`, room for the usual four entries.
        let room = n.max(4);
        if history.is_empty() {
            *history = RVec::with_capacity(room);
        } else {
            history.reserve(room - history.len());
        }
    }
    for i in 0..n {
        let timestamp_ns = r.u64()?;
        let plugin = names.get(r)?;
        let from = Phase::new(names.get(r)?);
        let to = Phase::new(names.get(r)?);
        let text = r.str()?;
        match history.get_mut(i) {
            Some(entry) => entry.set_parts(timestamp_ns, plugin, from, to, text),
            None => history.push(HistoryEntry::from_parts(
                timestamp_ns,
                plugin,
                from,
                to,
                text,
            )),
        }
    }
    Ok(())
}

/// Sets `s` to `text`, in place if it has the room, else in a new string of the
/// right size (growing would copy the old content first).
#[inline(always)]
fn overwrite(s: &mut RString, text: &str) {
    if s.capacity() < text.len() {
        *s = text.into();
    } else {
        s.clear();
        s.push_str(text);
    }
}

/// Appends the encoding of `batch` to `out` (does not clear it).
///
/// # Panics
/// If a count, a string or a record's buffer is longer than `u32::MAX`.
pub fn put_zone_records(out: &mut Vec<u8>, batch: &[ZoneRecords]) {
    put_u32(out, len_u32(batch.len()));
    for zone in batch {
        put_str(out, zone.zone());
        let at = out.len();
        put_u32(out, 0);
        let mut n = 0usize;
        for (record, source) in zone.iter() {
            let (count, data) = record.packed();
            put_u16(out, record.rtype().0);
            put_u32(out, record.ttl());
            put_u32(out, count);
            put_bytes(out, data);
            put_str(out, source);
            n += 1;
        }
        out[at..at + 4].copy_from_slice(&len_u32(n).to_le_bytes());
    }
}

/// Decodes a batch written by [`put_zone_records`], appending it to `out`; returns
/// bytes consumed.
///
/// # Errors
/// Any [`WireError`]; `out` is then as it was.
pub fn get_zone_records(input: &[u8], out: &mut Vec<ZoneRecords>) -> Result<usize, WireError> {
    let start = out.len();
    let got = get_zones(input, out);
    if got.is_err() {
        out.truncate(start);
    }
    got
}

fn get_zones(input: &[u8], out: &mut Vec<ZoneRecords>) -> Result<usize, WireError> {
    let mut r = Reader::new(input);
    let n = r.count(MIN_ZONE)?;
    out.reserve(n);
    for _ in 0..n {
        let name = r.str()?;
        let m = r.count(MIN_RRSET)?;
        let mut zone = ZoneRecords::with_capacity(name, m);
        for _ in 0..m {
            let rtype = RecordType(r.u16()?);
            let ttl = r.u32()?;
            let count = r.u32()?;
            let data = r.bytes()?;
            let record = ResourceRecord::from_packed(rtype, ttl, count, data)
                .ok_or(WireError::Invalid("record data"))?;
            zone.push(record, r.str()?);
        }
        out.push(zone);
    }
    Ok(r.position())
}

/// An owned metric event (for the trip across the socket).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedMetric {
    /// Counter, timer or gauge.
    pub kind: MetricKind,
    /// Metric name.
    pub name: String,
    /// Increment, seconds or gauge value.
    pub value: f64,
    /// The plugin that emitted it (empty for the host).
    pub plugin: String,
    /// Labels, as `(key, value)`.
    pub tags: Vec<(String, String)>,
}

impl OwnedMetric {
    /// Calls `f` with the event as the borrowed [`MetricEvent`] a relay takes (its
    /// tags on the stack when there are few).
    pub fn as_event<R>(&self, f: impl FnOnce(&MetricEvent<'_>) -> R) -> R {
        const ON_STACK: usize = 8;
        fn tag((key, value): &(String, String)) -> Tag<'_> {
            Tag {
                key: RStr::from_str(key),
                value: RStr::from_str(value),
            }
        }
        let event = |tags: &[Tag<'_>]| -> R {
            f(&MetricEvent {
                kind: self.kind,
                name: RStr::from_str(&self.name),
                value: self.value,
                plugin: RStr::from_str(&self.plugin),
                tags: RSlice::from_slice(tags),
            })
        };
        if self.tags.len() <= ON_STACK {
            let empty = Tag {
                key: RStr::from_str(""),
                value: RStr::from_str(""),
            };
            let mut tags = [empty; ON_STACK];
            for (slot, t) in tags.iter_mut().zip(&self.tags) {
                *slot = tag(t);
            }
            event(&tags[..self.tags.len()])
        } else {
            event(&self.tags.iter().map(tag).collect::<Vec<_>>())
        }
    }
}

/// Appends the encoding of `event` to `out` (does not clear it).
///
/// # Panics
/// If a string or the tag list is longer than `u32::MAX`.
pub fn put_metric(out: &mut Vec<u8>, event: &MetricEvent<'_>) {
    put_u8(out, event.kind as u8);
    put_str(out, event.name.as_str());
    put_f64(out, event.value);
    put_str(out, event.plugin.as_str());
    put_u32(out, len_u32(event.tags.len()));
    for tag in event.tags.iter() {
        put_str(out, tag.key.as_str());
        put_str(out, tag.value.as_str());
    }
}

/// Decodes an event written by [`put_metric`]; returns it and the bytes consumed.
///
/// # Errors
/// Any [`WireError`].
pub fn get_metric(input: &[u8]) -> Result<(OwnedMetric, usize), WireError> {
    let mut r = Reader::new(input);
    let kind = match r.u8()? {
        0 => MetricKind::Incr,
        1 => MetricKind::Timer,
        2 => MetricKind::Set,
        _ => return Err(WireError::Invalid("metric kind")),
    };
    let name = r.str()?.to_owned();
    let value = r.f64()?;
    let plugin = r.str()?.to_owned();
    let n = r.count(MIN_TAG)?;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.str()?.to_owned();
        tags.push((key, r.str()?.to_owned()));
    }
    let metric = OwnedMetric {
        kind,
        name,
        value,
        plugin,
        tags,
    };
    Ok((metric, r.position()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_same(a: &EventMessage, b: &EventMessage) {
        let same = a.msg_id() == b.msg_id()
            && a.phase() == b.phase()
            && a.action() == b.action()
            && a.record() == b.record()
            && a.timestamp() == b.timestamp()
            && a.extra_json() == b.extra_json()
            && a.history() == b.history()
            && a.source_token() == b.source_token();
        assert!(same, "\n{a:#?}\n!=\n{b:#?}");
    }

    fn assert_all_same(a: &[EventMessage], b: &[EventMessage]) {
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(b) {
            assert_same(a, b);
        }
    }

    fn typical(i: u64) -> EventMessage {
        let rec = ResourceRecord::new(
            &format!("host-{i:05}.dc1.example.com."),
            RecordType::A,
            [format!("10.0.{}.{}", i / 256 % 256, i % 256)],
        );
        let mut m = EventMessage::new(Phase::new("consume"), Action::Additions, rec);
        m.set_timestamp("2024-05-01T12:00:00Z");
        m.set_extra_json(r#"{"owner":"team-a"}"#);
        m.set_source_token(i);
        m.update_phase_at(
            Phase::new("enrich"),
            "router",
            1_700_000_000_000_000_000 + i,
        );
        m.update_phase_at(
            Phase::new("publish"),
            "router",
            1_700_000_000_000_000_100 + i,
        );
        m.append_to_history("Published", "dns.rfc2136");
        m
    }

    fn varied() -> Vec<EventMessage> {
        let mut out = Vec::new();
        // Empty everything.
        let empty = ResourceRecord::new("", RecordType(0), Vec::<String>::new());
        let mut m = EventMessage::new(Phase::new(""), Action::Deletions, empty);
        m.record_mut().set_ttl(0);
        out.push(m);
        // Many rrdatas, unicode, deletions.
        let mut rrdatas: Vec<String> = (0..200).map(|i| format!("\"tëxt ✓ {i}\"")).collect();
        // A length of 200 is not an ASCII byte: the buffer is not UTF-8 as a whole.
        rrdatas.push("é".repeat(100));
        let rec = ResourceRecord::new("ünï.example.", RecordType::TXT, &rrdatas);
        let mut m = EventMessage::new(Phase::new("enrich"), Action::Deletions, rec);
        m.set_timestamp("2024-01-01T00:00:00+01:00");
        m.set_extra_json(r#"{"note":"日本語 🦀"}"#);
        m.set_source_token(u64::MAX);
        out.push(m);
        // Long history, a runtime-interned phase with the same text as a static one.
        let rec = ResourceRecord::new("long.example.", RecordType::AAAA, ["::1", "", "fe80::1"]);
        let mut m = EventMessage::new(Phase::intern("enrich"), Action::Additions, rec);
        for i in 0..100u64 {
            m.update_phase_at(
                Phase::new(if i % 2 == 0 { "publish" } else { "enrich" }),
                "router",
                i,
            );
            m.append_to_history(format!("step {i} — ok"), "acme.suffix");
        }
        m.append_to_history("", "");
        out.push(m);
        // A stand-in: an empty record buffer.
        out.push(out[1].stand_in());
        // More distinct names than the scan list and the pointer cache hold.
        for i in 0..40 {
            let mut m = typical(i);
            m.update_phase_at(Phase::intern(&format!("phase-{i}")), "router", i);
            out.push(m);
        }
        for i in 0..20 {
            out.push(typical(1000 + i));
        }
        out
    }

    fn encode(msgs: &[EventMessage]) -> Vec<u8> {
        let mut buf = vec![0xAA]; // put_messages appends
        put_messages(&mut buf, msgs);
        buf.remove(0);
        buf
    }

    #[test]
    fn wire_messages_round_trip() {
        let msgs = varied();
        let buf = encode(&msgs);
        let mut interner = Interner::new();
        let first = typical(7);
        let mut got = vec![first.clone()];
        let used = get_messages(&buf, &mut interner, &mut got).expect("decodes");
        assert_eq!(used, buf.len());
        assert_same(&got[0], &first);
        assert_all_same(&got[1..], &msgs);
        for m in &got {
            let _ = m.to_json();
        }
        // Trailing bytes are left alone.
        let mut longer = buf.clone();
        longer.extend_from_slice(b"next frame");
        let mut again = Vec::new();
        assert_eq!(
            get_messages(&longer, &mut interner, &mut again),
            Ok(buf.len())
        );
        assert_all_same(&again, &msgs);
    }

    #[test]
    fn wire_messages_decode_over_others() {
        let msgs = varied();
        let buf = encode(&msgs);
        let mut interner = Interner::new();
        // Over messages with other content, longer and shorter: reversed.
        let mut over: Vec<EventMessage> = msgs.iter().rev().cloned().collect();
        let used = get_messages_into(&buf, &mut interner, &mut over).expect("decodes");
        assert_eq!(used, buf.len());
        assert_all_same(&over, &msgs);
        // Again over itself: nothing that fits is reallocated.
        let before: Vec<(*const u8, *const HistoryEntry)> = over
            .iter()
            .map(|m| (m.record().packed().1.as_ptr(), m.history().as_ptr()))
            .collect();
        get_messages_into(&buf, &mut interner, &mut over).expect("decodes");
        let after: Vec<(*const u8, *const HistoryEntry)> = over
            .iter()
            .map(|m| (m.record().packed().1.as_ptr(), m.history().as_ptr()))
            .collect();
        assert_eq!(before, after);
        assert_all_same(&over, &msgs);
        // Into a vector of another length, reused.
        let mut pool: Vec<EventMessage> = msgs.iter().take(3).cloned().collect();
        let first_data = pool[0].record().packed().1.as_ptr();
        assert_eq!(
            get_messages_reusing(&buf, &mut interner, &mut pool),
            Ok(buf.len())
        );
        assert_all_same(&pool, &msgs);
        assert_eq!(pool[0].record().packed().1.as_ptr(), first_data);
        let short = encode(&msgs[..2]);
        assert_eq!(
            get_messages_reusing(&short, &mut interner, &mut pool),
            Ok(short.len())
        );
        assert_all_same(&pool, &msgs[..2]);
        // Another count is refused.
        assert_eq!(
            get_messages_into(&buf, &mut interner, &mut over[1..]),
            Err(WireError::Invalid("message count"))
        );
    }

    #[test]
    fn wire_names_are_written_once_per_batch() {
        let msgs: Vec<EventMessage> = (0..1000).map(typical).collect();
        let buf = encode(&msgs);
        let count = |needle: &[u8]| buf.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"enrich"), 1);
        assert_eq!(count(b"router"), 1);
        assert_eq!(count(b"dns.rfc2136"), 1);
        let enrich: &'static str = "enrich";
        let mut interner = Interner::new();
        interner.preload(enrich);
        let mut got = Vec::new();
        get_messages(&buf, &mut interner, &mut got).expect("decodes");
        assert_all_same(&got, &msgs);
        assert!(std::ptr::eq(
            got[0].phase().as_str(),
            got[999].phase().as_str()
        ));
        // The preloaded static is the one decoded messages point to.
        assert!(std::ptr::eq(got[3].history()[0].parts().3.as_str(), enrich));
    }

    #[test]
    fn wire_record_buffers_are_checked() {
        let mut data = Vec::new();
        for part in [
            &2u32.to_le_bytes()[..],
            b"\xE2\x82",
            &172u32.to_le_bytes(),
            &[b'a'; 172],
        ] {
            data.extend_from_slice(part);
        }
        // UTF-8 as a whole ("\xE2\x82" and the next length's first byte make a
        // euro sign), but not string by string.
        assert!(std::str::from_utf8(&data).is_ok());
        assert!(ResourceRecord::from_packed(RecordType::A, 0, 1, &data).is_none());
        // Strings that are UTF-8 in a buffer that is not.
        let good = ResourceRecord::new("x.", RecordType::TXT, ["é".repeat(100)]);
        let (count, data) = good.packed();
        assert!(std::str::from_utf8(data).is_err());
        assert_eq!(
            ResourceRecord::from_packed(RecordType::TXT, 300, count, data),
            Some(good.clone())
        );
        // Wrong counts, trailing bytes, a stand-in's empty buffer.
        assert!(ResourceRecord::from_packed(RecordType::TXT, 300, count + 1, data).is_none());
        assert!(ResourceRecord::from_packed(RecordType::TXT, 300, 0, data).is_none());
        let mut longer = data.to_vec();
        longer.push(b' ');
        assert!(ResourceRecord::from_packed(RecordType::TXT, 300, count, &longer).is_none());
        assert!(ResourceRecord::from_packed(RecordType::TXT, 300, 0, &[]).is_some());
        assert!(ResourceRecord::from_packed(RecordType::TXT, 300, 1, &[]).is_none());
        assert!(ResourceRecord::from_packed(RecordType::TXT, 300, u32::MAX, &[0; 8]).is_none());
    }

    fn all_prefixes_fail(buf: &[u8], mut decode: impl FnMut(&[u8]) -> Result<usize, WireError>) {
        assert_eq!(decode(buf), Ok(buf.len()));
        for len in 0..buf.len() {
            assert!(
                decode(&buf[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn wire_every_truncation_fails() {
        let msgs: Vec<EventMessage> = varied().into_iter().take(6).collect();
        let buf = encode(&msgs);
        let mut interner = Interner::new();
        all_prefixes_fail(&buf, |b| {
            let mut out = vec![typical(1)];
            let got = get_messages(b, &mut interner, &mut out);
            if got.is_err() {
                assert_eq!(out.len(), 1);
            }
            got
        });
        let mut interner = Interner::new();
        let mut over: Vec<EventMessage> = msgs.clone();
        all_prefixes_fail(&buf, |b| get_messages_into(b, &mut interner, &mut over));

        let zones = zones();
        let mut zbuf = Vec::new();
        put_zone_records(&mut zbuf, &zones);
        all_prefixes_fail(&zbuf, |b| get_zone_records(b, &mut Vec::new()));

        let mut mbuf = Vec::new();
        metric().as_event(|e| put_metric(&mut mbuf, e));
        all_prefixes_fail(&mbuf, |b| get_metric(b).map(|(_, n)| n));
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn wire_corrupt_input_never_panics() {
        // Small messages, so that many rounds run fast: empty, a stand-in, typical
        // ones, unicode, a deletion, a long rrdata.
        let all = varied();
        let mut msgs = vec![all[0].clone(), all[3].clone(), typical(1), typical(2)];
        msgs[3].set_action(Action::Deletions);
        msgs[3].set_extra_json(r#"{"ü":"✓"}"#);
        msgs[3].record_mut().set_rrdatas(["é".repeat(70)]);
        msgs[3].append_to_history("日本", "acme.ü");
        let buf = encode(&msgs);
        let mut zbuf = Vec::new();
        put_zone_records(&mut zbuf, &zones());
        let mut mbuf = Vec::new();
        metric().as_event(|e| put_metric(&mut mbuf, e));

        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut interner = Interner::new();
        let mut over = msgs.clone();
        let mut decoded = 0;
        for round in 0..3000 {
            let mut m = buf.clone();
            let mut z = zbuf.clone();
            let mut e = mbuf.clone();
            for b in [&mut m, &mut z, &mut e] {
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() % b.len() as u64) as usize;
                    b[at] ^= 1 << (rng.next() % 8);
                }
            }
            let mut out = Vec::new();
            if get_messages(&m, &mut interner, &mut out).is_ok() {
                decoded += 1;
                for msg in &out {
                    let _ = (msg.to_json(), format!("{msg:?}"));
                }
            }
            if get_messages_into(&m, &mut interner, &mut over).is_err() {
                // Whatever was left behind is still a readable message.
                for msg in &over {
                    let _ = msg.to_json();
                }
            }
            let mut zs = Vec::new();
            if get_zone_records(&z, &mut zs).is_ok() {
                let _ = format!("{zs:?}");
            }
            if let Ok((metric, _)) = get_metric(&e) {
                metric.as_event(|ev| format!("{ev:?}"));
            }
            // Pure noise too.
            let noise: Vec<u8> = (0..(round % 200)).map(|_| rng.next() as u8).collect();
            let _ = get_messages(&noise, &mut interner, &mut Vec::new());
            let _ = get_zone_records(&noise, &mut Vec::new());
            let _ = get_metric(&noise);
        }
        assert!(decoded > 0, "some flips (in timestamps, say) still decode");
    }

    #[test]
    fn wire_huge_counts_do_not_allocate() {
        let mut interner = Interner::new();
        let huge = u32::MAX.to_le_bytes();
        assert_eq!(
            get_messages(&huge, &mut interner, &mut Vec::new()),
            Err(WireError::Truncated)
        );
        assert_eq!(
            get_zone_records(&huge, &mut Vec::new()),
            Err(WireError::Truncated)
        );
        let mut metric = vec![0u8];
        for part in [&0u32.to_le_bytes()[..], &[0; 8], &0u32.to_le_bytes(), &huge] {
            metric.extend_from_slice(part);
        }
        assert_eq!(get_metric(&metric), Err(WireError::Truncated));
        // A record whose rrdata count its buffer cannot hold.
        let mut msgs = vec![typical(1)];
        let mut buf = encode(&msgs);
        let at = 4 + 8 + 8 + 8 + 1 + 2 + 4;
        buf[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            get_messages(&buf, &mut interner, &mut Vec::new()),
            Err(WireError::Invalid("record data"))
        );
        // A bad action.
        let mut buf = encode(&msgs);
        buf[4 + 24] = 2;
        assert_eq!(
            get_messages_into(&buf, &mut interner, &mut msgs),
            Err(WireError::Invalid("action"))
        );
    }

    #[test]
    fn wire_interner_is_capped() {
        let msgs: Vec<EventMessage> = (0..MAX_NAMES as u64 + 1)
            .map(|i| {
                let mut m = typical(i);
                m.update_phase_at(Phase::intern(&format!("p{i}")), "r", 0);
                m
            })
            .collect();
        let buf = encode(&msgs);
        let mut interner = Interner::new();
        let mut out = Vec::new();
        assert_eq!(
            get_messages(&buf, &mut interner, &mut out),
            Err(WireError::TooManyNames)
        );
        assert!(out.is_empty());
        // Names already interned still resolve; new ones do not.
        assert_eq!(
            interner.intern("p7"),
            Ok(interner.intern("p7").expect("known"))
        );
        assert_eq!(interner.intern("brand-new"), Err(WireError::TooManyNames));
        let mut fresh = Interner::new();
        assert_eq!(
            fresh.intern(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(WireError::Invalid("name too long"))
        );
        let a = fresh.intern("enrich").expect("interned");
        assert!(std::ptr::eq(a, fresh.intern("enrich").expect("interned")));
    }

    fn zones() -> Vec<ZoneRecords> {
        let mut a = ZoneRecords::new("example.com.");
        a.push(
            ResourceRecord::new("www.example.com.", RecordType::A, ["10.0.0.1", "10.0.0.2"]),
            "zones/a.yaml",
        );
        let mut mx = ResourceRecord::new("example.com.", RecordType::MX, ["10 mx.example.com."]);
        mx.set_ttl(3600);
        a.push(mx, "");
        a.push(
            ResourceRecord::new("ünï.example.com.", RecordType::TXT, Vec::<String>::new()),
            "ü",
        );
        vec![a, ZoneRecords::new(""), ZoneRecords::new("empty.org.")]
    }

    #[test]
    fn wire_zone_records_round_trip() {
        let zones = zones();
        let mut buf = vec![1, 2, 3];
        put_zone_records(&mut buf, &zones);
        let mut out = vec![ZoneRecords::new("kept.")];
        assert_eq!(get_zone_records(&buf[3..], &mut out), Ok(buf.len() - 3));
        assert_eq!(out[0], ZoneRecords::new("kept."));
        assert_eq!(&out[1..], &zones[..]);
        let sources: Vec<&str> = out[1].iter().map(|(_, s)| s).collect();
        assert_eq!(sources, ["zones/a.yaml", "", "ü"]);
    }

    fn metric() -> OwnedMetric {
        OwnedMetric {
            kind: MetricKind::Timer,
            name: "handler.latency".into(),
            value: 0.125,
            plugin: "acme.suffix".into(),
            tags: vec![
                ("phase".into(), "enrich".into()),
                ("ü".into(), String::new()),
            ],
        }
    }

    #[test]
    fn wire_metrics_round_trip() {
        for m in [
            metric(),
            OwnedMetric {
                kind: MetricKind::Incr,
                name: String::new(),
                value: -1.0,
                plugin: String::new(),
                tags: Vec::new(),
            },
            OwnedMetric {
                kind: MetricKind::Set,
                name: "many.tags".into(),
                value: f64::MAX,
                plugin: "host".into(),
                tags: (0..20)
                    .map(|i| (format!("k{i}"), format!("v{i}")))
                    .collect(),
            },
        ] {
            let mut buf = Vec::new();
            m.as_event(|e| {
                assert_eq!(e.tags.len(), m.tags.len());
                put_metric(&mut buf, e)
            });
            let (got, used) = get_metric(&buf).expect("decodes");
            assert_eq!(used, buf.len());
            assert_eq!(got, m);
        }
        let mut buf = Vec::new();
        metric().as_event(|e| put_metric(&mut buf, e));
        buf[0] = 3;
        assert_eq!(get_metric(&buf), Err(WireError::Invalid("metric kind")));
    }

    #[test]
    fn wire_reader_primitives() {
        let mut buf = Vec::new();
        put_u8(&mut buf, 7);
        put_u16(&mut buf, 0x1234);
        put_u32(&mut buf, 0xdead_beef);
        put_u64(&mut buf, u64::MAX - 1);
        put_f64(&mut buf, 1.5);
        put_str(&mut buf, "héllo");
        put_bytes(&mut buf, &[0xff, 0]);
        put_bytes(&mut buf, &[0xff]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(0x1234));
        assert_eq!(r.u32(), Ok(0xdead_beef));
        assert_eq!(r.u64(), Ok(u64::MAX - 1));
        assert_eq!(r.f64(), Ok(1.5));
        assert_eq!(r.str(), Ok("héllo"));
        assert_eq!(r.bytes(), Ok(&[0xff, 0][..]));
        assert_eq!(r.position(), buf.len() - 5);
        assert_eq!(
            r.clone().str(),
            Err(WireError::Invalid("string is not UTF-8"))
        );
        assert_eq!(r.rest(), &[1, 0, 0, 0, 0xff]);
        assert_eq!(r.bytes(), Ok(&[0xff][..]));
        assert_eq!(r.u8(), Err(WireError::Truncated));
        assert_eq!(
            Reader::new(&[5, 0, 0, 0, 1]).bytes(),
            Err(WireError::Truncated)
        );
    }

    /// `cargo test -p gordon-plugin-api --release wire -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn wire_bench() {
        use std::time::{Duration, Instant};
        const BATCH: usize = 1000;
        let msgs: Vec<EventMessage> = (0..BATCH as u64).map(typical).collect();
        let mut buf = Vec::new();
        put_messages(&mut buf, &msgs);
        println!("{} bytes per message", buf.len() / BATCH);
        let mut interner = Interner::new();
        // The best of many short rounds: the machine may be busy with other work.
        let run = |what: &str, f: &mut dyn FnMut()| {
            for _ in 0..50 {
                f();
            }
            let mut best = Duration::MAX;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                let round = Instant::now();
                for _ in 0..10 {
                    f();
                }
                best = best.min(round.elapsed());
            }
            let rate = (10 * BATCH) as f64 / best.as_secs_f64();
            println!("{what}: {:.2} M messages/s", rate / 1e6);
        };
        let mut cloned = Vec::with_capacity(BATCH);
        run("baseline: clone the batch (incl. drop)", &mut || {
            cloned.clear();
            cloned.extend(msgs.iter().cloned());
        });
        let mut out = Vec::new();
        run("encode", &mut || {
            out.clear();
            put_messages(&mut out, &msgs);
        });
        let mut over = msgs.clone();
        run("decode into existing", &mut || {
            get_messages_into(&buf, &mut interner, &mut over).expect("decodes");
        });
        let mut fresh = Vec::with_capacity(BATCH);
        run("decode fresh (incl. drop)", &mut || {
            fresh.clear();
            get_messages(&buf, &mut interner, &mut fresh).expect("decodes");
        });
        run("encode + decode into existing", &mut || {
            out.clear();
            put_messages(&mut out, &msgs);
            get_messages_into(&out, &mut interner, &mut over).expect("decodes");
        });
        run("encode + decode fresh (incl. drop)", &mut || {
            out.clear();
            put_messages(&mut out, &msgs);
            fresh.clear();
            get_messages(&out, &mut interner, &mut fresh).expect("decodes");
        });
        assert_all_same(&over, &msgs);
        assert_all_same(&fresh, &msgs);
    }

    #[test]
    fn a_name_is_leaked_once_per_process_not_once_per_interner() {
        let a = Interner::new().intern("phase-shared-by-interners").unwrap();
        let b = Interner::new().intern("phase-shared-by-interners").unwrap();
        assert!(
            std::ptr::eq(a, b),
            "two interners leaked the same name twice"
        );
    }
}
