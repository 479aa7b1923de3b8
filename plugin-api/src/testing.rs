//! A host-free harness to unit-test plugins (feature `testing`).
//!
//! It drives a plugin through the same `extern "C"` shims the host uses, so panics
//! are caught and configuration is parsed exactly as in production: [`handler`]
//! and [`runnable`] parse the configuration once, run
//! [`Plugin::validate_config`] and then [`Plugin::new`], as the host does (they
//! leave out [`Plugin::validate_dependencies`], which would need the plugin's
//! servers; [`validate_dependencies`] runs it on its own).
//!
//! ```ignore
//! use gordon_plugin_api::testing;
//! let enricher = testing::handler::<MyEnricher>(r#"zone = "example.com.""#)?;
//! let out = enricher.handle(testing::event("a", "A", &["10.0.0.1"]))?;
//! assert_eq!(out.record().name(), "a.example.com.");
//! ```
//!
//! The live hooks (since 1.3) are driven through the harnesses too, by the
//! plugin's control shim as `gordon ctl` drives them:
//! [`HandlerHarness::invoke`] / [`RunnableHarness::invoke`] run an action (its
//! parameters checked against [`Plugin::actions`] first, as the host checks them),
//! `apply_config` applies TOML configuration text live, and `host_event` delivers
//! a host event if [`Plugin::HOST_EVENTS`] selects it.
//!
//! ```ignore
//! let zf = testing::handler::<ZoneFile>(CONFIG)?;
//! let serial = zf.invoke("serial", serde_json::json!({}))?;
//! assert_eq!(zf.apply_config(NEW_CONFIG)?, ConfigChange::Applied);
//! zf.host_event(&serde_json::json!({"event": "plugin.started", "plugin": "x", "time": "t"}));
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RSlice, RSliceMut};
use serde_json::{Map, Value};

use crate::abi::{ControlBox, HandlerObj_TO, RunnableObj};
use crate::channel::{bounded, Receiver, Recv};
use crate::error::PluginError;
use crate::export::{self, construct, control, HandlerAdapter, RunnableAdapter};
use crate::live::{event_matches, ActionSpec, ConfigChange, ParamType};
use crate::message::{Action, EventMessage, Phase, RecordType, ResourceRecord};
use crate::plugin::{MessageHandler, Plugin, Runnable};

/// Converts TOML configuration text to the JSON the shims take.
fn config_json(toml_text: &str) -> Result<String, PluginError> {
    let table: toml::Table = toml::from_str(toml_text)
        .map_err(|e| PluginError::new(format!("test configuration is not TOML: {e}")))?;
    serde_json::to_string(&table).map_err(PluginError::from)
}

/// Runs the plugin's `validate_config` on TOML configuration text.
///
/// # Errors
/// The plugin's validation error.
pub fn validate<P: Plugin>(config: &str) -> Result<(), PluginError> {
    let json = config_json(config)?;
    export::validate_config::<P>(json.as_str().into())
        .into_result()
        .map_err(PluginError::from)
}

/// Runs the plugin's `validate_config` and then its `validate_dependencies` on TOML
/// configuration text, as `gordon check --connect` does (since 1.3).
///
/// # Errors
/// The plugin's validation error, or what its dependency check found.
pub fn validate_dependencies<P: Plugin>(config: &str) -> Result<(), PluginError> {
    let json = config_json(config)?;
    export::validate_dependencies::<P>(json.as_str().into())
        .into_result()
        .map_err(PluginError::from)
}

/// Checks `params` against the declared action `action` of `P` as the host does
/// before it calls [`Plugin::invoke`]: the action is declared, every parameter is
/// declared and of its declared type, every required one is present.
fn check_params<P: Plugin>(action: &str, params: &Map<String, Value>) -> Result<(), PluginError> {
    let specs = P::actions();
    let spec: &ActionSpec = specs.iter().find(|a| a.name == action).ok_or_else(|| {
        let names: Vec<&str> = specs.iter().map(|a| a.name.as_str()).collect();
        PluginError::new(format!(
            "{} declares no action `{action}` (it declares {names:?})",
            P::NAME
        ))
    })?;
    for (key, value) in params {
        let param = spec.params.iter().find(|p| p.name == *key).ok_or_else(|| {
            PluginError::new(format!("action `{action}` has no parameter `{key}`"))
        })?;
        let ok = match param.kind {
            ParamType::String => value.is_string(),
            ParamType::Integer => value.is_i64() || value.is_u64(),
            ParamType::Number => value.is_number(),
            ParamType::Boolean => value.is_boolean(),
        };
        if !ok {
            return Err(PluginError::new(format!(
                "parameter `{key}` of action `{action}` must be of type {:?}, not {value}",
                param.kind
            )));
        }
    }
    if let Some(missing) = spec
        .params
        .iter()
        .find(|p| p.required && !params.contains_key(&p.name))
    {
        return Err(PluginError::new(format!(
            "action `{action}` needs parameter `{}`",
            missing.name
        )));
    }
    Ok(())
}

/// The live side of a plugin under test: its instance and its control object.
struct Live<P> {
    plugin: Arc<P>,
    control: ControlBox,
}

impl<P: Plugin> Live<P> {
    fn new(plugin: &Arc<P>) -> Self {
        Live {
            plugin: Arc::clone(plugin),
            control: control(plugin),
        }
    }

    fn invoke(&self, action: &str, params: Value) -> Result<Value, PluginError> {
        let params = match params {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => {
                return Err(PluginError::new(format!(
                    "action parameters must be a JSON object, not {other}"
                )))
            }
        };
        check_params::<P>(action, &params)?;
        let text = Value::Object(params).to_string();
        let out = self
            .control
            .invoke(action.into(), text.as_str().into())
            .into_result()
            .map_err(PluginError::from)?;
        serde_json::from_str(out.as_str())
            .map_err(|e| PluginError::new(format!("action `{action}` returned bad JSON: {e}")))
    }

    fn apply_config(&self, config: &str) -> Result<ConfigChange, PluginError> {
        let json = config_json(config)?;
        let applied = self
            .control
            .apply_config(json.as_str().into())
            .into_result()
            .map_err(PluginError::from)?;
        Ok(if applied {
            ConfigChange::Applied
        } else {
            ConfigChange::Restart
        })
    }

    fn host_event(&self, event: &Value) -> bool {
        let Some(name) = event.get("event").and_then(Value::as_str) else {
            return false;
        };
        if !P::HOST_EVENTS.iter().any(|p| event_matches(p, name)) {
            return false;
        }
        self.control.host_event(event.to_string().as_str().into());
        true
    }
}

/// Documents and forwards the live hooks of a harness to its [`Live`].
macro_rules! live_methods {
    () => {
        /// Runs action `action` of the live plugin, as `gordon ctl action` does:
        /// `params` (a JSON object, or `null` for none) is checked against the
        /// action's declared parameters first, as the host checks it, then handed
        /// to [`Plugin::invoke`] through the plugin's control shim (a panic is
        /// caught). Returns the action's JSON result.
        ///
        /// # Errors
        /// An undeclared action or a parameter the host would refuse, or the
        /// action's own error.
        pub fn invoke(&self, action: &str, params: Value) -> Result<Value, PluginError> {
            self.live.invoke(action, params)
        }

        /// Applies TOML configuration text to the live plugin, as a reload does:
        /// parsed and checked with [`Plugin::validate_config`], then handed to
        /// [`Plugin::apply_config`]. [`ConfigChange::Restart`] means the host
        /// would replace the instance instead (the harness keeps this one).
        ///
        /// # Errors
        /// A configuration error, or the plugin's error (the host reports the
        /// reload as failed and the instance keeps its configuration).
        pub fn apply_config(&self, config: &str) -> Result<ConfigChange, PluginError> {
            self.live.apply_config(config)
        }

        /// Delivers a host event (its JSON object, with at least `event`, the
        /// name; usually `plugin` and `time` too) to [`Plugin::on_host_event`],
        /// if one of [`Plugin::HOST_EVENTS`] selects it, as the host would.
        /// Returns whether it was delivered. Unlike the host, it delivers on the
        /// calling thread and before returning.
        pub fn host_event(&self, event: &Value) -> bool {
            self.live.host_event(event)
        }
    };
}

/// An event message in phase `consume`, for feeding a handler.
///
/// # Panics
/// If `rtype` is not a record type name of the event format.
pub fn event(name: &str, rtype: &str, rrdatas: &[&str]) -> EventMessage {
    let rtype = RecordType::from_name(rtype).unwrap_or_else(|| panic!("unknown type {rtype}"));
    let record = ResourceRecord::new(name, rtype, rrdatas.iter().copied());
    EventMessage::new(Phase::new("consume"), Action::Additions, record)
}

/// A message handler under test.
pub struct HandlerHarness<P: MessageHandler> {
    obj: crate::abi::HandlerBox,
    live: Live<P>,
}

/// Builds a handler from TOML configuration text, as the host would: parsed once,
/// checked with [`Plugin::validate_config`], then created with [`Plugin::new`].
///
/// # Errors
/// A configuration, validation or constructor error (or panic).
pub fn handler<P: MessageHandler>(config: &str) -> Result<HandlerHarness<P>, PluginError> {
    let json = config_json(config)?;
    let (plugin, _ctx) = construct::<P>(&json)?;
    let obj = HandlerObj_TO::from_value(HandlerAdapter(Arc::clone(&plugin)), TD_Opaque);
    Ok(HandlerHarness {
        obj,
        live: Live::new(&plugin),
    })
}

impl<P: MessageHandler> HandlerHarness<P> {
    /// The plugin instance.
    pub fn plugin(&self) -> &P {
        &self.live.plugin
    }

    live_methods!();

    /// Handles one message, in the handler's phase.
    ///
    /// # Errors
    /// The error (or caught panic) the handler failed the message with.
    pub fn handle(&self, msg: EventMessage) -> Result<EventMessage, PluginError> {
        let mut out = self.handle_batch(vec![msg]);
        out.pop()
            .unwrap_or_else(|| Err(PluginError::new("handler lost the message")))
    }

    /// Handles a batch; one result per message, in order.
    pub fn handle_batch(
        &self,
        mut msgs: Vec<EventMessage>,
    ) -> Vec<Result<EventMessage, PluginError>> {
        for m in &mut msgs {
            m.update_phase(Phase::new(P::PHASE), "testing");
        }
        let failures = self.obj.handle_batch(RSliceMut::from_mut_slice(&mut msgs));
        let mut errors: Vec<Option<PluginError>> = msgs.iter().map(|_| None).collect();
        for f in failures {
            if let Some(slot) = errors.get_mut(f.index as usize) {
                *slot = Some(f.error.into());
            }
        }
        msgs.into_iter()
            .zip(errors)
            .map(|(m, e)| e.map_or(Ok(m), Err))
            .collect()
    }

    /// Runs the handler's shutdown.
    ///
    /// # Errors
    /// The plugin's shutdown error.
    pub fn shutdown(&self) -> Result<(), PluginError> {
        self.obj
            .shutdown(5_000)
            .into_result()
            .map_err(PluginError::from)
    }
}

/// A runnable under test, started on a channel the harness reads.
pub struct RunnableHarness<P: Runnable> {
    adapter: RunnableAdapter<P>,
    rx: Receiver<EventMessage>,
    live: Live<P>,
}

/// Builds a runnable from TOML configuration text, as the host would (parsed once,
/// checked with [`Plugin::validate_config`], created with [`Plugin::new`]), and
/// starts it on a channel of `capacity` messages.
///
/// # Errors
/// A configuration, validation or constructor error (or panic).
pub fn runnable<P: Runnable>(
    config: &str,
    capacity: usize,
) -> Result<RunnableHarness<P>, PluginError> {
    let json = config_json(config)?;
    let (plugin, ctx) = construct::<P>(&json)?;
    let live = Live::new(&plugin);
    let adapter = RunnableAdapter::new(plugin, ctx);
    let (tx, rx) = bounded(capacity);
    adapter.start(tx).into_result().map_err(PluginError::from)?;
    Ok(RunnableHarness { adapter, rx, live })
}

impl<P: Runnable> RunnableHarness<P> {
    /// The plugin instance.
    pub fn plugin(&self) -> &P {
        &self.adapter.plugin
    }

    live_methods!();

    /// Waits up to `timeout` for `n` messages; returns those that arrived.
    pub fn recv(&self, n: usize, timeout: Duration) -> Vec<EventMessage> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let want = n - out.len();
            if self.rx.recv_batch(&mut out, want, Some(left)) == Recv::Ended {
                break;
            }
        }
        out
    }

    /// Hands messages back for cleanup, as the host does at the end of a route.
    ///
    /// # Errors
    /// A caught panic.
    pub fn cleanup(&self, msgs: &[EventMessage]) -> Result<(), PluginError> {
        self.adapter
            .cleanup(RSlice::from_slice(msgs))
            .into_result()
            .map_err(PluginError::from)
    }

    /// Asks the runnable to stop and waits up to `deadline`.
    ///
    /// # Errors
    /// The plugin's shutdown error, or a missed deadline.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        self.rx.close();
        self.adapter
            .shutdown(deadline.as_millis() as u64)
            .into_result()
            .map_err(PluginError::from)
    }
}

/// The top-level keys serde accepts for configuration type `T`, read from the
/// error it gives for an unknown key — so `T` needs
/// `#[serde(deny_unknown_fields)]` (serde then names every key it accepts).
///
/// # Errors
/// `T` accepts an unknown key, or its error names none.
pub fn accepted_keys<T: serde::de::DeserializeOwned>() -> Result<Vec<String>, String> {
    let Err(err) = serde_json::from_value::<T>(serde_json::json!({"no such key": 0})) else {
        return Err("an unknown key was accepted: add #[serde(deny_unknown_fields)]".into());
    };
    let err = err.to_string();
    let (_, expected) = err
        .split_once("expected")
        .ok_or_else(|| format!("serde's error names no keys: {err}"))?;
    let mut keys: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    keys.sort();
    Ok(keys)
}

/// Checks keys a plugin describes ([`Plugin::config_keys`]) against what its
/// configuration type `T` accepts: the top-level names must be exactly
/// [`accepted_keys`], every key needs a line of documentation, and no default may
/// be `null` (TOML cannot write one: leave `#[serde(default)]` off an `Option`).
///
/// ```ignore
/// testing::check_keys::<Config>(&MyPlugin::config_keys()).unwrap();
/// ```
///
/// # Errors
/// Every difference found.
pub fn check_keys<T: serde::de::DeserializeOwned>(keys: &[crate::ConfigKey]) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut described: Vec<String> = keys
        .iter()
        .filter(|k| !k.name.contains('.'))
        .map(|k| k.name.clone())
        .collect();
    described.sort();
    let accepted = accepted_keys::<T>()?;
    if described != accepted {
        problems.push(format!(
            "described keys {described:?}, but the type accepts {accepted:?}"
        ));
    }
    for key in keys {
        if key.doc.is_empty() {
            problems.push(format!("`{}` has no doc line", key.name));
        }
        if key.default.as_deref() == Some("null") {
            problems.push(format!("`{}` has the default null", key.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{PluginContext, RunContext};

    struct Upper;
    impl Plugin for Upper {
        const NAME: &'static str = "test.upper";
        const DESCRIPTION: &'static str = "Upper-cases names";
        type Config = serde_json::Value;
        fn new(_: Self::Config, _: PluginContext) -> Result<Self, PluginError> {
            Ok(Upper)
        }
    }
    impl MessageHandler for Upper {
        const PHASE: &'static str = "enrich";
        fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
            if msg.record().name().contains("panic") {
                panic!("asked to panic");
            }
            let up = msg.record().name().to_uppercase();
            msg.record_mut().set_name(up);
            Ok(())
        }
    }

    struct Three;
    impl Plugin for Three {
        const NAME: &'static str = "test.three";
        const DESCRIPTION: &'static str = "Sends three events";
        type Config = serde_json::Value;
        fn new(_: Self::Config, _: PluginContext) -> Result<Self, PluginError> {
            Ok(Three)
        }
    }
    impl Runnable for Three {
        async fn run(&self, ctx: RunContext) -> Result<(), PluginError> {
            for i in 0..3 {
                let rec = ResourceRecord::new(&format!("h{i}."), RecordType::A, ["10.0.0.1"]);
                ctx.events
                    .send(ctx.events.message(Action::Additions, rec))
                    .await?;
            }
            Ok(())
        }
    }

    /// A handler with every live hook: `step` must not be 0 (checked only by
    /// `validate_config`), action `add n=<integer>`, live `step` changes, and a
    /// count of the `plugin.*` events it gets.
    struct Live13 {
        step: std::sync::atomic::AtomicU64,
        total: std::sync::atomic::AtomicU64,
        events: std::sync::Mutex<Vec<String>>,
    }
    #[derive(serde::Deserialize)]
    struct StepConfig {
        step: u64,
    }
    impl Plugin for Live13 {
        const NAME: &'static str = "test.live";
        const DESCRIPTION: &'static str = "Adds";
        const HOST_EVENTS: &'static [&'static str] = &["plugin.*"];
        type Config = StepConfig;
        fn validate_config(config: &StepConfig) -> Result<(), PluginError> {
            if config.step == 0 {
                return Err(PluginError::new("`step` must not be 0"));
            }
            Ok(())
        }
        fn validate_dependencies(config: &StepConfig) -> Result<(), PluginError> {
            if config.step > 100 {
                return Err(PluginError::new("no server takes steps above 100"));
            }
            Ok(())
        }
        fn new(config: StepConfig, _: PluginContext) -> Result<Self, PluginError> {
            Ok(Live13 {
                step: config.step.into(),
                total: 0.into(),
                events: std::sync::Mutex::default(),
            })
        }
        fn actions() -> Vec<ActionSpec> {
            use crate::live::Param;
            vec![
                ActionSpec::new("add", "Adds n steps").param(Param::required(
                    "n",
                    ParamType::Integer,
                    "How many",
                )),
            ]
        }
        fn invoke(&self, action: &str, params: &Map<String, Value>) -> Result<Value, PluginError> {
            use std::sync::atomic::Ordering::SeqCst;
            assert_eq!(action, "add");
            let n = params["n"].as_u64().unwrap_or_default();
            if n == 13 {
                panic!("unlucky");
            }
            let step = self.step.load(SeqCst);
            let total = self.total.fetch_add(n * step, SeqCst) + n * step;
            Ok(serde_json::json!({ "total": total }))
        }
        fn apply_config(&self, config: StepConfig) -> Result<ConfigChange, PluginError> {
            self.step
                .store(config.step, std::sync::atomic::Ordering::SeqCst);
            Ok(ConfigChange::Applied)
        }
        fn on_host_event(&self, event: &crate::live::HostEvent) {
            self.events.lock().unwrap().push(event.name.clone());
        }
    }
    impl MessageHandler for Live13 {
        const PHASE: &'static str = "enrich";
        fn handle(&self, _: &mut EventMessage) -> Result<(), PluginError> {
            Ok(())
        }
    }

    #[test]
    fn harnesses_validate_before_new() {
        let err = handler::<Live13>("step = 0").err().unwrap();
        assert_eq!(err.message(), "`step` must not be 0");
        // Dependencies are the plugin's servers: checked on their own.
        assert!(handler::<Live13>("step = 101").is_ok());
        let err = validate_dependencies::<Live13>("step = 101").unwrap_err();
        assert_eq!(err.message(), "no server takes steps above 100");
        let err = validate_dependencies::<Live13>("step = 0").unwrap_err();
        assert_eq!(err.message(), "`step` must not be 0");
        assert!(validate_dependencies::<Live13>("step = 2").is_ok());
    }

    #[test]
    fn live_hooks_run_through_the_harness() {
        let h = handler::<Live13>("step = 2").unwrap();
        let out = h.invoke("add", serde_json::json!({"n": 3})).unwrap();
        assert_eq!(out, serde_json::json!({"total": 6}));
        // Checked as the host checks them, before the plugin sees them.
        let bad = |action: &str, params: Value| h.invoke(action, params).unwrap_err().to_string();
        assert!(bad("sub", Value::Null).contains("no action `sub`"));
        assert!(bad("add", Value::Null).contains("needs parameter `n`"));
        assert!(bad("add", serde_json::json!({"n": "3"})).contains("must be of type Integer"));
        assert!(bad("add", serde_json::json!({"n": 1, "x": 1})).contains("no parameter `x`"));
        let panicked = h.invoke("add", serde_json::json!({"n": 13})).unwrap_err();
        assert!(panicked.is_panic(), "{panicked}");

        assert_eq!(h.apply_config("step = 10").unwrap(), ConfigChange::Applied);
        let out = h.invoke("add", serde_json::json!({"n": 1})).unwrap();
        assert_eq!(out, serde_json::json!({"total": 16}));
        let err = h.apply_config("step = 0").unwrap_err();
        assert_eq!(err.message(), "`step` must not be 0");
        assert!(h.apply_config("stp = 1").is_err());

        let event = |name: &str| serde_json::json!({"event": name, "plugin": "x", "time": "t"});
        assert!(h.host_event(&event("plugin.failed")));
        assert!(!h.host_event(&event("config.applied")), "not selected");
        assert!(!h.host_event(&serde_json::json!({"plugin": "x"})));
        assert_eq!(*h.plugin().events.lock().unwrap(), ["plugin.failed"]);

        // A plugin without live hooks: the defaults.
        let r = runnable::<Three>("", 16).unwrap();
        assert_eq!(r.apply_config("").unwrap(), ConfigChange::Restart);
        assert!(r.invoke("x", Value::Null).is_err());
        assert!(!r.host_event(&event("plugin.failed")));
        assert_eq!(r.recv(3, Duration::from_secs(5)).len(), 3);
        r.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn handler_harness_runs_and_contains_panics() {
        let h = handler::<Upper>("").unwrap();
        let out = h
            .handle(event("www.example.com.", "A", &["10.0.0.1"]))
            .unwrap();
        assert_eq!(out.record().name(), "WWW.EXAMPLE.COM.");
        assert_eq!(out.phase().as_str(), "enrich");
        let err = h
            .handle(event("panic.example.com.", "A", &["10.0.0.1"]))
            .unwrap_err();
        assert!(
            err.is_panic() && err.message().contains("asked to panic"),
            "{err}"
        );
    }

    #[test]
    fn runnable_harness_collects_events() {
        let r = runnable::<Three>("", 16).unwrap();
        let msgs = r.recv(3, Duration::from_secs(5));
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2].record().name(), "h2.");
        r.cleanup(&msgs).unwrap();
        r.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Keyed {
        /// Documented.
        ttl: u32,
        zone: String,
    }

    #[test]
    fn check_keys_finds_a_missing_key_and_a_missing_doc_line() {
        assert_eq!(super::accepted_keys::<Keyed>().unwrap(), ["ttl", "zone"]);
        let keys = crate::ConfigKey::of::<Keyed>();
        let err = super::check_keys::<Keyed>(&keys).unwrap_err();
        assert!(err.contains("`zone` has no doc line"), "{err}");
        let err = super::check_keys::<Keyed>(&keys[..1]).unwrap_err();
        assert!(err.contains(r#"accepts ["ttl", "zone"]"#), "{err}");
        let err = super::accepted_keys::<serde_json::Value>().unwrap_err();
        assert!(err.contains("deny_unknown_fields"), "{err}");
    }
}
