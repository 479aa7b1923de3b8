//! Frames over the sockets between the host and a plugin process.
//!
//! A frame is a 4-byte little-endian body length, a 1-byte operation and the body
//! (encoded with `gordon_plugin_api::wire`). Frames are built whole in a reused
//! buffer and written with one `write_all`, so a batch costs one or two system
//! calls per direction, not one per message.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gordon_plugin_api::channel::{Receiver, Recv};
use gordon_plugin_api::wire::Interner;
use gordon_plugin_api::PluginError;

/// The largest frame body either side accepts (a batch of messages, a log line):
/// a peer announcing more is broken, and the link is dropped.
pub const MAX_FRAME: usize = 256 << 20;

/// Operations. Host to plugin process on the call socket (each answered with
/// [`OK`] or [`ERR`], except where noted):
pub mod op {
    /// Load the library and find the plugin (body: the set-up, JSON).
    pub const SETUP: u8 = 1;
    /// `validate_config` (body: the configuration JSON).
    pub const VALIDATE: u8 = 2;
    /// Create the plugin (body: the configuration JSON).
    pub const CREATE: u8 = 3;
    /// A handler's batch (body: messages); answered with [`HANDLED`].
    pub const HANDLE: u8 = 10;
    /// A source's `start`: its events follow on the stream socket.
    pub const START: u8 = 20;
    /// A source's cleanup (body: messages).
    pub const CLEANUP: u8 = 21;
    /// Shut down / clean up (body: deadline in ms, u64); the process exits after
    /// answering.
    pub const STOP: u8 = 22;
    /// Apply a changed configuration (body: JSON); answered with [`OK`] and a u8,
    /// 1 if applied live.
    pub const APPLY: u8 = 30;
    /// Run an action (body: str action, str parameters JSON); answered with
    /// [`OK`] and the result JSON.
    pub const INVOKE: u8 = 31;
    /// Deliver a host event (body: JSON).
    pub const EVENT: u8 = 32;
    /// A janitor plugin's `run`: its data flows on the stream socket.
    pub const RUN: u8 = 40;

    /// Answer: done (body depends on the call).
    pub const OK: u8 = 100;
    /// Answer: failed (body: u8 1 if a caught panic, then the message).
    pub const ERR: u8 = 101;
    /// Answer to [`HANDLE`]: failures (u32 count, then u32 index, u8 panic, str
    /// message each), then the batch as the handler left it.
    pub const HANDLED: u8 = 102;

    /// Stream socket: a batch of event messages (either direction).
    pub const EVENTS: u8 = 50;
    /// Stream socket: a batch of zone records.
    pub const ZONES: u8 = 51;
    /// Stream socket: the sender's side of the stream ended.
    pub const END: u8 = 52;
    /// Stream socket, host to process: one metric event for a relay plugin.
    pub const EMIT: u8 = 53;

    /// Telemetry socket, process to host: a log record (u8 level, str plugin, str
    /// module, str message).
    pub const LOG: u8 = 60;
    /// Telemetry socket, process to host: a metric event.
    pub const METRIC: u8 = 61;
    /// Telemetry socket, process to host: the plugin asks to leave (str reason).
    pub const LEAVE: u8 = 62;
}

/// A frame under construction or just read; its buffer is reused.
#[derive(Default)]
pub struct Frame {
    /// Header (5 bytes, patched by [`Frame::finish`]) and body.
    pub buf: Vec<u8>,
}

impl Frame {
    /// Starts a frame with operation `op`, keeping the buffer's capacity.
    pub fn start(&mut self, op: u8) -> &mut Vec<u8> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, 0, 0, 0, op]);
        &mut self.buf
    }

    /// Writes the frame started by [`Frame::start`].
    ///
    /// # Errors
    /// The socket's error (the peer is gone).
    pub fn send(&mut self, out: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.buf.len() - 5)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        out.write_all(&self.buf)
    }

    /// Reads one frame into the buffer; returns its operation (the body is
    /// [`Frame::body`]).
    ///
    /// # Errors
    /// End of stream, a socket error or timeout, or an oversized frame.
    pub fn recv(&mut self, input: &mut impl Read) -> io::Result<u8> {
        let mut head = [0u8; 5];
        input.read_exact(&mut head)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes announced"),
            ));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&head);
        self.buf.resize(5 + len, 0);
        input.read_exact(&mut self.buf[5..])?;
        Ok(head[4])
    }

    /// The body of the frame last read.
    pub fn body(&self) -> &[u8] {
        self.buf.get(5..).unwrap_or(&[])
    }
}

/// Reads one frame from `sock`, waiting at most until `deadline` (`None`: no limit).
///
/// # Errors
/// As [`Frame::recv`]; a deadline that passes is `TimedOut`.
pub fn recv_until(
    sock: &mut UnixStream,
    frame: &mut Frame,
    deadline: Option<Instant>,
) -> io::Result<u8> {
    // The timeout is re-armed before each read, so a peer that sends a frame
    // slowly cannot stretch the wait past the deadline.
    let arm = |sock: &UnixStream| -> io::Result<()> {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(left.max(Duration::from_millis(1)))
            }
        };
        sock.set_read_timeout(timeout)
    };
    let timed_out = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
        _ => e,
    };
    let mut head = [0u8; 5];
    arm(sock)?;
    sock.read_exact(&mut head).map_err(timed_out)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes announced"),
        ));
    }
    frame.buf.clear();
    frame.buf.extend_from_slice(&head);
    frame.buf.resize(5 + len, 0);
    let mut at = 5;
    while at < frame.buf.len() {
        arm(sock)?;
        match sock.read(&mut frame.buf[at..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(timed_out(e)),
        }
    }
    Ok(head[4])
}

/// Socket buffers big enough that a batch is written without waiting for the
/// peer to read most of it.
pub fn tune(sock: &UnixStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: `sock` is an open socket for the duration of the call, and the
        // option value points at a live c_int of the size passed.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Writes every batch `rx` yields on `sock` as `operation` frames, then
/// [`op::END`], on a thread of its own (a source's events, a janitor channel).
///
/// # Errors
/// The thread cannot start.
pub fn spawn_writer<T: Send + 'static>(
    name: &str,
    rx: Receiver<T>,
    mut sock: UnixStream,
    encode: fn(&mut Vec<u8>, &[T]),
    operation: u8,
) -> Result<JoinHandle<()>, PluginError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut frame = Frame::default();
            let mut batch = Vec::new();
            while rx.recv_batch(&mut batch, 1024, None) != Recv::Ended {
                encode(frame.start(operation), &batch);
                batch.clear();
                if frame.send(&mut sock).is_err() {
                    return;
                }
            }
            frame.start(op::END);
            let _ = frame.send(&mut sock);
        })
        .map_err(|e| PluginError::new(format!("cannot start thread {name}: {e}")))
}

/// Reads frames from `sock` until [`op::END`] or its end, handing each body to
/// `each` (which returns `None` to stop), on a thread of its own.
///
/// # Errors
/// The thread cannot start.
pub fn spawn_reader(
    name: &str,
    mut sock: UnixStream,
    mut each: impl FnMut(&[u8], &mut Interner) -> Option<()> + Send + 'static,
) -> Result<JoinHandle<()>, PluginError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut frame = Frame::default();
            let mut interner = Interner::new();
            while let Ok(operation) = frame.recv(&mut sock) {
                if operation == op::END || each(frame.body(), &mut interner).is_none() {
                    break;
                }
            }
        })
        .map_err(|e| PluginError::new(format!("cannot start thread {name}: {e}")))
}
