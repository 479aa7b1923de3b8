//! The running service: start-up, the phase router, and shutdown.
//!
//! Start-up order: every active plugin's configuration is validated, the metric
//! relay is chosen, handlers are created, routes are planned, router workers start,
//! and only then are runnables created and started — so the first message finds
//! every handler ready.
//!
//! Shutdown (SIGINT, SIGTERM, or every source ending on its own): intake is closed
//! (a runnable's further sends fail and hand their messages back to it), messages
//! already queued finish their route, then every plugin's shutdown runs, in
//! parallel — all of it within one `core.shutdown_timeout`. A second signal exits
//! at once. The [`pipeline::Outcome`] lists what went wrong (messages abandoned, a
//! handler past its deadline, a failed `run`, a plugin that did not stop); the
//! exit code is 0 only when it is empty.

mod leave;
pub mod lifecycle;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub(crate) mod reload;
pub mod router;
pub mod signals;
mod watchdog;

pub use lifecycle::run;
