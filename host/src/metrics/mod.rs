//! Metrics: one relay, chosen by `core.metrics`, receives every metric event the
//! router and the plugins emit.
//!
//! Call sites never build metric events by hand: the router uses the functions in
//! [`events`], so names and labels stay the same whichever relay is chosen.
//!
//! The relay is installed once plugins are created (a relay plugin is one of
//! them), but plugins may emit while they are created — `dns.zonefile` writes a
//! fresh zone file, and counts it, in its constructor. Events emitted before the
//! relay is installed are kept (up to [`EARLY_LIMIT`]) and handed to it, in order,
//! when it is; nothing emitted early picks a relay of its own.

pub mod events;
pub mod ffwd;
pub mod log;
pub mod prometheus;

use std::sync::{Mutex, OnceLock};

use gordon_plugin_api::abi::{MetricEvent, MetricKind, Tag};

use crate::plugins::handle;

/// Where metric events go.
pub trait Relay: Send + Sync {
    /// Relays one event.
    fn emit(&self, event: &MetricEvent<'_>);
    /// Flushes at shutdown.
    fn cleanup(&self) {}
}

/// Events kept before a relay is installed; past it, later early events are
/// counted and dropped.
pub const EARLY_LIMIT: usize = 10_000;

/// An event kept until a relay is installed.
struct Owned {
    kind: MetricKind,
    name: String,
    value: f64,
    plugin: String,
    tags: Vec<(String, String)>,
}

impl Owned {
    fn of(e: &MetricEvent<'_>) -> Self {
        Owned {
            kind: e.kind,
            name: e.name.to_string(),
            value: e.value,
            plugin: e.plugin.to_string(),
            tags: e
                .tags
                .iter()
                .map(|t| (t.key.to_string(), t.value.to_string()))
                .collect(),
        }
    }

    fn replay(&self, relay: &dyn Relay) {
        let tags: Vec<Tag<'_>> = self
            .tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.as_str().into(),
                value: v.as_str().into(),
            })
            .collect();
        relay.emit(&MetricEvent {
            kind: self.kind,
            name: self.name.as_str().into(),
            value: self.value,
            plugin: self.plugin.as_str().into(),
            tags: (&tags[..]).into(),
        });
    }
}

#[derive(Default)]
struct Early {
    events: Vec<Owned>,
    dropped: usize,
}

/// The relay of a process, or the events waiting for it.
struct Slot {
    relay: OnceLock<Box<dyn Relay>>,
    /// Taken by every emit until the relay is set, and by `install` while it
    /// replays: an event emitted meanwhile waits, so none overtakes an older one.
    early: Mutex<Early>,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            relay: OnceLock::new(),
            early: Mutex::new(Early {
                events: Vec::new(),
                dropped: 0,
            }),
        }
    }

    fn emit(&self, e: &MetricEvent<'_>) {
        if let Some(relay) = self.relay.get() {
            return relay.emit(e);
        }
        let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
        // Installed while this thread waited for the lock: the replay is done.
        if let Some(relay) = self.relay.get() {
            drop(early);
            return relay.emit(e);
        }
        if early.events.len() < EARLY_LIMIT {
            early.events.push(Owned::of(e));
        } else {
            early.dropped += 1;
        }
    }

    /// Hands the early events to `relay`, then makes it the relay. Gives it back
    /// if one is installed already.
    fn install(&self, relay: Box<dyn Relay>) -> Result<usize, Box<dyn Relay>> {
        let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
        if self.relay.get().is_some() {
            return Err(relay);
        }
        for e in early.events.drain(..) {
            e.replay(relay.as_ref());
        }
        let dropped = std::mem::take(&mut early.dropped);
        self.relay.set(relay)?;
        Ok(dropped)
    }

    fn cleanup(&self) {
        if let Some(relay) = self.relay.get() {
            relay.cleanup();
        }
    }
}

static SLOT: Slot = Slot::new();

/// Installs the relay of this process, handing it every event emitted so far.
/// There is one relay per process: a second call is refused with a warning.
pub fn install(relay: Box<dyn Relay>) {
    match SLOT.install(relay) {
        Ok(0) => {}
        Ok(dropped) => tracing::warn!(
            dropped,
            "More than {EARLY_LIMIT} metric events before the relay was installed; the rest were dropped."
        ),
        Err(_) => tracing::warn!("A metric relay is installed already; ignoring another."),
    }
}

/// What call sites emit to: the installed relay, or, until there is one, the
/// queue it will receive.
struct Current;

impl Relay for Current {
    fn emit(&self, event: &MetricEvent<'_>) {
        SLOT.emit(event);
    }
    fn cleanup(&self) {
        SLOT.cleanup();
    }
}

/// The relay to emit to.
pub fn relay() -> &'static dyn Relay {
    &Current
}

/// A metric event from a plugin, through the host-services table.
pub fn emit_plugin_event(event: &MetricEvent<'_>) {
    SLOT.emit(event);
}

/// A metric-relay plugin used as the host's relay.
pub struct PluginRelay {
    /// The plugin.
    pub obj: handle::Relay,
}

impl Relay for PluginRelay {
    fn emit(&self, event: &MetricEvent<'_>) {
        self.obj.emit(event);
    }
    fn cleanup(&self) {
        if let Err(e) = self.obj.cleanup(std::time::Duration::from_secs(5)) {
            tracing::warn!(error = %e, "Metric relay plugin cleanup failed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(String, f64, String)>>>);

    impl Relay for Seen {
        fn emit(&self, e: &MetricEvent<'_>) {
            let tags: Vec<String> = e
                .tags
                .iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect();
            self.0
                .lock()
                .unwrap()
                .push((e.name.to_string(), e.value, tags.join(",")));
        }
    }

    fn event<'a>(name: &'a str, value: f64, tags: &'a [Tag<'a>]) -> MetricEvent<'a> {
        MetricEvent {
            kind: MetricKind::Set,
            name: name.into(),
            value,
            plugin: "dns.zonefile".into(),
            tags: tags.into(),
        }
    }

    /// A plugin that emits while it is created (before the relay is installed)
    /// must not leave the relay chosen later without those events — nor make it
    /// lose what comes after.
    #[test]
    fn events_before_install_reach_the_relay_installed_later() {
        let slot = Slot::new();
        let tags = [Tag {
            key: "zone".into(),
            value: "example.com.".into(),
        }];
        slot.emit(&event("zonefile.serial", 1.0, &tags));
        slot.emit(&event("zonefile.serial", 2.0, &tags));
        let seen = Seen::default();
        assert!(matches!(slot.install(Box::new(seen.clone())), Ok(0)));
        slot.emit(&event("zonefile.serial", 3.0, &[]));
        let got = seen.0.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                ("zonefile.serial".into(), 1.0, "zone=example.com.".into()),
                ("zonefile.serial".into(), 2.0, "zone=example.com.".into()),
                ("zonefile.serial".into(), 3.0, String::new()),
            ]
        );
        // One relay per process: another is refused, the first stays.
        let other = Seen::default();
        assert!(slot.install(Box::new(other.clone())).is_err());
        slot.emit(&event("zonefile.serial", 4.0, &[]));
        assert_eq!(seen.0.lock().unwrap().len(), 4);
        assert!(other.0.lock().unwrap().is_empty());
    }

    #[test]
    fn early_events_past_the_limit_are_counted() {
        let slot = Slot::new();
        for _ in 0..EARLY_LIMIT + 3 {
            slot.emit(&event("x", 1.0, &[]));
        }
        let seen = Seen::default();
        assert!(matches!(slot.install(Box::new(seen.clone())), Ok(3)));
        assert_eq!(seen.0.lock().unwrap().len(), EARLY_LIMIT);
    }
}
