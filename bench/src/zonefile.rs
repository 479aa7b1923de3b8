//! Publish rate of the default pipeline as the zone grows: a release `gordon` runs
//! `http.events -> dns.enricher -> dns.zonefile`, and 4 client threads post JSON
//! arrays of 500 addition events (unique names `h<N>`) over keep-alive HTTP/1.1 to
//! `POST /events`.
//!
//! ```text
//! gordon-bench zonefile [--records N] [--timeout SECS]   # N: default 200,000
//! ```
//!
//! The rate per window is taken from when records are *published*: a monitor
//! thread polls `GET /events/{id}` for the last id of each post, oldest first, and
//! the time it sees the post holding the 10,000th, 20,000th, ... record published
//! marks that boundary. (The accepted total runs up to a queue's worth, 8,192
//! events, ahead of the published one, which would flatter the first window; it is
//! reported too.) At the end the last id
//! each client was given is polled with `GET /events/{id}` until it is `published`
//! (the total time to the last published), the peak RSS is read from
//! `/proc/PID/status` (`VmHWM`), the host is stopped with SIGTERM, and the zone file
//! must hold every accepted record.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::process::{config_root, gordon};

const CLIENTS: usize = 4;
const BATCH: u64 = 500;
/// The accepted total is timed at every multiple of this.
const STEP: u64 = 10_000;
const DEFAULT_RECORDS: u64 = 200_000;
/// Load phase limit; past it the clients stop and the run reports how far it got.
const DEFAULT_TIMEOUT_S: u64 = 1_200;
const RATIO_TARGET: f64 = 0.7;
const SUSTAINED_TARGET: f64 = 20_000.0;
/// Window at the end of a long run (at least twice as many records) for its
/// sustained rate.
const SUSTAINED_WINDOW: u64 = 200_000;

struct Options {
    records: u64,
    timeout: Duration,
}

impl Options {
    /// `--records N` and `--timeout SECS` from the arguments after the subcommand.
    fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut opts = Options {
            records: DEFAULT_RECORDS,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> anyhow::Result<u64> {
                let v = args
                    .next()
                    .with_context(|| format!("{name} needs a value"))?;
                v.replace('_', "")
                    .parse()
                    .with_context(|| format!("{name} {v}: not a whole number"))
            };
            match arg.as_str() {
                "--records" => opts.records = value("--records")?,
                "--timeout" => opts.timeout = Duration::from_secs(value("--timeout")?),
                other => bail!("zonefile: unknown option `{other}` (--records N, --timeout SECS)"),
            }
        }
        if opts.records == 0 || !opts.records.is_multiple_of(STEP) {
            bail!("--records must be a positive multiple of {STEP}");
        }
        Ok(opts)
    }
}

/// `gordon-bench zonefile`: one run, its size from the command line.
pub fn run() -> anyhow::Result<()> {
    let opts = Options::parse(std::env::args().skip(2))?;
    measure(opts.records, opts.timeout)
}

fn event(i: u64) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"h{i}","type":"A","rrdatas":["10.{}.{}.{}"]}}}}"#,
        i >> 16 & 255,
        i >> 8 & 255,
        i & 255
    )
}

/// Records `[first, first + n)` as one JSON array.
fn body(first: u64, n: u64) -> Vec<u8> {
    let mut out = String::with_capacity(n as usize * 100);
    out.push('[');
    for i in first..first + n {
        if i > first {
            out.push(',');
        }
        out.push_str(&event(i));
    }
    out.push(']');
    out.into_bytes()
}

/// A minimal keep-alive HTTP/1.1 client over `std::net::TcpStream`. No blocking HTTP
/// client crate (ureq, reqwest, attohttpc) is in Cargo.lock, and the bench needs
/// only sized requests and the sized answers hyper gives (`Content-Length`, no
/// chunking) on one connection per client.
struct Conn {
    stream: BufReader<TcpStream>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    /// The server closes the connection after this answer.
    close: bool,
}

impl Conn {
    fn connect(port: u16) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
        stream.set_nodelay(true)?;
        // A full queue holds a request; this only stops a hang.
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Conn {
            stream: BufReader::with_capacity(64 * 1024, stream),
        })
    }

    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Answer> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.get_mut().write_all(&req)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let (mut length, mut close) = (None, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                bail!("connection closed in the answer's head");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                bail!("bad header {header:?}");
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = Some(value.parse::<usize>()?),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "transfer-encoding" => bail!("unexpected transfer-encoding {value}"),
                _ => {}
            }
        }
        let mut body = vec![0; length.context("answer without content-length")?];
        self.stream.read_exact(&mut body)?;
        Ok(Answer {
            status,
            body,
            close,
        })
    }
}

/// What the clients share.
struct Load {
    port: u16,
    records: u64,
    next_batch: AtomicU64,
    accepted: AtomicU64,
    retries: AtomicU64,
    stop: AtomicBool,
    start: OnceLock<Instant>,
    /// Seconds from the start at which the accepted total reached `k * STEP`.
    marks: Mutex<Vec<Option<f64>>>,
    /// The last id of each post, by post (batch) index, once accepted.
    last_ids: Mutex<Vec<Option<String>>>,
}

impl Load {
    fn accepted(&self, n: u64) {
        let before = self.accepted.fetch_add(n, Ordering::SeqCst);
        let after = before + n;
        let t = self.start.get().map_or(0.0, |s| s.elapsed().as_secs_f64());
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        for k in before / STEP + 1..=after / STEP {
            marks[k as usize] = Some(t);
        }
    }
}

/// One client: takes batches until none are left (or the run is stopped); returns
/// the last id it was given.
fn client(load: &Load, ready: &Barrier) -> anyhow::Result<Option<String>> {
    // Wait at the barrier even if the connection failed, so the others are not held.
    let conn = Conn::connect(load.port);
    ready.wait();
    let mut conn = Some(conn?);
    let batches = load.records.div_ceil(BATCH);
    let mut last = None;
    loop {
        let b = load.next_batch.fetch_add(1, Ordering::SeqCst);
        if b >= batches || load.stop.load(Ordering::SeqCst) {
            return Ok(last);
        }
        let first = b * BATCH;
        let n = BATCH.min(load.records - first);
        let body = body(first, n);
        loop {
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(Conn::connect(load.port)?),
            };
            let answer = c.request("POST", "/events", &body)?;
            if answer.close {
                conn = None;
            }
            match answer.status {
                202 => {
                    let doc: serde_json::Value = serde_json::from_slice(&answer.body)?;
                    let ids = doc["ids"].as_array().context("202 without ids")?;
                    if ids.len() as u64 != n {
                        bail!("{} ids for {n} events", ids.len());
                    }
                    last = ids.last().and_then(|v| v.as_str()).map(str::to_owned);
                    load.last_ids.lock().unwrap_or_else(|p| p.into_inner())[b as usize] =
                        last.clone();
                    load.accepted(n);
                    break;
                }
                // The queue is full (or every connection busy): try again shortly.
                503 => {
                    load.retries.fetch_add(1, Ordering::Relaxed);
                    if load.stop.load(Ordering::SeqCst) {
                        return Ok(last);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                s => bail!(
                    "POST /events answered {s}: {}",
                    String::from_utf8_lossy(&answer.body)
                ),
            }
        }
    }
}

/// The monitor: for each post in order, waits until it was accepted, then polls
/// its last id until it is published, and notes when. Returns, per `STEP`
/// boundary, the seconds from the start at which the post holding that record was
/// seen published (`None` past where the run got).
fn monitor(load: &Load) -> anyhow::Result<Vec<Option<f64>>> {
    let batches = load.records.div_ceil(BATCH);
    let mut marks = vec![None; (load.records / STEP) as usize + 1];
    let mut conn = Conn::connect(load.port)?;
    let start = *load.start.get_or_init(Instant::now);
    for b in 0..batches {
        let id = loop {
            let id = load.last_ids.lock().unwrap_or_else(|p| p.into_inner())[b as usize].clone();
            match id {
                Some(id) => break id,
                None if load.stop.load(Ordering::SeqCst) => return Ok(marks),
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        loop {
            let answer = conn.request("GET", &format!("/events/{id}"), b"")?;
            if answer.close {
                conn = Conn::connect(load.port)?;
            }
            let doc: serde_json::Value = serde_json::from_slice(&answer.body)?;
            match doc["status"].as_str() {
                Some("published") => break,
                Some("pending") if !load.stop.load(Ordering::SeqCst) => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                _ => bail!("GET /events/{id}: {} {doc}", answer.status),
            }
        }
        let done = (b + 1) * BATCH;
        if done.is_multiple_of(STEP) {
            marks[(done / STEP) as usize] = Some(start.elapsed().as_secs_f64());
        }
    }
    Ok(marks)
}

/// Kills the host if a run ends early.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Host {
    /// SIGTERM, then wait (at most `timeout`) for the exit.
    fn stop(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "gordon did not exit within {} s of SIGTERM",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn peak_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc status")
}

fn read_port(path: &Path, timeout: Duration) -> anyhow::Result<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(port) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Ok(port);
        }
        if Instant::now() > deadline {
            bail!("{} did not appear", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `ids` until each is `published`; fails on `dropped` or past `timeout`.
fn wait_published(port: u16, ids: &[String], timeout: Duration) -> anyhow::Result<()> {
    let mut conn = Conn::connect(port)?;
    let deadline = Instant::now() + timeout;
    for id in ids {
        loop {
            let answer = conn.request("GET", &format!("/events/{id}"), b"")?;
            let doc: serde_json::Value = serde_json::from_slice(&answer.body)?;
            match (answer.status, doc["status"].as_str()) {
                (200, Some("published")) => break,
                (200, Some("pending")) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => bail!("GET /events/{id}: {} {doc}", answer.status),
            }
            if answer.close {
                conn = Conn::connect(port)?;
            }
        }
    }
    Ok(())
}

/// Lines of the zone file for the bench's own records (`h<N> ...`), not their
/// owner TXT records (`_gordon-a-h<N> ...`).
fn bench_records(zone: &str) -> usize {
    zone.lines()
        .filter(|l| {
            l.strip_prefix('h').is_some_and(|rest| {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && rest.as_bytes().get(digits) == Some(&b' ')
            })
        })
        .count()
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn measure(records: u64, timeout: Duration) -> anyhow::Result<()> {
    let art = crate::artifacts()?;
    let work = tempfile::tempdir()?;
    let port_file = work.path().join("port");
    let zone_path = work.path().join("example.com.zone");
    // 500 events are about 48 KB: the default `max_body_bytes` (1 MiB) is enough.
    let config = format!(
        r#"[core]
plugins = ["http.events", "dns.enricher", "dns.zonefile"]
[core.logging]
level = "warn"
["http.events"]
listen = "127.0.0.1:0"
port_file = "{port}"
["dns"]
zone = "example.com."
["dns.zonefile"]
path = "{zone}"
"#,
        port = port_file.display(),
        zone = zone_path.display()
    );
    let root = config_root(
        &[
            ("libhttp.so".into(), art.join("libgordon_plugin_http.so")),
            ("libdns.so".into(), art.join("libgordon_plugin_dns.so")),
        ],
        &config,
    )?;
    let log = work.path().join("stderr.log");
    let wall = Instant::now();
    let mut host = Host(
        Command::new(gordon()?)
            .arg("-c")
            .arg(root.path())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?,
    );
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let port = read_port(&port_file, Duration::from_secs(10))
        .with_context(|| format!("gordon said:\n{}", said()))?;

    let load = Arc::new(Load {
        port,
        records,
        next_batch: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        start: OnceLock::new(),
        marks: Mutex::new(vec![None; (records / STEP) as usize + 1]),
        last_ids: Mutex::new(vec![None; records.div_ceil(BATCH) as usize]),
    });
    let ready = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (load, ready) = (load.clone(), ready.clone());
            std::thread::spawn(move || {
                let result = client(&load, &ready);
                if result.is_err() {
                    load.stop.store(true, Ordering::SeqCst);
                }
                result
            })
        })
        .collect();
    let start = *load.start.get_or_init(Instant::now);
    let watcher = {
        let load = load.clone();
        std::thread::spawn(move || monitor(&load))
    };
    ready.wait();
    let deadline = start + timeout;
    let mut timed_out = false;
    while !clients.iter().all(|c| c.is_finished()) {
        if !timed_out && Instant::now() > deadline {
            timed_out = true;
            load.stop.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut last_ids = Vec::new();
    for c in clients {
        let last = c
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
            .with_context(|| format!("gordon said:\n{}", said()))?;
        last_ids.extend(last);
    }
    let accepted = load.accepted.load(Ordering::SeqCst);
    if timed_out {
        load.stop.store(true, Ordering::SeqCst);
    }
    let published_marks = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("the monitor thread panicked"))?
        .with_context(|| format!("gordon said:\n{}", said()))?;
    wait_published(port, &last_ids, Duration::from_secs(120))
        .with_context(|| format!("gordon said:\n{}", said()))?;
    let last_published = start.elapsed().as_secs_f64();
    let peak_rss_kb = peak_rss_kb(host.0.id())?;
    let exit = host.stop(Duration::from_secs(60))?;
    let wall_s = wall.elapsed().as_secs_f64();
    let zone = std::fs::read_to_string(&zone_path)
        .with_context(|| format!("read {}", zone_path.display()))?;
    let in_zone = bench_records(&zone) as u64;

    let accepted_marks = load.marks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let at_in = |marks: &[Option<f64>], n: u64| -> Option<f64> {
        if n == 0 {
            Some(0.0)
        } else {
            marks.get((n / STEP) as usize).copied().flatten()
        }
    };
    let rate_in = |marks: &[Option<f64>], from: u64, to: u64| -> Option<f64> {
        let (a, b) = (at_in(marks, from)?, at_in(marks, to)?);
        (b > a).then(|| ((to - from) as f64 / (b - a)).round())
    };
    let at = |n: u64| at_in(&accepted_marks, n);
    let rate = |from: u64, to: u64| rate_in(&published_marks, from, to);
    let accepted_rate = |from: u64, to: u64| rate_in(&accepted_marks, from, to);
    let reached = accepted / STEP * STEP;
    let first = rate(0, 20_000);
    let late = rate(150_000, 200_000);
    let ratio = first.zip(late).map(|(f, l)| round(l / f, 2));
    let sustained = (reached >= 2 * SUSTAINED_WINDOW).then(|| {
        let from = reached - SUSTAINED_WINDOW;
        json!({"from": from, "to": reached, "per_s": rate(from, reached),
               "target_per_s": SUSTAINED_TARGET})
    });
    let accepted_ratio = accepted_rate(0, 20_000)
        .zip(accepted_rate(150_000, 200_000))
        .map(|(f, l)| round(l / f, 2));
    let seconds: Vec<f64> = published_marks[1..]
        .iter()
        .map_while(|m| m.map(|t| round(t, 3)))
        .collect();
    println!(
        "{}",
        json!({
            "bench": "zonefile_rate",
            "pipeline": "http.events -> dns.enricher -> dns.zonefile",
            "records": records,
            "completed": !timed_out && accepted == records,
            "accepted": accepted,
            "clients": CLIENTS,
            "events_per_post": BATCH,
            "first_20k_per_s": first,
            "from_150k_to_200k_per_s": late,
            "ratio": ratio,
            "ratio_target": RATIO_TARGET,
            "by_accepted": {"first_20k_per_s": accepted_rate(0, 20_000),
                            "from_150k_to_200k_per_s": accepted_rate(150_000, 200_000),
                            "ratio": accepted_ratio},
            "sustained_last_200k": sustained,
            "accepted_s": at(reached).map(|t| round(t, 3)),
            "last_published_s": round(last_published, 3),
            "overall_per_s": (accepted as f64 / last_published).round(),
            "retries_503": load.retries.load(Ordering::Relaxed),
            "peak_rss_mb": round(peak_rss_kb as f64 / 1024.0, 1),
            "zone_file_bytes": zone.len(),
            "records_in_zone": in_zone,
            "exit_code": exit.code(),
            "wall_s_including_startup_and_stop": round(wall_s, 2),
            "seconds_at_each_10k_published": seconds,
        })
    );
    if in_zone != accepted {
        bail!(
            "the zone file holds {in_zone} of the {accepted} accepted records; gordon said:\n{}",
            said()
        );
    }
    if !exit.success() {
        bail!("gordon exited with {exit}; it said:\n{}", said());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bench_records_are_counted() {
        let zone = "$ORIGIN example.com.\n@ 300 IN SOA a b 1 2 3 4 5\nh1 300 IN A 10.0.0.1\n\
                    _gordon-a-h1 300 IN TXT \"x\"\nh22 300 IN A 10.0.0.22\nhost 300 IN A 10.0.0.3\n\
                    h 300 IN A 10.0.0.4\n";
        assert_eq!(bench_records(zone), 2);
    }

    #[test]
    fn bodies_hold_unique_names_in_one_array() {
        let doc: serde_json::Value = serde_json::from_slice(&body(70_000, 3)).unwrap();
        let names: Vec<&str> = doc
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resourceRecords"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["h70000", "h70001", "h70002"]);
        assert_eq!(doc[2]["resourceRecords"]["rrdatas"][0], "10.1.17.114");
    }

    #[test]
    fn options() {
        let parse = |a: &[&str]| Options::parse(a.iter().map(|s| s.to_string()));
        assert_eq!(parse(&[]).unwrap().records, 200_000);
        assert_eq!(
            parse(&["--records", "1_000_000"]).unwrap().records,
            1_000_000
        );
        assert!(parse(&["--records", "1234"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
