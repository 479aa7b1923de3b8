//! Misbehaving vendor plugins, for the host's guarantees:
//!
//! - `acme.hang` (handler, phase `publish`): never returns from a message whose
//!   name contains `hang_on`; publishes (accepts) every other one.
//! - `acme.crash` (runnable): sends `count` events, then panics in `run`.
//! - `acme.fault` (handler, phase `publish`): on a message whose name contains `on`,
//!   faults the way native code does, by `fault`: `segv` (a write through a null
//!   pointer), `abort` or `exit` (status 70); publishes every other message.

use std::time::Duration;

use gordon_plugin_api::{
    export_plugins, Action, EventMessage, MessageHandler, Plugin, PluginContext, PluginError,
    RecordType, ResourceRecord, RunContext, Runnable,
};
use serde::Deserialize;

/// `acme.hang`.
pub struct Hang {
    hang_on: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangConfig {
    hang_on: String,
}

impl Plugin for Hang {
    const NAME: &'static str = "acme.hang";
    const DESCRIPTION: &'static str = "Never returns from some messages";
    type Config = HangConfig;
    fn new(cfg: HangConfig, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Hang {
            hang_on: cfg.hang_on,
        })
    }
}

impl MessageHandler for Hang {
    const PHASE: &'static str = "publish";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        if msg.record().name().contains(self.hang_on.as_str()) {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Ok(())
    }
}

/// `acme.crash`.
pub struct Crash {
    count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashConfig {
    #[serde(default)]
    count: u32,
}

impl Plugin for Crash {
    const NAME: &'static str = "acme.crash";
    const DESCRIPTION: &'static str = "Sends a few events, then panics in run";
    type Config = CrashConfig;
    fn new(cfg: CrashConfig, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Crash { count: cfg.count })
    }
}

impl Runnable for Crash {
    async fn run(&self, ctx: RunContext) -> Result<(), PluginError> {
        for i in 0..self.count {
            let rec = ResourceRecord::new(
                &format!("crash{i}.example.com."),
                RecordType::A,
                ["10.9.9.9"],
            );
            let _ = ctx
                .events
                .send(ctx.events.message(Action::Additions, rec))
                .await;
        }
        panic!("acme.crash gave up after {} events", self.count);
    }

    fn cleanup(&self, _msg: &EventMessage) -> Result<(), PluginError> {
        Ok(())
    }
}

/// `acme.fault`.
pub struct Fault {
    fault: FaultKind,
    on: String,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Segv,
    Abort,
    Exit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    fault: FaultKind,
    on: String,
}

impl Plugin for Fault {
    const NAME: &'static str = "acme.fault";
    const DESCRIPTION: &'static str = "Segfaults, aborts or exits on some messages";
    type Config = FaultConfig;
    fn new(cfg: FaultConfig, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Fault {
            fault: cfg.fault,
            on: cfg.on,
        })
    }
}

impl MessageHandler for Fault {
    const PHASE: &'static str = "publish";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        if !msg.record().name().contains(self.on.as_str()) {
            return Ok(());
        }
        match self.fault {
            FaultKind::Segv => {
                // SAFETY: none — this is the bug the fixture stands for. A volatile
                // write through a null pointer faults (SIGSEGV) and is not optimised
                // away; only tests that expect the process to die load this plugin.
                unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
                Ok(())
            }
            FaultKind::Abort => std::process::abort(),
            FaultKind::Exit => std::process::exit(70),
        }
    }
}

export_plugins!(handler Hang, runnable Crash, handler Fault);
