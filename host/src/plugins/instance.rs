//! Validating and creating plugin instances from their catalog entries.

use abi_stable::std_types::RStr;
use gordon_plugin_api::abi::{
    AuthorityBox, HandlerBox, PublisherBox, ReconcilerBox, RelayBox, RunnableBox, KIND_AUTHORITY,
    KIND_MESSAGE_HANDLER, KIND_METRIC_RELAY, KIND_PUBLISHER, KIND_RECONCILER, KIND_RUNNABLE,
};
use gordon_plugin_api::PluginError;

use super::registry::PluginInfo;
use crate::config::PluginConfig;

/// A created plugin.
pub enum Instance {
    /// An event source.
    Runnable(RunnableBox),
    /// A phase handler.
    Handler(HandlerBox),
    /// A metric relay.
    Relay(RelayBox),
    /// A janitor authority.
    Authority(AuthorityBox),
    /// A janitor reconciler.
    Reconciler(ReconcilerBox),
    /// A janitor publisher.
    Publisher(PublisherBox),
}

/// Runs the plugin's `validate_config` on its configuration.
///
/// # Errors
/// The plugin's error naming the file and table of the key it is about, its caught
/// panic, or a configuration JSON cannot carry.
pub fn validate(info: &PluginInfo, config: &PluginConfig) -> Result<(), PluginError> {
    config.validate_with(|json| {
        (info.fns.validate_config)(RStr::from_str(json))
            .into_result()
            .map_err(Into::into)
    })
}

/// Creates the plugin with its configuration (JSON object text).
///
/// # Errors
/// An unsupported kind, or the plugin's error or caught panic.
pub fn instantiate(info: &PluginInfo, config_json: &str) -> Result<Instance, PluginError> {
    let cfg = RStr::from_str(config_json);
    let missing = || PluginError::new(format!("kind `{}` has no constructor", info.kind));
    match info.kind.as_str() {
        KIND_RUNNABLE => {
            let new = info.fns.new_runnable.ok_or_else(missing)?;
            new(cfg)
                .into_result()
                .map(Instance::Runnable)
                .map_err(Into::into)
        }
        KIND_MESSAGE_HANDLER => {
            let new = info.fns.new_handler.ok_or_else(missing)?;
            new(cfg)
                .into_result()
                .map(Instance::Handler)
                .map_err(Into::into)
        }
        KIND_METRIC_RELAY => {
            let new = info.fns.new_relay.ok_or_else(missing)?;
            new(cfg)
                .into_result()
                .map(Instance::Relay)
                .map_err(Into::into)
        }
        // Appended in 1.1: a 1.0 library has no such field (`None`).
        KIND_AUTHORITY => {
            let new = info.fns.new_authority.ok_or_else(missing)?;
            new(cfg)
                .into_result()
                .map(Instance::Authority)
                .map_err(Into::into)
        }
        KIND_RECONCILER => {
            let new = info.fns.new_reconciler.ok_or_else(missing)?;
            new(cfg)
                .into_result()
                .map(Instance::Reconciler)
                .map_err(Into::into)
        }
        KIND_PUBLISHER => {
            let new = info.fns.new_publisher.ok_or_else(missing)?;
            new(cfg)
                .into_result()
                .map(Instance::Publisher)
                .map_err(Into::into)
        }
        other => Err(PluginError::new(format!(
            "kind `{other}` is not supported by this host"
        ))),
    }
}
