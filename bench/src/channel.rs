//! The FFI event channel against abi_stable's crossbeam channel, same run.

use std::time::Instant;

use abi_stable::external_types::crossbeam_channel as cb;
use gordon_plugin_api::channel::{bounded, Recv};
use serde_json::json;

const N: u64 = 5_000_000;

fn ours(batch: usize) -> f64 {
    let (tx, rx) = bounded::<u64>(8192);
    let started = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut i = 0;
        while i < N {
            if batch == 1 {
                let _ = tx.send(i);
                i += 1;
            } else {
                let n = (batch as u64).min(N - i);
                let _ = tx.send_batch((i..i + n).collect());
                i += n;
            }
        }
    });
    let mut buf = Vec::with_capacity(256);
    let mut got = 0u64;
    while rx.recv_batch(&mut buf, 256, None) != Recv::Ended {
        got += buf.len() as u64;
        buf.clear();
    }
    let _ = producer.join();
    assert_eq!(got, N);
    N as f64 / started.elapsed().as_secs_f64()
}

fn crossbeam(batch: usize) -> f64 {
    let (tx, rx) = cb::bounded::<u64>(8192);
    let started = Instant::now();
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            let _ = tx.send(i);
        }
    });
    let mut got = 0u64;
    if batch == 1 {
        while rx.recv().is_ok() {
            got += 1;
        }
    } else {
        // Receive the way a batching router would: block for one, then drain.
        while rx.recv().is_ok() {
            got += 1;
            let mut n = 1;
            while n < batch {
                match rx.try_recv() {
                    Ok(_) => {
                        got += 1;
                        n += 1;
                    }
                    Err(_) => break,
                }
            }
        }
    }
    let _ = producer.join();
    assert_eq!(got, N);
    N as f64 / started.elapsed().as_secs_f64()
}

/// Items per second, one by one and in batches of 64.
pub fn run() {
    let single = (ours(1), crossbeam(1));
    let batched = (ours(64), crossbeam(64));
    println!(
        "{}",
        json!({
            "bench": "channel",
            "items": N,
            "ours_single_per_s": single.0.round(), "crossbeam_single_per_s": single.1.round(),
            "ours_batch64_per_s": batched.0.round(), "crossbeam_batch64_per_s": batched.1.round(),
        })
    );
}
