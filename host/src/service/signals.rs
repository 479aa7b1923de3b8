//! Waiting for SIGINT/SIGTERM without spending CPU: a small current-thread runtime
//! blocks in epoll until a signal arrives or the other thing waited for happens.
//! SIGHUP never stops the process: the service reloads on it, other commands log
//! and ignore it.

use std::future::Future;

use crate::error::{IoWhat, StartResult};

/// SIGTERM, SIGINT and SIGHUP, watched from the moment this is created: a signal
/// that arrives before [`Signals::wait_or`] runs is kept, not lost (the service
/// creates this before its sources start accepting work).
pub struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    ///
    /// # Errors
    /// The runtime or the signal handlers cannot be set up.
    pub fn install() -> StartResult<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .what("cannot start the signal runtime")?;
        let _entered = rt.enter();
        let term = signal(SignalKind::terminate()).what("cannot watch SIGTERM")?;
        let int = signal(SignalKind::interrupt()).what("cannot watch SIGINT")?;
        let hup = signal(SignalKind::hangup()).what("cannot watch SIGHUP")?;
        drop(_entered);
        Ok(Signals { rt, term, int, hup })
    }

    /// Runs the future `until` makes (inside the runtime, so it may use tokio's
    /// timers) until it finishes or SIGTERM or SIGINT arrives; returns the signal's
    /// name, or `None` if the future finished first. SIGHUP is logged and ignored.
    pub fn wait_or<F, Fut>(&mut self, until: F) -> Option<&'static str>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        let Signals { rt, term, int, hup } = self;
        rt.block_on(async {
            let until = until();
            tokio::pin!(until);
            loop {
                tokio::select! {
                    _ = term.recv() => return Some("SIGTERM"),
                    _ = int.recv() => return Some("SIGINT"),
                    _ = hup.recv() => tracing::warn!(
                        "SIGHUP received: this command does not reload; ignoring it (the configuration in use is unchanged)."
                    ),
                    () = &mut until => return None,
                }
            }
        })
    }
}

/// What woke the service's main thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// SIGTERM or SIGINT: stop.
    Signal(&'static str),
    /// SIGHUP.
    Reload,
    /// An operator's request (`gordon ctl reload`, `ctl plugin stop|start`).
    Request,
    /// A plugin asked to leave.
    Leave,
    /// Every source ended, or a stop was requested.
    Ended,
}

impl Signals {
    /// Runs the future `until` makes until it finishes (its value is returned) or
    /// a signal arrives: SIGTERM and SIGINT stop, SIGHUP asks for a reload.
    pub fn next<F, Fut>(&mut self, until: F) -> Wake
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Wake>,
    {
        let Signals { rt, term, int, hup } = self;
        rt.block_on(async {
            tokio::select! {
                _ = term.recv() => Wake::Signal("SIGTERM"),
                _ = int.recv() => Wake::Signal("SIGINT"),
                _ = hup.recv() => Wake::Reload,
                wake = until() => wake,
            }
        })
    }
}

/// [`Signals::install`] then [`Signals::wait_or`].
///
/// # Errors
/// The runtime or the signal handlers cannot be set up.
pub fn wait_for_signal_or<F, Fut>(until: F) -> StartResult<Option<&'static str>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    Ok(Signals::install()?.wait_or(until))
}

/// Why the host must stop on its own (an isolated plugin failed and `core.debug`
/// is off), once something asked.
static STOP: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
static STOP_NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Asks the running service to stop as if signalled, for `why` (logged, and a
/// problem of the run: it exits non-zero).
pub fn request_stop(why: String) {
    STOP.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(why);
    STOP_NOTIFY.notify_one();
}

/// Why a stop was requested, if one was.
pub fn stop_requested() -> Option<String> {
    STOP.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Waits until [`request_stop`] is called.
pub async fn stop_request() {
    loop {
        if stop_requested().is_some() {
            return;
        }
        STOP_NOTIFY.notified().await;
    }
}

/// Makes SIGHUP harmless from the start: its default action ends the process, and
/// `systemctl reload` or a closed terminal sends it. [`wait_for_signal_or`] later
/// logs each one; until then (start-up, and commands that never wait) it is
/// ignored.
pub fn ignore_sighup() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory-safety
    // preconditions and installs no handler code.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
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
