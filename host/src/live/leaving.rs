//! A plugin's request to leave (dr-provision's `Leaving`): recorded here, from
//! whichever thread the plugin called on, and acted on by the service, which stops
//! the plugin cleanly and restarts it with back-off or leaves it stopped.

use std::sync::{Mutex, OnceLock};

/// Where requests go in this process: the host's queue, or — in a plugin
/// process — the telemetry link to the host.
static FORWARD: OnceLock<fn(&str, &str)> = OnceLock::new();

static QUEUE: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static WAKE: OnceLock<tokio::sync::Notify> = OnceLock::new();

fn wake() -> &'static tokio::sync::Notify {
    WAKE.get_or_init(tokio::sync::Notify::new)
}

/// In a plugin process: send requests to the host instead of queueing them.
pub fn forward_to(f: fn(&str, &str)) {
    let _ = FORWARD.set(f);
}

/// Plugin `plugin` asks to leave, saying why.
pub fn request(plugin: &str, reason: &str) {
    if let Some(forward) = FORWARD.get() {
        return forward(plugin, reason);
    }
    tracing::info!(plugin, reason, "Plugin asks to leave.");
    QUEUE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((plugin.to_owned(), reason.to_owned()));
    wake().notify_one();
}

/// Takes the requests made so far, oldest first.
pub fn take() -> Vec<(String, String)> {
    std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Wakes the service's main thread without a request (a left plugin's back-off
/// is over).
pub fn wake_up() {
    wake().notify_one();
}

/// Resolves when a request may be waiting (check with [`take`]).
pub async fn requested() {
    wake().notified().await;
}
