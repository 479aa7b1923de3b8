//! `dns.enricher`: normalises and validates each event before it is published.
//!
//! Its configuration is applied live (`apply_config`): a reload swaps the zone
//! and default TTL at once, and every message after it is normalised with the new
//! ones, none with a mix.

use std::sync::{Arc, PoisonError, RwLock};

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{
    tracing, ConfigChange, ConfigKey, EventMessage, MessageHandler, Plugin, PluginContext,
    PluginError,
};
use serde::Deserialize;

use crate::rdata;
use crate::shared;

/// The configuration of `dns.enricher`: the `["dns"]` table merged with
/// `["dns.enricher"]`. It has only the shared keys.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
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
    settings: RwLock<Arc<Settings>>,
}

/// What a configuration resolves to; swapped whole by `apply_config`.
#[derive(Debug, PartialEq, Eq)]
struct Settings {
    /// The zone, lowercase.
    zone: String,
    default_ttl: u32,
}

impl Settings {
    /// From a configuration that passed `validate_config`.
    fn resolve(config: &EnricherConfig) -> Result<Settings, PluginError> {
        Ok(Settings {
            zone: shared::zone(&config.zone)?,
            default_ttl: config.default_ttl,
        })
    }
}

impl Enricher {
    /// The settings in force (a snapshot: a concurrent reload does not change it).
    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Plugin for Enricher {
    const NAME: &'static str = "dns.enricher";
    const DESCRIPTION: &'static str =
        "Normalises DNS events: absolute lowercase names, default TTL, canonical record data";
    type Config = EnricherConfig;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(config: &EnricherConfig) -> Result<(), PluginError> {
        shared::zone(&config.zone)?;
        shared::check_default_ttl(config.default_ttl)
    }

    fn new(config: EnricherConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
        Ok(Enricher {
            settings: RwLock::new(Arc::new(Settings::resolve(&config)?)),
        })
    }

    /// Swaps the zone and default TTL; messages being normalised finish with the
    /// old ones. Applying the same configuration again changes nothing.
    fn apply_config(&self, config: EnricherConfig) -> Result<ConfigChange, PluginError> {
        let new = Arc::new(Settings::resolve(&config)?);
        let mut current = self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if **current != *new {
            tracing::info!(
                zone = %new.zone,
                default_ttl = new.default_ttl,
                "Applied a new configuration."
            );
            *current = new;
        }
        Ok(ConfigChange::Applied)
    }
}

impl MessageHandler for Enricher {
    const PHASE: &'static str = "enrich";

    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        let s = self.settings();
        let n = rdata::normalise(msg.record(), &s.zone, s.default_ttl)?;
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
