//! A NATS server with JetStream on 127.0.0.1, for tests of NATS sources.
//!
//! ```ignore
//! let Some(nats) = gordon_test_servers::nats::Nats::start() else { return };
//! let client = async_nats::connect(nats.url()).await?;
//! ```
//!
//! The server runs `nats-server -js -a 127.0.0.1 -p PORT -sd DIR` with a fresh store
//! directory, logging to `DIR/nats-server.log` (shown when it fails to start). It is
//! ready when a client connection is greeted with an `INFO` line that announces
//! JetStream. [`Nats::restart`] brings it back on the same port and store, so durable
//! streams and consumers survive, as in a real outage.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, require, stop};

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `nats-server` with JetStream enabled; stopped when dropped.
pub struct Nats {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    /// Starts a server on a free port with a fresh store directory and waits until it
    /// is ready. `None` when `nats-server` is not installed (outside CI).
    ///
    /// # Panics
    /// If the server does not start or is not ready within 20 s (the message includes
    /// the server's log).
    pub fn start() -> Option<Self> {
        let binary = require("nats-server", "nats-server")?;
        let dir = tempfile::Builder::new()
            .prefix("gordon-nats-")
            .tempdir()
            .expect("create a store directory for nats-server");
        let mut nats = Nats {
            binary,
            port: free_port(),
            dir,
            child: None,
        };
        nats.launch();
        Some(nats)
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (kept across restarts).
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is running (not stopped by [`Nats::kill`]).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and starts it again on the
    /// same port with the same store directory, waiting until it is ready. Works after
    /// [`Nats::kill`] too.
    ///
    /// # Panics
    /// If the server does not come back within 20 s.
    pub fn restart(&mut self) {
        self.terminate();
        self.launch();
    }

    /// Kills the server at once (SIGKILL), as a crash would; [`Nats::restart`] brings it
    /// back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn launch(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the nats-server log");
        let log_err = log.try_clone().expect("clone the nats-server log handle");
        let store = self.dir.path().join("jetstream");
        let child = Command::new(&self.binary)
            .arg("-js")
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls until a connection gets an `INFO` line announcing JetStream.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "nats-server on port {} exited during start-up ({status}); log:\n{}",
                        self.port,
                        self.log_tail()
                    );
                }
            }
            if probe(self.port) {
                return;
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail();
                self.kill();
                panic!(
                    "nats-server on port {} was not ready within {START_TIMEOUT:?}; log:\n{tail}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait, then SIGKILL.
    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: `pid` is our own child, not yet reaped, so it names that process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stop(&mut child);
    }
}

/// Connects and reads the greeting; true when it is an `INFO` line with JetStream on.
fn probe(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return false;
    }
    let info = line.trim_end();
    info.starts_with("INFO ") && info.replace(' ', "").contains("\"jetstream\":true")
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("port", &self.port)
            .field("store", &self.dir.path())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_and_stops() {
        let Some(mut nats) = Nats::start() else {
            return;
        };
        assert!(nats.url().ends_with(&format!(":{}", nats.port())));
        assert!(probe(nats.port()));
        let port = nats.port();
        nats.restart();
        assert_eq!(nats.port(), port);
        assert!(nats.is_running() && probe(port));
        nats.kill();
        assert!(!nats.is_running());
        assert!(!probe(port), "a killed server still answers");
        nats.restart();
        assert!(probe(port));
        assert!(nats.store_dir().join("jetstream").is_dir());
    }
}
