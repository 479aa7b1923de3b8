//! Discovery (Lighthouse's method, since 1.3): a plugin that keeps cluster
//! membership in a strongly consistent store. On each node, `gordon report` tells
//! it which of the node's services are up or down; on the DNS side, `gordon run`
//! has it watch clusters and turns each membership into record sets, published
//! through the normal route.
//!
//! The store's expiry is the plugin's business: a node that stops reporting
//! (killed, cut off) must drop out of the membership within a bounded time the
//! plugin documents, without a `report_down`.

use std::future::Future;

use abi_stable::std_types::RString;
use serde::{Deserialize, Serialize};

use crate::channel::{Closed, Sender};
use crate::error::PluginError;
use crate::plugin::Plugin;

/// One member of a cluster: a node offering the cluster's service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The node's name: one DNS label (`node1`).
    pub node: String,
    /// Its address (IPv4 or IPv6).
    pub address: String,
    /// The service's port.
    pub port: u16,
}

/// A service a node reports up or down: which cluster, and the member it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The cluster (`web`).
    pub cluster: String,
    /// The node, its address and port.
    #[serde(flatten)]
    pub member: Member,
}

/// What a watch sends each time a cluster changes: its whole live membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The cluster.
    pub cluster: String,
    /// Every live member, in any order.
    pub members: Vec<Member>,
    /// False when the store cannot be read: the membership is unknown and the
    /// host changes nothing (it never deletes records because a store is down).
    pub store_ok: bool,
    /// Whether a member's absence can be trusted: false right after a watch
    /// (re)starts, until the store's expiry has passed once (live members that
    /// have not reported again yet must not be deleted). The host adds members
    /// meanwhile but deletes none.
    pub complete: bool,
}

/// Where a watch sends memberships.
#[derive(Debug, Clone)]
pub struct MembershipSender {
    inner: Sender<RString>,
}

impl MembershipSender {
    pub(crate) fn new(inner: Sender<RString>) -> Self {
        MembershipSender { inner }
    }

    /// Sends a membership, waiting (without blocking the runtime) while the host's
    /// queue is full.
    ///
    /// # Errors
    /// [`Closed`] once the host stopped watching.
    pub async fn send(&self, membership: &Membership) -> Result<(), Closed<RString>> {
        let text = RString::from(serde_json::to_string(membership).unwrap_or_default());
        let rest = self.inner.try_send_batch(vec![text])?;
        if rest.is_empty() {
            return Ok(());
        }
        crate::context::send_waiting(&self.inner, rest).await
    }
}

/// A discovery plugin (Lighthouse's `DiscoveryMethod`). Its calls run on the
/// plugin's own runtime; a watch's work goes on in a task the plugin spawns.
///
/// # Example: a store held in memory
///
/// A real plugin talks to ZooKeeper, etcd, Consul or NATS (`nats.discovery` in
/// the sample plugins); the contract is the same.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::Mutex;
///
/// use gordon_plugin_api::{
///     export_plugins, Discovery, Membership, MembershipSender, Plugin, PluginContext,
///     PluginError, Service,
/// };
///
/// pub struct Memory {
///     members: Mutex<BTreeMap<(String, String), Service>>,
///     watchers: Mutex<Vec<(String, MembershipSender)>>,
/// }
///
/// impl Memory {
///     fn membership(&self, cluster: &str) -> Membership {
///         let members = self.members.lock().unwrap();
///         Membership {
///             cluster: cluster.into(),
///             members: members
///                 .values()
///                 .filter(|s| s.cluster == cluster)
///                 .map(|s| s.member.clone())
///                 .collect(),
///             store_ok: true,
///             complete: true, // nothing expires here: the view is always whole
///         }
///     }
///
///     async fn changed(&self, cluster: &str) {
///         let watchers: Vec<MembershipSender> = self
///             .watchers
///             .lock()
///             .unwrap()
///             .iter()
///             .filter(|(c, _)| c == cluster)
///             .map(|(_, tx)| tx.clone())
///             .collect();
///         let now = self.membership(cluster);
///         for tx in watchers {
///             let _ = tx.send(&now).await;
///         }
///     }
/// }
///
/// impl Plugin for Memory {
///     const NAME: &'static str = "acme.memory";
///     const DESCRIPTION: &'static str = "Cluster membership in memory";
///     type Config = gordon_plugin_api::serde_json::Value;
///     fn new(_: Self::Config, _: PluginContext) -> Result<Self, PluginError> {
///         Ok(Memory { members: Mutex::default(), watchers: Mutex::default() })
///     }
/// }
///
/// impl Discovery for Memory {
///     async fn connect(&self) -> Result<(), PluginError> {
///         Ok(())
///     }
///     async fn start_watching(&self, cluster: &str, updates: MembershipSender) -> Result<(), PluginError> {
///         let now = self.membership(cluster);
///         updates.send(&now).await.map_err(|_| PluginError::new("the host stopped watching"))?;
///         self.watchers.lock().unwrap().push((cluster.into(), updates));
///         Ok(())
///     }
///     async fn stop_watching(&self, cluster: &str) -> Result<(), PluginError> {
///         self.watchers.lock().unwrap().retain(|(c, _)| c != cluster);
///         Ok(())
///     }
///     async fn report_up(&self, service: &Service) -> Result<(), PluginError> {
///         let key = (service.cluster.clone(), service.member.node.clone());
///         self.members.lock().unwrap().insert(key, service.clone());
///         self.changed(&service.cluster).await;
///         Ok(())
///     }
///     async fn report_down(&self, service: &Service) -> Result<(), PluginError> {
///         let key = (service.cluster.clone(), service.member.node.clone());
///         self.members.lock().unwrap().remove(&key);
///         self.changed(&service.cluster).await;
///         Ok(())
///     }
/// }
///
/// export_plugins!(discovery Memory);
/// # fn main() {}
/// ```
pub trait Discovery: Plugin {
    /// Connects to the store.
    fn connect(&self) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Disconnects; watches end and reports stop (without `report_down`).
    fn disconnect(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }

    /// Starts watching `cluster`: sends its membership now and each time it
    /// changes, on `updates`, until [`Discovery::stop_watching`] or until the
    /// host closes `updates`. Returns once the watch is set up.
    fn start_watching(
        &self,
        cluster: &str,
        updates: MembershipSender,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Stops watching `cluster`.
    fn stop_watching(&self, cluster: &str) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Reports `service` up: the node is a member of its cluster until it reports
    /// down or stops reporting (the plugin keeps the entry alive meanwhile).
    fn report_up(&self, service: &Service) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Reports `service` down: the node leaves its cluster's membership now.
    fn report_down(
        &self,
        service: &Service,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;
}
