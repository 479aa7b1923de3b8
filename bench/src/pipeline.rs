//! Pipeline throughput and latency, in process: source -> enrich -> publish ->
//! cleanup with the trivial bench plugins, loaded from the `.so` and linked
//! statically, through the very router the service runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use abi_stable::library::RootModule;
use anyhow::Context as _;
use gordon::config::RouterConfig;
use gordon::plugins::instance::{self, Instance};
use gordon::plugins::loader::{self, Entry};
use gordon::plugins::{hostlink, PluginInfo};
use gordon::service::pipeline::{Pipeline, Source};
use gordon::service::router::HandlerSlot;
use gordon_plugin_api::abi::LibraryRef;
use gordon_plugin_api::Phase;
use serde_json::json;

const COUNT: u64 = 4_000_000;
const ROUNDS: usize = 3;

/// The standard route of the synthetic pipeline.
pub(crate) fn route() -> BTreeMap<String, String> {
    [
        ("consume", "enrich"),
        ("enrich", "publish"),
        ("publish", "cleanup"),
    ]
    .into_iter()
    .map(|(a, b)| (a.into(), b.into()))
    .collect()
}

fn dynamic_module() -> anyhow::Result<Vec<Entry>> {
    let path = crate::artifacts()?.join("libgordon_bench_plugins.so");
    gordon::plugins::inspect::inspect(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(loader::load(&path)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .entries)
}

fn static_module() -> anyhow::Result<Vec<Entry>> {
    let header = &gordon_bench_plugins::__GORDON_LIB_HEADER;
    let module = loader::from_header(header, LibraryRef::VERSION_STRINGS.version.as_str())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let loader::Versioned::Current(m) = &module {
        let _ = (m.init())(hostlink::services());
    }
    Ok(module.entries())
}

/// The catalog entry of a bench plugin from `library`.
pub(crate) fn info(entry: &Entry, library: &Path) -> PluginInfo {
    PluginInfo {
        name: entry.name.clone(),
        kind: entry.kind.clone(),
        phase: entry.phase.clone(),
        version: entry.version.clone(),
        description: String::new(),
        library: library.to_path_buf(),
        api_version: String::new(),
        definition: entry.definition.clone(),
        fns: entry.fns,
    }
}

/// Puts a created bench plugin where the pipeline takes it: a source, or a
/// handler whose batches may take `timeout`.
pub(crate) fn place(
    info: &PluginInfo,
    created: Instance,
    timeout: Duration,
    sources: &mut Vec<Source>,
    handlers: &mut Vec<HandlerSlot>,
) {
    let name = Phase::intern(&info.name).as_str();
    match created {
        Instance::Runnable(runnable) => sources.push(Source {
            name,
            start: Phase::intern(&info.phase),
            runnable: std::sync::Arc::new(runnable),
        }),
        Instance::Handler(obj) => handlers.push(HandlerSlot {
            name,
            phase: Phase::intern(&info.phase).as_str(),
            obj: std::sync::Arc::new(obj),
            timeout,
        }),
        _ => {}
    }
}

/// Creates the three bench plugins from a module and starts a pipeline.
fn start(
    entries: &[Entry],
    source_cfg: &serde_json::Value,
    workers: usize,
) -> anyhow::Result<Pipeline> {
    let mut sources = Vec::new();
    let mut handlers = Vec::new();
    for entry in entries {
        let info = info(entry, Path::new("bench"));
        let cfg = if info.kind == "runnable" {
            source_cfg.to_string()
        } else {
            "{}".into()
        };
        let created = instance::instantiate(&info, &cfg)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .instance;
        place(
            &info,
            created,
            Duration::from_secs(30),
            &mut sources,
            &mut handlers,
        );
    }
    let router = RouterConfig {
        workers: Some(workers),
        queue_capacity: 8192,
        batch_size: 256,
    };
    Ok(Pipeline::start(
        sources,
        handlers,
        &route(),
        &router,
        false,
    )?)
}

fn run_once(module: &[Entry], count: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let pipeline = start(module, &json!({"count": count, "batch": 256}), 2)?;
    pipeline.wait_until_sources_end();
    let elapsed = started.elapsed().as_secs_f64();
    pipeline.shutdown(Duration::from_secs(5));
    Ok(count as f64 / elapsed)
}

/// Messages per second, dynamic vs static, alternating rounds.
pub fn throughput() -> anyhow::Result<()> {
    let dynamic = dynamic_module().context("loading the bench plugins")?;
    let statik = static_module()?;
    // Warm up both (page faults, allocator arenas).
    run_once(&dynamic, 200_000)?;
    run_once(&statik, 200_000)?;
    let (mut d, mut s) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        d.push(run_once(&dynamic, COUNT)?);
        s.push(run_once(&statik, COUNT)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (dm, sm) = (median(&mut d), median(&mut s));
    println!(
        "{}",
        json!({
            "bench": "pipeline_throughput",
            "messages_per_round": COUNT,
            "route": "consume -> enrich -> publish -> cleanup",
            "dynamic_msgs_per_s": d, "static_msgs_per_s": s,
            "dynamic_median": dm.round(), "static_median": sm.round(),
            "dynamic_over_static": (dm / sm * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// End-to-end latency at a fixed offered rate of 10,000 messages per second.
pub fn latency() -> anyhow::Result<()> {
    let module = dynamic_module()?;
    let dir = tempfile::tempdir()?;
    let report = dir.path().join("latency.json");
    let count = 50_000;
    let cfg = json!({"count": count, "rate": 10_000, "report": report});
    let pipeline = start(&module, &cfg, 2)?;
    pipeline.wait_until_sources_end();
    pipeline.shutdown(Duration::from_secs(5));
    let text = std::fs::read_to_string(&report).context("no latency report")?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)?;
    doc["bench"] = "latency_at_10k_per_s".into();
    doc["offered_rate"] = 10_000.into();
    println!("{doc}");
    Ok(())
}
