//! The watch side of discovery inside `gordon run`: a source the host runs
//! itself. For each configured cluster it asks the discovery plugin to watch the
//! membership and turns every change into whole record-set additions and
//! deletions, which take the normal route (`consume -> ... -> publish ->
//! cleanup`), so the publishers' ownership rules apply.
//!
//! **Invariant:** a store that cannot be read never deletes records: a
//! membership marked `store_ok = false` changes nothing (and is logged once),
//! and one marked `complete = false` (a watch just (re)started) may add members
//! but removes none.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use abi_stable::std_types::RString;
use gordon_plugin_api::channel::{bounded, Receiver, Recv, Sender};
use gordon_plugin_api::{
    Action, EventMessage, Member, Membership, Phase, PluginError, ResourceRecord,
};

use super::records::{changes, record_sets, RecordSets};
use crate::config::{ClusterRecords, WatchConfig};
use crate::plugins::handle::{Discovery, HostSource};

/// The phase the watch's messages start in.
const START: Phase = Phase::new("consume");

/// Memberships waiting per cluster before the plugin's watch waits.
const QUEUE: usize = 64;

/// What the watch last published for one cluster.
#[derive(Default)]
struct Published {
    /// The members whose records are in DNS (as far as the watch knows).
    members: BTreeSet<Member>,
    /// Nothing published yet since this watch started: the first membership is
    /// published whole, whatever DNS holds.
    fresh: bool,
    /// The store was unreachable at the last membership (logged once).
    store_down: bool,
}

/// A discovery plugin's watch over its configured clusters.
pub struct Watch {
    name: &'static str,
    plugin: Arc<Discovery>,
    /// The clusters to watch at start.
    initial: Vec<ClusterRecords>,
    /// The clusters watched now.
    running: Mutex<Vec<Following>>,
    /// Where the watches' messages go, once started.
    events: Mutex<Option<Sender<EventMessage>>>,
    /// Set when a change was not published: the watches write their clusters'
    /// sets whole again.
    resync: Arc<AtomicBool>,
}

/// One cluster being followed.
struct Following {
    cfg: ClusterRecords,
    rx: Receiver<RString>,
    thread: JoinHandle<()>,
}

impl Watch {
    /// A watch of `clusters` through `plugin`.
    pub fn new(name: &'static str, plugin: Discovery, clusters: Vec<ClusterRecords>) -> Watch {
        Watch {
            name,
            plugin: Arc::new(plugin),
            initial: clusters,
            running: Mutex::new(Vec::new()),
            events: Mutex::new(None),
            resync: Arc::new(AtomicBool::new(false)),
        }
    }

    fn follow(
        &self,
        cfg: &ClusterRecords,
        events: &Sender<EventMessage>,
    ) -> Result<Following, PluginError> {
        let (tx, rx) = bounded::<RString>(QUEUE);
        self.plugin.start_watching(&cfg.cluster, tx)?;
        let (thread_cfg, events, source) = (cfg.clone(), events.clone(), self.name);
        let (reader, resync) = (rx.clone(), Arc::clone(&self.resync));
        let thread = std::thread::Builder::new()
            .name(format!("gordon-watch-{}", cfg.cluster))
            .spawn(move || follow(source, &thread_cfg, &reader, &events, &resync))
            .map_err(|e| PluginError::new(format!("cannot start a watch thread: {e}")))?;
        Ok(Following {
            cfg: cfg.clone(),
            rx,
            thread,
        })
    }

    fn unfollow(&self, f: Following) {
        if let Err(e) = self.plugin.stop_watching(&f.cfg.cluster) {
            tracing::warn!(source = self.name, cluster = %f.cfg.cluster, error = %e, "Cannot stop watching.");
        }
        f.rx.close();
        let _ = f.thread.join();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The messages that take DNS from `before` to `after` for `cfg`.
fn messages(cfg: &ClusterRecords, before: &RecordSets, after: &RecordSets) -> Vec<EventMessage> {
    let (write, delete) = changes(before, after);
    let mut out = Vec::new();
    for ((name, rtype), data) in write {
        let mut record = ResourceRecord::new(&name, rtype, &data);
        record.set_ttl(cfg.ttl);
        out.push(EventMessage::new(START, Action::Additions, record));
    }
    for ((name, rtype), data) in delete {
        let mut record = ResourceRecord::new(&name, rtype, &data);
        record.set_ttl(cfg.ttl);
        out.push(EventMessage::new(START, Action::Deletions, record));
    }
    out
}

/// Folds one membership into what was published; returns the messages to send.
fn apply(
    source: &str,
    cfg: &ClusterRecords,
    published: &mut Published,
    membership: Membership,
) -> Vec<EventMessage> {
    if !membership.store_ok {
        if !published.store_down {
            tracing::warn!(source, cluster = %cfg.cluster, "The discovery store cannot be read; the cluster's records are left as they are until it can.");
        }
        published.store_down = true;
        return Vec::new();
    }
    if published.store_down {
        tracing::info!(source, cluster = %cfg.cluster, "The discovery store is readable again.");
        published.store_down = false;
    }
    let mut members: BTreeSet<Member> = membership.members.into_iter().collect();
    if !membership.complete {
        // Right after a (re)start a live member may not have reported yet: keep
        // everyone published until the store's expiry has passed once.
        members.extend(published.members.iter().cloned());
    }
    let before = if published.fresh {
        RecordSets::new()
    } else {
        record_sets(cfg, &published.members)
    };
    let after = record_sets(cfg, &members);
    // Published whole once at first (nothing is known of what DNS holds), then
    // only what changed.
    let out = messages(cfg, &before, &after);
    if published.fresh && (membership.complete || !members.is_empty()) {
        published.fresh = false;
    }
    if !out.is_empty() {
        tracing::info!(source, cluster = %cfg.cluster, members = members.len(), records = out.len(), "Cluster membership changed.");
    }
    published.members = members;
    out
}

impl HostSource for Watch {
    fn start(&self, events: Sender<EventMessage>) -> Result<(), PluginError> {
        self.plugin.connect()?;
        for cfg in &self.initial {
            let f = self.follow(cfg, &events)?;
            lock(&self.running).push(f);
        }
        *lock(&self.events) = Some(events);
        tracing::info!(
            source = self.name,
            clusters = self.initial.len(),
            "Watching cluster membership."
        );
        Ok(())
    }

    /// Follows the clusters `watch` lists and stops following the others; a
    /// cluster whose records changed is followed afresh (its sets are written
    /// whole).
    fn reconfigure(&self, watch: &WatchConfig) -> Result<bool, PluginError> {
        let Some(events) = lock(&self.events).clone() else {
            return Ok(false);
        };
        let mut running = lock(&self.running);
        let (keep, drop): (Vec<Following>, Vec<Following>) = running
            .drain(..)
            .partition(|f| watch.clusters.contains(&f.cfg));
        for f in drop {
            tracing::info!(source = self.name, cluster = %f.cfg.cluster, "No longer watching (reload).");
            self.unfollow(f);
        }
        *running = keep;
        for cfg in &watch.clusters {
            if !running.iter().any(|f| f.cfg == *cfg) {
                tracing::info!(source = self.name, cluster = %cfg.cluster, "Watching (reload).");
                let f = self.follow(cfg, &events)?;
                running.push(f);
            }
        }
        Ok(true)
    }

    fn cleanup(&self, batch: &[EventMessage]) -> Result<(), PluginError> {
        let failed = batch.iter().filter(|m| m.phase() == Phase::DROP).count();
        if failed > 0 {
            // Within RESYNC the watches write their clusters' sets whole again.
            // The failure is in the log with its reason already.
            tracing::warn!(
                source = self.name,
                failed,
                "Record changes from cluster membership were not published; writing them again."
            );
            self.resync.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn shutdown(&self, deadline: Duration) -> Result<(), PluginError> {
        lock(&self.events).take();
        let running: Vec<Following> = lock(&self.running).drain(..).collect();
        for f in running {
            self.unfollow(f);
        }
        self.plugin.disconnect(deadline)
    }
}

/// How soon record sets that were not published are written again.
const RESYNC: Duration = Duration::from_secs(2);

/// Follows one cluster's memberships until the watch ends.
fn follow(
    source: &str,
    cfg: &ClusterRecords,
    rx: &Receiver<RString>,
    events: &Sender<EventMessage>,
    resync: &AtomicBool,
) {
    let mut published = Published {
        fresh: true,
        ..Published::default()
    };
    let mut batch = Vec::new();
    while rx.recv_batch(&mut batch, QUEUE, Some(RESYNC)) != Recv::Ended {
        if batch.is_empty() && resync.swap(false, Ordering::Relaxed) && !published.fresh {
            let whole = messages(
                cfg,
                &RecordSets::new(),
                &record_sets(cfg, &published.members),
            );
            if !whole.is_empty() && events.send_batch(whole).is_err() {
                return;
            }
        }
        for text in batch.drain(..) {
            let membership: Membership = match serde_json::from_str(text.as_str()) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(source, cluster = %cfg.cluster, error = %e, "A malformed membership from the discovery plugin; ignoring it.");
                    continue;
                }
            };
            let out = apply(source, cfg, &mut published, membership);
            if !out.is_empty() && events.send_batch(out).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClusterRecords {
        crate::discovery::records::test_cluster(None)
    }

    fn membership(members: &[(&str, &str)], store_ok: bool, complete: bool) -> Membership {
        Membership {
            cluster: "web".into(),
            members: members
                .iter()
                .map(|(n, a)| Member {
                    node: (*n).into(),
                    address: (*a).into(),
                    port: 80,
                })
                .collect(),
            store_ok,
            complete,
        }
    }

    fn summary(out: &[EventMessage]) -> Vec<String> {
        out.iter()
            .map(|m| {
                let data: Vec<&str> = m.record().rrdatas().collect();
                format!(
                    "{} {} {}",
                    m.action().as_str(),
                    m.record().name(),
                    data.join(",")
                )
            })
            .collect()
    }

    #[test]
    fn a_lost_store_or_an_incomplete_view_deletes_nothing() {
        let mut p = Published {
            fresh: true,
            ..Published::default()
        };
        let out = apply(
            "t",
            &cfg(),
            &mut p,
            membership(&[("n1", "10.0.0.1"), ("n2", "10.0.0.2")], true, false),
        );
        assert_eq!(
            summary(&out),
            [
                "additions n1.web.example.com. 10.0.0.1",
                "additions n2.web.example.com. 10.0.0.2",
                "additions web.example.com. 10.0.0.1,10.0.0.2",
            ]
        );
        // The store is gone: nothing changes.
        assert!(apply("t", &cfg(), &mut p, membership(&[], false, false)).is_empty());
        // Back, but not complete yet: n2 has not reported again; kept.
        assert!(apply(
            "t",
            &cfg(),
            &mut p,
            membership(&[("n1", "10.0.0.1")], true, false)
        )
        .is_empty());
        // Complete: n2 is gone.
        let out = apply(
            "t",
            &cfg(),
            &mut p,
            membership(&[("n1", "10.0.0.1")], true, true),
        );
        assert_eq!(
            summary(&out),
            [
                "additions web.example.com. 10.0.0.1",
                "deletions n2.web.example.com. 10.0.0.2",
            ]
        );
    }

    #[test]
    fn the_first_membership_is_written_whole() {
        let mut p = Published {
            fresh: true,
            members: [Member {
                node: "n1".into(),
                address: "10.0.0.1".into(),
                port: 80,
            }]
            .into(),
            ..Published::default()
        };
        // What this watch thinks it published before it started counts for
        // nothing: the first complete membership is written whole.
        let out = apply(
            "t",
            &cfg(),
            &mut p,
            membership(&[("n1", "10.0.0.1")], true, true),
        );
        assert_eq!(out.len(), 2, "{:?}", summary(&out));
        assert!(!p.fresh);
    }
}
