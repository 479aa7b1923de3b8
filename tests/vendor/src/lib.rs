//! Misbehaving vendor plugins, for the host's guarantees:
//!
//! - `acme.hang` (handler, phase `publish`): never returns from a message whose
//!   name contains `hang_on`; publishes (accepts) every other one.
//! - `acme.crash` (runnable): sends `count` events, then panics in `run`.
//! - `acme.fault` (handler, phase `publish`): on a message whose name contains `on`
//!   (or, with `one_in = N`, on one message in N at random), faults the way native
//!   code does, by `fault`: `segv` (a write through a null pointer), `abort`,
//!   `exit` (status 70), `hang` (never returns) or `oom` (allocates and touches
//!   memory until the allocator fails); publishes every other message.
//! - `acme.flaky` (handler, phase `screen`): the same, one phase earlier, so that a
//!   route can put it before a real publisher.
//! - `acme.live` (handler, phase `screen`, plugin-api 1.3's live hooks): sets each
//!   message's TTL to its `ttl`, applies a new `ttl` live, offers the actions
//!   `state` (its `ttl` and which instance it is) and `leave` (asks the host to
//!   stop it), writes every host event to `events_file` as JSON lines, and its
//!   `validate_dependencies` checks that `events_file`'s directory exists.

use std::time::Duration;

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::serde_json;
use gordon_plugin_api::{
    export_plugins, Action, ActionSpec, ConfigChange, ConfigKey, EventMessage, HostEvent,
    MessageHandler, Param, ParamType, Plugin, PluginContext, PluginError, RecordType,
    ResourceRecord, RunContext, Runnable,
};
use serde::Deserialize;

/// `acme.hang`.
pub struct Hang {
    hang_on: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HangConfig {
    /// Never return from a message whose name contains this.
    hang_on: String,
}

impl Plugin for Hang {
    const NAME: &'static str = "acme.hang";
    const DESCRIPTION: &'static str = "Never returns from some messages";
    type Config = HangConfig;
    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }
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

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashConfig {
    /// How many events to send before panicking.
    #[serde(default)]
    count: u32,
}

impl Plugin for Crash {
    const NAME: &'static str = "acme.crash";
    const DESCRIPTION: &'static str = "Sends a few events, then panics in run";
    type Config = CrashConfig;
    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }
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
    one_in: u64,
    rng: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Segv,
    Abort,
    Exit,
    Hang,
    Oom,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// How to fault: a write through a null pointer, abort, exit 70, hang, or OOM.
    fault: FaultKind,
    /// Fault on a message whose name contains this.
    #[serde(default)]
    on: String,
    /// Fault on one message in this many, at random, whatever its name (0: never).
    #[serde(default)]
    one_in: u64,
}

impl Plugin for Fault {
    const NAME: &'static str = "acme.fault";
    const DESCRIPTION: &'static str =
        "Segfaults, aborts, exits, hangs or runs out of memory on some messages";
    type Config = FaultConfig;
    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }
    fn validate_config(cfg: &FaultConfig) -> Result<(), PluginError> {
        if cfg.on.is_empty() && cfg.one_in == 0 {
            return Err(PluginError::new("set `on` or `one_in`"));
        }
        Ok(())
    }
    fn new(cfg: FaultConfig, _: PluginContext) -> Result<Self, PluginError> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32
            | 1;
        Ok(Fault {
            fault: cfg.fault,
            on: cfg.on,
            one_in: cfg.one_in,
            rng: std::sync::atomic::AtomicU64::new(seed),
        })
    }
}

impl Fault {
    /// Whether this message is the one to fault on.
    fn hits(&self, msg: &EventMessage) -> bool {
        if self.one_in > 0 {
            // xorshift64: one message in `one_in`, whatever its name, so a
            // redelivered message is not doomed to fault again.
            use std::sync::atomic::Ordering;
            let mut x = self.rng.load(Ordering::Relaxed);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng.store(x, Ordering::Relaxed);
            return x % self.one_in == 0;
        }
        msg.record().name().contains(self.on.as_str())
    }

    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        if !self.hits(msg) {
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
            FaultKind::Hang => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            FaultKind::Oom => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    // 64 MiB at a time, every page written, until the allocator
                    // fails (a memory limit) and the process aborts.
                    held.push(vec![1u8; 64 << 20]);
                    std::hint::black_box(&held);
                }
            }
        }
    }
}

impl MessageHandler for Fault {
    const PHASE: &'static str = "publish";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        Fault::handle(self, msg)
    }
}

/// `acme.flaky`: `acme.fault` in phase `screen`.
pub struct Flaky(Fault);

impl Plugin for Flaky {
    const NAME: &'static str = "acme.flaky";
    const DESCRIPTION: &'static str = "acme.fault, in phase screen";
    type Config = FaultConfig;
    fn config_keys() -> Vec<ConfigKey> {
        Fault::config_keys()
    }
    fn validate_config(cfg: &FaultConfig) -> Result<(), PluginError> {
        Fault::validate_config(cfg)
    }
    fn new(cfg: FaultConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        Fault::new(cfg, ctx).map(Flaky)
    }
}

impl MessageHandler for Flaky {
    const PHASE: &'static str = "screen";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        self.0.handle(msg)
    }
}

/// `acme.live`.
pub struct Live {
    ttl: std::sync::atomic::AtomicU32,
    event_delay: Duration,
    instance: u64,
    events: Option<std::sync::Mutex<std::fs::File>>,
    ctx: PluginContext,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// The TTL every message gets (at least 1); a reload applies it live.
    ttl: u32,
    /// A file every host event is appended to, one JSON line each.
    events_file: Option<std::path::PathBuf>,
    /// How long each host event takes it (a slow subscriber).
    #[serde(default)]
    event_delay_ms: u64,
}

static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Plugin for Live {
    const NAME: &'static str = "acme.live";
    const DESCRIPTION: &'static str =
        "Sets TTLs; applies config live, offers actions, logs host events";
    type Config = LiveConfig;
    const HOST_EVENTS: &'static [&'static str] = &["*"];

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(cfg: &LiveConfig) -> Result<(), PluginError> {
        if cfg.ttl == 0 {
            return Err(PluginError::new("`ttl` must be at least 1"));
        }
        Ok(())
    }

    fn validate_dependencies(cfg: &LiveConfig) -> Result<(), PluginError> {
        match cfg.events_file.as_ref().and_then(|f| f.parent()) {
            Some(dir) if !dir.is_dir() => Err(PluginError::new(format!(
                "events_file: directory {} does not exist",
                dir.display()
            ))),
            _ => Ok(()),
        }
    }

    fn actions() -> Vec<ActionSpec> {
        vec![
            ActionSpec::new("state", "Its ttl and which instance it is"),
            ActionSpec::new("leave", "Asks the host to stop it").param(Param::required(
                "reason",
                ParamType::String,
                "Why",
            )),
        ]
    }

    fn new(cfg: LiveConfig, ctx: PluginContext) -> Result<Self, PluginError> {
        let events = match &cfg.events_file {
            Some(path) => Some(std::sync::Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| PluginError::new(format!("events_file: {e}")))?,
            )),
            None => None,
        };
        Ok(Live {
            ttl: cfg.ttl.into(),
            event_delay: Duration::from_millis(cfg.event_delay_ms),
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            events,
            ctx,
        })
    }

    fn apply_config(&self, cfg: LiveConfig) -> Result<ConfigChange, PluginError> {
        if cfg.events_file.is_some() {
            // Reopening the file is a restart's job.
            return Ok(ConfigChange::Restart);
        }
        self.ttl
            .store(cfg.ttl, std::sync::atomic::Ordering::Relaxed);
        Ok(ConfigChange::Applied)
    }

    fn invoke(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, PluginError> {
        match action {
            "state" => Ok(serde_json::json!({
                "ttl": self.ttl.load(std::sync::atomic::Ordering::Relaxed),
                "instance": self.instance,
                "pid": std::process::id(),
            })),
            "leave" => {
                let reason = params.get("reason").and_then(|r| r.as_str()).unwrap_or("");
                Ok(serde_json::json!({"asked": self.ctx.leave(reason)}))
            }
            other => Err(PluginError::new(format!("no action `{other}`"))),
        }
    }

    fn on_host_event(&self, event: &HostEvent) {
        std::thread::sleep(self.event_delay);
        if let Some(file) = &self.events {
            use std::io::Write;
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(file, "{}", event.json);
        }
    }
}

impl MessageHandler for Live {
    const PHASE: &'static str = "screen";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        msg.record_mut()
            .set_ttl(self.ttl.load(std::sync::atomic::Ordering::Relaxed));
        Ok(())
    }
}

export_plugins!(handler Hang, runnable Crash, handler Fault, handler Flaky, handler Live);
