//! `gordon` / `gordon run`: the service.

use crate::cli::Global;
use crate::session::Session;

/// Runs the service until SIGINT or SIGTERM.
///
/// # Errors
/// Start-up problems (configuration, plugins) when `core.debug` is false.
pub fn run(global: &Global) -> anyhow::Result<()> {
    let session = Session::open(&global.config_root, "gordon", global.verbose)?;
    session.log_problems();
    if session.has_errors() {
        anyhow::bail!(
            "cannot start: {} problem(s) loading plugins (see above)",
            session.problems.len()
        );
    }
    crate::service::run(session)
}
