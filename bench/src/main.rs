//! `gordon-bench`: the measurements behind `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p gordon-bench -- [all|startup|pipeline|latency|memory|idle|channel|nats|nats-bind|zonefile]
//! ```
//! (`zonefile` takes `--records N`, default 200,000; `all` runs the default.)
//!
//! It builds the release host and plugins first, then prints one JSON object per
//! measurement. Ratios (dynamic vs static, ours vs crossbeam) are measured in the
//! same run, alternating, so machine noise hits both sides alike.

mod backends;
mod channel;
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

fn main() -> anyhow::Result<()> {
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
    // Not in `all`: setup alone (two million records into BIND) takes over a minute.
    if what == "janitor-million" {
        janitor_million::run()?;
    }
    Ok(())
}
