//! `gordon` / `gordon run`: the service.

use crate::cli::Global;
use crate::service::preflight::{self, Mode};
use crate::session::Session;

/// Runs the service until SIGINT or SIGTERM; returns whether it stopped cleanly
/// (nothing abandoned, no plugin failed or overran).
///
/// # Errors
/// Start-up problems: configuration, plugins (unless `core.debug`), routes, relays.
pub fn run(global: &Global) -> anyhow::Result<bool> {
    let mut session = Session::open(&global.config_root, "gordon", global.verbose)?;
    preflight::add_to(&mut session, Mode::Service);
    // Keys no plugin describes (validation comes later, as each plugin starts).
    let unknown: Vec<String> = session
        .active
        .iter()
        .flat_map(|info| crate::plugins::keys::unknown(info, &session.plugin_config_json(info)))
        .collect();
    session
        .problems
        .extend(unknown.into_iter().map(|message| crate::session::Problem {
            severity: crate::session::Severity::Warning,
            message,
        }));
    session.log_problems();
    if session.has_errors() {
        let errors = session
            .problems
            .iter()
            .filter(|p| p.severity == crate::session::Severity::Error)
            .count();
        anyhow::bail!("cannot start: {errors} problem(s) (see above; `gordon check` lists them)");
    }
    let outcome = crate::service::run(session, global.verbose)?;
    Ok(outcome.is_clean())
}
