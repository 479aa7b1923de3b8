//! The servers a client talks to, in the order of fail-over (`server`, or the list
//! `servers`), and which of them answered last.
//!
//! Every exchange starts at the server that answered last (the first one at start):
//! stickiness, so that a dead first server costs one timeout, not one per
//! exchange. When a server cannot be reached — no answer in time, a refused
//! connection, another I/O error, a host name that does not resolve — the same
//! exchange goes to the next server of the list, wrapping around, until one answers
//! or every one was tried (one *round*; the client's retries repeat rounds). An
//! answer is an answer, even REFUSED or a TSIG error: it is returned as it is, and
//! that server is the one used from then on.
//!
//! A host name is resolved when first needed, and its addresses tried in the
//! resolver's order (the one that answered last first). When none of them can be
//! reached, they are forgotten, and the name is resolved again the next time: a
//! changed address record of the server's name is followed without a restart.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use gordon_plugin_api::tokio::net::lookup_host;
use gordon_plugin_api::tokio::time::timeout;
use gordon_plugin_api::tracing;

use crate::config::{Host, ServerSpec};
use crate::error::Failure;

/// The servers, in order, with what is known of them.
#[derive(Debug)]
pub(crate) struct Pool {
    servers: Vec<Server>,
    /// The index of the server that answered last: where every round starts.
    current: AtomicUsize,
    /// Tests only: host names resolve through this table instead of the system.
    #[cfg(test)]
    table: Option<test_table::Table>,
}

/// One server of the list.
#[derive(Debug)]
struct Server {
    spec: ServerSpec,
    addresses: Mutex<Addresses>,
}

/// What a host name resolved to.
#[derive(Debug, Default)]
struct Addresses {
    /// The addresses to try, the one that answered last first; `None` until the
    /// name is resolved, and again once none of them could be reached.
    current: Option<Vec<SocketAddr>>,
    /// What the last resolution found (to log a change).
    last: Vec<SocketAddr>,
}

/// One address to send an exchange to, and the server it belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    server: usize,
    /// The address to talk to.
    pub(crate) addr: SocketAddr,
}

impl Pool {
    /// The servers of `specs`, in order (not empty: the configuration requires one).
    pub(crate) fn new(specs: &[ServerSpec]) -> Pool {
        Pool {
            servers: specs
                .iter()
                .map(|spec| Server {
                    spec: spec.clone(),
                    addresses: Mutex::new(Addresses::default()),
                })
                .collect(),
            current: AtomicUsize::new(0),
            #[cfg(test)]
            table: None,
        }
    }

    /// The server in use: the one that answered last (the first before any did).
    pub(crate) fn in_use(&self) -> String {
        let i = self.current.load(Ordering::Relaxed);
        self.servers
            .get(i)
            .map_or_else(String::new, |s| s.spec.to_string())
    }

    /// A round over the servers, from the one in use, for an exchange about `zone`
    /// (named in the logs).
    pub(crate) fn round<'p>(&'p self, zone: &'p str) -> Round<'p> {
        let n = self.servers.len();
        let start = self.current.load(Ordering::Relaxed) % n.max(1);
        Round {
            pool: self,
            zone,
            left: (0..n).map(|i| (start + i) % n).collect(),
            at: None,
            failed: Vec::new(),
        }
    }

    /// `server (address)` for a host name, the address alone for an IP.
    fn label(&self, t: &Target) -> String {
        match self.servers.get(t.server) {
            Some(s) if matches!(s.spec.host, Host::Name(_)) => format!("{} ({})", s.spec, t.addr),
            _ => t.addr.to_string(),
        }
    }

    /// The addresses of server `i`: its IP, or what its name resolves to (resolved
    /// now unless known), within `wait`.
    async fn addresses(&self, i: usize, wait: Duration) -> Result<Vec<SocketAddr>, Failure> {
        let Some(server) = self.servers.get(i) else {
            return Err(Failure::Resolve("no such server".to_owned()));
        };
        let name = match &server.spec.host {
            Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, server.spec.port)]),
            Host::Name(name) => name,
        };
        let known = server.lock().current.clone();
        if let Some(addrs) = known {
            return Ok(addrs);
        }
        let found = self.resolve(name, server.spec.port, wait).await?;
        let mut addresses = server.lock();
        if addresses.last != found {
            let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
            tracing::info!(server = %server.spec, addresses = %shown.join(", "), "Resolved the DNS server's name.");
            addresses.last.clone_from(&found);
        }
        addresses.current = Some(found.clone());
        Ok(found)
    }

    /// Resolves `name`: its addresses with `port`, in the resolver's order, without
    /// duplicates; at least one.
    async fn resolve(
        &self,
        name: &str,
        port: u16,
        wait: Duration,
    ) -> Result<Vec<SocketAddr>, Failure> {
        #[cfg(test)]
        if let Some(table) = &self.table {
            return table.resolve(name, port);
        }
        let found = timeout(wait, lookup_host((name, port)))
            .await
            .map_err(|_| {
                Failure::Resolve(format!(
                    "no answer from the resolver within {} ms",
                    wait.as_millis()
                ))
            })?
            .map_err(|e| Failure::Resolve(e.to_string()))?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for a in found {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        if addrs.is_empty() {
            return Err(Failure::Resolve("the name has no address".to_owned()));
        }
        Ok(addrs)
    }

    /// Server `i` could not be reached at any of its addresses: resolve its name
    /// again next time.
    fn forget(&self, i: usize) {
        if let Some(server) = self.servers.get(i) {
            server.lock().current = None;
        }
    }

    /// `t` answered: its address is tried first from now on, and its server is the
    /// one in use. True when that is a change (a fail-over), which is logged.
    fn answered(&self, t: &Target) -> bool {
        let Some(server) = self.servers.get(t.server) else {
            return false;
        };
        if let Some(addrs) = server.lock().current.as_mut() {
            if let Some(pos) = addrs.iter().position(|a| *a == t.addr) {
                addrs[..=pos].rotate_right(1);
            }
        }
        let before = self.current.swap(t.server, Ordering::Relaxed);
        if before == t.server {
            return false;
        }
        let from = self
            .servers
            .get(before)
            .map_or_else(String::new, |s| s.spec.to_string());
        tracing::warn!(
            from = %from,
            to = %server.spec,
            address = %t.addr,
            "Failed over to another DNS server; it is used from now on."
        );
        true
    }
}

impl Server {
    fn lock(&self) -> std::sync::MutexGuard<'_, Addresses> {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Display for Pool {
    /// The servers, in order: `a, b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.servers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", s.spec)?;
        }
        Ok(())
    }
}

/// One exchange's pass over the servers: [`Round::next`] gives the addresses to try
/// in order; the caller reports each outcome with [`Round::failed`] or
/// [`Round::answered`].
pub(crate) struct Round<'p> {
    pool: &'p Pool,
    zone: &'p str,
    /// The servers not tried yet, in order.
    left: VecDeque<usize>,
    /// The server being tried, and its addresses not tried yet.
    at: Option<(usize, VecDeque<SocketAddr>)>,
    /// What each target that could not be reached did.
    failed: Vec<(String, Failure)>,
}

impl Round<'_> {
    /// The next address to try; `None` once every server was tried. A host name is
    /// resolved here (within `wait`); one that cannot be counts as a server that
    /// could not be reached.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Target> {
        loop {
            if let Some((server, addrs)) = &mut self.at {
                if let Some(addr) = addrs.pop_front() {
                    return Some(Target {
                        server: *server,
                        addr,
                    });
                }
                // None of its addresses answered.
                self.pool.forget(*server);
                self.at = None;
            }
            let server = self.left.pop_front()?;
            match self.pool.addresses(server, wait).await {
                Ok(addrs) => self.at = Some((server, addrs.into())),
                Err(f) => {
                    let name = self
                        .pool
                        .servers
                        .get(server)
                        .map_or_else(String::new, |s| s.spec.to_string());
                    self.note(name, f);
                }
            }
        }
    }

    /// `t` could not be reached (`f`).
    pub(crate) fn failed(&mut self, t: &Target, f: Failure) {
        let name = self.pool.label(t);
        self.note(name, f);
    }

    fn note(&mut self, name: String, f: Failure) {
        let more = self.at.as_ref().is_some_and(|(_, a)| !a.is_empty()) || !self.left.is_empty();
        let error = f.reason();
        if more {
            tracing::warn!(server = %name, zone = %self.zone, %error, "Cannot reach the DNS server; trying the next one.");
        } else {
            tracing::debug!(server = %name, zone = %self.zone, %error, "Cannot reach the DNS server.");
        }
        self.failed.push((name, f));
    }

    /// `t` answered (whatever it said). True when the server in use changed.
    pub(crate) fn answered(&self, t: &Target) -> bool {
        self.pool.answered(t)
    }

    /// Why the round failed: the one failure when a single address was tried,
    /// otherwise every server's (or address's).
    pub(crate) fn into_failure(mut self) -> Failure {
        if self.failed.len() == 1 {
            if let Some((_, f)) = self.failed.pop() {
                return f;
            }
        }
        Failure::Unreachable(self.failed)
    }
}

#[cfg(test)]
pub(crate) mod test_table {
    //! Host names resolved from a table the test changes, counting lookups.

    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use crate::error::Failure;

    /// Name -> addresses (with their ports: the configured port is ignored, so that
    /// test servers on ports of their own can stand for one name). Cloned, it is the
    /// same table.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Table {
        names: Arc<Mutex<HashMap<String, Vec<SocketAddr>>>>,
        lookups: Arc<AtomicUsize>,
    }

    impl Table {
        /// `name` resolves to `addrs` from now on (to nothing, when empty).
        pub(crate) fn set(&self, name: &str, addrs: &[SocketAddr]) {
            let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
            names.insert(name.to_owned(), addrs.to_vec());
        }

        /// How many times a name was looked up.
        pub(crate) fn lookups(&self) -> usize {
            self.lookups.load(Ordering::SeqCst)
        }

        pub(super) fn resolve(&self, name: &str, _port: u16) -> Result<Vec<SocketAddr>, Failure> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
            match names.get(name) {
                Some(addrs) if !addrs.is_empty() => Ok(addrs.clone()),
                _ => Err(Failure::Resolve(format!("{name} is not in the test table"))),
            }
        }
    }

    impl super::Pool {
        /// A pool whose host names resolve through `table`.
        pub(crate) fn with_table(specs: &[crate::config::ServerSpec], table: &Table) -> Self {
            let mut pool = super::Pool::new(specs);
            pool.table = Some(table.clone());
            pool
        }
    }
}
