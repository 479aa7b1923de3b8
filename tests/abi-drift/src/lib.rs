//! A handler built against a drifted copy of the plugin interface.

use gordon_plugin_api::{export_plugins, EventMessage, MessageHandler, Plugin, PluginContext, PluginError};

pub struct Drift;

impl Plugin for Drift {
    const NAME: &'static str = "drift.handler";
    const DESCRIPTION: &'static str = "Built against another plugin-api";
    type Config = serde_json::Value;
    fn new(_: Self::Config, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Drift)
    }
}

impl MessageHandler for Drift {
    const PHASE: &'static str = "enrich";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        msg.record_mut().set_ttl(1);
        Ok(())
    }
}

export_plugins!(handler Drift);
