//! The `extern "C"` shims between the host and the vendor's traits.
//!
//! Every function the host can call lands here first. Each one catches panics
//! (abi_stable would otherwise `exit(1)` the whole host, and a panic unwinding out
//! of an `extern "C"` function aborts it), records which plugin is running on the
//! thread (for log forwarding), and converts between the FFI types and the vendor's.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi_stable::prefix_type::{PrefixTypeTrait, WithMetadata};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSlice, RSliceMut, RStr, RString, RVec};
use serde::de::DeserializeOwned;

use crate::abi::{
    AuthorityBox, AuthorityObj, AuthorityObj_TO, PublisherBox, PublisherObj, PublisherObj_TO,
    ReconcilerBox, ReconcilerObj, ReconcilerObj_TO, KIND_AUTHORITY, KIND_PUBLISHER,
    KIND_RECONCILER,
};
use crate::abi::{
    ControlBox, ControlObj, ControlObj_TO, Created, DiscoveryObj, DiscoveryObj_TO, KIND_DISCOVERY,
};
use crate::abi::{
    Failure, HandlerBox, HandlerObj, HandlerObj_TO, HostServicesRef, Library, LibraryRef,
    MetricEvent, MetricKind, PluginEntry, PluginEntryRef, RelayBox, RelayObj, RelayObj_TO,
    RunnableBox, RunnableObj, RunnableObj_TO, KIND_MESSAGE_HANDLER, KIND_METRIC_RELAY,
    KIND_RUNNABLE,
};
use crate::channel::{FfiReceiver, Sender};
use crate::context::{EventSender, PluginContext, RunContext, Shutdown};
use crate::discovery::{Discovery, MembershipSender, Service};
use crate::error::{FfiError, PluginError};
use crate::hostlink;
use crate::janitor::{Authority, Inbox, Outbox, Publisher, Reconciler, ZoneRecords};
use crate::live::{ConfigChange, Definition, HostEvent};
use crate::message::{EventMessage, Phase};
use crate::plugin::{Failures, MessageHandler, MetricRelay, Plugin, Runnable};

/// Runs `f` as plugin `name`, turning a panic into an error.
pub(crate) fn guard<T>(
    name: &'static str,
    what: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> Result<T, PluginError> {
    let prev = hostlink::set_current_plugin(name);
    let result = catch_unwind(AssertUnwindSafe(f));
    hostlink::restore_current_plugin(prev);
    match result {
        Ok(r) => r,
        Err(payload) => Err(PluginError::from_panic(what, &*payload)),
    }
}

fn to_ffi<T>(r: Result<T, PluginError>) -> RResult<T, FfiError> {
    r.map_err(FfiError::from).into()
}

/// Deserialises a plugin's configuration, naming the key that is wrong.
///
/// The message has one of two forms, which the host reads back to name the file
/// and table the key was set in: `invalid configuration at `PATH`: WHAT` with the
/// path written as TOML writes keys (`zone`, `servers[0].port`,
/// `zones."example.com".ttl`), or `invalid configuration: WHAT` for the table as a
/// whole (a missing key).
pub(crate) fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, PluginError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| PluginError::new(format!("configuration is not a table: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = key_path(e.path());
        if path.is_empty() {
            PluginError::new(format!("invalid configuration: {}", e.inner()))
        } else {
            PluginError::new(format!("invalid configuration at `{path}`: {}", e.inner()))
        }
    })
}

/// A path into the configuration as TOML writes it: bare keys joined with dots,
/// other keys quoted, array positions in brackets.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let key = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } | Segment::Enum { variant: key } => Some(key.as_str()),
            Segment::Unknown => None,
        };
        if !out.is_empty() {
            out.push('.');
        }
        let Some(key) = key else {
            out.push('?');
            continue;
        };
        let bare = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if bare {
            out.push_str(key);
        } else {
            out.push('"');
            out.push_str(&key.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        }
    }
    out
}

/// Parses the configuration once and runs [`Plugin::validate_config`] on it,
/// guarded.
fn checked_config<P: Plugin>(config: &str) -> Result<P::Config, PluginError> {
    guard(P::NAME, "validate_config", || {
        let cfg = parse_config::<P::Config>(config)?;
        P::validate_config(&cfg)?;
        Ok(cfg)
    })
}

/// Builds the plugin from a checked configuration, guarded.
fn build<P: Plugin>(cfg: P::Config) -> Result<(Arc<P>, PluginContext), PluginError> {
    let ctx = PluginContext::new(P::NAME);
    let plugin = guard(P::NAME, "new", || P::new(cfg, ctx.clone()))?;
    Ok((Arc::new(plugin), ctx))
}

/// Parses the configuration once, validates it and builds the plugin, all
/// guarded: what the `new_*` constructors (kept for hosts older than 1.3) and the
/// `testing` harness run. Since 1.3 `new` need not validate its
/// configuration itself: every path to it has.
pub(crate) fn construct<P: Plugin>(config: &str) -> Result<(Arc<P>, PluginContext), PluginError> {
    build::<P>(checked_config::<P>(config)?)
}

/// [`construct`], with [`Plugin::validate_dependencies`] between validating and
/// building: what [`PluginEntry::create`] runs.
fn construct_checked<P: Plugin>(config: &str) -> Result<(Arc<P>, PluginContext), PluginError> {
    let cfg = checked_config::<P>(config)?;
    // A server that is down when the host starts must not keep the plugin (and,
    // without core.debug, the host) from starting: the plugin retries as it
    // would later. The check's verdict is logged; `gordon check --connect`
    // makes it an error.
    if let Err(error) = guard(P::NAME, "validate_dependencies", || {
        P::validate_dependencies(&cfg)
    }) {
        tracing::warn!(%error, "Dependency check failed; starting the plugin anyway (`gordon check --connect` reports it as an error).");
    }
    build::<P>(cfg)
}

/// The live controls of any plugin.
struct ControlAdapter<P>(Arc<P>);

impl<P: Plugin> ControlObj for ControlAdapter<P> {
    fn apply_config(&self, config: RStr<'_>) -> RResult<bool, FfiError> {
        to_ffi(guard(P::NAME, "apply_config", || {
            let cfg = parse_config::<P::Config>(config.as_str())?;
            P::validate_config(&cfg)?;
            Ok(self.0.apply_config(cfg)? == ConfigChange::Applied)
        }))
    }

    fn invoke(&self, action: RStr<'_>, params: RStr<'_>) -> RResult<RString, FfiError> {
        to_ffi(guard(P::NAME, "invoke", || {
            let params: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(params.as_str())
                    .map_err(|e| PluginError::new(format!("parameters are not an object: {e}")))?;
            let result = self.0.invoke(action.as_str(), &params)?;
            Ok(RString::from(result.to_string()))
        }))
    }

    fn host_event(&self, event: RStr<'_>) {
        let result = guard(P::NAME, "on_host_event", || {
            if let Some(event) = HostEvent::from_json(event.as_str()) {
                self.0.on_host_event(&event);
            }
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(%error, "Host event handler failed.");
        }
    }
}

pub(crate) fn control<P: Plugin>(plugin: &Arc<P>) -> ControlBox {
    ControlObj_TO::from_value(ControlAdapter(Arc::clone(plugin)), TD_Opaque)
}

/// A [`Created`] holding nothing but its control; the caller sets its kind.
fn created(control: ControlBox) -> Created {
    Created {
        runnable: ROption::RNone,
        handler: ROption::RNone,
        relay: ROption::RNone,
        authority: ROption::RNone,
        reconciler: ROption::RNone,
        publisher: ROption::RNone,
        discovery: ROption::RNone,
        control,
    }
}

/// Builds the plugin once with [`construct_checked`] and puts its kind object in.
fn create_with<P: Plugin>(
    config: RStr<'_>,
    set: impl FnOnce(&mut Created, Arc<P>, PluginContext),
) -> RResult<Created, FfiError> {
    to_ffi(
        construct_checked::<P>(config.as_str()).map(|(plugin, ctx)| {
            let mut out = created(control(&plugin));
            set(&mut out, plugin, ctx);
            out
        }),
    )
}

extern "C" fn create_runnable<P: Runnable>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, ctx| {
        out.runnable = ROption::RSome(RunnableObj_TO::from_value(
            RunnableAdapter::new(plugin, ctx),
            TD_Opaque,
        ));
    })
}

extern "C" fn create_handler<P: MessageHandler>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, _| {
        out.handler = ROption::RSome(HandlerObj_TO::from_value(HandlerAdapter(plugin), TD_Opaque));
    })
}

extern "C" fn create_relay<P: MetricRelay>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, _| {
        out.relay = ROption::RSome(RelayObj_TO::from_value(RelayAdapter(plugin), TD_Opaque));
    })
}

extern "C" fn create_authority<P: Authority>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, ctx| {
        out.authority = ROption::RSome(AuthorityObj_TO::from_value(
            JanitorAdapter { plugin, ctx },
            TD_Opaque,
        ));
    })
}

extern "C" fn create_reconciler<P: Reconciler>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, ctx| {
        out.reconciler = ROption::RSome(ReconcilerObj_TO::from_value(
            JanitorAdapter { plugin, ctx },
            TD_Opaque,
        ));
    })
}

extern "C" fn create_publisher<P: Publisher>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, ctx| {
        out.publisher = ROption::RSome(PublisherObj_TO::from_value(
            JanitorAdapter { plugin, ctx },
            TD_Opaque,
        ));
    })
}

extern "C" fn create_discovery<P: Discovery>(config: RStr<'_>) -> RResult<Created, FfiError> {
    create_with::<P>(config, |out, plugin, ctx| {
        out.discovery = ROption::RSome(DiscoveryObj_TO::from_value(
            JanitorAdapter { plugin, ctx },
            TD_Opaque,
        ));
    })
}

fn service(json: RStr<'_>) -> Result<Service, PluginError> {
    serde_json::from_str(json.as_str())
        .map_err(|e| PluginError::new(format!("malformed service: {e}")))
}

impl<P: Discovery> DiscoveryObj for JanitorAdapter<P> {
    fn connect(&self) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "connect", || self.plugin.connect())
    }
    fn disconnect(&self, deadline_ms: u64) -> RResult<(), FfiError> {
        let deadline = Duration::from_millis(deadline_ms);
        block::<P, _>(&self.ctx, "disconnect", || async move {
            tokio::time::timeout(deadline, self.plugin.disconnect())
                .await
                .unwrap_or_else(|_| {
                    Err(PluginError::new(format!(
                        "disconnect did not finish within {deadline_ms} ms"
                    )))
                })
        })
    }
    fn start_watching(&self, cluster: RStr<'_>, updates: Sender<RString>) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "start_watching", || {
            self.plugin
                .start_watching(cluster.as_str(), MembershipSender::new(updates))
        })
    }
    fn stop_watching(&self, cluster: RStr<'_>) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "stop_watching", || {
            self.plugin.stop_watching(cluster.as_str())
        })
    }
    fn report_up(&self, json: RStr<'_>) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "report_up", || async move {
            self.plugin.report_up(&service(json)?).await
        })
    }
    fn report_down(&self, json: RStr<'_>) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "report_down", || async move {
            self.plugin.report_down(&service(json)?).await
        })
    }
}

/// The entry of a discovery plugin.
#[doc(hidden)]
pub fn discovery_entry<P: Discovery>(version: &'static str) -> PluginEntryRef {
    leak_entry(base_entry::<P>(
        KIND_DISCOVERY,
        "",
        version,
        create_discovery::<P>,
    ))
}

extern "C" fn define<P: Plugin>() -> RString {
    let definition = guard(P::NAME, "actions", || {
        Ok(Definition {
            actions: P::actions(),
            events: P::HOST_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
            config: P::config_keys(),
        })
    });
    match definition {
        Ok(d) => serde_json::to_string(&d).unwrap_or_default().into(),
        Err(error) => {
            tracing::error!(%error, "Cannot list the plugin's actions.");
            RString::from("{}")
        }
    }
}

#[doc(hidden)]
pub extern "C" fn validate_dependencies<P: Plugin>(config: RStr<'_>) -> RResult<(), FfiError> {
    to_ffi(guard(P::NAME, "validate_dependencies", || {
        let cfg = parse_config::<P::Config>(config.as_str())?;
        P::validate_config(&cfg)?;
        P::validate_dependencies(&cfg)
    }))
}

#[doc(hidden)]
pub extern "C" fn validate_config<P: Plugin>(config: RStr<'_>) -> RResult<(), FfiError> {
    to_ffi(guard(P::NAME, "validate_config", || {
        let cfg = parse_config::<P::Config>(config.as_str())?;
        P::validate_config(&cfg)
    }))
}

#[doc(hidden)]
pub extern "C" fn new_runnable<P: Runnable>(config: RStr<'_>) -> RResult<RunnableBox, FfiError> {
    to_ffi(construct::<P>(config.as_str()).map(|(plugin, ctx)| {
        RunnableObj_TO::from_value(RunnableAdapter::new(plugin, ctx), TD_Opaque)
    }))
}

#[doc(hidden)]
pub extern "C" fn new_handler<P: MessageHandler>(
    config: RStr<'_>,
) -> RResult<HandlerBox, FfiError> {
    to_ffi(
        construct::<P>(config.as_str())
            .map(|(plugin, _)| HandlerObj_TO::from_value(HandlerAdapter(plugin), TD_Opaque)),
    )
}

#[doc(hidden)]
pub extern "C" fn new_relay<P: MetricRelay>(config: RStr<'_>) -> RResult<RelayBox, FfiError> {
    to_ffi(
        construct::<P>(config.as_str())
            .map(|(plugin, _)| RelayObj_TO::from_value(RelayAdapter(plugin), TD_Opaque)),
    )
}

pub(crate) struct RunnableAdapter<P> {
    pub(crate) plugin: Arc<P>,
    pub(crate) ctx: PluginContext,
    stop: tokio::sync::watch::Sender<bool>,
    shutdown: Shutdown,
    /// The `run` task; it ends with `run`'s error text, if any.
    task: Mutex<Option<tokio::task::JoinHandle<Result<(), String>>>>,
}

impl<P> RunnableAdapter<P> {
    pub(crate) fn new(plugin: Arc<P>, ctx: PluginContext) -> Self {
        let (stop, shutdown) = Shutdown::new();
        RunnableAdapter {
            plugin,
            ctx,
            stop,
            shutdown,
            task: Mutex::new(None),
        }
    }
}

impl<P: Runnable> RunnableObj for RunnableAdapter<P> {
    fn start(&self, events: Sender<EventMessage>) -> RResult<(), FfiError> {
        to_ffi(guard(P::NAME, "start", || {
            let run_ctx = RunContext {
                events: EventSender::new(events, Phase::new(P::START_PHASE)),
                shutdown: self.shutdown.clone(),
            };
            let plugin = Arc::clone(&self.plugin);
            let handle = self.ctx.runtime_owned().spawn(async move {
                plugin.run(run_ctx).await.map_err(|error| {
                    tracing::error!(%error, "Runnable stopped with an error.");
                    error.to_string()
                })
            });
            *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            Ok(())
        }))
    }

    fn cleanup(&self, batch: RSlice<'_, EventMessage>) -> RResult<(), FfiError> {
        to_ffi(guard(P::NAME, "cleanup", || {
            self.plugin.cleanup_batch(batch.as_slice());
            Ok(())
        }))
    }

    /// Stops `run` and then calls the plugin's `shutdown`, both within one
    /// `deadline_ms`. A `run` that failed, panicked or would not stop is reported as
    /// this call's error, so the host knows the source did not end cleanly.
    fn shutdown(&self, deadline_ms: u64) -> RResult<(), FfiError> {
        to_ffi(guard(P::NAME, "shutdown", || {
            let _ = self.stop.send(true);
            let end = std::time::Instant::now() + Duration::from_millis(deadline_ms);
            let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
            let rt = self.ctx.runtime_owned();
            let mut run_problem = None;
            if let Some(task) = task {
                let abort = task.abort_handle();
                match rt.block_on(async { tokio::time::timeout_at(end.into(), task).await }) {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(error))) => run_problem = Some(format!("run failed: {error}")),
                    Ok(Err(join)) if join.is_panic() => {
                        let payload = join.into_panic();
                        let error = PluginError::from_panic("run", &*payload);
                        tracing::error!(%error, "Runnable panicked in run.");
                        run_problem = Some(error.to_string());
                    }
                    Ok(Err(_)) => {}
                    Err(_) => {
                        abort.abort();
                        run_problem = Some(format!("run did not stop within {deadline_ms} ms"));
                    }
                }
            }
            let stopped = rt.block_on(async {
                tokio::time::timeout_at(end.into(), self.plugin.shutdown())
                    .await
                    .unwrap_or_else(|_| {
                        Err(PluginError::new(format!(
                            "shutdown did not finish within {deadline_ms} ms"
                        )))
                    })
            });
            match (run_problem, stopped) {
                (None, stopped) => stopped,
                (Some(run), Ok(())) => Err(PluginError::new(run)),
                (Some(run), Err(e)) => Err(PluginError::new(format!("{run}; {e}"))),
            }
        }))
    }
}

pub(crate) struct HandlerAdapter<P>(pub(crate) Arc<P>);

impl<P: MessageHandler> HandlerObj for HandlerAdapter<P> {
    fn handle_batch(&self, mut batch: RSliceMut<'_, EventMessage>) -> RVec<Failure> {
        let mut failures = Failures::default();
        let len = batch.len();
        let result = guard(P::NAME, "handle_batch", || {
            self.0.handle_batch(batch.as_mut_slice(), &mut failures);
            Ok(())
        });
        let mut out: RVec<Failure> = failures
            .0
            .into_iter()
            .filter(|(i, _)| *i < len)
            .map(|(i, e)| Failure {
                index: i as u32,
                error: e.into(),
            })
            .collect();
        if let Err(e) = result {
            // A panic outside the per-message catch (in a vendor's own
            // `handle_batch`): fail every message not already failed.
            let err = FfiError::from(e);
            let failed: std::collections::HashSet<u32> = out.iter().map(|f| f.index).collect();
            for i in (0..len as u32).filter(|i| !failed.contains(i)) {
                out.push(Failure {
                    index: i,
                    error: err.clone(),
                });
            }
        }
        out
    }

    fn shutdown(&self, _deadline_ms: u64) -> RResult<(), FfiError> {
        to_ffi(guard(P::NAME, "shutdown", || self.0.shutdown()))
    }
}

struct RelayAdapter<P>(Arc<P>);

impl<P: MetricRelay> RelayObj for RelayAdapter<P> {
    fn emit(&self, event: &MetricEvent<'_>) {
        let result = guard(P::NAME, "emit", || {
            let tags: Vec<(&str, &str)> = event
                .tags
                .iter()
                .map(|t| (t.key.as_str(), t.value.as_str()))
                .collect();
            let name = event.name.as_str();
            match event.kind {
                MetricKind::Incr => self.0.incr(name, event.value, &tags),
                MetricKind::Timer => self.0.timer(name, event.value, &tags),
                MetricKind::Set => self.0.set(name, event.value, &tags),
            }
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(%error, "Metric relay failed.");
        }
    }

    fn cleanup(&self, _deadline_ms: u64) -> RResult<(), FfiError> {
        to_ffi(guard(P::NAME, "cleanup", || self.0.cleanup()))
    }
}

fn leak_entry(entry: PluginEntry) -> PluginEntryRef {
    entry.leak_into_prefix()
}

fn base_entry<P: Plugin>(
    kind: &'static str,
    phase: &'static str,
    version: &'static str,
    create: extern "C" fn(RStr<'_>) -> RResult<Created, FfiError>,
) -> PluginEntry {
    PluginEntry {
        name: RStr::from_str(P::NAME),
        kind: RStr::from_str(kind),
        phase: RStr::from_str(phase),
        version: RStr::from_str(version),
        description: RStr::from_str(P::DESCRIPTION),
        validate_config: validate_config::<P>,
        new_runnable: ROption::RNone,
        new_handler: ROption::RNone,
        new_relay: ROption::RNone,
        new_authority: ROption::RNone,
        new_reconciler: ROption::RNone,
        new_publisher: ROption::RNone,
        define: define::<P>,
        validate_dependencies: validate_dependencies::<P>,
        create,
    }
}

/// The entry of a runnable plugin.
#[doc(hidden)]
pub fn runnable_entry<P: Runnable>(version: &'static str) -> PluginEntryRef {
    let mut e = base_entry::<P>(KIND_RUNNABLE, P::START_PHASE, version, create_runnable::<P>);
    e.new_runnable = ROption::RSome(new_runnable::<P>);
    leak_entry(e)
}

/// The entry of a message-handler plugin.
#[doc(hidden)]
pub fn handler_entry<P: MessageHandler>(version: &'static str) -> PluginEntryRef {
    let mut e = base_entry::<P>(KIND_MESSAGE_HANDLER, P::PHASE, version, create_handler::<P>);
    e.new_handler = ROption::RSome(new_handler::<P>);
    leak_entry(e)
}

/// The entry of a metric-relay plugin.
#[doc(hidden)]
pub fn relay_entry<P: MetricRelay>(version: &'static str) -> PluginEntryRef {
    let mut e = base_entry::<P>(KIND_METRIC_RELAY, "", version, create_relay::<P>);
    e.new_relay = ROption::RSome(new_relay::<P>);
    leak_entry(e)
}

/// Runs a janitor plugin's async `run` or `cleanup` on its runtime, guarded.
fn block<P: Plugin, F: std::future::Future<Output = Result<(), PluginError>>>(
    ctx: &PluginContext,
    what: &str,
    fut: impl FnOnce() -> F,
) -> RResult<(), FfiError> {
    to_ffi(guard(P::NAME, what, || ctx.runtime_owned().block_on(fut())))
}

fn block_with_deadline<P: Plugin, F: std::future::Future<Output = Result<(), PluginError>>>(
    ctx: &PluginContext,
    deadline_ms: u64,
    fut: impl FnOnce() -> F,
) -> RResult<(), FfiError> {
    let deadline = Duration::from_millis(deadline_ms);
    block::<P, _>(ctx, "cleanup", || async move {
        tokio::time::timeout(deadline, fut())
            .await
            .unwrap_or_else(|_| {
                Err(PluginError::new(format!(
                    "cleanup did not finish within {deadline_ms} ms"
                )))
            })
    })
}

struct JanitorAdapter<P> {
    plugin: Arc<P>,
    ctx: PluginContext,
}

impl<P: Authority> AuthorityObj for JanitorAdapter<P> {
    fn run(&self, rrsets: Sender<ZoneRecords>) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "run", || self.plugin.run(Outbox::new(rrsets)))
    }
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError> {
        block_with_deadline::<P, _>(&self.ctx, deadline_ms, || Authority::cleanup(&*self.plugin))
    }
}

impl<P: Reconciler> ReconcilerObj for JanitorAdapter<P> {
    fn run(
        &self,
        rrsets: FfiReceiver<ZoneRecords>,
        changes: Sender<EventMessage>,
    ) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "run", || {
            self.plugin.run(Inbox::new(rrsets), Outbox::new(changes))
        })
    }
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError> {
        block_with_deadline::<P, _>(&self.ctx, deadline_ms, || {
            Reconciler::cleanup(&*self.plugin)
        })
    }
}

impl<P: Publisher> PublisherObj for JanitorAdapter<P> {
    fn run(&self, changes: FfiReceiver<EventMessage>) -> RResult<(), FfiError> {
        block::<P, _>(&self.ctx, "run", || self.plugin.run(Inbox::new(changes)))
    }
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError> {
        block_with_deadline::<P, _>(&self.ctx, deadline_ms, || Publisher::cleanup(&*self.plugin))
    }
}

#[doc(hidden)]
pub extern "C" fn new_authority<P: Authority>(config: RStr<'_>) -> RResult<AuthorityBox, FfiError> {
    to_ffi(construct::<P>(config.as_str()).map(|(plugin, ctx)| {
        AuthorityObj_TO::from_value(JanitorAdapter { plugin, ctx }, TD_Opaque)
    }))
}

#[doc(hidden)]
pub extern "C" fn new_reconciler<P: Reconciler>(
    config: RStr<'_>,
) -> RResult<ReconcilerBox, FfiError> {
    to_ffi(construct::<P>(config.as_str()).map(|(plugin, ctx)| {
        ReconcilerObj_TO::from_value(JanitorAdapter { plugin, ctx }, TD_Opaque)
    }))
}

#[doc(hidden)]
pub extern "C" fn new_publisher<P: Publisher>(config: RStr<'_>) -> RResult<PublisherBox, FfiError> {
    to_ffi(construct::<P>(config.as_str()).map(|(plugin, ctx)| {
        PublisherObj_TO::from_value(JanitorAdapter { plugin, ctx }, TD_Opaque)
    }))
}

/// The entry of a janitor authority plugin.
#[doc(hidden)]
pub fn authority_entry<P: Authority>(version: &'static str) -> PluginEntryRef {
    let mut e = base_entry::<P>(KIND_AUTHORITY, "", version, create_authority::<P>);
    e.new_authority = ROption::RSome(new_authority::<P>);
    leak_entry(e)
}

/// The entry of a janitor reconciler plugin.
#[doc(hidden)]
pub fn reconciler_entry<P: Reconciler>(version: &'static str) -> PluginEntryRef {
    let mut e = base_entry::<P>(KIND_RECONCILER, "", version, create_reconciler::<P>);
    e.new_reconciler = ROption::RSome(new_reconciler::<P>);
    leak_entry(e)
}

/// The entry of a janitor publisher plugin.
#[doc(hidden)]
pub fn publisher_entry<P: Publisher>(version: &'static str) -> PluginEntryRef {
    let mut e = base_entry::<P>(KIND_PUBLISHER, "", version, create_publisher::<P>);
    e.new_publisher = ROption::RSome(new_publisher::<P>);
    leak_entry(e)
}

extern "C" fn init_library(host: HostServicesRef) -> RResult<(), FfiError> {
    let default_name = ENTRIES
        .get()
        .and_then(|e| e.first())
        .map_or("plugin", |e| e.name().as_str());
    to_ffi(guard(default_name, "init", || {
        hostlink::install(host, default_name);
        Ok(())
    }))
}

static ENTRIES: std::sync::OnceLock<&'static [PluginEntryRef]> = std::sync::OnceLock::new();

/// Builds the library's root module: runs the vendor's `init` hook, then collects the
/// entries. Called by [`export_plugins!`](crate::export_plugins) inside abi_stable's
/// root-module constructor; a panic in either is caught here and reported to the
/// host, with its message, as a load error.
#[doc(hidden)]
pub fn library(
    init: fn(),
    entries: fn() -> Vec<PluginEntryRef>,
) -> Result<LibraryRef, abi_stable::std_types::RBoxError> {
    hostlink::install_panic_hook();
    let built = catch_unwind(|| {
        init();
        entries()
    });
    let entries = match built {
        Ok(entries) => entries,
        Err(payload) => {
            let err = PluginError::from_panic("the library constructor", &*payload);
            return Err(abi_stable::std_types::RBoxError::new(err));
        }
    };
    let entries: &'static [PluginEntryRef] = ENTRIES.get_or_init(|| entries.leak());
    let module = Library {
        init: init_library,
        plugins: RSlice::from_slice(entries),
    };
    let with_meta: &'static WithMetadata<Library> = Box::leak(Box::new(WithMetadata::new(module)));
    Ok(LibraryRef(with_meta.static_as_prefix()))
}

/// Exports a library's plugins: the one macro a vendor calls, once per cdylib.
///
/// List each plugin type with its kind (`runnable`, `handler`, `relay`, for the
/// janitor `authority`, `reconciler`, `publisher`, or `discovery`).
/// Optionally start with `init = path::to::fn;`, a `fn()` run once when the host
/// loads the library (a panic there refuses the library with a clear message).
///
/// ```ignore
/// gordon_plugin_api::export_plugins! {
///     runnable my_crate::HttpEvents,
///     handler my_crate::Enricher,
/// }
/// ```
#[macro_export]
macro_rules! export_plugins {
    (init = $init:path; $($kind:ident $ty:ty),* $(,)?) => {
        $crate::__export_root! { { $init(); } $($kind $ty),* }
    };
    ($($kind:ident $ty:ty),* $(,)?) => {
        $crate::__export_root! { {} $($kind $ty),* }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_root {
    ({ $($init:tt)* } $($kind:ident $ty:ty),*) => {
        #[doc(hidden)]
        fn __gordon_root_module(
        ) -> ::core::result::Result<$crate::abi::LibraryRef, $crate::__private::RBoxError> {
            $crate::export::library(
                || { $($init)* },
                || vec![$($crate::__export_entry!($kind $ty)),*],
            )
        }

        // The symbol abi_stable's loader looks up. Its name is abi_stable's
        // `ROOT_MODULE_LOADER_NAME` (a test in plugin-api keeps the two equal), written
        // out so that vendor crates need no direct abi_stable dependency.
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __GORDON_LIB_HEADER: $crate::__private::LibHeader = {
            extern "C" fn __gordon_erased_root() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(__gordon_root_module)
            }
            // SAFETY: the constructor returns the root module of type `LibraryRef`,
            // exactly the type named here, and the layout constant is included so the
            // host checks it before use.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::LibraryRef>(
                    __gordon_erased_root,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_entry {
    (runnable $ty:ty) => {
        $crate::export::runnable_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
    (handler $ty:ty) => {
        $crate::export::handler_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
    (relay $ty:ty) => {
        $crate::export::relay_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
    (authority $ty:ty) => {
        $crate::export::authority_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
    (reconciler $ty:ty) => {
        $crate::export::reconciler_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
    (publisher $ty:ty) => {
        $crate::export::publisher_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
    (discovery $ty:ty) => {
        $crate::export::discovery_entry::<$ty>(env!("CARGO_PKG_VERSION"))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_symbol_name_matches_abi_stable() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Cfg {
            zone: String,
            ttl: u32,
        }
        let err = super::parse_config::<Cfg>(r#"{"zone": "a.", "ttl": "x"}"#).unwrap_err();
        assert!(err.message().contains("`ttl`"), "{err}");
        let err =
            super::parse_config::<Cfg>(r#"{"zone": "a.", "ttl": 1, "bogus": 1}"#).unwrap_err();
        assert!(err.message().contains("bogus"), "{err}");
    }

    #[test]
    fn config_error_paths_are_written_as_toml_keys() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Server {
            port: u16,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Cfg {
            #[serde(default)]
            servers: Vec<Server>,
            #[serde(default)]
            zones: std::collections::BTreeMap<String, Server>,
        }
        let err =
            super::parse_config::<Cfg>(r#"{"servers": [{"port": 1}, {"port": "x"}]}"#).unwrap_err();
        assert!(
            err.message()
                .starts_with("invalid configuration at `servers[1].port`: invalid type"),
            "{err}"
        );
        let err =
            super::parse_config::<Cfg>(r#"{"zones": {"example.com": {"port": -1}}}"#).unwrap_err();
        assert!(
            err.message()
                .starts_with(r#"invalid configuration at `zones."example.com".port`: "#),
            "{err}"
        );
        let err = super::parse_config::<Cfg>(r#"{"servers": [{}]}"#).unwrap_err();
        assert_eq!(
            err.message(),
            "invalid configuration at `servers[0]`: missing field `port`"
        );
    }
}
