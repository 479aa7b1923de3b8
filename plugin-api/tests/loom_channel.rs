//! Model checks of `gordon_plugin_api::channel` with loom: every interleaving of a few
//! threads through the real channel code, built on loom's `Mutex`, `Condvar`, atomics
//! and `Arc` (see `src/channel/sync.rs`).
//!
//! Run with
//! `RUSTFLAGS="--cfg gordon_loom" cargo test -p gordon-plugin-api --release --test loom_channel --target-dir target/loom`
//! (`scripts/test.sh` does). Every model tags items with ids and checks, once all its
//! threads are done, that each id sent was either received exactly once or given back
//! to its sender exactly once, in order per sender. loom itself fails a model in which
//! a thread sleeps with nobody left to wake it (a receiver asleep while items wait, a
//! sender blocked forever) and one that leaks the channel's shared state.
//!
//! The models are kept to 2–3 threads, 1–3 items and a capacity of 1–2. Most explore
//! every interleaving in a few seconds at most; three (`close_races_recv`,
//! `two_senders_one_receiver`, `one_sender_two_receivers`) would take minutes or more
//! that way, so they are given a preemption bound of 3–4: loom tries every schedule
//! with at most that many forced switches away from a thread that could go on, which
//! is where the concurrency bugs found in practice live. Setting
//! `LOOM_MAX_PREEMPTIONS` overrides the bound of every model. loom's
//! `Condvar::wait_timeout` never times out, so receive timeouts are not modelled.
#![cfg(gordon_loom)]

use std::collections::HashSet;

use gordon_plugin_api::channel::{bounded, Receiver, Recv, Sender};
use loom::thread;

/// Runs `f` under every interleaving loom finds, with at most `preemptions` forced
/// thread switches in each (`None`: no bound, the whole space) unless
/// `LOOM_MAX_PREEMPTIONS` is set.
fn model<F>(preemptions: Option<usize>, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = preemptions;
    }
    builder.check(f);
}

/// What one sender did with its ids.
#[derive(Debug, Default)]
struct Sent {
    /// Tried, in order.
    ids: Vec<u32>,
    /// Taken by the channel, in order.
    accepted: Vec<u32>,
    /// Handed back in a `Closed`.
    given_back: Vec<u32>,
}

/// Sends `ids` one `send` at a time; keeps sending after a `Closed`, so every later
/// item must come back too.
fn send_each(tx: &Sender<u32>, ids: &[u32]) -> Sent {
    let mut sent = Sent {
        ids: ids.to_vec(),
        ..Sent::default()
    };
    for &id in ids {
        match tx.send(id) {
            Ok(()) => {
                assert!(
                    sent.given_back.is_empty(),
                    "send {id} succeeded after a Closed"
                );
                sent.accepted.push(id);
            }
            Err(closed) => {
                assert_eq!(closed.0, vec![id], "send gave back the wrong items");
                sent.given_back.push(id);
            }
        }
    }
    sent
}

/// Sends `ids` as one batch: what is not delivered comes back as a suffix.
fn send_batch(tx: &Sender<u32>, ids: &[u32]) -> Sent {
    let mut sent = Sent {
        ids: ids.to_vec(),
        ..Sent::default()
    };
    match tx.send_batch(ids.to_vec()) {
        Ok(()) => sent.accepted = ids.to_vec(),
        Err(closed) => {
            let cut = ids
                .len()
                .checked_sub(closed.0.len())
                .expect("more given back than sent");
            assert_eq!(
                closed.0,
                ids[cut..],
                "a batch's give-back is not its undelivered tail"
            );
            sent.accepted = ids[..cut].to_vec();
            sent.given_back = closed.0;
        }
    }
    sent
}

/// Receives batches of at most `max` until the stream ends.
fn drain(rx: &Receiver<u32>, max: usize) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match rx.recv_batch(&mut got, max, None) {
            Recv::Items => {}
            Recv::Ended => return got,
            Recv::Timeout => panic!("a receive without a timeout timed out"),
        }
    }
}

/// The ledger: each id sent was accepted or given back, never both, never twice;
/// each id received was accepted, and received once; each receiver saw each sender's
/// items in the order sent. With `drained`, every accepted id was received: nothing
/// stranded. `received` has one list per receiver.
fn check(senders: &[Sent], received: &[&[u32]], drained: bool) {
    let mut accepted = HashSet::new();
    for s in senders {
        let mut outcome: Vec<u32> = s.accepted.iter().chain(&s.given_back).copied().collect();
        outcome.sort_unstable();
        let mut ids = s.ids.clone();
        ids.sort_unstable();
        assert_eq!(
            outcome, ids,
            "an id was lost or duplicated between accepted and given back: {s:?}"
        );
        accepted.extend(s.accepted.iter().copied());
        for got in received {
            let mut order = s.accepted.iter();
            for id in got.iter().filter(|id| s.ids.contains(id)) {
                assert!(
                    order.any(|a| a == id),
                    "received {got:?}, not in the order accepted {:?}",
                    s.accepted
                );
            }
        }
    }
    let mut seen = HashSet::new();
    for id in received.iter().flat_map(|got| got.iter()) {
        assert!(seen.insert(*id), "id {id} received twice: {received:?}");
        assert!(accepted.contains(id), "id {id} received but never accepted");
    }
    if drained {
        assert_eq!(seen, accepted, "accepted items were never received");
    }
}

/// One sender, one receiver, capacity 1: the receiver sleeps or spins while the
/// sender blocks on a full queue; both items arrive, once, in order.
#[test]
fn send_vs_recv_batch() {
    model(None, || {
        let (tx, rx) = bounded::<u32>(1);
        let sender = thread::spawn(move || send_each(&tx, &[1, 2]));
        let got = drain(&rx, 2);
        let sent = sender.join().unwrap();
        assert_eq!(sent.accepted, [1, 2]);
        check(&[sent], &[&got], true);
    });
}

/// A batch larger than the queue (3 into capacity 2) against a receiver taking one at
/// a time: the sender blocks part-way through its batch and resumes as room appears.
#[test]
fn send_batch_vs_recv_batch_small_capacity() {
    model(None, || {
        let (tx, rx) = bounded::<u32>(2);
        let sender = thread::spawn(move || send_batch(&tx, &[1, 2, 3]));
        let got = drain(&rx, 1);
        let sent = sender.join().unwrap();
        assert_eq!(sent.accepted, [1, 2, 3]);
        check(&[sent], &[&got], true);
    });
}

/// `close` while a sender is blocked mid-batch (capacity 1, nothing received): the
/// close alone must wake the sender, which gets back exactly what the queue did not
/// take; only then does the receiver drain what it did take.
#[test]
fn close_races_a_blocked_sender() {
    model(None, || {
        let (tx, rx) = bounded::<u32>(1);
        let sender = thread::spawn(move || send_batch(&tx, &[1, 2, 3]));
        rx.close();
        let sent = sender.join().unwrap();
        let got = drain(&rx, 4);
        assert!(
            sent.accepted.len() <= 1,
            "a closed queue took more than its capacity"
        );
        check(&[sent], &[&got], true);
    });
}

/// `close` from one thread while another is receiving (asleep, spinning or taking an
/// item) and a sender is sending: the receiver wakes and sees `Ended` although the
/// sender is still alive, and every item is received or given back.
#[test]
fn close_races_recv() {
    model(Some(4), || {
        let (tx, rx) = bounded::<u32>(1);
        let closer = rx.clone();
        let receiver = thread::spawn(move || drain(&rx, 2));
        let close = thread::spawn(move || closer.close());
        let sent = send_each(&tx, &[1, 2]);
        // `tx` is still alive: only the close can end the receiver's stream.
        let got = receiver.join().unwrap();
        close.join().unwrap();
        check(&[sent], &[&got], true);
        drop(tx);
    });
}

/// Dropping the receiver, having received nothing, while the sender is blocked on a
/// full queue (capacity 1): the sender must wake and get its undelivered items back
/// instead of sleeping forever. Items the queue took before the drop are dropped with
/// it (loom checks the channel is freed).
#[test]
fn dropping_the_receiver_wakes_a_blocked_sender() {
    model(None, || {
        let (tx, rx) = bounded::<u32>(1);
        let sender = thread::spawn(move || {
            let sent = send_each(&tx, &[1, 2]);
            assert!(tx.is_closed(), "the channel is open with no receiver");
            sent
        });
        drop(rx);
        let sent = sender.join().unwrap();
        check(&[sent], &[], false);
    });
}

/// The same through the receiver handed across a library boundary.
#[test]
fn dropping_the_ffi_receiver_wakes_a_blocked_sender() {
    model(None, || {
        let (tx, rx) = bounded::<u32>(1);
        let rx = rx.into_ffi();
        let sender = thread::spawn(move || send_batch(&tx, &[1, 2]));
        drop(rx);
        let sent = sender.join().unwrap();
        check(&[sent], &[], false);
    });
}

/// Every sender drops (one after sending an item, one without sending) while the
/// receiver sleeps: it wakes, gets the item, and sees `Ended`.
#[test]
fn dropping_every_sender_ends_a_sleeping_receiver() {
    model(None, || {
        let (tx, rx) = bounded::<u32>(1);
        let tx2 = tx.clone();
        let first = thread::spawn(move || send_each(&tx, &[1]));
        let second = thread::spawn(move || drop(tx2));
        let got = drain(&rx, 2);
        let sent = first.join().unwrap();
        second.join().unwrap();
        assert_eq!(got, [1]);
        check(&[sent], &[&got], true);
    });
}

/// Two senders, one `send` and one `send_batch`, contend for a single slot; the
/// receiver gets all three items, each once, in each sender's order.
#[test]
fn two_senders_one_receiver() {
    model(Some(3), || {
        let (tx, rx) = bounded::<u32>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || send_each(&tx, &[1]));
        let b = thread::spawn(move || send_batch(&tx2, &[2, 3]));
        let got = drain(&rx, 2);
        let sent = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(got.len(), 3);
        check(&sent, &[&got], true);
    });
}

/// One batch of two into a queue both receivers sleep on, each taking one item: the
/// first to wake must pass the rest on, so the other does not sleep while an item
/// waits. The sender stays alive throughout, so its drop cannot do the waking.
#[test]
fn one_sender_two_receivers() {
    model(Some(4), || {
        let (tx, rx) = bounded::<u32>(2);
        let rx2 = rx.clone();
        let take_one = |rx: Receiver<u32>| {
            move || {
                let mut got = Vec::new();
                assert_eq!(rx.recv_batch(&mut got, 1, None), Recv::Items);
                got
            }
        };
        let first = thread::spawn(take_one(rx));
        let second = thread::spawn(take_one(rx2));
        let sent = send_batch(&tx, &[1, 2]);
        let (first, second) = (first.join().unwrap(), second.join().unwrap());
        assert_eq!((first.len(), second.len()), (1, 1));
        check(&[sent], &[&first, &second], true);
        drop(tx);
    });
}
