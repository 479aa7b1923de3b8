//! `dns.enricher`: normalises and validates each event before it is published.

use gordon_plugin_api::{EventMessage, MessageHandler, Plugin, PluginContext, PluginError};
use serde::Deserialize;

use crate::rdata;
use crate::shared;

/// The configuration of `dns.enricher`: the `["dns"]` table merged with
/// `["dns.enricher"]`. It has only the shared keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnricherConfig {
    /// Shared: the zone, an absolute name ending in `.` (required).
    pub zone: String,
    /// Shared: the TTL given to records whose TTL is 0 (unset); 60..=86400, default 300.
    #[serde(default = "shared::default_ttl")]
    pub default_ttl: u32,
}

/// `dns.enricher` (phase `enrich`): makes names absolute and lowercase, fills in the
/// default TTL, and validates, canonicalises and de-duplicates the record data.
#[derive(Debug)]
pub struct Enricher {
    zone: String,
    default_ttl: u32,
}

impl Plugin for Enricher {
    const NAME: &'static str = "dns.enricher";
    const DESCRIPTION: &'static str =
        "Normalises DNS events: absolute lowercase names, default TTL, canonical record data";
    type Config = EnricherConfig;

    fn validate_config(config: &EnricherConfig) -> Result<(), PluginError> {
        shared::zone(&config.zone)?;
        shared::check_default_ttl(config.default_ttl)
    }

    fn new(config: EnricherConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
        let zone = shared::zone(&config.zone)?;
        shared::check_default_ttl(config.default_ttl)?;
        Ok(Enricher {
            zone,
            default_ttl: config.default_ttl,
        })
    }
}

impl MessageHandler for Enricher {
    const PHASE: &'static str = "enrich";

    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        let n = rdata::normalise(msg.record(), &self.zone, self.default_ttl)?;
        let mut note = format!(
            "Normalised record {} {} (ttl {}, {} rrdata{})",
            n.name,
            n.rtype,
            n.ttl,
            n.rrdatas.len(),
            if n.rrdatas.len() == 1 { "" } else { "s" }
        );
        if n.duplicates > 0 {
            note.push_str(&format!(", removed {} duplicate(s)", n.duplicates));
        }
        let record = msg.record_mut();
        record.set_name(&n.name);
        record.set_ttl(n.ttl);
        record.set_rrdatas(&n.rrdatas);
        msg.append_to_history(note, Self::NAME);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
