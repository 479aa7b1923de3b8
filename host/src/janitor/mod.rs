//! `gordon janitor`: one authority, one reconciler and one publisher, joined by
//! bounded channels, run once or every `--interval` seconds.
//!
//! **Invariant:** a run never hangs. A plugin that is missing ends the run before it
//! starts (even with `core.debug`, where the original hung forever); a plugin that
//! fails ends its output stream, so the next plugin finishes; a plugin still running
//! at `core.run_timeout` is named and the run is reported failed.

mod plan;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use gordon_plugin_api::abi::{
    AuthorityBox, MetricEvent, MetricKind, PublisherBox, ReconcilerBox, Tag,
};
use gordon_plugin_api::channel::{bounded, Recv};
use gordon_plugin_api::{EventMessage, ZoneRecords};

use crate::cli::Global;
use crate::metrics;
use crate::plugins::instance::{self, Instance};
use crate::plugins::intern;
use crate::service::pipeline::with_deadline;
use crate::session::Session;

/// The three plugins of a janitor run.
struct Parts {
    authority: (&'static str, Arc<AuthorityBox>),
    reconciler: (&'static str, Arc<ReconcilerBox>),
    publisher: (&'static str, Arc<PublisherBox>),
}

/// What one run did.
#[derive(Debug)]
pub struct RunReport {
    /// Zone messages the authority sent.
    pub zones: u64,
    /// Change messages the reconciler sent.
    pub changes: u64,
    /// One line per plugin that failed or overran, naming it.
    pub failures: Vec<String>,
}

/// Creates exactly one plugin of each janitor kind from `core.plugins`.
fn build(session: &Session) -> anyhow::Result<Parts> {
    let (mut authority, mut reconciler, mut publisher) = (None, None, None);
    let mut relay = None;
    for info in &session.active {
        let cfg = session.plugin_config_json(info);
        let created = instance::validate(info, &cfg)
            .and_then(|()| instance::instantiate(info, &cfg))
            .map_err(|e| anyhow::anyhow!(info.problem(&e)))?;
        let name = intern(&info.name);
        let slot_taken = |what: &str, other: &str| {
            anyhow::anyhow!("core.plugins lists two {what} plugins: `{other}` and `{name}`; the janitor runs one")
        };
        match created {
            Instance::Authority(a) => {
                if let Some((other, _)) = authority.replace((name, Arc::new(a))) {
                    return Err(slot_taken("authority", other));
                }
            }
            Instance::Reconciler(r) => {
                if let Some((other, _)) = reconciler.replace((name, Arc::new(r))) {
                    return Err(slot_taken("reconciler", other));
                }
            }
            Instance::Publisher(p) => {
                if let Some((other, _)) = publisher.replace((name, Arc::new(p))) {
                    return Err(slot_taken("publisher", other));
                }
            }
            Instance::Relay(obj) if session.config.core.metrics == info.name => {
                relay = Some((name, obj))
            }
            _ => {
                tracing::warn!(plugin = name, kind = %info.kind, "Not a janitor plugin; ignoring it.")
            }
        }
    }
    crate::service::lifecycle::install_relay(session, relay)?;
    let missing = |kind: &str| {
        anyhow::anyhow!(
            "no active {kind} plugin: core.plugins ({}) must name one that a library provides",
            session.config.core.plugins.join(", ")
        )
    };
    Ok(Parts {
        authority: authority.ok_or_else(|| missing("authority"))?,
        reconciler: reconciler.ok_or_else(|| missing("reconciler"))?,
        publisher: publisher.ok_or_else(|| missing("publisher"))?,
    })
}

/// Runs the janitor; returns whether every run succeeded.
///
/// # Errors
/// Configuration or plugin start-up problems (always fatal for the janitor).
pub fn run(global: &Global, dry_run: bool, interval: Option<f64>) -> anyhow::Result<bool> {
    let session = Session::open(&global.config_root, "gordon-janitor", global.verbose)?;
    session.log_problems();
    if !session.problems.is_empty() {
        // Even with core.debug: a janitor without one of its plugins cannot run.
        bail!(
            "cannot run the janitor: {} problem(s) loading plugins (see above)",
            session.problems.len()
        );
    }
    let refused =
        crate::service::preflight::problems(&session, crate::service::preflight::Mode::Janitor);
    if !refused.is_empty() {
        for problem in &refused {
            tracing::error!("{problem}");
        }
        bail!(
            "cannot run the janitor: {} problem(s) (see above; `gordon check --janitor` lists them)",
            refused.len()
        );
    }
    let parts = build(&session)?;
    let core = &session.config.core;
    let timeout = Duration::from_secs_f64(core.run_timeout);
    let deadline = Duration::from_secs_f64(core.shutdown_timeout);
    let mut all_ok = true;
    loop {
        let report = run_once(&parts, dry_run, timeout);
        let ok = report.failures.is_empty();
        all_ok &= ok;
        run_ended(&report, dry_run);
        if let Some(secs) = interval {
            if wait_or_signal(Duration::from_secs_f64(secs))? {
                break;
            }
        } else {
            break;
        }
    }
    let ms = deadline.as_millis() as u64;
    let (a, r, p) = (&parts.authority, &parts.reconciler, &parts.publisher);
    let obj = Arc::clone(&a.1);
    with_deadline(a.0, deadline, move || {
        obj.cleanup(ms).into_result().map_err(|e| e.message.into())
    });
    let obj = Arc::clone(&r.1);
    with_deadline(r.0, deadline, move || {
        obj.cleanup(ms).into_result().map_err(|e| e.message.into())
    });
    if !dry_run {
        let obj = Arc::clone(&p.1);
        with_deadline(p.0, deadline, move || {
            obj.cleanup(ms).into_result().map_err(|e| e.message.into())
        });
    }
    metrics::relay().cleanup();
    Ok(all_ok)
}

/// One run: authority -> reconciler -> publisher (or the plan printer).
fn run_once(parts: &Parts, dry_run: bool, timeout: Duration) -> RunReport {
    let (rr_tx, rr_rx) = bounded::<ZoneRecords>(16);
    let (ch_tx, ch_rx) = bounded::<EventMessage>(8192);
    let (zones, changes) = (rr_rx.sent_counter(), ch_rx.sent_counter());
    let (done_tx, done_rx) = mpsc::channel::<(&'static str, Result<(), String>)>();
    let mut running: Vec<&'static str> = Vec::new();
    let mut spawn = |name: &'static str, f: Box<dyn FnOnce() -> Result<(), String> + Send>| {
        let done = done_tx.clone();
        running.push(name);
        let spawned = std::thread::Builder::new()
            .name(format!("gordon-janitor-{name}"))
            .spawn(move || {
                let _ = done.send((name, f()));
            });
        if let Err(e) = spawned {
            let _ = done_tx.send((name, Err(format!("cannot start a thread: {e}"))));
        }
    };
    let authority = Arc::clone(&parts.authority.1);
    spawn(
        parts.authority.0,
        Box::new(move || {
            authority
                .run(rr_tx)
                .into_result()
                .map_err(|e| e.message.into())
        }),
    );
    let reconciler = Arc::clone(&parts.reconciler.1);
    let rr_in = rr_rx.into_ffi();
    spawn(
        parts.reconciler.0,
        Box::new(move || {
            reconciler
                .run(rr_in, ch_tx)
                .into_result()
                .map_err(|e| e.message.into())
        }),
    );
    let plan = Arc::new(std::sync::Mutex::new(Vec::new()));
    if dry_run {
        let plan = Arc::clone(&plan);
        spawn(
            "dry-run",
            Box::new(move || {
                let mut buf = Vec::new();
                while ch_rx.recv_batch(&mut buf, 1024, None) != Recv::Ended {}
                *plan.lock().unwrap_or_else(|p| p.into_inner()) = buf;
                Ok(())
            }),
        );
    } else {
        let publisher = Arc::clone(&parts.publisher.1);
        let ch_in = ch_rx.into_ffi();
        spawn(
            parts.publisher.0,
            Box::new(move || {
                publisher
                    .run(ch_in)
                    .into_result()
                    .map_err(|e| e.message.into())
            }),
        );
    }
    drop(done_tx);

    let mut failures = Vec::new();
    let until = Instant::now() + timeout;
    while !running.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok((name, result)) => {
                running.retain(|n| *n != name);
                match result {
                    Ok(()) => tracing::debug!(plugin = name, "Janitor plugin finished."),
                    Err(error) => {
                        tracing::error!(plugin = name, %error, "Janitor plugin failed.");
                        failures.push(format!("plugin `{name}` failed: {error}"));
                    }
                }
            }
            Err(_) => {
                for name in &running {
                    tracing::error!(
                        plugin = name,
                        "Janitor plugin still running after {:.0} s; abandoning the run.",
                        timeout.as_secs_f64()
                    );
                    failures.push(format!(
                        "plugin `{name}` did not finish within {:.0} s",
                        timeout.as_secs_f64()
                    ));
                }
                break;
            }
        }
    }
    if dry_run {
        let plan = plan.lock().unwrap_or_else(|p| p.into_inner());
        print!("{}", plan::render(&plan));
    }
    RunReport {
        zones: zones.get(),
        changes: changes.get(),
        failures,
    }
}

/// Logs the end of a run and emits the `gordon.janitor.run-ended` metric.
fn run_ended(report: &RunReport, dry_run: bool) {
    let status = if report.failures.is_empty() {
        "ok"
    } else {
        "failed"
    };
    let (zones, changes) = (report.zones.to_string(), report.changes.to_string());
    let tags = [
        Tag {
            key: "status".into(),
            value: status.into(),
        },
        Tag {
            key: "zones".into(),
            value: zones.as_str().into(),
        },
        Tag {
            key: "changes".into(),
            value: changes.as_str().into(),
        },
        Tag {
            key: "dry_run".into(),
            value: if dry_run { "true" } else { "false" }.into(),
        },
    ];
    metrics::relay().emit(&MetricEvent {
        kind: MetricKind::Incr,
        name: "gordon.janitor.run-ended".into(),
        value: 1.0,
        plugin: "".into(),
        tags: (&tags[..]).into(),
    });
    if report.failures.is_empty() {
        tracing::info!(
            zones = report.zones,
            changes = report.changes,
            dry_run,
            "Janitor run ended."
        );
    } else {
        for f in &report.failures {
            eprintln!("gordon janitor: {f}");
        }
        tracing::error!(
            zones = report.zones,
            changes = report.changes,
            "Janitor run failed."
        );
    }
}

/// Sleeps `d` unless SIGINT/SIGTERM arrives first; returns whether one did.
fn wait_or_signal(d: Duration) -> anyhow::Result<bool> {
    Ok(crate::service::signals::wait_for_signal_or(|| tokio::time::sleep(d))?.is_some())
}
