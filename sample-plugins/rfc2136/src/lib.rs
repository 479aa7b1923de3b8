//! `dns.rfc2136` (phase `publish`): publishes DNS events to a primary server (BIND,
//! Knot, PowerDNS, ...) as RFC 2136 dynamic updates signed with TSIG.
//!
//! - An **addition replaces** the record set of its name and type (one UPDATE with
//!   "delete RRset" then "add RR" for each rrdata, applied atomically by the
//!   server); a **deletion removes** the record set. A TTL of 0 ("not set") becomes
//!   `default_ttl`. Names may be relative to `zone` (the `dns.enricher` makes them
//!   absolute); SOA and apex NS records are refused, as are names outside `zone`.
//!   TXT rrdatas are read as the event format defines them
//!   (`gordon_plugin_api::event_json::txt_strings`: the text itself, split into
//!   strings of 255 bytes only when longer, or, when it starts with `"`, quoted
//!   strings, each sent as its own character-string).
//! - **Batches.** All messages of a batch go out as one UPDATE per `max_batch`
//!   record sets (and at most 64 000 bytes, counted with name compression: about
//!   450 new A record sets and their owner records), the UPDATEs of a batch evened
//!   out and up to 4 of them in flight at once, so that the server has the next one
//!   at hand while it applies one. Messages for the same name and type are folded:
//!   the last one wins, and order is kept (an UPDATE that names a name an earlier
//!   UPDATE of the batch also names waits for it). When the server rejects an
//!   UPDATE for something a record may have caused (FORMERR, REFUSED by a per-name
//!   policy, NOTZONE, a failed prerequisite), the UPDATE is split in halves and
//!   resent until each bad record set stands alone, so one bad record fails only its
//!   own message(s); folded messages are then retried one by one.
//! - **Retries.** Timeouts, refused connections, I/O errors and SERVFAIL are retried
//!   `retries` times with exponential backoff (`retry_backoff_ms`, doubling, ±25 %
//!   jitter); other failures are not. Every retry has a new id and signature. With
//!   several servers, a retry is another round over all of them (below).
//! - **Fail-over** (`servers`). `server` names one server, `servers` a list to fail
//!   over between, in order (one or the other, not both); each entry is an IP
//!   address or a host name, with a port (53 when left out). Every exchange —
//!   UPDATE, query, AXFR — goes to the server that answered last (the first at
//!   start, and again after a reload that changes the configuration) and stays
//!   there; when that server cannot be reached (no answer within `timeout_ms`, a
//!   refused connection, another I/O error, a name that does not resolve) the same
//!   exchange goes at once to the next server, wrapping around, and the one that
//!   answers is used from then on. It does not go back to an earlier server by
//!   itself. An answer is never a reason to fail over: REFUSED, NOTAUTH, a TSIG
//!   error or SERVFAIL (retried at the same server) are reported as with one
//!   server. When no server can be reached, the round is retried after the
//!   backoff, and the error lists each server and why ("no server could be
//!   reached for zone example.com.: 192.0.2.1:53: no answer within 5000 ms;
//!   ns2.example.com:53 (192.0.2.2:53): connection refused"). A fail-over is
//!   logged as a warning naming both servers. A host name is resolved by the
//!   system (`/etc/hosts`, DNS) when first needed, its addresses tried in turn (the
//!   last to answer first), and resolved again after none of them could be
//!   reached: a changed address of the server's name is followed without a
//!   restart. Errors name the server in use.
//! - **Errors** name the server and the zone: REFUSED ("server 127.0.0.1:53
//!   refused the update for zone example.com.: check allow-update / the key's
//!   permissions (REFUSED)"), NOTAUTH, NOTZONE, FORMERR, and "TSIG authentication
//!   failed with server ... for zone ...: wrong key name, secret or algorithm
//!   (BADSIG)" for BADSIG, BADKEY (Knot also answers BADKEY when its ACL does not let
//!   the key update the zone) and BADTIME. Such zone-wide failures fail every message
//!   of the UPDATE and change nothing.
//! - **Verification** (`verify`): after an UPDATE succeeded, `query` asks for every
//!   changed record set, `axfr` transfers the zone once; a message fails when the
//!   server does not serve exactly the records and TTL sent (BIND silently ignores,
//!   for example, an address record added next to a CNAME).
//! - **Ownership** (always on, external-dns style): each record set `(name, type)`
//!   it publishes gets a TXT owner record `heritage=gordon,owner=<owner_id>`
//!   (`owner_id` defaults to `gordon`) at a sibling name: the first label prefixed
//!   with `_gordon-<type>-` (`_gordon-a-www.example.com.` for `www.example.com.` A,
//!   `_gordon-mx.example.com.` for the apex MX). It never shares a name with user
//!   data. Before an UPDATE the owner records are queried; the UPDATE then carries
//!   RFC 2136 prerequisites so that nothing changed between the query and the
//!   UPDATE: "owner record set is exactly ours" for a set we own, "neither the set
//!   nor an owner record exists" for a new one (the owner record is created in the
//!   same UPDATE). A set that exists without our owner record — made by hand, by
//!   another tool, or by another owner id — fails its message with "... is not
//!   owned by gordon owner X ...", and nothing is touched. Deleting a set deletes
//!   its owner record. Names whose first label starts with `_gordon-` are refused.
//!   Opt-ins, for migrating: `adopt = true` takes over sets that have no owner
//!   record at all (prerequisite: still none), `adopt_from_owner = "old-id"` those
//!   marked by another owner id (prerequisite: still exactly that mark); both write
//!   our owner record. `manage_unowned = true` drops the prerequisites and changes
//!   any set, whoever made it (owner records are still written) — logged as a
//!   warning at start; it is the behaviour of a deployment without ownership.
//! - **Security.** The secret comes from a key file or an environment variable; it
//!   never appears in logs, errors or `Debug` output. Every answer reporting success
//!   must be signed with the key (an unsigned NOERROR could be forged).
//! - **Transport.** UDP for messages up to 512 bytes, TCP for larger ones (a batch
//!   almost always) and when a UDP answer is truncated; `transport = "tcp"` always
//!   uses TCP. All network I/O runs on the plugin's own tokio runtime.
//! - **Metrics** (tag `zone`): `rfc2136.updates` (UPDATE messages sent),
//!   `rfc2136.changes` (record sets changed), `rfc2136.failures` (failed messages,
//!   tag `rcode`: `REFUSED`, `BADSIG`, `timeout`, `not_owned`, `mismatch`,
//!   `invalid`, ...), `rfc2136.update_seconds` (per UPDATE, retries included),
//!   `rfc2136.request_seconds` (per attempt), `rfc2136.retries`, `rfc2136.failovers`
//!   (exchanges answered by another server than the one in use before).
//! - **Live** (ABI 1.3). `gordon check --connect` and the host, before creating the
//!   plugin, run `validate_dependencies`: a TSIG-signed SOA query for `zone` (at
//!   most 3 s per try, one retry), which fails naming the server and the zone when
//!   the server is unreachable, refuses the key (BADKEY, BADSIG, BADTIME) or does
//!   not serve the zone with authority. With `servers`, every server is queried on
//!   its own, at once, and the check fails when any of them fails ("1 of the 2
//!   servers of `servers` failed the check (192.0.2.2:53 passed): cannot resolve
//!   the host name of server ns1.exmaple.com:53 ..."): a mistyped or dead fail-over
//!   server is reported before it is needed. At start-up the host logs that as a
//!   warning and starts the plugin anyway. The action `probe` (optional `zone`,
//!   default the configured one) checks that the key may update the zone without
//!   changing it: a signed UPDATE whose one prerequisite ("name is in use" for a
//!   fresh `_gordon-probe-<random>.<zone>`) cannot hold and that changes nothing;
//!   the server authenticates and authorises the key first, then answers NXDOMAIN.
//!   It answers `{"zone", "server", "key", "may_update", "rcode", "elapsed_ms"}`,
//!   with `"error"` when `may_update` is false (REFUSED, NOTAUTH, a TSIG error, or
//!   an unsigned answer). A reload applies every key live (`apply_config`): the
//!   next batch uses the new servers, key, TTL and the rest; a batch in flight
//!   finishes with the old ones.
//!
//! The DNS wire format and TSIG are implemented here (`wire.rs`, `tsig.rs`,
//! `client.rs`, on the `hmac` and `sha2` crates) rather than taken from hickory: the
//! plugin needs only UPDATE, a query, AXFR and TSIG, and doing them itself gives
//! exact control over error mapping (hickory reports a wrong key as a "truncated
//! HMAC" error) and keeps the build small. The test suite checks every path against
//! real BIND and Knot servers.
//!
//! # Configuration
//!
//! A plugin named `dns.rfc2136` gets the `["dns"]` table deep-merged with
//! `["dns.rfc2136"]`.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `zone` | required | shared: the zone, an absolute name ending in `.` |
//! | `default_ttl` | `300` | shared: TTL of events with TTL 0; 60..=86400 |
//! | `server` | — | the primary: `HOST:port`, `IP:port` or `[IPv6]:port`; port 53 if left out; a host name is resolved when needed and again after a failure to reach it. Exactly one of this and `servers` |
//! | `servers` | — | servers to fail over between, in order, each as `server`: `["ns1.example.com", "192.0.2.2:53"]`; not empty, no server twice |
//! | `tsig_key_file` | — | a BIND key file (`tsig-keygen` output); exactly one of this and `tsig_secret_env` |
//! | `tsig_secret_env` | — | the name of an environment variable holding the base64 secret |
//! | `tsig_key_name` | — | the key name; required with `tsig_secret_env`; selects the key of a file with several |
//! | `tsig_algorithm` | `hmac-sha256` | `hmac-sha256`, `hmac-sha384` or `hmac-sha512`; with a key file, must match it |
//! | `timeout_ms` | `5000` | how long to wait for each answer; 1..=600000 |
//! | `retries` | `3` | retries of transient failures; 0..=20 |
//! | `retry_backoff_ms` | `200` | the first retry's pause, doubled each retry; 0..=60000 |
//! | `max_batch` | `500` | the most record-set changes in one UPDATE; 1..=10000 |
//! | `verify` | `"none"` | `"none"`, `"query"` or `"axfr"` |
//! | `owner_id` | `"gordon"` | the owner id written to and required in owner records; 1..=64 printable characters without `,` `=` `"` `\` `;` |
//! | `adopt` | `false` | take over record sets that have no owner record (migrating a deployment from before ownership) |
//! | `adopt_from_owner` | — | take over record sets marked by this other owner id (a renamed instance) |
//! | `manage_unowned` | `false` | DANGER: change and delete any record set, whoever made it; a warning at start |
//! | `transport` | `"auto"` | `"auto"` or `"tcp"` |
//!
//! `gordon check` (`validate_config`) checks the syntax of `server` / `servers`
//! (resolving no name: a name that does not resolve is reported by `gordon check
//! --connect` and at start-up), the algorithm, that exactly one key source is given,
//! and reads and parses the key file (or the variable).
//!
//! ```toml
//! ["dns"]
//! zone = "example.com."
//! default_ttl = 300
//!
//! ["dns.rfc2136"]
//! server = "192.0.2.53:53"
//! # or, to fail over: servers = ["ns1.example.com", "ns2.example.com:53", "192.0.2.54"]
//! tsig_key_file = "/etc/gordon/gordon-key.key"   # key "gordon-key" { algorithm hmac-sha256; secret "..."; };
//! # or: tsig_secret_env = "GORDON_TSIG_SECRET", tsig_key_name = "gordon-key", tsig_algorithm = "hmac-sha512"
//! max_batch = 500
//! retries = 3
//! verify = "query"
//! owner_id = "gordon"              # the default
//! ```
//!
//! On the server, allow the key to update the zone, e.g. BIND
//! `allow-update { key "gordon-key"; };` and Knot
//! `acl: [{ id: gordon, key: gordon-key, action: update }]`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod changes;
mod client;
mod config;
mod error;
mod live;
mod publish;
pub mod reconciler;
mod servers;
mod tsig;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use gordon_plugin_api::serde_json::{Map, Value};
use gordon_plugin_api::{
    ownership, tracing, ActionSpec, ConfigChange, ConfigKey, EventMessage, Failures,
    MessageHandler, Param, ParamType, Plugin, PluginContext, PluginError,
};

pub use config::{Rfc2136Config, Transport, Verify};

use changes::Rules;
use client::Client;
use config::{servers_text, Settings};
use publish::Publisher;
use servers::Pool;

gordon_plugin_api::export_plugins!(handler Rfc2136, reconciler reconciler::DnsReconciler);

/// `dns.rfc2136` (phase `publish`): sends each batch of events to the server as
/// TSIG-signed RFC 2136 updates.
#[derive(Debug)]
pub struct Rfc2136 {
    /// What the configuration in force resolved to; swapped whole by
    /// `apply_config`, and taken once per batch.
    live: RwLock<Arc<Publishing>>,
    ctx: PluginContext,
}

/// One configuration's publisher.
#[derive(Debug)]
struct Publishing {
    settings: Settings,
    publisher: Publisher,
    default_ttl: u32,
}

impl Publishing {
    /// The publisher for `s`, logging what it publishes to.
    fn new(s: Settings, ctx: &PluginContext) -> Publishing {
        tracing::info!(
            servers = %servers_text(&s.servers),
            zone = %s.zone,
            key = %s.key.name(),
            algorithm = s.key.algorithm().name(),
            owner_id = %s.ownership.owner_id,
            adopt = s.ownership.adopt,
            adopt_from_owner = s.ownership.adopt_from_owner.as_deref().unwrap_or(""),
            "Publishing by RFC 2136 update."
        );
        if s.ownership.manage_unowned {
            tracing::warn!(zone = %s.zone, "{}", ownership::MANAGE_UNOWNED_WARNING);
        }
        let client = Client {
            servers: Arc::new(Pool::new(&s.servers)),
            zone_text: s.zone.to_string(),
            zone: s.zone.clone(),
            key: s.key.clone(),
            timeout: s.timeout,
            retries: s.retries,
            backoff: s.backoff,
            tcp_only: s.tcp_only,
            metrics: ctx.metrics().into(),
        };
        let value = changes::owner_rdata(&s.ownership.owner_id);
        let previous = s
            .ownership
            .adopt_from_owner
            .as_deref()
            .map(changes::owner_rdata)
            .unwrap_or_default();
        let publisher = Publisher {
            client: Arc::new(client),
            max_batch: s.max_batch,
            verify: s.verify,
            ownership: s.ownership.clone(),
            value,
            previous,
        };
        Publishing {
            default_ttl: s.default_ttl,
            settings: s,
            publisher,
        }
    }
}

impl Plugin for Rfc2136 {
    const NAME: &'static str = "dns.rfc2136";
    const DESCRIPTION: &'static str =
        "Publishes DNS events as RFC 2136 dynamic updates signed with TSIG";
    type Config = Rfc2136Config;

    fn config_keys() -> Vec<ConfigKey> {
        ConfigKey::of::<Self::Config>()
    }

    fn validate_config(config: &Rfc2136Config) -> Result<(), PluginError> {
        Settings::resolve(config).map(|_| ())
    }

    /// Sends a TSIG-signed SOA query for the zone, with a short timeout: fails,
    /// naming the server and the zone, when the server is unreachable, refuses the
    /// key (BADKEY, BADSIG, BADTIME) or does not serve the zone with authority.
    fn validate_dependencies(config: &Rfc2136Config) -> Result<(), PluginError> {
        live::check_server(&Settings::resolve(config)?)
    }

    fn new(config: Rfc2136Config, ctx: PluginContext) -> Result<Self, PluginError> {
        let s = Settings::resolve(&config)?;
        Ok(Rfc2136 {
            live: RwLock::new(Arc::new(Publishing::new(s, &ctx))),
            ctx,
        })
    }

    fn actions() -> Vec<ActionSpec> {
        vec![ActionSpec::new(
            "probe",
            "Checks, without changing the zone, that the server accepts the TSIG key for updates of the zone",
        )
        .param(Param::optional(
            "zone",
            ParamType::String,
            "The zone to probe (absolute); default: the configured zone",
        ))]
    }

    /// `probe [zone=Z]`: see `live::probe`.
    fn invoke(&self, action: &str, params: &Map<String, Value>) -> Result<Value, PluginError> {
        match action {
            "probe" => {
                let zone = match params.get("zone") {
                    None => None,
                    Some(Value::String(zone)) => Some(zone.as_str()),
                    Some(other) => {
                        return Err(PluginError::new(format!(
                            "`zone` must be a string, not {other}"
                        )))
                    }
                };
                let live = self.live();
                self.ctx.block_on(live::probe(&live.publisher.client, zone))
            }
            other => Err(PluginError::new(format!(
                "{} has no action `{other}`",
                Self::NAME
            ))),
        }
    }

    /// Applies every key live: batches from now on use the new server, key, zone,
    /// TTL, ownership and retry settings; a batch being published finishes with the
    /// old ones. The same configuration again changes nothing.
    fn apply_config(&self, config: Rfc2136Config) -> Result<ConfigChange, PluginError> {
        let s = Settings::resolve(&config)?;
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        if live.settings != s {
            *live = Arc::new(Publishing::new(s, &self.ctx));
        }
        Ok(ConfigChange::Applied)
    }
}

impl MessageHandler for Rfc2136 {
    const PHASE: &'static str = "publish";

    fn handle(&self, msg: &mut EventMessage) -> Result<(), PluginError> {
        match self.process(std::slice::from_mut(msg)).into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    fn handle_batch(&self, msgs: &mut [EventMessage], failures: &mut Failures) {
        for (index, error) in self.process(msgs) {
            failures.push(index, error);
        }
    }
}

impl Rfc2136 {
    /// The publisher of the configuration in force.
    fn live(&self) -> Arc<Publishing> {
        Arc::clone(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Publishes a batch; returns the failed messages by index, in order.
    fn process(&self, msgs: &mut [EventMessage]) -> Vec<(usize, PluginError)> {
        let live = self.live();
        let client = &live.publisher.client;
        let rules = Rules {
            zone: &client.zone,
            default_ttl: live.default_ttl,
        };
        let mut failed: HashMap<usize, PluginError> = HashMap::new();
        let mut edits = Vec::with_capacity(msgs.len());
        for (i, msg) in msgs.iter().enumerate() {
            match changes::validate(i, msg, rules) {
                Ok(edit) => edits.push(edit),
                Err(error) => {
                    tracing::warn!(msg_id = %msg.msg_id(), %error, "Refusing an event.");
                    let tags = [("zone", client.zone_text.as_str()), ("rcode", "invalid")];
                    client.metrics.incr("rfc2136.failures", 1.0, &tags);
                    failed.insert(i, error);
                }
            }
        }
        let changes = changes::fold(edits);
        if !changes.is_empty() {
            let server_failed = self.ctx.block_on(live.publisher.publish(changes));
            failed.extend(server_failed);
        }
        let note = format!(
            "Published to server {} zone {} by RFC 2136 update",
            client.server_in_use(),
            client.zone
        );
        for (i, msg) in msgs.iter_mut().enumerate() {
            if !failed.contains_key(&i) {
                msg.append_to_history(&note, Self::NAME);
            }
        }
        let mut failed: Vec<(usize, PluginError)> = failed.into_iter().collect();
        failed.sort_by_key(|(i, _)| *i);
        failed
    }
}
