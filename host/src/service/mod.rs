//! The running service: start-up, the phase router, and shutdown.
//!
//! Start-up order: every active plugin's configuration is validated, the metric
//! relay is chosen, handlers are created, routes are planned, router workers start,
//! and only then are runnables created and started — so the first message finds
//! every handler ready.
//!
//! Shutdown (SIGINT, SIGTERM, or every source ending on its own): intake is closed
//! (a runnable's further sends fail and hand their messages back to it), messages
//! already queued finish their route within `core.shutdown_timeout`, then every
//! plugin's shutdown runs with that deadline; a plugin past it is named in the log.
//! The exit code is 0.

pub mod lifecycle;
pub mod pipeline;
pub mod plan;
pub mod router;
pub mod signals;

pub use lifecycle::run;
