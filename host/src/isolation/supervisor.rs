//! Supervision of one isolated plugin: its process, the crashes, the restarts.
//!
//! A supervisor thread owns the plugin's process: it starts it (so the kernel's
//! parent-death signal is tied to a thread that lives exactly as long as the
//! process), waits for it to end, says why it ended, and starts the next one after
//! a back-off. Callers on any thread reach the current process through
//! [`Supervisor::call`]; a call made while the process is being restarted waits
//! for it, up to the call's deadline.
//!
//! **Invariant:** a call either gets the plugin's answer or an error that says
//! why there is none (`plugin process crashed (SIGSEGV)`, `... exceeded its
//! deadline`); it never waits past its deadline and never hangs on a dead process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gordon_plugin_api::wire::{self, Interner};
use gordon_plugin_api::PluginError;

use super::link::{self, op, Frame};
use super::process::{self, Ends, Process};
use super::{telemetry, Spec};
use crate::metrics::events;

/// Where an isolated plugin is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Its process is starting (the first time or after a crash).
    Starting,
    /// Its process is ready for calls.
    Running,
    /// Its process crashed; the next one starts after the back-off.
    Restarting,
    /// It crashed too often and is not restarted.
    Failed(String),
    /// It was stopped.
    Stopped,
}

/// Why a call has no answer from the plugin.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The plugin answered with an error (or a caught panic).
    Plugin(PluginError),
    /// The process is gone, was killed, or is not running: why.
    Lost(String),
}

impl From<CallError> for PluginError {
    fn from(e: CallError) -> PluginError {
        match e {
            CallError::Plugin(e) => e,
            CallError::Lost(why) => PluginError::new(why),
        }
    }
}

/// The caller's end of the call socket, held for one call at a time.
pub struct CallEnd {
    sock: std::os::unix::net::UnixStream,
    /// The frame of the last call and answer (reused).
    pub frame: Frame,
    /// Names decoded from the process's answers.
    pub interner: Interner,
}

/// One process of an isolated plugin.
pub struct Link {
    process: Process,
    call: Mutex<CallEnd>,
    stream: std::os::unix::net::UnixStream,
    /// Why the process ended, once it has.
    end: Mutex<Option<String>>,
    ended: Condvar,
    /// Set before the host kills the process, so its end is told as the reason.
    kill_reason: Mutex<Option<String>>,
    started: Instant,
}

/// An answer held with the call socket: read its body before the next call.
pub struct Answer<'a> {
    guard: MutexGuard<'a, CallEnd>,
    /// The answer's operation ([`op::OK`] or [`op::HANDLED`]).
    pub op: u8,
}

impl Answer<'_> {
    /// The answer's body.
    pub fn body(&self) -> &[u8] {
        self.guard.frame.body()
    }
    /// The body and the interner, for decoding messages.
    pub fn parts(&mut self) -> (&[u8], &mut Interner) {
        let end = &mut *self.guard;
        (end.frame.body(), &mut end.interner)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Link {
    /// Sends one call and waits for its answer until `deadline`. On a timeout the
    /// process is killed; on a lost link the error says how the process ended.
    pub fn call(
        &self,
        operation: u8,
        body: impl FnOnce(&mut Vec<u8>),
        deadline: Option<Instant>,
    ) -> Result<Answer<'_>, CallError> {
        let mut guard = lock(&self.call);
        let began = Instant::now();
        let end = &mut *guard;
        body(end.frame.start(operation));
        let sent = end.frame.send(&mut end.sock);
        let answer = sent.and_then(|()| link::recv_until(&mut end.sock, &mut end.frame, deadline));
        match answer {
            Ok(op::ERR) => Err(CallError::Plugin(decode_error(end.frame.body()))),
            Ok(op) => Ok(Answer { guard, op }),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let limit =
                    deadline.map_or(0.0, |d| d.saturating_duration_since(began).as_secs_f64());
                let why = format!(
                    "plugin call exceeded its deadline ({limit:.1} s); plugin process killed"
                );
                self.kill(&why);
                Err(CallError::Lost(why))
            }
            Err(_) => Err(CallError::Lost(self.wait_end(Duration::from_secs(2)))),
        }
    }

    /// Kills the process, recording `why` as the reason it ended.
    pub fn kill(&self, why: &str) {
        lock(&self.kill_reason).get_or_insert_with(|| why.to_owned());
        self.process.kill();
    }

    /// Why the process ended, waiting up to `wait` for it to end.
    pub fn wait_end(&self, wait: Duration) -> String {
        let until = Instant::now() + wait;
        let mut end = lock(&self.end);
        while end.is_none() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill("the link to the plugin process was lost");
                return "the link to the plugin process was lost".to_owned();
            }
            end = self
                .ended
                .wait_timeout(end, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        end.clone().unwrap_or_default()
    }

    /// Whether the process has ended.
    pub fn is_dead(&self) -> bool {
        lock(&self.end).is_some()
    }

    /// A second handle on the stream socket.
    pub fn stream(&self) -> std::io::Result<std::os::unix::net::UnixStream> {
        self.stream.try_clone()
    }

    fn set_end(&self, why: String) {
        *lock(&self.end) = Some(why);
        self.ended.notify_all();
        // Wake a reader blocked on the stream (the process's end closed its side
        // already; this covers a descriptor the process passed on to a child).
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads an [`op::ERR`] body.
pub fn decode_error(body: &[u8]) -> PluginError {
    let mut r = wire::Reader::new(body);
    let panic = r.u8().unwrap_or(0) == 1;
    let text = r
        .str()
        .unwrap_or("the plugin process sent a malformed error");
    if panic {
        gordon_plugin_api::FfiError {
            message: text.into(),
            panicked: true,
        }
        .into()
    } else {
        PluginError::new(text)
    }
}

/// Writes an [`op::ERR`] body.
pub fn encode_error(out: &mut Vec<u8>, e: &PluginError) {
    wire::put_u8(out, u8::from(e.is_panic()));
    wire::put_str(out, e.message());
}

type Hook = Box<dyn Fn(&Arc<Link>) -> Result<(), PluginError> + Send + Sync>;

struct State {
    link: Option<Arc<Link>>,
    status: Status,
    stopping: bool,
    restarts: u64,
}

/// The supervisor of one isolated plugin.
pub struct Supervisor {
    spec: Spec,
    state: Mutex<State>,
    changed: Condvar,
    /// Run on every restarted process before it takes calls (a source starts
    /// producing again).
    hook: Mutex<Option<Arc<Hook>>>,
    /// The configuration a restarted process is created with: the spec's, or the
    /// last one applied live.
    config: Mutex<String>,
}

impl Supervisor {
    /// Starts the plugin's first process and has it load the library (with the
    /// same checks as discovery). The caller validates and creates the plugin on
    /// the returned link; restarts create it with the same configuration.
    ///
    /// # Errors
    /// The process cannot be started, or it refused the library.
    pub fn start(spec: Spec) -> Result<(Arc<Supervisor>, Arc<Link>), PluginError> {
        let sup = Arc::new(Supervisor {
            config: Mutex::new(spec.config_json.clone()),
            spec,
            state: Mutex::new(State {
                link: None,
                status: Status::Starting,
                stopping: false,
                restarts: 0,
            }),
            changed: Condvar::new(),
            hook: Mutex::new(None),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_sup = Arc::clone(&sup);
        std::thread::Builder::new()
            .name(format!("gordon-isolated-{}", sup.spec.name))
            .spawn(move || thread_sup.supervise(tx))
            .map_err(|e| PluginError::new(format!("cannot start a supervisor thread: {e}")))?;
        let first = rx.recv().map_err(|_| {
            PluginError::new("the supervisor thread ended before the plugin process started")
        })??;
        Ok((sup, first))
    }

    /// The plugin's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Where the plugin is in its life.
    pub fn status(&self) -> Status {
        lock(&self.state).status.clone()
    }

    /// The running process's pid, if one is running.
    pub fn pid(&self) -> Option<i32> {
        let st = lock(&self.state);
        st.link
            .as_ref()
            .filter(|l| !l.is_dead())
            .map(|l| l.process.pid)
    }

    /// How many times its process was restarted.
    pub fn restarts(&self) -> u64 {
        lock(&self.state).restarts
    }

    /// Creates restarted processes with `json` from now on (it was applied live).
    pub fn set_config(&self, json: &str) {
        json.clone_into(&mut lock(&self.config));
    }

    /// Default deadline for calls other than a handler's batch.
    pub fn call_timeout(&self) -> Duration {
        self.spec.policy.call_timeout
    }

    /// Sets what runs on each restarted process before it takes calls.
    pub fn on_restart(&self, hook: Hook) {
        *lock(&self.hook) = Some(Arc::new(hook));
    }

    /// The running process, waiting for a restart until `deadline`.
    ///
    /// # Errors
    /// The plugin failed or was stopped, or no process is ready by the deadline.
    pub fn current(&self, deadline: Option<Instant>) -> Result<Arc<Link>, CallError> {
        let mut st = lock(&self.state);
        loop {
            match &st.status {
                Status::Running => {
                    if let Some(link) = st.link.as_ref().filter(|l| !l.is_dead()) {
                        return Ok(Arc::clone(link));
                    }
                }
                Status::Failed(why) => return Err(CallError::Lost(why.clone())),
                Status::Stopped => {
                    return Err(CallError::Lost("the plugin process was stopped".into()))
                }
                Status::Starting | Status::Restarting => {}
            }
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(CallError::Lost(
                            "the plugin process is restarting and was not ready in time".into(),
                        ));
                    }
                    left
                }
            };
            st = self
                .changed
                .wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// One call on the running process (waiting for a restart up to the deadline).
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn call(
        &self,
        operation: u8,
        body: impl FnOnce(&mut Vec<u8>),
        deadline: Option<Instant>,
    ) -> Result<(), CallError> {
        let link = self.current(deadline)?;
        link.call(operation, body, deadline).map(drop)
    }

    /// Stops the plugin: asks the process to stop within `deadline`, kills it if
    /// it has not, and restarts nothing.
    ///
    /// # Errors
    /// The plugin's error from its shutdown, or why it could not be asked.
    pub fn stop(&self, deadline: Duration) -> Result<(), PluginError> {
        let link = {
            let mut st = lock(&self.state);
            st.stopping = true;
            self.changed.notify_all();
            let link = st.link.clone();
            if st.status != Status::Running {
                // Not created yet, or between processes: nothing to shut down.
                if let Some(link) = &link {
                    link.kill("the plugin was stopped");
                }
                return Ok(());
            }
            link
        };
        let Some(link) = link else {
            return Ok(());
        };
        let until = Instant::now() + deadline;
        let grace = until + Duration::from_millis(200);
        let ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
        // Asked on a thread of its own: a call still in flight (a janitor run the
        // host gave up on, a handler past its deadline) holds the call socket,
        // and the stop must not wait for it beyond the deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        let asker = Arc::clone(&link);
        let asked = std::thread::Builder::new()
            .name(format!("gordon-stop-{}", self.spec.name))
            .spawn(move || {
                let answer = asker
                    .call(op::STOP, |b| wire::put_u64(b, ms), Some(grace))
                    .map(drop);
                let _ = tx.send(answer);
            });
        let answer = match asked {
            Ok(_) => rx
                .recv_timeout(grace.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    Err(CallError::Lost(format!(
                        "did not stop within {:.1} s; plugin process killed",
                        deadline.as_secs_f64()
                    )))
                }),
            Err(e) => Err(CallError::Lost(format!(
                "cannot ask the plugin to stop: {e}"
            ))),
        };
        // The process exits after answering; make sure it does.
        if answer.is_err() {
            link.kill("the plugin did not stop in time");
        }
        let _ = link
            .wait_end(grace.saturating_duration_since(Instant::now()) + Duration::from_millis(200));
        answer.map_err(Into::into)
    }

    /// The supervisor thread: start, wait, restart, until stopped or failed.
    fn supervise(self: Arc<Self>, first: std::sync::mpsc::Sender<Result<Arc<Link>, PluginError>>) {
        let name = self.spec.name;
        let mut first = Some(first);
        let mut crashes: VecDeque<Instant> = VecDeque::new();
        let mut in_a_row: u32 = 0;
        loop {
            let restart = first.is_none();
            let launched = self.launch(restart);
            let link = match launched {
                Ok(link) => link,
                Err(e) => {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Err(e));
                        lock(&self.state).status = Status::Stopped;
                        self.changed.notify_all();
                        return;
                    }
                    tracing::error!(plugin = name, error = %e, "The plugin process could not be restarted.");
                    // Counted as a crash below, with its back-off.
                    if self.after_crash(&mut crashes, &mut in_a_row, Duration::ZERO, &e.to_string())
                    {
                        return;
                    }
                    continue;
                }
            };
            {
                let mut st = lock(&self.state);
                if st.stopping {
                    link.kill("the plugin was stopped");
                } else {
                    st.link = Some(Arc::clone(&link));
                    if first.is_none() {
                        st.status = Status::Running;
                        st.restarts += 1;
                    }
                }
            }
            self.changed.notify_all();
            match first.take() {
                Some(tx) => {
                    tracing::info!(
                        plugin = name,
                        pid = link.process.pid,
                        "Plugin process started."
                    );
                    // The caller creates the plugin, then calls `running`.
                    let _ = tx.send(Ok(Arc::clone(&link)));
                }
                None => {
                    events::plugin_restarted(name);
                    events::plugin_state(name, "running", 1.0);
                    tracing::info!(
                        plugin = name,
                        pid = link.process.pid,
                        "Plugin process restarted."
                    );
                }
            }
            let status = link.process.wait();
            let why = lock(&link.kill_reason)
                .clone()
                .unwrap_or_else(|| match &status {
                    Ok(s) => process::describe(*s),
                    Err(e) => format!("plugin process lost: {e}"),
                });
            link.set_end(why.clone());
            {
                let mut st = lock(&self.state);
                if st.stopping {
                    st.status = Status::Stopped;
                    st.link = None;
                    self.changed.notify_all();
                    events::plugin_state(name, "running", 0.0);
                    return;
                }
                st.status = Status::Restarting;
            }
            self.changed.notify_all();
            let uptime = link.started.elapsed();
            tracing::error!(
                plugin = name,
                pid = link.process.pid,
                uptime_s = uptime.as_secs_f64(),
                "{why}."
            );
            if self.after_crash(&mut crashes, &mut in_a_row, uptime, &why) {
                return;
            }
        }
    }

    /// Counts a crash; marks the plugin failed (true) or waits out the back-off.
    fn after_crash(
        &self,
        crashes: &mut VecDeque<Instant>,
        in_a_row: &mut u32,
        uptime: Duration,
        why: &str,
    ) -> bool {
        let p = &self.spec.policy;
        let now = Instant::now();
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > p.crash_window)
        {
            crashes.pop_front();
        }
        if crashes.len() > p.max_crashes as usize {
            let failed = format!(
                "failed: its process crashed {} times within {:.0} s (last: {why}); not restarted",
                crashes.len(),
                p.crash_window.as_secs_f64()
            );
            tracing::error!(plugin = self.spec.name, "Plugin {failed}.");
            crate::health::report(self.spec.name, failed.clone());
            events::plugin_state(self.spec.name, "running", 0.0);
            events::plugin_state(self.spec.name, "failed", 1.0);
            {
                let mut st = lock(&self.state);
                st.status = Status::Failed(format!("plugin {failed}"));
                st.link = None;
            }
            self.changed.notify_all();
            if !self.spec.policy.debug {
                crate::service::signals::request_stop(format!(
                    "plugin `{}` {failed}",
                    self.spec.name
                ));
            }
            return true;
        }
        if uptime > p.backoff_max {
            *in_a_row = 0;
        }
        let wait = p
            .backoff
            .saturating_mul(1u32 << (*in_a_row).min(20))
            .min(p.backoff_max);
        *in_a_row = in_a_row.saturating_add(1);
        let until = Instant::now() + wait;
        let mut st = lock(&self.state);
        while !st.stopping {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if st.stopping {
            st.status = Status::Stopped;
            drop(st);
            self.changed.notify_all();
            return true;
        }
        st.status = Status::Starting;
        false
    }

    /// Marks the first process ready for calls, once the plugin is created.
    pub fn running(&self) {
        lock(&self.state).status = Status::Running;
        self.changed.notify_all();
        events::plugin_state(self.spec.name, "running", 1.0);
    }

    /// Starts a process and loads the library; on a restart also creates the
    /// plugin and runs the restart hook.
    fn launch(&self, restart: bool) -> Result<Arc<Link>, PluginError> {
        let name = self.spec.name;
        let (process, ends) = process::spawn(name)
            .map_err(|e| PluginError::new(format!("cannot start the plugin process: {e}")))?;
        let Ends {
            call,
            stream,
            telemetry: tel,
            output,
        } = ends;
        telemetry::forward(name, tel);
        forward_output(name, output);
        let link = Arc::new(Link {
            process,
            call: Mutex::new(CallEnd {
                sock: call,
                frame: Frame::default(),
                interner: Interner::new(),
            }),
            stream,
            end: Mutex::new(None),
            ended: Condvar::new(),
            kill_reason: Mutex::new(None),
            started: Instant::now(),
        });
        let start_deadline = Some(Instant::now() + self.spec.policy.start_timeout);
        let setup = serde_json::to_vec(&self.spec.setup).unwrap_or_default();
        let loaded = link
            .call(op::SETUP, |b| b.extend_from_slice(&setup), start_deadline)
            .map(drop)
            .and_then(|()| {
                if restart {
                    let config = lock(&self.config).clone();
                    link.call(
                        op::CREATE,
                        |b| b.extend_from_slice(config.as_bytes()),
                        start_deadline,
                    )
                    .map(drop)
                } else {
                    Ok(())
                }
            });
        if let Err(e) = loaded {
            link.kill("the plugin process did not start");
            return Err(e.into());
        }
        if restart {
            let hook = lock(&self.hook).clone();
            if let Some(hook) = hook {
                if let Err(e) = hook(&link) {
                    link.kill("the restarted plugin did not start");
                    return Err(e);
                }
            }
        }
        Ok(link)
    }
}

/// Forwards the process's stdout and stderr (panic messages, an abort's last
/// words, a vendor's prints) to the log, one line each, naming the plugin.
fn forward_output(plugin: &'static str, output: std::process::ChildStderr) {
    let spawned = std::thread::Builder::new()
        .name(format!("gordon-output-{plugin}"))
        .spawn(move || {
            for line in BufReader::new(output).lines() {
                match line {
                    Ok(line) if !line.trim().is_empty() => {
                        tracing::warn!(target: "gordon::plugin", plugin, "{line}");
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(plugin, error = %e, "Cannot forward the plugin process's output.");
    }
}

/// Writes a frame on a stream socket shared by several writers.
pub fn send_on(
    sock: &Mutex<std::os::unix::net::UnixStream>,
    frame: &mut Frame,
) -> std::io::Result<()> {
    let mut s = lock(sock);
    frame.send(&mut *s)?;
    s.flush()
}
