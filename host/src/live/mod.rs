//! Living under change: what the host does while it runs beyond routing — plugin
//! actions, host events, plugins that ask to leave, and reloading the
//! configuration.

pub mod actions;
pub mod events;
pub mod leaving;
pub mod requests;
