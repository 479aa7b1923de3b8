//! Validating and creating plugin instances from their catalog entries.

use abi_stable::std_types::RStr;
use gordon_plugin_api::abi::{
    Created as FfiCreated, KIND_AUTHORITY, KIND_DISCOVERY, KIND_MESSAGE_HANDLER, KIND_METRIC_RELAY,
    KIND_PUBLISHER, KIND_RECONCILER, KIND_RUNNABLE,
};
use gordon_plugin_api::PluginError;

use super::handle::{
    done, wrap, Authority, Control, Discovery, Handler, Publisher, Reconciler, Relay, Source,
};
use super::loader::Ctor;
use super::registry::PluginInfo;
use crate::config::PluginConfig;

/// A created plugin, behind its kind's handle.
pub enum Instance {
    /// An event source.
    Runnable(Source),
    /// A phase handler.
    Handler(Handler),
    /// A metric relay.
    Relay(Relay),
    /// A janitor authority.
    Authority(Authority),
    /// A janitor reconciler.
    Reconciler(Reconciler),
    /// A janitor publisher.
    Publisher(Publisher),
    /// A discovery plugin.
    Discovery(Discovery),
}

/// A created plugin and its live controls.
pub struct Created {
    /// The plugin, behind its kind's handle.
    pub instance: Instance,
    /// Its configuration, actions and host events.
    pub control: Control,
}

impl Instance {
    /// The supervisor of its process, when it is isolated.
    pub fn supervisor(&self) -> Option<std::sync::Arc<crate::isolation::supervisor::Supervisor>> {
        match self {
            Instance::Runnable(h) => h.supervisor(),
            Instance::Handler(h) => h.supervisor(),
            Instance::Relay(h) => h.supervisor(),
            Instance::Authority(h) => h.supervisor(),
            Instance::Reconciler(h) => h.supervisor(),
            Instance::Publisher(h) => h.supervisor(),
            Instance::Discovery(_) => None,
        }
    }
}

/// Runs the plugin's `validate_config` on its configuration.
///
/// # Errors
/// The plugin's error naming the file and table of the key it is about, its caught
/// panic, or a configuration JSON cannot carry.
pub fn validate(info: &PluginInfo, config: &PluginConfig) -> Result<(), PluginError> {
    config.validate_with(|json| validate_json(info, json))
}

/// Runs the plugin's `validate_config` on configuration JSON as given (in a
/// plugin process, where the host has already checked what JSON can carry).
///
/// # Errors
/// The plugin's error or caught panic.
pub fn validate_json(info: &PluginInfo, json: &str) -> Result<(), PluginError> {
    (info.fns.validate_config)(RStr::from_str(json))
        .into_result()
        .map_err(Into::into)
}

/// Runs the plugin's `validate_dependencies` (plugin-api 1.3+): its configuration,
/// then whether it can work here. `Ok(false)` when the library is older and has
/// no such check (its configuration is still validated).
///
/// # Errors
/// As [`validate`], or the plugin's word on what it cannot reach.
pub fn validate_dependencies(
    info: &PluginInfo,
    config: &PluginConfig,
) -> Result<bool, PluginError> {
    match info.fns.validate_dependencies {
        Some(check) => {
            config.validate_with(|json| done(check(RStr::from_str(json))).map(|()| true))
        }
        None => validate(info, config).map(|()| false),
    }
}

/// Validates and creates the plugin, in this process or — when `core.isolate`
/// names it — in a process of its own. A library built against plugin-api 1.3 or
/// later parses and validates its configuration once, in the same call that
/// creates it; an older one is validated first, then created.
///
/// # Errors
/// As [`validate`] and [`instantiate`], or the plugin process's failure to start.
pub fn start(
    info: &PluginInfo,
    config: &PluginConfig,
    core: &crate::config::CoreConfig,
) -> Result<Created, PluginError> {
    if crate::isolation::is_isolated(core, &info.name) {
        let timeout = core
            .handler_timeouts
            .get(&info.name)
            .copied()
            .unwrap_or(core.handler_timeout);
        let timeout =
            std::time::Duration::try_from_secs_f64(timeout).unwrap_or(std::time::Duration::MAX);
        return crate::isolation::start(info, config, core, timeout);
    }
    if info.fns.create.is_some() {
        return config.validate_with(|json| instantiate(info, json));
    }
    validate(info, config).and_then(|()| instantiate(info, config))
}

/// Creates the plugin with its configuration (JSON object text). A 1.3 library
/// validates it in the same call.
///
/// # Errors
/// An unsupported kind, or the plugin's error or caught panic.
pub fn instantiate(info: &PluginInfo, config_json: &str) -> Result<Created, PluginError> {
    if let Some(create) = info.fns.create {
        let created = done(create(RStr::from_str(config_json)))?;
        return from_ffi(info, created);
    }
    instantiate_legacy(info, config_json).map(|instance| Created {
        instance,
        control: Control::absent(intern_version(info)),
    })
}

fn intern_version(info: &PluginInfo) -> &'static str {
    super::intern(&info.api_version)
}

/// Puts the object of the plugin's kind, out of what `create` returned, behind its
/// handle.
fn from_ffi(info: &PluginInfo, created: FfiCreated) -> Result<Created, PluginError> {
    let FfiCreated {
        runnable,
        handler,
        relay,
        authority,
        reconciler,
        publisher,
        discovery,
        control,
    } = created;
    let instance = match info.kind.as_str() {
        KIND_RUNNABLE => runnable
            .into_option()
            .map(|o| Instance::Runnable(wrap::source(o))),
        KIND_MESSAGE_HANDLER => handler
            .into_option()
            .map(|o| Instance::Handler(wrap::handler(o))),
        KIND_METRIC_RELAY => relay.into_option().map(|o| Instance::Relay(wrap::relay(o))),
        KIND_AUTHORITY => authority
            .into_option()
            .map(|o| Instance::Authority(wrap::authority(o))),
        KIND_RECONCILER => reconciler
            .into_option()
            .map(|o| Instance::Reconciler(wrap::reconciler(o))),
        KIND_PUBLISHER => publisher
            .into_option()
            .map(|o| Instance::Publisher(wrap::publisher(o))),
        KIND_DISCOVERY => discovery
            .into_option()
            .map(|o| Instance::Discovery(wrap::discovery(o))),
        other => {
            return Err(PluginError::new(format!(
                "kind `{other}` is not supported by this host"
            )))
        }
    };
    let instance = instance.ok_or_else(|| {
        PluginError::new(format!(
            "the library created no object of the plugin's kind `{}`",
            info.kind
        ))
    })?;
    Ok(Created {
        instance,
        control: wrap::control(control),
    })
}

/// Creates a plugin of a library older than 1.3 through its kind's constructor.
fn instantiate_legacy(info: &PluginInfo, config_json: &str) -> Result<Instance, PluginError> {
    let f = &info.fns;
    // Kinds appended in 1.1 (the janitor's) have no constructor in a 1.0 library:
    // `None`, as for a kind the library does not export.
    match info.kind.as_str() {
        KIND_RUNNABLE => create(
            info,
            f.new_runnable,
            config_json,
            wrap::source,
            Instance::Runnable,
        ),
        KIND_MESSAGE_HANDLER => create(
            info,
            f.new_handler,
            config_json,
            wrap::handler,
            Instance::Handler,
        ),
        KIND_METRIC_RELAY => create(info, f.new_relay, config_json, wrap::relay, Instance::Relay),
        KIND_AUTHORITY => create(
            info,
            f.new_authority,
            config_json,
            wrap::authority,
            Instance::Authority,
        ),
        KIND_RECONCILER => create(
            info,
            f.new_reconciler,
            config_json,
            wrap::reconciler,
            Instance::Reconciler,
        ),
        KIND_PUBLISHER => create(
            info,
            f.new_publisher,
            config_json,
            wrap::publisher,
            Instance::Publisher,
        ),
        other => Err(PluginError::new(format!(
            "kind `{other}` is not supported by this host"
        ))),
    }
}

/// Calls the kind's constructor and puts the object behind its handle.
fn create<B, H>(
    info: &PluginInfo,
    new: Option<Ctor<B>>,
    config_json: &str,
    handle: fn(B) -> H,
    instance: fn(H) -> Instance,
) -> Result<Instance, PluginError> {
    let new =
        new.ok_or_else(|| PluginError::new(format!("kind `{}` has no constructor", info.kind)))?;
    done(new(RStr::from_str(config_json))).map(|obj| instance(handle(obj)))
}
