//! Integration tests of `dns.rfc2136` against real servers (BIND and Knot), one
//! test binary.
//!
//! A missing server binary skips a test locally and fails it under `CI=true`
//! (`gordon_test_servers::require`).

// Test code: the helpers outside `#[test]` functions unwrap too, and a failed
// unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

// The same publisher suite, run against BIND and against Knot.
mod suite;
// Failures that need no DNS server: refused connections, timeouts.
mod offline;
// The secret never reaches a log line or an error message.
mod secrets;
// `bench_changes_per_second` (ignored): batched updates vs one nsupdate per change.
mod bench;
// Helpers: plugin construction, events, reading the zone back.
mod util;
