//! `gordon janitor`: one authority, one reconciler and one publisher, joined by
//! bounded channels, run once or every `--interval` seconds.
//!
//! A run has two steps. The authority and the reconciler run first, and every
//! change the reconciler sends is held; then the plan is checked against the
//! change threshold ([`safety`]) and, when it passes (or `--force`), handed to the
//! publisher. A plan over the threshold is printed with its figures and nothing of
//! it is published; the run fails. A dry run prints the plan and publishes nothing.
//!
//! **Invariant:** a run never hangs. A plugin that is missing ends the run before it
//! starts (even with `core.debug`, where the original hung forever); a plugin that
//! fails ends its output stream, so the next plugin finishes; a plugin still running
//! at `core.run_timeout` is named and the run is reported failed (and nothing is
//! published when that happens before the plan is complete).

mod plan;
pub mod safety;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{refuse, StartError, StartResult};
use crate::plugins::handle::{Authority, Publisher, Reconciler};
use gordon_plugin_api::channel::{bounded, Recv};
use gordon_plugin_api::{EventMessage, ZoneRecords};

use crate::cli::Global;
use crate::metrics;
use crate::metrics::events;
use crate::plugins::instance::{self, Instance};
use crate::plugins::intern;
use crate::service::pipeline::with_deadline;
use crate::session::Session;

/// The three plugins of a janitor run.
struct Parts {
    authority: (&'static str, Arc<Authority>),
    reconciler: (&'static str, Arc<Reconciler>),
    publisher: (&'static str, Arc<Publisher>),
    /// Every created plugin's configuration (JSON) and live controls, by name.
    live: BTreeMap<String, (String, Arc<crate::plugins::handle::Control>)>,
}

/// How `gordon janitor` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Print the plan, publish nothing.
    pub dry_run: bool,
    /// Run every so many seconds until a signal, instead of once.
    pub interval: Option<f64>,
    /// Publish a plan even when it is over the change threshold.
    pub force: bool,
    /// The change threshold.
    pub threshold: safety::Threshold,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every plugin succeeded and the plan was published (or printed).
    Ok,
    /// A plugin failed or overran.
    Failed,
    /// The plan was over the change threshold: nothing was published.
    Refused,
}

impl Status {
    /// The `status` label of `gordon.janitor.run-ended`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Refused => "refused",
        }
    }
}

/// What one run did.
#[derive(Debug)]
pub struct RunReport {
    /// Zone messages the authority sent.
    pub zones: u64,
    /// Change messages the reconciler sent.
    pub changes: u64,
    /// Changes handed to the publisher.
    pub published: u64,
    /// One line per plugin that failed or overran, naming it, and per zone over
    /// the change threshold.
    pub failures: Vec<String>,
    /// How it ended.
    pub status: Status,
}

/// Creates exactly one plugin of each janitor kind from `core.plugins`, and
/// installs the metric relay.
fn build(session: &Session) -> StartResult<Parts> {
    let (parts, relay) = create_parts(session, true)?;
    crate::service::lifecycle::install_relay(session, relay)?;
    Ok(parts)
}

/// The janitor plugins of `session` (and, with `with_relay`, the metric relay
/// plugin `core.metrics` names).
fn create_parts(
    session: &Session,
    with_relay: bool,
) -> StartResult<(Parts, crate::service::lifecycle::RelaySlot)> {
    let (mut authority, mut reconciler, mut publisher) = (None, None, None);
    let mut relay = None;
    let mut live = BTreeMap::new();
    for info in &session.active {
        if info.kind == gordon_plugin_api::abi::KIND_METRIC_RELAY && !with_relay {
            continue;
        }
        let cfg = session.plugin_config_json(info);
        let created = instance::start(info, &cfg, &session.config.core)
            .map_err(|e| StartError::Refused(info.problem(&e)))?;
        live.insert(
            info.name.clone(),
            (cfg.to_string(), Arc::new(created.control)),
        );
        let name = intern(&info.name);
        let slot_taken = |what: &str, other: &str| {
            StartError::Refused(format!("core.plugins lists two {what} plugins: `{other}` and `{name}`; the janitor runs one"))
        };
        match created.instance {
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
    let missing = |kind: &str| {
        StartError::Refused(format!(
            "no active {kind} plugin: core.plugins ({}) must name one that a library provides",
            session.config.core.plugins.join(", ")
        ))
    };
    let parts = Parts {
        authority: authority.ok_or_else(|| missing("authority"))?,
        reconciler: reconciler.ok_or_else(|| missing("reconciler"))?,
        publisher: publisher.ok_or_else(|| missing("publisher"))?,
        live,
    };
    Ok((parts, relay))
}

/// Cleans up the three plugins of `parts`, each within `deadline` (the
/// publisher only when it may have published).
fn clean_up(parts: &Parts, deadline: Duration, publisher: bool) {
    let (a, r, p) = (&parts.authority, &parts.reconciler, &parts.publisher);
    let obj = Arc::clone(&a.1);
    with_deadline(a.0, deadline, move || {
        obj.cleanup(deadline).map_err(|e| e.message().into())
    });
    let obj = Arc::clone(&r.1);
    with_deadline(r.0, deadline, move || {
        obj.cleanup(deadline).map_err(|e| e.message().into())
    });
    if publisher {
        let obj = Arc::clone(&p.1);
        with_deadline(p.0, deadline, move || {
            obj.cleanup(deadline).map_err(|e| e.message().into())
        });
    }
}

/// Reloads the janitor's configuration between runs (SIGHUP in `--interval`
/// mode), as the service does: the new files are validated whole first, and on
/// any error nothing changes. Then a changed plugin gets `apply_config` if it
/// implements it; otherwise — or when the plugins themselves changed — the three
/// are created anew and the old ones cleaned up.
fn reload(session: &mut Session, parts: &mut Parts, verbose: bool, dry_run: bool) {
    let refused = |problems: Vec<String>| {
        for p in &problems {
            tracing::error!("Reload refused: {p}");
        }
        tracing::error!(
            "Reload refused (SIGHUP); the janitor's configuration in use is unchanged."
        );
    };
    let config = match crate::config::Config::load(&session.config.root, "gordon-janitor") {
        Ok(c) => c,
        Err(e) => return refused(vec![e.to_string()]),
    };
    let mut problems = crate::service::reload::restart_only(&session.config.core, &config.core);
    let new = Session::discover(config, verbose);
    problems.extend(new.problems.iter().map(|p| p.message.clone()));
    problems.extend(crate::service::preflight::problems(
        &new,
        crate::service::preflight::Mode::Janitor,
    ));
    let mut changed = Vec::new();
    for info in &new.active {
        let cfg = new.plugin_config_json(info);
        if parts.live.get(&info.name).map(|(json, _)| json.as_str()) == Some(&*cfg) {
            continue;
        }
        let checked = if crate::isolation::is_isolated(&new.config.core, &info.name) {
            crate::isolation::validate(info, &cfg, &new.config.core)
        } else {
            instance::validate(info, &cfg)
        };
        if let Err(e) = checked {
            problems.push(crate::plugins::keys::refusal(info, &e));
        }
        changed.push(info.clone());
    }
    if !problems.is_empty() {
        return refused(problems);
    }
    let same_plugins = new.active.len() == parts.live.len()
        && new.active.iter().all(|i| parts.live.contains_key(&i.name));
    let mut rebuild = !same_plugins;
    let mut applied = Vec::new();
    if same_plugins {
        for info in &changed {
            let cfg = new.plugin_config_json(info);
            let Some((json, control)) = parts.live.get_mut(&info.name) else {
                continue;
            };
            match cfg.validate_with(|j| control.apply_config(j)) {
                Ok(true) => {
                    *json = cfg.to_string();
                    applied.push(info.name.clone());
                }
                Ok(false) => rebuild = true,
                Err(e) => return refused(vec![info.problem(&e)]),
            }
        }
    }
    if rebuild {
        match create_parts(&new, false) {
            Ok((fresh, _)) => {
                let old = std::mem::replace(parts, fresh);
                clean_up(
                    &old,
                    Duration::from_secs_f64(session.config.core.shutdown_timeout),
                    !dry_run,
                );
            }
            Err(e) => return refused(vec![e.to_string()]),
        }
    }
    *session = new;
    tracing::info!(
        applied = %applied.join(", "),
        recreated = rebuild,
        "Configuration reloaded (SIGHUP); the next run uses it."
    );
}

/// Runs the janitor; returns whether every run succeeded.
///
/// # Errors
/// Configuration or plugin start-up problems (always fatal for the janitor).
pub fn run(global: &Global, opts: &Options) -> StartResult<bool> {
    let dry_run = opts.dry_run;
    let mut session = Session::open(&global.config_root, "gordon-janitor", global.verbose)?;
    session.log_problems();
    if !session.problems.is_empty() {
        // Even with core.debug: a janitor without one of its plugins cannot run.
        refuse!(
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
        refuse!(
            "cannot run the janitor: {} problem(s) (see above; `gordon check --janitor` lists them)",
            refused.len()
        );
    }
    let mut parts = build(&session)?;
    let mut signals = crate::service::signals::Signals::install()?;
    if opts.force && !dry_run {
        tracing::warn!(
            "--force: plans over the change threshold ({} % of a zone's owned record sets) are published",
            opts.threshold.max_change_percent
        );
    }
    let mut all_ok = true;
    loop {
        // Read each time: a reload may have changed them.
        let timeout = Duration::from_secs_f64(session.config.core.run_timeout);
        let report = run_once(&parts, opts, timeout);
        all_ok &= report.status == Status::Ok;
        run_ended(&report, dry_run);
        let Some(secs) = opts.interval else { break };
        // Until the next run: a stop signal ends the loop, SIGHUP reloads.
        let next = Instant::now() + Duration::from_secs_f64(secs);
        let stop = loop {
            use crate::service::signals::Wake;
            let left = next.saturating_duration_since(Instant::now());
            match signals.next(|| async move {
                tokio::time::sleep(left).await;
                Wake::Ended
            }) {
                Wake::Signal(_) => break true,
                Wake::Ended => break false,
                _ => reload(&mut session, &mut parts, global.verbose, dry_run),
            }
        };
        if stop {
            break;
        }
    }
    let deadline = Duration::from_secs_f64(session.config.core.shutdown_timeout);
    clean_up(&parts, deadline, !dry_run);
    metrics::relay().cleanup();
    Ok(all_ok)
}

/// The threads of a run step, and how they ended.
struct Step {
    done_tx: Option<mpsc::Sender<(&'static str, Result<(), String>)>>,
    done_rx: mpsc::Receiver<(&'static str, Result<(), String>)>,
    running: Vec<&'static str>,
}

impl Step {
    fn new() -> Self {
        let (done_tx, done_rx) = mpsc::channel();
        Step {
            done_tx: Some(done_tx),
            done_rx,
            running: Vec::new(),
        }
    }

    fn spawn(&mut self, name: &'static str, f: Box<dyn FnOnce() -> Result<(), String> + Send>) {
        let Some(done_tx) = &self.done_tx else { return };
        let done = done_tx.clone();
        self.running.push(name);
        let spawned = std::thread::Builder::new()
            .name(format!("gordon-janitor-{name}"))
            .spawn(move || {
                let _ = done.send((name, f()));
            });
        if let Err(e) = spawned {
            let _ = done_tx.send((name, Err(format!("cannot start a thread: {e}"))));
        }
    }

    /// Waits for every thread until `until`; returns whether all finished (each
    /// failure, and each thread still running at `until`, is added to `failures`).
    fn wait(mut self, until: Instant, timeout: Duration, failures: &mut Vec<String>) -> bool {
        self.done_tx = None;
        while !self.running.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            match self.done_rx.recv_timeout(left) {
                Ok((name, result)) => {
                    self.running.retain(|n| *n != name);
                    match result {
                        Ok(()) => tracing::debug!(plugin = name, "Janitor plugin finished."),
                        Err(error) => {
                            tracing::error!(plugin = name, %error, "Janitor plugin failed.");
                            failures.push(format!("plugin `{name}` failed: {error}"));
                        }
                    }
                }
                Err(_) => {
                    for name in &self.running {
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
                    return false;
                }
            }
        }
        true
    }
}

/// One run: authority -> reconciler -> the plan, checked -> publisher (or printed).
fn run_once(parts: &Parts, opts: &Options, timeout: Duration) -> RunReport {
    let until = Instant::now() + timeout;
    let (rr_tx, rr_rx) = bounded::<ZoneRecords>(16);
    let (ch_tx, ch_rx) = bounded::<EventMessage>(8192);
    let (zones, changes) = (rr_rx.sent_counter(), ch_rx.sent_counter());
    let mut step = Step::new();
    let authority = Arc::clone(&parts.authority.1);
    step.spawn(
        parts.authority.0,
        Box::new(move || authority.run(rr_tx).map_err(|e| e.message().into())),
    );
    let reconciler = Arc::clone(&parts.reconciler.1);
    step.spawn(
        parts.reconciler.0,
        Box::new(move || reconciler.run(rr_rx, ch_tx).map_err(|e| e.message().into())),
    );
    // Every change is held until the plan is complete: the threshold is about the
    // plan as a whole.
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&held);
    step.spawn(
        "plan",
        Box::new(move || {
            let mut buf = Vec::new();
            while ch_rx.recv_batch(&mut buf, 1024, None) != Recv::Ended {}
            *sink.lock().unwrap_or_else(|p| p.into_inner()) = buf;
            Ok(())
        }),
    );
    let mut failures = Vec::new();
    let complete = step.wait(until, timeout, &mut failures);
    let plan: Vec<EventMessage> =
        std::mem::take(&mut *held.lock().unwrap_or_else(|p| p.into_inner()));
    let report = |published: u64, failures: Vec<String>, status: Status| RunReport {
        zones: zones.get(),
        changes: changes.get(),
        published,
        failures,
        status,
    };
    let figures = safety::figures(&plan);
    let over: Vec<String> = figures
        .values()
        .filter(|f| f.over(&opts.threshold))
        .map(|f| f.refusal(&opts.threshold))
        .collect();
    if opts.dry_run {
        print!("{}", plan::render(&plan, &opts.threshold));
        for line in &over {
            println!("over the change threshold: {line}; a run would be refused without --force");
        }
        let status = if failures.is_empty() {
            Status::Ok
        } else {
            Status::Failed
        };
        return report(0, failures, status);
    }
    if !complete {
        if !plan.is_empty() {
            tracing::error!(
                changes = plan.len(),
                "The plan is incomplete: publishing none of it."
            );
        }
        return report(0, failures, Status::Failed);
    }
    if !over.is_empty() {
        if opts.force {
            for line in &over {
                tracing::warn!("--force: publishing a plan over the change threshold: {line}");
            }
        } else {
            print!("{}", plan::render(&plan, &opts.threshold));
            let mut refused = failures;
            for line in over {
                tracing::error!("Refusing the plan: {line}.");
                refused.push(format!(
                    "{line}; nothing was published: check the plan, then run again with --force to apply it"
                ));
            }
            return report(0, refused, Status::Refused);
        }
    }
    let published = plan.len() as u64;
    let mut step = Step::new();
    let (pub_tx, pub_rx) = bounded::<EventMessage>(8192);
    let publisher = Arc::clone(&parts.publisher.1);
    step.spawn(
        parts.publisher.0,
        Box::new(move || publisher.run(pub_rx).map_err(|e| e.message().into())),
    );
    step.spawn(
        "plan-feed",
        Box::new(move || {
            // A publisher that stopped early closes its side: the rest is dropped,
            // and the publisher's own failure says why.
            let _ = pub_tx.send_batch(plan);
            Ok(())
        }),
    );
    step.wait(until, timeout, &mut failures);
    let status = if failures.is_empty() {
        Status::Ok
    } else {
        Status::Failed
    };
    report(published, failures, status)
}

/// Logs the end of a run and emits its metrics.
fn run_ended(report: &RunReport, dry_run: bool) {
    events::janitor_run_ended(
        report.status.name(),
        dry_run,
        report.zones,
        report.changes,
        report.published,
    );
    if report.status == Status::Ok && !dry_run {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        events::janitor_last_success(now);
    }
    if report.failures.is_empty() {
        tracing::info!(
            zones = report.zones,
            changes = report.changes,
            published = report.published,
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
            status = report.status.name(),
            "Janitor run failed."
        );
    }
}
