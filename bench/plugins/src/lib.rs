//! Trivial plugins for the pipeline benchmark: `bench.source` (offers `count`
//! messages in batches, at `rate` per second or as fast as it can), `bench.enrich`
//! (fills the TTL) and `bench.publish` (counts). The source measures end-to-end
//! latency from send to cleanup and writes a report at shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gordon_plugin_api::{
    export_plugins, Action, EventMessage, Failures, MessageHandler, Plugin, PluginContext,
    PluginError, RecordType, ResourceRecord, RunContext, Runnable,
};
use serde::Deserialize;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `bench.source` configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    count: u64,
    #[serde(default = "default_batch")]
    batch: usize,
    /// Messages per second; 0 = as fast as the pipeline takes them.
    #[serde(default)]
    rate: u64,
    report: Option<String>,
}

const fn default_batch() -> usize {
    256
}

/// The benchmark source.
pub struct Source {
    cfg: SourceConfig,
    cleaned: AtomicU64,
    latencies: Mutex<Vec<u32>>,
    started: Mutex<Option<Instant>>,
}

impl Plugin for Source {
    const NAME: &'static str = "bench.source";
    const DESCRIPTION: &'static str = "Offers messages as fast as the pipeline takes them";
    type Config = SourceConfig;
    fn new(cfg: SourceConfig, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Source {
            cfg,
            cleaned: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
            started: Mutex::new(None),
        })
    }
}

impl Runnable for Source {
    async fn run(&self, ctx: RunContext) -> Result<(), PluginError> {
        *self.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let batch = self.cfg.batch.max(1);
        let mut sent = 0u64;
        let pace = (self.cfg.rate > 0).then(|| {
            // Send in ticks of 1 ms.
            (self.cfg.rate / 1000).max(1) as usize
        });
        let mut tick = tokio_interval(pace.is_some());
        while sent < self.cfg.count {
            let n = pace.unwrap_or(batch).min((self.cfg.count - sent) as usize);
            if let Some(t) = tick.as_mut() {
                t.tick().await;
            }
            let stamp = now_ns();
            let msgs: Vec<EventMessage> = (0..n)
                .map(|_| {
                    let rec =
                        ResourceRecord::new("host.bench.example.", RecordType::A, ["10.0.0.1"]);
                    let mut m = ctx.events.message(Action::Additions, rec);
                    m.set_source_token(stamp);
                    m
                })
                .collect();
            if ctx.events.send_batch(msgs).await.is_err() {
                break;
            }
            sent += n as u64;
        }
        Ok(())
    }

    fn cleanup_batch(&self, msgs: &[EventMessage]) {
        self.cleaned.fetch_add(msgs.len() as u64, Ordering::Relaxed);
        if self.cfg.rate > 0 {
            let now = now_ns();
            let mut lat = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
            lat.extend(
                msgs.iter()
                    .map(|m| (now.saturating_sub(m.source_token()) / 1000) as u32),
            );
        }
    }

    async fn shutdown(&self) -> Result<(), PluginError> {
        let Some(path) = &self.cfg.report else {
            return Ok(());
        };
        let mut lat = self
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
        };
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|s| s.elapsed().as_secs_f64());
        let report = serde_json::json!({
            "cleaned": self.cleaned.load(Ordering::Relaxed),
            "elapsed_s": elapsed,
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
            "max_us": lat.last(),
        });
        std::fs::write(path, report.to_string())?;
        Ok(())
    }
}

fn tokio_interval(on: bool) -> Option<gordon_plugin_api::tokio::time::Interval> {
    on.then(|| {
        let mut t = gordon_plugin_api::tokio::time::interval(Duration::from_millis(1));
        t.set_missed_tick_behavior(gordon_plugin_api::tokio::time::MissedTickBehavior::Burst);
        t
    })
}

/// `bench.enrich`: fills the TTL.
pub struct Enrich;

impl Plugin for Enrich {
    const NAME: &'static str = "bench.enrich";
    const DESCRIPTION: &'static str = "Fills the TTL";
    type Config = serde_json::Value;
    fn new(_: serde_json::Value, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Enrich)
    }
}

impl MessageHandler for Enrich {
    const PHASE: &'static str = "enrich";
    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        if msg.record().ttl() == 0 {
            msg.record_mut().set_ttl(300);
        }
        Ok(())
    }
}

/// `bench.publish`: counts.
pub struct Publish {
    published: AtomicU64,
}

impl Plugin for Publish {
    const NAME: &'static str = "bench.publish";
    const DESCRIPTION: &'static str = "Counts published messages";
    type Config = serde_json::Value;
    fn new(_: serde_json::Value, _: PluginContext) -> Result<Self, PluginError> {
        Ok(Publish {
            published: AtomicU64::new(0),
        })
    }
}

impl MessageHandler for Publish {
    const PHASE: &'static str = "publish";
    fn handle(&self, _: &mut EventMessage) -> Result<(), PluginError> {
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn handle_batch(&self, msgs: &mut [EventMessage], _: &mut Failures) {
        self.published
            .fetch_add(msgs.len() as u64, Ordering::Relaxed);
    }
}

export_plugins!(runnable Source, handler Enrich, handler Publish);
