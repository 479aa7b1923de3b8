//! `nats-bind`: the real path end to end, NATS JetStream -> `nats.events` ->
//! `dns.enricher` -> `dns.rfc2136` -> BIND 9, against what BIND itself ingests from
//! one batched `nsupdate`, on the same server in the same run.
//!
//! - **Drain.** A backlog of [`EVENTS`] additions (one A record each) waits in a
//!   work-queue stream; gordon starts and consumes it. An event leaves the stream only
//!   when it is acknowledged, which `nats.events` does only after BIND accepted its
//!   record, so "stream empty" means "every record served". Timed from gordon's
//!   spawn (and, apart, from the consumer's first delivery) to the empty stream.
//! - **Baseline.** One `nsupdate` process (key by `-k`, TSIG hmac-sha256) sends the
//!   same number of additions as UPDATEs of [`UPDATE`] records (`send` every 500),
//!   timed from spawn to exit.
//! - **Like for like.** `dns.rfc2136` writes an owner TXT record next to every
//!   record set and requires (prerequisites) that neither exists yet, so gordon
//!   writes two records and two prerequisites per change where the baseline writes
//!   one record; a "change" is one event's record set. A second `nsupdate` run
//!   sends exactly that (UPDATEs of 500 update records, 250 changes), to show
//!   what the server itself costs for it.
//! - Each side gets a fresh zone on the same `named`; the rounds alternate which
//!   side goes first. For each side the output has `named`'s CPU time and its
//!   busiest thread's share of the wall time: BIND applies a zone's UPDATEs one at
//!   a time on one thread, so a share near 1 means the server is the bound.
//! - **Latency.** [`RATE`] events/s offered to NATS for [`LATENCY_SECONDS`] s; each
//!   event's time from publish to "BIND answers a query for it", read back with UDP
//!   queries (not AXFR, which would load the server): every millisecond the oldest
//!   and the newest unanswered events are asked for, and when either is served all
//!   unanswered ones are asked for at once. A time is taken when its answer arrives,
//!   so it is at most ~1 ms late, never early.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use gordon_test_servers::bind::{Bind, Key};
use gordon_test_servers::nats::Nats;
use gordon_test_servers::nats_client::NatsConn;
use serde_json::{json, Value};

use crate::process::{config_root, cpu_ticks, gordon, task_ticks};

/// Additions per side and round.
const EVENTS: usize = 50_000;
/// Records per `nsupdate` UPDATE.
const UPDATE: usize = 500;
/// Rounds, alternating which side goes first.
const ROUNDS: usize = 2;
/// Events per second offered in the latency run.
const RATE: u64 = 2_000;
/// How long the latency run offers events.
const LATENCY_SECONDS: u64 = 10;
/// Longest a drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

fn address(i: usize) -> String {
    format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)
}

fn event(name: &str, i: usize) -> String {
    format!(
        r#"{{"action":"additions","resourceRecords":{{"name":"{name}","type":"A","rrdatas":["{}"]}}}}"#,
        address(i)
    )
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs the drain rounds and the latency run; prints one JSON object each.
pub fn run() -> anyhow::Result<()> {
    let key = Key::random("gordon-key", "hmac-sha256");
    let mut zones: Vec<String> = (1..=ROUNDS)
        .flat_map(|r| {
            [
                format!("gordon{r}.test."),
                format!("nsupdate{r}.test."),
                format!("owned{r}.test."),
            ]
        })
        .collect();
    zones.push("latency.test.".into());
    let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let Some(bind) = Bind::start_zones(&zone_refs, &[], std::slice::from_ref(&key)) else {
        println!(
            "{}",
            json!({"bench": "nats_bind", "skipped": "named or dig not installed"})
        );
        return Ok(());
    };
    let Some(nats) = Nats::start() else {
        println!(
            "{}",
            json!({"bench": "nats_bind", "skipped": "nats-server not installed"})
        );
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let key_file = work.path().join("tsig.key");
    std::fs::write(&key_file, key.bind_stanza())?;
    for round in 1..=ROUNDS {
        let gzone = format!("gordon{round}.test.");
        let stream = format!("DRAIN{round}");
        let subject = format!("drain{round}.events");
        // Publish the backlog first, so that no side shares the machine with it.
        backlog(&nats, &stream, &subject)?;
        let sides = [Shape::Plain, Shape::Owned];
        let mut baselines = Vec::new();
        let drained;
        if round % 2 == 1 {
            for shape in sides {
                baselines.push(nsupdate_batched(
                    &bind,
                    &key_file,
                    work.path(),
                    round,
                    shape,
                )?);
            }
            drained = drain(&bind, &nats, &key_file, &gzone, &stream, &subject)?;
        } else {
            drained = drain(&bind, &nats, &key_file, &gzone, &stream, &subject)?;
            for shape in sides.into_iter().rev() {
                baselines.push(nsupdate_batched(
                    &bind,
                    &key_file,
                    work.path(),
                    round,
                    shape,
                )?);
            }
            baselines.reverse();
        }
        let (plain, owned) = (&baselines[0], &baselines[1]);
        let ratio = |a: f64, b: f64| (a / b * 100.0).round() / 100.0;
        println!(
            "{}",
            json!({
                "bench": "nats_bind_drain",
                "round": round,
                "order": if round % 2 == 1 { "nsupdate, nsupdate_like_for_like, gordon" } else { "gordon, nsupdate_like_for_like, nsupdate" },
                "changes": EVENTS,
                "gordon": {
                    "path": "NATS JetStream backlog -> nats.events -> dns.enricher -> dns.rfc2136 -> BIND",
                    "zone": gzone,
                    "records_written": drained.records,
                    "records_per_change": "2 (the A record and its owner TXT record), 2 prerequisites",
                    "seconds_including_startup": round3(drained.seconds),
                    "seconds_from_first_delivery": round3(drained.seconds_from_delivery),
                    "changes_per_s": drained.rate.round(),
                    "changes_per_s_from_first_delivery": drained.rate_from_delivery.round(),
                    "updates_sent": drained.updates,
                    "changes_per_update": (EVENTS as f64 / drained.updates.max(1) as f64).round(),
                    "update_answer_seconds_total": round3(drained.update_seconds),
                    "named_cpu_s": round3(drained.named_cpu),
                    "named_busiest_thread_share_of_wall": round3(drained.named_busiest / drained.seconds),
                    "gordon_cpu_s": round3(drained.gordon_cpu),
                },
                "nsupdate": side_json(plain),
                "nsupdate_like_for_like": side_json(owned),
                "ratio": ratio(drained.rate, plain.rate),
                "ratio_from_first_delivery": ratio(drained.rate_from_delivery, plain.rate),
                "ratio_like_for_like": ratio(drained.rate, owned.rate),
            })
        );
    }
    latency(&bind, &nats, &key_file, "latency.test.")?;
    Ok(())
}

fn side_json(side: &Side) -> Value {
    json!({
        "what": side.what,
        "zone": side.zone,
        "records_per_update": side.records_per_update,
        "records_written": side.records,
        "seconds": round3(side.seconds),
        "changes_per_s": side.rate.round(),
        "named_cpu_s": round3(side.named_cpu),
        "named_busiest_thread_share_of_wall": round3(side.named_busiest / side.seconds),
    })
}

/// Creates `stream` on `subject` and fills it with [`EVENTS`] additions.
fn backlog(nats: &Nats, stream: &str, subject: &str) -> anyhow::Result<()> {
    let mut conn = NatsConn::connect(nats.port());
    conn.create_stream(stream, subject);
    for i in 0..EVENTS {
        conn.publish(subject, event(&format!("host{i}"), i).as_bytes());
    }
    conn.flush();
    let deadline = Instant::now() + Duration::from_secs(60);
    while conn.stream_messages(stream) < EVENTS as u64 {
        if Instant::now() > deadline {
            bail!("JetStream did not store the backlog of {stream}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// What one side did.
struct Side {
    what: &'static str,
    zone: String,
    records_per_update: usize,
    seconds: f64,
    rate: f64,
    seconds_from_delivery: f64,
    rate_from_delivery: f64,
    records: usize,
    updates: u64,
    /// Time spent waiting for UPDATE answers (summed over concurrent UPDATEs).
    update_seconds: f64,
    /// CPU seconds `named` used meanwhile, all threads.
    named_cpu: f64,
    /// CPU seconds of its busiest thread (the one applying the zone's UPDATEs).
    named_busiest: f64,
    /// CPU seconds `gordon` used (0 for `nsupdate`).
    gordon_cpu: f64,
}

/// CPU seconds each thread of `named` has used so far (its pid from the pid file
/// it writes). BIND applies a zone's UPDATEs one at a time on one thread, so the
/// busiest thread's share of the wall time says how close the server is to its
/// own bound.
fn named_threads(bind: &Bind) -> anyhow::Result<BTreeMap<u32, f64>> {
    let pid: u32 = std::fs::read_to_string(bind.dir().join("named.pid"))?
        .trim()
        .parse()?;
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid: u32 = entry?.file_name().to_string_lossy().parse()?;
        // A thread may end between the listing and the read.
        if let Ok(ticks) = task_ticks(pid, tid) {
            threads.insert(tid, ticks_to_s(ticks));
        }
    }
    Ok(threads)
}

/// What `named` used between two [`named_threads`] readings: all threads, and the
/// busiest one.
fn named_used(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> (f64, f64) {
    let used = after
        .iter()
        .map(|(tid, s)| s - before.get(tid).copied().unwrap_or(0.0));
    used.fold((0.0, 0.0), |(all, most), s| (all + s, f64::max(most, s)))
}

fn ticks_to_s(ticks: u64) -> f64 {
    // SAFETY: `sysconf` has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// Records in `zone` besides the SOA, NS and glue, by AXFR.
fn records_in(bind: &Bind, zone: &str) -> usize {
    bind.axfr_zone(zone).len().saturating_sub(3)
}

/// What a baseline `nsupdate` writes per change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// The A record alone, [`UPDATE`] records to an UPDATE: the issue's baseline.
    Plain,
    /// What `dns.rfc2136` writes for a new record set: the A record and its owner
    /// TXT record, with the two prerequisites (neither exists yet); [`UPDATE`]
    /// update records (half as many changes) to an UPDATE.
    Owned,
}

/// One `nsupdate` process adding [`EVENTS`] changes of `shape` to a fresh zone
/// (`nsupdate<round>.test.` or `owned<round>.test.`), `send` every [`UPDATE`]
/// update records.
fn nsupdate_batched(
    bind: &Bind,
    key_file: &Path,
    dir: &Path,
    round: usize,
    shape: Shape,
) -> anyhow::Result<Side> {
    let (zone, per_change) = match shape {
        Shape::Plain => (format!("nsupdate{round}.test."), 1),
        Shape::Owned => (format!("owned{round}.test."), 2),
    };
    let changes_per_update = UPDATE / per_change;
    let mut script = format!("server 127.0.0.1 {}\nzone {zone}\n", bind.port());
    for i in 0..EVENTS {
        let (name, a) = (format!("host{i}.{zone}"), address(i));
        if shape == Shape::Owned {
            let owner = format!("_gordon-a-{name}");
            script.push_str(&format!(
                "prereq nxrrset {name} A\nprereq nxrrset {owner} TXT\n\
                 update add {owner} 300 TXT \"heritage=gordon,owner=gordon\"\n"
            ));
        }
        script.push_str(&format!("update add {name} 300 A {a}\n"));
        if (i + 1) % changes_per_update == 0 || i + 1 == EVENTS {
            script.push_str("send\n");
        }
    }
    let path = dir.join(format!("{zone}nsupdate"));
    std::fs::write(&path, script)?;
    let named_before = named_threads(bind)?;
    let started = Instant::now();
    let out = Command::new("nsupdate")
        .arg("-k")
        .arg(key_file)
        .arg(&path)
        .output()
        .context("cannot run nsupdate (Debian package bind9-dnsutils)")?;
    let seconds = started.elapsed().as_secs_f64();
    let (named_cpu, named_busiest) = named_used(&named_before, &named_threads(bind)?);
    if !out.status.success() {
        bail!(
            "nsupdate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let records = records_in(bind, &zone);
    if records != per_change * EVENTS {
        bail!(
            "nsupdate left {records} records in {zone}, expected {}",
            per_change * EVENTS
        );
    }
    Ok(Side {
        what: match shape {
            Shape::Plain => "one nsupdate, A records only (the issue's baseline)",
            Shape::Owned => "one nsupdate writing what dns.rfc2136 writes: A + owner TXT, 2 prerequisites per change",
        },
        zone,
        records_per_update: UPDATE,
        seconds,
        rate: EVENTS as f64 / seconds,
        seconds_from_delivery: seconds,
        rate_from_delivery: EVENTS as f64 / seconds,
        records,
        updates: EVENTS.div_ceil(changes_per_update) as u64,
        update_seconds: seconds,
        named_cpu,
        named_busiest,
        gordon_cpu: 0.0,
    })
}

/// A config root running nats.events -> dns.enricher -> dns.rfc2136 into `zone`.
fn gordon_root(
    bind: &Bind,
    nats: &Nats,
    key_file: &Path,
    zone: &str,
    stream: &str,
    subject: &str,
    metrics_port: u16,
) -> anyhow::Result<tempfile::TempDir> {
    let art = crate::artifacts()?;
    let config = format!(
        r#"[core]
plugins = ["nats.events", "dns.enricher", "dns.rfc2136"]
metrics = "prometheus"
[core.logging]
level = "warn"
["nats.events"]
servers = ["nats://127.0.0.1:{port}"]
stream = "{stream}"
subject = "{subject}"
durable = "gordon"
create = true
max_msg_age = 0
["dns"]
zone = "{zone}"
["dns.rfc2136"]
server = "{server}"
tsig_key_file = "{key}"
[prometheus]
listen = "127.0.0.1:{metrics}"
"#,
        metrics = metrics_port,
        port = nats.port(),
        server = bind.addr(),
        key = key_file.display(),
    );
    config_root(
        &[
            ("libnats.so".into(), art.join("libgordon_plugin_nats.so")),
            ("libdns.so".into(), art.join("libgordon_plugin_dns.so")),
            (
                "librfc2136.so".into(),
                art.join("libgordon_plugin_rfc2136.so"),
            ),
        ],
        &config,
    )
}

/// A running `gordon`, stopped (SIGTERM, then waited for) when dropped.
struct Gordon {
    child: Child,
    log: PathBuf,
}

impl Gordon {
    fn spawn(root: &Path) -> anyhow::Result<Gordon> {
        let log = root.join("stderr.log");
        let child = Command::new(gordon()?)
            .arg("-c")
            .arg(root)
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(Gordon { child, log })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("gordon exited ({status}):\n{}", self.log());
        }
        Ok(())
    }

    /// Stops gordon; its stderr, for the updates it counted.
    fn stop(mut self) -> String {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Gordon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of the samples of `metric` (any labels) on gordon's Prometheus listener.
fn scrape(port: u16, metric: &str) -> Option<f64> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let values = text.lines().filter_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        let bare = name.split('{').next()?;
        (bare == metric)
            .then(|| value.parse::<f64>().ok())
            .flatten()
    });
    Some(values.sum())
}

/// Whether the durable consumer `gordon` on `stream` has delivered anything.
fn delivered(conn: &mut NatsConn, stream: &str) -> bool {
    let info: Value = conn.request(&format!("$JS.API.CONSUMER.INFO.{stream}.gordon"), b"");
    info["delivered"]["stream_seq"].as_u64().unwrap_or(0) > 0
}

/// gordon drains the backlog of `stream` into `zone`.
fn drain(
    bind: &Bind,
    nats: &Nats,
    key_file: &Path,
    zone: &str,
    stream: &str,
    subject: &str,
) -> anyhow::Result<Side> {
    let metrics_port = gordon_test_servers::free_port();
    let root = gordon_root(bind, nats, key_file, zone, stream, subject, metrics_port)?;
    let mut conn = NatsConn::connect(nats.port());
    let named_before = named_threads(bind)?;
    let started = Instant::now();
    let mut g = Gordon::spawn(root.path())?;
    let mut first_delivery = None;
    let deadline = started + DRAIN_TIMEOUT;
    loop {
        if first_delivery.is_none() && delivered(&mut conn, stream) {
            first_delivery = Some(Instant::now());
        }
        if first_delivery.is_some() && conn.stream_messages(stream) == 0 {
            break;
        }
        g.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "the backlog was not drained within {DRAIN_TIMEOUT:?}:\n{}",
                g.log()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (named_cpu, named_busiest) = named_used(&named_before, &named_threads(bind)?);
    let gordon_seconds = ticks_to_s(cpu_ticks(g.child.id())?);
    let from_delivery = first_delivery.map_or(seconds, |t| t.elapsed().as_secs_f64());
    let updates = scrape(metrics_port, "gordon_plugin_rfc2136_updates_total").unwrap_or(0.0) as u64;
    let update_seconds =
        scrape(metrics_port, "gordon_plugin_rfc2136_update_seconds_sum").unwrap_or(0.0);
    let log = g.stop();
    let records = records_in(bind, zone);
    if records != 2 * EVENTS {
        bail!(
            "gordon left {records} records in {zone}, expected {}:\n{log}",
            2 * EVENTS
        );
    }
    Ok(Side {
        what: "gordon",
        zone: zone.to_owned(),
        records_per_update: 0,
        seconds,
        rate: EVENTS as f64 / seconds,
        seconds_from_delivery: from_delivery,
        rate_from_delivery: EVENTS as f64 / from_delivery,
        records,
        updates,
        update_seconds,
        named_cpu,
        named_busiest,
        gordon_cpu: gordon_seconds,
    })
}

/// A DNS query for `name` A, class IN, no recursion, with `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// UDP queries to BIND for the latency run's names.
struct Asker {
    sock: UdpSocket,
    zone: String,
    next_id: u16,
    sent: u64,
}

impl Asker {
    fn new(port: u16, zone: &str) -> anyhow::Result<Asker> {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        sock.connect((Ipv4Addr::LOCALHOST, port))?;
        Ok(Asker {
            sock,
            zone: zone.to_owned(),
            next_id: 0,
            sent: 0,
        })
    }

    /// Asks for `lat<i>.<zone>` A for each `i`, all at once; calls `served(i, when)`
    /// for each one answered with a record. Waits at most 100 ms for the answers.
    fn ask(
        &mut self,
        events: &[usize],
        mut served: impl FnMut(usize, Instant),
    ) -> anyhow::Result<()> {
        let mut waiting: BTreeMap<u16, usize> = BTreeMap::new();
        for &i in events {
            self.next_id = self.next_id.wrapping_add(1);
            let q = query(self.next_id, &format!("lat{i}.{}", self.zone));
            self.sock.send(&q)?;
            self.sent += 1;
            waiting.insert(self.next_id, i);
        }
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut buf = [0u8; 1500];
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.sock.set_read_timeout(Some(left))?;
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e.into()),
            };
            let now = Instant::now();
            if n < 12 {
                continue;
            }
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            let Some(i) = waiting.remove(&id) else {
                continue; // a late answer to an earlier round
            };
            // NOERROR with at least one answer: the names are the run's own.
            let rcode = buf[3] & 0x0f;
            let answers = u16::from_be_bytes([buf[6], buf[7]]);
            if rcode == 0 && answers > 0 {
                served(i, now);
            }
        }
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Steady [`RATE`] events/s into NATS; publish -> served by BIND, per event.
fn latency(bind: &Bind, nats: &Nats, key_file: &Path, zone: &str) -> anyhow::Result<()> {
    let (stream, subject) = ("LATENCY", "latency.events");
    let mut conn = NatsConn::connect(nats.port());
    conn.create_stream(stream, subject);
    let metrics_port = gordon_test_servers::free_port();
    let root = gordon_root(bind, nats, key_file, zone, stream, subject, metrics_port)?;
    let mut g = Gordon::spawn(root.path())?;
    let mut asker = Asker::new(bind.port(), zone)?;
    // Ready when a first event has made it all the way.
    let total = (RATE * LATENCY_SECONDS) as usize;
    let warm = total; // its index: after the measured ones
    conn.publish(subject, event(&format!("lat{warm}"), warm).as_bytes());
    conn.flush();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut ready = false;
        asker.ask(&[warm], |_, _| ready = true)?;
        if ready {
            break;
        }
        g.check_running()?;
        if Instant::now() > deadline {
            bail!("the first event was not served within 30 s:\n{}", g.log());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_queries = asker.sent;

    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let port = nats.port();
    let publisher = std::thread::spawn(move || {
        let mut conn = NatsConn::connect(port);
        let interval = Duration::from_nanos(1_000_000_000 / RATE);
        let start = Instant::now();
        for i in 0..total {
            let at = start + interval * i as u32;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait); // pacing, not readiness
            }
            let body = event(&format!("lat{i}"), i);
            let now = Instant::now();
            conn.publish(subject, body.as_bytes());
            if tx.send((i, now)).is_err() {
                return;
            }
        }
        conn.flush();
    });

    let mut outstanding: BTreeMap<usize, Instant> = BTreeMap::new();
    let mut latencies_ms: Vec<f64> = Vec::with_capacity(total);
    let mut published = 0;
    let tick = Duration::from_millis(1);
    let mut last_publish = Instant::now();
    while latencies_ms.len() < total {
        let round = Instant::now();
        while let Ok((i, at)) = rx.try_recv() {
            outstanding.insert(i, at);
            published += 1;
            last_publish = at;
        }
        if published == total && last_publish.elapsed() > Duration::from_secs(30) {
            break;
        }
        let ends: Vec<usize> = match (outstanding.keys().next(), outstanding.keys().next_back()) {
            (Some(&a), Some(&b)) if a != b => vec![a, b],
            (Some(&a), _) => vec![a],
            _ => Vec::new(),
        };
        let mut any = false;
        asker.ask(&ends, |_, _| any = true)?;
        if any {
            let all: Vec<usize> = outstanding.keys().copied().collect();
            let mut done = Vec::new();
            asker.ask(&all, |i, when| done.push((i, when)))?;
            for (i, when) in done {
                if let Some(at) = outstanding.remove(&i) {
                    latencies_ms.push(when.duration_since(at).as_secs_f64() * 1000.0);
                }
            }
        }
        if let Some(wait) = (round + tick).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait); // pacing of the probes
        }
    }
    let _ = publisher.join();
    let queries = asker.sent - before_queries;
    g.check_running()?;
    let updates = scrape(metrics_port, "gordon_plugin_rfc2136_updates_total").unwrap_or(0.0);
    let update_seconds =
        scrape(metrics_port, "gordon_plugin_rfc2136_update_seconds_sum").unwrap_or(0.0);
    g.stop();
    latencies_ms.sort_by(f64::total_cmp);
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({
            "bench": "nats_bind_latency",
            "path": "publish to NATS -> nats.events -> dns.enricher -> dns.rfc2136 -> BIND -> UDP query answers",
            "offered_per_s": RATE,
            "events": total,
            "served": latencies_ms.len(),
            "never_served": total - latencies_ms.len(),
            "p50_ms": r2(percentile(&latencies_ms, 50.0)),
            "p90_ms": r2(percentile(&latencies_ms, 90.0)),
            "p99_ms": r2(percentile(&latencies_ms, 99.0)),
            "max_ms": r2(latencies_ms.last().copied().unwrap_or(f64::NAN)),
            "read_back_queries": queries,
            "updates_sent": updates,
            "changes_per_update": r2(total as f64 / updates.max(1.0)),
            "mean_update_answer_ms": r2(update_seconds / updates.max(1.0) * 1000.0),
        })
    );
    if latencies_ms.len() < total {
        bail!("{} events were never served", total - latencies_ms.len());
    }
    let _ = std::io::stdout().flush();
    Ok(())
}
