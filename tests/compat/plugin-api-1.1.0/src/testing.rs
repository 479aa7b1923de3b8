//! A host-free harness to unit-test plugins (feature `testing`).
//!
//! It drives a plugin through the same `extern "C"` shims the host uses, so panics
//! are caught and configuration is parsed exactly as in production.
//!
//! ```ignore
//! use gordon_plugin_api::testing;
//! let enricher = testing::handler::<MyEnricher>(r#"zone = "example.com.""#)?;
//! let out = enricher.handle(testing::event("a", "A", &["10.0.0.1"]))?;
//! assert_eq!(out.record().name(), "a.example.com.");
//! ```

use std::time::{Duration, Instant};

use abi_stable::std_types::{RSlice, RSliceMut};

use crate::abi::RunnableObj;
use crate::channel::{bounded, Receiver, Recv};
use crate::error::PluginError;
use crate::export::{self, construct, RunnableAdapter};
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
    _plugin: std::marker::PhantomData<P>,
}

/// Builds a handler from TOML configuration text, as the host would.
///
/// # Errors
/// A configuration or constructor error (or panic).
pub fn handler<P: MessageHandler>(config: &str) -> Result<HandlerHarness<P>, PluginError> {
    let json = config_json(config)?;
    let obj = export::new_handler::<P>(json.as_str().into())
        .into_result()
        .map_err(PluginError::from)?;
    Ok(HandlerHarness {
        obj,
        _plugin: std::marker::PhantomData,
    })
}

impl<P: MessageHandler> HandlerHarness<P> {
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
}

/// Builds a runnable from TOML configuration text and starts it on a channel of
/// `capacity` messages.
///
/// # Errors
/// A configuration or constructor error (or panic).
pub fn runnable<P: Runnable>(
    config: &str,
    capacity: usize,
) -> Result<RunnableHarness<P>, PluginError> {
    let json = config_json(config)?;
    let (plugin, ctx) = construct::<P>(&json)?;
    let adapter = RunnableAdapter::new(plugin, ctx);
    let (tx, rx) = bounded(capacity);
    adapter.start(tx).into_result().map_err(PluginError::from)?;
    Ok(RunnableHarness { adapter, rx })
}

impl<P: Runnable> RunnableHarness<P> {
    /// The plugin instance.
    pub fn plugin(&self) -> &P {
        &self.adapter.plugin
    }

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
}
