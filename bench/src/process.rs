//! Measurements of the real `gordon` binary as a separate process: start-up time,
//! peak memory under a backlog, CPU when idle.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

pub fn gordon() -> anyhow::Result<PathBuf> {
    Ok(crate::artifacts()?.join("gordon"))
}

/// A config root with `plugins.d/` holding `libs` (file name -> source path).
pub fn config_root(libs: &[(String, PathBuf)], config: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins.d");
    std::fs::create_dir(&plugins)?;
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755))?;
    for (name, src) in libs {
        let dest = plugins.join(name);
        std::fs::copy(src, &dest).with_context(|| format!("copy {}", src.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::write(dir.path().join("gordon.toml"), config)?;
    Ok(dir)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Wall time of `gordon plugins list --json` (discover, inspect, load, report) with
/// 1 and 50 libraries.
pub fn startup() -> anyhow::Result<()> {
    let lib = crate::artifacts()?.join("libgordon_bench_plugins.so");
    let mut result = serde_json::Map::new();
    for n in [1usize, 50] {
        let libs: Vec<(String, PathBuf)> = (0..n)
            .map(|i| (format!("libbench{i:02}.so"), lib.clone()))
            .collect();
        let root = config_root(&libs, "[core]\nplugins = []\n")?;
        let mut times = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            let out = Command::new(gordon()?)
                .arg("-c")
                .arg(root.path())
                .args(["plugins", "list", "--json"])
                .output()?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if !out.status.success() {
                bail!(
                    "gordon plugins list failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let loaded = doc["plugins"].as_array().map_or(0, Vec::len);
            if loaded != 3 * n {
                bail!("expected {} plugins, got {loaded}", 3 * n);
            }
        }
        result.insert(
            format!("libraries_{n}_median_ms"),
            json!((median(times.clone()) * 10.0).round() / 10.0),
        );
        result.insert(format!("libraries_{n}_runs_ms"), json!(times));
    }
    result.insert("bench".into(), "startup".into());
    result.insert("command".into(), "gordon plugins list --json".into());
    println!("{}", serde_json::Value::Object(result));
    Ok(())
}

/// Resource usage of one child, by pid.
fn wait_rusage(child: &mut Child) -> anyhow::Result<libc::rusage> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both out-pointers are valid for writes.
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    Ok(usage)
}

/// Peak RSS while a source offers 1,000,000 messages as fast as it can.
pub fn memory() -> anyhow::Result<()> {
    let lib = crate::artifacts()?.join("libgordon_bench_plugins.so");
    let config = r#"[core]
plugins = ["bench.source", "bench.enrich", "bench.publish"]
[core.logging]
level = "warn"
["bench.source"]
count = 1000000
"#;
    let root = config_root(&[("libbench.so".into(), lib)], config)?;
    let started = Instant::now();
    let mut child = Command::new(gordon()?)
        .arg("-c")
        .arg(root.path())
        .stderr(Stdio::null())
        .spawn()?;
    let usage = wait_rusage(&mut child)?;
    println!(
        "{}",
        json!({
            "bench": "memory_1m_backlog",
            "messages": 1_000_000,
            "queue_capacity": 8192,
            "peak_rss_mb": (usage.ru_maxrss as f64 / 1024.0 * 10.0).round() / 10.0,
            "wall_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

/// CPU ticks (user + system) of process `pid`.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// CPU ticks (user + system) of thread `tid` of process `pid`.
pub fn task_ticks(pid: u32, tid: u32) -> anyhow::Result<u64> {
    stat_ticks(&format!("/proc/{pid}/task/{tid}/stat"))
}

fn stat_ticks(path: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// CPU used by a running but idle host: the default pipeline (http.events listening,
/// dns.enricher, dns.zonefile, the router and its watchdog), no traffic.
pub fn idle() -> anyhow::Result<()> {
    let artifacts = crate::artifacts()?;
    let root = tempfile::tempdir()?;
    let port_file = root.path().join("port");
    let config = format!(
        "[core]\nplugins = [\"http.events\", \"dns.enricher\", \"dns.zonefile\"]\n[\"http.events\"]\nlisten = \"127.0.0.1:0\"\nport_file = \"{}\"\n[\"dns\"]\nzone = \"example.com.\"\n[\"dns.zonefile\"]\npath = \"{}\"\n",
        port_file.display(),
        root.path().join("example.com.zone").display()
    );
    let dir = config_root(
        &[
            (
                "libhttp.so".into(),
                artifacts.join("libgordon_plugin_http.so"),
            ),
            (
                "libdns.so".into(),
                artifacts.join("libgordon_plugin_dns.so"),
            ),
        ],
        &config,
    )?;
    let log = root.path().join("stderr.log");
    let mut child = Command::new(gordon()?)
        .arg("-c")
        .arg(dir.path())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    if let Err(e) = wait_for(&port_file, Duration::from_secs(10)) {
        let _ = child.kill();
        bail!(
            "{e}; gordon said:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let window = Duration::from_secs(5);
    let before = cpu_ticks(child.id())?;
    std::thread::sleep(window);
    let after = cpu_ticks(child.id())?;
    // SAFETY: `sysconf` has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let cpu_s = (after - before) as f64 / hz;
    println!(
        "{}",
        json!({
            "bench": "idle_cpu",
            "window_s": window.as_secs(),
            "cpu_s": cpu_s,
            "cpu_percent": (cpu_s / window.as_secs_f64() * 100.0 * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

fn wait_for(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{} did not appear", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
