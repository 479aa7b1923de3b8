//! The binary interface between the host and a plugin library.
//!
//! Vendors never touch this module: [`export_plugins!`](crate::export_plugins) builds
//! it from the plain traits. It is public for the host, which reads it after
//! abi_stable has checked that the library's `plugin-api` major version and the full
//! recursive layout of every type reachable from [`Library`] match its own.
//!
//! # Evolution rule
//!
//! Every struct here that may grow is an abi_stable *prefix type*: fields may only be
//! **appended**, after the field marked `#[sabi(last_prefix_field)]`. The same holds
//! for the methods of the `#[sabi_trait]` objects. Anything else is a new major
//! version of `plugin-api`, which hosts refuse to load.
//!
//! abi_stable's layout check lets a reader know *fewer* fields of a prefix type than
//! its writer has, not more. That suits the types the host writes and the library
//! reads ([`HostServices`]), but a host must also read root modules written by
//! libraries built against every earlier minor version, and abi_stable also refuses
//! a library whose copy of a host-written prefix type ([`HostServices`]) has fewer
//! fields than the host's. So each released minor version's root-module types
//! ([`Library`], [`PluginEntry`], [`HostServices`]) are kept, frozen, in a module of
//! their own ([`v1_0`], [`v1_1`], [`v1_2`]); the host checks a library against the types of
//! the minor version the library says it was built with, and hands it that
//! version's host-services table.

#![allow(non_local_definitions)] // `#[sabi_trait]` expands to impls inside a const block.

use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RSliceMut, RStr, RString, RVec};
use abi_stable::StableAbi;

pub mod v1_0;
pub mod v1_1;
pub mod v1_2;

use crate::channel::{FfiReceiver, Sender};
use crate::error::FfiError;
use crate::janitor::ZoneRecords;
use crate::message::EventMessage;

/// The kind name of a [`Runnable`](crate::Runnable) plugin.
pub const KIND_RUNNABLE: &str = "runnable";
/// The kind name of a [`MessageHandler`](crate::MessageHandler) plugin.
pub const KIND_MESSAGE_HANDLER: &str = "message_handler";
/// The kind name of a [`MetricRelay`](crate::MetricRelay) plugin.
pub const KIND_METRIC_RELAY: &str = "metric_relay";
/// The kind name of an [`Authority`](crate::Authority) plugin (since 1.1).
pub const KIND_AUTHORITY: &str = "authority";
/// The kind name of a [`Reconciler`](crate::Reconciler) plugin (since 1.1).
pub const KIND_RECONCILER: &str = "reconciler";
/// The kind name of a [`Publisher`](crate::Publisher) plugin (since 1.1).
pub const KIND_PUBLISHER: &str = "publisher";
/// The kind name of a [`Discovery`](crate::Discovery) plugin (since 1.3).
pub const KIND_DISCOVERY: &str = "discovery";

/// The root module of a plugin library: the one symbol the host looks up.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = LibraryRef)))]
#[sabi(missing_field(option))]
pub struct Library {
    /// Gives the library the host's services (logging, metrics). Called once, after
    /// the compatibility checks and before any plugin function.
    pub init: extern "C" fn(host: HostServicesRef) -> RResult<(), FfiError>,
    /// The library's plugins, like the entry points of a Python package.
    #[sabi(last_prefix_field)]
    pub plugins: RSlice<'static, PluginEntryRef>,
}

impl abi_stable::library::RootModule for LibraryRef {
    abi_stable::declare_root_module_statics! {LibraryRef}
    const BASE_NAME: &'static str = "gordon_plugin";
    const NAME: &'static str = "gordon plugin-api";
    const VERSION_STRINGS: abi_stable::sabi_types::VersionStrings =
        abi_stable::package_version_strings!();
}

/// One plugin of a library: its metadata and constructors.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginEntryRef)))]
#[sabi(missing_field(option))]
pub struct PluginEntry {
    /// Dotted name, `package.plugin`.
    pub name: RStr<'static>,
    /// One of the `KIND_*` constants.
    pub kind: RStr<'static>,
    /// The phase a handler handles, or the phase a runnable's messages start in.
    pub phase: RStr<'static>,
    /// The version of the crate that built the library.
    pub version: RStr<'static>,
    /// One line saying what the plugin does.
    pub description: RStr<'static>,
    /// Checks a configuration (JSON object text) without creating the plugin.
    pub validate_config: extern "C" fn(config: RStr<'_>) -> RResult<(), FfiError>,
    /// Creates a runnable, if the plugin is one.
    pub new_runnable: ROption<extern "C" fn(config: RStr<'_>) -> RResult<RunnableBox, FfiError>>,
    /// Creates a message handler, if the plugin is one.
    pub new_handler: ROption<extern "C" fn(config: RStr<'_>) -> RResult<HandlerBox, FfiError>>,
    /// Creates a metric relay, if the plugin is one. The last field of 1.0: fields
    /// below were appended later, and read as `None` from a 1.0 library.
    #[sabi(last_prefix_field)]
    pub new_relay: ROption<extern "C" fn(config: RStr<'_>) -> RResult<RelayBox, FfiError>>,
    /// Creates a janitor authority, if the plugin is one (since 1.1).
    pub new_authority: ROption<extern "C" fn(config: RStr<'_>) -> RResult<AuthorityBox, FfiError>>,
    /// Creates a janitor reconciler, if the plugin is one (since 1.1).
    pub new_reconciler:
        ROption<extern "C" fn(config: RStr<'_>) -> RResult<ReconcilerBox, FfiError>>,
    /// Creates a janitor publisher, if the plugin is one (since 1.1).
    pub new_publisher: ROption<extern "C" fn(config: RStr<'_>) -> RResult<PublisherBox, FfiError>>,
    /// The plugin's definition as JSON, read without creating it (since 1.3):
    /// `{"actions": [{"name", "description", "params": [{"name", "type",
    /// "required", "description"}]}], "events": ["pattern", ..]}`.
    pub define: extern "C" fn() -> RString,
    /// Checks the configuration and then that the plugin can work here: reach its
    /// server, read its files (since 1.3).
    pub validate_dependencies: extern "C" fn(config: RStr<'_>) -> RResult<(), FfiError>,
    /// Parses and validates the configuration once and creates the plugin of its
    /// kind, with its control object (since 1.3; the host prefers it to the
    /// `new_*` constructors, which stay for older hosts).
    pub create: extern "C" fn(config: RStr<'_>) -> RResult<Created, FfiError>,
}

/// A plugin created by [`PluginEntry::create`]: the object of its kind (exactly
/// one is set) and its control object.
#[repr(C)]
#[derive(StableAbi)]
pub struct Created {
    /// A runnable.
    pub runnable: ROption<RunnableBox>,
    /// A message handler.
    pub handler: ROption<HandlerBox>,
    /// A metric relay.
    pub relay: ROption<RelayBox>,
    /// A janitor authority.
    pub authority: ROption<AuthorityBox>,
    /// A janitor reconciler.
    pub reconciler: ROption<ReconcilerBox>,
    /// A janitor publisher.
    pub publisher: ROption<PublisherBox>,
    /// A discovery plugin.
    pub discovery: ROption<DiscoveryBox>,
    /// Its live controls: configuration, actions, host events.
    pub control: ControlBox,
}

/// The controls of a live plugin of any kind (since 1.3).
#[sabi_trait]
pub trait ControlObj: Send + Sync {
    /// Applies a changed configuration (JSON object text) to the live plugin.
    /// `Ok(true)`: applied; `Ok(false)`: the plugin does not apply configuration
    /// live, and the host replaces it with a new instance instead.
    fn apply_config(&self, config: RStr<'_>) -> RResult<bool, FfiError>;
    /// Runs a named action with its parameters (a JSON object); the result is JSON.
    fn invoke(&self, action: RStr<'_>, params: RStr<'_>) -> RResult<RString, FfiError>;
    /// Delivers one host event (a JSON object) the plugin selected.
    #[sabi(last_prefix_field)]
    fn host_event(&self, event: RStr<'_>);
}

/// An owned control object.
pub type ControlBox = ControlObj_TO<'static, RBox<()>>;

/// The FFI face of a [`Discovery`](crate::Discovery) plugin (since 1.3). Services
/// cross as JSON ([`crate::Service`]); memberships come back as JSON
/// ([`crate::Membership`]) on the watch's channel.
#[sabi_trait]
pub trait DiscoveryObj: Send + Sync {
    /// Connects to the store.
    fn connect(&self) -> RResult<(), FfiError>;
    /// Disconnects; the host waits at most `deadline_ms`.
    fn disconnect(&self, deadline_ms: u64) -> RResult<(), FfiError>;
    /// Starts watching a cluster; memberships arrive on `updates`.
    fn start_watching(&self, cluster: RStr<'_>, updates: Sender<RString>) -> RResult<(), FfiError>;
    /// Stops watching a cluster.
    fn stop_watching(&self, cluster: RStr<'_>) -> RResult<(), FfiError>;
    /// Reports a service up.
    fn report_up(&self, service: RStr<'_>) -> RResult<(), FfiError>;
    /// Reports a service down.
    #[sabi(last_prefix_field)]
    fn report_down(&self, service: RStr<'_>) -> RResult<(), FfiError>;
}

/// An owned discovery object.
pub type DiscoveryBox = DiscoveryObj_TO<'static, RBox<()>>;

/// What the host offers every plugin library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostServicesRef)))]
#[sabi(missing_field(option))]
pub struct HostServices {
    /// The most verbose level the host will print (see [`LogRecord::level`]); the
    /// plugin filters below it so disabled logging costs nothing.
    pub max_log_level: u8,
    /// Writes a log record into the host's log.
    pub log: extern "C" fn(record: &LogRecord<'_>),
    /// Emits a metric through the host's configured relay.
    #[sabi(last_prefix_field)]
    pub metric: extern "C" fn(event: &MetricEvent<'_>),
    /// The host's health as JSON text, `{"healthy": bool, "problems": [".."]}`: a
    /// plugin that failed, or a handler that did not return within its deadline,
    /// makes the host unhealthy (since 1.2; read it with [`crate::host_health`]).
    pub health: extern "C" fn() -> RString,
    /// Asks the host to stop this plugin cleanly (since 1.3): it is then restarted
    /// with back-off or left stopped, as the operator configured.
    pub leave: extern "C" fn(plugin: RStr<'_>, reason: RStr<'_>),
}

/// A log record forwarded from a plugin's `tracing` events.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct LogRecord<'a> {
    /// 1 = error, 2 = warn, 3 = info, 4 = debug, 5 = trace.
    pub level: u8,
    /// The plugin that logged.
    pub plugin: RStr<'a>,
    /// The `tracing` target (usually the module path).
    pub target: RStr<'a>,
    /// The formatted message and fields.
    pub message: RStr<'a>,
}

/// What a metric event measures.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A counter increment.
    Incr = 0,
    /// A duration, in seconds.
    Timer = 1,
    /// A gauge value.
    Set = 2,
}

/// A `key=value` label of a metric event.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct Tag<'a> {
    /// Label name.
    pub key: RStr<'a>,
    /// Label value.
    pub value: RStr<'a>,
}

/// One metric event, the unit a metric relay receives.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct MetricEvent<'a> {
    /// Counter, timer or gauge.
    pub kind: MetricKind,
    /// Metric name.
    pub name: RStr<'a>,
    /// Increment, seconds or gauge value.
    pub value: f64,
    /// The plugin that emitted it (empty for the host).
    pub plugin: RStr<'a>,
    /// Labels.
    pub tags: RSlice<'a, Tag<'a>>,
}

/// A message a handler failed, by index into the batch it was given.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Failure {
    /// Index into the batch.
    pub index: u32,
    /// Why.
    pub error: FfiError,
}

/// The FFI face of a [`Runnable`](crate::Runnable).
#[sabi_trait]
pub trait RunnableObj: Send + Sync {
    /// Starts producing onto `events`; returns at once. Dropping every clone of
    /// `events` ends the stream.
    fn start(&self, events: Sender<EventMessage>) -> RResult<(), FfiError>;
    /// Acknowledges or rejects messages that finished their route (phase `cleanup`)
    /// or failed (phase `drop`).
    fn cleanup(&self, batch: RSlice<'_, EventMessage>) -> RResult<(), FfiError>;
    /// Stops taking new events and releases resources; the host waits at most
    /// `deadline_ms`.
    #[sabi(last_prefix_field)]
    fn shutdown(&self, deadline_ms: u64) -> RResult<(), FfiError>;
}

/// The FFI face of a [`MessageHandler`](crate::MessageHandler).
#[sabi_trait]
pub trait HandlerObj: Send + Sync {
    /// Handles a batch in place; returns the messages that failed.
    fn handle_batch(&self, batch: RSliceMut<'_, EventMessage>) -> RVec<Failure>;
    /// Releases resources; the host waits at most `deadline_ms`.
    #[sabi(last_prefix_field)]
    fn shutdown(&self, deadline_ms: u64) -> RResult<(), FfiError>;
}

/// The FFI face of a [`MetricRelay`](crate::MetricRelay).
#[sabi_trait]
pub trait RelayObj: Send + Sync {
    /// Relays one metric event.
    fn emit(&self, event: &MetricEvent<'_>);
    /// Flushes and closes; the host waits at most `deadline_ms`.
    #[sabi(last_prefix_field)]
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError>;
}

/// The FFI face of an [`Authority`](crate::Authority).
#[sabi_trait]
pub trait AuthorityObj: Send + Sync {
    /// Puts one message per zone on `rrsets`; returns when done. Returning (or
    /// failing) drops `rrsets`, which ends the stream.
    fn run(&self, rrsets: Sender<ZoneRecords>) -> RResult<(), FfiError>;
    /// Lets outstanding work finish; the host waits at most `deadline_ms`.
    #[sabi(last_prefix_field)]
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError>;
}

/// The FFI face of a [`Reconciler`](crate::Reconciler).
#[sabi_trait]
pub trait ReconcilerObj: Send + Sync {
    /// Consumes `rrsets` until it ends, putting corrections on `changes`.
    fn run(
        &self,
        rrsets: FfiReceiver<ZoneRecords>,
        changes: Sender<EventMessage>,
    ) -> RResult<(), FfiError>;
    /// Lets outstanding work finish; the host waits at most `deadline_ms`.
    #[sabi(last_prefix_field)]
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError>;
}

/// The FFI face of a [`Publisher`](crate::Publisher).
#[sabi_trait]
pub trait PublisherObj: Send + Sync {
    /// Consumes `changes` until it ends, publishing each.
    fn run(&self, changes: FfiReceiver<EventMessage>) -> RResult<(), FfiError>;
    /// Lets outstanding work finish; the host waits at most `deadline_ms`.
    #[sabi(last_prefix_field)]
    fn cleanup(&self, deadline_ms: u64) -> RResult<(), FfiError>;
}

/// An owned authority object.
pub type AuthorityBox = AuthorityObj_TO<'static, RBox<()>>;
/// An owned reconciler object.
pub type ReconcilerBox = ReconcilerObj_TO<'static, RBox<()>>;
/// An owned publisher object.
pub type PublisherBox = PublisherObj_TO<'static, RBox<()>>;

/// An owned runnable object.
pub type RunnableBox = RunnableObj_TO<'static, RBox<()>>;
/// An owned handler object.
pub type HandlerBox = HandlerObj_TO<'static, RBox<()>>;
/// An owned relay object.
pub type RelayBox = RelayObj_TO<'static, RBox<()>>;
