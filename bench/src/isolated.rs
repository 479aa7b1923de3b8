//! Crash isolation: the pipeline of `pipeline.rs` (dynamic `.so`) with the
//! enricher in a plugin process of its own, against the same pipeline fully in
//! process, alternating rounds in one run; then the time from a SIGKILL of the
//! enricher's process until a batch is handled again.
//!
//! The plugin process is this binary (`gordon-bench __plugin-process ...`, see
//! `main`), started by the host's supervisor exactly as `gordon` starts it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use gordon::config::{Config, CoreConfig, PluginConfig, RouterConfig};
use gordon::plugins::instance::{self, Instance};
use gordon::plugins::loader::{self, Entry};
use gordon::service::pipeline::{Pipeline, Source};
use gordon::service::router::HandlerSlot;
use gordon_plugin_api::{Action, EventMessage, Phase, RecordType, ResourceRecord};
use serde_json::json;

const COUNT: u64 = 4_000_000;
const WARM_UP: u64 = 200_000;
const ROUNDS: usize = 3;
const BATCH: usize = 256;
const WORKERS: usize = 2;
const RESTARTS: usize = 10;
const ENRICH: &str = "bench.enrich";
const PLUGINS: [&str; 3] = ["bench.source", "bench.enrich", "bench.publish"];
/// The handler deadline of the pipeline (as `pipeline.rs`) and of the isolated
/// enricher's batches.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// The bench library, copied into a directory of our own (file and directory
/// 0755, as discovery's checks want), so the plugin process loads it by path
/// with those checks, and a concurrent rebuild of the artifact does not change
/// it under the benchmark.
struct Library {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn library() -> anyhow::Result<Library> {
    let original = crate::artifacts()?.join("libgordon_bench_plugins.so");
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let path = dir.path().join("libgordon_bench_plugins.so");
    std::fs::copy(&original, &path).with_context(|| format!("copying {}", original.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    gordon::plugins::inspect::inspect(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Library { _dir: dir, path })
}

/// `[core]` and the enricher's configuration, from a gordon.toml written into a
/// directory of its own and loaded as the host loads it.
struct Setting {
    core: CoreConfig,
    enrich: PluginConfig,
}

/// `[core.isolation]` spelled out at its defaults but for the back-off and the
/// crashes allowed (the restart loop crashes on purpose, more than the default
/// 5 a minute, and sets the back-off's maximum to the back-off so that every
/// crash in a row waits the same instead of doubling).
fn setting(backoff: f64, backoff_max: f64, max_crashes: u32) -> anyhow::Result<Setting> {
    let dir = tempfile::tempdir()?;
    let text = format!(
        r#"[core]
plugins = ["bench.source", "bench.enrich", "bench.publish"]
isolate = ["bench.enrich"]
handler_timeout = 30.0

[core.isolation]
memory_limit_mb = 0
cpu_limit_seconds = 0
max_open_files = 0
start_timeout = 30.0
call_timeout = 10.0
restart_backoff = {backoff:?}
restart_backoff_max = {backoff_max:?}
max_crashes = {max_crashes}
crash_window = 60.0

["bench.enrich"]
"#
    );
    std::fs::write(dir.path().join("gordon.toml"), text)?;
    let config = Config::load(dir.path(), "gordon").map_err(|e| anyhow::anyhow!("{e}"))?;
    let enrich = config.plugin_config_for(ENRICH, &PLUGINS);
    Ok(Setting {
        core: config.core,
        enrich,
    })
}

/// Where the enricher runs.
#[derive(Clone, Copy)]
enum Side {
    InProcess,
    Isolated,
}

/// Creates the three bench plugins (the enricher in a process of its own for
/// [`Side::Isolated`]).
fn create(
    entries: &[Entry],
    library: &Path,
    setting: &Setting,
    side: Side,
    count: u64,
) -> anyhow::Result<(Vec<Source>, Vec<HandlerSlot>)> {
    let source_cfg = json!({"count": count, "batch": BATCH}).to_string();
    let mut sources = Vec::new();
    let mut handlers = Vec::new();
    for entry in entries {
        let info = crate::pipeline::info(entry, library);
        let created = if info.kind == "runnable" {
            instance::instantiate(&info, &source_cfg)
        } else if matches!(side, Side::Isolated) && info.name == ENRICH {
            gordon::isolation::start(&info, &setting.enrich, &setting.core, HANDLER_TIMEOUT)
        } else {
            instance::instantiate(&info, "{}")
        };
        let created = created
            .map_err(|e| anyhow::anyhow!("{}: {e}", info.name))?
            .instance;
        crate::pipeline::place(&info, created, HANDLER_TIMEOUT, &mut sources, &mut handlers);
    }
    Ok((sources, handlers))
}

/// One round: messages per second from the pipeline's start until its sources
/// have ended and every message is cleaned up. Creating the plugins (starting the
/// enricher's process) is not timed.
fn run_once(
    entries: &[Entry],
    library: &Path,
    setting: &Setting,
    side: Side,
    count: u64,
) -> anyhow::Result<f64> {
    let (sources, handlers) = create(entries, library, setting, side, count)?;
    let router = RouterConfig {
        workers: Some(WORKERS),
        queue_capacity: 8192,
        batch_size: BATCH,
    };
    let started = Instant::now();
    let pipeline = Pipeline::start(sources, handlers, &crate::pipeline::route(), &router, false)?;
    pipeline.wait_until_sources_end();
    let elapsed = started.elapsed().as_secs_f64();
    pipeline.shutdown(Duration::from_secs(5));
    Ok(count as f64 / elapsed)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Both measurements.
pub fn run() -> anyhow::Result<()> {
    let library = library().context("preparing the bench library")?;
    let entries = loader::load(&library.path)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .entries;
    throughput(&entries, &library.path)?;
    restart(&entries, &library.path)?;
    Ok(())
}

fn throughput(entries: &[Entry], library: &Path) -> anyhow::Result<()> {
    let setting = setting(0.1, 10.0, 5)?;
    run_once(entries, library, &setting, Side::InProcess, WARM_UP)?;
    run_once(entries, library, &setting, Side::Isolated, WARM_UP)?;
    let (mut local, mut isolated) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        local.push(run_once(entries, library, &setting, Side::InProcess, COUNT)?.round());
        isolated.push(run_once(entries, library, &setting, Side::Isolated, COUNT)?.round());
    }
    let (lm, im) = (median(&local), median(&isolated));
    println!(
        "{}",
        json!({
            "bench": "isolated_pipeline",
            "messages_per_round": COUNT,
            "route": "consume -> enrich (isolated) -> publish -> cleanup",
            "batch_size": BATCH,
            "workers": WORKERS,
            "rounds": ROUNDS,
            "in_process_msgs_per_s": local,
            "isolated_msgs_per_s": isolated,
            "in_process_median": lm,
            "isolated_median": im,
            "isolated_over_in_process": (im / lm * 1000.0).round() / 1000.0,
            "target": {"isolated_msgs_per_s": 1_000_000, "isolated_over_in_process": 0.4},
            "meets_target": im >= 1_000_000.0 && im / lm >= 0.4,
        })
    );
    Ok(())
}

/// The pids of the plugin processes of this process, from `/proc`.
fn plugin_processes() -> Vec<i32> {
    let host = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let after = |flag: &str| {
            args.windows(2)
                .find(|w| w[0] == flag.as_bytes())
                .map(|w| w[1])
        };
        if args.get(1) == Some(&&b"__plugin-process"[..])
            && after("--host-pid") == Some(host.as_bytes())
            && after("--plugin") == Some(ENRICH.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

fn small_batch() -> Vec<EventMessage> {
    (0..4)
        .map(|_| {
            let rec = ResourceRecord::new("host.bench.example.", RecordType::A, ["10.0.0.1"]);
            EventMessage::new(Phase::intern("enrich"), Action::Additions, rec)
        })
        .collect()
}

/// Kills the isolated enricher's process `RESTARTS` times and times each until a
/// batch is handled again; returns the times in ms.
fn restarts(
    entries: &[Entry],
    library: &Path,
    setting: &Setting,
) -> anyhow::Result<(Vec<f64>, Vec<u32>)> {
    let entry = entries
        .iter()
        .find(|e| e.name == ENRICH)
        .context("no bench.enrich in the library")?;
    let info = crate::pipeline::info(entry, library);
    let Instance::Handler(handler) =
        gordon::isolation::start(&info, &setting.enrich, &setting.core, HANDLER_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .instance
    else {
        bail!("bench.enrich is not a handler");
    };
    let mut batch = small_batch();
    if !handler.handle_batch(&mut batch).is_empty() {
        bail!("the isolated enricher failed a batch before any crash");
    }
    let mut times = Vec::new();
    let mut failed_calls = Vec::new();
    for _ in 0..RESTARTS {
        let pids = plugin_processes();
        let [pid] = pids[..] else {
            bail!("expected one plugin process of bench.enrich, found {pids:?}");
        };
        let killed = Instant::now();
        // SAFETY: kill(2) has no memory effects; the pid is our live child (it
        // just answered a batch, and only its supervisor reaps it).
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            bail!("cannot kill {pid}: {}", std::io::Error::last_os_error());
        }
        let mut failed = 0u32;
        loop {
            let mut batch = small_batch();
            if handler.handle_batch(&mut batch).is_empty() {
                break;
            }
            failed += 1;
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("bench.enrich did not come back within 60 s");
            }
        }
        times.push(killed.elapsed().as_secs_f64() * 1000.0);
        failed_calls.push(failed);
        // A new process, not the old one: it must be a different pid.
        if plugin_processes().contains(&pid) {
            bail!("the killed plugin process {pid} is still there");
        }
    }
    handler
        .shutdown(Duration::from_secs(5))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((times, failed_calls))
}

fn restart(entries: &[Entry], library: &Path) -> anyhow::Result<()> {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let mut report = serde_json::Map::new();
    for (key, backoff) in [("backoff_0", 0.0), ("backoff_default", 0.1)] {
        let setting = setting(backoff, backoff, 1000)?;
        let (ms, failed) = restarts(entries, library, &setting)?;
        let max = ms.iter().copied().fold(0.0, f64::max);
        report.insert(
            key.into(),
            json!({
                "restart_backoff_s": backoff,
                "crash_to_restarted_ms": ms.iter().map(|&v| round(v)).collect::<Vec<_>>(),
                "median_ms": round(median(&ms)),
                "max_ms": round(max),
                "failed_calls_per_crash": failed,
            }),
        );
    }
    let mut doc = json!({
        "bench": "isolated_restart",
        "plugin": ENRICH,
        "crashes": RESTARTS,
        "signal": "SIGKILL",
        "measured": "kill(2) to the first handle_batch that succeeds on the restarted process",
    });
    if let Some(obj) = doc.as_object_mut() {
        obj.extend(report);
    }
    println!("{doc}");
    Ok(())
}
