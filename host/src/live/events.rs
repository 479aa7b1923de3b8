//! Host events (dr-provision's `SelectEvents`): what happens in the host — plugin
//! state changes, configuration applied or refused, messages dropped, actions
//! invoked — delivered to the plugins that selected it.
//!
//! Delivery is asynchronous, on a bounded queue per subscriber with a thread of
//! its own: a subscriber that is slow (or stuck) loses events, which are counted
//! (`gordon.host_events.dropped{plugin}` and `ctl status`), and never slows the
//! thread that published them. Publishing with no subscriber for the event costs
//! one atomic load.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};

use gordon_plugin_api::event_matches;
use serde_json::{json, Map, Value};

use crate::plugins::handle::Control;

/// Events waiting per subscriber before new ones are dropped.
pub const QUEUE: usize = 1024;

struct Subscriber {
    id: u64,
    plugin: &'static str,
    patterns: Vec<String>,
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

static SUBSCRIBERS: RwLock<Vec<Subscriber>> = RwLock::new(Vec::new());
static COUNT: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A plugin's subscription; dropping it ends delivery (and its thread).
pub struct Subscription {
    id: u64,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// Events dropped because the plugin's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = SUBSCRIBERS.write().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| s.id != self.id);
        COUNT.store(subs.len(), Ordering::Release);
    }
}

/// Delivers the events matching `patterns` to `control`, on a thread of its own.
/// `None` when the plugin selected none, or the thread cannot start.
pub fn subscribe(
    plugin: &'static str,
    patterns: &[String],
    control: Arc<Control>,
) -> Option<Subscription> {
    if patterns.is_empty() {
        return None;
    }
    let (tx, rx) = sync_channel::<String>(QUEUE);
    let spawned = std::thread::Builder::new()
        .name(format!("gordon-events-{plugin}"))
        .spawn(move || {
            for event in rx {
                control.host_event(&event);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(plugin, error = %e, "Cannot start host-event delivery; the plugin gets no events.");
        return None;
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let dropped = Arc::new(AtomicU64::new(0));
    let mut subs = SUBSCRIBERS.write().unwrap_or_else(|p| p.into_inner());
    subs.push(Subscriber {
        id,
        plugin,
        patterns: patterns.to_vec(),
        tx,
        dropped: Arc::clone(&dropped),
    });
    COUNT.store(subs.len(), Ordering::Release);
    tracing::debug!(plugin, events = %patterns.join(", "), "Plugin subscribed to host events.");
    Some(Subscription { id, dropped })
}

/// Whether any subscriber selected events named `name`.
pub fn wanted(name: &str) -> bool {
    if COUNT.load(Ordering::Acquire) == 0 {
        return false;
    }
    let subs = SUBSCRIBERS.read().unwrap_or_else(|p| p.into_inner());
    subs.iter()
        .any(|s| s.patterns.iter().any(|p| event_matches(p, name)))
}

/// Publishes event `name` about `plugin` with `fields` (a JSON object) to every
/// subscriber that selected it. Never blocks.
pub fn publish(name: &str, plugin: Option<&str>, fields: Value) {
    if COUNT.load(Ordering::Acquire) == 0 {
        return;
    }
    let subs = SUBSCRIBERS.read().unwrap_or_else(|p| p.into_inner());
    let targets: Vec<&Subscriber> = subs
        .iter()
        .filter(|s| s.patterns.iter().any(|p| event_matches(p, name)))
        .collect();
    if targets.is_empty() {
        return;
    }
    let mut event = Map::new();
    event.insert("event".into(), json!(name));
    if let Some(plugin) = plugin {
        event.insert("plugin".into(), json!(plugin));
    }
    event.insert(
        "time".into(),
        json!(gordon_plugin_api::format_rfc3339(
            gordon_plugin_api::now_ns()
        )),
    );
    if let Value::Object(fields) = fields {
        event.extend(fields);
    }
    let text = Value::Object(event).to_string();
    for s in targets {
        match s.tx.try_send(text.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                crate::metrics::events::host_event_dropped(s.plugin);
            }
            // Its thread ended: the subscription is going away.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
