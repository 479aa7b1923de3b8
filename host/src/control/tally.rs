//! Per stage (phase and plugin) running totals — messages handled, dropped and
//! the time spent — kept in memory for `gordon ctl status` and `ctl top`,
//! whichever metric relay is chosen. Updated once per batch and stage by the
//! same calls that emit the metrics (`metrics::events`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The totals of one stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Messages the stage handled (a source's cleanup: handed back).
    pub messages: u64,
    /// Messages the stage failed.
    pub dropped: u64,
    /// Seconds spent in the stage's calls.
    pub busy_seconds: f64,
}

/// Keyed by (phase, plugin); both are interned names, a few dozen at most, so
/// an update is one short lock and no allocation.
static TOTALS: Mutex<BTreeMap<(&'static str, &'static str), Totals>> = Mutex::new(BTreeMap::new());

fn with(phase: &'static str, plugin: &'static str, f: impl FnOnce(&mut Totals)) {
    let mut map = TOTALS.lock().unwrap_or_else(|p| p.into_inner());
    f(map.entry((phase, plugin)).or_default());
}

/// A stage handled `n` messages in `elapsed`.
pub fn handled(phase: &'static str, plugin: &'static str, n: usize, elapsed: Duration) {
    with(phase, plugin, |t| {
        t.messages += n as u64;
        t.busy_seconds += elapsed.as_secs_f64();
    });
}

/// A stage failed `n` messages.
pub fn dropped(phase: &'static str, plugin: &'static str, n: usize) {
    with(phase, plugin, |t| t.dropped += n as u64);
}

/// Every stage's totals so far, in (phase, plugin) order.
pub fn snapshot() -> Vec<(&'static str, &'static str, Totals)> {
    TOTALS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((phase, plugin), t)| (*phase, *plugin, *t))
        .collect()
}
