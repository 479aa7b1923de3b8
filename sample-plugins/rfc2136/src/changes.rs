//! From event messages to UPDATE messages: validating each event into an [`Edit`],
//! folding a batch's edits per record set into [`Change`]s (the last one wins),
//! cutting the changes into UPDATE-sized chunks, and writing an UPDATE.
//!
//! Ownership layout: the owner record of record set `(name, type)` is a TXT record
//! set with the single string `heritage=gordon,owner=<owner_id>`, named by prefixing
//! the name's first label with `_gordon-<type>-` (`www.example.com.` A ->
//! `_gordon-a-www.example.com.`); at the apex the name is `_gordon-<type>.<zone>`.
//! It is a sibling of the record, never the record's own name, so it cannot collide
//! with user TXT data at that name, and it is never below the name, which might be
//! a delegation point. Ownership is always on: every edit has an owner record name,
//! and names whose first label starts with `_gordon-` are reserved.

use std::collections::HashMap;

use gordon_plugin_api::{ownership, Action, EventMessage, PluginError, RecordType};

use crate::wire::{self, Name, Section, Writer, CLASS_ANY, CLASS_IN, CLASS_NONE, OPCODE_UPDATE};

/// The label prefix of owner records.
pub(crate) const OWNER_PREFIX: &str = ownership::PREFIX;
/// The most bytes of records one UPDATE carries (a DNS message is at most 65535
/// bytes; this leaves room for the header, zone and TSIG).
pub(crate) const MAX_UPDATE_BYTES: usize = 64_000;

/// The record types the plugin publishes.
const SUPPORTED: [RecordType; 8] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SRV,
    RecordType::TXT,
];

/// What one event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Replace the record set with these records (canonical wire rdata).
    Replace { ttl: u32, rdatas: Vec<Vec<u8>> },
    /// Remove the record set.
    Delete,
}

/// One event, validated: the message's index in its batch and the change it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) msg: usize,
    pub(crate) name: Name,
    pub(crate) rtype: RecordType,
    pub(crate) op: Op,
    /// The owner record's name.
    pub(crate) owner: Name,
}

/// The edits of one batch for one record set, in message order; the last one is the
/// one sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) edits: Vec<Edit>,
}

impl Change {
    /// The edit that takes effect.
    pub(crate) fn effective(&self) -> &Edit {
        // A change is never empty: `fold` creates each with one edit.
        &self.edits[self.edits.len() - 1]
    }

    /// The batch indices of the messages folded into this change.
    pub(crate) fn msgs(&self) -> impl Iterator<Item = usize> + '_ {
        self.edits.iter().map(|e| e.msg)
    }

    /// An upper bound on the bytes the change adds to an UPDATE of its zone, for
    /// the largest of `sizing.claims`: each name costs at most its labels below the
    /// zone and a 2-byte pointer, because [`update_message`] writes the zone first
    /// (at offset 12, which every later name can point to). The real size is smaller
    /// when a name repeats early in the message.
    pub(crate) fn size(&self, sizing: &Sizing<'_>) -> usize {
        let e = self.effective();
        let zone = sizing.zone.wire().len();
        let name = |n: &Name| n.wire().len().saturating_sub(zone) + 2;
        let (mut prereqs, mut updates) = (Vec::new(), Vec::new());
        sizing
            .claims
            .iter()
            .map(|&claim| {
                prereqs.clear();
                updates.clear();
                records(e, claim, sizing.values, &mut prereqs, &mut updates);
                let rr = |(n, _, _, _, data): &Rr<'_>| name(n) + 10 + data.len();
                prereqs.iter().chain(updates.iter()).map(rr).sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }
}

/// What bounds the size of a change in an UPDATE.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizing<'a> {
    /// The zone (every name is in it).
    pub(crate) zone: &'a Name,
    /// The owner record data.
    pub(crate) values: OwnerValues<'a>,
    /// The claims the configuration can make (see [`Claim`]).
    pub(crate) claims: &'a [Claim],
}

/// The owner record name of `(name, rtype)` in `zone` (see the module docs).
pub(crate) fn owner_name(name: &Name, rtype: RecordType, zone: &Name) -> Result<Name, String> {
    let t = rtype.name().to_ascii_lowercase();
    let mut labels = name.labels();
    let first = if name == zone {
        format!("{OWNER_PREFIX}{t}").into_bytes()
    } else {
        let label = labels.next().ok_or("the root has no owner record")?;
        [format!("{OWNER_PREFIX}{t}-").as_bytes(), label].concat()
    };
    if first.len() > 63 {
        return Err(format!(
            "the first label of {name} is too long for its owner record"
        ));
    }
    let rest: Vec<&[u8]> = labels.collect();
    Name::from_labels(std::iter::once(first.as_slice()).chain(rest))
}

/// The owner record's TXT record data for `owner_id`.
pub(crate) fn owner_rdata(owner_id: &str) -> Vec<u8> {
    wire::txt_rdata(ownership::value(owner_id).as_bytes())
}

/// What `validate` needs to know of the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules<'a> {
    pub(crate) zone: &'a Name,
    pub(crate) default_ttl: u32,
}

/// Validates message `index` into an edit, or says why it cannot be published.
pub(crate) fn validate(
    index: usize,
    msg: &EventMessage,
    rules: Rules<'_>,
) -> Result<Edit, PluginError> {
    let record = msg.record();
    let (zone, rtype, raw) = (rules.zone, record.rtype(), record.name());
    let fail = |text: String| PluginError::new(text);
    let name = Name::qualify(raw, zone).map_err(|e| fail(format!("invalid name {raw:?}: {e}")))?;
    if rtype == RecordType::SOA {
        return Err(fail(format!(
            "cannot change the SOA of {name}: the server manages it"
        )));
    }
    if !SUPPORTED.contains(&rtype) {
        return Err(fail(format!("unsupported record type {rtype} for {name}")));
    }
    if !name.is_in(zone) {
        return Err(fail(format!("name {name} is outside zone {zone}")));
    }
    if rtype == RecordType::NS && name == *zone {
        return Err(fail(format!(
            "the apex NS records of {zone} are managed on the server, not by events"
        )));
    }
    let reserved = name
        .labels()
        .next()
        .is_some_and(|l| l.starts_with(OWNER_PREFIX.as_bytes()));
    if reserved {
        return Err(fail(format!(
            "name {name} is reserved for gordon's owner records ({OWNER_PREFIX}*)"
        )));
    }
    let owner = owner_name(&name, rtype, zone).map_err(fail)?;
    let op = match msg.action() {
        Action::Deletions => Op::Delete,
        Action::Additions => {
            let mut rdatas: Vec<Vec<u8>> = Vec::with_capacity(record.rrdatas().len());
            for data in record.rrdatas() {
                let wire = wire::encode_rdata(rtype, data, zone).map_err(|why| {
                    fail(format!("invalid {rtype} rrdata {data:?} for {name}: {why}"))
                })?;
                if !rdatas.contains(&wire) {
                    rdatas.push(wire);
                }
            }
            if rdatas.is_empty() {
                return Err(fail(format!("no rrdatas for {name} {rtype}")));
            }
            if rtype == RecordType::CNAME && rdatas.len() != 1 {
                return Err(fail(format!(
                    "CNAME {name} must have exactly one rrdata, got {}",
                    rdatas.len()
                )));
            }
            let ttl = match record.ttl() {
                0 => rules.default_ttl,
                t if t <= i32::MAX as u32 => t,
                t => {
                    return Err(fail(format!(
                        "ttl {t} of {name} {rtype} is above 2147483647"
                    )))
                }
            };
            Op::Replace { ttl, rdatas }
        }
    };
    Ok(Edit {
        msg: index,
        name,
        rtype,
        op,
        owner,
    })
}

/// Folds edits (in message order) into one change per record set, ordered by each
/// change's last edit: applying the changes in that order has the same effect as
/// applying the messages one by one.
pub(crate) fn fold(edits: Vec<Edit>) -> Vec<Change> {
    let mut at: HashMap<(Name, RecordType), usize> = HashMap::with_capacity(edits.len());
    let mut changes: Vec<Option<Change>> = Vec::with_capacity(edits.len());
    for edit in edits {
        let key = (edit.name.clone(), edit.rtype);
        let mut change = match at.get(&key) {
            Some(&i) => changes[i].take().unwrap_or(Change { edits: Vec::new() }),
            None => Change { edits: Vec::new() },
        };
        change.edits.push(edit);
        at.insert(key, changes.len());
        changes.push(Some(change));
    }
    changes.into_iter().flatten().collect()
}

/// Cuts changes (in order) into chunks of at most `max` changes and
/// [`MAX_UPDATE_BYTES`], as even as the limits allow: the fewest chunks greedy
/// packing needs, each holding about the same number of changes (1,000 changes
/// that fit 450 to an UPDATE go out as 334 + 334 + 332, not 450 + 450 + 100). A
/// change too large for any UPDATE is returned apart.
pub(crate) fn chunks(
    changes: Vec<Change>,
    max: usize,
    sizing: &Sizing<'_>,
) -> (Vec<Vec<Change>>, Vec<Change>) {
    let mut too_large = Vec::new();
    let mut sized: Vec<(Change, usize)> = Vec::with_capacity(changes.len());
    for change in changes {
        let size = change.size(sizing);
        if size > MAX_UPDATE_BYTES {
            too_large.push(change);
        } else {
            sized.push((change, size));
        }
    }
    // How many chunks greedy packing needs; then the same packing with the count
    // per chunk evened out.
    let count = |max: usize| {
        let (mut n, mut len, mut bytes) = (0, 0, 0);
        for (_, size) in &sized {
            if n == 0 || len >= max || bytes + size > MAX_UPDATE_BYTES {
                (n, len, bytes) = (n + 1, 0, 0);
            }
            (len, bytes) = (len + 1, bytes + size);
        }
        n
    };
    let even = sized.len().div_ceil(count(max).max(1)).clamp(1, max.max(1));
    let (mut out, mut chunk, mut bytes) = (Vec::new(), Vec::new(), 0);
    for (change, size) in sized {
        if chunk.len() >= even || bytes + size > MAX_UPDATE_BYTES {
            out.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(change);
    }
    if !chunk.is_empty() {
        out.push(chunk);
    }
    (out, too_large)
}

/// How a change's ownership is asserted in its UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The owner record holds exactly our value: require that it still does.
    Ours,
    /// Neither the record set nor an owner record exists: require that, and create
    /// the owner record with the records.
    New,
    /// `adopt`: no owner record exists (the record set may): require that, change
    /// the set and write our owner record.
    Adopt,
    /// `adopt_from_owner`: the owner record holds exactly the previous owner's
    /// value: require that, and rewrite it to ours.
    Previous,
    /// `manage_unowned`: no prerequisite; the owner record is rewritten to ours
    /// (or deleted with the set).
    Force,
}

/// The owner record data: ours, and that of `adopt_from_owner` (empty without).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnerValues<'a> {
    pub(crate) ours: &'a [u8],
    pub(crate) previous: &'a [u8],
}

/// A record of an UPDATE: owner, type, class, TTL, record data.
type Rr<'a> = (&'a Name, u16, u16, u32, &'a [u8]);

/// The prerequisites and updates that change `e` with `claim` adds to an UPDATE.
fn records<'a>(
    e: &'a Edit,
    claim: Claim,
    values: OwnerValues<'a>,
    prereqs: &mut Vec<Rr<'a>>,
    updates: &mut Vec<Rr<'a>>,
) {
    let txt = RecordType::TXT.0;
    let (t, o) = (e.rtype.0, &e.owner);
    match claim {
        Claim::Ours => prereqs.push((o, txt, CLASS_IN, 0, values.ours)),
        Claim::Previous => prereqs.push((o, txt, CLASS_IN, 0, values.previous)),
        Claim::New => {
            prereqs.push((&e.name, t, CLASS_NONE, 0, &[]));
            prereqs.push((o, txt, CLASS_NONE, 0, &[]));
        }
        Claim::Adopt => prereqs.push((o, txt, CLASS_NONE, 0, &[])),
        Claim::Force => {}
    }
    // Whether the owner record set is there to be rewritten or deleted.
    let rewrite = matches!(claim, Claim::Previous | Claim::Force);
    match &e.op {
        Op::Replace { ttl, rdatas } => {
            if rewrite {
                updates.push((o, txt, CLASS_ANY, 0, &[]));
            }
            if claim != Claim::Ours {
                updates.push((o, txt, CLASS_IN, *ttl, values.ours));
            }
            if claim != Claim::New {
                updates.push((&e.name, t, CLASS_ANY, 0, &[]));
            }
            updates.extend(
                rdatas
                    .iter()
                    .map(|r| (&e.name, t, CLASS_IN, *ttl, r.as_slice())),
            );
        }
        Op::Delete => {
            if claim != Claim::New {
                updates.push((&e.name, t, CLASS_ANY, 0, &[]));
            }
            if rewrite || claim == Claim::Ours {
                updates.push((o, txt, CLASS_ANY, 0, &[]));
            }
        }
    }
}

/// Writes one UPDATE for `changes` with their claims. The id is 0: the client
/// fills it in.
pub(crate) fn update_message(
    zone: &Name,
    changes: &[(&Edit, Claim)],
    values: OwnerValues<'_>,
) -> Vec<u8> {
    let mut prereqs: Vec<Rr<'_>> = Vec::new();
    let mut updates: Vec<Rr<'_>> = Vec::new();
    for (e, claim) in changes {
        records(e, *claim, values, &mut prereqs, &mut updates);
    }
    let mut w = Writer::new(0, OPCODE_UPDATE);
    w.question(zone, RecordType::SOA.0, CLASS_IN);
    for (section, rrs) in [(Section::Answer, prereqs), (Section::Authority, updates)] {
        for (name, rtype, class, ttl, rdata) in rrs {
            w.record(section, name, rtype, class, ttl, rdata);
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests;
