//! The live hooks of `dns.rfc2136`: the dependency check (a signed SOA query) and
//! the `probe` action (a signed UPDATE that cannot change anything).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gordon_plugin_api::serde_json::{json, Value};
use gordon_plugin_api::{tokio, PluginError};

use crate::client::{random_u64, Client, Meter};
use crate::config::{ServerSpec, Settings};
use crate::error::{rcode, rcode_name, Failure};
use crate::servers::Pool;
use crate::wire::Name;

/// The longest the dependency check waits for an answer (the configured
/// `timeout_ms` when shorter).
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs `fut` to completion on a runtime of its own, on a thread of its own: the
/// dependency check runs before the plugin (and its runtime) exists, maybe on a
/// thread that is inside some other runtime already.
fn block_on_own_runtime<F>(fut: F) -> Result<F::Output, PluginError>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| PluginError::new(format!("cannot start a runtime: {e}")))?;
            Ok(rt.block_on(fut))
        });
        worker
            .join()
            .unwrap_or_else(|_| Err(PluginError::new("the dependency check panicked")))
    })
}

/// The error text of a failed SOA query: TSIG failures, timeouts and the like as
/// every failure says them; other rcodes as answers to a query, not an update.
fn check_failure(f: &Failure, server: &str, zone: &str) -> String {
    match f {
        Failure::Rcode {
            rcode: code,
            tsig_error: 0,
        } if *code != rcode::NOTAUTH => format!(
            "server {server} answered {} to a TSIG-signed SOA query for zone {zone}: does it serve the zone, and may the key query it?",
            rcode_name(*code)
        ),
        other => other.describe(server, zone),
    }
}

/// `validate_dependencies`: a TSIG-signed SOA query for the zone, answered with
/// authority and signed, within [`CHECK_TIMEOUT`] and one retry — to every server
/// of `servers` on its own (all at once), since fail-over needs each to work. It
/// fails when any does not, naming each that failed and why (a host name that
/// does not resolve, a server that is down, a refused key, ...) and those that
/// passed. (At start-up the host only logs that as a warning.)
pub(crate) fn check_server(s: &Settings) -> Result<(), PluginError> {
    let client = |spec: &ServerSpec| Client {
        servers: Arc::new(Pool::new(std::slice::from_ref(spec))),
        zone_text: s.zone.to_string(),
        zone: s.zone.clone(),
        key: s.key.clone(),
        timeout: s.timeout.min(CHECK_TIMEOUT),
        retries: s.retries.min(1),
        backoff: s.backoff.min(Duration::from_millis(100)),
        tcp_only: s.tcp_only,
        metrics: Meter::off(),
    };
    let clients: Vec<Client> = s.servers.iter().map(client).collect();
    let results = block_on_own_runtime(async move {
        let mut checks = tokio::task::JoinSet::new();
        for (i, c) in clients.into_iter().enumerate() {
            checks.spawn(async move { (i, c.server_in_use(), c.check_zone().await) });
        }
        let mut results = Vec::new();
        while let Some(done) = checks.join_next().await {
            results.push(done.map_err(|_| PluginError::new("a dependency check task failed"))?);
        }
        results.sort_by_key(|(i, _, _)| *i);
        Ok::<_, PluginError>(results)
    })??;
    let zone = s.zone.to_string();
    let mut failed = Vec::new();
    let mut passed = Vec::new();
    for (_, server, result) in &results {
        match result {
            Ok(()) => passed.push(server.as_str()),
            Err(f) => failed.push(check_failure(f, server, &zone)),
        }
    }
    match (failed.len(), results.len()) {
        (0, _) => Ok(()),
        (_, 1) => Err(PluginError::new(failed.join("; "))),
        (n, total) => {
            let others = if passed.is_empty() {
                String::new()
            } else {
                format!(" ({} passed)", passed.join(", "))
            };
            Err(PluginError::new(format!(
                "{n} of the {total} servers of `servers` failed the check{others}: {}",
                failed.join("; ")
            )))
        }
    }
}

/// A name below `zone` that nothing holds: `_gordon-probe-<random>.<zone>` (the
/// `_gordon-` prefix is refused in events, so no record of gordon's is there).
fn absent_name(zone: &Name) -> Result<Name, String> {
    let label = format!("_gordon-probe-{:016x}", random_u64());
    let labels = std::iter::once(label.as_bytes()).chain(zone.labels());
    Name::from_labels(labels)
}

/// The `probe` action: whether the server accepts the key for updates of `zone`
/// (default: the configured zone), found without changing anything.
///
/// It sends a TSIG-signed UPDATE whose one prerequisite, "name is in use" for a
/// fresh `_gordon-probe-<random>.<zone>`, cannot hold, and that has no update
/// section. The server checks the key and its permission for the zone first: a
/// signed NXDOMAIN (the prerequisite failed) means the key may update the zone;
/// REFUSED, NOTAUTH or a TSIG error (BADKEY, BADSIG, BADTIME) that it may not.
///
/// Answers `{"zone", "server", "key", "may_update", "rcode", "elapsed_ms"}`, and
/// `"error"` (what is wrong, naming the server and the zone) when `may_update` is
/// false. A server that cannot be reached fails the action instead.
pub(crate) async fn probe(client: &Client, zone: Option<&str>) -> Result<Value, PluginError> {
    let other;
    let client = match zone {
        None => client,
        Some(text) => {
            if !text.ends_with('.') {
                return Err(PluginError::new(format!(
                    "`zone` must be an absolute name ending in '.', got {text:?}"
                )));
            }
            let zone = Name::parse(text).map_err(|e| PluginError::new(format!("`zone`: {e}")))?;
            other = client.for_zone(zone);
            &other
        }
    };
    let zone = client.zone_text.as_str();
    let absent = absent_name(&client.zone).map_err(|e| {
        PluginError::new(format!(
            "zone {zone} is too long for a probe name below it: {e}"
        ))
    })?;
    let started = Instant::now();
    let answer = client
        .probe_prerequisite(&absent)
        .await
        .map_err(|f| PluginError::new(f.describe(&client.server_in_use(), zone)))?;
    // The server that answered.
    let server = client.server_in_use();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let error = match answer.rcode {
        rcode::NXDOMAIN | rcode::NOERROR if answer.signed => None,
        rcode::NXDOMAIN | rcode::NOERROR => Some(format!(
            "server {server} answered {} to the probe update for zone {zone} without signing it: the answer does not prove that it accepts the key",
            rcode_name(answer.rcode)
        )),
        code @ (rcode::BADSIG | rcode::BADKEY | rcode::BADTIME | rcode::BADTRUNC) => Some(
            Failure::Rcode {
                rcode: rcode::NOTAUTH,
                tsig_error: code,
            }
            .describe(&server, zone),
        ),
        code => Some(
            Failure::Rcode {
                rcode: code,
                tsig_error: 0,
            }
            .describe(&server, zone),
        ),
    };
    let mut out = json!({
        "zone": zone,
        "server": server,
        "key": client.key.name(),
        "may_update": error.is_none(),
        "rcode": rcode_name(answer.rcode),
        "elapsed_ms": elapsed_ms,
    });
    if let Some(error) = error {
        out["error"] = json!(error);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_fresh_and_below_the_zone() {
        let zone = Name::parse("example.test.").unwrap();
        let (a, b) = (absent_name(&zone).unwrap(), absent_name(&zone).unwrap());
        assert_ne!(a, b);
        assert!(a.is_in(&zone));
        assert!(a.to_string().starts_with("_gordon-probe-"), "{a}");
        assert!(absent_name(&Name::parse(".").unwrap()).is_ok());
    }

    #[test]
    fn query_failures_read_as_answers_to_a_query() {
        let f = |code, tsig| Failure::Rcode {
            rcode: code,
            tsig_error: tsig,
        };
        let text = check_failure(&f(rcode::REFUSED, 0), "127.0.0.1:53", "example.test.");
        assert_eq!(
            text,
            "server 127.0.0.1:53 answered REFUSED to a TSIG-signed SOA query for zone example.test.: does it serve the zone, and may the key query it?"
        );
        let text = check_failure(
            &f(rcode::NOTAUTH, rcode::BADSIG),
            "127.0.0.1:53",
            "example.test.",
        );
        assert!(
            text.starts_with(
                "TSIG authentication failed with server 127.0.0.1:53 for zone example.test."
            ),
            "{text}"
        );
        let text = check_failure(&f(rcode::NOTAUTH, 0), "127.0.0.1:53", "example.test.");
        assert!(text.contains("is not authoritative"), "{text}");
    }
}
