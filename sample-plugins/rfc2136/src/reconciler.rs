//! `dns.reconciler`: the janitor's reconciler. For each zone an authority sends, it
//! reads what the server serves by AXFR (TSIG-signed), compares (see [`diff`]), and
//! sends the corrections — deletions first, then additions — in the event format.
//! Each carries extra fields: `zone`, `change` (`create`, `update`, `delete` or
//! `adopt`) and `zone_owned` (the record sets of the zone it owns, in scope), from
//! which `gordon janitor` computes its change threshold.
//!
//! Safe by default:
//! - **Ownership.** It changes and deletes only record sets marked as ours by the
//!   owner records `dns.rfc2136` writes (`owner_id`, default `gordon`). Records made
//!   by hand or by other tools are left alone. `adopt = true` takes over desired
//!   record sets that exist without any owner record (an addition that rewrites
//!   them with our mark; never a deletion), `adopt_from_owner` those of another
//!   owner id; the publisher in the service needs the same key to write them.
//!   `manage_unowned = true` changes and deletes any record set in scope — a
//!   warning every run.
//! - **Scope.** Only `managed_record_types` (default A, AAAA, CNAME) are compared;
//!   `[zones."<zone>"]` limits a zone to `domains` and leaves its `exclude` names
//!   alone; when `zones` is given, a zone it does not list is not reconciled.
//! - **Policy.** `upsert-only` by default (add and replace, never delete); `sync`
//!   deletes and must be asked for; `create-only` only adds.
//! - It never deletes anything for a zone whose desired set (in scope) is empty.
//!
//! It takes the connection and ownership keys of `dns.rfc2136` (`server` or
//! `servers` — the same fail-over between servers, for every zone's AXFR —,
//! `tsig_*`, `timeout_ms`, `retries`, `retry_backoff_ms`, `transport`, `owner_id`,
//! `adopt`, `adopt_from_owner`, `manage_unowned`, and the shared `["dns"]` keys),
//! plus `policy`, `managed_record_types` and `zones`:
//!
//! ```toml
//! ["dns.reconciler"]
//! server = "192.0.2.53:53"                        # or servers = ["ns1.example.net", "192.0.2.54"]
//! tsig_key_file = "/etc/gordon/gordon-key.conf"
//! policy = "sync"                                  # default "upsert-only"
//! managed_record_types = ["A", "AAAA", "CNAME"]    # the default
//! ["dns.reconciler".zones."example.com."]
//! domains = ["hosts.example.com."]                 # default: the whole zone
//! exclude = ["legacy.hosts.example.com."]          # names (and below) left alone
//! ```

pub mod diff;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{
    event_json, ownership, tracing, ConfigKey, EventMessage, Inbox, Outbox, Phase, Plugin,
    PluginContext, PluginError, Reconciler, RecordType, ResourceRecord, ZoneRecords,
};
use serde::Deserialize;

use crate::changes;
use crate::client::Client;
#[cfg(test)]
use crate::client::ServedRecord;
use crate::config::{Rfc2136Config, Settings};
use crate::servers::Pool;
use crate::wire::{self, Name};
use diff::{Owner, Policy, Rules};

/// `["dns.reconciler"]`: the connection and ownership keys of `dns.rfc2136`, plus
/// `policy`, `managed_record_types` and `zones`. Every other key is refused by name
/// (a misspelt safety key must not be silently ignored).
// `Deserialize` is written by hand (below); the schema describes the same table: the
// keys of `OwnKeys`, with the same defaults, beside every key of `dns.rfc2136`.
#[derive(Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// What a run may change: `upsert-only` (default), `sync` or `create-only`.
    #[schemars(with = "Policy", default = "default_policy")]
    pub policy: String,
    /// The record types compared and changed; default A, AAAA, CNAME.
    #[schemars(default = "default_managed")]
    pub managed_record_types: Vec<String>,
    /// Per zone (`[zones."<zone>"]`): `domains` it may touch, names to `exclude`.
    ///
    /// When given, a zone not listed is not reconciled.
    #[schemars(default)]
    pub zones: BTreeMap<String, ZoneScope>,
    /// How to reach and authenticate to the server.
    #[schemars(flatten)]
    pub connection: Rfc2136Config,
}

/// The keys of `ReconcilerConfig` that are not `dns.rfc2136`'s.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnKeys {
    #[serde(default = "default_policy")]
    policy: String,
    #[serde(default = "default_managed")]
    managed_record_types: Vec<String>,
    #[serde(default)]
    zones: BTreeMap<String, ZoneScope>,
}

/// Deserialises `value` as `T`, naming the key of an error.
fn keyed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            e.inner().to_string()
        } else {
            format!("`{path}`: {}", e.inner())
        }
    })
}

impl<'de> Deserialize<'de> for ReconcilerConfig {
    /// Splits the table: the reconciler's own keys, and the rest, which must all be
    /// `dns.rfc2136` keys (`serde(flatten)` would ignore unknown keys).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut rest = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut own = serde_json::Map::new();
        for key in ["policy", "managed_record_types", "zones"] {
            if let Some(v) = rest.remove(key) {
                own.insert(key.to_owned(), v);
            }
        }
        let own: OwnKeys = keyed(own.into()).map_err(D::Error::custom)?;
        let connection: Rfc2136Config = keyed(rest.into()).map_err(D::Error::custom)?;
        Ok(ReconcilerConfig {
            policy: own.policy,
            managed_record_types: own.managed_record_types,
            zones: own.zones,
            connection,
        })
    }
}

/// `["dns.reconciler".zones."<zone>"]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneScope {
    /// Only names equal to or below one of these (default: the whole zone).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Names equal to or below one of these are never compared or changed.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_policy() -> String {
    "upsert-only".into()
}

fn default_managed() -> Vec<String> {
    ["A", "AAAA", "CNAME"].map(String::from).to_vec()
}

/// A zone's scope, checked and lowercased.
#[derive(Debug, Default)]
struct Scope {
    domains: Vec<String>,
    exclude: Vec<String>,
}

/// Whether `name` is `domain` or below it (both lowercase, absolute).
fn at_or_below(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

impl Scope {
    fn contains(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        (self.domains.is_empty() || self.domains.iter().any(|d| at_or_below(&name, d)))
            && !self.exclude.iter().any(|d| at_or_below(&name, d))
    }
}

/// The reconciler.
#[derive(Debug)]
pub struct DnsReconciler {
    settings: Settings,
    /// The servers, shared by the clients of every zone (one sticks to the server
    /// the last transfer came from).
    servers: Arc<Pool>,
    policy: Policy,
    managed: Vec<RecordType>,
    /// Empty: every zone the authority sends, whole.
    zones: BTreeMap<String, Scope>,
    ctx: PluginContext,
}

/// The checked scope keys.
type Checked = (Policy, Vec<RecordType>, BTreeMap<String, Scope>);

fn check(cfg: &ReconcilerConfig) -> Result<Checked, PluginError> {
    let err = |t: String| PluginError::new(t);
    let policy = parse_policy(&cfg.policy)?;
    let mut managed = Vec::new();
    for t in &cfg.managed_record_types {
        let rtype = RecordType::from_name(&t.to_ascii_uppercase())
            .filter(|r| *r != RecordType::SOA)
            .ok_or_else(|| {
                err(format!(
                    "`managed_record_types`: {t:?} is not a record type it can manage (A, AAAA, CNAME, MX, NS, PTR, SRV, TXT)"
                ))
            })?;
        if !managed.contains(&rtype) {
            managed.push(rtype);
        }
    }
    if managed.is_empty() {
        return Err(err(
            "`managed_record_types` is empty: name the record types to manage".into(),
        ));
    }
    let mut zones = BTreeMap::new();
    for (zone, scope) in &cfg.zones {
        let z = zone.to_ascii_lowercase();
        if !z.ends_with('.') {
            return Err(err(format!(
                "`zones`: {zone:?} must be absolute (end with a dot)"
            )));
        }
        let names = |key: &str, list: &[String]| -> Result<Vec<String>, PluginError> {
            list.iter()
                .map(|d| {
                    let d = d.to_ascii_lowercase();
                    if d.ends_with('.') && at_or_below(&d, &z) {
                        Ok(d)
                    } else {
                        Err(err(format!(
                            "`zones.\"{zone}\".{key}`: {d:?} must be an absolute name inside {z}"
                        )))
                    }
                })
                .collect()
        };
        let checked = Scope {
            domains: names("domains", &scope.domains)?,
            exclude: names("exclude", &scope.exclude)?,
        };
        zones.insert(z, checked);
    }
    Ok((policy, managed, zones))
}

fn parse_policy(p: &str) -> Result<Policy, PluginError> {
    Policy::parse(p).ok_or_else(|| {
        PluginError::new(format!(
            "`policy` must be \"sync\", \"upsert-only\" or \"create-only\", got {p:?}"
        ))
    })
}

impl Plugin for DnsReconciler {
    const NAME: &'static str = "dns.reconciler";
    const DESCRIPTION: &'static str =
        "Compares desired records with the server's (AXFR) and emits corrections";
    type Config = ReconcilerConfig;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(cfg: &ReconcilerConfig) -> Result<(), PluginError> {
        check(cfg)?;
        Settings::resolve(&cfg.connection).map(|_| ())
    }

    fn new(cfg: ReconcilerConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let (policy, managed, zones) = check(&cfg)?;
        let settings = Settings::resolve(&cfg.connection)?;
        Ok(DnsReconciler {
            servers: Arc::new(Pool::new(&settings.servers)),
            settings,
            policy,
            managed,
            zones,
            ctx,
        })
    }
}

impl Reconciler for DnsReconciler {
    async fn run(
        &self,
        mut rrsets: Inbox<ZoneRecords>,
        changes: Outbox<EventMessage>,
    ) -> Result<(), PluginError> {
        let own = &self.settings.ownership;
        tracing::info!(
            servers = %self.servers,
            policy = self.policy.name(),
            owner_id = %own.owner_id,
            adopt = own.adopt,
            adopt_from_owner = own.adopt_from_owner.as_deref().unwrap_or(""),
            managed_record_types = %self.managed.iter().map(|t| t.name()).collect::<Vec<_>>().join(","),
            "Reconciling."
        );
        if own.manage_unowned {
            tracing::warn!("{}", ownership::MANAGE_UNOWNED_WARNING);
        }
        let mut failed = Vec::new();
        while let Some(zone) = rrsets.recv().await {
            let name = zone.zone().to_ascii_lowercase();
            if !self.zones.is_empty() && !self.zones.contains_key(&name) {
                tracing::warn!(zone = %name, "The zone is not in `zones`: leaving it alone.");
                continue;
            }
            match self.reconcile(&zone).await {
                Ok(out) => changes.send_batch(out).await?,
                Err(e) => {
                    tracing::error!(zone = zone.zone(), error = %e, "Cannot reconcile zone.");
                    failed.push(format!("{}: {e}", zone.zone()));
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PluginError::new(format!(
                "{} zone(s) not reconciled: {}",
                failed.len(),
                failed.join("; ")
            )))
        }
    }
}

impl DnsReconciler {
    fn client(&self, zone: &str) -> Result<Client, PluginError> {
        let name =
            Name::parse(zone).map_err(|e| PluginError::new(format!("zone {zone:?}: {e}")))?;
        let s = &self.settings;
        Ok(Client {
            servers: Arc::clone(&self.servers),
            zone_text: name.to_string(),
            zone: name,
            key: s.key.clone(),
            timeout: s.timeout,
            retries: s.retries,
            backoff: s.backoff,
            tcp_only: true,
            metrics: self.ctx.metrics().into(),
        })
    }

    /// The zone as the server serves it, by AXFR.
    async fn transfer(&self, zone: &str) -> Result<Transfer, PluginError> {
        let client = self.client(zone)?;
        let own = &self.settings.ownership;
        let (ours, previous) = (
            owner_value(&own.owner_id),
            own.adopt_from_owner.as_deref().map(owner_value),
        );
        let started = std::time::Instant::now();
        // Grouped as the messages arrive: the transfer's records are never all held.
        let served = client
            .axfr_fold(
                || Served::new(&ours, previous.as_deref()),
                |s, name, rtype, ttl, rdata| s.add(name, rtype, ttl, rdata),
            )
            .await
            .map_err(|f| {
                PluginError::new(format!(
                    "zone transfer failed: {}",
                    f.describe(&client.server_in_use(), zone)
                ))
            })?;
        let records = served.records;
        let (actual, owners) = served.finish();
        tracing::info!(
            zone = %zone,
            server = %client.server_in_use(),
            records,
            rrsets = actual.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Zone transferred."
        );
        Ok(Transfer { actual, owners })
    }

    /// One zone: AXFR, compare, corrections. (Transferring the zone while the
    /// authority reads its inventory was tried: on two cores the two, and the
    /// server, only slowed each other down, 9.3 s against 11.9 s for the
    /// `janitor-million` bench.)
    async fn reconcile(&self, desired: &ZoneRecords) -> Result<Vec<EventMessage>, PluginError> {
        let zone = desired.zone().to_ascii_lowercase();
        let Transfer { actual, owners } = self.transfer(&zone).await?;
        let started = std::time::Instant::now();
        let own = &self.settings.ownership;
        let zone_name = Name::parse(&zone).ok();
        let mark = |owner_record: &[u8]| match owners.get(owner_record) {
            None => Owner::Unmarked,
            Some(Mark::Ours) => Owner::Ours,
            Some(Mark::Previous) => Owner::Previous,
            Some(Mark::Other) => Owner::Other,
        };
        // Asked once per served record set: plain names take the path that does not
        // allocate, anything else the one that explains.
        let buffers = std::cell::RefCell::new((Vec::new(), Vec::new()));
        let owner = |name: &str, rtype: RecordType| -> Owner {
            let Some(z) = zone_name.as_ref() else {
                return Owner::Other;
            };
            let (wire, owner_record) = &mut *buffers.borrow_mut();
            if Name::parse_plain_into(name, wire) && owner_wire(wire, rtype, z, owner_record) {
                return mark(owner_record);
            }
            let Ok(n) = Name::parse(name) else {
                return Owner::Other;
            };
            match changes::owner_name(&n, rtype, z) {
                Ok(o) => mark(o.wire()),
                Err(_) => Owner::Other,
            }
        };
        let scope = self.zones.get(&zone);
        let in_scope = |name: &str, rtype: RecordType| -> bool {
            self.managed.contains(&rtype) && scope.is_none_or(|s| s.contains(name))
        };
        let rules = Rules {
            policy: self.policy,
            adopt: own.adopt,
            manage_unowned: own.manage_unowned,
        };
        let result = diff::diff(&zone, desired.rrsets(), &actual, rules, &in_scope, &owner);
        if desired.is_empty() && result.withheld > 0 {
            tracing::warn!(zone = %zone, withheld = result.withheld, "The desired set is empty: refusing to delete anything in this zone.");
        }
        if !result.not_owned_names.is_empty() {
            tracing::warn!(
                zone = %zone,
                owner_id = %own.owner_id,
                examples = %result.not_owned_names.join(", "),
                "Desired record sets exist without our owner record and are left alone; `adopt = true` (here and in the service's dns.rfc2136) takes over those without any owner record."
            );
        }
        tracing::info!(
            zone = %zone,
            elapsed_ms = started.elapsed().as_millis() as u64,
            compared = result.compared,
            owned = result.owned,
            changes = result.changes.len(),
            withheld = result.withheld,
            not_owned = result.not_owned,
            out_of_scope = result.out_of_scope,
            "Zone compared."
        );
        let owned = result.owned;
        Ok(result
            .changes
            .into_iter()
            .map(|c| {
                let extra = serde_json::json!({
                    "zone": zone,
                    "change": c.kind.name(),
                    "zone_owned": owned,
                });
                let mut m = EventMessage::new(Phase::new("consume"), c.action, c.record);
                m.set_extra_json(extra.to_string());
                m
            })
            .collect())
    }
}

/// [`changes::owner_name`] of the wire name `name` into `out`, without allocating;
/// `false` when it is not sure (a type without a name, a label or name too long),
/// and then `changes::owner_name` decides.
fn owner_wire(name: &[u8], rtype: RecordType, zone: &Name, out: &mut Vec<u8>) -> bool {
    const PREFIX: &[u8] = b"_gordon-";
    let std::borrow::Cow::Borrowed(t) = rtype.name() else {
        return false;
    };
    out.clear();
    let (label, rest): (&[u8], &[u8]) = if name == zone.wire() {
        (&[], name)
    } else {
        match name.first().map(|len| usize::from(*len)) {
            Some(len) if len > 0 && name.len() > len + 1 => (&name[1..1 + len], &name[1 + len..]),
            _ => return false,
        }
    };
    let dash = usize::from(!label.is_empty());
    let len = PREFIX.len() + t.len() + dash + label.len();
    if len > 63 || 1 + len + rest.len() > 255 {
        return false;
    }
    out.push(len as u8);
    out.extend_from_slice(PREFIX);
    out.extend(t.bytes().map(|b| b.to_ascii_lowercase()));
    if dash == 1 {
        out.push(b'-');
    }
    out.extend_from_slice(label);
    out.extend_from_slice(rest);
    true
}

fn owner_value(id: &str) -> String {
    ownership::value(id)
}

/// Served TXT rdata as the canonical rrdata of its character-strings, the form
/// desired TXT data is in (`event_json::txt_rrdata`), so that the same strings
/// compare equal and different boundaries do not.
fn txt_rrdata(rdata: &[u8]) -> String {
    event_json::txt_rrdata(&wire::txt_strings(rdata))
}

/// A zone as the server serves it: record sets, and owner marks by owner-record
/// name (wire form).
struct Transfer {
    actual: Vec<ResourceRecord>,
    owners: FnvMap<Box<[u8]>, Mark>,
}

/// What the owner record at one name says of the record set it marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// One value: ours.
    Ours,
    /// One value: that of `adopt_from_owner`.
    Previous,
    /// Another owner's value, or more than one value.
    Other,
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<diff::Fnv>>;

/// The served zone, grouped while the transfer arrives: the record sets (owner
/// records aside) and, by owner-record name (wire form), what each mark says.
///
/// A zone of a million record sets is two million records with their owner
/// records: kept one by one (a name, a data vector and the map entries grouping
/// them), that was the janitor's largest memory and time cost. Here a record set is
/// built once its last record has arrived (a server sends a set's records one
/// after another; one that does not is merged in [`Served::finish`]), and an owner
/// record is one map entry of its wire name and a [`Mark`].
struct Served {
    ours: Vec<u8>,
    previous: Option<Vec<u8>>,
    sets: Vec<ResourceRecord>,
    owners: FnvMap<Box<[u8]>, Mark>,
    /// Records read.
    records: usize,
    /// The set being read: wire name, type, TTL (of its first record)...
    name: Vec<u8>,
    rtype: u16,
    ttl: u32,
    /// ... and its rrdata texts, concatenated, with where each ends.
    text: String,
    ends: Vec<usize>,
    name_text: String,
}

impl Served {
    fn new(ours: &str, previous: Option<&str>) -> Self {
        Served {
            ours: ours.as_bytes().to_vec(),
            previous: previous.map(|p| p.as_bytes().to_vec()),
            sets: Vec::new(),
            owners: FnvMap::default(),
            records: 0,
            name: Vec::new(),
            rtype: 0,
            ttl: 0,
            text: String::new(),
            ends: Vec::new(),
            name_text: String::new(),
        }
    }

    fn add(&mut self, name: &Name, rtype: u16, ttl: u32, rdata: &[u8]) {
        self.records += 1;
        let wire = name.wire();
        let first = wire.get(1..1 + usize::from(wire[0])).unwrap_or_default();
        if first.starts_with(b"_gordon-") {
            if RecordType(rtype) == RecordType::TXT {
                let text = wire::txt_bytes(rdata);
                let mark = if text == self.ours {
                    Mark::Ours
                } else if self.previous.as_deref() == Some(text.as_slice()) {
                    Mark::Previous
                } else {
                    Mark::Other
                };
                self.owners
                    .entry(wire.into())
                    .and_modify(|m| *m = Mark::Other)
                    .or_insert(mark);
            }
            return;
        }
        if self.ends.is_empty() || self.rtype != rtype || self.name != wire {
            self.flush();
            self.name.clear();
            self.name.extend_from_slice(wire);
            (self.rtype, self.ttl) = (rtype, ttl);
        }
        // Changes go out in the event format: TXT as the canonical rrdata of its
        // character-strings (the text itself for one string not starting with a
        // quote, otherwise each string quoted).
        match RecordType(rtype) {
            RecordType::TXT => self.text.push_str(&txt_rrdata(rdata)),
            RecordType::A if rdata.len() == 4 => {
                use std::fmt::Write as _;
                let a = std::net::Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]);
                let _ = write!(self.text, "{a}");
            }
            _ => self.text.push_str(&wire::rdata_text(rtype, rdata)),
        }
        self.ends.push(self.text.len());
    }

    /// Ends the set being read.
    fn flush(&mut self) {
        if self.ends.is_empty() {
            return;
        }
        self.name_text.clear();
        wire::push_name_text(&self.name, &mut self.name_text);
        let (text, ends) = (&self.text, &self.ends);
        let datas = ends.iter().scan(0, |from, &end| {
            Some(&text[std::mem::replace(from, end)..end])
        });
        let mut r = ResourceRecord::new(&self.name_text, RecordType(self.rtype), datas);
        r.set_ttl(self.ttl);
        self.sets.push(r);
        self.text.clear();
        self.ends.clear();
    }

    /// The record sets, and the owner marks by owner-record name.
    fn finish(mut self) -> (Vec<ResourceRecord>, FnvMap<Box<[u8]>, Mark>) {
        self.flush();
        (merge_split_sets(self.sets), self.owners)
    }
}

/// Merges record sets that came in parts (a set's records not one after another):
/// the rrdatas of the later parts are appended to the first, whose TTL is kept.
fn merge_split_sets(mut sets: Vec<ResourceRecord>) -> Vec<ResourceRecord> {
    let mut later: Vec<(usize, usize)> = Vec::new();
    {
        let mut first: FnvMap<(&str, u16), usize> =
            FnvMap::with_capacity_and_hasher(sets.len(), Default::default());
        for (i, r) in sets.iter().enumerate() {
            match first.entry((r.name(), r.rtype().0)) {
                std::collections::hash_map::Entry::Occupied(e) => later.push((*e.get(), i)),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
    }
    if later.is_empty() {
        return sets;
    }
    for &(first, part) in &later {
        let mut all: Vec<String> = sets[first].rrdatas().map(str::to_owned).collect();
        all.extend(sets[part].rrdatas().map(str::to_owned));
        sets[first].set_rrdatas(all);
    }
    let parts: std::collections::HashSet<usize> = later.iter().map(|&(_, part)| part).collect();
    sets.into_iter()
        .enumerate()
        .filter(|(i, _)| !parts.contains(i))
        .map(|(_, r)| r)
        .collect()
}

/// Served records as record sets, and the owner marks by owner-record name.
#[cfg(test)]
fn group(served: &[ServedRecord]) -> (Vec<ResourceRecord>, FnvMap<Box<[u8]>, Mark>) {
    let mut s = Served::new(&owner_value("gordon"), None);
    for (name, rtype, ttl, rdata) in served {
        s.add(name, *rtype, *ttl, rdata);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_character_strings_are_kept() {
        assert_eq!(txt_rrdata(b"\x05hello\x06 world"), r#""hello" " world""#);
        assert_eq!(txt_rrdata(b"\x0bhello world"), "hello world");
        assert_eq!(wire::txt_bytes(b"\x05hello\x06 world"), b"hello world");
    }

    #[test]
    fn served_two_string_txt_equals_desired_two_string_txt() {
        let zone = Name::parse("example.com.").unwrap();
        let desired = r#""v=spf1 include:x" "-all""#;
        let rdata = wire::encode_rdata(RecordType::TXT, desired, &zone).unwrap();
        let served: Vec<ServedRecord> = vec![(
            Name::qualify("spf.example.com.", &zone).unwrap(),
            RecordType::TXT.0,
            300,
            rdata,
        )];
        let (sets, _) = group(&served);
        assert_eq!(sets.len(), 1);
        let got: Vec<&str> = sets[0].rrdatas().collect();
        assert_eq!(got, [desired]);
        // Compared as the reconciler compares, the same strings are the same data
        // and the joined text is not.
        let rr = |data: &str| {
            let mut r = ResourceRecord::new("spf.example.com.", RecordType::TXT, [data]);
            r.set_ttl(300);
            r
        };
        let rules = Rules {
            policy: Policy::Sync,
            adopt: false,
            manage_unowned: false,
        };
        let all = |_: &str, _: RecordType| true;
        let ours = |_: &str, _: RecordType| Owner::Ours;
        let same = diff::diff("example.com.", &[rr(desired)], &sets, rules, &all, &ours);
        assert!(same.changes.is_empty(), "{:?}", same.changes);
        let joined = diff::diff(
            "example.com.",
            &[rr("v=spf1 include:x-all")],
            &sets,
            rules,
            &all,
            &ours,
        );
        assert!(!joined.changes.is_empty());
    }

    #[test]
    fn a_transfer_is_grouped_into_sets_and_owner_marks() {
        let zone = Name::parse("example.com.").unwrap();
        let name = |s: &str| Name::qualify(s, &zone).unwrap();
        let a = |ip: &str| wire::encode_rdata(RecordType::A, ip, &zone).unwrap();
        let txt = |t: &str| wire::txt_rdata(t.as_bytes());
        let mut s = Served::new(&owner_value("gordon"), Some(&owner_value("old")));
        let records = [
            (name("www"), RecordType::A, 300, a("10.0.0.1")),
            (name("www"), RecordType::A, 600, a("10.0.0.2")),
            (name("WWW"), RecordType::AAAA, 300, vec![0; 16]),
            (name("db"), RecordType::A, 300, a("10.0.0.3")),
            // The rest of www's A set, after another set: merged into the first part.
            (name("www"), RecordType::A, 300, a("10.0.0.4")),
            (
                name("_gordon-a-www"),
                RecordType::TXT,
                300,
                txt(&owner_value("gordon")),
            ),
            (
                name("_gordon-a-db"),
                RecordType::TXT,
                300,
                txt(&owner_value("old")),
            ),
            (
                name("_gordon-aaaa-www"),
                RecordType::TXT,
                300,
                txt(&owner_value("gordon")),
            ),
            (name("_gordon-aaaa-www"), RecordType::TXT, 300, txt("other")),
            (
                name("_gordon-a-x"),
                RecordType::TXT,
                300,
                txt(&owner_value("someone")),
            ),
            (name("_gordon-a-y"), RecordType::A, 300, a("10.0.0.5")),
        ];
        for (n, t, ttl, rdata) in &records {
            s.add(n, t.0, *ttl, rdata);
        }
        assert_eq!(s.records, records.len());
        let (sets, owners) = s.finish();
        let shown: Vec<(String, RecordType, u32, Vec<&str>)> = sets
            .iter()
            .map(|r| {
                (
                    r.name().to_owned(),
                    r.rtype(),
                    r.ttl(),
                    r.rrdatas().collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "www.example.com.".to_owned(),
                    RecordType::A,
                    300,
                    vec!["10.0.0.1", "10.0.0.2", "10.0.0.4"]
                ),
                (
                    "www.example.com.".to_owned(),
                    RecordType::AAAA,
                    300,
                    vec!["::"]
                ),
                (
                    "db.example.com.".to_owned(),
                    RecordType::A,
                    300,
                    vec!["10.0.0.3"]
                ),
            ]
        );
        let mark = |n: &str| owners.get(name(n).wire()).copied();
        assert_eq!(mark("_gordon-a-www"), Some(Mark::Ours));
        assert_eq!(mark("_gordon-a-db"), Some(Mark::Previous));
        assert_eq!(mark("_gordon-aaaa-www"), Some(Mark::Other), "two values");
        assert_eq!(mark("_gordon-a-x"), Some(Mark::Other));
        assert_eq!(mark("_gordon-a-y"), None, "only TXT records are marks");
        assert_eq!(owners.len(), 4);
    }

    #[test]
    fn owner_wire_is_changes_owner_name() {
        let zone = Name::parse("example.com.").unwrap();
        let mut out = Vec::new();
        let long = format!("{}.example.com.", "h".repeat(52));
        let names = [
            "www.example.com.",
            "example.com.",
            "a.b.example.com.",
            &long,
        ];
        for text in names {
            let name = Name::parse(text).unwrap();
            for rtype in [
                RecordType::A,
                RecordType::AAAA,
                RecordType::CNAME,
                RecordType(999),
            ] {
                let slow = changes::owner_name(&name, rtype, &zone);
                if owner_wire(name.wire(), rtype, &zone, &mut out) {
                    assert_eq!(out, slow.unwrap().wire(), "{text} {rtype}");
                } else {
                    // Not sure: the slow path decides (too long, or a type by number).
                    assert!(slow.is_err() || rtype == RecordType(999), "{text} {rtype}");
                }
            }
        }
        assert!(
            !owner_wire(&[0], RecordType::A, &zone, &mut out),
            "the root"
        );
    }

    fn key_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let stanza = "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\"; };\n";
        std::fs::write(file.path(), stanza).unwrap();
        file
    }

    fn config(extra: &str) -> Result<ReconcilerConfig, String> {
        let key = key_file();
        config_with(&key, extra)
    }

    fn config_with(key: &tempfile::NamedTempFile, extra: &str) -> Result<ReconcilerConfig, String> {
        let text = format!(
            "zone = \"example.com.\"\nserver = \"127.0.0.1:5353\"\ntsig_key_file = \"{}\"\n{extra}",
            key.path().display()
        );
        gordon_plugin_api::testing::validate::<DnsReconciler>(&text).map_err(|e| e.to_string())?;
        toml::from_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn its_keys_are_its_own_and_every_key_of_dns_rfc2136() {
        let keys = DnsReconciler::config_keys();
        let mut names: Vec<String> = keys.iter().map(|k| k.name.clone()).collect();
        names.sort();
        // What `Deserialize` accepts: its own keys, and the rest as `dns.rfc2136`'s.
        let own = gordon_plugin_api::testing::accepted_keys::<OwnKeys>().unwrap();
        assert_eq!(own, ["managed_record_types", "policy", "zones"]);
        let mut accepted = gordon_plugin_api::testing::accepted_keys::<ReconcilerConfig>().unwrap();
        assert_eq!(
            accepted,
            gordon_plugin_api::testing::accepted_keys::<Rfc2136Config>().unwrap()
        );
        accepted.extend(own);
        accepted.sort();
        assert_eq!(names, accepted);
        for key in &keys {
            assert!(!key.doc.is_empty(), "`{}` has no doc line", key.name);
            assert_ne!(key.default.as_deref(), Some("null"), "`{}`", key.name);
        }
        let key = |name: &str| keys.iter().find(|k| k.name == name).unwrap();
        // The connection keys read as they do for `dns.rfc2136`.
        let rfc2136 = crate::Rfc2136::config_keys();
        assert_eq!(rfc2136.len() + 3, keys.len());
        for theirs in &rfc2136 {
            assert_eq!(key(&theirs.name), theirs);
        }
        // The defaults shown are the ones `Deserialize` gives.
        let cfg = config("").unwrap();
        let policy = key("policy");
        assert_eq!(
            policy.kind,
            r#"one of "sync", "upsert-only", "create-only""#
        );
        assert_eq!(policy.default, Some(format!("{:?}", cfg.policy)));
        for name in policy.kind.trim_start_matches("one of ").split(", ") {
            assert!(Policy::parse(name.trim_matches('"')).is_some(), "{name}");
        }
        let managed = key("managed_record_types");
        assert_eq!(managed.kind, "list of string");
        let shown: Vec<String> = serde_json::from_str(managed.default.as_deref().unwrap()).unwrap();
        assert_eq!(shown, cfg.managed_record_types);
        let zones = key("zones");
        assert_eq!(
            (zones.kind.as_str(), zones.required),
            ("table of table", false)
        );
        assert!(key("zone").required);
        assert_eq!(key("verify").default.as_deref(), Some(r#""none""#));
    }

    #[test]
    fn the_defaults_are_the_safe_ones() {
        let key = key_file();
        let cfg = config_with(&key, "").unwrap();
        let (policy, managed, zones) = check(&cfg).unwrap();
        assert_eq!(policy, Policy::UpsertOnly, "no policy must not mean sync");
        assert_eq!(
            managed,
            [RecordType::A, RecordType::AAAA, RecordType::CNAME]
        );
        assert!(zones.is_empty());
        let s = Settings::resolve(&cfg.connection).unwrap();
        assert_eq!(s.ownership.owner_id, "gordon");
        assert!(!s.ownership.adopt && !s.ownership.manage_unowned);
    }

    #[test]
    fn scope_keys_are_checked() {
        let err = config("managed_record_types = [\"A\", \"SPF\"]").unwrap_err();
        assert!(err.contains("`managed_record_types`: \"SPF\""), "{err}");
        assert!(config("managed_record_types = []")
            .unwrap_err()
            .contains("is empty"));
        let err =
            config("[zones.\"example.com.\"]\nexclude = [\"legacy.example.org.\"]").unwrap_err();
        assert!(
            err.contains("`zones.\"example.com.\".exclude`: \"legacy.example.org.\" must be an absolute name inside example.com."),
            "{err}"
        );
        let err = config("[zones.\"example.com.\"]\nexlude = []").unwrap_err();
        assert!(err.contains("exlude"), "{err}");
        let err = config("manage_unowed = true").unwrap_err();
        assert!(
            err.contains("manage_unowed"),
            "a misspelt key is refused: {err}"
        );
        let cfg = config(
            "managed_record_types = [\"a\", \"TXT\"]\n[zones.\"Example.com.\"]\ndomains = [\"hosts.example.com.\"]\nexclude = [\"old.hosts.example.com.\"]",
        )
        .unwrap();
        let (_, managed, zones) = check(&cfg).unwrap();
        assert_eq!(managed, [RecordType::A, RecordType::TXT]);
        let scope = &zones["example.com."];
        assert!(scope.contains("a.hosts.example.com."));
        assert!(scope.contains("HOSTS.example.com."));
        assert!(!scope.contains("www.example.com."));
        assert!(!scope.contains("old.hosts.example.com."));
        assert!(!scope.contains("x.old.hosts.example.com."));
        assert!(!scope.contains("xhosts.example.com."));
    }

    #[test]
    fn policy_names_are_checked() {
        assert!(parse_policy("sync").is_ok());
        assert!(parse_policy("mirror")
            .unwrap_err()
            .message()
            .contains("`policy`"));
    }
}
