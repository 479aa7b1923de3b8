//! The janitor's compare step on a zone of 100,000 record sets (1 % drift: 500
//! changed, 250 missing, 250 extra), timed over several rounds.
//!
//! `cargo run --release -p gordon-plugin-rfc2136 --example compare_bench [-- N]`
//! (N record sets, default 100,000; drift scales with it).

use std::time::Instant;

use gordon_plugin_api::{RecordType, ResourceRecord};
use gordon_plugin_rfc2136::reconciler::diff::{diff, Owner, Policy, Rules};

/// The number of record sets: the first argument, default 100,000.
fn size() -> usize {
    std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

fn rr(i: usize, last: usize) -> ResourceRecord {
    let mut r = ResourceRecord::new(
        &format!("host{i}.example.com."),
        RecordType::A,
        [format!("10.{}.{}.{}", i / 65_536, i / 256 % 256, last)],
    );
    r.set_ttl(300);
    r
}

fn main() {
    let n = size();
    let desired: Vec<ResourceRecord> = (0..n).map(|i| rr(i, i % 256)).collect();
    let mut actual: Vec<ResourceRecord> = (n / 400..n + n / 400)
        .map(|i| rr(i, if i % 200 == 0 { (i + 1) % 256 } else { i % 256 }))
        .collect();
    actual.reverse();
    let mut rounds = Vec::new();
    let mut changes = 0;
    for _ in 0..7 {
        let started = Instant::now();
        let rules = Rules {
            policy: Policy::Sync,
            adopt: false,
            manage_unowned: false,
        };
        let d = diff(
            "example.com.",
            &desired,
            &actual,
            rules,
            &|_, t| t == RecordType::A,
            &|_, _| Owner::Ours,
        );
        rounds.push(started.elapsed().as_secs_f64());
        changes = d.changes.len();
    }
    rounds.sort_by(f64::total_cmp);
    let median = rounds[rounds.len() / 2];
    println!(
        "{{\"bench\":\"janitor_compare\",\"rrsets_desired\":{n},\"rrsets_served\":{n},\"changes\":{changes},\"median_s\":{median:.4},\"rrsets_compared_per_s\":{:.0}}}",
        (2 * n) as f64 / median
    );
}
