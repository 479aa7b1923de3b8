//! The synchronisation primitives behind the channel: std's in every normal build,
//! loom's models of the same types under `--cfg gordon_loom`, so that
//! `tests/loom_channel.rs` can run the real channel code through every interleaving
//! loom explores.
//!
//! Only this file knows which is which; `channel.rs` names these items and nothing
//! from `std::sync` or `std::hint` directly. The cfg is the crate's own, not `loom`,
//! so that tokio and the rest of the dependencies build as usual (see `Cargo.toml`).

#[cfg(not(gordon_loom))]
pub(super) use std::{
    hint::spin_loop,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
};

// `loom::hint::spin_loop` is a `yield_now`: a busy loop must hand control back to the
// model's scheduler, or loom tries every iteration as its own interleaving. loom's
// `Condvar::wait_timeout` never times out, so the models use no timeouts.
#[cfg(gordon_loom)]
pub(super) use loom::{
    hint::spin_loop,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
};

/// Spin iterations (a few microseconds) a receiver waits for an item before sleeping.
#[cfg(not(gordon_loom))]
pub(super) const SPINS: u32 = 2_000;
/// Under loom, two turns: enough to reach both ends of the spin (an item arrives
/// during it, or nothing does and the receiver sleeps) without multiplying the
/// interleavings by two thousand.
#[cfg(gordon_loom)]
pub(super) const SPINS: u32 = 2;
