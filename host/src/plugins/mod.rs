//! Plugin libraries: discovery, pre-load inspection, loading, and the catalog.
//!
//! The order is the point: [`discovery`] finds files, [`inspect`] judges them from
//! their bytes (no plugin code has run yet), [`loader`] opens them and lets abi_stable
//! check versions and layouts, and only then does the host call into a library.

pub mod discovery;
pub mod glibc;
pub mod handle;
pub mod hostlink;
pub mod inspect;
pub mod instance;
pub mod keys;
pub mod loader;
pub mod refusal;
pub mod registry;

pub use refusal::{Reason, Refused};
pub use registry::{intern, Catalog, PluginInfo};
