//! The configuration of `dns.rfc2136`, checked and resolved (key read and decoded).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::{ownership, PluginError};
use serde::{Deserialize, Serialize};

use crate::tsig::{parse_key_file, Algorithm, Key};
use crate::wire::Name;

/// What to check after an update succeeded.
// `Serialize` so that the configuration keys show its default.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Trust the server's NOERROR (default).
    #[default]
    None,
    /// Query every changed record set back (signed, UDP or TCP).
    Query,
    /// Transfer the whole zone (AXFR) once per UPDATE and compare.
    Axfr,
}

/// How messages travel.
// `Serialize` so that the configuration keys show its default.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP for messages up to 512 bytes, TCP for larger ones and truncated answers
    /// (default).
    #[default]
    Auto,
    /// TCP only.
    Tcp,
}

/// The configuration of `dns.rfc2136`: the `["dns"]` table merged with
/// `["dns.rfc2136"]`. See the crate documentation for every key.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// Shared: the zone, an absolute name ending in `.` (required).
    pub zone: String,
    /// Shared: the TTL of records whose TTL is 0 (unset); 60..=86400, default 300.
    #[serde(default = "default_ttl")]
    pub default_ttl: u32,
    /// The server: `HOST:port`, `IP:port` or `[IPv6]:port` (port 53 when left out).
    ///
    /// A host name is resolved when first needed, and again after none of its
    /// addresses could be reached. Exactly one of this and `servers` is required.
    pub server: Option<String>,
    /// Servers to fail over between, in order, each written as `server` is.
    ///
    /// An exchange goes to the server that answered last (the first at start) and,
    /// when that one cannot be reached, to the next. Not empty; not with `server`.
    pub servers: Option<Vec<String>>,
    /// A BIND key file (`tsig-keygen` output); exactly one of this and `tsig_secret_env`.
    pub tsig_key_file: Option<PathBuf>,
    /// The name of an environment variable holding the base64 secret.
    pub tsig_secret_env: Option<String>,
    /// The key name: required with `tsig_secret_env`; with a key file, selects the key.
    ///
    /// With a key file it is required when the file has several keys.
    pub tsig_key_name: Option<String>,
    /// The TSIG algorithm: `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    ///
    /// With a key file it must match the file's.
    pub tsig_algorithm: Option<String>,
    /// How long to wait for an answer, in milliseconds per attempt; default 5000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries of transient failures (timeout, SERVFAIL, refused connection); default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry's pause in milliseconds; it doubles each retry; default 200.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// The most record-set changes in one UPDATE; default 500.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// What to check after an update succeeded: `none` (default), `query` or `axfr`.
    #[serde(default)]
    pub verify: Verify,
    /// This instance's owner id (default `gordon`), marking the record sets it owns.
    ///
    /// Every record set published is marked with an owner record holding it, and
    /// only record sets so marked are changed or deleted.
    #[serde(default = "default_owner_id")]
    pub owner_id: String,
    /// Take over record sets that exist without any owner record; default `false`.
    ///
    /// Those made by hand or by a deployment from before ownership: change them and
    /// write our owner record. Meant for migrating.
    #[serde(default)]
    pub adopt: bool,
    /// Take over record sets marked by this other owner id (a renamed instance).
    ///
    /// Their owner record is rewritten to ours.
    pub adopt_from_owner: Option<String>,
    /// DANGER: change and delete record sets whatever owns them; default `false`.
    ///
    /// Records made by hand, by other tools or by other owners. Owner records are
    /// still written. A warning is logged whenever it is on.
    #[serde(default)]
    pub manage_unowned: bool,
    /// How messages travel: `auto` (default) or `tcp`.
    #[serde(default)]
    pub transport: Transport,
}

fn default_ttl() -> u32 {
    300
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_retries() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    200
}
fn default_max_batch() -> usize {
    500
}
fn default_owner_id() -> String {
    ownership::DEFAULT_OWNER_ID.into()
}

/// How ownership records are honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ownership {
    /// Our owner id.
    pub(crate) owner_id: String,
    /// Take over record sets without an owner record.
    pub(crate) adopt: bool,
    /// Take over record sets of this other owner id.
    pub(crate) adopt_from_owner: Option<String>,
    /// Change record sets whatever owns them.
    pub(crate) manage_unowned: bool,
}

/// The configuration, checked, with the key loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) zone: Name,
    pub(crate) default_ttl: u32,
    /// The servers in the order of fail-over (one for `server`).
    pub(crate) servers: Vec<ServerSpec>,
    pub(crate) key: Key,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_batch: usize,
    pub(crate) verify: Verify,
    pub(crate) ownership: Ownership,
    pub(crate) tcp_only: bool,
}

fn err(text: impl Into<String>) -> PluginError {
    PluginError::new(text)
}

/// Where a server is: an IP address, or a host name to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name, as configured.
    Name(String),
}

/// One entry of `server` or `servers`: a host and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerSpec {
    pub(crate) host: Host,
    pub(crate) port: u16,
}

impl ServerSpec {
    /// The same server, whatever the spelling of its name (case, a final dot).
    fn same_as(&self, other: &ServerSpec) -> bool {
        let name = |h: &Host| match h {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.trim_end_matches('.').to_ascii_lowercase(),
        };
        self.port == other.port && name(&self.host) == name(&other.host)
    }
}

impl fmt::Display for ServerSpec {
    /// `192.0.2.53:53`, `[2001:db8::53]:53` or `ns1.example.com:53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// The servers as a list for messages: `a, b`.
pub(crate) fn servers_text(servers: &[ServerSpec]) -> String {
    let texts: Vec<String> = servers.iter().map(ToString::to_string).collect();
    texts.join(", ")
}

/// Whether `name` is a host name: dot-separated labels of letters, digits, `-` and
/// `_` (1..=63 bytes, no `-` at either end), at most 253 bytes, a final dot allowed;
/// the last label not all digits (`300.1.1.1` is a mistyped address, not a name).
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) && !numeric
}

/// Parses an entry of `key` (`server` or `servers`): `IP:port`, `[IPv6]:port`, a
/// bare IP, `HOST:port` or a bare host name; the port defaults to 53. A name is
/// only checked here, not resolved: the client resolves it when it needs it.
pub(crate) fn parse_server(key: &str, raw: &str) -> Result<ServerSpec, PluginError> {
    let text = raw.trim();
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let (host, port) = if let Ok(a) = text.parse::<SocketAddr>() {
        (Host::Ip(a.ip()), a.port())
    } else if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        (Host::Ip(ip), 53)
    } else {
        let (name, port) = match text.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => {
                let port = port.parse::<u16>().map_err(|_| {
                    err(format!(
                        "`{key}`: {raw:?}: {port:?} is not a port number (1..=65535)"
                    ))
                })?;
                (name, port)
            }
            _ => (text, 53),
        };
        if !is_host_name(name) {
            return Err(err(format!(
                "`{key}`: {raw:?} is not a server like 192.0.2.53:53, [2001:db8::53]:53 or ns1.example.com:53"
            )));
        }
        (Host::Name(name.to_owned()), port)
    };
    if port == 0 {
        return Err(err(format!("`{key}`: {raw:?} has port 0")));
    }
    Ok(ServerSpec { host, port })
}

/// The servers `server` or `servers` name, in order.
fn server_list(cfg: &Rfc2136Config) -> Result<Vec<ServerSpec>, PluginError> {
    match (&cfg.server, &cfg.servers) {
        (Some(_), Some(_)) => Err(err(
            "give either `server` or `servers` (the servers to fail over between, in order), not both",
        )),
        (None, None) => Err(err(
            "a server is required: set `server`, or `servers` to fail over between several",
        )),
        (Some(one), None) => Ok(vec![parse_server("server", one)?]),
        (None, Some(list)) if list.is_empty() => {
            Err(err("`servers` is empty: list at least one server"))
        }
        (None, Some(list)) => {
            let mut out: Vec<ServerSpec> = Vec::with_capacity(list.len());
            for raw in list {
                let spec = parse_server("servers", raw)?;
                if let Some(first) = out.iter().find(|s| s.same_as(&spec)) {
                    return Err(err(format!(
                        "`servers`: {raw:?} is listed twice (as {first} before)"
                    )));
                }
                out.push(spec);
            }
            Ok(out)
        }
    }
}

fn algorithm(raw: &str, key: &str) -> Result<Algorithm, PluginError> {
    Algorithm::parse(raw).ok_or_else(|| {
        err(format!(
            "TSIG key {key:?}: algorithm {raw:?} is not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)"
        ))
    })
}

/// Loads the key from the file or the environment variable the configuration names.
fn load_key(cfg: &Rfc2136Config) -> Result<Key, PluginError> {
    match (&cfg.tsig_key_file, &cfg.tsig_secret_env) {
        (Some(_), Some(_)) => Err(err(
            "give either `tsig_key_file` or `tsig_secret_env`, not both",
        )),
        (None, None) => Err(err(
            "a TSIG key is required: set `tsig_key_file` or `tsig_secret_env`",
        )),
        (None, Some(var)) => {
            let name = cfg.tsig_key_name.as_deref().ok_or_else(|| {
                err(format!(
                    "`tsig_key_name` is required with `tsig_secret_env` ({var})"
                ))
            })?;
            let alg = algorithm(cfg.tsig_algorithm.as_deref().unwrap_or("hmac-sha256"), name)?;
            let secret = std::env::var(var).map_err(|_| {
                err(format!("`tsig_secret_env`: environment variable {var} (the secret of TSIG key {name:?}) is not set"))
            })?;
            Key::new(name, alg, &secret).map_err(|e| err(format!("`tsig_secret_env` {var}: {e}")))
        }
        (Some(path), None) => {
            let shown = path.display();
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(format!("`tsig_key_file`: cannot read {shown}: {e}")))?;
            let defs =
                parse_key_file(&text).map_err(|e| err(format!("`tsig_key_file` {shown}: {e}")))?;
            let wanted = cfg
                .tsig_key_name
                .as_deref()
                .map(|n| n.trim_end_matches('.'));
            let def = match wanted {
                Some(n) => defs
                    .iter()
                    .find(|d| d.name.trim_end_matches('.').eq_ignore_ascii_case(n)),
                None if defs.len() == 1 => defs.first(),
                None => None,
            };
            let Some(def) = def else {
                let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                return Err(err(match wanted {
                    Some(n) => format!("`tsig_key_file` {shown} has no key {n:?} (it has {names:?})"),
                    None if names.is_empty() => format!("`tsig_key_file` {shown} has no `key` statement"),
                    None => format!("`tsig_key_file` {shown} has several keys {names:?}: choose one with `tsig_key_name`"),
                }));
            };
            let name = &def.name;
            let in_file = def.algorithm.as_deref().ok_or_else(|| {
                err(format!(
                    "`tsig_key_file` {shown}: key {name:?} has no `algorithm`"
                ))
            })?;
            let alg = algorithm(in_file, name)?;
            if let Some(given) = &cfg.tsig_algorithm {
                if algorithm(given, name)? != alg {
                    return Err(err(format!(
                        "`tsig_algorithm` {given} does not match {} of key {name:?} in {shown}",
                        alg.name()
                    )));
                }
            }
            let secret = def.secret.as_deref().ok_or_else(|| {
                err(format!(
                    "`tsig_key_file` {shown}: key {name:?} has no `secret`"
                ))
            })?;
            Key::new(name, alg, secret).map_err(|e| err(format!("`tsig_key_file` {shown}: {e}")))
        }
    }
}

impl Settings {
    /// Checks the configuration and loads the key.
    pub(crate) fn resolve(cfg: &Rfc2136Config) -> Result<Settings, PluginError> {
        if !cfg.zone.ends_with('.') {
            return Err(err(format!(
                "`zone` must be an absolute name ending in '.', got {:?}",
                cfg.zone
            )));
        }
        let zone = Name::parse(&cfg.zone).map_err(|e| err(format!("`zone`: {e}")))?;
        if !(60..=86_400).contains(&cfg.default_ttl) {
            return Err(err(format!(
                "`default_ttl` must be within 60..=86400, got {}",
                cfg.default_ttl
            )));
        }
        let servers = server_list(cfg)?;
        let key = load_key(cfg)?;
        if cfg.timeout_ms == 0 || cfg.timeout_ms > 600_000 {
            return Err(err(format!(
                "`timeout_ms` must be within 1..=600000, got {}",
                cfg.timeout_ms
            )));
        }
        if cfg.retries > 20 {
            return Err(err(format!(
                "`retries` must be at most 20, got {}",
                cfg.retries
            )));
        }
        if cfg.retry_backoff_ms > 60_000 {
            return Err(err(format!(
                "`retry_backoff_ms` must be at most 60000, got {}",
                cfg.retry_backoff_ms
            )));
        }
        if !(1..=10_000).contains(&cfg.max_batch) {
            return Err(err(format!(
                "`max_batch` must be within 1..=10000, got {}",
                cfg.max_batch
            )));
        }
        ownership::check_owner_ids(&cfg.owner_id, cfg.adopt_from_owner.as_deref()).map_err(err)?;
        Ok(Settings {
            zone,
            default_ttl: cfg.default_ttl,
            servers,
            key,
            timeout: Duration::from_millis(cfg.timeout_ms),
            retries: cfg.retries,
            backoff: Duration::from_millis(cfg.retry_backoff_ms),
            max_batch: cfg.max_batch,
            verify: cfg.verify,
            ownership: Ownership {
                owner_id: cfg.owner_id.clone(),
                adopt: cfg.adopt,
                adopt_from_owner: cfg.adopt_from_owner.clone(),
                manage_unowned: cfg.manage_unowned,
            },
            tcp_only: cfg.transport == Transport::Tcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use gordon_plugin_api::testing::validate;

    use super::*;
    use crate::Rfc2136;

    const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";

    fn key_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn check(extra: &str) -> Result<(), String> {
        let toml = format!("zone = \"example.com.\"\nserver = \"127.0.0.1:5353\"\n{extra}");
        validate::<Rfc2136>(&toml).map_err(|e| e.to_string())
    }

    fn stanza(name: &str, alg: &str) -> String {
        format!("key \"{name}\" {{ algorithm {alg}; secret \"{SECRET}\"; }};\n")
    }

    #[test]
    fn a_key_file_is_read_and_its_key_chosen() {
        let one = key_file(&stanza("gordon-key", "hmac-sha512"));
        let path = one.path().display();
        assert_eq!(check(&format!("tsig_key_file = \"{path}\"")), Ok(()));
        let both = format!("tsig_key_file = \"{path}\"\ntsig_algorithm = \"hmac-sha512\"");
        assert_eq!(check(&both), Ok(()));
        let err = check(&format!(
            "tsig_key_file = \"{path}\"\ntsig_algorithm = \"hmac-sha256\""
        ))
        .unwrap_err();
        assert!(
            err.contains("does not match hmac-sha512 of key \"gordon-key\""),
            "{err}"
        );
        let two = key_file(&(stanza("a", "hmac-sha256") + &stanza("b", "hmac-sha384")));
        let path = two.path().display();
        let err = check(&format!("tsig_key_file = \"{path}\"")).unwrap_err();
        assert!(err.contains("several keys [\"a\", \"b\"]"), "{err}");
        assert_eq!(
            check(&format!(
                "tsig_key_file = \"{path}\"\ntsig_key_name = \"b.\""
            )),
            Ok(())
        );
        let err = check(&format!(
            "tsig_key_file = \"{path}\"\ntsig_key_name = \"c\""
        ))
        .unwrap_err();
        assert!(err.contains("has no key \"c\""), "{err}");
    }

    #[test]
    fn key_errors_name_the_key_and_hide_the_secret() {
        let md5 = key_file(&stanza("old-key", "hmac-md5"));
        let err = check(&format!("tsig_key_file = \"{}\"", md5.path().display())).unwrap_err();
        assert!(
            err.contains("TSIG key \"old-key\": algorithm \"hmac-md5\" is not supported"),
            "{err}"
        );
        let broken = key_file(&format!(
            "key \"k\" {{ algorithm hmac-sha256; secret \"{SECRET}\" }};"
        ));
        let err = check(&format!("tsig_key_file = \"{}\"", broken.path().display())).unwrap_err();
        assert!(
            err.contains("line 1: expected `;` after `secret` in key \"k\""),
            "{err}"
        );
        let bad64 = key_file("key \"k\" { algorithm hmac-sha256; secret \"not*base64\"; };");
        let err = check(&format!("tsig_key_file = \"{}\"", bad64.path().display())).unwrap_err();
        assert!(
            err.contains("the secret of TSIG key k. is not valid base64"),
            "{err}"
        );
        assert!(!err.contains("not*base64"));
        let err = check("tsig_key_file = \"/nonexistent/k.key\"").unwrap_err();
        assert!(err.contains("cannot read /nonexistent/k.key"), "{err}");
        assert!(!err.contains(SECRET));
    }

    #[test]
    fn exactly_one_key_source_is_required() {
        let err = check("").unwrap_err();
        assert!(err.contains("a TSIG key is required"), "{err}");
        let err = check("tsig_key_file = \"k\"\ntsig_secret_env = \"V\"").unwrap_err();
        assert!(err.contains("not both"), "{err}");
        let err = check("tsig_secret_env = \"GORDON_RFC2136_TEST_UNSET\"").unwrap_err();
        assert!(err.contains("`tsig_key_name` is required"), "{err}");
        let unset = "tsig_secret_env = \"GORDON_RFC2136_TEST_UNSET\"\ntsig_key_name = \"k\"";
        let err = check(unset).unwrap_err();
        assert!(
            err.contains("GORDON_RFC2136_TEST_UNSET (the secret of TSIG key \"k\") is not set"),
            "{err}"
        );
        let err = check(&format!("{unset}\ntsig_algorithm = \"hmac-sha1\"")).unwrap_err();
        assert!(
            err.contains("algorithm \"hmac-sha1\" is not supported"),
            "{err}"
        );
    }

    #[test]
    fn the_rest_of_the_configuration_is_checked() {
        let file = key_file(&stanza("k", "hmac-sha256"));
        let key = format!("tsig_key_file = \"{}\"\n", file.path().display());
        let bad = |extra: &str| check(&format!("{key}{extra}")).unwrap_err();
        assert!(bad("zonee = \"x\"").contains("zonee"));
        assert!(bad("verify = \"maybe\"").contains("maybe"));
        assert!(bad("max_batch = 0").contains("`max_batch` must be within 1..=10000"));
        assert!(bad("owner_id = \"a,b\"").contains("`owner_id`"));
        assert!(bad("adopt_from_owner = \"a b\"").contains("`adopt_from_owner`"));
        assert!(bad("adopt_from_owner = \"gordon\"").contains("is `owner_id` itself"));
        assert!(bad("timeout_ms = 0").contains("`timeout_ms`"));
        let toml = format!("zone = \"example.com\"\nserver = \"127.0.0.1\"\n{key}");
        assert!(validate::<Rfc2136>(&toml)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        let cfg = Rfc2136Config {
            zone: "example.com.".into(),
            default_ttl: 300,
            server: None,
            servers: Some(vec!["ns1.example.com".into(), "[::1]:5353".into()]),
            tsig_key_file: Some(file.path().into()),
            tsig_secret_env: None,
            tsig_key_name: None,
            tsig_algorithm: None,
            timeout_ms: 100,
            retries: 0,
            retry_backoff_ms: 0,
            max_batch: 1,
            verify: Verify::Axfr,
            owner_id: "g".into(),
            adopt: false,
            adopt_from_owner: Some("old".into()),
            manage_unowned: false,
            transport: Transport::Tcp,
        };
        let settings = Settings::resolve(&cfg).unwrap();
        assert_eq!(
            servers_text(&settings.servers),
            "ns1.example.com:53, [::1]:5353"
        );
        assert!(settings.tcp_only);
        assert_eq!(settings.ownership.adopt_from_owner.as_deref(), Some("old"));
        assert!(
            !format!("{settings:?}").contains(SECRET),
            "Debug must not show the secret"
        );
    }

    #[test]
    fn a_server_is_an_address_or_a_host_name_and_a_port() {
        let ok = |raw: &str| parse_server("server", raw).map(|s| s.to_string());
        for (raw, shown) in [
            ("127.0.0.1", "127.0.0.1:53"),
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            (" 10.0.0.1 ", "10.0.0.1:53"),
            ("[::1]:5353", "[::1]:5353"),
            ("[::1]", "[::1]:53"),
            ("::1", "[::1]:53"),
            ("2001:db8::53", "[2001:db8::53]:53"),
            ("ns1", "ns1:53"),
            ("ns1:5353", "ns1:5353"),
            ("localhost:53", "localhost:53"),
            ("NS1.Example.COM.", "NS1.Example.COM.:53"),
            ("_dns-1.example.net:53", "_dns-1.example.net:53"),
        ] {
            assert_eq!(ok(raw).as_deref(), Ok(shown), "{raw}");
        }
        assert_eq!(
            parse_server("server", "ns1.example.com").unwrap().host,
            Host::Name("ns1.example.com".into())
        );
        assert!(matches!(
            parse_server("server", "192.0.2.1").unwrap().host,
            Host::Ip(_)
        ));
        let bad = |key: &str, raw: &str| parse_server(key, raw).unwrap_err().to_string();
        for raw in [
            "",
            "300.1.1.1",
            "1.2.3.4.5:53",
            "dns://ns1:53",
            "ns1 .example",
            "-ns1.example",
            "ns1..example",
            "[::1",
            "[ns1]:53",
            "[::1]:x",
        ] {
            let text = bad("server", raw);
            assert_eq!(
                text,
                format!("`server`: {raw:?} is not a server like 192.0.2.53:53, [2001:db8::53]:53 or ns1.example.com:53"),
                "{raw}"
            );
        }
        assert_eq!(
            bad("servers", "ns1:http"),
            "`servers`: \"ns1:http\": \"http\" is not a port number (1..=65535)"
        );
        assert_eq!(
            bad("server", "ns1:65536"),
            "`server`: \"ns1:65536\": \"65536\" is not a port number (1..=65535)"
        );
        assert_eq!(
            bad("server", "1.2.3.4:0"),
            "`server`: \"1.2.3.4:0\" has port 0"
        );
        assert_eq!(bad("servers", "ns1:0"), "`servers`: \"ns1:0\" has port 0");
        let long = format!("{}.example", "a".repeat(64));
        assert!(
            parse_server("server", &long).is_err(),
            "a label of 64 bytes"
        );
    }

    #[test]
    fn server_or_servers_is_required_and_servers_is_checked() {
        let file = key_file(&stanza("k", "hmac-sha256"));
        let key = format!("tsig_key_file = \"{}\"\n", file.path().display());
        let run = |lines: &str| {
            let toml = format!("zone = \"example.com.\"\n{key}{lines}");
            validate::<Rfc2136>(&toml).map_err(|e| e.to_string())
        };
        assert_eq!(run("server = \"ns1.example.com:5353\""), Ok(()));
        assert_eq!(
            run("servers = [\"ns1.example.com\", \"192.0.2.2:53\", \"[2001:db8::2]\"]"),
            Ok(())
        );
        let err = run("").unwrap_err();
        assert!(
            err.contains("a server is required: set `server`, or `servers`"),
            "{err}"
        );
        let err = run("server = \"192.0.2.1\"\nservers = [\"192.0.2.2\"]").unwrap_err();
        assert!(
            err.contains("give either `server` or `servers`") && err.contains("not both"),
            "{err}"
        );
        let err = run("servers = []").unwrap_err();
        assert!(
            err.contains("`servers` is empty: list at least one server"),
            "{err}"
        );
        let err = run("servers = [\"192.0.2.1\", \"ns 2\"]").unwrap_err();
        assert!(
            err.contains("`servers`: \"ns 2\" is not a server like"),
            "{err}"
        );
        let err = run("servers = [\"ns1.example.com\", \"NS1.example.com.:53\"]").unwrap_err();
        assert!(
            err.contains(
                "`servers`: \"NS1.example.com.:53\" is listed twice (as ns1.example.com:53 before)"
            ),
            "{err}"
        );
        // The same name on another port is another server.
        assert_eq!(run("servers = [\"ns1\", \"ns1:5353\"]"), Ok(()));
        let err = run("servers = \"192.0.2.1\"").unwrap_err();
        assert!(err.contains("servers"), "a string is not a list: {err}");
        // Checking the configuration resolves nothing: a name that does not exist
        // is for the dependency check and the client to report.
        assert_eq!(run("server = \"no-such-host.invalid\""), Ok(()));
    }

    #[test]
    fn its_keys_are_the_ones_it_accepts_each_with_a_doc_line() {
        use gordon_plugin_api::Plugin;

        let keys = Rfc2136::config_keys();
        gordon_plugin_api::testing::check_keys::<Rfc2136Config>(&keys).unwrap();
        let key = |name: &str| keys.iter().find(|k| k.name == name).unwrap();
        let required: Vec<&str> = keys
            .iter()
            .filter(|k| k.required)
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(required, ["zone"], "the others are checked together");
        assert_eq!(key("server").kind, "string");
        assert_eq!(key("servers").kind, "list of string");
        assert_eq!(key("tsig_key_file").kind, "string");
        assert_eq!(key("tsig_key_file").default, None);
        let verify = key("verify");
        assert_eq!(verify.kind, r#"one of "none", "query", "axfr""#);
        assert_eq!(verify.default.as_deref(), Some(r#""none""#));
        let transport = key("transport");
        assert_eq!(transport.kind, r#"one of "auto", "tcp""#);
        assert_eq!(transport.default.as_deref(), Some(r#""auto""#));
        assert_eq!(
            transport.doc,
            "How messages travel: `auto` (default) or `tcp`."
        );
        for (name, default) in [
            ("default_ttl", "300"),
            ("timeout_ms", "5000"),
            ("retries", "3"),
            ("retry_backoff_ms", "200"),
            ("max_batch", "500"),
        ] {
            assert_eq!(key(name).kind, "integer", "{name}");
            assert_eq!(key(name).default.as_deref(), Some(default), "{name}");
        }
        assert_eq!(key("owner_id").default.as_deref(), Some(r#""gordon""#));
        assert_eq!(key("manage_unowned").default.as_deref(), Some("false"));
    }
}
