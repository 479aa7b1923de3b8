//! Real servers for tests: each starts on 127.0.0.1 on a free high port with a fresh
//! state directory, is probed until ready (no fixed sleeps), and is stopped when
//! dropped.
//!
//! A missing server binary skips the calling test with a clear message
//! ([`require`] returns `None`); with `CI=true` it fails the test instead.

pub mod bind;
pub mod knot;
pub mod nats;
pub mod nats_client;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// Finds a server binary on the usual paths. `None` (with a message on stderr) when
/// it is missing and `CI` is not `true`; panics when it is missing in CI.
pub fn require(binary: &str, package: &str) -> Option<PathBuf> {
    let found = [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|d| PathBuf::from(d).join(binary))
    .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{binary} is missing (Debian package {package}); CI must install it"
        );
        eprintln!(
            "SKIPPED: {binary} not found; install the Debian package {package} to run this test"
        );
    }
    found
}

/// A free TCP (and, in practice, UDP) port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Polls `ready` every 10 ms until it returns true or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} was not ready within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills and reaps a child process.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
