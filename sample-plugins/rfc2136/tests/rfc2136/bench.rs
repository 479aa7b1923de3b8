//! `bench_changes_per_second`: record changes per second into BIND through the
//! plugin's batched path (20,000 additions in batches of 500, one UPDATE each)
//! against one `nsupdate` process per change (200 changes, extrapolated), in one
//! run. Prints JSON. Run with
//! `cargo test --release -p gordon-plugin-rfc2136 --test rfc2136 -- --ignored --nocapture bench_changes_per_second`.

use std::time::Instant;

use gordon_test_servers::bind::{Bind, Key};

use crate::util::{add, all_ok, publisher, ZONE};

const BATCHED: usize = 20_000;
const BATCH: usize = 500;
const NSUPDATE: usize = 200;

#[test]
#[ignore = "benchmark: run explicitly, in release mode"]
fn bench_changes_per_second() {
    let key = Key::random("gordon-key", "hmac-sha256");
    let Some(bind) = Bind::start(ZONE, std::slice::from_ref(&key)) else {
        return;
    };
    let p = publisher(&bind, &key, ZONE, &format!("max_batch = {BATCH}"));
    let started = Instant::now();
    for b in 0..BATCHED / BATCH {
        let msgs = (0..BATCH)
            .map(|i| {
                let n = b * BATCH + i;
                add(
                    &format!("b{n}"),
                    "A",
                    &[&format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255)],
                )
            })
            .collect();
        all_ok(&p.batch(msgs));
    }
    let batched = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for n in 0..NSUPDATE {
        bind.nsupdate(
            ZONE,
            &format!("update add n{n}.{ZONE} 300 A 10.200.0.{}", n % 256),
        )
        .unwrap();
    }
    let single = started.elapsed().as_secs_f64();
    let records = bind.axfr().len();
    // Each batched change also wrote its owner record.
    assert_eq!(records, 3 + 2 * BATCHED + NSUPDATE, "every change landed");
    let (batched_rate, single_rate) = (BATCHED as f64 / batched, NSUPDATE as f64 / single);
    println!(
        "{}",
        serde_json::json!({
            "bench": "rfc2136_changes_per_second",
            "server": "bind",
            "batched": {"changes": BATCHED, "batch": BATCH, "seconds": batched, "changes_per_second": batched_rate.round()},
            "nsupdate_per_change": {"changes": NSUPDATE, "seconds": single, "changes_per_second": single_rate.round()},
            "speedup": (batched_rate / single_rate * 10.0).round() / 10.0,
        })
    );
}
