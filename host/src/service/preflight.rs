//! What `gordon run` and `gordon janitor` refuse before creating any plugin, in one
//! place, so that `gordon check` refuses exactly the same.
//!
//! Everything here reads only the configuration and the catalog: no plugin is
//! created, no port bound. Each problem is one line naming the key or plugin.

use std::collections::BTreeMap;

use gordon_plugin_api::abi::{
    KIND_AUTHORITY, KIND_MESSAGE_HANDLER, KIND_METRIC_RELAY, KIND_PUBLISHER, KIND_RECONCILER,
};

use super::plan::plan;
use crate::metrics::{ffwd::FfwdConfig, prometheus::PrometheusConfig};
use crate::plugins::PluginInfo;
use crate::session::Session;

/// Which command the configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `gordon run`: sources, handlers, a relay.
    Service,
    /// `gordon janitor`: one authority, reconciler and publisher.
    Janitor,
}

/// Every problem that would stop `mode` from starting, as lines for the log.
pub fn problems(session: &Session, mode: Mode) -> Vec<String> {
    let mut out = Vec::new();
    let core = &session.config.core;
    if core.plugins.is_empty() {
        out.push("core.plugins is empty: no plugin would run".to_owned());
    }
    metrics_problems(session, &mut out);
    match mode {
        Mode::Service => service_problems(session, &mut out),
        Mode::Janitor => janitor_problems(session, &mut out),
    }
    out
}

fn of_kind<'a>(session: &'a Session, kind: &'a str) -> impl Iterator<Item = &'a PluginInfo> {
    session.active.iter().filter(move |p| p.kind == kind)
}

/// `core.metrics` names a known relay, and that relay's table is valid.
fn metrics_problems(session: &Session, out: &mut Vec<String>) {
    let name = session.config.core.metrics.as_str();
    let table = || session.config.table_json(name);
    let checked = match name {
        "log" => Ok(()),
        "ffwd" => serde_json::from_value::<FfwdConfig>(table())
            .map_err(|e| format!("invalid [ffwd] table: {e}"))
            .and_then(|c| c.check()),
        "prometheus" => serde_json::from_value::<PrometheusConfig>(table())
            .map_err(|e| format!("invalid [prometheus] table: {e}"))
            .and_then(|c| c.check()),
        _ if of_kind(session, KIND_METRIC_RELAY).any(|p| p.name == name) => Ok(()),
        _ => Err(format!(
            "core.metrics: `{name}` is neither log, ffwd, prometheus nor an active metric-relay plugin"
        )),
    };
    if let Err(e) = checked {
        out.push(e);
    }
}

fn service_problems(session: &Session, out: &mut Vec<String>) {
    let core = &session.config.core;
    let sources: Vec<&PluginInfo> = session
        .active
        .iter()
        .filter(|i| super::lifecycle::is_source(i, core))
        .collect();
    let handlers: Vec<&PluginInfo> = of_kind(session, KIND_MESSAGE_HANDLER).collect();
    if sources.is_empty() && !core.plugins.is_empty() {
        out.push(
            "no runnable plugin is active: nothing would produce messages (check core.plugins)"
                .to_owned(),
        );
    }
    let mut by_phase: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for h in &handlers {
        by_phase.entry(&h.phase).or_default().push(&h.name);
    }
    for (phase, names) in &by_phase {
        if names.len() > 1 {
            out.push(format!(
                "phase `{phase}` is handled by more than one active plugin: {}; only one handler may serve a phase",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ")
            ));
        }
    }
    let phases: Vec<&str> = handlers.iter().map(|h| h.phase.as_str()).collect();
    for s in &sources {
        let start = super::lifecycle::source_start(s);
        if let Err(e) = plan(start.as_str(), &core.route, &phases) {
            out.push(format!("source `{}`: {e}", s.name));
        }
    }
    for name in core.handler_timeouts.keys() {
        if !handlers.iter().any(|h| &h.name == name) {
            out.push(format!(
                "core.handler_timeouts: `{name}` is not an active message handler"
            ));
        }
    }
}

fn janitor_problems(session: &Session, out: &mut Vec<String>) {
    for kind in [KIND_AUTHORITY, KIND_RECONCILER, KIND_PUBLISHER] {
        let names: Vec<&str> = of_kind(session, kind).map(|p| p.name.as_str()).collect();
        match names.len() {
            1 => {}
            0 => out.push(format!(
                "no active {kind} plugin: core.plugins ({}) must name one that a library provides",
                session.config.core.plugins.join(", ")
            )),
            _ => out.push(format!(
                "core.plugins lists {} {kind} plugins: {}; the janitor runs one",
                names.len(),
                names.join(", ")
            )),
        }
    }
}

/// Route entries no active source reaches, and handlers on no route: worth a
/// warning (a handler that never runs is probably a mistake), not an error.
pub fn warnings(session: &Session, mode: Mode) -> Vec<String> {
    if mode != Mode::Service {
        return Vec::new();
    }
    let core = &session.config.core;
    let handlers: Vec<&PluginInfo> = of_kind(session, KIND_MESSAGE_HANDLER).collect();
    let phases: Vec<&str> = handlers.iter().map(|h| h.phase.as_str()).collect();
    let mut reached = Vec::new();
    for s in session
        .active
        .iter()
        .filter(|i| super::lifecycle::is_source(i, core))
    {
        let start = super::lifecycle::source_start(s);
        if let Ok(p) = plan(start.as_str(), &core.route, &phases) {
            reached.extend(p.stages.iter().map(|st| st.handler));
        }
    }
    handlers
        .iter()
        .enumerate()
        .filter(|(i, _)| !reached.contains(i))
        .map(|(_, h)| {
            format!(
                "plugin `{}` handles phase `{}`, which no source's route reaches: it will never run",
                h.name, h.phase
            )
        })
        .collect()
}

/// Adds every preflight problem (as errors) and warning to the session's problems.
pub fn add_to(session: &mut Session, mode: Mode) {
    use crate::session::{Problem, Severity};
    let errors = problems(session, mode).into_iter().map(|message| Problem {
        severity: Severity::Error,
        message,
    });
    let warnings = warnings(session, mode).into_iter().map(|message| Problem {
        severity: Severity::Warning,
        message,
    });
    let found: Vec<Problem> = errors.chain(warnings).collect();
    session.problems.extend(found);
}
