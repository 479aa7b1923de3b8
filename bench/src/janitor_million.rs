//! `gordon-bench janitor-million`: a `gordon janitor --once` run against a zone of
//! 1,000,000 owned A record sets on BIND, with 1 % drift in the inventory, publishing
//! its corrections to NATS JetStream. Target: ≤ 15 s end to end, peak RSS ≤ 1 GB.
//!
//! Setup (not timed): a zone file with SOA, NS, glue and `h0` .. `h999999` A, each
//! with its owner record `_gordon-a-h<N> TXT "heritage=gordon,owner=gordon"`, loaded
//! read-only by BIND (AXFR with a TSIG key); a JetStream stream on `dns.events`; a
//! CSV inventory of 1,000,000 hosts that differs from the zone by
//! [`DELETIONS`] hosts it no longer lists (`h0` .. `h2499`, `policy = "sync"`),
//! [`UPDATES`] hosts with another address and [`CREATIONS`] new hosts: 10,000
//! corrections, 0.75 % of the owned record sets changed (below the 30 % threshold).
//!
//! Timed: process start to exit of the release `gordon janitor --once`; its peak
//! RSS is the child's `ru_maxrss` from `wait4`. The split comes from the janitor's
//! log lines, read from its stderr as they are written: when each arrived (`at_s`,
//! from process start) and what its plugin says the step took (`took_s`): the
//! authority's `Inventory read.`, the reconciler's `Zone transferred.` and `Zone
//! compared.`, the publisher's `Published the changes` and the host's `Janitor run
//! ended.`. Each run must add exactly 10,000 messages to the stream.
//!
//! `--rounds N` runs the janitor N times on the same setup (and prints the median);
//! `GORDON_BENCH_PERF=FILE` profiles each run with `perf record -g -p PID`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use gordon_test_servers::bind::{Bind, Key};
use gordon_test_servers::nats::Nats;
use gordon_test_servers::nats_client::NatsConn;
use serde_json::json;

use crate::process::{config_root, cpu_ticks, gordon};

const ZONE: &str = "example.test.";
/// A record sets in the zone (each with its owner record).
const RECORDS: u32 = 1_000_000;
/// Zone hosts the inventory no longer lists: `h0` .. .
const DELETIONS: u32 = 2_500;
/// Hosts listed with another address: the ones right after the deleted ones.
const UPDATES: u32 = 5_000;
/// Hosts only the inventory lists: `h1000000` .. .
const CREATIONS: u32 = 2_500;
const CHANGES: u64 = (DELETIONS + UPDATES + CREATIONS) as u64;

/// The address of host `n` in the zone (`10.x.y.z`), or, changed, in the
/// inventory (`11.x.y.z`).
fn address(n: u32, first: u8) -> String {
    format!("{first}.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255)
}

/// The zone file: SOA, apex NS, glue, then every host and its owner record.
fn write_zone(path: &Path) -> anyhow::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    write!(
        w,
        "$ORIGIN {ZONE}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 300\n\
         @ IN NS ns1\nns1 IN A 127.0.0.1\n"
    )?;
    let mut line = String::with_capacity(128);
    for n in 0..RECORDS {
        line.clear();
        writeln!(line, "h{n} 300 IN A {}", address(n, 10))?;
        writeln!(
            line,
            "_gordon-a-h{n} 300 IN TXT \"heritage=gordon,owner=gordon\""
        )?;
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    Ok(())
}

/// The CSV inventory: the zone's hosts less the deleted ones, some with another
/// address, plus the new ones.
fn write_inventory(path: &Path) -> anyhow::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(b"name,addresses\n")?;
    let mut line = String::with_capacity(64);
    for n in DELETIONS..RECORDS + CREATIONS {
        let first = if n < DELETIONS + UPDATES { 11 } else { 10 };
        line.clear();
        writeln!(line, "h{n},{}", address(n, first))?;
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    Ok(())
}

/// `inventory.authority` is not in the shared release build list: build it here.
fn build_inventory() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "gordon-plugin-inventory",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("release build of gordon-plugin-inventory failed");
    }
    Ok(crate::artifacts()?.join("libgordon_plugin_inventory.so"))
}

/// Resource usage of our child `pid` once it exits, and its exit status.
fn wait_rusage(pid: u32) -> anyhow::Result<(libc::rusage, i32)> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both out-pointers are valid for writes.
    let rc = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    Ok((usage, status))
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The log lines the split is read from, by the text that identifies them.
const MARKS: [(&str, &str); 5] = [
    ("authority_read", "Inventory read."),
    ("axfr", "Zone transferred."),
    ("compared", "Zone compared."),
    ("published", "Published the changes"),
    ("run_ended", "Janitor run ended."),
];

pub fn run() -> anyhow::Result<()> {
    let skipped = |why: &str| println!("{}", json!({"bench": "janitor_million", "skipped": why}));
    let inventory_lib = build_inventory()?;
    let art = crate::artifacts()?;
    let work = tempfile::tempdir()?;
    let setup = Instant::now();
    let zone_file = work.path().join("zone");
    write_zone(&zone_file)?;
    let key = Key::random("gordon-key", "hmac-sha256");
    // BIND takes 15 s or more to read two million records.
    let Some(bind) = Bind::load_within(
        ZONE,
        &zone_file,
        std::slice::from_ref(&key),
        Duration::from_secs(300),
    ) else {
        skipped("named not installed");
        return Ok(());
    };
    let bind = bind.map_err(|log| anyhow::anyhow!("named refused the zone:\n{log}"))?;
    let bind_loaded_s = setup.elapsed();
    let Some(nats) = Nats::start() else {
        skipped("nats-server not installed");
        return Ok(());
    };
    let mut conn = NatsConn::connect(nats.port());
    conn.create_stream("EVENTS", "dns.events");

    let root = config_root(
        &[
            ("libinventory.so".into(), inventory_lib),
            (
                "librfc2136.so".into(),
                art.join("libgordon_plugin_rfc2136.so"),
            ),
            ("libnats.so".into(), art.join("libgordon_plugin_nats.so")),
        ],
        "[core]\nplugins = []\n",
    )?;
    let inventory = root.path().join("hosts.csv");
    write_inventory(&inventory)?;
    let key_file = root.path().join("tsig.key");
    std::fs::write(&key_file, key.bind_stanza())?;
    std::fs::write(
        root.path().join("gordon-janitor.toml"),
        format!(
            r#"[core]
plugins = ["inventory.authority", "dns.reconciler", "nats.publisher"]
run_timeout = 300
[core.logging]
level = "info"
["inventory.authority"]
zones = ["{ZONE}"]
files = ["{inv}"]
["dns"]
zone = "{ZONE}"
["dns.reconciler"]
server = "{server}"
tsig_key_file = "{key}"
policy = "sync"
["nats"]
servers = ["nats://127.0.0.1:{nats}"]
["nats.publisher"]
subject = "dns.events"
"#,
            inv = inventory.display(),
            server = bind.addr(),
            key = key_file.display(),
            nats = nats.port(),
        ),
    )?;
    let setup_s = setup.elapsed();
    println!(
        "{}",
        json!({"bench": "janitor_million_setup", "bind_loaded_s": secs(bind_loaded_s), "total_s": secs(setup_s)})
    );
    let rounds = rounds()?;
    // BIND's own CPU during a run: what the transfer costs the server.
    let named_pid = std::fs::read_to_string(bind.dir().join("named.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    let (mut walls, mut peak, mut met) = (Vec::new(), 0f64, true);
    for round in 1..=rounds {
        let result = janitor_once(root.path(), &mut conn, named_pid, round)?;
        walls.push(result["end_to_end_s"].as_f64().unwrap_or(f64::MAX));
        peak = peak.max(result["peak_rss_mb"].as_f64().unwrap_or(f64::MAX));
        met &= result["met"].as_bool().unwrap_or(false);
        println!("{result}");
    }
    if rounds > 1 {
        walls.sort_by(f64::total_cmp);
        println!(
            "{}",
            json!({
                "bench": "janitor_million_summary",
                "rounds": rounds,
                "end_to_end_s_median": walls[walls.len() / 2],
                "end_to_end_s_all": walls,
                "peak_rss_mb_max": peak,
                "met_every_round": met,
            })
        );
    }
    drop(bind);
    Ok(())
}

/// `--rounds N` after the subcommand (default 1): janitor runs on the same setup.
fn rounds() -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--rounds") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .context("--rounds takes a positive number"),
        None => Ok(1),
    }
}

/// One timed `gordon janitor --once` run on `root`; its figures as one JSON object.
fn janitor_once(
    root: &Path,
    conn: &mut NatsConn,
    named_pid: Option<u32>,
    round: usize,
) -> anyhow::Result<serde_json::Value> {
    let before = conn.stream_messages("EVENTS");
    let named_ticks = || named_pid.and_then(|pid| cpu_ticks(pid).ok());
    let named_before = named_ticks();
    let started = Instant::now();
    let mut child = Command::new(gordon()?)
        .arg("-c")
        .arg(root)
        .args(["janitor", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    // `GORDON_BENCH_PERF=FILE`: profile the run with `perf record -g -p PID` (it
    // ends when the janitor exits; the figures stay the janitor's own).
    let perf = match std::env::var_os("GORDON_BENCH_PERF") {
        Some(out) => Some(
            Command::new("perf")
                .args(["record", "-F", "499", "-g", "-o"])
                .arg(out)
                .args(["-p", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot run perf")?,
        ),
        None => None,
    };
    // Every stderr line with the time it arrived, read as the janitor writes it.
    let lines: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let reader = {
        let stderr = child.stderr.take().context("no stderr")?;
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let at = started.elapsed();
                lines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((at, line));
            }
        })
    };
    let (usage, status) = wait_rusage(pid)?;
    let elapsed = started.elapsed();
    // The child is reaped: `Child` must not wait for it again.
    drop(child);
    let _ = reader.join();
    if let Some(mut perf) = perf {
        let _ = perf.wait();
    }
    let lines = std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner()));
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !exited_ok {
        let log: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        bail!(
            "gordon janitor failed (wait status {status}):\n{}",
            log.join("\n")
        );
    }
    let in_stream = conn.stream_messages("EVENTS") - before;
    // SAFETY: `sysconf` has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let named_cpu_s = named_before
        .zip(named_ticks())
        .map(|(a, b)| (b - a) as f64 / hz);

    // When each mark arrived (from process start), and the time its plugin says
    // the step took (`elapsed_ms=`).
    let mut at_s = serde_json::Map::new();
    let mut took_s = serde_json::Map::new();
    for (label, text) in MARKS {
        if let Some((at, line)) = lines.iter().find(|(_, l)| l.contains(text)) {
            at_s.insert(label.into(), json!(secs(*at)));
            let ms = line
                .split_once("elapsed_ms=")
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|ms| ms.parse::<f64>().ok());
            if let Some(ms) = ms {
                took_s.insert(label.into(), json!(ms / 1000.0));
            }
        }
    }
    let peak_rss_mb = (usage.ru_maxrss as f64 / 1024.0 * 10.0).round() / 10.0;
    let wall = elapsed.as_secs_f64();
    let result = json!({
        "bench": "janitor_million",
        "round": round,
        "command": "gordon janitor --once",
        "zone_records": RECORDS,
        "owner_records": RECORDS,
        "inventory_hosts": RECORDS - DELETIONS + CREATIONS,
        "expected_changes": {"updates": UPDATES, "creations": CREATIONS, "deletions": DELETIONS},
        "stream_messages": in_stream,
        "stream_ok": in_stream == CHANGES,
        "end_to_end_s": secs(elapsed),
        "target_s": 15,
        "peak_rss_mb": peak_rss_mb,
        "target_rss_mb": 1024,
        "met": in_stream == CHANGES && wall <= 15.0 && peak_rss_mb <= 1024.0,
        "cpu_user_s": usage.ru_utime.tv_sec as f64 + usage.ru_utime.tv_usec as f64 / 1e6,
        "cpu_sys_s": usage.ru_stime.tv_sec as f64 + usage.ru_stime.tv_usec as f64 / 1e6,
        "named_cpu_s": named_cpu_s,
        "at_s": at_s,
        "took_s": took_s,
    });
    if in_stream != CHANGES {
        bail!("{result}\nthe run added {in_stream} message(s) to the stream, expected {CHANGES}");
    }
    Ok(result)
}
