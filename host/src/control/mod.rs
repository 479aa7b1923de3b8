//! The control socket: how `gordon ctl` reaches a running host.
//!
//! `gordon run` listens on a Unix socket (`core.control.socket`, default
//! `$RUNTIME_DIRECTORY/gordon.sock` or `gordon.sock` in the config root), mode
//! 0600, and answers only peers that are root or the service's own user
//! (`SO_PEERCRED`). A request is one JSON line (`{"command": "status"}`), the
//! answer one JSON line.

pub mod client;
pub mod server;
pub mod status;
pub mod tally;
pub mod top;
