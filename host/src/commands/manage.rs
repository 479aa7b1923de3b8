//! `gordon plugins info NAME | add FILE | rm NAME` (nushell's `plugin add`):
//! what a plugin offers, read from its library without creating it; installing
//! a library after the same checks discovery makes, with its sha256 pin; and
//! removing one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::cli::Global;
use crate::plugins::{inspect, registry};
use crate::session::Session;

/// `plugins info NAME [--json]`.
///
/// # Errors
/// No plugin of that name, or a failed write.
pub fn info(global: &Global, name: &str, as_json: bool) -> anyhow::Result<()> {
    let session = Session::open(&global.config_root, "gordon", global.verbose)?;
    let Some(p) = session.catalog.plugins.iter().find(|p| p.name == name) else {
        let known: Vec<&str> = session
            .catalog
            .plugins
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        bail!(
            "no plugin `{name}` in the plugin directories (found: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let active = session.config.core.plugins.iter().any(|n| n == name);
    let isolated = crate::isolation::is_isolated(&session.config.core, name);
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "name": p.name,
            "kind": p.kind,
            "phase": p.phase,
            "version": p.version,
            "api_version": p.api_version,
            "library": p.library,
            "description": p.description,
            "active": active,
            "isolated": isolated,
            "actions": p.definition.actions.iter().map(crate::live::actions::schema).collect::<Vec<_>>(),
            "events": p.definition.events,
            "config": p.definition.config,
        });
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    writeln!(out, "{} — {}", p.name, p.description)?;
    writeln!(out, "kind:        {}", p.kind)?;
    if !p.phase.is_empty() {
        writeln!(out, "phase:       {}", p.phase)?;
    }
    writeln!(
        out,
        "version:     {} (plugin-api {})",
        p.version, p.api_version
    )?;
    writeln!(out, "library:     {}", p.library.display())?;
    writeln!(
        out,
        "state:       {}{}",
        if active {
            "active in core.plugins"
        } else {
            "not in core.plugins"
        },
        if isolated { ", isolated" } else { "" }
    )?;
    if p.definition.actions.is_empty() {
        writeln!(out, "actions:     none")?;
    }
    for a in &p.definition.actions {
        let params: Vec<String> = a
            .params
            .iter()
            .map(|p| {
                let t = serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if p.required {
                    format!("{}={t}", p.name)
                } else {
                    format!("[{}={t}]", p.name)
                }
            })
            .collect();
        writeln!(
            out,
            "action:      {} {} — {}",
            a.name,
            params.join(" "),
            a.description
        )?;
    }
    if !p.definition.events.is_empty() {
        writeln!(out, "host events: {}", p.definition.events.join(", "))?;
    }
    write_keys(&mut out, p)?;
    Ok(())
}

/// The configuration keys the library describes, one per line: name, type,
/// whether required or its default, and its line of documentation.
fn write_keys(out: &mut impl Write, p: &crate::plugins::PluginInfo) -> std::io::Result<()> {
    let keys = &p.definition.config;
    if keys.is_empty() {
        return writeln!(
            out,
            "config:      not described by the library (plugin-api {})",
            p.api_version
        );
    }
    let tables = crate::config::plugin_tables(&p.name).join(" + ");
    writeln!(out, "config:      {tables}")?;
    let width = keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
    for k in keys {
        let status = match (&k.default, k.required) {
            (Some(d), _) => format!("default {d}"),
            (None, true) => "required".to_owned(),
            (None, false) => "optional".to_owned(),
        };
        let doc = if k.doc.is_empty() {
            String::new()
        } else {
            format!(" — {}", k.doc)
        };
        writeln!(
            out,
            "  {:width$}  {} ({status}){doc}",
            k.name,
            k.kind,
            width = width
        )?;
    }
    Ok(())
}

/// `plugins add FILE`: checks the library as discovery would (format, panic
/// runtime, version and layout), copies it into the first plugin directory with
/// mode 0644, and prints the `core.plugin_pins` line that pins it.
///
/// # Errors
/// A refused library, a name already installed, or a failed copy.
pub fn add(global: &Global, file: &Path) -> anyhow::Result<()> {
    let config = crate::config::Config::load(&global.config_root, "gordon")?;
    let dirs = config.plugin_dirs();
    let dir = dirs
        .first()
        .context("core.plugin_dirs names no directory")?;
    let name = file
        .file_name()
        .context("FILE names no file")?
        .to_string_lossy()
        .into_owned();
    let dest = dir.join(&name);
    if dest.exists() {
        bail!(
            "{} exists; `gordon plugins rm` a plugin of it first, or remove it",
            dest.display()
        );
    }
    let checks = inspect::Checks {
        pins: Default::default(),
        required: false,
        panic_abort: config.core.panic_abort.parse().unwrap_or_default(),
    };
    let (plugins, warning) =
        registry::load_one(file, &checks).map_err(|r| anyhow::anyhow!("refused {r}"))?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::copy(file, &partial).with_context(|| format!("cannot copy into {}", dir.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&partial, &dest)?;
    let pin = inspect::sha256_file(&dest)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "installed {} ({})",
        dest.display(),
        plugins
            .iter()
            .map(|p| format!("{} {}", p.kind, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out, "pin it in [core.plugin_pins]:")?;
    writeln!(out, "\"{name}\" = \"{pin}\"")?;
    Ok(())
}

/// `plugins rm NAME`: removes the library that provides plugin NAME (with every
/// plugin it exports), refusing while any of them is in `core.plugins`.
///
/// # Errors
/// No such plugin, an active one, or a failed removal.
pub fn rm(global: &Global, name: &str) -> anyhow::Result<()> {
    let session = Session::open(&global.config_root, "gordon", global.verbose)?;
    let Some(p) = session.catalog.plugins.iter().find(|p| p.name == name) else {
        bail!("no plugin `{name}` in the plugin directories");
    };
    let library = p.library.clone();
    let exported: Vec<&str> = session
        .catalog
        .plugins
        .iter()
        .filter(|q| q.library == library)
        .map(|q| q.name.as_str())
        .collect();
    let active: Vec<&str> = exported
        .iter()
        .copied()
        .filter(|n| session.config.core.plugins.iter().any(|a| a == n))
        .collect();
    if !active.is_empty() {
        bail!(
            "{} provides {} listed in core.plugins; remove {} from core.plugins first",
            library.display(),
            active.join(", "),
            if active.len() == 1 { "it" } else { "them" }
        );
    }
    std::fs::remove_file(&library)
        .with_context(|| format!("cannot remove {}", library.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "removed {} ({})",
        library.display(),
        exported.join(", ")
    )?;
    Ok(())
}
