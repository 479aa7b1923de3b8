//! The traits a vendor implements: one per Gordon service kind.
//!
//! Prefer the simplest that fits. A plugin that transforms or publishes messages is
//! a [`MessageHandler`]; a plugin that produces them from the outside world (an HTTP
//! endpoint, a queue) is a [`Runnable`]; a plugin that ships the host's metrics
//! somewhere is a [`MetricRelay`]. Each builds on [`Plugin`], which carries the name,
//! the configuration type and the constructor.

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::context::{PluginContext, RunContext};
use crate::error::PluginError;
use crate::keys::ConfigKey;
use crate::live::{ActionSpec, ConfigChange, HostEvent};
use crate::message::EventMessage;

/// What every plugin has: a name, a configuration type and a constructor.
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The dotted name the operator lists in `core.plugins`, e.g. `"dns.zonefile"`.
    /// The part before the first dot is the package: the plugin's configuration is the
    /// `["dns"]` table deep-merged with the `["dns.zonefile"]` table.
    const NAME: &'static str;
    /// One line saying what the plugin does (shown by `gordon plugins list`).
    const DESCRIPTION: &'static str;
    /// The plugin's configuration. Derive `Deserialize`, and add
    /// `#[serde(deny_unknown_fields)]` so that a typo is an error naming the key;
    /// derive `JsonSchema` too and describe its keys in [`Plugin::config_keys`].
    type Config: DeserializeOwned;

    /// The keys of [`Plugin::Config`] (since 1.3): name, type, default and one line
    /// of documentation each, shown by `gordon plugins info` and named by `gordon
    /// check` without creating the plugin. Return
    /// [`ConfigKey::of::<Self::Config>()`](ConfigKey::of) from a configuration type
    /// that derives `JsonSchema`. The default describes none.
    fn config_keys() -> Vec<ConfigKey> {
        Vec::new()
    }

    /// Checks the configuration beyond what deserialising it checks, without creating
    /// the plugin (`gordon check` calls it). The default accepts anything that
    /// deserialises.
    ///
    /// # Errors
    /// A [`PluginError`] naming the offending key.
    fn validate_config(config: &Self::Config) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Creates the plugin from a configuration that passed
    /// [`Plugin::validate_config`]: every path here (the host, the `new_*`
    /// constructors kept for older hosts, the `testing` harness) runs it first,
    /// so `new` need not check again. Heavy work (connecting, binding) belongs in
    /// [`Runnable::run`] or in the first call, so that a plugin that fails to start
    /// does not hold up the others.
    ///
    /// # Errors
    /// A [`PluginError`] saying why the plugin cannot be created.
    fn new(config: Self::Config, ctx: PluginContext) -> Result<Self, PluginError>;

    /// The host events this plugin wants (since 1.3), as patterns: a name
    /// (`"plugin.failed"`), a prefix (`"plugin.*"`) or `"*"`. They arrive at
    /// [`Plugin::on_host_event`], asynchronously. The default selects none.
    const HOST_EVENTS: &'static [&'static str] = &[];

    /// Checks that the plugin can work here — reach its server, read its files —
    /// with a configuration that passed [`Plugin::validate_config`] (since 1.3).
    /// `gordon check --connect` runs it (a failure is an error there), and the
    /// host runs it before creating the plugin (a failure is logged as a warning
    /// and the plugin starts anyway: a server that is down at start-up must not
    /// keep the host from starting). The default accepts.
    ///
    /// # Errors
    /// A [`PluginError`] saying what is unreachable or unreadable.
    fn validate_dependencies(config: &Self::Config) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// The actions an operator can invoke on the live plugin (since 1.3), listed by
    /// `gordon plugins list --json` without creating it and run by
    /// [`Plugin::invoke`]. The default offers none.
    fn actions() -> Vec<ActionSpec> {
        Vec::new()
    }

    /// Applies a changed configuration to the live plugin (since 1.3; Lighthouse's
    /// `apply_config`). The configuration has passed [`Plugin::validate_config`].
    /// Must be idempotent: the host may apply the same configuration twice.
    /// Return [`ConfigChange::Restart`] (the default) to have the host start a new
    /// instance instead and drain this one.
    ///
    /// # Errors
    /// A [`PluginError`]: the reload is reported as failed for this plugin, and
    /// the instance keeps its previous configuration.
    fn apply_config(&self, config: Self::Config) -> Result<ConfigChange, PluginError> {
        let _ = config;
        Ok(ConfigChange::Restart)
    }

    /// Runs one of [`Plugin::actions`] on the live plugin (since 1.3). The host
    /// has checked `params` against the action's declared parameters: required
    /// ones are present, every value has its declared type, none is unknown.
    ///
    /// # Errors
    /// A [`PluginError`], shown to the operator.
    fn invoke(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, PluginError> {
        let _ = params;
        Err(PluginError::new(format!("no action `{action}`")))
    }

    /// Receives a host event the plugin selected with [`Plugin::HOST_EVENTS`]
    /// (since 1.3), on a thread of the host's; return quickly.
    fn on_host_event(&self, event: &HostEvent) {
        let _ = event;
    }
}

/// An event source (the original `IRunnable`); it is also the handler of the `cleanup`
/// phase for its own messages.
pub trait Runnable: Plugin {
    /// The phase its messages start in.
    const START_PHASE: &'static str = "consume";

    /// Produces messages onto `ctx.events` until the source ends or
    /// `ctx.shutdown` fires. Runs on the plugin's own tokio runtime.
    fn run(&self, ctx: RunContext) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Called for each message that finished its route (phase `cleanup`: acknowledge
    /// it) or failed (phase `drop`: reject it, so it can be retried). The default does
    /// nothing.
    ///
    /// # Errors
    /// A [`PluginError`]; the host logs it with the message id.
    fn cleanup(&self, msg: &EventMessage) -> Result<(), PluginError> {
        let _ = msg;
        Ok(())
    }

    /// Cleans up a batch; the default calls [`Runnable::cleanup`] for each message and
    /// logs failures. Override it to acknowledge many messages at once.
    fn cleanup_batch(&self, msgs: &[EventMessage]) {
        for msg in msgs {
            if let Err(error) = self.cleanup(msg) {
                tracing::warn!(msg_id = %msg.msg_id(), %error, "Cleanup failed.");
            }
        }
    }

    /// Called once after `run` has been asked to stop and has returned (or was
    /// abandoned at the deadline): close connections, flush state.
    fn shutdown(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }
}

/// Failed messages of a batch, by index.
#[derive(Debug, Default)]
pub struct Failures(pub(crate) Vec<(usize, PluginError)>);

impl Failures {
    /// Marks the message at `index` of the batch as failed.
    pub fn push(&mut self, index: usize, error: PluginError) {
        self.0.push((index, error));
    }
    /// Number of failures recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether no failure was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A message handler for one phase (the original `IMessageHandler`).
///
/// The host calls it from several worker threads at once, so it takes `&self`; keep
/// mutable state behind a lock or an atomic.
pub trait MessageHandler: Plugin {
    /// The phase it handles, e.g. `"enrich"` or `"publish"`.
    const PHASE: &'static str;

    /// Handles one message in place.
    ///
    /// # Errors
    /// A [`PluginError`]: the host moves the message to phase `drop`, records the
    /// error in its history and hands it to its source's cleanup.
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError>;

    /// Handles a batch; the default calls [`MessageHandler::handle`] for each message,
    /// catching a panic per message. Override it when a whole batch is cheaper
    /// (one write, one network round trip), and push failed indices to `failures`.
    fn handle_batch(&self, msgs: &mut [EventMessage], failures: &mut Failures) {
        for (i, msg) in msgs.iter_mut().enumerate() {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(msg)));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(i, e),
                Err(payload) => failures.push(i, PluginError::from_panic("handle", &*payload)),
            }
        }
    }

    /// Releases resources at shutdown.
    ///
    /// # Errors
    /// A [`PluginError`]; the host logs it.
    fn shutdown(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// A metric relay (the original `IMetricRelay`): receives every metric the host and
/// the plugins emit when `core.metrics` names it.
pub trait MetricRelay: Plugin {
    /// A counter increment.
    fn incr(&self, name: &str, value: f64, tags: &[(&str, &str)]);
    /// A duration, in seconds.
    fn timer(&self, name: &str, seconds: f64, tags: &[(&str, &str)]);
    /// A gauge value.
    fn set(&self, name: &str, value: f64, tags: &[(&str, &str)]);
    /// Flushes and closes at shutdown.
    ///
    /// # Errors
    /// A [`PluginError`]; the host logs it.
    fn cleanup(&self) -> Result<(), PluginError> {
        Ok(())
    }
}
