//! What `gordon ctl status` shows: every plugin's state, the queues, the host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::isolation::supervisor::{Status, Supervisor};
use crate::service::pipeline::Probe;

/// One created plugin, as the control socket reports it.
pub struct Plugin {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its phase (or a source's start phase).
    pub phase: String,
    /// Its process's supervisor, when it is isolated.
    pub supervisor: Option<Arc<Supervisor>>,
    /// Its live controls.
    pub control: Arc<crate::plugins::handle::Control>,
    /// The actions it offers.
    pub actions: Vec<gordon_plugin_api::ActionSpec>,
    /// Why it is out of service, if it is (`ctl plugin stop`, or it left).
    pub stopped: Option<String>,
    /// Its host-event subscription, if it selected events.
    pub events: Option<Arc<crate::live::events::Subscription>>,
}

/// The running host, as the control socket sees it.
pub struct Live {
    started: Instant,
    /// The configuration generation (1 at start).
    pub generation: u64,
    /// The configuration files in use.
    pub files: Vec<PathBuf>,
    /// Every created plugin.
    pub plugins: Vec<Plugin>,
    /// The pipeline's queues, once it runs.
    pub queues: Option<Probe>,
}

impl Live {
    /// A host that started now.
    pub fn new(files: Vec<PathBuf>, plugins: Vec<Plugin>) -> Self {
        Live {
            started: Instant::now(),
            generation: 1,
            files,
            plugins,
            queues: None,
        }
    }

    /// The status as one JSON object.
    pub fn snapshot(&self) -> Value {
        let problems = crate::health::problems();
        let plugins: Vec<Value> = self
            .plugins
            .iter()
            .map(|p| {
                let prefix = format!("plugin `{}`: ", p.name);
                let problem = problems
                    .iter()
                    .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned));
                let (state, restarts, pid) = match &p.supervisor {
                    _ if p.stopped.is_some() => ("stopped".to_owned(), 0, None),
                    Some(sup) => (state_name(&sup.status()), sup.restarts(), sup.pid()),
                    None => {
                        let state = match &problem {
                            Some(text) if text.contains("did not return") => "stuck",
                            Some(_) => "failed",
                            None => "running",
                        };
                        (state.to_owned(), 0, None)
                    }
                };
                json!({
                    "name": p.name,
                    "kind": p.kind,
                    "phase": p.phase,
                    "isolated": p.supervisor.is_some(),
                    "state": state,
                    "restarts": restarts,
                    "pid": pid,
                    "problem": problem.or_else(|| p.stopped.clone()),
                    "actions": p.actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
                    "events_dropped": p.events.as_ref().map_or(0, |s| s.dropped()),
                })
            })
            .collect();
        let sources: Vec<Value> = self
            .queues
            .as_ref()
            .map(|q| {
                q.sources()
                    .into_iter()
                    .map(|(name, queued, in_flight)| {
                        json!({"name": name, "queued": queued, "in_flight": in_flight})
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stages: Vec<Value> = super::tally::snapshot()
            .into_iter()
            .map(|(phase, plugin, t)| {
                json!({
                    "phase": phase,
                    "plugin": plugin,
                    "messages": t.messages,
                    "dropped": t.dropped,
                    "busy_seconds": t.busy_seconds,
                })
            })
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "generation": self.generation,
            "files": self.files,
            "healthy": problems.is_empty(),
            "problems": problems,
            "plugins": plugins,
            "sources": sources,
            "stages": stages,
        })
    }
}

fn state_name(status: &Status) -> String {
    match status {
        Status::Starting => "starting",
        Status::Running => "running",
        Status::Restarting => "restarting",
        Status::Failed(_) => "failed",
        Status::Stopped => "stopped",
    }
    .to_owned()
}

/// The sources' table of a status document: header, then one row per source.
pub fn source_rows(doc: &Value) -> Vec<[String; 3]> {
    let mut rows = vec![["SOURCE", "QUEUED", "IN FLIGHT"].map(String::from)];
    for s in doc["sources"].as_array().into_iter().flatten() {
        rows.push([
            s["name"].as_str().unwrap_or("?").to_owned(),
            s["queued"].to_string(),
            s["in_flight"].to_string(),
        ]);
    }
    rows
}

/// The status as an operator reads it.
pub fn render(doc: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let files: Vec<String> = doc["files"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "gordon {} (pid {}), up {:.0} s, configuration generation {} ({})",
        doc["version"].as_str().unwrap_or("?"),
        doc["pid"],
        doc["uptime_seconds"].as_f64().unwrap_or(0.0),
        doc["generation"],
        files.join(", ")
    );
    let mut rows = vec![["PLUGIN", "KIND", "PHASE", "STATE", "PID", "RESTARTS"].map(String::from)];
    for p in doc["plugins"].as_array().into_iter().flatten() {
        let text = |k: &str| p[k].as_str().unwrap_or("-").to_owned();
        let mut name = text("name");
        if p["isolated"].as_bool() == Some(true) {
            name.push_str(" [isolated]");
        }
        rows.push([
            name,
            text("kind"),
            if text("phase").is_empty() {
                "-".into()
            } else {
                text("phase")
            },
            text("state"),
            p["pid"].as_i64().map_or("-".into(), |v| v.to_string()),
            p["restarts"].to_string(),
        ]);
    }
    out.push_str(&crate::table::render(&rows));
    let rows = source_rows(doc);
    if rows.len() > 1 {
        out.push('\n');
        out.push_str(&crate::table::render(&rows));
    }
    match doc["problems"].as_array() {
        Some(p) if !p.is_empty() => {
            out.push_str("\nproblems:\n");
            for line in p {
                let _ = writeln!(out, "  {}", line.as_str().unwrap_or("?"));
            }
        }
        _ => out.push_str("\nhealthy\n"),
    }
    out
}
