//! The running service: plugin start-up, the phase router, and shutdown.

use crate::session::Session;

/// Runs the service until a signal.
///
/// # Errors
/// A plugin that cannot be created when `core.debug` is false.
pub fn run(session: Session) -> anyhow::Result<()> {
    let _ = session;
    Ok(())
}
