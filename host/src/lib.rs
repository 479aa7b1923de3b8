//! The gordon plugin host: configuration, plugin loading, the phase router and the
//! service lifecycle. The `gordon` binary is a thin shell over this library.

// A static musl executable has no dynamic loader: it could not load a single
// plugin library. Refuse the build rather than ship a host that cannot host.
#[cfg(target_env = "musl")]
compile_error!("gordon loads plugins with dlopen; build it for a *-linux-gnu target, not musl");

pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod discovery;
pub mod error;
pub mod health;
pub mod isolation;
pub mod janitor;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod plugins;
pub mod service;
pub mod session;
pub mod table;
