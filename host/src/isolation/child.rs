//! The plugin process: `gordon __plugin-process --plugin NAME --host-pid PID`.
//!
//! It applies its limits, loads the one library its set-up names (with the same
//! checks as the host's discovery), creates the plugin, and serves the host's
//! calls until told to stop or until the host goes away. It never outlives the
//! host: the kernel kills it when the host's supervisor thread ends, and it exits
//! when its call socket closes.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gordon_plugin_api::channel;
use gordon_plugin_api::wire::{self, Interner};
use gordon_plugin_api::{EventMessage, PluginError, ZoneRecords};

use super::link::{self, op, Frame};
use super::process::{CALL_FD, STREAM_FD, TELEMETRY_FD};
use super::supervisor::encode_error;
use super::Setup;
use crate::plugins::handle::Control;
use crate::plugins::instance::{self, Created, Instance};
use crate::plugins::PluginInfo;

/// Capacity of the channels between the plugin and the sockets in the process.
const CHANNEL: usize = 4096;

/// Ends the process at once: no atexit handlers or library destructors run while
/// plugin threads may still be running in them.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process; it has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Runs the plugin process; returns only on a set-up failure it cannot report.
pub fn main(plugin: &str, host_pid: u32) -> u8 {
    // The host decides when this process ends (a stop call, its socket closing,
    // or its death); a SIGTERM that systemd sends the whole service, or a
    // terminal's signals, must not end a plugin before the host has drained it.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: setting a disposition to SIG_IGN installs no handler code.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    // SAFETY: prctl with PR_SET_PDEATHSIG takes integers. Set again here in case
    // the host thread that started this process ended between fork and now:
    // then the parent is no longer the host, checked next.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } as u32 != host_pid {
        eprintln!("gordon: {plugin}: the host process is gone");
        return 2;
    }
    for fd in [CALL_FD, STREAM_FD, TELEMETRY_FD] {
        // SAFETY: fcntl(F_GETFD) only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            eprintln!(
                "gordon: {SUBCOMMAND} is started by the host for isolated plugins, not by hand"
            );
            return 2;
        }
    }
    // SAFETY: the host started this process with its three socket ends at these
    // descriptors (process.rs), and nothing else in this process owns them.
    let (call, stream, telemetry) = unsafe {
        (
            UnixStream::from_raw_fd(CALL_FD),
            UnixStream::from_raw_fd(STREAM_FD),
            UnixStream::from_raw_fd(TELEMETRY_FD),
        )
    };
    let mut server = Server {
        call,
        stream,
        frame: Frame::default(),
        reply: Frame::default(),
        interner: Interner::new(),
        info: None,
        instance: None,
        control: None,
        batch: Vec::new(),
        forwarder: None,
    };
    let setup = match server.read_setup() {
        Some(s) => s,
        None => exit_now(0),
    };
    let directives: crate::logging::Directives = setup.log_level.parse().unwrap_or_default();
    super::telemetry::install(telemetry, &directives);
    crate::plugins::hostlink::set_log_directives(&directives);
    let loaded = super::limits::apply(&setup.limits)
        .map_err(PluginError::new)
        .and_then(|()| load(&setup));
    match loaded {
        Ok(info) => {
            server.info = Some(info);
            server.answer_ok();
        }
        Err(e) => {
            server.answer_err(&e);
            exit_now(0);
        }
    }
    server.serve()
}

use super::process::SUBCOMMAND;

/// Loads the set-up's library with discovery's checks and finds the plugin.
fn load(setup: &Setup) -> Result<PluginInfo, PluginError> {
    let checks = crate::plugins::inspect::Checks {
        pins: setup.pins.clone(),
        required: setup.require_pins,
        panic_abort: setup.panic_abort.parse().unwrap_or_default(),
    };
    let path = PathBuf::from(&setup.library);
    let (plugins, _warning) = crate::plugins::registry::load_one(&path, &checks)
        .map_err(|refused| PluginError::new(format!("refused {refused}")))?;
    plugins
        .into_iter()
        .find(|p| p.name == setup.plugin && p.kind == setup.kind)
        .ok_or_else(|| {
            PluginError::new(format!(
                "{} no longer exports a {} plugin `{}`",
                path.display(),
                setup.kind,
                setup.plugin
            ))
        })
}

struct Server {
    call: UnixStream,
    stream: UnixStream,
    frame: Frame,
    reply: Frame,
    interner: Interner,
    info: Option<PluginInfo>,
    instance: Option<Arc<Instance>>,
    control: Option<Control>,
    batch: Vec<EventMessage>,
    /// A source's event forwarder, joined at stop.
    forwarder: Option<JoinHandle<()>>,
}

impl Server {
    fn read_setup(&mut self) -> Option<Setup> {
        match self.frame.recv(&mut self.call) {
            Ok(op::SETUP) => serde_json::from_slice(self.frame.body()).ok(),
            _ => None,
        }
    }

    fn answer_ok(&mut self) {
        self.reply.start(op::OK);
        self.send_reply();
    }

    fn answer_err(&mut self, e: &PluginError) {
        encode_error(self.reply.start(op::ERR), e);
        self.send_reply();
    }

    fn answer(&mut self, result: Result<(), PluginError>) {
        match result {
            Ok(()) => self.answer_ok(),
            Err(e) => self.answer_err(&e),
        }
    }

    fn send_reply(&mut self) {
        if self.reply.send(&mut self.call).is_err() {
            exit_now(0);
        }
    }

    fn serve(mut self) -> u8 {
        loop {
            let operation = match self.frame.recv(&mut self.call) {
                Ok(o) => o,
                // The host is gone (or closed the link): nothing left to serve.
                Err(_) => exit_now(0),
            };
            match operation {
                op::VALIDATE => {
                    let r = self.with_json(instance::validate_json);
                    self.answer(r);
                }
                op::CREATE => {
                    let r = self.with_json(instance::instantiate);
                    let r = r.map(|Created { instance, control }| {
                        self.control = Some(control);
                        let created = Arc::new(instance);
                        if let Instance::Relay(_) = &*created {
                            self.start_relay_reader(Arc::clone(&created));
                        }
                        self.instance = Some(created);
                    });
                    self.answer(r);
                }
                op::HANDLE => self.handle(),
                op::APPLY => match self.apply() {
                    Ok(applied) => {
                        wire::put_u8(self.reply.start(op::OK), u8::from(applied));
                        self.send_reply();
                    }
                    Err(e) => self.answer_err(&e),
                },
                op::INVOKE => match self.invoke() {
                    Ok(json) => {
                        self.reply.start(op::OK).extend_from_slice(json.as_bytes());
                        self.send_reply();
                    }
                    Err(e) => self.answer_err(&e),
                },
                op::EVENT => {
                    if let (Some(control), Ok(json)) =
                        (&self.control, std::str::from_utf8(self.frame.body()))
                    {
                        control.host_event(json);
                    }
                    self.answer_ok();
                }
                op::START => {
                    let r = self.start_source();
                    self.answer(r);
                }
                op::CLEANUP => {
                    let r = self.cleanup();
                    self.answer(r);
                }
                op::RUN => {
                    let r = self.run();
                    self.answer(r);
                }
                op::STOP => {
                    let ms = wire::Reader::new(self.frame.body()).u64().unwrap_or(0);
                    let r = self.stop(Duration::from_millis(ms));
                    self.answer(r);
                    exit_now(0);
                }
                other => {
                    let e = PluginError::new(format!("unknown call {other}"));
                    self.answer_err(&e);
                }
            }
        }
    }

    fn with_json<T>(
        &self,
        f: impl FnOnce(&PluginInfo, &str) -> Result<T, PluginError>,
    ) -> Result<T, PluginError> {
        let info = self
            .info
            .as_ref()
            .ok_or_else(|| PluginError::new("no library loaded"))?;
        let json = std::str::from_utf8(self.frame.body())
            .map_err(|_| PluginError::new("configuration is not UTF-8"))?;
        f(info, json)
    }

    fn control(&self) -> Result<&Control, PluginError> {
        self.control
            .as_ref()
            .ok_or_else(|| PluginError::new("no plugin created"))
    }

    fn apply(&self) -> Result<bool, PluginError> {
        let json = std::str::from_utf8(self.frame.body())
            .map_err(|_| PluginError::new("configuration is not UTF-8"))?;
        self.control()?.apply_config(json)
    }

    fn invoke(&self) -> Result<String, PluginError> {
        let mut r = wire::Reader::new(self.frame.body());
        let (Ok(action), Ok(params)) = (r.str(), r.str()) else {
            return Err(PluginError::new("malformed action call"));
        };
        self.control()?.invoke(action, params)
    }

    fn handle(&mut self) {
        let Some(Instance::Handler(handler)) = self.instance.as_deref() else {
            return self.answer_err(&PluginError::new("not a created handler"));
        };
        // Decoded over the previous batch's messages: their buffers are reused.
        let decoded =
            wire::get_messages_reusing(self.frame.body(), &mut self.interner, &mut self.batch);
        if let Err(e) = decoded {
            return self.answer_err(&PluginError::new(format!("malformed batch: {e}")));
        }
        let failures = handler.handle_batch(&mut self.batch);
        let out = self.reply.start(op::HANDLED);
        wire::put_u32(out, failures.len() as u32);
        for (index, e) in &failures {
            wire::put_u32(out, *index as u32);
            wire::put_u8(out, u8::from(e.is_panic()));
            wire::put_str(out, e.message());
        }
        wire::put_messages(out, &self.batch);
        self.send_reply();
    }

    fn decode_batch(&mut self) -> Result<(), PluginError> {
        self.batch.clear();
        wire::get_messages(self.frame.body(), &mut self.interner, &mut self.batch)
            .map(drop)
            .map_err(|e| PluginError::new(format!("malformed batch: {e}")))
    }

    fn start_source(&mut self) -> Result<(), PluginError> {
        let Some(Instance::Runnable(source)) = self.instance.as_deref() else {
            return Err(PluginError::new("not a created source"));
        };
        let (tx, rx) = channel::bounded::<EventMessage>(CHANNEL);
        let sock = self.stream.try_clone()?;
        self.forwarder = Some(link::spawn_writer(
            "gordon-forward",
            rx,
            sock,
            wire::put_messages,
            op::EVENTS,
        )?);
        source.start(tx)
    }

    fn cleanup(&mut self) -> Result<(), PluginError> {
        self.decode_batch()?;
        match self.instance.as_deref() {
            Some(Instance::Runnable(source)) => source.cleanup(&self.batch),
            _ => Err(PluginError::new("not a created source")),
        }
    }

    /// A relay's metric events arrive on the stream socket.
    fn start_relay_reader(&self, relay: Arc<Instance>) {
        let Ok(mut sock) = self.stream.try_clone() else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("gordon-relay-in".into())
            .spawn(move || {
                let mut frame = Frame::default();
                while let Ok(op::EMIT) = frame.recv(&mut sock) {
                    if let (Ok((metric, _)), Instance::Relay(relay)) =
                        (wire::get_metric(frame.body()), &*relay)
                    {
                        metric.as_event(|e| relay.emit(e));
                    }
                }
            });
    }

    fn run(&mut self) -> Result<(), PluginError> {
        let sock = self.stream.try_clone()?;
        match self.instance.as_deref() {
            Some(Instance::Authority(a)) => {
                let (tx, rx) = channel::bounded::<ZoneRecords>(64);
                let fwd = link::spawn_writer(
                    "gordon-forward",
                    rx,
                    sock,
                    wire::put_zone_records,
                    op::ZONES,
                )?;
                let r = a.run(tx);
                let _ = fwd.join();
                r
            }
            Some(Instance::Reconciler(rec)) => {
                let (rr_tx, rr_rx) = channel::bounded::<ZoneRecords>(64);
                let (ch_tx, ch_rx) = channel::bounded::<EventMessage>(CHANNEL);
                link::spawn_reader("gordon-feed", self.stream.try_clone()?, move |body, _| {
                    let mut batch = Vec::new();
                    wire::get_zone_records(body, &mut batch).ok()?;
                    rr_tx.send_batch(batch).ok()
                })?;
                let fwd = link::spawn_writer(
                    "gordon-forward",
                    ch_rx,
                    sock,
                    wire::put_messages,
                    op::EVENTS,
                )?;
                let r = rec.run(rr_rx, ch_tx);
                let _ = fwd.join();
                r
            }
            Some(Instance::Publisher(p)) => {
                let (tx, rx) = channel::bounded::<EventMessage>(CHANNEL);
                link::spawn_reader("gordon-feed", sock, move |body, interner| {
                    let mut batch = Vec::new();
                    wire::get_messages(body, interner, &mut batch).ok()?;
                    tx.send_batch(batch).ok()
                })?;
                p.run(rx)
            }
            _ => Err(PluginError::new("not a created janitor plugin")),
        }
    }

    fn stop(&mut self, deadline: Duration) -> Result<(), PluginError> {
        let Some(instance) = self.instance.take() else {
            return Ok(());
        };
        match &*instance {
            Instance::Handler(h) => h.shutdown(deadline),
            Instance::Runnable(s) => {
                let r = s.shutdown(deadline);
                // The plugin dropped its sender: the forwarder sends the last
                // events and the end of the stream.
                if let Some(f) = self.forwarder.take() {
                    let (done_tx, done_rx) = std::sync::mpsc::channel();
                    std::thread::spawn(move || {
                        let _ = f.join();
                        let _ = done_tx.send(());
                    });
                    let _ = done_rx.recv_timeout(deadline);
                }
                r
            }
            Instance::Relay(r) => r.cleanup(deadline),
            Instance::Authority(a) => a.cleanup(deadline),
            Instance::Reconciler(r) => r.cleanup(deadline),
            Instance::Publisher(p) => p.cleanup(deadline),
            Instance::Discovery(d) => d.disconnect(deadline),
        }
    }
}
