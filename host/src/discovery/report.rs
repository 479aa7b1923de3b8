//! `gordon report`: on a node, runs each service's health check every
//! `interval` and reports the service up or down through the discovery plugin in
//! `core.plugins` (read from `gordon-report.toml` + `gordon-report-user.toml`),
//! with rise/fall counts so one failed check does not flap a record. On SIGTERM
//! or SIGINT every service it reported up is reported down before it exits.
//!
//! ```toml
//! [core]
//! plugins = ["nats.discovery"]
//! [report]
//! node = "node1"
//! address = "10.0.0.1"
//! interval = 2.0   # seconds between checks
//! timeout = 1.0    # per check
//! rise = 2         # passing checks in a row before up
//! fall = 2         # failing checks in a row before down
//! [[report.services]]
//! cluster = "web"
//! port = 8080
//! check = { http = { url = "http://127.0.0.1:8080/health", status = 200 } }
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use gordon_plugin_api::{Member, Service};
use serde::Deserialize;

use super::checks::{Check, Hysteresis};
use crate::plugins::handle::Discovery;
use crate::plugins::instance::{self, Instance};
use crate::service::signals::{Signals, Wake};
use crate::session::Session;

/// The `[report]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// This node's name (one DNS label).
    pub node: String,
    /// This node's address, as DNS should serve it.
    pub address: String,
    /// Seconds between checks.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Seconds a check may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Passing checks in a row before a service is reported up.
    #[serde(default = "default_count")]
    pub rise: u32,
    /// Failing checks in a row before it is reported down.
    #[serde(default = "default_count")]
    pub fall: u32,
    /// The services.
    pub services: Vec<ServiceConfig>,
}

/// One service of the node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Its cluster.
    pub cluster: String,
    /// Its port.
    pub port: u16,
    /// How to tell it is up.
    pub check: Check,
}

const fn default_interval() -> f64 {
    2.0
}
const fn default_timeout() -> f64 {
    1.0
}
const fn default_count() -> u32 {
    2
}

struct Watched {
    service: Service,
    check: Check,
    state: Hysteresis,
    /// Up as far as the store knows (a report that failed is retried).
    reported: Option<bool>,
}

/// Runs the reporter until a signal; returns whether it stopped cleanly.
///
/// # Errors
/// Configuration problems, or a discovery plugin that cannot be created or
/// cannot connect.
pub fn run(global: &crate::cli::Global) -> anyhow::Result<bool> {
    let session = Session::open(&global.config_root, "gordon-report", global.verbose)?;
    session.log_problems();
    if session.has_errors() {
        bail!("cannot report: problems loading plugins (see above)");
    }
    let table = session.config.table_json("report");
    let cfg: ReportConfig = serde_json::from_value(table).with_context(|| {
        format!(
            "invalid [report] table in {}",
            session.config.files[0].display()
        )
    })?;
    if cfg.services.is_empty() {
        bail!("[report] lists no services");
    }
    let secs = |what: &str, v: f64| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("[report] {what} must be a positive number of seconds"))
    };
    let interval = secs("interval", cfg.interval)?;
    let timeout = secs("timeout", cfg.timeout)?;
    let plugin = discovery_plugin(&session)?;
    plugin
        .connect()
        .map_err(|e| anyhow::anyhow!("the discovery plugin cannot connect: {e}"))?;
    let mut watched: Vec<Watched> = cfg
        .services
        .iter()
        .map(|s| Watched {
            service: Service {
                cluster: s.cluster.clone(),
                member: Member {
                    node: cfg.node.clone(),
                    address: cfg.address.clone(),
                    port: s.port,
                },
            },
            check: s.check.clone(),
            state: Hysteresis::new(cfg.rise, cfg.fall),
            reported: None,
        })
        .collect();
    let mut signals = Signals::install()?;
    tracing::info!(node = %cfg.node, services = watched.len(), "Reporting.");
    loop {
        let round = Instant::now();
        for w in &mut watched {
            let result = w.check.run(timeout);
            if let Err(why) = &result {
                tracing::debug!(cluster = %w.service.cluster, port = w.service.member.port, %why, "Check failed.");
            }
            if let Some(up) = w.state.record(result.is_ok()) {
                tracing::info!(cluster = %w.service.cluster, port = w.service.member.port, up, "Service is {}.", if up { "up" } else { "down" });
            }
            if w.reported != Some(w.state.up) {
                match plugin.report(&w.service, w.state.up) {
                    Ok(()) => w.reported = Some(w.state.up),
                    Err(e) => {
                        tracing::warn!(cluster = %w.service.cluster, error = %e, "Cannot report; trying again at the next check.")
                    }
                }
            }
        }
        let left = interval.saturating_sub(round.elapsed());
        let wake = signals.next(|| async move {
            tokio::time::sleep(left).await;
            Wake::Ended
        });
        if let Wake::Signal(signal) = wake {
            tracing::info!("{signal} received; reporting every service down.");
            break;
        }
    }
    let mut clean = true;
    for w in watched.iter().filter(|w| w.reported == Some(true)) {
        if let Err(e) = plugin.report(&w.service, false) {
            tracing::error!(cluster = %w.service.cluster, error = %e, "Cannot report the service down; it leaves when the store's entry expires.");
            clean = false;
        }
    }
    if let Err(e) = plugin.disconnect(Duration::from_secs_f64(
        session.config.core.shutdown_timeout,
    )) {
        tracing::warn!(error = %e, "Disconnecting failed.");
    }
    Ok(clean)
}

/// Creates the one discovery plugin `core.plugins` names.
fn discovery_plugin(session: &Session) -> anyhow::Result<Discovery> {
    let mut found = None;
    for info in &session.active {
        if info.kind != gordon_plugin_api::abi::KIND_DISCOVERY {
            continue;
        }
        if found.is_some() {
            bail!("core.plugins names more than one discovery plugin; `gordon report` uses one");
        }
        let cfg = session.plugin_config_json(info);
        let created = instance::start(info, &cfg, &session.config.core)
            .map_err(|e| anyhow::anyhow!("{}", info.problem(&e)))?;
        if let Instance::Discovery(d) = created.instance {
            found = Some(d);
        }
    }
    found.context("core.plugins names no discovery plugin (a library exporting one must be in the plugin directories)")
}
