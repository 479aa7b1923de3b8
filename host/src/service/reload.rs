//! Reloading the configuration of the running service (Vector's semantics): the
//! whole new configuration is validated first, and on any error nothing changes —
//! the old configuration keeps serving and the answer names every problem. If it
//! is valid, only what changed changes:
//!
//! - unchanged plugins are untouched;
//! - a changed plugin gets `apply_config` if it implements it; otherwise (or when
//!   its isolation changed) a new instance is created, put in service, and the old
//!   one drained and stopped;
//! - plugins added to `core.plugins` are created, removed ones drained and stopped;
//! - routes change between batches: a batch runs on one table from start to end;
//! - libraries new in `plugin_dirs` are discovered; one that changed on disk since
//!   it was loaded is refused (it cannot be unloaded: a restart is needed).
//!
//! Once validated, plugins change one by one: a new instance that fails to start
//! leaves the old one serving, and the answer says so.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::lifecycle::{
    create_member, handler_timeout, is_source, pipeline_parts, source_start, Member, Role, Running,
};
use super::pipeline::Source;
use super::router::HandlerSlot;
use crate::config::{Config, CoreConfig};
use crate::live::events;
use crate::plugins::{instance, PluginInfo};
use crate::session::{Session, Severity};

/// Reloads on SIGHUP; the answer goes to the log.
pub(crate) fn on_sighup(running: &mut Running) {
    let report = answer(running);
    match report["ok"].as_bool() {
        Some(true) => tracing::info!(report = %report, "Configuration reloaded (SIGHUP)."),
        _ => {
            tracing::error!(report = %report, "Reload refused (SIGHUP); the configuration in use is unchanged.")
        }
    }
}

/// Reloads, telling systemd, and returns the report.
pub(crate) fn answer(running: &mut Running) -> Value {
    super::notify::notify("RELOADING=1");
    let report = reload(running);
    super::notify::notify("READY=1");
    report
}

/// `[core]` keys a reload cannot change: the running host's shape.
pub(crate) fn restart_only(old: &CoreConfig, new: &CoreConfig) -> Vec<String> {
    let keys: [(&str, &dyn std::fmt::Debug, &dyn std::fmt::Debug); 5] = [
        ("metrics", &old.metrics, &new.metrics),
        ("logging", &old.logging, &new.logging),
        ("router", &old.router, &new.router),
        ("isolation", &old.isolation, &new.isolation),
        ("control", &old.control, &new.control),
    ];
    keys.iter()
        .filter(|(_, a, b)| format!("{a:?}") != format!("{b:?}"))
        .map(|(key, _, _)| {
            format!(
                "core.{key} changed: it cannot change in a running host; restart gordon to apply it"
            )
        })
        .collect()
}

/// What a reload does to one plugin.
enum Change {
    Unchanged,
    /// Same instance; only its handler timeout changes.
    Timeout,
    /// Changed configuration: try `apply_config`, else replace.
    Config,
    /// Isolation changed: always a new instance.
    Replace,
    /// A discovery watch's clusters changed: applied to the watch live.
    Watch,
    Add,
}

/// Validates the new configuration and, if it is valid, applies it. Returns the
/// report: `{"ok", "generation", "problems", "unchanged", "applied", "restarted",
/// "added", "removed"}`.
fn reload(running: &mut Running) -> Value {
    let root = running.session.config.root.clone();
    let refused = |problems: Vec<String>| {
        for p in &problems {
            tracing::error!("Reload refused: {p}");
        }
        events::publish("config.refused", None, json!({"problems": problems}));
        json!({"ok": false, "problems": problems, "generation": generation(running)})
    };
    let config = match Config::load(&root, "gordon") {
        Ok(c) => c,
        Err(e) => return refused(vec![e.to_string()]),
    };
    let mut problems = restart_only(&running.session.config.core, &config.core);
    let session = Session::discover(config, running.verbose);
    problems.extend(
        session
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.message.clone()),
    );
    let core = &session.config.core;
    // What changes, and every changed or added plugin's configuration checked.
    let mut changes: Vec<(PluginInfo, Change)> = Vec::new();
    for info in &session.active {
        let cfg = session.plugin_config_json(info);
        let isolated = crate::isolation::is_isolated(core, &info.name);
        let change = match running.members.get(&info.name) {
            None => Change::Add,
            Some(m) if m.info.library != info.library || m.info.kind != info.kind => {
                Change::Replace
            }
            Some(m) if m.isolated != isolated => Change::Replace,
            Some(m) if m.config_json != *cfg => Change::Config,
            // Only the clusters a discovery plugin watches changed.
            Some(m) if m.watch.as_ref() != core.discovery.get(&info.name) => Change::Watch,
            Some(m) => match &m.role {
                Role::Handler(slot) if slot.timeout != handler_timeout(core, &info.name) => {
                    Change::Timeout
                }
                _ => Change::Unchanged,
            },
        };
        if matches!(change, Change::Config | Change::Replace | Change::Add) {
            let checked = if isolated {
                crate::isolation::validate(info, &cfg, core)
            } else {
                instance::validate(info, &cfg)
            };
            if let Err(e) = checked {
                problems.push(crate::plugins::keys::refusal(info, &e));
            }
        }
        changes.push((info.clone(), change));
    }
    // Routes over the new set of handlers.
    let phases: Vec<&str> = session
        .active
        .iter()
        .filter(|i| i.kind == gordon_plugin_api::abi::KIND_MESSAGE_HANDLER)
        .map(|i| i.phase.as_str())
        .collect();
    for info in session.active.iter().filter(|i| is_source(i, core)) {
        let start = source_start(info);
        if let Err(e) = super::plan::plan(start.as_str(), &core.route, &phases) {
            problems.push(format!("source `{}`: {e}", info.name));
        }
    }
    if !session.active.iter().any(|i| is_source(i, core)) {
        problems.push(
            "no runnable plugin would be active: nothing would produce messages (check core.plugins)"
                .into(),
        );
    }
    if !problems.is_empty() {
        return refused(problems);
    }
    apply(running, session, changes)
}

fn generation(running: &Running) -> u64 {
    running
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .generation
}

/// Applies a validated configuration.
fn apply(running: &mut Running, session: Session, changes: Vec<(PluginInfo, Change)>) -> Value {
    let mut problems = Vec::new();
    let (mut unchanged, mut applied, mut restarted, mut added) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut retired: Vec<Member> = Vec::new();
    let mut relay = None;
    let new_names: BTreeSet<&str> = session.active.iter().map(|i| i.name.as_str()).collect();
    let core = session.config.core.clone();
    for (info, change) in changes {
        let name = info.name.clone();
        match change {
            Change::Unchanged => unchanged.push(name),
            Change::Timeout => {
                if let Some(m) = running.members.get_mut(&name) {
                    if let Role::Handler(slot) = &m.role {
                        m.role = Role::Handler(Arc::new(HandlerSlot {
                            name: slot.name,
                            phase: slot.phase,
                            obj: Arc::clone(&slot.obj),
                            timeout: handler_timeout(&core, &name),
                        }));
                    }
                }
                applied.push(name);
            }
            Change::Config => {
                let cfg = session.plugin_config_json(&info);
                let member = &running.members[&name];
                match cfg.validate_with(|json| member.control.apply_config(json)) {
                    Ok(true) => {
                        tracing::info!(plugin = %name, "Configuration applied live.");
                        events::publish("config.applied", Some(&name), json!({"live": true}));
                        let m = running.members.get_mut(&name).inspect(|_| ());
                        let m = m.map(|m| {
                            m.config_json = cfg.to_string();
                            &mut *m
                        });
                        if let Some(Member {
                            role: Role::Handler(slot),
                            ..
                        }) = m
                        {
                            let timeout = handler_timeout(&core, &name);
                            if slot.timeout != timeout {
                                *slot = Arc::new(HandlerSlot {
                                    name: slot.name,
                                    phase: slot.phase,
                                    obj: Arc::clone(&slot.obj),
                                    timeout,
                                });
                            }
                        }
                        applied.push(name);
                    }
                    Ok(false) => replace_into(
                        running,
                        &session,
                        &info,
                        &mut relay,
                        &mut retired,
                        &mut restarted,
                        &mut problems,
                    ),
                    Err(e) => {
                        let p = format!(
                            "plugin `{name}` refused its new configuration ({}); it keeps the previous one",
                            e.message()
                        );
                        events::publish(
                            "config.refused",
                            Some(&name),
                            json!({"reason": e.message()}),
                        );
                        problems.push(p);
                    }
                }
            }
            Change::Watch => {
                let watch = core.discovery.get(&name).cloned().unwrap_or_default();
                let member = running.members.get_mut(&name);
                let applied_live = match member.as_ref().map(|m| &m.role) {
                    Some(Role::Source(s)) => s.reconfigure_watch(&watch),
                    _ => Ok(false),
                };
                match applied_live {
                    Ok(true) => {
                        if let Some(m) = member {
                            m.watch = Some(watch);
                        }
                        events::publish("config.applied", Some(&name), json!({"live": true}));
                        applied.push(name);
                    }
                    Ok(false) => replace_into(
                        running,
                        &session,
                        &info,
                        &mut relay,
                        &mut retired,
                        &mut restarted,
                        &mut problems,
                    ),
                    Err(e) => problems.push(format!(
                        "plugin `{name}`: its watch could not take the new clusters: {}",
                        e.message()
                    )),
                }
            }
            Change::Replace => replace_into(
                running,
                &session,
                &info,
                &mut relay,
                &mut retired,
                &mut restarted,
                &mut problems,
            ),
            Change::Add => match create_member(&session, &info, &mut relay) {
                Ok(m) => {
                    running.members.insert(name.clone(), m);
                    added.push(name);
                }
                Err(e) => problems.push(format!("{}; not added", info.problem(&e))),
            },
        }
    }
    if relay.is_some() {
        problems.push(
            "the metric relay plugin changed: it cannot be replaced in a running host; restart gordon to apply it"
                .into(),
        );
    }
    let removed: Vec<String> = running
        .members
        .keys()
        .filter(|n| !new_names.contains(n.as_str()))
        .cloned()
        .collect();
    for name in &removed {
        if let Some(m) = running.members.remove(name) {
            retired.push(m);
        }
    }
    // The new table: every member's handler, every member source's route.
    let (handlers, sources) = pipeline_parts(&session, &running.members);
    let starts: Vec<_> = sources.iter().map(|(n, p, _)| (*n, *p)).collect();
    let table = match running
        .pipeline
        .plan(handlers, &starts, &session.config.core.route)
    {
        Ok(t) => t,
        Err(e) => {
            // A handler the routes need failed to start: keep every old instance.
            problems.push(format!("{e}; the previous routes stay in use"));
            for m in retired {
                running.members.insert(m.info.name.clone(), m);
            }
            return json!({"ok": false, "problems": problems, "generation": generation(running)});
        }
    };
    let deadline = Duration::from_secs_f64(core.shutdown_timeout);
    let source_of = |m: &Member| match &m.role {
        Role::Source(s) => Some(Arc::clone(s)),
        _ => None,
    };
    // A removed source drains on the routes it had; a replaced one drains beside
    // its replacement, on the new routes (its plan is kept under its name).
    let (removed_sources, replaced_sources): (Vec<_>, Vec<_>) = retired
        .iter()
        .filter_map(|m| source_of(m).map(|s| (removed.contains(&m.info.name), s)))
        .partition(|(gone, _)| *gone);
    for (_, old) in &removed_sources {
        if let Some(p) = running.pipeline.retire_source(old, deadline) {
            problems.push(p);
        }
    }
    let old_table = running.pipeline.set_table(table);
    // New sources start once the table that routes them is in place.
    for (name, start, runnable) in sources {
        if running.pipeline.has_source(&runnable) {
            continue;
        }
        if let Err(e) = running.pipeline.add_source(Source {
            name,
            start,
            runnable,
        }) {
            problems.push(format!("source `{name}`: {e}"));
        }
    }
    for (_, old) in &replaced_sources {
        if let Some(p) = running.pipeline.retire_source(old, deadline) {
            problems.push(p);
        }
    }
    let kept: Vec<_> = running.pipeline.table().handlers.clone();
    let old_handlers: Vec<Arc<HandlerSlot>> = old_table
        .handlers
        .iter()
        .filter(|h| !kept.iter().any(|k| Arc::ptr_eq(&k.obj, &h.obj)))
        .cloned()
        .collect();
    drop(old_table);
    drop(retired);
    problems.extend(running.pipeline.retire_handlers(old_handlers, deadline));
    running.session = session;
    let generation = {
        let mut live = running.live.lock().unwrap_or_else(|p| p.into_inner());
        live.generation += 1;
        live.generation
    };
    running.publish_status();
    events::publish(
        "config.applied",
        None,
        json!({"generation": generation, "applied": applied, "restarted": restarted, "added": added, "removed": removed}),
    );
    let report = json!({
        "ok": problems.is_empty(),
        "generation": generation,
        "problems": problems,
        "unchanged": unchanged,
        "applied": applied,
        "restarted": restarted,
        "added": added,
        "removed": removed,
    });
    tracing::info!(generation, applied = ?report["applied"], restarted = ?report["restarted"], added = ?report["added"], removed = ?report["removed"], "Configuration generation {generation} in use.");
    report
}

/// [`replace`], recording the old member to retire and the plugin as restarted,
/// or the problem.
fn replace_into(
    running: &mut Running,
    session: &Session,
    info: &PluginInfo,
    relay: &mut Option<(&'static str, crate::plugins::handle::Relay)>,
    retired: &mut Vec<Member>,
    restarted: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    match replace(running, session, info, relay) {
        Ok(old) => {
            retired.push(old);
            restarted.push(info.name.clone());
        }
        Err(p) => problems.push(p),
    }
}

/// Creates a new instance of `info` and swaps it in for the member of that name;
/// returns the old member, to be drained and stopped.
fn replace(
    running: &mut Running,
    session: &Session,
    info: &PluginInfo,
    relay: &mut Option<(&'static str, crate::plugins::handle::Relay)>,
) -> Result<Member, String> {
    let new = create_member(session, info, relay)
        .map_err(|e| format!("{}; the previous instance keeps serving", info.problem(&e)))?;
    let old = running
        .members
        .insert(info.name.clone(), new)
        .ok_or_else(|| format!("plugin `{}` was not running", info.name))?;
    tracing::info!(plugin = %info.name, "New instance started; the previous one is drained and stopped.");
    events::publish("config.applied", Some(&info.name), json!({"live": false}));
    Ok(old)
}
