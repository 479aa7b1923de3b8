//! `gordon plugins list`: every plugin found, every library refused, and every
//! warning about a library that loaded.

use std::io::Write;

use serde_json::json;

use crate::cli::Global;
use crate::session::Session;

/// Prints the catalog as a table or as one JSON object.
///
/// # Errors
/// A configuration error, or a failed write to stdout.
pub fn run(global: &Global, as_json: bool) -> anyhow::Result<()> {
    let session = Session::open(&global.config_root, "gordon", global.verbose)?;
    let catalog = &session.catalog;
    let active = |name: &str| session.config.core.plugins.iter().any(|p| p == name);
    let isolated = |name: &str| crate::isolation::is_isolated(&session.config.core, name);
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "plugins": catalog.plugins.iter().map(|p| json!({
                "name": p.name,
                "kind": p.kind,
                "phase": p.phase,
                "library": p.library,
                "api_version": p.api_version,
                "version": p.version,
                "description": p.description,
                "active": active(&p.name),
                "isolated": isolated(&p.name),
                "actions": p.definition.actions.iter().map(crate::live::actions::schema).collect::<Vec<_>>(),
                "events": p.definition.events,
            })).collect::<Vec<_>>(),
            "refused": catalog.refused.iter().map(|r| {
                let mut v = json!({"library": r.library, "reason": r.reason.to_string()});
                if global.verbose {
                    if let Some(d) = &r.detail {
                        v["detail"] = d.as_str().into();
                    }
                }
                v
            }).collect::<Vec<_>>(),
            "warnings": catalog.warnings.iter().map(|w| json!({
                "library": w.library, "warning": w.warning.to_string(),
            })).collect::<Vec<_>>(),
            "duplicates": catalog.duplicates.iter().map(|(name, libs)| json!({
                "name": name, "libraries": libs,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    let rows: Vec<[String; 6]> = catalog
        .plugins
        .iter()
        .map(|p| {
            [
                format!(
                    "{}{}{}",
                    p.name,
                    if active(&p.name) { " *" } else { "" },
                    if isolated(&p.name) { " [isolated]" } else { "" }
                ),
                p.kind.clone(),
                if p.phase.is_empty() {
                    "-".into()
                } else {
                    p.phase.clone()
                },
                p.version.clone(),
                p.api_version.clone(),
                p.library.display().to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "PHASE", "VERSION", "API", "LIBRARY"].map(String::from);
    let all: Vec<[String; 6]> = std::iter::once(header)
        .chain(rows.iter().cloned())
        .collect();
    write!(out, "{}", crate::table::render(&all))?;
    writeln!(
        out,
        "({} plugin(s); * = active in core.plugins; [isolated] = runs in a process of its own, core.isolate)",
        rows.len()
    )?;
    for (name, libs) in &catalog.duplicates {
        let libs: Vec<String> = libs.iter().map(|l| l.display().to_string()).collect();
        writeln!(
            out,
            "duplicate: `{name}` is exported by {}",
            libs.join(", ")
        )?;
    }
    for w in &catalog.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for r in &catalog.refused {
        writeln!(out, "refused: {r}")?;
        if let Some(d) = global.verbose.then_some(r.detail.as_ref()).flatten() {
            writeln!(out, "{d}")?;
        }
    }
    Ok(())
}
