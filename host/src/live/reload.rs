//! Reload requests: `gordon ctl reload` (which waits for the answer) and SIGHUP
//! (which is answered in the log), handled one at a time by the service's main
//! thread.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

static QUEUE: Mutex<Vec<SyncSender<Value>>> = Mutex::new(Vec::new());
static WAKE: OnceLock<tokio::sync::Notify> = OnceLock::new();

fn wake() -> &'static tokio::sync::Notify {
    WAKE.get_or_init(tokio::sync::Notify::new)
}

/// Asks for a reload; the answer (the reload's report, JSON) arrives on the
/// returned receiver.
pub fn request() -> Receiver<Value> {
    let (tx, rx) = sync_channel(1);
    QUEUE.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
    wake().notify_one();
    rx
}

/// The requests waiting, oldest first.
pub fn take() -> Vec<SyncSender<Value>> {
    std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Resolves when a request may be waiting (check with [`take`]).
pub async fn requested() {
    wake().notified().await;
}
