//! Why an update failed, what that means for the batch, and how to say it.
//!
//! Each failure has a [`Scope`] that decides what the publisher does next:
//! retry it, fail the whole UPDATE, or split the UPDATE to find the records at fault.

use std::time::Duration;

/// A failed exchange with the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server answered with an error rcode (and maybe a TSIG error).
    Rcode { rcode: u16, tsig_error: u16 },
    /// No answer within the timeout.
    Timeout(Duration),
    /// The connection was refused (nothing listens on the port).
    ConnectionRefused,
    /// Another I/O error while talking to the server.
    Io(String),
    /// The host name of the server could not be resolved (why).
    Resolve(String),
    /// None of several servers (or addresses of a host name) could be reached: what
    /// each, by name, did.
    Unreachable(Vec<(String, Failure)>),
    /// The answer could not be authenticated (unsigned, bad signature, bad time).
    Unauthenticated(String),
    /// The answer is malformed or does not answer the request.
    Malformed(String),
    /// The owner-record lookup was answered with this rcode, while the zone takes
    /// updates from the key.
    OwnerLookup(u16),
}

/// What a failure says about the records of the UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Worth retrying the same request after a pause.
    Transient,
    /// Nothing in this zone will work with this server and key now: fail every
    /// message of the UPDATE without splitting it.
    Zone,
    /// May be caused by one of the records: split the UPDATE to find it.
    Records,
    /// A prerequisite failed: some record set is not in the expected state.
    Prerequisite,
}

/// RCODE values (RFC 1035, 2136) and TSIG errors (RFC 8945).
pub(crate) mod rcode {
    pub(crate) const NOERROR: u16 = 0;
    pub(crate) const FORMERR: u16 = 1;
    pub(crate) const SERVFAIL: u16 = 2;
    pub(crate) const NXDOMAIN: u16 = 3;
    pub(crate) const NOTIMP: u16 = 4;
    pub(crate) const REFUSED: u16 = 5;
    pub(crate) const YXDOMAIN: u16 = 6;
    pub(crate) const YXRRSET: u16 = 7;
    pub(crate) const NXRRSET: u16 = 8;
    pub(crate) const NOTAUTH: u16 = 9;
    pub(crate) const NOTZONE: u16 = 10;
    pub(crate) const BADSIG: u16 = 16;
    pub(crate) const BADKEY: u16 = 17;
    pub(crate) const BADTIME: u16 = 18;
    pub(crate) const BADTRUNC: u16 = 22;
}

/// The mnemonic of an rcode or TSIG error, e.g. `REFUSED`.
pub(crate) fn rcode_name(code: u16) -> String {
    let name = match code {
        rcode::NOERROR => "NOERROR",
        rcode::FORMERR => "FORMERR",
        rcode::SERVFAIL => "SERVFAIL",
        rcode::NXDOMAIN => "NXDOMAIN",
        rcode::NOTIMP => "NOTIMP",
        rcode::REFUSED => "REFUSED",
        rcode::YXDOMAIN => "YXDOMAIN",
        rcode::YXRRSET => "YXRRSET",
        rcode::NXRRSET => "NXRRSET",
        rcode::NOTAUTH => "NOTAUTH",
        rcode::NOTZONE => "NOTZONE",
        rcode::BADSIG => "BADSIG",
        rcode::BADKEY => "BADKEY",
        rcode::BADTIME => "BADTIME",
        rcode::BADTRUNC => "BADTRUNC",
        other => return format!("RCODE{other}"),
    };
    name.to_owned()
}

impl Failure {
    /// What the failure means for the batch.
    pub(crate) fn scope(&self) -> Scope {
        match self {
            Failure::Timeout(_)
            | Failure::ConnectionRefused
            | Failure::Io(_)
            | Failure::Resolve(_)
            | Failure::Unreachable(_) => Scope::Transient,
            Failure::Rcode { tsig_error, .. } if *tsig_error != 0 => Scope::Zone,
            Failure::Rcode { rcode, .. } => match *rcode {
                rcode::SERVFAIL => Scope::Transient,
                rcode::FORMERR | rcode::REFUSED | rcode::NOTZONE => Scope::Records,
                rcode::YXDOMAIN | rcode::YXRRSET | rcode::NXDOMAIN | rcode::NXRRSET => {
                    Scope::Prerequisite
                }
                _ => Scope::Zone,
            },
            Failure::Unauthenticated(_) | Failure::Malformed(_) | Failure::OwnerLookup(_) => {
                Scope::Zone
            }
        }
    }

    /// Whether the server could not be reached at all (no answer, a refused
    /// connection, an I/O error, a name that does not resolve): what makes the client
    /// try the next server. An answer, even an error, is not.
    pub(crate) fn unreachable(&self) -> bool {
        matches!(
            self,
            Failure::Timeout(_)
                | Failure::ConnectionRefused
                | Failure::Io(_)
                | Failure::Resolve(_)
                | Failure::Unreachable(_)
        )
    }

    /// Why a server could not be reached, in a few words (for a list of servers).
    pub(crate) fn reason(&self) -> String {
        match self {
            Failure::Timeout(t) => format!("no answer within {} ms", t.as_millis()),
            Failure::ConnectionRefused => "connection refused".to_owned(),
            Failure::Io(e) => format!("i/o error: {e}"),
            Failure::Resolve(e) => format!("cannot resolve the name: {e}"),
            other => other.label(),
        }
    }

    /// A short label for metrics: the rcode or TSIG error, or the kind of failure.
    pub(crate) fn label(&self) -> String {
        match self {
            Failure::Rcode { tsig_error, .. } if *tsig_error != 0 => rcode_name(*tsig_error),
            Failure::Rcode { rcode, .. } => rcode_name(*rcode),
            Failure::Timeout(_) => "timeout".to_owned(),
            Failure::ConnectionRefused => "connection_refused".to_owned(),
            Failure::Io(_) => "io".to_owned(),
            Failure::Resolve(_) => "resolve".to_owned(),
            Failure::Unreachable(_) => "unreachable".to_owned(),
            Failure::Unauthenticated(_) => "unauthenticated".to_owned(),
            Failure::Malformed(_) => "malformed".to_owned(),
            Failure::OwnerLookup(_) => "owner_lookup".to_owned(),
        }
    }

    /// The error message, naming the server and the zone; lowercase, no trailing
    /// period, never any key material.
    pub(crate) fn describe(&self, server: &str, zone: &str) -> String {
        let auth = "TSIG authentication failed";
        let wrong = "wrong key name, secret or algorithm";
        match self {
            Failure::Rcode { rcode, tsig_error } => match (*rcode, *tsig_error) {
                (_, rcode::BADTIME) => format!(
                    "{auth} with server {server} for zone {zone}: the clocks of gordon and the server differ by more than the allowed fudge (BADTIME)"
                ),
                (_, rcode::BADKEY) => format!(
                    "{auth} with server {server} for zone {zone}: {wrong}, or the key may not update this zone (BADKEY)"
                ),
                (_, t) if t != 0 => format!("{auth} with server {server} for zone {zone}: {wrong} ({})", rcode_name(t)),
                (rcode::REFUSED, _) => format!(
                    "server {server} refused the update for zone {zone}: check allow-update / the key's permissions (REFUSED)"
                ),
                (rcode::NOTAUTH, _) => format!("server {server} is not authoritative for zone {zone} (NOTAUTH)"),
                (rcode::NOTZONE, _) => format!("server {server} found a name outside zone {zone} in the update (NOTZONE)"),
                (rcode::FORMERR, _) => format!("server {server} rejected the update for zone {zone} as malformed (FORMERR)"),
                (rcode::SERVFAIL, _) => format!("server {server} failed to apply the update for zone {zone} (SERVFAIL)"),
                (rcode::NOTIMP, _) => format!("server {server} does not support dynamic updates of zone {zone} (NOTIMP)"),
                (r @ (rcode::YXDOMAIN | rcode::YXRRSET | rcode::NXDOMAIN | rcode::NXRRSET), _) => format!(
                    "a prerequisite of the update for zone {zone} failed at server {server} ({})",
                    rcode_name(r)
                ),
                (r, _) => format!("server {server} answered {} to the update for zone {zone}", rcode_name(r)),
            },
            Failure::Timeout(t) => format!("no answer from server {server} for zone {zone} within {} ms", t.as_millis()),
            Failure::ConnectionRefused => format!("server {server} refused the connection (zone {zone}): is it running?"),
            Failure::Io(e) => format!("i/o error talking to server {server} for zone {zone}: {e}"),
            Failure::Resolve(e) => format!(
                "cannot resolve the host name of server {server} for zone {zone}: {e} (check `server` / `servers`)"
            ),
            Failure::Unreachable(tried) => {
                let each: Vec<String> = tried
                    .iter()
                    .map(|(name, f)| format!("{name}: {}", f.reason()))
                    .collect();
                format!("no server could be reached for zone {zone}: {}", each.join("; "))
            }
            Failure::Unauthenticated(why) => {
                format!("{auth} with server {server} for zone {zone}: its answer cannot be trusted: {why}")
            }
            Failure::Malformed(why) => format!("bad answer from server {server} for zone {zone}: {why}"),
            Failure::OwnerLookup(r) => format!(
                "server {server} answered {} to the owner-record queries of zone {zone}, which it needs to tell which record sets gordon owns: let the key query the zone",
                rcode_name(*r)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(rcode: u16, tsig_error: u16) -> Failure {
        Failure::Rcode { rcode, tsig_error }
    }

    #[test]
    fn rcodes_map_to_clear_errors_naming_server_and_zone() {
        let d = |f: Failure| f.describe("127.0.0.1:53", "example.com.");
        let auth = "TSIG authentication failed with server 127.0.0.1:53 for zone example.com.: wrong key name, secret or algorithm";
        assert_eq!(
            d(rc(rcode::NOTAUTH, rcode::BADSIG)),
            format!("{auth} (BADSIG)")
        );
        assert!(d(rc(rcode::NOTAUTH, rcode::BADKEY)).starts_with(auth));
        assert!(d(rc(rcode::NOTAUTH, rcode::BADTIME)).contains("clocks"));
        assert_eq!(
            d(rc(rcode::REFUSED, 0)),
            "server 127.0.0.1:53 refused the update for zone example.com.: check allow-update / the key's permissions (REFUSED)"
        );
        assert_eq!(
            d(rc(rcode::NOTAUTH, 0)),
            "server 127.0.0.1:53 is not authoritative for zone example.com. (NOTAUTH)"
        );
        assert!(d(rc(rcode::NOTZONE, 0)).contains("outside zone example.com."));
        assert!(d(rc(rcode::YXRRSET, 0)).contains("prerequisite"));
        assert_eq!(
            d(rc(11, 0)),
            "server 127.0.0.1:53 answered RCODE11 to the update for zone example.com."
        );
        assert!(d(Failure::Timeout(Duration::from_millis(1500))).contains("within 1500 ms"));
        assert!(d(Failure::OwnerLookup(rcode::REFUSED))
            .contains("answered REFUSED to the owner-record queries of zone example.com."));
        for f in [
            rc(2, 0),
            rc(5, 0),
            rc(9, 16),
            Failure::ConnectionRefused,
            Failure::Io("x".into()),
        ] {
            let text = d(f);
            assert!(
                text.contains("127.0.0.1:53") && text.contains("example.com."),
                "{text}"
            );
            assert!(!text.ends_with('.') || text.ends_with("com."), "{text}");
        }
    }

    #[test]
    fn scopes_decide_retry_split_or_fail() {
        assert_eq!(rc(rcode::SERVFAIL, 0).scope(), Scope::Transient);
        assert_eq!(Failure::Timeout(Duration::ZERO).scope(), Scope::Transient);
        assert_eq!(Failure::ConnectionRefused.scope(), Scope::Transient);
        assert_eq!(rc(rcode::NOTAUTH, rcode::BADSIG).scope(), Scope::Zone);
        assert_eq!(rc(rcode::NOTAUTH, 0).scope(), Scope::Zone);
        assert_eq!(rc(rcode::REFUSED, 0).scope(), Scope::Records);
        assert_eq!(rc(rcode::FORMERR, 0).scope(), Scope::Records);
        assert_eq!(rc(rcode::YXRRSET, 0).scope(), Scope::Prerequisite);
        assert_eq!(rc(rcode::NXRRSET, 0).scope(), Scope::Prerequisite);
        for f in [
            Failure::Resolve("x".into()),
            Failure::Unreachable(vec![("a".into(), Failure::ConnectionRefused)]),
            Failure::Timeout(Duration::ZERO),
            Failure::Io("x".into()),
        ] {
            assert_eq!(f.scope(), Scope::Transient, "{f:?}");
            assert!(f.unreachable(), "{f:?}");
        }
        for f in [
            rc(rcode::SERVFAIL, 0),
            rc(rcode::REFUSED, 0),
            rc(rcode::NOTAUTH, rcode::BADSIG),
            Failure::Unauthenticated("x".into()),
            Failure::Malformed("x".into()),
        ] {
            assert!(!f.unreachable(), "an answer: {f:?}");
        }
        assert_eq!(rc(rcode::NOTAUTH, rcode::BADKEY).label(), "BADKEY");
        assert_eq!(rc(rcode::REFUSED, 0).label(), "REFUSED");
    }
}
