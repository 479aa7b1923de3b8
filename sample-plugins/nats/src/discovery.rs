//! `nats.discovery`: cluster membership in a NATS JetStream key-value bucket.
//!
//! Each member is one key, `CLUSTER.NODE`, whose value is the member as JSON.
//! nats-server 2.9 has no per-key expiry, so liveness is a heartbeat: while a
//! service is up, its reporter re-puts its key every `heartbeat` seconds (a
//! third of `expiry` by default), and a watcher drops a member whose last put is
//! older than `expiry` — a node killed with `kill -9` leaves the membership
//! within `expiry` plus one second (the watcher's tick). The bucket's own
//! `max_age` is `expiry` too, so the store does not keep dead entries.
//!
//! A watcher that loses the server reports the store unreadable (the host then
//! changes nothing) and, once connected again, watches afresh: until `expiry`
//! has passed it does not claim a complete view, so members that have not
//! heart-beaten since the outage are not deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{
    tokio, tracing, ConfigKey, Discovery, Member, Membership, MembershipSender, Plugin,
    PluginContext, PluginError, Service,
};
use serde::Deserialize;

use crate::consumer::{connect_until, Connected};

/// `["nats.discovery"]`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// NATS servers.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// The key-value bucket (created if missing).
    #[serde(default = "default_bucket")]
    pub bucket: String,
    /// Seconds after its last heartbeat that a member is gone.
    #[serde(default = "default_expiry")]
    pub expiry: f64,
    /// Seconds between a reporter's heartbeats (default: a third of `expiry`).
    pub heartbeat: Option<f64>,
    /// Seconds `connect` may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
}

fn default_servers() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".into()]
}
fn default_bucket() -> String {
    "gordon_discovery".into()
}
const fn default_expiry() -> f64 {
    10.0
}
const fn default_connect_timeout() -> f64 {
    5.0
}

impl DiscoveryConfig {
    fn expiry(&self) -> Duration {
        Duration::from_secs_f64(self.expiry)
    }
    fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat.unwrap_or(self.expiry / 3.0))
    }
}

/// The plugin.
pub struct NatsDiscovery {
    cfg: DiscoveryConfig,
    client: tokio::sync::Mutex<Option<(async_nats::Client, kv::Store)>>,
    heartbeats: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    watches: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

fn key(service: &Service) -> String {
    format!("{}.{}", service.cluster, service.member.node)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NatsDiscovery {
    /// The bucket, connecting first if needed.
    async fn store(&self) -> Result<(async_nats::Client, kv::Store), PluginError> {
        let mut slot = self.client.lock().await;
        if let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let timeout = Duration::from_secs_f64(self.cfg.connect_timeout);
        let client = match connect_until(
            &self.cfg.servers,
            None,
            "gordon nats.discovery",
            tokio::time::sleep(timeout),
        )
        .await?
        {
            Connected::Client(c) => c,
            Connected::GaveUp { last_error, .. } => {
                return Err(PluginError::new(format!(
                    "cannot connect to NATS within {:.1} s: {last_error}",
                    timeout.as_secs_f64()
                )))
            }
        };
        let js = async_nats::jetstream::new(client.clone());
        let store = match js.get_key_value(&self.cfg.bucket).await {
            Ok(s) => s,
            Err(_) => {
                // The bucket's stream, made as the key-value conventions want it.
                // Not `create_key_value`: it first reads the account's limits in a
                // form nats-server 2.9 does not answer.
                use async_nats::jetstream::stream;
                let bucket = &self.cfg.bucket;
                js.get_or_create_stream(stream::Config {
                    name: format!("KV_{bucket}"),
                    subjects: vec![format!("$KV.{bucket}.>")],
                    max_messages_per_subject: 1,
                    max_age: self.cfg.expiry(),
                    storage: stream::StorageType::File,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: stream::DiscardPolicy::New,
                    ..Default::default()
                })
                .await
                .map_err(|e| PluginError::new(format!("cannot create bucket `{bucket}`: {e}")))?;
                js.get_key_value(bucket)
                    .await
                    .map_err(|e| PluginError::new(format!("cannot open bucket `{bucket}`: {e}")))?
            }
        };
        *slot = Some((client.clone(), store.clone()));
        Ok((client, store))
    }
}

impl Plugin for NatsDiscovery {
    const NAME: &'static str = "nats.discovery";
    const DESCRIPTION: &'static str =
        "Cluster membership in a NATS JetStream key-value bucket, kept alive by heartbeats";
    type Config = DiscoveryConfig;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(cfg: &DiscoveryConfig) -> Result<(), PluginError> {
        if !(cfg.expiry.is_finite() && cfg.expiry >= 1.0) {
            return Err(PluginError::new("`expiry` must be at least 1 second"));
        }
        if let Some(h) = cfg.heartbeat {
            if !(h.is_finite() && h > 0.0 && h < cfg.expiry) {
                return Err(PluginError::new(
                    "`heartbeat` must be positive and shorter than `expiry`",
                ));
            }
        }
        if cfg.bucket.is_empty()
            || !cfg
                .bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(PluginError::new(
                "`bucket` may hold letters, digits, `_` and `-` only",
            ));
        }
        if cfg.servers.is_empty() {
            return Err(PluginError::new("`servers` must name at least one server"));
        }
        Ok(())
    }

    fn new(cfg: DiscoveryConfig, _ctx: PluginContext) -> Result<Self, PluginError> {
        Ok(NatsDiscovery {
            cfg,
            client: tokio::sync::Mutex::new(None),
            heartbeats: Mutex::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
        })
    }
}

impl Discovery for NatsDiscovery {
    async fn connect(&self) -> Result<(), PluginError> {
        self.store().await.map(drop)
    }

    async fn disconnect(&self) -> Result<(), PluginError> {
        for (_, h) in lock(&self.heartbeats).drain() {
            h.abort();
        }
        for (_, w) in lock(&self.watches).drain() {
            w.abort();
        }
        if let Some((client, _)) = self.client.lock().await.take() {
            let _ = client.flush().await;
        }
        Ok(())
    }

    async fn start_watching(
        &self,
        cluster: &str,
        updates: MembershipSender,
    ) -> Result<(), PluginError> {
        let (client, store) = self.store().await?;
        let task = tokio::spawn(watch(
            client,
            store,
            cluster.to_owned(),
            self.cfg.expiry(),
            updates,
        ));
        if let Some(old) = lock(&self.watches).insert(cluster.to_owned(), task.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    async fn stop_watching(&self, cluster: &str) -> Result<(), PluginError> {
        if let Some(w) = lock(&self.watches).remove(cluster) {
            w.abort();
        }
        Ok(())
    }

    async fn report_up(&self, service: &Service) -> Result<(), PluginError> {
        let (_, store) = self.store().await?;
        let value = bytes::Bytes::from(serde_json::to_vec(&service.member).unwrap_or_default());
        let k = key(service);
        store
            .put(&k, value.clone())
            .await
            .map_err(|e| PluginError::new(format!("cannot put `{k}`: {e}")))?;
        let every = self.cfg.heartbeat();
        let beat_key = k.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = store.put(&beat_key, value.clone()).await {
                    tracing::warn!(key = %beat_key, error = %e, "Heartbeat failed; trying again.");
                }
            }
        });
        if let Some(old) = lock(&self.heartbeats).insert(k, task.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    async fn report_down(&self, service: &Service) -> Result<(), PluginError> {
        let k = key(service);
        if let Some(h) = lock(&self.heartbeats).remove(&k) {
            h.abort();
        }
        let (_, store) = self.store().await?;
        store
            .delete(&k)
            .await
            .map_err(|e| PluginError::new(format!("cannot delete `{k}`: {e}")))
    }
}

/// Nanoseconds since the epoch, now.
fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Follows one cluster's keys, sending its membership whenever it changes,
/// until the host stops the watch.
async fn watch(
    client: async_nats::Client,
    store: kv::Store,
    cluster: String,
    expiry: Duration,
    updates: MembershipSender,
) {
    let mut last: Option<Membership> = None;
    let send = |m: Membership, last: &mut Option<Membership>| {
        let changed = last.as_ref() != Some(&m);
        *last = Some(m.clone());
        (changed, m)
    };
    loop {
        // (Re)start: wait for the server, then read the bucket afresh.
        while client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut entries = match store.watch_with_history(format!("{cluster}.*")).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(cluster, error = %e, "Cannot watch the bucket; retrying.");
                let (changed, m) = send(down(&cluster), &mut last);
                if changed && updates.send(&m).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let started = Instant::now();
        let mut members: BTreeMap<String, (Member, i128)> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut seen_history = false;
        loop {
            tokio::select! {
                entry = entries.next() => match entry {
                    Some(Ok(e)) => {
                        let node = e.key.rsplit('.').next().unwrap_or_default().to_owned();
                        match e.operation {
                            kv::Operation::Put => {
                                if let Ok(m) = serde_json::from_slice::<Member>(&e.value) {
                                    members.insert(node, (m, e.created.unix_timestamp_nanos()));
                                }
                            }
                            kv::Operation::Delete | kv::Operation::Purge => {
                                members.remove(&node);
                            }
                        }
                        seen_history |= e.delta == 0;
                        if !seen_history {
                            continue;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(cluster, error = %e, "The watch failed; watching afresh.");
                        break;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if client.connection_state() != async_nats::connection::State::Connected {
                        tracing::warn!(cluster, "Lost the NATS server; the membership is unknown until it is back.");
                        break;
                    }
                    seen_history = true;
                    let cutoff = now_ns() - expiry.as_nanos() as i128;
                    members.retain(|_, (_, at)| *at >= cutoff);
                }
            }
            let m = Membership {
                cluster: cluster.clone(),
                members: members.values().map(|(m, _)| m.clone()).collect(),
                store_ok: true,
                complete: started.elapsed() >= expiry,
            };
            let (changed, m) = send(m, &mut last);
            if changed && updates.send(&m).await.is_err() {
                return;
            }
        }
        let (changed, m) = send(down(&cluster), &mut last);
        if changed && updates.send(&m).await.is_err() {
            return;
        }
    }
}

fn down(cluster: &str) -> Membership {
    Membership {
        cluster: cluster.to_owned(),
        members: Vec::new(),
        store_ok: false,
        complete: false,
    }
}
