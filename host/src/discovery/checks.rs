//! Health checks for `gordon report`: a TCP connect, an HTTP GET expecting a
//! status, or a command's exit code — each bounded by a timeout — and the
//! rise/fall counting that keeps one failed check from flapping a record.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

/// One service's check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Check {
    /// `check = { tcp = "127.0.0.1:8080" }`: the port accepts a connection.
    Tcp(String),
    /// `check = { http = { url = "http://127.0.0.1:8080/health", status = 200 } }`.
    Http {
        /// A plain-HTTP URL.
        url: String,
        /// The status the answer must have.
        #[serde(default = "default_status")]
        status: u16,
    },
    /// `check = { command = ["/usr/local/bin/check-web"] }`: exits 0.
    Command(Vec<String>),
}

const fn default_status() -> u16 {
    200
}

impl Check {
    /// Runs the check once; `Err` says why it failed.
    ///
    /// # Errors
    /// What failed: no connection, another status, a non-zero exit, the timeout.
    pub fn run(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Check::Tcp(addr) => connect(addr, timeout).map(drop),
            Check::Http { url, status } => http_status(url, timeout).and_then(|got| {
                if got == *status {
                    Ok(())
                } else {
                    Err(format!("{url} answered {got}, expected {status}"))
                }
            }),
            Check::Command(argv) => command(argv, timeout),
        }
    }
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = addr.to_socket_addrs().map_err(|e| format!("{addr}: {e}"))?;
    let mut last = format!("{addr}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// The status of a plain-HTTP GET. Written by hand: a health check needs the
/// status line of one request to a local endpoint, no TLS, no body, and the
/// host carries no HTTP client otherwise.
fn http_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be checked"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = connect(&addr, timeout)?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\nuser-agent: gordon-report\r\n\r\n")
        .map_err(|e| format!("{url}: {e}"))?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match stream.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("{url}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    line.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))
}

fn command(argv: &[String], timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("an empty command".into());
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{program} {status}")),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Err(_) => {
            // SAFETY: kill has no memory-safety preconditions; the pid is our child,
            // not yet reaped (its waiter thread still waits).
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            Err(format!(
                "{program} did not finish within {:.1} s",
                timeout.as_secs_f64()
            ))
        }
    }
}

/// Rise/fall counting: a service turns up after `rise` passing checks in a row,
/// and down after `fall` failing ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    /// Whether it counts as up.
    pub up: bool,
    passed: u32,
    failed: u32,
}

impl Hysteresis {
    /// Down, until `rise` checks pass.
    pub fn new(rise: u32, fall: u32) -> Self {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            up: false,
            passed: 0,
            failed: 0,
        }
    }

    /// Counts one check; returns the new state when it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.passed += 1;
            self.failed = 0;
            if !self.up && self.passed >= self.rise {
                self.up = true;
                return Some(true);
            }
        } else {
            self.failed += 1;
            self.passed = 0;
            if self.up && self.failed >= self.fall {
                self.up = false;
                return Some(false);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failed_check_does_not_flap() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some(false));
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn checks_pass_and_fail_for_real() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = Duration::from_secs(2);
        assert_eq!(Check::Tcp(addr.clone()).run(t), Ok(()));
        drop(listener);
        assert!(Check::Tcp(addr).run(t).is_err());
        assert_eq!(Check::Command(vec!["true".into()]).run(t), Ok(()));
        assert!(Check::Command(vec!["false".into()])
            .run(t)
            .unwrap_err()
            .contains("exit status: 1"));
        let slow = Check::Command(vec!["sleep".into(), "5".into()]).run(Duration::from_millis(100));
        assert!(slow.unwrap_err().contains("did not finish"));
        // A one-request HTTP server answering 503.
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", server.local_addr().unwrap());
        let answer = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        let err = Check::Http { url, status: 200 }.run(t).unwrap_err();
        assert!(err.contains("answered 503, expected 200"), "{err}");
        answer.join().unwrap();
    }
}
