//! Remembers what became of each accepted message, for `GET /events/{id}`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use gordon_plugin_api::{EventMessage, MsgId, Phase};
use serde_json::{json, Value};

enum Outcome {
    Pending,
    /// The message as it came back for cleanup. Kept as it is, and turned into
    /// JSON only when asked for: building the document for every message (a tree of
    /// small allocations, `track` of them alive) cost more than publishing it.
    Done(Box<EventMessage>),
}

struct Inner {
    outcomes: HashMap<MsgId, Outcome>,
    order: VecDeque<MsgId>,
}

/// A bounded map of message id -> outcome; the oldest entries are forgotten first.
pub struct Tracker {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Tracker {
    /// A tracker remembering at most `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Tracker {
            inner: Mutex::new(Inner {
                outcomes: HashMap::new(),
                order: VecDeque::new(),
            }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records messages as accepted and not yet finished.
    pub fn accept(&self, ids: &[MsgId]) {
        let mut inner = self.lock();
        for id in ids {
            inner.outcomes.insert(*id, Outcome::Pending);
            inner.order.push_back(*id);
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.outcomes.remove(&old);
            }
        }
    }

    /// Forgets messages that never reached the host (the queue was closed).
    pub fn forget(&self, ids: &[MsgId]) {
        let mut inner = self.lock();
        for id in ids {
            inner.outcomes.remove(id);
        }
    }

    /// Records the outcome of a message handed back for cleanup.
    pub fn finish(&self, msg: &EventMessage) {
        let mut inner = self.lock();
        if let Some(slot) = inner.outcomes.get_mut(&msg.msg_id()) {
            *slot = Outcome::Done(Box::new(msg.clone()));
        }
    }

    /// The status document of a message, if it is remembered.
    pub fn status(&self, id: MsgId) -> Option<Value> {
        let msg = match self.lock().outcomes.get(&id)? {
            Outcome::Pending => return Some(json!({"id": id.to_string(), "status": "pending"})),
            Outcome::Done(msg) => msg.clone(),
        };
        let dropped = msg.phase() == Phase::DROP;
        let mut doc = msg.to_json();
        Some(json!({
            "id": id.to_string(),
            "status": if dropped { "dropped" } else { "published" },
            "data": doc["data"].take(),
            "history": doc["history"].take(),
        }))
    }
}
