//! `dns.reconciler`: the janitor's reconciler. For each zone an authority sends, it
//! reads what the server serves by AXFR (TSIG-signed), compares (see [`diff`]), and
//! sends the corrections — deletions first, then additions — in the event format,
//! each with `"zone"` among its extra fields.
//!
//! It never deletes anything for a zone whose desired set is empty, honours the
//! owner records of `dns.rfc2136` (with `owner_id`, record sets without our owner
//! record are never changed, and owner records themselves are never compared), and
//! applies `policy`: `sync` (add, replace, delete), `upsert-only`, `create-only`.
//!
//! It takes the connection keys of `dns.rfc2136` (`server`, `tsig_*`, `timeout_ms`,
//! `retries`, `retry_backoff_ms`, `transport`, `owner_id`, and the shared `["dns"]`
//! keys) plus `policy`.

pub mod diff;

use std::collections::{BTreeMap, HashSet};

use gordon_plugin_api::{
    event_json, tracing, EventMessage, Inbox, Outbox, Phase, Plugin, PluginContext, PluginError,
    Reconciler, RecordType, ResourceRecord, ZoneRecords,
};
use serde::Deserialize;

use crate::changes;
use crate::client::{Client, ServedRecord};
use crate::config::{Rfc2136Config, Settings};
use crate::wire::{self, Name};
use diff::Policy;

/// `["dns.reconciler"]`: the connection keys of `dns.rfc2136`, plus `policy`.
#[derive(Debug, Deserialize)]
pub struct ReconcilerConfig {
    /// `sync` (default), `upsert-only` or `create-only`.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// How to reach and authenticate to the server.
    #[serde(flatten)]
    pub connection: Rfc2136Config,
}

fn default_policy() -> String {
    "sync".into()
}

/// The reconciler.
#[derive(Debug)]
pub struct DnsReconciler {
    settings: Settings,
    policy: Policy,
    ctx: PluginContext,
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
        parse_policy(&cfg.policy)?;
        Settings::resolve(&cfg.connection).map(|_| ())
    }

    fn new(cfg: ReconcilerConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let policy = parse_policy(&cfg.policy)?;
        let settings = Settings::resolve(&cfg.connection)?;
        Ok(DnsReconciler {
            settings,
            policy,
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
        let mut failed = Vec::new();
        while let Some(zone) = rrsets.recv().await {
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
        let owner_id = self.settings.owner_id.as_deref();
        let owned = |name: &str, rtype: RecordType| -> bool {
            let Some(id) = owner_id else { return true };
            let (Ok(n), Ok(z)) = (Name::parse(name), Name::parse(&zone)) else {
                return false;
            };
            changes::owner_name(&n, rtype, &z)
                .map(|o| owners.contains(&(o.to_string().to_ascii_lowercase(), owner_value(id))))
                .unwrap_or(false)
        };
        let result = diff::diff(&zone, desired.rrsets(), &actual, self.policy, &owned);
        if desired.is_empty() && result.withheld > 0 {
            tracing::warn!(zone = %zone, withheld = result.withheld, "The desired set is empty: refusing to delete anything in this zone.");
        }
        tracing::info!(zone = %zone, compared = result.compared, changes = result.changes.len(), withheld = result.withheld, "Zone compared.");
        let extra = serde_json::json!({"zone": zone}).to_string();
        Ok(result
            .changes
            .into_iter()
            .map(|c| {
                let mut m = EventMessage::new(Phase::new("consume"), c.action, c.record);
                m.set_extra_json(&extra);
                m
            })
            .collect())
    }
}

fn owner_value(id: &str) -> String {
    format!("heritage=gordon,owner={id}")
}

/// Raw TXT text: the character-strings concatenated.
fn txt_text(rdata: &[u8]) -> String {
    String::from_utf8_lossy(&wire::txt_bytes(rdata)).into_owned()
}

/// Served records as record sets (owner records apart, with their values).
fn group(served: &[ServedRecord]) -> (Vec<ResourceRecord>, HashSet<(String, String)>) {
    let mut sets: BTreeMap<(String, u16), (u32, Vec<String>)> = BTreeMap::new();
    let mut owners = HashSet::new();
    for (name, rtype, ttl, rdata) in served {
        let owner = name.to_string().to_ascii_lowercase();
        let text = if RecordType(*rtype) == RecordType::TXT {
            txt_text(rdata)
        } else {
            wire::rdata_text(*rtype, rdata)
        };
        if owner.starts_with("_gordon-") {
            if RecordType(*rtype) == RecordType::TXT {
                owners.insert((owner, text));
            }
            continue;
        }
        // Changes go out in the event format: TXT text as the rrdata that reads back
        // as it (quoted only when it starts with a quote).
        let text = if RecordType(*rtype) == RecordType::TXT {
            event_json::txt_rrdata(&text).into_owned()
        } else {
            text
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
    fn txt_character_strings_are_joined() {
        assert_eq!(txt_text(b"\x05hello\x06 world"), "hello world");
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
