//! A handler in a library built with `panic = "abort"`.

use gordon_plugin_api::{
    export_plugins, EventMessage, MessageHandler, Plugin, PluginContext, PluginError,
};

pub struct Abort;

impl Plugin for Abort {
    const NAME: &'static str = "abort.handler";
    const DESCRIPTION: &'static str = "Built with panic = \"abort\"";
    type Config = serde_json::Value;
    fn new(_: Self::Config, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Abort)
    }
}

impl MessageHandler for Abort {
    const PHASE: &'static str = "enrich";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        msg.record_mut().set_ttl(1);
        Ok(())
    }
}

export_plugins!(handler Abort);
