//! The DNS wire format, as far as updates, TSIG and zone transfers need it: names, a
//! message writer with name compression, a message parser, and record data in the
//! presentation forms the event format uses.
//!
//! Names are kept in uncompressed wire form with ASCII letters lowercased, so that
//! comparing two names (or two record data) is comparing bytes. Record data read
//! from a server is put in the same canonical form (names inside it decompressed and
//! lowercased) before it is compared with what was sent.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use gordon_plugin_api::{event_json, RecordType};

/// Class IN.
pub(crate) const CLASS_IN: u16 = 1;
/// Class NONE (RFC 2136: "RRset does not exist" / "delete an RR").
pub(crate) const CLASS_NONE: u16 = 254;
/// Class ANY (RFC 2136: "RRset exists" / "delete an RRset"; TSIG).
pub(crate) const CLASS_ANY: u16 = 255;
/// The TSIG meta type.
pub(crate) const TYPE_TSIG: u16 = 250;
/// The ANY query type (RFC 2136: "name is in use" prerequisites).
pub(crate) const TYPE_ANY: u16 = 255;
/// The AXFR query type.
pub(crate) const TYPE_AXFR: u16 = 252;
/// Opcode UPDATE, in the header's flags.
pub(crate) const OPCODE_UPDATE: u16 = 5 << 11;
/// The truncation (TC) flag.
pub(crate) const FLAG_TC: u16 = 0x0200;
/// The authoritative answer (AA) flag.
pub(crate) const FLAG_AA: u16 = 0x0400;
/// The response (QR) flag.
pub(crate) const FLAG_QR: u16 = 0x8000;
/// The largest DNS message (TCP length prefix).
pub(crate) const MAX_MESSAGE: usize = 65_535;

/// A domain name in uncompressed wire form, ASCII letters lowercased.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Name(Vec<u8>);

impl Name {
    /// Parses an absolute presentation name (`www.example.com.`); `\X` and `\DDD`
    /// escapes are understood.
    pub(crate) fn parse(text: &str) -> Result<Name, String> {
        if text == "." {
            return Ok(Name(vec![0]));
        }
        let Some(body) = text.strip_suffix('.') else {
            return Err(format!(
                "{text:?} is not an absolute name (it must end with '.')"
            ));
        };
        let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
        let mut bytes = body.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'.' => labels.push(Vec::new()),
                b'\\' => {
                    let c = bytes
                        .next()
                        .ok_or_else(|| format!("{text:?} ends in an escape"))?;
                    let label = labels.last_mut().ok_or("no label")?;
                    if c.is_ascii_digit() {
                        let d: Vec<u8> = [Some(c), bytes.next(), bytes.next()]
                            .into_iter()
                            .flatten()
                            .collect();
                        let n = std::str::from_utf8(&d)
                            .ok()
                            .and_then(|s| s.parse::<u8>().ok());
                        label.push(n.ok_or_else(|| format!("{text:?} has a bad \\DDD escape"))?);
                    } else {
                        label.push(c);
                    }
                }
                _ => labels.last_mut().ok_or("no label")?.push(b),
            }
        }
        Name::from_labels(labels.iter().map(Vec::as_slice))
    }

    /// [`Name::parse`] into `out` (cleared first) without allocating, for names
    /// read a million times over (the reconciler's owner lookups). `false` for
    /// anything it is not sure of — an escape, a bad label, a name too long — and
    /// then `out` means nothing: ask [`Name::parse`], which explains.
    pub(crate) fn parse_plain_into(text: &str, out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some(body) = text.strip_suffix('.') else {
            return false;
        };
        if body.is_empty() || body.len() + 2 > 255 || body.contains('\\') {
            return false;
        }
        for label in body.split('.') {
            if label.is_empty() || label.len() > 63 {
                return false;
            }
            out.push(label.len() as u8);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
        out.push(0);
        true
    }

    /// Makes a name of labels, checking their lengths (1..=63) and the total (255).
    pub(crate) fn from_labels<'a>(
        labels: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Name, String> {
        let mut wire = Vec::new();
        for label in labels {
            if label.is_empty() || label.len() > 63 {
                let shown = String::from_utf8_lossy(label);
                return Err(format!("label {shown:?} must be 1 to 63 bytes long"));
            }
            wire.push(label.len() as u8);
            wire.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        wire.push(0);
        if wire.len() > 255 {
            return Err("name is longer than 255 bytes".to_owned());
        }
        Ok(Name(wire))
    }

    /// A name given relative to `origin` (no trailing dot, or `@`) or absolute.
    pub(crate) fn qualify(text: &str, origin: &Name) -> Result<Name, String> {
        let text = text.trim();
        if text == "@" {
            return Ok(origin.clone());
        }
        if text.is_empty() {
            return Err("empty name".to_owned());
        }
        if text.ends_with('.') && !text.ends_with("\\.") {
            return Name::parse(text);
        }
        let relative = Name::parse(&format!("{text}."))?;
        let labels: Vec<&[u8]> = relative.labels().chain(origin.labels()).collect();
        Name::from_labels(labels)
    }

    /// The wire form.
    pub(crate) fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The labels, leftmost first.
    pub(crate) fn labels(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let len = usize::from(*self.0.get(at)?);
            let label = self.0.get(at + 1..at + 1 + len).filter(|_| len > 0)?;
            at += 1 + len;
            Some(label)
        })
    }

    /// Whether the name is `zone` or below it.
    pub(crate) fn is_in(&self, zone: &Name) -> bool {
        let mut at = 0;
        while at < self.0.len() {
            if self.0[at..] == zone.0[..] {
                return true;
            }
            at += 1 + usize::from(self.0[at]);
        }
        false
    }
}

impl Name {
    /// Appends the presentation form (what `Display` shows) to `out`, a label at a
    /// time rather than a character at a time through the formatter: the reconciler
    /// names a million record sets of a transfer this way.
    pub(crate) fn push_text(&self, out: &mut String) {
        push_name_text(&self.0, out);
    }
}

/// Appends the presentation form of the uncompressed wire name `wire` (as
/// [`Name`] keeps it) to `out`; see [`Name::push_text`].
pub(crate) fn push_name_text(wire: &[u8], out: &mut String) {
    if wire.len() <= 1 {
        out.push('.');
        return;
    }
    let special = |b: u8| matches!(b, b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$');
    let mut at = 0;
    while let Some(label) = wire
        .get(at)
        .map(|len| usize::from(*len))
        .filter(|len| *len > 0)
        .and_then(|len| wire.get(at + 1..at + 1 + len))
    {
        at += 1 + label.len();
        let plain = label
            .iter()
            .all(|&b| (0x21..=0x7e).contains(&b) && !special(b));
        match std::str::from_utf8(label) {
            Ok(text) if plain => out.push_str(text),
            _ => {
                for &b in label {
                    if special(b) {
                        out.push('\\');
                        out.push(b as char);
                    } else if (0x21..=0x7e).contains(&b) {
                        out.push(b as char);
                    } else {
                        use fmt::Write as _;
                        let _ = write!(out, "\\{b:03}");
                    }
                }
            }
        }
        out.push('.');
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(self.0.len() + 1);
        self.push_text(&mut text);
        f.write_str(&text)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Writes a DNS message; names outside record data are compressed.
pub(crate) struct Writer {
    buf: Vec<u8>,
    counts: [u16; 4],
    // Wire suffixes already written, and where.
    offsets: HashMap<Vec<u8>, u16>,
}

/// The record sections an update writes: answer (prerequisites) and authority
/// (updates). TSIG, in the additional section, is appended by the signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Answer = 1,
    Authority = 2,
}

impl Writer {
    /// A message with `id` and `flags` and empty sections.
    pub(crate) fn new(id: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        Writer {
            buf,
            counts: [0; 4],
            offsets: HashMap::new(),
        }
    }

    fn name(&mut self, name: &Name) {
        let wire = name.wire();
        let mut at = 0;
        while wire[at] != 0 {
            if let Some(&ptr) = self.offsets.get(&wire[at..]) {
                self.buf.extend_from_slice(&(0xc000 | ptr).to_be_bytes());
                return;
            }
            if let Ok(here) = u16::try_from(self.buf.len()) {
                if here < 0x4000 {
                    self.offsets.insert(wire[at..].to_vec(), here);
                }
            }
            let len = usize::from(wire[at]);
            self.buf.extend_from_slice(&wire[at..at + 1 + len]);
            at += 1 + len;
        }
        self.buf.push(0);
    }

    /// Adds the question (the zone section of an update).
    pub(crate) fn question(&mut self, name: &Name, rtype: u16, class: u16) {
        self.name(name);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.counts[0] += 1;
    }

    /// Adds a record to `section`; `rdata` is written as it is.
    pub(crate) fn record(
        &mut self,
        section: Section,
        name: &Name,
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) {
        self.name(name);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self.counts[section as usize] += 1;
    }

    /// The finished message.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        for (i, count) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }
        self.buf
    }
}

/// One record of a parsed message.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) name: Name,
    pub(crate) rtype: u16,
    pub(crate) class: u16,
    pub(crate) ttl: u32,
    /// Where the record data is in the message.
    pub(crate) rdata: Range<usize>,
    /// Where the record starts in the message.
    pub(crate) start: usize,
}

/// A parsed message: header fields and the records of the three record sections.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    pub(crate) answers: Vec<Record>,
    pub(crate) additional: Vec<Record>,
}

impl Message {
    /// The response code (the header's four bits; updates do not use EDNS).
    pub(crate) fn rcode(&self) -> u16 {
        self.flags & 0x000f
    }
}

fn be16(buf: &[u8], at: usize) -> Result<u16, String> {
    buf.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "message ends early".to_owned())
}

/// Reads a (possibly compressed) name at `*at`, advancing `*at` past it.
pub(crate) fn read_name(buf: &[u8], at: &mut usize) -> Result<Name, String> {
    let mut wire = Vec::new();
    let mut pos = *at;
    let mut jumped = false;
    for _ in 0..128 {
        let len = *buf.get(pos).ok_or("name runs past the message")?;
        match len {
            0 => {
                if !jumped {
                    *at = pos + 1;
                }
                wire.push(0);
                if wire.len() > 255 {
                    return Err("name is longer than 255 bytes".to_owned());
                }
                return Ok(Name(wire));
            }
            0xc0..=0xff => {
                let ptr = usize::from(be16(buf, pos)? & 0x3fff);
                if !jumped {
                    *at = pos + 2;
                }
                jumped = true;
                pos = ptr;
            }
            1..=63 => {
                let label = buf
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or("label runs past the message")?;
                wire.push(len);
                wire.extend(label.iter().map(u8::to_ascii_lowercase));
                pos += 1 + usize::from(len);
            }
            _ => return Err(format!("bad label length byte {len:#x}")),
        }
    }
    Err("name compression loop".to_owned())
}

/// Parses a message: header, question(s) skipped, records of every section.
pub(crate) fn parse(buf: &[u8]) -> Result<Message, String> {
    if buf.len() < 12 {
        return Err(format!(
            "message of {} bytes is shorter than a header",
            buf.len()
        ));
    }
    let count = |i: usize| be16(buf, 4 + 2 * i).map(usize::from);
    let mut at = 12;
    for _ in 0..count(0)? {
        read_name(buf, &mut at)?;
        at += 4;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    for (i, section) in sections.iter_mut().enumerate() {
        for _ in 0..count(i + 1)? {
            let start = at;
            let name = read_name(buf, &mut at)?;
            let rtype = be16(buf, at)?;
            let class = be16(buf, at + 2)?;
            let ttl = u32::from(be16(buf, at + 4)?) << 16 | u32::from(be16(buf, at + 6)?);
            let len = usize::from(be16(buf, at + 8)?);
            let rdata = at + 10..at + 10 + len;
            if rdata.end > buf.len() {
                return Err("record data runs past the message".to_owned());
            }
            at = rdata.end;
            section.push(Record {
                name,
                rtype,
                class,
                ttl,
                rdata,
                start,
            });
        }
    }
    let [answers, _, additional] = sections;
    Ok(Message {
        id: be16(buf, 0)?,
        flags: be16(buf, 2)?,
        answers,
        additional,
    })
}

/// The number of leading fixed-size bytes before the one domain name in the record
/// data of types whose data ends with a name (CNAME, NS, PTR, MX, SRV).
fn name_offset(rtype: u16) -> Option<usize> {
    match RecordType(rtype) {
        RecordType::CNAME | RecordType::NS | RecordType::PTR => Some(0),
        RecordType::MX => Some(2),
        RecordType::SRV => Some(6),
        _ => None,
    }
}

/// The record data of `rec` in canonical form: names decompressed and lowercased.
pub(crate) fn canonical_rdata(buf: &[u8], rec: &Record) -> Result<Vec<u8>, String> {
    let raw = &buf[rec.rdata.clone()];
    if rec.rtype == RecordType::SOA.0 {
        let mut at = rec.rdata.start;
        let mut out = read_name(buf, &mut at)?.0;
        out.extend(read_name(buf, &mut at)?.0);
        out.extend_from_slice(buf.get(at..at + 20).ok_or("short SOA")?);
        return Ok(out);
    }
    let Some(fixed) = name_offset(rec.rtype) else {
        return Ok(raw.to_vec());
    };
    let mut out = raw.get(..fixed).ok_or("record data too short")?.to_vec();
    let mut at = rec.rdata.start + fixed;
    out.extend(read_name(buf, &mut at)?.0);
    Ok(out)
}

fn number(field: &str, what: &str) -> Result<u16, String> {
    field
        .parse::<u16>()
        .map_err(|_| format!("{what} {field:?} is not a number in 0..=65535"))
}

/// Encodes one rrdata of the event format (presentation form; names may be relative
/// to `zone`; TXT is read with `event_json::txt_strings`, the decoder every source and
/// handler shares, and each of its character-strings encoded as one length-prefixed
/// <character-string>) in canonical wire form.
pub(crate) fn encode_rdata(rtype: RecordType, text: &str, zone: &Name) -> Result<Vec<u8>, String> {
    let trimmed = text.trim();
    let fields: Vec<&str> = trimmed.split_ascii_whitespace().collect();
    let name = |s: &str| Name::qualify(s, zone).map(|n| n.0);
    match rtype {
        RecordType::A => Ok(trimmed
            .parse::<Ipv4Addr>()
            .map_err(|_| "not an IPv4 address")?
            .octets()
            .to_vec()),
        RecordType::AAAA => Ok(trimmed
            .parse::<Ipv6Addr>()
            .map_err(|_| "not an IPv6 address")?
            .octets()
            .to_vec()),
        RecordType::CNAME | RecordType::NS | RecordType::PTR => name(trimmed),
        RecordType::MX => match fields.as_slice() {
            [pref, exchange] => {
                let mut out = number(pref, "preference")?.to_be_bytes().to_vec();
                out.extend(name(exchange)?);
                Ok(out)
            }
            _ => Err("expected \"<preference> <exchange>\"".to_owned()),
        },
        RecordType::SRV => match fields.as_slice() {
            [priority, weight, port, target] => {
                let mut out = Vec::new();
                for (f, what) in [(priority, "priority"), (weight, "weight"), (port, "port")] {
                    out.extend(number(f, what)?.to_be_bytes());
                }
                out.extend(name(target)?);
                Ok(out)
            }
            _ => Err("expected \"<priority> <weight> <port> <target>\"".to_owned()),
        },
        RecordType::TXT => Ok(txt_strings_rdata(&event_json::txt_strings(text)?)),
        other => Err(format!("record type {other} is not supported")),
    }
}

/// TXT record data holding `text`: character-strings of at most 255 bytes.
pub(crate) fn txt_rdata(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 255 + 1);
    if text.is_empty() {
        out.push(0);
    }
    for chunk in text.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out
}

/// TXT record data holding `strings`, each a length-prefixed <character-string> (each
/// at most 255 bytes, as `event_json::txt_strings` gives them).
pub(crate) fn txt_strings_rdata(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(event_json::txt_wire_len(strings));
    for s in strings {
        debug_assert!(s.len() <= 255);
        out.push(s.len().min(255) as u8);
        out.extend_from_slice(&s[..s.len().min(255)]);
    }
    out
}

/// The character-strings of TXT rdata, each on its own (a string cut short by the
/// end of the data keeps what there is).
pub(crate) fn txt_strings(rdata: &[u8]) -> Vec<Vec<u8>> {
    let mut strings = Vec::new();
    let mut at = 0;
    while let Some(&len) = rdata.get(at) {
        let end = (at + 1 + usize::from(len)).min(rdata.len());
        strings.push(rdata[at + 1..end].to_vec());
        at += 1 + usize::from(len);
    }
    strings
}

/// The character-strings of TXT rdata, concatenated.
pub(crate) fn txt_bytes(rdata: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    let mut at = 0;
    while let Some(&len) = rdata.get(at) {
        text.extend_from_slice(
            rdata
                .get(at + 1..at + 1 + usize::from(len))
                .unwrap_or_default(),
        );
        at += 1 + usize::from(len);
    }
    text
}

/// Canonical record data shown for people (error messages).
pub(crate) fn rdata_text(rtype: u16, rdata: &[u8]) -> String {
    let name_at = |at: usize| {
        let mut pos = at;
        read_name(rdata, &mut pos).map_or_else(|e| format!("<{e}>"), |n| n.to_string())
    };
    let u16_at = |at: usize| be16(rdata, at).map_or(0, |v| v);
    match RecordType(rtype) {
        RecordType::A if rdata.len() == 4 => {
            Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string()
        }
        RecordType::AAAA => <[u8; 16]>::try_from(rdata).map_or_else(
            |_| "<bad AAAA>".to_owned(),
            |b| Ipv6Addr::from(b).to_string(),
        ),
        RecordType::CNAME | RecordType::NS | RecordType::PTR => name_at(0),
        RecordType::MX => format!("{} {}", u16_at(0), name_at(2)),
        RecordType::SRV => format!("{} {} {} {}", u16_at(0), u16_at(2), u16_at(4), name_at(6)),
        RecordType::TXT => format!("{:?}", String::from_utf8_lossy(&txt_bytes(rdata))),
        _ => format!(
            "\\# {} {}",
            rdata.len(),
            rdata.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn names_parse_qualify_and_print() {
        let zone = n("Example.COM.");
        assert_eq!(zone.wire(), b"\x07example\x03com\x00");
        assert_eq!(Name::qualify("www", &zone).unwrap(), n("www.example.com."));
        assert_eq!(Name::qualify("@", &zone).unwrap(), zone);
        assert_eq!(Name::qualify("a.b.", &zone).unwrap(), n("a.b."));
        assert_eq!(n("a\\.b.example.com.").labels().next().unwrap(), b"a.b");
        assert_eq!(
            n("a\\.b\\032c.example.com.").to_string(),
            "a\\.b\\032c.example.com."
        );
        assert_eq!(n(".").to_string(), ".");
        assert!(Name::parse("www.example.com").is_err());
        assert!(Name::parse("a..b.").is_err());
        assert!(Name::parse(&format!("{}.", "a".repeat(64))).is_err());
        assert!(n("www.example.com.").is_in(&zone) && zone.is_in(&zone));
        assert!(!n("wwwexample.com.").is_in(&zone) && !n("com.").is_in(&zone));
    }

    #[test]
    fn plain_names_parse_without_allocating_as_parse_does() {
        let mut out = Vec::new();
        for text in [
            "www.example.com.",
            "A.B.",
            "x.",
            "_gordon-a-h1.example.test.",
        ] {
            assert!(Name::parse_plain_into(text, &mut out), "{text}");
            assert_eq!(out, Name::parse(text).unwrap().wire(), "{text}");
        }
        let long = format!("{}.com.", "a".repeat(64));
        let too_long = format!("{}.", vec!["a".repeat(63); 4].join("."));
        for text in [
            ".",
            "",
            "www.example.com",
            "a..b.",
            "a\\.b.c.",
            &long,
            &too_long,
        ] {
            assert!(!Name::parse_plain_into(text, &mut out), "{text}");
        }
        // Escapes are left to `parse`, which understands them.
        assert!(Name::parse("a\\.b.c.").is_ok());
    }

    #[test]
    fn writer_compresses_and_parser_reads_back() {
        let zone = n("example.com.");
        let www = n("www.example.com.");
        let mut w = Writer::new(0x1234, OPCODE_UPDATE);
        w.question(&zone, RecordType::SOA.0, CLASS_IN);
        let mx = encode_rdata(RecordType::MX, "10 mail", &zone).unwrap();
        w.record(
            Section::Authority,
            &www,
            RecordType::MX.0,
            CLASS_IN,
            300,
            &mx,
        );
        w.record(Section::Authority, &www, RecordType::A.0, CLASS_ANY, 0, &[]);
        let buf = w.finish();
        // The second owner name is a two-byte pointer.
        assert_eq!(buf.len(), 12 + 13 + 4 + (6 + 10 + mx.len()) + (2 + 10));
        let m = parse(&buf).unwrap();
        assert_eq!((m.id, m.flags), (0x1234, OPCODE_UPDATE));
        assert!(m.answers.is_empty());
        let mut at = 12 + 13 + 4;
        assert_eq!(read_name(&buf, &mut at).unwrap(), www);
        assert_eq!(rdata_text(RecordType::MX.0, &mx), "10 mail.example.com.");
    }

    #[test]
    fn rdata_encodes_every_supported_type() {
        let z = n("example.com.");
        let e = |t, s| encode_rdata(t, s, &z);
        assert_eq!(e(RecordType::A, " 10.0.0.1 ").unwrap(), [10, 0, 0, 1]);
        assert_eq!(e(RecordType::AAAA, "::1").unwrap().len(), 16);
        assert_eq!(
            e(RecordType::CNAME, "Target.Example.NET.").unwrap(),
            n("target.example.net.").wire()
        );
        let srv = e(RecordType::SRV, "1 2 5060 sip").unwrap();
        assert_eq!(
            rdata_text(RecordType::SRV.0, &srv),
            "1 2 5060 sip.example.com."
        );
        assert_eq!(e(RecordType::TXT, "\"hi\"").unwrap(), b"\x02hi");
        assert_eq!(e(RecordType::TXT, "").unwrap(), [0]);
        // The event format's TXT rule, shared with the other plugins: each quoted
        // string is one character-string, escapes decoded once, ambiguous data refused.
        assert_eq!(
            e(RecordType::TXT, r#""a" "b\"c""#).unwrap(),
            b"\x01a\x03b\"c"
        );
        let spf = e(RecordType::TXT, r#""v=spf1 include:x" "-all""#).unwrap();
        assert_eq!(spf, b"\x10v=spf1 include:x\x04-all");
        assert_eq!(txt_strings(&spf), [&b"v=spf1 include:x"[..], b"-all"]);
        assert_ne!(spf, e(RecordType::TXT, "v=spf1 include:x-all").unwrap());
        assert_eq!(e(RecordType::TXT, r#""" """#).unwrap(), [0, 0]);
        let too_long = format!("\"{}\"", "x".repeat(256));
        assert!(e(RecordType::TXT, &too_long)
            .unwrap_err()
            .contains("at most 255"));
        assert_eq!(e(RecordType::TXT, "say \"hi\"").unwrap(), b"\x08say \"hi\"");
        assert!(e(RecordType::TXT, "\"\"x\"\"").is_err());
        let text = "x".repeat(300);
        let long = e(RecordType::TXT, &text).unwrap();
        assert_eq!((long[0], long[256], long.len()), (255, 45, 302));
        assert!(e(RecordType::A, "300.0.0.1").is_err());
        assert!(e(RecordType::MX, "10").is_err());
        assert!(e(RecordType::SRV, "1 2 70000 x.").is_err());
        assert!(e(RecordType(99), "x").is_err());
    }
}
