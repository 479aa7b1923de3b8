//! Operator requests for the service's main thread: `gordon ctl reload` and
//! `gordon ctl plugin stop|start NAME` (each waits for its answer), and SIGHUP
//! (a reload answered in the log). They are handled one at a time, in order.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// What an operator asks of the running service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Reload the configuration.
    Reload,
    /// Take a plugin out of service.
    Stop(String),
    /// Put a stopped plugin back in service.
    Start(String),
}

/// A command and where its answer goes.
pub type Request = (Command, SyncSender<Value>);

static QUEUE: Mutex<Vec<Request>> = Mutex::new(Vec::new());
static WAKE: OnceLock<tokio::sync::Notify> = OnceLock::new();

fn wake() -> &'static tokio::sync::Notify {
    WAKE.get_or_init(tokio::sync::Notify::new)
}

/// Queues `command`; its answer (JSON) arrives on the returned receiver.
pub fn request(command: Command) -> Receiver<Value> {
    let (tx, rx) = sync_channel(1);
    QUEUE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((command, tx));
    wake().notify_one();
    rx
}

/// The requests waiting, oldest first.
pub fn take() -> Vec<Request> {
    std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Resolves when a request may be waiting (check with [`take`]).
pub async fn requested() {
    wake().notified().await;
}
