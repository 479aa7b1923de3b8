//! The open connections of `http.events`: what each waits for and since when, the
//! connection limit, and which connection gives way when the limit is reached.
//!
//! A connection waits either for its client (the request head, the body, or — kept
//! alive — the next request) or for the server (its request is being handled). Only
//! the first kind can be stalled by a client, so only it has timeouts and only it is
//! ever closed to make room: when `max_connections` are open, a new connection
//! closes the one that has waited longest for its client; when every open connection
//! is being handled, the new one is refused at once.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use gordon_plugin_api::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use gordon_plugin_api::tokio::net::TcpStream;
use gordon_plugin_api::tokio::sync::Notify;
use gordon_plugin_api::tokio::time::Instant;

/// How long each wait on a client may last, and how many connections may be open.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// From the connection's start, or the first byte of a later request, to the end
    /// of the request head.
    pub header: Duration,
    /// From the end of the head to the end of the body.
    pub body: Duration,
    /// Between requests on a kept-alive connection.
    pub idle: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

/// What a connection waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The request head (from the client).
    Head,
    /// The request body (from the client).
    Body,
    /// The server: the request is being handled.
    Handling,
    /// The next request on a kept-alive connection (from the client).
    Idle,
}

struct State {
    wait: Wait,
    since: Instant,
    evicted: bool,
    draining: bool,
    /// The last request head had more than one `Content-Length` header.
    repeated_length: bool,
}

/// One open connection's entry.
pub struct Slot {
    id: u64,
    state: Mutex<State>,
    changed: Notify,
}

/// What the connection task should do after a change of its slot.
#[derive(Debug, PartialEq, Eq)]
pub enum Order {
    /// Carry on.
    Continue,
    /// Close now: the connection was closed to make room for another.
    Close,
    /// Finish the request in progress, if any, then close (the service stops).
    Drain,
}

impl Slot {
    fn new(id: u64) -> Self {
        Slot {
            id,
            state: Mutex::new(State {
                wait: Wait::Head,
                since: Instant::now(),
                evicted: false,
                draining: false,
                repeated_length: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection now waits for `wait`, from now on.
    pub fn set(&self, wait: Wait) {
        {
            let mut s = self.lock();
            s.wait = wait;
            s.since = Instant::now();
        }
        self.changed.notify_one();
    }

    /// Whether the request head just read had more than one `Content-Length`
    /// header (and forgets it, for the next request).
    pub fn take_repeated_length(&self) -> bool {
        std::mem::take(&mut self.lock().repeated_length)
    }

    /// Bytes arrived: on an idle connection, a new request head has begun (then
    /// true).
    fn bytes_arrived(&self) -> bool {
        let began = {
            let mut s = self.lock();
            let idle = s.wait == Wait::Idle;
            if idle {
                s.wait = Wait::Head;
                s.since = Instant::now();
            }
            idle
        };
        if began {
            self.changed.notify_one();
        }
        began
    }

    /// Waits until the slot changes (or was changed since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// What a change asks of the connection.
    pub fn order(&self) -> Order {
        let s = self.lock();
        if s.evicted {
            Order::Close
        } else if s.draining {
            Order::Drain
        } else {
            Order::Continue
        }
    }

    /// When the current wait runs out; waits without a limit here (the body's is the
    /// request handler's) get a far one, since every change wakes the task anyway.
    pub fn deadline(&self, limits: &Limits) -> Instant {
        let s = self.lock();
        match s.wait {
            Wait::Head => s.since + limits.header,
            Wait::Idle => s.since + limits.idle,
            Wait::Body | Wait::Handling => Instant::now() + Duration::from_secs(3600),
        }
    }

    /// The key whose limit the current wait is past, if any.
    pub fn overdue(&self, limits: &Limits) -> Option<&'static str> {
        let s = self.lock();
        let now = Instant::now();
        match s.wait {
            Wait::Head if now >= s.since + limits.header => Some("header_timeout"),
            Wait::Idle if now >= s.since + limits.idle => Some("idle_timeout"),
            _ => None,
        }
    }

    /// Since when the connection has waited for its client; `None` while it is
    /// being handled.
    fn waiting_on_client_since(&self) -> Option<Instant> {
        let s = self.lock();
        (s.wait != Wait::Handling && !s.evicted).then_some(s.since)
    }

    fn evict(&self) {
        self.lock().evicted = true;
        self.changed.notify_one();
    }

    fn drain(&self) {
        self.lock().draining = true;
        self.changed.notify_one();
    }
}

/// Every open connection.
pub struct Connections {
    max: usize,
    open: Mutex<Registry>,
}

struct Registry {
    next_id: u64,
    slots: HashMap<u64, Arc<Slot>>,
}

/// Why a connection could not be admitted.
#[derive(Debug)]
pub struct Full;

impl Connections {
    /// No connection yet; at most `max` at a time.
    pub fn new(max: usize) -> Self {
        Connections {
            max,
            open: Mutex::new(Registry {
                next_id: 0,
                slots: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection; at the limit, the connection waiting longest for
    /// its client is closed to make room, and when none waits on its client, `Full`.
    pub fn admit(&self) -> Result<Arc<Slot>, Full> {
        let mut reg = self.lock();
        if reg.slots.len() >= self.max && !Self::evict_locked(&mut reg) {
            return Err(Full);
        }
        let id = reg.next_id;
        reg.next_id += 1;
        let slot = Arc::new(Slot::new(id));
        reg.slots.insert(id, Arc::clone(&slot));
        Ok(slot)
    }

    /// Closes the connection waiting longest for its client; `false` if there is none.
    pub fn evict_one(&self) -> bool {
        Self::evict_locked(&mut self.lock())
    }

    fn evict_locked(reg: &mut Registry) -> bool {
        let oldest = reg
            .slots
            .values()
            .filter_map(|s| s.waiting_on_client_since().map(|since| (since, s.id)))
            .min();
        match oldest.and_then(|(_, id)| reg.slots.remove(&id)) {
            Some(slot) => {
                slot.evict();
                true
            }
            None => false,
        }
    }

    /// Forgets a closed connection.
    pub fn remove(&self, slot: &Slot) {
        self.lock().slots.remove(&slot.id);
    }

    /// Asks every open connection to finish its request and close.
    pub fn drain_all(&self) {
        for slot in self.lock().slots.values() {
            slot.drain();
        }
    }

    /// How many connections are open.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

/// A TCP stream that tells its slot when a new request begins to arrive, and
/// whether its head repeats `Content-Length`.
pub struct Tracked {
    stream: TcpStream,
    slot: Arc<Slot>,
    head: HeadScan,
}

impl Tracked {
    /// Wraps `stream`, reporting to `slot`.
    pub fn new(stream: TcpStream, slot: Arc<Slot>) -> Self {
        Tracked {
            stream,
            slot,
            head: HeadScan::started(),
        }
    }
}

/// Counts the `Content-Length` headers of a request head as its bytes go by.
///
/// hyper refuses `Content-Length` headers that disagree but takes repeated equal
/// ones as one and keeps only one in the request, so the count has to be taken from
/// the bytes. A head is scanned from the connection's first byte, and from the
/// first byte that arrives on a kept-alive connection while it is idle, to its
/// blank line. (A pipelined head that arrives in the same read as the previous
/// request's body is not scanned; hyper still refuses disagreeing lengths there.)
struct HeadScan {
    in_head: bool,
    /// The current line's header name so far, lowercased (up to its first 16 bytes).
    name: [u8; 16],
    name_len: usize,
    /// Whether the current line has any byte, and whether its name has ended.
    line_has_bytes: bool,
    name_done: bool,
    lengths: u32,
}

impl HeadScan {
    const CONTENT_LENGTH: &'static [u8] = b"content-length";

    fn started() -> Self {
        HeadScan {
            in_head: true,
            name: [0; 16],
            name_len: 0,
            line_has_bytes: false,
            name_done: false,
            lengths: 0,
        }
    }

    /// Scans `bytes`; true when a head ended in them with more than one
    /// `Content-Length` header.
    fn scan(&mut self, bytes: &[u8]) -> bool {
        let mut repeated = false;
        for &b in bytes {
            if !self.in_head {
                break;
            }
            match b {
                b'\r' => {}
                b'\n' if !self.line_has_bytes => {
                    repeated |= self.lengths > 1;
                    *self = HeadScan {
                        in_head: false,
                        ..HeadScan::started()
                    };
                }
                b'\n' => {
                    if self.name_done && self.name[..self.name_len] == *Self::CONTENT_LENGTH {
                        self.lengths += 1;
                    }
                    self.name_len = 0;
                    self.line_has_bytes = false;
                    self.name_done = false;
                }
                b':' if !self.name_done => {
                    self.line_has_bytes = true;
                    self.name_done = true;
                }
                _ => {
                    self.line_has_bytes = true;
                    if !self.name_done {
                        if self.name_len < self.name.len() {
                            self.name[self.name_len] = b.to_ascii_lowercase();
                        }
                        // Longer names are not `content-length`: one past the end
                        // is enough to tell.
                        self.name_len = (self.name_len + 1).min(self.name.len());
                    }
                }
            }
        }
        repeated
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if this.slot.bytes_arrived() {
                this.head = HeadScan::started();
            }
            if this.head.in_head && this.head.scan(&buf.filled()[before..]) {
                this.slot.lock().repeated_length = true;
            }
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lengths_are_counted_across_reads_and_only_in_the_head() {
        let head =
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-LENGTH: 2\r\n\r\n{}";
        for split in 1..head.len() {
            let mut scan = HeadScan::started();
            let repeated = scan.scan(&head[..split]) | scan.scan(&head[split..]);
            assert!(repeated, "split at {split}");
            assert!(!scan.in_head);
        }
        let mut one = HeadScan::started();
        assert!(!one.scan(b"POST / HTTP/1.1\r\ncontent-length: 2\r\ncontent-lengthy: 2\r\nx-content-length: 1\r\n\r\n"));
        // Body bytes after the head are not looked at.
        let mut body = HeadScan::started();
        assert!(!body.scan(b"POST / HTTP/1.1\r\ncontent-length: 40\r\n\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n"));
    }

    #[test]
    fn at_the_limit_the_longest_waiting_client_gives_way_and_handled_ones_never_do() {
        let conns = Connections::new(2);
        let a = conns.admit().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let b = conns.admit().unwrap();
        // `a` waited longest: it is closed for `c`.
        let c = conns.admit().unwrap();
        assert_eq!(a.order(), Order::Close);
        assert_eq!(b.order(), Order::Continue);
        assert_eq!(conns.len(), 2);
        // Both open connections being handled: nobody gives way.
        b.set(Wait::Handling);
        c.set(Wait::Handling);
        assert!(conns.admit().is_err());
        assert_eq!(b.order(), Order::Continue);
        // An idle one does.
        b.set(Wait::Idle);
        let d = conns.admit().unwrap();
        assert_eq!(b.order(), Order::Close);
        conns.remove(&b);
        conns.remove(&d);
        assert_eq!(conns.len(), 1);
    }

    #[test]
    fn a_new_request_on_an_idle_connection_starts_the_header_clock() {
        let limits = Limits {
            header: Duration::from_secs(1),
            body: Duration::from_secs(1),
            idle: Duration::from_secs(100),
            max_connections: 1,
        };
        let conns = Connections::new(1);
        let a = conns.admit().unwrap();
        a.set(Wait::Idle);
        let idle_deadline = a.deadline(&limits);
        a.bytes_arrived();
        assert!(a.deadline(&limits) < idle_deadline);
        assert_eq!(a.overdue(&limits), None);
    }
}
