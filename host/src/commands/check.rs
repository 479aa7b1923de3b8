//! `gordon check`: load configuration and plugins, validate every active plugin's
//! configuration, start nothing, and report every problem.

use std::io::Write;

use crate::cli::Global;
use crate::plugins::instance;
use crate::session::{Problem, Session, Severity};

/// Runs the check; returns whether everything passed.
///
/// # Errors
/// A configuration error that stops loading altogether.
pub fn run(global: &Global) -> anyhow::Result<bool> {
    let mut session = Session::open(&global.config_root, "gordon", global.verbose)?;
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for info in &session.active {
        let cfg = session.plugin_config_json(info);
        match instance::validate(info, &cfg) {
            Ok(()) => passed.push(info.name.clone()),
            Err(e) => failed.push(Problem {
                severity: Severity::Error,
                message: info.problem(&e),
            }),
        }
    }
    session.problems.extend(failed);
    let mut out = std::io::stdout().lock();
    for p in &session.problems {
        let label = if p.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        writeln!(out, "{label}: {}", p.message)?;
        if let Some(detail) = global.verbose.then(|| detail_for(&session, p)).flatten() {
            writeln!(out, "{detail}")?;
        }
    }
    for name in &passed {
        writeln!(out, "ok: {name}")?;
    }
    let errors = session
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = session.problems.len() - errors;
    writeln!(
        out,
        "gordon check: {} active plugin(s), {errors} error(s), {warnings} warning(s)",
        session.active.len()
    )?;
    Ok(errors == 0)
}

/// The long report behind a refusal problem, if it has one.
pub fn detail_for<'a>(session: &'a Session, p: &Problem) -> Option<&'a str> {
    session
        .catalog
        .refused
        .iter()
        .find(|r| p.message.ends_with(&r.to_string()))
        .and_then(|r| r.detail.as_deref())
}
