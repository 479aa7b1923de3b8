//! The library-written root-module types exactly as released in plugin-api 1.0.
//!
//! Never edit these: a library built against 1.0 is checked against them, field by
//! field. Everything they point to (the plugin objects, [`HostServicesRef`], the
//! messages) is shared with the current version, unchanged.

use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use abi_stable::StableAbi;

use super::{HandlerBox, HostServicesRef, RelayBox, RunnableBox};
use crate::error::FfiError;

/// The root module of a 1.0 library.
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
        abi_stable::sabi_types::VersionStrings::new("1.0.0");
}

/// One plugin of a 1.0 library.
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
}
