//! The host's own health: which plugins have failed or are stuck.
//!
//! Plugins read it through the host-services table (`http.events` answers
//! `/healthz` with it), and a run that recorded a problem exits non-zero. A problem
//! stays until the process ends: a handler that once missed its deadline may miss it
//! again, and an operator should see that it did.

use std::collections::BTreeMap;
use std::sync::Mutex;

static PROBLEMS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Records a problem with `plugin` (the latest one per plugin is kept).
pub fn report(plugin: &str, problem: impl Into<String>) {
    PROBLEMS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(plugin.to_owned(), problem.into());
}

/// Every problem, one line each, naming the plugin.
pub fn problems() -> Vec<String> {
    PROBLEMS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(plugin, problem)| format!("plugin `{plugin}`: {problem}"))
        .collect()
}

/// The health as `{"healthy": bool, "problems": [...]}`.
pub fn to_json() -> serde_json::Value {
    let problems = problems();
    serde_json::json!({ "healthy": problems.is_empty(), "problems": problems })
}
