//! Waiting for SIGINT/SIGTERM without spending CPU: a small current-thread runtime
//! blocks in epoll until a signal arrives or the other thing waited for happens.

use std::future::Future;

use anyhow::Context as _;

/// Runs the future `until` makes (inside the runtime, so it may use tokio's timers)
/// and watches for SIGTERM and SIGINT. Returns the signal's name if one arrived
/// first, `None` if the future finished first.
///
/// # Errors
/// The runtime or the signal handlers cannot be set up.
pub fn wait_for_signal_or<F, Fut>(until: F) -> anyhow::Result<Option<&'static str>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::select! {
            _ = term.recv() => Ok(Some("SIGTERM")),
            _ = int.recv() => Ok(Some("SIGINT")),
            () = until() => Ok(None),
        }
    })
}

/// After a first signal: watches for a second SIGINT or SIGTERM on a thread of its
/// own and then exits the process at once with code 3, logging what `abandoned`
/// says is left (queued messages, plugins still stopping).
pub fn exit_on_next_signal(abandoned: impl FnOnce() -> String + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("gordon-second-signal".into())
        .spawn(move || {
            if let Ok(Some(signal)) = wait_for_signal_or(std::future::pending::<()>) {
                let what = abandoned();
                tracing::error!("Second {signal}: exiting at once; abandoning {what}.");
                eprintln!("gordon: second {signal}: exited at once, abandoning {what}");
                std::process::exit(3);
            }
        });
    if spawned.is_err() {
        tracing::warn!("Cannot watch for a second signal; the shutdown runs to its deadline.");
    }
}
