//! The root-module types exactly as released in plugin-api 1.2, and the
//! host-services table that 1.2 libraries read.
//!
//! Never edit these: a library built against 1.2 is checked against them, field by
//! field (see [`super::v1_1`] for why host-written types are frozen too).

use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString};
use abi_stable::StableAbi;

use super::{
    AuthorityBox, HandlerBox, LogRecord, MetricEvent, PublisherBox, ReconcilerBox, RelayBox,
    RunnableBox,
};
use crate::error::FfiError;

/// The root module of a 1.2 library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = LibraryRef)))]
#[sabi(missing_field(option))]
pub struct Library {
    /// See [`super::Library::init`].
    pub init: extern "C" fn(host: HostServicesRef) -> RResult<(), FfiError>,
    /// See [`super::Library::plugins`].
    #[sabi(last_prefix_field)]
    pub plugins: RSlice<'static, PluginEntryRef>,
}

impl abi_stable::library::RootModule for LibraryRef {
    abi_stable::declare_root_module_statics! {LibraryRef}
    const BASE_NAME: &'static str = "gordon_plugin";
    const NAME: &'static str = "gordon plugin-api";
    const VERSION_STRINGS: abi_stable::sabi_types::VersionStrings =
        abi_stable::sabi_types::VersionStrings::new("1.2.0");
}

/// One plugin of a 1.2 library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginEntryRef)))]
#[sabi(missing_field(option))]
pub struct PluginEntry {
    /// Dotted name.
    pub name: RStr<'static>,
    /// Kind.
    pub kind: RStr<'static>,
    /// Phase.
    pub phase: RStr<'static>,
    /// Version of the crate that built the library.
    pub version: RStr<'static>,
    /// One line.
    pub description: RStr<'static>,
    /// Checks a configuration.
    pub validate_config: extern "C" fn(config: RStr<'_>) -> RResult<(), FfiError>,
    /// Creates a runnable.
    pub new_runnable: ROption<extern "C" fn(config: RStr<'_>) -> RResult<RunnableBox, FfiError>>,
    /// Creates a message handler.
    pub new_handler: ROption<extern "C" fn(config: RStr<'_>) -> RResult<HandlerBox, FfiError>>,
    /// Creates a metric relay.
    #[sabi(last_prefix_field)]
    pub new_relay: ROption<extern "C" fn(config: RStr<'_>) -> RResult<RelayBox, FfiError>>,
    /// Creates a janitor authority.
    pub new_authority: ROption<extern "C" fn(config: RStr<'_>) -> RResult<AuthorityBox, FfiError>>,
    /// Creates a janitor reconciler.
    pub new_reconciler:
        ROption<extern "C" fn(config: RStr<'_>) -> RResult<ReconcilerBox, FfiError>>,
    /// Creates a janitor publisher.
    pub new_publisher: ROption<extern "C" fn(config: RStr<'_>) -> RResult<PublisherBox, FfiError>>,
}

/// What the host offers a 1.2 library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostServicesRef)))]
#[sabi(missing_field(option))]
pub struct HostServices {
    /// See [`super::HostServices::max_log_level`].
    pub max_log_level: u8,
    /// See [`super::HostServices::log`].
    pub log: extern "C" fn(record: &LogRecord<'_>),
    /// See [`super::HostServices::metric`].
    #[sabi(last_prefix_field)]
    pub metric: extern "C" fn(event: &MetricEvent<'_>),
    /// See [`super::HostServices::health`].
    pub health: extern "C" fn() -> RString,
}
