//! `gordon check`: load configuration and plugins, validate every active plugin's
//! configuration and everything the service (or, with `--janitor`, the janitor)
//! checks before it starts, create nothing, and report every problem.
//!
//! With `--connect`, each plugin's `validate_dependencies` (plugin-api 1.3+) also
//! runs: can it reach its server, read its files.
//!
//! `check` creates no plugin: a constructor may bind ports, open connections or
//! take locks that the running service holds. So a plugin whose `new` fails or
//! panics passes `check`, and the output says so in a closing note.

use std::io::Write;

use serde_json::json;

use crate::cli::Global;
use crate::plugins::instance;
use crate::service::preflight::{self, Mode};
use crate::session::{Problem, Session, Severity};

const NOT_CREATED: &str = "check validates configuration but creates no plugin; constructors run only when the service or janitor starts";

/// Runs the check; returns whether it found no error.
///
/// # Errors
/// A configuration error that stops loading altogether, or a failed write.
pub fn run(global: &Global, janitor: bool, as_json: bool, connect: bool) -> anyhow::Result<bool> {
    let (base, mode) = if janitor {
        ("gordon-janitor", Mode::Janitor)
    } else {
        ("gordon", Mode::Service)
    };
    let mut session = Session::open(&global.config_root, base, global.verbose)?;
    if mode == Mode::Janitor {
        // The janitor refuses to run with any loading problem, even with core.debug.
        for p in &mut session.problems {
            p.severity = Severity::Error;
        }
    }
    let mut passed = Vec::new();
    // Refusals, and warnings about the configuration of plugins that passed.
    let mut failed = Vec::new();
    let mut unchecked: Vec<String> = Vec::new();
    for info in &session.active {
        let cfg = session.plugin_config_json(info);
        let core = &session.config.core;
        let checked = if crate::isolation::is_isolated(core, &info.name) {
            crate::isolation::validate(info, &cfg, core)
        } else if connect {
            instance::validate_dependencies(info, &cfg).map(|checked| {
                if !checked {
                    unchecked.push(format!(
                        "`{}` (plugin-api {}) has no dependency check",
                        info.name, info.api_version
                    ));
                }
            })
        } else {
            instance::validate(info, &cfg)
        };
        match checked {
            Ok(()) => {
                // A key the plugin accepted without describing it: likely a typo it
                // ignores. (One it refused is in its refusal already.)
                let unknown = crate::plugins::keys::unknown(info, &cfg);
                failed.extend(unknown.into_iter().map(|message| Problem {
                    severity: Severity::Warning,
                    message,
                }));
                passed.push(info.name.clone());
            }
            Err(e) => failed.push(Problem {
                severity: Severity::Error,
                message: crate::plugins::keys::refusal(info, &e),
            }),
        }
    }
    session.problems.extend(failed);
    preflight::add_to(&mut session, mode);
    let lines = |severity: Severity| -> Vec<&str> {
        session
            .problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| p.message.as_str())
            .collect()
    };
    let (errors, warnings) = (lines(Severity::Error), lines(Severity::Warning));
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "ok": errors.is_empty(),
            "command": if janitor { "janitor" } else { "run" },
            "files": session.config.files,
            "active": session.active.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "passed": passed,
            "connect": connect,
            "unchecked": unchecked,
            "errors": errors,
            "warnings": warnings,
            "note": NOT_CREATED,
        });
        writeln!(out, "{doc}")?;
        return Ok(errors.is_empty());
    }
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
    for line in &unchecked {
        writeln!(out, "note: {line}")?;
    }
    writeln!(out, "note: {NOT_CREATED}")?;
    writeln!(
        out,
        "gordon check: {} active plugin(s), {} error(s), {} warning(s)",
        session.active.len(),
        errors.len(),
        warnings.len()
    )?;
    Ok(errors.is_empty())
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
