//! Integration tests: real cdylibs, loaded by the real `gordon` binary.

// Discovery of several libraries and every refusal case.
mod loading;
// gordon.toml + gordon-user.toml, and what each plugin gets to see.
mod config;
// Configuration errors naming the file, the table and the key.
mod config_errors;
// `gordon check`: every problem reported, panics contained.
mod check;
// The phase router: routes, drops, backpressure, shutdown.
mod routing;
// Metric relays seen from outside: Prometheus scrape, ffwd datagrams.
mod metrics;
// The default pipeline end to end: HTTP in, zone file out.
mod e2e;
// `gordon janitor`: runs, dry runs, failures that never hang.
mod janitor;
// NATS JetStream -> pipeline -> BIND over RFC 2136, with real servers.
mod backends;
// The janitor against BIND and NATS, repairing drift through the service.
mod janitor_e2e;
// What a janitor run may change: owned records, managed types, scope, threshold.
mod janitor_safety;
// No accepted event makes the zone file unloadable or is changed silently.
mod zone_safety;
// Libraries built with panic = "abort": refused, or loaded with a warning.
mod panic_abort;
// What accepted work is promised: routes, deadlines, exit codes, check = run.
mod guarantees;
// Producers' timestamps, SIGHUP, date formats, a restarting syslog daemon.
mod edges;
// The HTTP door: stalled clients, framing, 100-continue, HEAD, the bearer token.
mod http_door;
// Crash isolation: isolated plugins that fault cost a restart, not the host.
mod isolation;
// The control socket (`gordon ctl`), systemd readiness, the unit file.
mod control;
// Crash isolation under load: a faulting plugin behind NATS, nothing lost.
mod isolation_soak;
// Reload, actions, host events, leaving, `check --connect`.
mod live;
// Discovery: `gordon report` nodes, a watch in `gordon run`, NATS and BIND.
mod discovery;
// Per-plugin and per-module log levels: `[core.logging] level` directives, GORDON_LOG.
mod logging;
// The Debian package: built, installed, checked, removed.
mod package;
mod util;
// The vendor kit: a plugin crate generated, built and tested outside the
// workspace against the packaged SDK, then loaded.
mod vendor_kit;
