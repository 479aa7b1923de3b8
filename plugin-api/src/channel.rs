//! A bounded, batch-friendly channel whose sending half crosses library boundaries.
//!
//! The host creates the channel and hands a [`Sender`] to a plugin (the original
//! service's *success channel*). The sender is `#[repr(C)]`: a pointer to the
//! channel and a static table of `extern "C"` functions compiled into the library
//! that created it, so a plugin calls straight into the host's queue and never needs
//! the host's copy of `std` or of any runtime.
//!
//! Why not abi_stable's `RSender`/`RReceiver` (crossbeam)? The queue here is one
//! `Mutex<VecDeque>` with two condition variables, which gives three things the host
//! needs: (1) a receiver takes *everything waiting, up to a batch size* in one lock,
//! so batches form by themselves under load and a quiet source still gets one-message
//! latency; (2) a batch send takes one lock for the whole batch; (3) it is generic
//! over any FFI-safe item, so the janitor's rrset and change channels are the same
//! type. Capacity is counted in items, so a fast source is slowed (its `send` blocks)
//! rather than buffered without end. `docs/BENCHMARKS.md` has its measured rate next to
//! crossbeam's.

mod sync;

use std::collections::VecDeque;
use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use self::sync::{
    spin_loop, Arc, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, SPINS,
};

use abi_stable::std_types::{RResult, RVec};
use abi_stable::StableAbi;

/// Why a send did not deliver: the receiving side closed. The undelivered items are
/// given back so the sender can reject or retry them; nothing is lost silently.
pub struct Closed<T>(pub Vec<T>);

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Closed({} undelivered)", self.0.len())
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel closed; {} item(s) not delivered", self.0.len())
    }
}

impl<T> std::error::Error for Closed<T> {}

/// The table of functions behind a [`Sender`]. Part of the ABI: append only.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(bound(T: 'static))]
pub struct SenderVTable<T> {
    send: unsafe extern "C" fn(*const c_void, RVec<T>, bool) -> RResult<(), RVec<T>>,
    send_one: unsafe extern "C" fn(*const c_void, T) -> RResult<(), T>,
    clone: unsafe extern "C" fn(*const c_void),
    drop: unsafe extern "C" fn(*const c_void),
    is_closed: unsafe extern "C" fn(*const c_void) -> bool,
    capacity: unsafe extern "C" fn(*const c_void) -> usize,
}

/// The sending half of a bounded channel; FFI-safe, cheap to clone.
///
/// When the last sender is dropped, the receiver sees the end of the stream.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(bound(T: 'static))]
pub struct Sender<T: 'static> {
    shared: *const c_void,
    vtable: &'static SenderVTable<T>,
    _items: PhantomData<RVec<T>>,
}

// SAFETY: `shared` points to a `Shared<T>` (an `Arc` payload) whose state is behind a
// mutex; every vtable function is thread-safe. Items move between threads, so `T`
// must itself be `Send`.
unsafe impl<T: Send> Send for Sender<T> {}
// SAFETY: as above; `&Sender` only ever calls the thread-safe vtable functions.
unsafe impl<T: Send> Sync for Sender<T> {}

impl<T: Send + 'static> Sender<T> {
    /// Sends a batch, blocking while the channel is full. One lock per batch.
    ///
    /// # Errors
    /// [`Closed`] with the items that were not delivered once the receiver has closed.
    pub fn send_batch(&self, batch: Vec<T>) -> Result<(), Closed<T>> {
        // SAFETY: `shared` is kept alive by this sender's reference count, and the
        // vtable was built for exactly this `T` by `bounded`.
        unsafe { (self.vtable.send)(self.shared, RVec::from(batch), true) }
            .into_result()
            .map_err(|rest| Closed(rest.into_vec()))
    }

    /// Sends one item, blocking while the channel is full.
    ///
    /// # Errors
    /// [`Closed`] with the item once the receiver has closed.
    pub fn send(&self, item: T) -> Result<(), Closed<T>> {
        // SAFETY: as in `send_batch`.
        unsafe { (self.vtable.send_one)(self.shared, item) }
            .into_result()
            .map_err(|item| Closed(vec![item]))
    }

    /// Sends as much of a batch as fits without blocking; returns what did not fit
    /// (empty when everything was sent).
    ///
    /// # Errors
    /// [`Closed`] with the items that were not delivered once the receiver has closed.
    pub fn try_send_batch(&self, batch: Vec<T>) -> Result<Vec<T>, Closed<T>> {
        // SAFETY: as in `send_batch`.
        match unsafe { (self.vtable.send)(self.shared, RVec::from(batch), false) } {
            RResult::ROk(()) => Ok(Vec::new()),
            RResult::RErr(rest) => {
                if self.is_closed() {
                    Err(Closed(rest.into_vec()))
                } else {
                    Ok(rest.into_vec())
                }
            }
        }
    }

    /// Whether the receiver has closed, or every receiver is gone; sends will fail from
    /// now on.
    pub fn is_closed(&self) -> bool {
        // SAFETY: as in `send_batch`.
        unsafe { (self.vtable.is_closed)(self.shared) }
    }

    /// How many items the channel holds before `send` blocks.
    pub fn capacity(&self) -> usize {
        // SAFETY: as in `send_batch`.
        unsafe { (self.vtable.capacity)(self.shared) }
    }
}

impl<T: 'static> Clone for Sender<T> {
    fn clone(&self) -> Self {
        // SAFETY: `shared` is alive (we hold a count); `clone` adds one count.
        unsafe { (self.vtable.clone)(self.shared) };
        Sender {
            shared: self.shared,
            vtable: self.vtable,
            _items: PhantomData,
        }
    }
}

impl<T: 'static> Drop for Sender<T> {
    fn drop(&mut self) {
        // SAFETY: this sender owns one count, given back exactly once here.
        unsafe { (self.vtable.drop)(self.shared) }
    }
}

impl<T: 'static> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    // Live `Receiver`s and `FfiReceiver`s; the last one to go closes the channel.
    receivers: usize,
    closed: bool,
    // Threads blocked in a receive / a send. A notification is a system call, so it
    // is only made when someone waits.
    waiting_receivers: usize,
    waiting_senders: usize,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
    // Items queued, readable without the lock: a receiver about to sleep spins on it
    // briefly first, because waking a sleeping thread costs microseconds.
    queued: AtomicUsize,
    sent_total: AtomicU64,
}

impl<T> Shared<T> {
    fn recv_batch(&self, buf: &mut Vec<T>, max: usize, timeout: Option<Duration>) -> Recv {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        loop {
            if !state.items.is_empty() {
                let n = state.items.len().min(max.max(1));
                buf.extend(state.items.drain(..n));
                self.queued.store(state.items.len(), Ordering::Release);
                if !state.items.is_empty() && state.waiting_receivers > 0 {
                    // Let another receiver take the rest.
                    self.not_empty.notify_one();
                }
                let wake_senders = state.waiting_senders > 0;
                drop(state);
                if wake_senders {
                    self.not_full.notify_all();
                }
                return Recv::Items;
            }
            if state.senders == 0 || state.closed {
                return Recv::Ended;
            }
            let timeout = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Recv::Timeout,
                },
            };
            // Spin a little before sleeping: under steady traffic the next item is
            // usually microseconds away. Bounded, so an idle receiver still sleeps.
            drop(state);
            let mut spins = 0;
            while spins < SPINS && self.queued.load(Ordering::Acquire) == 0 {
                spin_loop();
                spins += 1;
            }
            state = self.lock();
            if !state.items.is_empty() || state.senders == 0 || state.closed {
                continue;
            }
            state.waiting_receivers += 1;
            state = match timeout {
                None => self
                    .not_empty
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(left) => {
                    self.not_empty
                        .wait_timeout(state, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            state.waiting_receivers -= 1;
        }
    }

    /// A receiver is gone. With the last one nobody can take an item any more, so the
    /// channel closes: a sender blocked on a full queue wakes and gets its items back,
    /// and later sends fail at once. Without this, a sender blocked when the receiver
    /// is dropped (rather than closed) sleeps forever: nothing else notifies
    /// `not_full` (found by the `dropping_the_*receiver_wakes_a_blocked_sender`
    /// models in `tests/loom_channel.rs`). Items still queued are dropped with the
    /// channel.
    fn release_receiver(&self) {
        let wake_senders = {
            let mut state = self.lock();
            state.receivers -= 1;
            if state.receivers == 0 {
                state.closed = true;
            }
            state.receivers == 0 && state.waiting_senders > 0
        };
        if wake_senders {
            self.not_full.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A poisoned lock means a panic while holding it; the queue itself is
        // always left consistent (pushes and drains are single calls), so go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct VTableFor<T>(PhantomData<T>);

impl<T: Send + 'static> VTableFor<T> {
    const VTABLE: &'static SenderVTable<T> = &SenderVTable {
        send: send_shim::<T>,
        send_one: send_one_shim::<T>,
        clone: clone_shim::<T>,
        drop: drop_shim::<T>,
        is_closed: is_closed_shim::<T>,
        capacity: capacity_shim::<T>,
    };
}

/// Recovers the `Shared<T>` behind a sender without touching its reference count.
///
/// # Safety
/// `ptr` must come from `Arc::<Shared<T>>::into_raw` and still hold a count.
unsafe fn shared<'a, T>(ptr: *const c_void) -> &'a Shared<T> {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(ptr as *const Shared<T>) }
}

unsafe extern "C" fn send_shim<T: Send>(
    ptr: *const c_void,
    batch: RVec<T>,
    block: bool,
) -> RResult<(), RVec<T>> {
    // SAFETY: called through a live `Sender<T>` built by `bounded::<T>`.
    let shared = unsafe { shared::<T>(ptr) };
    let mut rest = batch.into_iter().peekable();
    let mut state = shared.lock();
    loop {
        if state.closed {
            return RResult::RErr(rest.collect());
        }
        let room = shared.capacity.saturating_sub(state.items.len());
        if room > 0 {
            let before = state.items.len();
            state.items.extend(rest.by_ref().take(room));
            shared
                .sent_total
                .fetch_add((state.items.len() - before) as u64, Ordering::Relaxed);
            shared.queued.store(state.items.len(), Ordering::Release);
            if state.items.len() > before && state.waiting_receivers > 0 {
                shared.not_empty.notify_one();
            }
            if rest.peek().is_none() {
                return RResult::ROk(());
            }
        }
        if !block {
            return RResult::RErr(rest.collect());
        }
        state.waiting_senders += 1;
        state = shared
            .not_full
            .wait(state)
            .unwrap_or_else(|p| p.into_inner());
        state.waiting_senders -= 1;
    }
}

unsafe extern "C" fn send_one_shim<T: Send>(ptr: *const c_void, item: T) -> RResult<(), T> {
    // SAFETY: called through a live `Sender<T>` built by `bounded::<T>`.
    let shared = unsafe { shared::<T>(ptr) };
    let mut state = shared.lock();
    loop {
        if state.closed {
            return RResult::RErr(item);
        }
        if state.items.len() < shared.capacity {
            state.items.push_back(item);
            shared.sent_total.fetch_add(1, Ordering::Relaxed);
            shared.queued.store(state.items.len(), Ordering::Release);
            if state.waiting_receivers > 0 {
                shared.not_empty.notify_one();
            }
            return RResult::ROk(());
        }
        state.waiting_senders += 1;
        state = shared
            .not_full
            .wait(state)
            .unwrap_or_else(|p| p.into_inner());
        state.waiting_senders -= 1;
    }
}

unsafe extern "C" fn clone_shim<T>(ptr: *const c_void) {
    // SAFETY: `ptr` holds a count (caller is a live sender); we add one.
    unsafe {
        shared::<T>(ptr).lock().senders += 1;
        Arc::increment_strong_count(ptr as *const Shared<T>);
    }
}

unsafe extern "C" fn drop_shim<T>(ptr: *const c_void) {
    // SAFETY: the dropping sender owns exactly one count, released here.
    unsafe {
        let s = shared::<T>(ptr);
        let last = {
            let mut state = s.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            s.not_empty.notify_all();
        }
        Arc::decrement_strong_count(ptr as *const Shared<T>);
    }
}

unsafe extern "C" fn is_closed_shim<T>(ptr: *const c_void) -> bool {
    // SAFETY: called through a live sender.
    unsafe { shared::<T>(ptr).lock().closed }
}

unsafe extern "C" fn capacity_shim<T>(ptr: *const c_void) -> usize {
    // SAFETY: called through a live sender.
    unsafe { shared::<T>(ptr).capacity }
}

/// The receiving half: not FFI-safe, it stays with whoever created the channel.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// What a receive returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// Items were appended to the buffer.
    Items,
    /// Nothing arrived before the timeout.
    Timeout,
    /// The queue is empty and every sender is gone or the channel was closed: the
    /// stream ended.
    Ended,
}

impl<T> Receiver<T> {
    /// Waits for at least one item and appends up to `max` waiting items to `buf`.
    /// Returns [`Recv::Ended`] once nothing is left and either every sender is gone or
    /// the channel was closed.
    /// `None` waits without a timeout. Waiting uses no CPU.
    pub fn recv_batch(&self, buf: &mut Vec<T>, max: usize, timeout: Option<Duration>) -> Recv {
        self.shared.recv_batch(buf, max, timeout)
    }

    /// Closes the channel for senders: further sends fail and hand their items back.
    /// Items already queued can still be received. Dropping the last receiver (or
    /// [`FfiReceiver`]) closes the channel too.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.not_full.notify_all();
        self.shared.not_empty.notify_all();
    }

    /// Items waiting in the queue.
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of live senders.
    pub fn sender_count(&self) -> usize {
        self.shared.lock().senders
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.lock().receivers += 1;
        Receiver {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.release_receiver();
    }
}

/// The table of functions behind an [`FfiReceiver`]. Part of the ABI: append only.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(bound(T: 'static))]
pub struct ReceiverVTable<T> {
    recv: unsafe extern "C" fn(*const c_void, usize, u64, &mut RVec<T>) -> u8,
    drop: unsafe extern "C" fn(*const c_void),
}

/// The receiving half handed across a library boundary (the janitor's rrset and
/// change channels): a plugin reads what the host, or another plugin, sends.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(bound(T: 'static))]
pub struct FfiReceiver<T: 'static> {
    shared: *const c_void,
    vtable: &'static ReceiverVTable<T>,
    _items: PhantomData<RVec<T>>,
}

// SAFETY: as for `Sender`: the shared state is behind a mutex and the vtable
// functions are thread-safe.
unsafe impl<T: Send> Send for FfiReceiver<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for FfiReceiver<T> {}

const RECV_ITEMS: u8 = 0;
const RECV_TIMEOUT: u8 = 1;
const RECV_ENDED: u8 = 2;

impl<T: 'static> FfiReceiver<T> {
    /// Waits for at least one item and appends up to `max` to `buf`, like
    /// [`Receiver::recv_batch`].
    pub fn recv_batch(&self, buf: &mut Vec<T>, max: usize, timeout: Option<Duration>) -> Recv {
        let mut out = RVec::new();
        let ms = timeout.map_or(u64::MAX, |t| {
            t.as_millis().min(u128::from(u64::MAX - 1)) as u64
        });
        // SAFETY: `shared` is kept alive by this receiver; the vtable matches `T`.
        let status = unsafe { (self.vtable.recv)(self.shared, max, ms, &mut out) };
        buf.extend(out);
        match status {
            RECV_ITEMS => Recv::Items,
            RECV_TIMEOUT => Recv::Timeout,
            _ => Recv::Ended,
        }
    }
}

impl<T: 'static> Drop for FfiReceiver<T> {
    fn drop(&mut self) {
        // SAFETY: this receiver owns one count of the `Arc`, given back here once.
        unsafe { (self.vtable.drop)(self.shared) }
    }
}

impl<T: 'static> fmt::Debug for FfiReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FfiReceiver { .. }")
    }
}

struct ReceiverVTableFor<T>(PhantomData<T>);

impl<T: Send + 'static> ReceiverVTableFor<T> {
    const VTABLE: &'static ReceiverVTable<T> = &ReceiverVTable {
        recv: ffi_recv_shim::<T>,
        drop: ffi_receiver_drop_shim::<T>,
    };
}

unsafe extern "C" fn ffi_recv_shim<T>(
    ptr: *const c_void,
    max: usize,
    timeout_ms: u64,
    out: &mut RVec<T>,
) -> u8 {
    // SAFETY: `ptr` comes from `Arc::into_raw` in `Receiver::into_ffi` and the
    // calling `FfiReceiver` holds that count for the length of the call.
    let shared = unsafe { &*(ptr as *const Shared<T>) };
    let timeout = (timeout_ms != u64::MAX).then(|| Duration::from_millis(timeout_ms));
    let mut buf = Vec::new();
    let status = shared.recv_batch(&mut buf, max, timeout);
    out.extend(buf);
    match status {
        Recv::Items => RECV_ITEMS,
        Recv::Timeout => RECV_TIMEOUT,
        Recv::Ended => RECV_ENDED,
    }
}

unsafe extern "C" fn ffi_receiver_drop_shim<T>(ptr: *const c_void) {
    // SAFETY: the dropping `FfiReceiver` owns exactly one count, alive until it is
    // released on the last line.
    unsafe {
        (*(ptr as *const Shared<T>)).release_receiver();
        Arc::decrement_strong_count(ptr as *const Shared<T>);
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// Turns this receiver into one that can be handed to a plugin.
    pub fn into_ffi(self) -> FfiReceiver<T> {
        // The new receiver counts as one before `self` is dropped, so the channel
        // stays open in between.
        self.shared.lock().receivers += 1;
        FfiReceiver {
            shared: Arc::into_raw(Arc::clone(&self.shared)) as *const c_void,
            vtable: ReceiverVTableFor::<T>::VTABLE,
            _items: PhantomData,
        }
    }

    /// Items sent on the channel so far (for run reports).
    pub fn sent_total(&self) -> u64 {
        self.shared.sent_total.load(Ordering::Relaxed)
    }

    /// A handle that reads [`Receiver::sent_total`] without being a receiver: it
    /// does not keep the channel open once every real receiver is gone.
    pub fn sent_counter(&self) -> SentCounter {
        let shared = Arc::clone(&self.shared);
        SentCounter(std::sync::Arc::new(move || {
            shared.sent_total.load(Ordering::Relaxed)
        }))
    }
}

/// Reads how many items a channel has carried; see [`Receiver::sent_counter`].
#[derive(Clone)]
pub struct SentCounter(std::sync::Arc<dyn Fn() -> u64 + Send + Sync>);

impl SentCounter {
    /// Items sent on the channel so far.
    pub fn get(&self) -> u64 {
        (self.0)()
    }
}

/// Creates a channel holding at most `capacity` items (at least 1).
pub fn bounded<T: Send + 'static>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receivers: 1,
            closed: false,
            waiting_receivers: 0,
            waiting_senders: 0,
        }),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        capacity: capacity.max(1),
        queued: AtomicUsize::new(0),
        sent_total: AtomicU64::new(0),
    });
    let receiver = Receiver {
        shared: Arc::clone(&shared),
    };
    let sender = Sender {
        shared: Arc::into_raw(shared) as *const c_void,
        vtable: VTableFor::<T>::VTABLE,
        _items: PhantomData,
    };
    (sender, receiver)
}

// Under `--cfg gordon_loom` the primitives only work inside a loom model; the models
// are in `tests/loom_channel.rs`.
#[cfg(all(test, not(gordon_loom)))]
mod tests {
    use super::*;

    #[test]
    fn batches_form_from_what_is_waiting() {
        let (tx, rx) = bounded::<u32>(100);
        tx.send_batch((0..10).collect()).unwrap();
        tx.send(10).unwrap();
        let mut buf = Vec::new();
        assert_eq!(rx.recv_batch(&mut buf, 4, None), Recv::Items);
        assert_eq!(buf, vec![0, 1, 2, 3]);
        buf.clear();
        assert_eq!(rx.recv_batch(&mut buf, 100, None), Recv::Items);
        assert_eq!(buf, (4..=10).collect::<Vec<_>>());
    }

    #[test]
    fn stream_ends_when_last_sender_drops() {
        let (tx, rx) = bounded::<u32>(4);
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(rx.sender_count(), 1);
        tx2.send(1).unwrap();
        drop(tx2);
        let mut buf = Vec::new();
        assert_eq!(rx.recv_batch(&mut buf, 10, None), Recv::Items);
        assert_eq!(rx.recv_batch(&mut buf, 10, None), Recv::Ended);
    }

    #[test]
    fn full_channel_blocks_the_sender_until_drained() {
        let (tx, rx) = bounded::<u32>(2);
        let producer = std::thread::spawn(move || tx.send_batch((0..10).collect()));
        let mut got = Vec::new();
        while got.len() < 10 {
            rx.recv_batch(&mut got, 10, None);
            assert!(rx.len() <= 2, "queue exceeded its capacity");
        }
        producer.join().unwrap().unwrap();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn close_gives_undelivered_items_back() {
        let (tx, rx) = bounded::<u32>(2);
        rx.close();
        let err = tx.send_batch(vec![1, 2, 3]).unwrap_err();
        assert_eq!(err.0, vec![1, 2, 3]);
        assert!(tx.is_closed());
        let mut buf = Vec::new();
        assert_eq!(rx.recv_batch(&mut buf, 10, None), Recv::Ended);
    }

    #[test]
    fn dropping_the_receiver_unblocks_a_full_sender() {
        let (tx, rx) = bounded::<u32>(1);
        let tx2 = tx.clone();
        let producer = std::thread::spawn(move || tx.send_batch(vec![1, 2]));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        let err = producer.join().unwrap().unwrap_err();
        assert!(!err.0.is_empty() && err.0.ends_with(&[2]));
        assert!(tx2.is_closed());
        assert_eq!(tx2.send(3).unwrap_err().0, vec![3]);
    }

    #[test]
    fn try_send_returns_what_did_not_fit() {
        let (tx, rx) = bounded::<u32>(2);
        let rest = tx.try_send_batch(vec![1, 2, 3]).unwrap();
        assert_eq!(rest, vec![3]);
        assert_eq!(rx.len(), 2);
    }

    #[test]
    fn receive_times_out_when_idle() {
        let (_tx, rx) = bounded::<u32>(2);
        let mut buf = Vec::new();
        assert_eq!(
            rx.recv_batch(&mut buf, 1, Some(Duration::from_millis(5))),
            Recv::Timeout
        );
    }
}
