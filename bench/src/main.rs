//! `gordon-bench`: the measurements behind `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p gordon-bench -- [all|startup|pipeline|latency|memory|idle|channel|nats|nats-bind|zonefile|isolated]
//! ```
//! (`zonefile` takes `--records N`, default 200,000; `all` runs the default.)
//!
//! It builds the release host and plugins first, then prints one JSON object per
//! measurement. Ratios (dynamic vs static, ours vs crossbeam) are measured in the
//! same run, alternating, so machine noise hits both sides alike.

mod backends;
mod channel;
mod isolated;
mod janitor_million;
mod nats_bind;
mod pipeline;
mod process;
mod zonefile;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};

/// The release artifact directory (where this binary lives).
pub fn artifacts() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the benchmark binary")?;
    exe.parent()
        .map(PathBuf::from)
        .context("binary has no parent directory")
}

fn build_release() -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .args([
            "-p",
            "gordon",
            "-p",
            "gordon-bench-plugins",
            "-p",
            "gordon-plugin-http",
            "-p",
            "gordon-plugin-nats",
            "-p",
            "gordon-plugin-dns",
            "-p",
            "gordon-plugin-rfc2136",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("release build failed");
    }
    Ok(())
}

/// `__plugin-process --plugin NAME --host-pid PID`: this binary is also the plugin
/// process of the `isolated` benchmark (the host starts `current_exe()`).
/// Returns only when this is not a plugin process.
fn plugin_process() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("__plugin-process") {
        return;
    }
    let (mut plugin, mut host_pid) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plugin" => plugin = args.next(),
            "--host-pid" => host_pid = args.next().and_then(|p| p.parse::<u32>().ok()),
            _ => {}
        }
    }
    let (Some(plugin), Some(host_pid)) = (plugin, host_pid) else {
        eprintln!("usage: __plugin-process --plugin NAME --host-pid PID");
        std::process::exit(2);
    };
    std::process::exit(i32::from(gordon::isolation::child::main(&plugin, host_pid)));
}

fn main() -> anyhow::Result<()> {
    plugin_process();
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let all = what == "all";
    if ![
        "all",
        "startup",
        "pipeline",
        "latency",
        "memory",
        "idle",
        "channel",
        "nats",
        "nats-bind",
        "zonefile",
        "janitor-million",
        "isolated",
    ]
    .contains(&what.as_str())
    {
        bail!("unknown benchmark `{what}`");
    }
    build_release()?;
    println!(
        "{}",
        serde_json::json!({"machine": {"cpus": std::thread::available_parallelism().map_or(0, |n| n.get()), "os": std::env::consts::OS, "arch": std::env::consts::ARCH}})
    );
    if all || what == "channel" {
        channel::run();
    }
    if all || what == "pipeline" {
        pipeline::throughput()?;
    }
    if all || what == "latency" {
        pipeline::latency()?;
    }
    if all || what == "startup" {
        process::startup()?;
    }
    if all || what == "memory" {
        process::memory()?;
    }
    if all || what == "idle" {
        process::idle()?;
    }
    if all || what == "nats" {
        backends::nats_to_zonefile()?;
    }
    if all || what == "nats-bind" {
        nats_bind::run()?;
    }
    if all || what == "zonefile" {
        zonefile::run()?;
    }
    if all || what == "isolated" {
        isolated::run()?;
    }
    // Not in `all`: setup alone (two million records into BIND) takes over a minute.
    if what == "janitor-million" {
        janitor_million::run()?;
    }
    Ok(())
}
