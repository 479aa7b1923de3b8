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
//! It takes the connection and ownership keys of `dns.rfc2136` (`server`,
//! `tsig_*`, `timeout_ms`, `retries`, `retry_backoff_ms`, `transport`, `owner_id`,
//! `adopt`, `adopt_from_owner`, `manage_unowned`, and the shared `["dns"]` keys),
//! plus `policy`, `managed_record_types` and `zones`:
//!
//! ```toml
//! ["dns.reconciler"]
//! server = "192.0.2.53:53"
//! tsig_key_file = "/etc/gordon/gordon-key.conf"
//! policy = "sync"                                  # default "upsert-only"
//! managed_record_types = ["A", "AAAA", "CNAME"]    # the default
//! ["dns.reconciler".zones."example.com."]
//! domains = ["hosts.example.com."]                 # default: the whole zone
//! exclude = ["legacy.hosts.example.com."]          # names (and below) left alone
//! ```

pub mod diff;

use std::collections::{BTreeMap, HashMap};

use gordon_plugin_api::{
    event_json, tracing, EventMessage, Inbox, Outbox, Phase, Plugin, PluginContext, PluginError,
    Reconciler, RecordType, ResourceRecord, ZoneRecords,
};
use serde::Deserialize;

use crate::changes;
use crate::client::{Client, ServedRecord};
use crate::config::{Ownership, Rfc2136Config, Settings};
use crate::wire::{self, Name};
use diff::{Owner, Policy, Rules};

/// `["dns.reconciler"]`: the connection and ownership keys of `dns.rfc2136`, plus
/// `policy`, `managed_record_types` and `zones`. Every other key is refused by name
/// (a misspelt safety key must not be silently ignored).
#[derive(Debug)]
pub struct ReconcilerConfig {
    /// `upsert-only` (default), `sync` or `create-only`.
    pub policy: String,
    /// The record types compared and changed; default A, AAAA, CNAME.
    pub managed_record_types: Vec<String>,
    /// Per zone: the domains it may touch and the names it leaves alone. When
    /// given, a zone not listed is not reconciled.
    pub zones: BTreeMap<String, ZoneScope>,
    /// How to reach and authenticate to the server.
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
#[derive(Debug, Default, Deserialize)]
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

    fn validate_config(cfg: &ReconcilerConfig) -> Result<(), PluginError> {
        check(cfg)?;
        Settings::resolve(&cfg.connection).map(|_| ())
    }

    fn new(cfg: ReconcilerConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let (policy, managed, zones) = check(&cfg)?;
        let settings = Settings::resolve(&cfg.connection)?;
        Ok(DnsReconciler {
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
            policy = self.policy.name(),
            owner_id = %own.owner_id,
            adopt = own.adopt,
            adopt_from_owner = own.adopt_from_owner.as_deref().unwrap_or(""),
            managed_record_types = %self.managed.iter().map(|t| t.name()).collect::<Vec<_>>().join(","),
            "Reconciling."
        );
        if own.manage_unowned {
            tracing::warn!("{}", Ownership::MANAGE_UNOWNED_WARNING);
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
            server: s.server,
            zone_text: name.to_string(),
            zone: name,
            key: s.key.clone(),
            timeout: s.timeout,
            retries: s.retries,
            backoff: s.backoff,
            tcp_only: true,
            metrics: self.ctx.metrics(),
        })
    }

    /// One zone: AXFR, compare, corrections.
    async fn reconcile(&self, desired: &ZoneRecords) -> Result<Vec<EventMessage>, PluginError> {
        let zone = desired.zone().to_ascii_lowercase();
        let client = self.client(&zone)?;
        let server = self.settings.server.to_string();
        let served = client.axfr().await.map_err(|f| {
            PluginError::new(format!(
                "zone transfer failed: {}",
                f.describe(&server, &zone)
            ))
        })?;
        let (actual, owners) = group(&served);
        let own = &self.settings.ownership;
        let (ours, previous) = (
            owner_value(&own.owner_id),
            own.adopt_from_owner.as_deref().map(owner_value),
        );
        let zone_name = Name::parse(&zone).ok();
        let owner = |name: &str, rtype: RecordType| -> Owner {
            let (Ok(n), Some(z)) = (Name::parse(name), zone_name.as_ref()) else {
                return Owner::Other;
            };
            let Ok(o) = changes::owner_name(&n, rtype, z) else {
                return Owner::Other;
            };
            match owners.get(&o.to_string().to_ascii_lowercase()) {
                None => Owner::Unmarked,
                Some(v) if v.len() == 1 && v[0] == ours => Owner::Ours,
                Some(v) if v.len() == 1 && previous.as_deref() == Some(v[0].as_str()) => {
                    Owner::Previous
                }
                Some(_) => Owner::Other,
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

fn owner_value(id: &str) -> String {
    format!("heritage=gordon,owner={id}")
}

/// The text of an owner record: its character-strings concatenated.
fn owner_text(rdata: &[u8]) -> String {
    String::from_utf8_lossy(&wire::txt_bytes(rdata)).into_owned()
}

/// Served TXT rdata as the canonical rrdata of its character-strings, the form
/// desired TXT data is in (`event_json::txt_rrdata`), so that the same strings
/// compare equal and different boundaries do not.
fn txt_rrdata(rdata: &[u8]) -> String {
    event_json::txt_rrdata(&wire::txt_strings(rdata))
}

/// Served records as record sets, and the values of the owner records by name.
fn group(served: &[ServedRecord]) -> (Vec<ResourceRecord>, HashMap<String, Vec<String>>) {
    let mut sets: BTreeMap<(String, u16), (u32, Vec<String>)> = BTreeMap::new();
    let mut owners: HashMap<String, Vec<String>> = HashMap::new();
    for (name, rtype, ttl, rdata) in served {
        let owner = name.to_string().to_ascii_lowercase();
        if owner.starts_with("_gordon-") {
            if RecordType(*rtype) == RecordType::TXT {
                owners.entry(owner).or_default().push(owner_text(rdata));
            }
            continue;
        }
        // Changes go out in the event format: TXT as the canonical rrdata of its
        // character-strings (the text itself for one string not starting with a
        // quote, otherwise each string quoted).
        let text = if RecordType(*rtype) == RecordType::TXT {
            txt_rrdata(rdata)
        } else {
            wire::rdata_text(*rtype, rdata)
        };
        let entry = sets.entry((owner, *rtype)).or_insert((*ttl, Vec::new()));
        entry.1.push(text);
    }
    let records = sets
        .into_iter()
        .map(|((name, rtype), (ttl, datas))| {
            let mut r = ResourceRecord::new(&name, RecordType(rtype), datas);
            r.set_ttl(ttl);
            r
        })
        .collect();
    (records, owners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_character_strings_are_kept() {
        assert_eq!(txt_rrdata(b"\x05hello\x06 world"), r#""hello" " world""#);
        assert_eq!(txt_rrdata(b"\x0bhello world"), "hello world");
        assert_eq!(owner_text(b"\x05hello\x06 world"), "hello world");
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
